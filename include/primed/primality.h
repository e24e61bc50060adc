/* primality.h — deterministic primality for every 64-bit integer.
 *
 * Miller–Rabin with a base set proven to have no 64-bit strong pseudoprime, using Montgomery (or
 * 128-bit) multiplication. Pure functions: no allocation, no global state, safe from any thread.
 */
#ifndef PRIMED_PRIMALITY_H
#define PRIMED_PRIMALITY_H

#include <stdbool.h>
#include <stdint.h>

bool primality_is_prime(uint64_t n);

/* Smallest prime > n. Returns false when none fits in 64 bits (n >= 18446744073709551557). */
bool primality_next(uint64_t n, uint64_t *out);

/* Largest prime < n. Returns false when none exists (n <= 2). */
bool primality_prev(uint64_t n, uint64_t *out);

/* floor(sqrt(n)), exact for every 64-bit n (isqrt(2^64 - 1) = 2^32 - 1). */
uint64_t primality_isqrt(uint64_t n);

#endif
