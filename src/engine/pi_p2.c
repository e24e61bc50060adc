/* pi_p2.c — P2 = Σ_{y < p <= √x} (π(x / p) − π(p) + 1): [y, z] sieved block by block, and for
 * each prime p whose x / p falls in a block, the primes up to x / p counted. primecount's P2.
 *
 * A chunk (a range of segments) counts from its own start: it returns its primes (nprimes), its
 * leaves (nleaves) and Σ of the local counts; pi_plan_result adds the earlier chunks' primes.
 * Both the counted numbers and the p come from sieve_bitmap (sieve.c), the engine's one sieve;
 * an odd-only sieve of its own here took 0.149 s of 1e14's P2 where sieve_count of [y, z] takes
 * 0.035 s.
 */
#include <errno.h>
#include <string.h>

#include "pi_int.h"
#include "primed/primality.h"
#include "primed/sieve.h"
#include "wheel.h"

/* Bitmap bytes per block: 32 per sieving prime up to √B, a power of two in [16 KB, 128 KB]. A
 * sieve_bitmap call's setup is one division per sieving prime (~10 ns), its sieving ~4 ns per
 * byte, so setup stays under ~8 %. The cap keeps two blocks and the ctx's buffer under 0.4 MB
 * (the ctx's first multiples, 16 B per sieving prime, come on top: ~1 MB near 2^64); the floor
 * keeps small x near the budget they had before. */
#define P2_BLOCK_MIN ((size_t)1 << 14)
#define P2_BLOCK_MAX ((size_t)1 << 17)
/* The ctx's segment: 512 KB makes its big-prime threshold 4M > √z for every x and α, so the
 * sieve never builds its 16 MB bucket pool for P2. */
#define P2_CTX_SEG ((size_t)1 << 19)

/* pi_upto[r]: the bits of a mod-30 byte whose residue is <= r. */
const uint8_t pi_upto[30] = {0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x03, 0x03, 0x03,
                             0x03, 0x07, 0x07, 0x0f, 0x0f, 0x0f, 0x0f, 0x1f, 0x1f, 0x3f,
                             0x3f, 0x3f, 0x3f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0xff};

/* One chunk's state: the counted block s, the window ps of primes p, the running totals. */
struct p2 {
    const pi_plan *pl;
    sieve_ctx *ctx;
    size_t bb;       /* block bytes */
    uint64_t bn;     /* 30 (bb − 1): any range of bn numbers fits a block */
    uint8_t *s, *ps; /* bb + 8 bytes each (the tail zeroed for word reads) */
    uint64_t s_base; /* s[i] is numbers s_base + 30i … */
    uint64_t run;    /* primes in the chunk's earlier blocks */
    uint64_t nleaves;
    u128 sum;
};

size_t pi_block_fill(sieve_ctx *ctx, uint8_t *buf, uint64_t lo, uint64_t hi)
{
    uint64_t b0 = lo / 30;
    size_t nb = (size_t)(hi / 30 - b0 + 1);
    if (sieve_bitmap(ctx, b0, nb, buf) != 0) return 0;
    if (lo % 30) buf[0] &= (uint8_t)~pi_upto[lo % 30 - 1];
    buf[nb - 1] &= pi_upto[hi % 30];
    memset(buf + nb, 0, 8);
    return nb;
}

/* For the primes p in [plo, phi] (walked downwards, so that x / p grows), sum += run + #primes of
 * s up to x / p. The p are sieved in windows of at most c->bn numbers. */
static int p2_leaves(struct p2 *c, uint64_t plo, uint64_t phi)
{
    const uint64_t x = c->pl->x, run = c->run;
    size_t wi = 0;
    uint64_t before = 0, nleaves = 0; /* before: primes in s's words [0, wi) */
    u128 sum = 0;
    while (phi >= plo) {
        uint64_t wlo = phi - plo >= c->bn ? phi - c->bn + 1 : plo;
        size_t nb = pi_block_fill(c->ctx, c->ps, wlo, phi);
        if (nb == 0) return -ENOMEM;
        uint64_t pbase = 30 * (wlo / 30);
        for (size_t w = (nb + 7) / 8; w-- > 0;) {
            for (uint64_t m = pi_word_at(c->ps, w); m;) {
                unsigned bit = 63 - (unsigned)__builtin_clzll(m);
                m &= ~((uint64_t)1 << bit);
                uint64_t p = pbase + 30 * (8 * w + bit / 8) + wheel_residue[bit % 8];
                uint64_t n = x / p, kb = (n - c->s_base) / 30;
                while (wi < (size_t)(kb >> 3))
                    before += (uint64_t)__builtin_popcountll(pi_word_at(c->s, wi++));
                unsigned j = (unsigned)(kb & 7) * 8;
                uint64_t mask = (((uint64_t)1 << j) - 1) | (uint64_t)pi_upto[n % 30] << j;
                sum += run + before + (uint64_t)__builtin_popcountll(pi_word_at(c->s, wi) & mask);
                nleaves++;
            }
        }
        if (wlo == plo) break;
        phi = wlo - 1;
    }
    c->sum += sum;
    c->nleaves += nleaves;
    return 0;
}

/* Numbers [lo, hi] of the chunk: their primes counted, and the leaves whose x / p falls there. */
static int p2_block(struct p2 *c, uint64_t lo, uint64_t hi)
{
    const pi_plan *pl = c->pl;
    size_t nb = pi_block_fill(c->ctx, c->s, lo, hi);
    if (nb == 0) return -ENOMEM;
    c->s_base = 30 * (lo / 30);
    /* p in (x / (hi + 1), x / lo] ∩ (y, √x], downwards */
    uint64_t plo = pl->x / (hi + 1) + 1, phi = pl->x / lo;
    if (plo < pl->y + 1) plo = pl->y + 1;
    if (phi > pl->sqrtx) phi = pl->sqrtx;
    int rc = p2_leaves(c, plo, phi);
    for (size_t w = 0; w < (nb + 7) / 8; w++)
        c->run += (uint64_t)__builtin_popcountll(pi_word_at(c->s, w));
    return rc;
}

/* Numbers [A, B] (A = max(chunk start, y + 1), B = min(chunk end, z)): primes counted; for every
 * prime p in (y, √x] with x / p in [A, B], sum += #primes in [A, x / p]. */
int pi_p2_run(const pi_plan *pl, struct chunk *ck, const atomic_int *cancel)
{
    const uint64_t S = pl->seg;
    uint64_t A = pl->p2_base + ck->lo * S, B = pl->p2_base + ck->hi * S - 1;
    if (A < pl->y + 1) A = pl->y + 1;
    if (B > pl->z) B = pl->z;
    /* the ctx's own memory, charged: its struct, buffer and first multiples (16 B per sieving
     * prime up to √B, doubled for the growth of its array) */
    size_t nsp = (size_t)pi_tab(pl, primality_isqrt(B)), bb = P2_BLOCK_MIN;
    while (bb < 32 * nsp && bb < P2_BLOCK_MAX)
        bb *= 2;
    size_t ctx_bytes = (64u << 10) + bb + 32 * nsp;
    struct p2 c = {.pl = pl, .bb = bb, .bn = (uint64_t)30 * (bb - 1)};
    int rc = -ENOMEM;
    if (!pi_mem_charge(ctx_bytes)) return rc;
    if (!(c.ctx = sieve_ctx_create(P2_CTX_SEG)) || !(c.s = pi_mem_get(bb + 8)) ||
        !(c.ps = pi_mem_get(bb + 8)))
        goto out;
    rc = 0;
    for (uint64_t lo = A; lo <= B && rc == 0; lo += c.bn) {
        uint64_t hi = B - lo < c.bn ? B : lo + c.bn - 1;
        rc = pi_cancelled(cancel) ? -ECANCELED : p2_block(&c, lo, hi);
    }
    if (rc == 0) {
        ck->sum = (i128)c.sum;
        ck->nprimes = c.run;
        ck->nleaves = c.nleaves;
    }
out:
    pi_mem_put(c.ps, bb + 8);
    pi_mem_put(c.s, bb + 8);
    sieve_ctx_destroy(c.ctx);
    pi_mem_uncharge(ctx_bytes);
    return rc;
}
