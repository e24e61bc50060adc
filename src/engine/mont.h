/* mont.h — Montgomery arithmetic modulo an odd 64-bit n (R = 2^64), shared by Miller–Rabin
 * (primality.c) and Pollard–Brent (factor.c). It avoids a 128-by-64 division per modular
 * multiplication (__umodti3 is ~3x slower here). Internal to the engine; n must be odd.
 */
#ifndef PRIMED_MONT_H
#define PRIMED_MONT_H

#include <stdint.h>

/* Montgomery form modulo odd n with R = 2^64. */
struct mont {
    uint64_t n;
    uint64_t ninv; /* n^-1 mod 2^64 */
    uint64_t r1;   /* R mod n: Montgomery 1 */
    uint64_t r2;   /* R^2 mod n */
};

static inline uint64_t redc(const struct mont *m, __uint128_t t)
{
    /* q*n agrees with t in the low 64 bits, so (t - q*n)/R is the high half difference; it lies
     * in (-n, n) and one conditional add fixes the sign. No 128-bit overflow even for n ~ 2^64. */
    uint64_t q = (uint64_t)t * m->ninv;
    uint64_t th = (uint64_t)(t >> 64);
    uint64_t qh = (uint64_t)(((__uint128_t)q * m->n) >> 64);
    uint64_t r = th - qh;
    return th < qh ? r + m->n : r;
}

static inline uint64_t mmul(const struct mont *m, uint64_t a, uint64_t b)
{
    return redc(m, (__uint128_t)a * b);
}

static inline void mont_init(struct mont *m, uint64_t n)
{
    uint64_t inv = n; /* correct to 3 bits for odd n; each Newton step doubles them */
    for (int i = 0; i < 5; i++)
        inv *= 2 - n * inv;
    m->n = n;
    m->ninv = inv;
    m->r1 = (uint64_t)(-n) % n;
    m->r2 = (uint64_t)(((__uint128_t)m->r1 * m->r1) % n);
}

#endif
