/* sieve_kernels.h — the sieve's loops that vectorise, one variant per instruction set.
 *
 * The pre-sieve's AND of its patterns, the prime count of a window and the big primes' first
 * multiples (one division each per window) are the loops where wide registers help; each comes
 * as a portable baseline plus AVX2 / AVX-512 variants compiled with __attribute__((target)),
 * chosen at run time by what the CPU reports (cpuid). The portable one
 * is the reference: every variant must give identical bytes and counts (tests/test_sieve_kernels.c
 * forces each one this CPU supports). Never allocates, never fails.
 */
#ifndef PRIMED_SIEVE_KERNELS_H
#define PRIMED_SIEVE_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIEVE_KERNEL_STREAMS 16 /* patterns AND-ed by and_streams (presieve.c has 16) */

struct sieve_kernels {
    const char *name;
    bool (*supported)(void); /* whether this CPU runs the variant */
    /* dst[i] = src[0][i] & src[1][i] & … & src[15][i] for i < n (n any size) */
    void (*and_streams)(uint8_t *dst, const uint8_t *const src[SIEVE_KERNEL_STREAMS], size_t n);
    /* set bits of buf[0 … n), n a multiple of 8 */
    uint64_t (*popcount)(const uint8_t *buf, size_t n);
    /* The big primes' first multiples in a window (sieve_big.c): for each i < n, with
     * 2^16 <= p[i] < 2^32 coprime to 30 and W0 a multiple of 30, the first multiple
     * m = p[i]*k >= max(W0, p[i]^2) with k coprime to 30. When m - W0 <= span (< 2^30):
     * hit[h] = i and ow[h] = (m - W0) / 30 << 3 | wheel index of k (wheel.h), h counting up
     * from 0 in order of i; hit and ow have room for n + 7 entries (a variant may write up
     * to 7 more than it returns). Returns h. The same answers as wheel_first_multiple.
     * NULL in a variant without one: the caller's scalar loop is the reference. */
    size_t (*first_multiples)(const uint32_t *p, size_t n, uint64_t W0, uint64_t span,
                              uint32_t *hit, uint32_t *ow);
};

/* The variant in use: the best supported one, or the one sieve_isa_select forced. Never NULL. */
const struct sieve_kernels *sieve_kernels(void);

/* Every variant, best last (index 0 is the portable one); sets *n. */
const struct sieve_kernels *sieve_kernels_all(size_t *n);

#endif
