/* factor.c — see factor.h.
 *
 * Small factors by trial division (the primes below 64 cover most of a random n's factors),
 * then every composite left is split by Pollard's rho with Brent's cycle detection and batched
 * gcds (one gcd per FACTOR_BATCH steps), in Montgomery arithmetic (mont.h); the pieces are
 * split again until Miller–Rabin calls each prime. Expected steps to find a prime factor p are
 * ~√p, so at most ~2^16 for n < 2^64 (two 32-bit primes): ~0.5 ms on one core. SQUFOF or
 * Lenstra's ECM would be faster on a few inputs but are much longer to get right; a squarefree
 * check (isqrt) takes care of the prime squares rho is slowest on.
 */
#include "primed/factor.h"

#include <stdbool.h>

#include "mont.h"
#include "primed/primality.h"

#define FACTOR_BATCH 128 /* rho steps per gcd */
/* Trial division covers these primes; a cofactor below SMALL_LIMIT^2 is 1 or a prime. */
static const uint8_t small_primes[] = {2,  3,  5,  7,  11, 13, 17, 19, 23,
                                       29, 31, 37, 41, 43, 47, 53, 59, 61};
#define SMALL_LIMIT 67u

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    if (a == 0) return b;
    if (b == 0) return a;
    int shift = __builtin_ctzll(a | b);
    a >>= __builtin_ctzll(a);
    while (b) {
        b >>= __builtin_ctzll(b);
        if (a > b) {
            uint64_t t = a;
            a = b;
            b = t;
        }
        b -= a;
    }
    return a << shift;
}

/* x^2 + c in Montgomery form, mod n (x, c < n; the sum may pass 2^64 for n near it). */
static inline uint64_t rho_step(const struct mont *m, uint64_t x, uint64_t c)
{
    uint64_t s = mmul(m, x, x), t = s + c;
    return t < s || t >= m->n ? t - m->n : t;
}

static inline uint64_t absdiff(uint64_t a, uint64_t b)
{
    return a > b ? a - b : b - a;
}

/* A non-trivial factor of the odd composite n by Brent's rho with constant c, or n when this c
 * fails (the caller tries the next). The product of differences is kept in Montgomery form:
 * R is coprime to n, so its gcd with n is that of the plain product. */
static uint64_t rho_brent(uint64_t n, uint64_t c)
{
    struct mont m;
    mont_init(&m, n);
    uint64_t y = m.r1 + m.r1 >= n ? m.r1 + m.r1 - n : m.r1 + m.r1, x = y, ys = y, q = m.r1;
    uint64_t g = 1;
    for (uint64_t r = 1; g == 1; r <<= 1) {
        x = y;
        for (uint64_t i = 0; i < r; i++)
            y = rho_step(&m, y, c);
        for (uint64_t k = 0; k < r && g == 1; k += FACTOR_BATCH) {
            ys = y;
            uint64_t steps = r - k < FACTOR_BATCH ? r - k : FACTOR_BATCH;
            for (uint64_t i = 0; i < steps; i++) {
                y = rho_step(&m, y, c);
                q = mmul(&m, q, absdiff(x, y));
            }
            g = gcd_u64(q, n);
        }
    }
    if (g == n) { /* the batch overshot (or q hit 0): redo it one step at a time */
        do {
            ys = rho_step(&m, ys, c);
            g = gcd_u64(absdiff(x, ys), n);
        } while (g == 1);
    }
    return g;
}

/* Add p^e to out (n of them so far), keeping it sorted and merging a repeated p. */
static unsigned add_factor(struct factor *out, unsigned n, uint64_t p, unsigned e)
{
    unsigned i = 0;
    while (i < n && out[i].p < p)
        i++;
    if (i < n && out[i].p == p) {
        out[i].e += e;
        return n;
    }
    for (unsigned j = n; j > i; j--)
        out[j] = out[j - 1];
    out[i] = (struct factor){.p = p, .e = e};
    return n + 1;
}

/* Split the odd m (no factor below SMALL_LIMIT) into primes, into out. At most 63 pieces are
 * pending at once (each is >= 67, and their product is m < 2^64), so the stack is bounded. */
static unsigned split(uint64_t m, struct factor *out, unsigned n)
{
    uint64_t stack[64];
    unsigned top = 0;
    stack[top++] = m;
    while (top) {
        uint64_t v = stack[--top];
        if (v == 1) continue;
        if (v < (uint64_t)SMALL_LIMIT * SMALL_LIMIT || primality_is_prime(v)) {
            n = add_factor(out, n, v, 1);
            continue;
        }
        uint64_t r = primality_isqrt(v), d = v;
        if (r * r == v) {
            d = r;
        } else {
            for (uint64_t c = 1; d == v; c++)
                d = rho_brent(v, c);
        }
        stack[top++] = d;
        stack[top++] = v / d;
    }
    return n;
}

unsigned factor_u64(uint64_t n, struct factor out[FACTOR_MAX])
{
    unsigned k = 0;
    if (n < 2) return 0;
    for (unsigned i = 0; i < sizeof small_primes; i++) {
        uint64_t p = small_primes[i];
        unsigned e = 0;
        while (n % p == 0) {
            n /= p;
            e++;
        }
        if (e) out[k++] = (struct factor){.p = p, .e = e};
    }
    return n == 1 ? k : split(n, out, k);
}
