/* pi_ac.c — Gourdon's A and the second part of C: the special leaves whose value is π(n) for
 * some n = x / (p q) <= √x, looked up in a prime bitmap of [AC_FIRST, √x] that each chunk sieves
 * block by block for its own range of n (primecount's segmented π table for A + C2).
 *
 *   A  = Σ_{x* < p <= x^(1/3)} Σ_{p < q <= √(x/p)} w · π(x / (p q)),  w = 1 if x / (p q) >= y, else
 * 2 C2 = Σ_{√zg < p <= x*, p > 13} Σ_{max(p, x / p³) < q <= min(y, x / p²)} (π(x / (p q)) − b + 2)
 *
 * A chunk counts primes from its own start, like P2: it returns its primes (nprimes), Σ of the
 * leaf weights (nleaves) and Σ w·(local π) (+ the −b + 2 parts); pi_plan_result adds the earlier
 * chunks' primes. A leaf's n is found from q by one division; the n of one p fall in a block in
 * increasing order as q decreases, so the lookups in the block's counts walk forwards.
 */
#include <errno.h>

#include "pi_int.h"
#include "primed/primality.h"
#include "primed/sieve.h"

#define AC_BLOCK ((size_t)1 << 17) /* bitmap bytes per block: 3.9M numbers */
#define AC_CTX_SEG ((size_t)1 << 19)

struct ac {
    const pi_plan *pl;
    sieve_ctx *ctx;
    uint8_t *s;    /* AC_BLOCK + 8 bytes */
    uint32_t *cum; /* [w]: primes of the block in words < w */
    uint64_t base; /* s[i] is the numbers base + 30i … */
    uint64_t run;  /* primes of the chunk before the block */
    uint64_t nleaves;
    i128 sum;
};

/* Primes in [chunk start, n] for n in the current block. */
static inline uint64_t ac_pi(const struct ac *c, uint64_t n)
{
    uint64_t kb = (n - c->base) / 30;
    size_t w = (size_t)(kb >> 3);
    unsigned j = (unsigned)(kb & 7) * 8;
    uint64_t mask = (((uint64_t)1 << j) - 1) | (uint64_t)pi_upto[n % 30] << j;
    return c->run + c->cum[w] + (uint64_t)__builtin_popcountll(pi_word_at(c->s, w) & mask);
}

/* A's leaves of p_b with n in [lo, hi]: q in (max(p, xp / (hi + 1)), min(√xp, xp / lo)]. */
static void ac_a(struct ac *c, uint64_t b, uint64_t lo, uint64_t hi)
{
    const pi_plan *pl = c->pl;
    uint64_t p = pl->primes[b], xp = pl->x / p, qhi = primality_isqrt(xp), qlo = xp / (hi + 1);
    if (qhi > xp / lo) qhi = xp / lo;
    if (qlo < p) qlo = p;
    if (qhi <= qlo) return;
    uint64_t l = pi_tab(pl, qhi), lmin = pi_tab(pl, qlo), qy = xp / pl->y;
    i128 sum = 0;
    uint64_t w = 0;
    for (; l > lmin; l--) {
        uint64_t q = pl->primes[l], k = q <= qy ? 1 : 2;
        sum += (i128)(k * ac_pi(c, xp / q));
        w += k;
    }
    c->sum += sum;
    c->nleaves += w;
}

/* C2's leaves of p_b with n in [lo, hi]: q in (max(p, x / p³, xp / (hi + 1)), min(y, x / p²,
 * xp / lo)]. */
static void ac_c2(struct ac *c, uint64_t b, uint64_t lo, uint64_t hi)
{
    const pi_plan *pl = c->pl;
    uint64_t p = pl->primes[b], xp = pl->x / p, xpp = xp / p, xppp = xpp / p;
    uint64_t qhi = xpp < pl->y ? xpp : pl->y, qlo = xp / (hi + 1);
    if (qhi > xp / lo) qhi = xp / lo;
    if (qlo < xppp) qlo = xppp;
    if (qlo < p) qlo = p;
    if (qhi <= qlo) return;
    uint64_t l = pi_tab(pl, qhi), lmin = pi_tab(pl, qlo), n = l - lmin;
    i128 sum = 0;
    for (; l > lmin; l--)
        sum += (i128)ac_pi(c, xp / pl->primes[l]);
    c->sum += sum + (i128)n * (2 - (i128)b);
    c->nleaves += n;
}

/* One block [lo, hi] of the chunk's numbers: the sieve, its counts, every p's leaves there. */
static int ac_block(struct ac *c, uint64_t lo, uint64_t hi, const atomic_int *cancel)
{
    const pi_plan *pl = c->pl;
    size_t nb = pi_block_fill(c->ctx, c->s, lo, hi);
    if (nb == 0) return -ENOMEM;
    c->base = 30 * (lo / 30);
    size_t nw = (nb + 7) / 8;
    uint32_t t = 0;
    for (size_t w = 0; w <= nw; w++) {
        c->cum[w] = t;
        if (w < nw) t += (uint32_t)__builtin_popcountll(pi_word_at(c->s, w));
    }
    /* Leaves have n >= lo, q > p, so p < √(x / lo); C2 also has n < p², so p > √lo. */
    uint64_t r = primality_isqrt(pl->x / lo), bmax = pi_tab(pl, r < pl->x13 ? r : pl->x13);
    uint64_t bx = pi_tab(pl, pl->xstar), bz = pi_tab(pl, primality_isqrt(pl->mmax));
    uint64_t bc = pi_tab(pl, primality_isqrt(lo));
    if (bz < bc) bz = bc;
    if (bz < PI_C) bz = PI_C;
    for (uint64_t b = bz + 1; b <= bx && b <= bmax; b++) {
        if ((b & 1023) == 0 && pi_cancelled(cancel)) return -ECANCELED;
        ac_c2(c, b, lo, hi);
    }
    for (uint64_t b = bx + 1; b <= bmax; b++) {
        if ((b & 1023) == 0 && pi_cancelled(cancel)) return -ECANCELED;
        ac_a(c, b, lo, hi);
    }
    c->run += t;
    return 0;
}

int pi_ac_run(const pi_plan *pl, struct chunk *ck, const atomic_int *cancel)
{
    const size_t cum_bytes = (AC_BLOCK / 8 + 2) * sizeof(uint32_t);
    size_t nsp = (size_t)pi_tab(pl, primality_isqrt(primality_isqrt(pl->x)) + 1);
    size_t ctx_bytes = (64u << 10) + AC_BLOCK + 32 * nsp;
    struct ac c = {.pl = pl};
    int rc = -ENOMEM;
    if (!pi_mem_charge(ctx_bytes)) return rc;
    if (!(c.ctx = sieve_ctx_create(AC_CTX_SEG)) || !(c.s = pi_mem_get(AC_BLOCK + 8)) ||
        !(c.cum = pi_mem_get(cum_bytes)))
        goto out;
    rc = 0;
    const uint64_t bn = (uint64_t)30 * (AC_BLOCK - 1);
    for (uint64_t lo = ck->lo; lo < ck->hi && rc == 0; lo += bn) {
        uint64_t hi = ck->hi - lo <= bn ? ck->hi - 1 : lo + bn - 1;
        rc = pi_cancelled(cancel) ? -ECANCELED : ac_block(&c, lo, hi, cancel);
    }
    if (rc == 0) {
        ck->sum = c.sum;
        ck->nprimes = c.run;
        ck->nleaves = c.nleaves;
    }
out:
    pi_mem_put(c.cum, cum_bytes);
    pi_mem_put(c.s, AC_BLOCK + 8);
    sieve_ctx_destroy(c.ctx);
    pi_mem_uncharge(ctx_bytes);
    return rc;
}
