/* sieve_pi.c — π(x) by Meissel's formula, for the nth prime without sieving [0, x].
 *
 * With c = π(∛x) and b = π(√x):
 *     π(x) = φ(x, c) + c - 1 - Σ_{c < i <= b} (π(x / p_i) - i + 1)
 * where φ(x, a) counts the n <= x with no prime factor <= p_a. Every π(z) the formula and the
 * φ recursion ask for has z < x^(2/3), so one table up to y = x^(2/3) answers them: a bitmap of
 * the odd numbers up to y, built with sieve_foreach, and a running count per 64-bit word.
 * φ(z, a) is computed as
 *     φ(z, a) = φ(z, 6) - Σ_{6 < i <= a} φ(z / p_i, i - 1)        (the recursion unrolled)
 * with φ(z, a <= 6) from a table over one period 2·3·5·7·11·13 = 30030 (built once per process),
 * and one shortcut: when z < p_{a+1}^2 the numbers left are 1 and the primes in (p_a, z], so
 * φ(z, a) = π(z) - a + 1 from the π table.
 *
 * Cost at x = 2.6e11 (the 1e10-th prime): a table to 4.1e7 (3.8 MB) and ~10^7 φ steps, against
 * sieving 2.6e11 numbers. Memory is bounded by SIEVE_PI_MAX: x <= 4e12 means y <= 2.6e8, a
 * 24 MB table; above that callers count with the sieve.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "primed/primality.h"
#include "primed/sieve.h"

#define PHI_A 6         /* φ(z, a) for a <= 6 from one period */
#define PHI_Q 30030u    /* 2·3·5·7·11·13 */
#define CANCEL_EVERY 64 /* top-level terms between looks at the cancel flag */

struct pitab {
    uint64_t y;       /* π(z) is known for z <= y */
    uint64_t *bits;   /* bit i of word w: 128w + 2i + 1 is prime */
    uint32_t *before; /* odd primes below 128w */
    uint32_t *primes; /* p_1 = 2, p_2 = 3, … up to plimit (index 1-based, [0] = 0) */
    uint32_t nprimes; /* primes[1..nprimes] */
};

/* φ(r, a) for r < 30030 and a = 1..6 ([a - 1][r]): the r coprime to p_1 … p_a, counted. The same
 * for every call, so computed once (pthread_once) into static storage. */
static uint16_t phi_tab[PHI_A][PHI_Q];
static pthread_once_t phi_once = PTHREAD_ONCE_INIT;

static void phi_tab_build(void)
{
    static const unsigned small[PHI_A] = {2, 3, 5, 7, 11, 13};
    for (unsigned a = 1; a <= PHI_A; a++) {
        unsigned n = 0;
        for (unsigned r = 0; r < PHI_Q; r++) {
            bool keep = r > 0;
            for (unsigned j = 0; j < a && keep; j++)
                keep = r % small[j] != 0;
            n += keep;
            phi_tab[a - 1][r] = (uint16_t)n;
        }
    }
}

static uint64_t pi_small(const struct pitab *t, uint64_t z)
{
    if (z < 2) return 0;
    uint64_t w = z >> 7;
    unsigned nbits = (unsigned)(((z & 127) + 1) >> 1); /* the odd numbers 128w+1 … z */
    uint64_t mask = nbits == 64 ? UINT64_MAX : ((uint64_t)1 << nbits) - 1;
    return 1 + t->before[w] + (uint64_t)__builtin_popcountll(t->bits[w] & mask);
}

static int fill_cb(void *arg, const uint64_t *p, size_t n)
{
    uint64_t *bits = arg;
    for (size_t i = 0; i < n; i++)
        if (p[i] > 2) bits[p[i] >> 7] |= (uint64_t)1 << ((p[i] & 127) >> 1);
    return 0;
}

static void pitab_free(struct pitab *t)
{
    free(t->bits);
    free(t->before);
    free(t->primes);
}

/* The table for π(z), z <= y, and the primes up to plimit (<= y). */
static int pitab_build(struct pitab *t, sieve_ctx *ctx, uint64_t y, uint64_t plimit,
                       const atomic_int *cancel)
{
    memset(t, 0, sizeof *t);
    t->y = y;
    uint64_t words = (y >> 7) + 1;
    t->bits = calloc(words, sizeof *t->bits);
    t->before = malloc(words * sizeof *t->before);
    if (!t->bits || !t->before) {
        pitab_free(t);
        return -ENOMEM;
    }
    int rc = sieve_foreach(ctx, 0, y, fill_cb, t->bits, cancel);
    if (rc != 0) {
        pitab_free(t);
        return rc;
    }
    uint32_t run = 0;
    for (uint64_t w = 0; w < words; w++) {
        t->before[w] = run;
        run += (uint32_t)__builtin_popcountll(t->bits[w]);
    }
    /* The primes up to plimit, read back from the bitmap: the table says how many. */
    t->nprimes = (uint32_t)pi_small(t, plimit);
    t->primes = malloc(((size_t)t->nprimes + 1) * sizeof *t->primes);
    if (!t->primes) {
        pitab_free(t);
        return -ENOMEM;
    }
    t->primes[0] = 0;
    t->primes[1] = 2;
    uint32_t k = 1;
    for (uint64_t w = 0; k < t->nprimes; w++)
        for (uint64_t m = t->bits[w]; m && k < t->nprimes; m &= m - 1)
            t->primes[++k] = (uint32_t)(128 * w + 2 * (uint64_t)__builtin_ctzll(m) + 1);
    return 0;
}

/* φ(z, a) for a <= 6: whole periods of 30030, then the table. */
static uint64_t phi_small(uint64_t z, unsigned a)
{
    if (a == 0) return z;
    const uint16_t *row = phi_tab[a - 1];
    return z / PHI_Q * row[PHI_Q - 1] + row[z % PHI_Q]; /* row[Q-1] = φ(Q, a) */
}

/* φ(z, a), a <= nprimes. */
static uint64_t phi(const struct pitab *t, uint64_t z, unsigned a)
{
    if (a <= PHI_A) return phi_small(z, a);
    /* a < c <= b = nprimes in every call from sieve_pi, so p_{a+1} exists. When z < p_{a+1}^2
     * (and z >= 1, always: z >= p_i^2 / p_i in the loop below), what is left is 1 and the
     * primes in (p_a, z]. Otherwise every p_i <= p_a < √z, and z is above y only near the top
     * of the recursion. */
    uint64_t pa1 = t->primes[a + 1];
    if (z <= t->y && z < pa1 * pa1) return z >= t->primes[a] ? pi_small(t, z) - a + 1 : 1;
    uint64_t r = phi_small(z, PHI_A);
    for (unsigned i = PHI_A + 1; i <= a; i++)
        r -= phi(t, z / t->primes[i], i - 1);
    return r;
}

/* Largest r with r^3 <= x. */
static uint64_t icbrt(uint64_t x)
{
    uint64_t r = (uint64_t)cbrtl((long double)x);
    while (r > 0 && (__uint128_t)r * r * r > x)
        r--;
    while ((__uint128_t)(r + 1) * (r + 1) * (r + 1) <= x)
        r++;
    return r;
}

int sieve_pi(sieve_ctx *ctx, uint64_t x, uint64_t *out, const atomic_int *cancel)
{
    if (x > SIEVE_PI_MAX) return -ERANGE;
    if (x < 100000) return sieve_count(ctx, 0, x, out, cancel);
    uint64_t s = primality_isqrt(x), cb = icbrt(x);
    /* x / p for p > ∛x; also >= √x, so the table holds the primes up to √x */
    uint64_t y = (uint64_t)powl((long double)x, 2.0L / 3.0L) + 2;
    pthread_once(&phi_once, phi_tab_build);
    struct pitab t;
    int rc = pitab_build(&t, ctx, y, s, cancel);
    if (rc != 0) return rc;
    /* x >= 1e5: c = π(∛x) >= 14 > PHI_A. x / p_i for i > c must be answerable: p_{c+1} > ∛x, so
     * x / p_{c+1} < x^(2/3) <= y. */
    unsigned c = (unsigned)pi_small(&t, cb), b = (unsigned)pi_small(&t, s);
    /* φ(x, c), unrolled here so that the cancel flag is seen between terms. */
    uint64_t r = phi_small(x, PHI_A);
    for (unsigned i = PHI_A + 1; i <= c; i++) {
        if (cancel && i % CANCEL_EVERY == 0 && atomic_load_explicit(cancel, memory_order_relaxed)) {
            pitab_free(&t);
            return -ECANCELED;
        }
        r -= phi(&t, x / t.primes[i], i - 1);
    }
    r += c - 1;
    for (unsigned i = c + 1; i <= b; i++)
        r -= pi_small(&t, x / t.primes[i]) - i + 1;
    pitab_free(&t);
    *out = r;
    return 0;
}
