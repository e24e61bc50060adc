/* sieve_kernels.h — the sieve's loops that vectorise, one variant per instruction set.
 *
 * The pre-sieve's AND of its patterns and the prime count of a window are the loops where wide
 * registers help; each comes as a portable baseline plus AVX2 / AVX-512 variants compiled with
 * __attribute__((target)), chosen at run time by what the CPU reports (cpuid). The portable one
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
};

/* The variant in use: the best supported one, or the one sieve_isa_select forced. Never NULL. */
const struct sieve_kernels *sieve_kernels(void);

/* Every variant, best last (index 0 is the portable one); sets *n. */
const struct sieve_kernels *sieve_kernels_all(size_t *n);

#endif
