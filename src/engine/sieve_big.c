/* sieve_big.c — the big sieving primes of a window, crossed off through buckets (sieve_big.h).
 *
 * Pass 1 visits every big prime once per window: one division finds its first multiple, and an
 * entry (prime, offset in the slice, wheel index) goes to the bucket of that slice. Pass 2 (apply)
 * walks the slices in order: each entry crosses off its hits in the slice, now in L2, and moves
 * on to the bucket of the slice of its next hit, or drops out past the window's end. Pass 2 also
 * runs whenever the pool runs low during pass 1, so memory stays fixed; every such run costs one
 * sweep of the window through L2 (~15 ms for 32 MiB, measured as 8 vs 16 MiB pools: 1.80 vs
 * 1.55 s on [1e18, 1e18+1e9]), against one cache miss per hit without buckets (2.8 s).
 *
 * Rejected: primesieve's buckets that keep every big prime across windows (no division per
 * window, but 8 bytes per sieving prime: 237 MB at 1e18, 381 MB near 2^64); measured here, the
 * division costs a fraction of what the cache misses did.
 */
#include "sieve_big.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sieve_kernels.h"
#include "wheel.h"

#define MIN_SHIFT 15 /* 32 KiB slices at least: the pool must hold a few blocks per bucket */
#define MAX_SHIFT 22 /* 4 MiB at most: offsets in a slice use 22 bits of `ow` */
#define DEFAULT_POOL_BYTES ((size_t)16 << 20) /* 2M pending hits; 32 MiB gained 0.1 s more */
#define BLOCK_BYTES 4096
#define BLOCK_ENTRIES ((BLOCK_BYTES - 16) / 8)
/* Apply when fewer free blocks than buckets + SLACK remain: see apply() for why that suffices. */
#define SLACK 4
/* apply() prefetches the byte of the entry this many places ahead: the slice is in L2, not L1;
 * [1e18, 1e18+1e9] took 1.62 s without, 1.49 s with 16 (8: 1.53, 32: 1.49). */
#define PREFETCH 16
#define BATCH 256 /* primes per call of the first-multiples kernel */

/* One pending hit. pq = q << 3 | bit of p mod 30 (p = 30q + residue, p < 2^32 so q < 2^28);
 * ow = offset in the slice << 3 | wheel index of the multiplier. */
struct bentry {
    uint32_t pq;
    uint32_t ow;
};

/* BLOCK_BYTES long and aligned to it, entries up to its end: a write cursor at a multiple of
 * BLOCK_BYTES is the end of a full block (or NULL: no block yet). */
struct bblock {
    struct bblock *next;
    uint64_t pad;
    struct bentry e[BLOCK_ENTRIES];
};
_Static_assert(sizeof(struct bblock) == BLOCK_BYTES, "entries must end the block");

struct sieve_big {
    unsigned shift;      /* slice = 1 << shift bytes */
    size_t nb_max;       /* buckets of the largest window */
    struct bblock *pool; /* pool_n blocks, one allocation */
    size_t pool_n;
    struct bblock *free; /* free list through next */
    size_t free_n;
    /* nb_max buckets: the next free entry of the bucket's newest block, which heads a list of
     * full ones through next; NULL when empty. One pointer per push, no block header to read:
     * push was 20 % of a count of [1e18, 1e18+1e9] with a count in each block's header. */
    struct bentry **cur;
};

struct sieve_big *sieve_big_create(size_t bucket_bytes, size_t max_window_bytes, size_t pool_bytes)
{
    struct sieve_big *sb = calloc(1, sizeof *sb);
    if (!sb) return NULL;
    unsigned shift = MIN_SHIFT;
    while (shift < MAX_SHIFT && ((size_t)2 << shift) <= bucket_bytes)
        shift++;
    sb->shift = shift;
    sb->nb_max = (max_window_bytes >> shift) + 1;
    size_t n = (pool_bytes ? pool_bytes : DEFAULT_POOL_BYTES) / BLOCK_BYTES;
    if (n < 4 * (sb->nb_max + SLACK)) n = 4 * (sb->nb_max + SLACK);
    sb->cur = calloc(sb->nb_max, sizeof *sb->cur);
    sb->pool = aligned_alloc(BLOCK_BYTES, n * BLOCK_BYTES);
    if (!sb->cur || !sb->pool) {
        sieve_big_destroy(sb);
        return NULL;
    }
    sb->pool_n = n;
    for (size_t i = 0; i < n; i++)
        sb->pool[i].next = i + 1 < n ? &sb->pool[i + 1] : NULL;
    sb->free = sb->pool;
    sb->free_n = n;
    return sb;
}

void sieve_big_destroy(struct sieve_big *sb)
{
    if (!sb) return;
    free(sb->pool);
    free(sb->cur);
    free(sb);
}

size_t sieve_big_bytes(const struct sieve_big *sb)
{
    return sb->pool_n * BLOCK_BYTES + sb->nb_max * sizeof *sb->cur;
}

static inline struct bblock *block_of(struct bentry *c)
{
    return (struct bblock *)((uintptr_t)c & ~(uintptr_t)(BLOCK_BYTES - 1));
}

static struct bentry *new_block(struct sieve_big *sb, struct bentry *c)
{
    struct bblock *h = sb->free; /* never NULL: callers keep SLACK + one block per bucket free */
    sb->free = h->next;
    sb->free_n--;
    h->next = c ? block_of(c - 1) : NULL;
    return h->e;
}

static inline void push(struct sieve_big *sb, size_t b, uint32_t pq, uint32_t ow)
{
    struct bentry *c = sb->cur[b];
    if (((uintptr_t)c & (BLOCK_BYTES - 1)) == 0) c = new_block(sb, c);
    *c = (struct bentry){pq, ow};
    sb->cur[b] = c + 1;
}

static inline void release(struct sieve_big *sb, struct bblock *blk)
{
    blk->next = sb->free;
    sb->free = blk;
    sb->free_n++;
}

/* Apply every pending entry, slice by slice; all buckets are empty afterwards.
 * Blocks never run out: entries only move to later buckets and never multiply, each bucket has
 * at most one partly filled block (its head), and a block is released once its entries are
 * done. So at any moment the blocks in use are at most (blocks in use when apply began) + one
 * new head per bucket + the block being read, and apply begins with nb + SLACK blocks free. */
static void apply(struct sieve_big *sb, uint8_t *buf, size_t wlen, size_t nb)
{
    const unsigned shift = sb->shift;
    const uint64_t slice = (uint64_t)1 << shift;
    for (size_t s = 0; s < nb; s++) {
        struct bentry *c = sb->cur[s];
        if (!c) continue;
        sb->cur[s] = NULL;
        struct bblock *blk = block_of(c - 1);
        uint32_t n = (uint32_t)(c - blk->e); /* the newest block; the rest are full */
        uint8_t *seg = buf + (s << shift);
        const uint64_t base = (uint64_t)s << shift;
        const uint64_t slen = wlen - base < slice ? wlen - base : slice;
        while (blk) {
            for (uint32_t k = 0; k < n; k++) {
                if (k + PREFETCH < n)
                    __builtin_prefetch(seg + (blk->e[k + PREFETCH].ow >> 3), 1, 3);
                const uint32_t pq = blk->e[k].pq;
                const uint64_t q = pq >> 3;
                const struct wheel_step *st = wheel_steps[pq & 7];
                uint64_t off = blk->e[k].ow >> 3;
                unsigned wi = blk->e[k].ow & 7;
                do { /* off < slen when the entry was filed */
                    seg[off] &= st[wi].mask;
                    off += q * st[wi].dm + st[wi].dc;
                    wi = (wi + 1) & 7;
                } while (off < slen);
                uint64_t at = base + off;
                if (at < wlen)
                    push(sb, (size_t)(at >> shift), pq, (uint32_t)((at & (slice - 1)) << 3 | wi));
            }
            struct bblock *next = blk->next;
            release(sb, blk);
            blk = next;
            n = BLOCK_ENTRIES;
        }
    }
}

/* Forget every pending entry (cancellation). */
static void drop(struct sieve_big *sb, size_t nb)
{
    for (size_t s = 0; s < nb; s++) {
        struct bblock *blk = sb->cur[s] ? block_of(sb->cur[s] - 1) : NULL;
        sb->cur[s] = NULL;
        while (blk) {
            struct bblock *next = blk->next;
            release(sb, blk);
            blk = next;
        }
    }
}

/* File prime p's first hit (ow = byte offset from W0 << 3 | wheel index) in its bucket. */
static inline void file(struct sieve_big *sb, uint8_t *buf, size_t wlen, size_t nb, uint64_t p,
                        uint32_t ow)
{
    const unsigned shift = sb->shift;
    if (sb->free_n < nb + SLACK) apply(sb, buf, wlen, nb);
    push(sb, ow >> (3 + shift), (uint32_t)(p / 30) << 3 | (uint32_t)wheel_bit_of[p % 30],
         ow & (uint32_t)(((uint64_t)8 << shift) - 1));
}

/* File the primes from *p on, up to `last`, one division each; *p becomes the first prime past
 * last (or 0 past the table). */
static void file_one_by_one(struct sieve_big *sb, struct stable_iter *it, uint64_t *p,
                            uint64_t last, uint64_t W0, uint64_t whi, uint8_t *buf, size_t wlen,
                            size_t nb)
{
    for (; *p != 0 && *p <= last; *p = stable_iter_next(it)) {
        uint64_t off;
        unsigned wi;
        if (wheel_first_multiple(*p, W0, whi, &off, &wi))
            file(sb, buf, wlen, nb, *p, (uint32_t)(off << 3 | wi));
    }
}

int sieve_big_window(struct sieve_big *sb, const struct stable *t, uint64_t from, uint64_t to,
                     uint64_t W0, uint64_t whi, uint8_t *buf, size_t wlen, const atomic_int *cancel)
{
    if (to <= from || wlen == 0) return 0;
    const unsigned shift = sb->shift;
    const size_t nb = (size_t)((wlen + ((size_t)1 << shift) - 1) >> shift);
    if (nb > sb->nb_max) return -EINVAL; /* a window larger than promised at create */
    const struct sieve_kernels *kern = sieve_kernels();
    struct stable_iter it;
    stable_iter_init(&it, t, from + 1);
    uint64_t p = stable_iter_next(&it);
    /* Primes below 2^16 (only with segments of a few KiB, see sieve.c's big_min) one by one:
     * the kernels take p >= 2^16. Without a kernel, all of them, polling cancel every 2^24
     * numbers (~800k primes near 1e9). */
    const uint64_t last = kern->first_multiples && to > 65535 ? 65535 : to;
    while (p != 0 && p <= last) {
        const uint64_t upto = last - p > ((uint64_t)1 << 24) ? p + ((uint64_t)1 << 24) : last;
        file_one_by_one(sb, &it, &p, upto, W0, whi, buf, wlen, nb);
        if (cancel && atomic_load_explicit(cancel, memory_order_relaxed)) goto cancelled;
    }
    /* The rest in batches: the first multiples of a batch by the vector kernel (no division, and
     * no branch on whether a prime hits, a coin flip per prime near √hi), then filed. */
    uint32_t P[BATCH], hit[BATCH + 7], ow[BATCH + 7];
    for (uint64_t batches = 1; kern->first_multiples && p != 0 && p <= to; batches++) {
        size_t n = 0;
        for (; n < BATCH && p != 0 && p <= to; p = stable_iter_next(&it))
            P[n++] = (uint32_t)p;
        size_t h = kern->first_multiples(P, n, W0, whi - W0, hit, ow);
        for (size_t j = 0; j < h; j++)
            file(sb, buf, wlen, nb, P[hit[j]], ow[j]);
        if ((batches & 0xfff) == 0 && cancel && atomic_load_explicit(cancel, memory_order_relaxed))
            goto cancelled; /* every 2^20 primes */
    }
    apply(sb, buf, wlen, nb);
    return 0;
cancelled:
    drop(sb, nb);
    return -ECANCELED;
}
