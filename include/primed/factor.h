/* factor.h — the prime factorization of every 64-bit integer.
 *
 * Trial division by the small primes, then Pollard–Brent rho on what is left, each cofactor
 * settled by the deterministic Miller–Rabin of primality.h. Exact for every n < 2^64 (rho only
 * finds factors; Miller–Rabin proves the leaves prime). Pure: no allocation, no global state,
 * safe from any thread; worst case (two ~32-bit primes) well under a millisecond.
 */
#ifndef PRIMED_FACTOR_H
#define PRIMED_FACTOR_H

#include <stdint.h>

/* The product of the first 16 primes exceeds 2^64: no n has more distinct prime factors. */
#define FACTOR_MAX 15

struct factor {
    uint64_t p; /* a prime */
    unsigned e; /* its exponent, >= 1 */
};

/* n's distinct prime factors in ascending order with their exponents, into out; returns how
 * many (0 for n = 1, and for n = 0, which has no factorization: callers refuse it). */
unsigned factor_u64(uint64_t n, struct factor out[FACTOR_MAX]);

#endif
