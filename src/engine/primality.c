/* primality.c — deterministic Miller–Rabin for every 64-bit integer.
 *
 * Trial division by the primes up to 53 first (it settles most composites and every n < 59^2),
 * then strong-probable-prime tests to the 7 bases of Jim Sinclair (2011), proven to have no
 * common strong pseudoprime below 2^64. Arithmetic is Montgomery (REDC) on 64-bit words, which
 * avoids a 128-by-64 division per multiplication. Pure functions: no allocation, no state.
 */
#include "primed/primality.h"

#include <math.h>

#include "mont.h"

static const uint8_t small_primes[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53};
#define SMALL_N (sizeof small_primes / sizeof small_primes[0])
#define SMALL_COVERS 3481u /* 59^2: after trial division by primes <= 53, smaller n are prime */

/* Strong probable prime to base a (n odd, n > a is not required). */
static bool sprp(const struct mont *m, uint64_t a, uint64_t d, int s)
{
    a %= m->n;
    if (a == 0) return true; /* the base says nothing about n */
    uint64_t one = m->r1, minus_one = m->n - m->r1;
    uint64_t x = one, b = mmul(m, a, m->r2);
    for (uint64_t e = d; e; e >>= 1) {
        if (e & 1) x = mmul(m, x, b);
        b = mmul(m, b, b);
    }
    if (x == one || x == minus_one) return true;
    for (int i = 1; i < s; i++) {
        x = mmul(m, x, x);
        if (x == minus_one) return true;
        if (x == one) return false;
    }
    return false;
}

bool primality_is_prime(uint64_t n)
{
    if (n < 2) return false;
    for (unsigned i = 0; i < SMALL_N; i++) {
        if (n == small_primes[i]) return true;
        if (n % small_primes[i] == 0) return false;
    }
    if (n < SMALL_COVERS) return true;
    static const uint64_t bases[] = {2, 325, 9375, 28178, 450775, 9780504, 1795265022};
    struct mont m;
    mont_init(&m, n);
    uint64_t d = n - 1;
    int s = __builtin_ctzll(d);
    d >>= s;
    for (unsigned i = 0; i < sizeof bases / sizeof bases[0]; i++)
        if (!sprp(&m, bases[i], d, s)) return false;
    return true;
}

#define LARGEST_PRIME_64 18446744073709551557u /* 2^64 - 59 */

bool primality_next(uint64_t n, uint64_t *out)
{
    if (n >= LARGEST_PRIME_64) return false;
    if (n < 2) {
        *out = 2;
        return true;
    }
    uint64_t c = (n + 1) | 1; /* odd candidate > n; n < 2^64-59 so no wrap */
    while (!primality_is_prime(c))
        c += 2; /* stops at LARGEST_PRIME_64 at the latest */
    *out = c;
    return true;
}

bool primality_prev(uint64_t n, uint64_t *out)
{
    if (n <= 2) return false;
    if (n == 3) {
        *out = 2;
        return true;
    }
    uint64_t c = (n - 1) | 1;
    if (c >= n) c -= 2;
    while (!primality_is_prime(c))
        c -= 2; /* stops at 3 at the latest */
    *out = c;
    return true;
}

uint64_t primality_isqrt(uint64_t n)
{
    /* sqrtl is within a unit of the answer for 64-bit n; the two loops correct it exactly. */
    uint64_t r = (uint64_t)sqrtl((long double)n);
    while ((__uint128_t)r * r > n)
        r--;
    while ((__uint128_t)(r + 1) * (r + 1) <= n)
        r++;
    return r;
}
