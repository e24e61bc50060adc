/* sieve_table.h — the process-wide table of sieving primes, shared by every sieving thread.
 *
 * A mod-30 prime bitmap (see wheel.h) of [0, limit], cut into fixed blocks. It is computed once,
 * extended on demand and published with an atomic pointer: readers never block and never see a
 * table change under them. It must never be written after publication, and never freed while a
 * sieve may run (only stable_shutdown() frees it).
 */
#ifndef PRIMED_SIEVE_TABLE_H
#define PRIMED_SIEVE_TABLE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wheel.h"

/* One block holds 2^19 bytes = 15,728,640 numbers; block 0 alone holds every prime needed to
 * sieve any later block (sqrt(2^32) = 65536). 274 blocks (143.6 MB) reach 2^32 > sqrt(2^64). */
#define STABLE_BLOCK_SHIFT 19
#define STABLE_BLOCK_BYTES ((size_t)1 << STABLE_BLOCK_SHIFT)

/* An immutable published directory. Blocks are shared between successive directories (an
 * extension appends blocks), so memory is one bitmap however often the table grows. */
struct stable {
    uint64_t limit; /* every prime <= limit is in the bitmap */
    size_t nblocks;
    uint8_t **blocks;       /* nblocks pointers to STABLE_BLOCK_BYTES each */
    struct stable *retired; /* older directory, kept reachable for stable_shutdown() */
};

/* Fills out[0, nbytes) with the prime bitmap of bytes [byte_lo, byte_lo + nbytes), i.e. numbers
 * 30·byte_lo … (the layout of wheel.h). Returns 0 or a negative errno. The table owns no sieve:
 * its owner, the generator (sieve.c), lends one, so that the dependency runs one way, sieve.c →
 * sieve_table.c (primesieve's generator owns its sieve and its sieving primes the same way). The
 * filler may itself call stable_acquire for primes up to √ of its range: block 0 is published
 * before any filler runs, so that call takes the lock-free path. */
typedef int (*stable_fill_fn)(uint64_t byte_lo, size_t nbytes, uint8_t *out);

/* A table with limit >= need (need is capped at 2^32-1). Builds or extends it when needed (the
 * builder is serialised by a mutex on this cold path; readers of a big enough table take no
 * lock): block 0 by a plain sieve of its own, every later block by `fill`, one block per call.
 * `cancel` (may be NULL) is polled between blocks of an extension: the blocks built so far are
 * published, and NULL is returned with errno ECANCELED. Returns NULL with errno ENOMEM when
 * memory runs out (or the filler fails). Borrowed: valid until stable_shutdown(). */
const struct stable *stable_acquire(uint64_t need, stable_fill_fn fill, const atomic_int *cancel);

/* Byte i of the bitmap (numbers 30i .. 30i+29); i must be < limit/30 + 1. */
static inline uint8_t stable_byte(const struct stable *t, uint64_t i)
{
    return t->blocks[i >> STABLE_BLOCK_SHIFT][i & (STABLE_BLOCK_BYTES - 1)];
}

/* Walks the primes of a table 64 bits (240 numbers) at a time: the sieves' way to visit every
 * sieving prime in a range without a list of them. */
struct stable_iter {
    const struct stable *t;
    uint64_t word; /* index of the 8-byte word in the bitmap */
    uint64_t bits; /* primes of that word not yet returned */
};

static inline uint64_t stable_word(const struct stable *t, uint64_t w)
{
    uint64_t v;
    uint64_t byte = w * 8;
    memcpy(&v, &t->blocks[byte >> STABLE_BLOCK_SHIFT][byte & (STABLE_BLOCK_BYTES - 1)], 8);
    return v;
}

/* Start at the first prime >= from (from >= 7 gives only primes >= 7). */
static inline void stable_iter_init(struct stable_iter *it, const struct stable *t, uint64_t from)
{
    it->t = t;
    it->word = from / 240;
    it->bits = stable_word(t, it->word);
    uint64_t base = it->word * 240;
    for (int b = 0; b < 64; b++)
        if (base + 30 * (uint64_t)(b / 8) + wheel_residue[b % 8] < from)
            it->bits &= ~((uint64_t)1 << b);
}

/* Next prime, or 0 beyond the table's last word (callers stop at their own limit first). */
static inline uint64_t stable_iter_next(struct stable_iter *it)
{
    while (it->bits == 0) {
        if ((it->word + 1) * 240 > it->t->limit) return 0;
        it->bits = stable_word(it->t, ++it->word);
    }
    unsigned b = (unsigned)__builtin_ctzll(it->bits);
    it->bits &= it->bits - 1;
    return it->word * 240 + 30 * (b / 8) + wheel_residue[b % 8];
}

/* Bytes held and limit covered now (relaxed reads, for metrics). */
void stable_stats(uint64_t *bytes, uint64_t *limit);

/* Frees every table ever published. Only when no thread is sieving (e.g. at exit). */
void stable_shutdown(void);

#endif
