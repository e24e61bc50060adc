/* presieve.c — the periodic patterns of presieve.h.
 *
 * A pattern for a set of primes P has period prod(P) bytes (30 prod(P) numbers). The 35 primes
 * 7 … 163 are grouped into 16 patterns of at most ~33 KB each (a quadruple, two triples, twelve
 * pairs, one single); a segment is their AND, written once by one vector kernel
 * (sieve_kernels.h). Each pattern is stored one period plus RUN bytes long, so that from any
 * phase RUN bytes can be read straight: the fill proceeds in runs of RUN bytes, re-deriving each
 * phase with one modulo per run.
 * Measured (count [0, 1e10], gperftools): before, 7 … 59 in 5 patterns (a 323 KB copy of 7 … 19
 * and 4 AND-ed ones) and 61 … 163 crossed off one by one by the small-prime loop, which was 88 %
 * of the time; the primes 61 … 163 make about a fifth of those crossings, and AND-ing 16 streams
 * with 32- or 64-byte vectors costs a fraction of that (docs/sieve.md has the numbers).
 * Rejected: one pattern per prime (35 streams: twice the loads); larger groups (7·11·13·17·19 is
 * 323 KB, a third of L2, and evicts the segment).
 */
#include "presieve.h"

#include <pthread.h>
#include <string.h>

#include "sieve_kernels.h"
#include "wheel.h"

#define NPAT SIEVE_KERNEL_STREAMS
#define RUN 8192u       /* bytes per kernel call: the kernel's dst stays in L1 between passes */
#define PERIODS 180706u /* sum of the 16 periods below (build() checks) */
#define SMALL_BYTES 6   /* bytes 0 … 5 hold 1 … 179, which contain the pattern primes */

static const uint16_t g_groups[NPAT][4] = {
    {7, 11, 13, 17}, {19, 23, 67}, {29, 31, 37}, {41, 163}, {43, 157}, {47, 151},
    {53, 149},       {59, 139},    {61, 137},    {71, 131}, {73, 127}, {79, 113},
    {83, 109},       {89, 107},    {97, 103},    {101},
};

/* Written once under pthread_once, read-only afterwards (pthread_once orders the writes). The
 * storage is static, so there is nothing to free and nothing can fail. */
static size_t g_period[NPAT];
static const uint8_t *g_bytes[NPAT];
static uint8_t g_small[SMALL_BYTES]; /* the exact prime bitmap of 0 … 179 */
static uint8_t g_store[PERIODS + NPAT * RUN];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int is_small_prime(unsigned n)
{
    if (n < 2) return 0;
    for (unsigned d = 2; d * d <= n; d++)
        if (n % d == 0) return 0;
    return 1;
}

static void build(void)
{
    uint8_t *at = g_store;
    for (size_t k = 0; k < NPAT; k++) {
        size_t period = 1;
        for (int j = 0; j < 4 && g_groups[k][j]; j++)
            period *= g_groups[k][j];
        size_t len = period + RUN;
        if (at + len > g_store + sizeof g_store) __builtin_trap(); /* PERIODS is wrong */
        memset(at, 0xff, len);
        for (int j = 0; j < 4 && g_groups[k][j]; j++) {
            uint64_t p = g_groups[k][j];
            for (uint64_t m = p; m < 30 * (uint64_t)len; m += p) {
                int bit = wheel_bit_of[m % 30];
                if (bit >= 0) at[m / 30] &= (uint8_t) ~(1u << bit);
            }
        }
        g_period[k] = period;
        g_bytes[k] = at;
        at += len;
    }
    for (unsigned i = 0; i < SMALL_BYTES; i++)
        for (unsigned b = 0; b < 8; b++)
            if (is_small_prime(30 * i + wheel_residue[b])) g_small[i] |= (uint8_t)(1u << b);
}

void presieve_fill(uint8_t *dst, uint64_t byte_index, size_t n)
{
    pthread_once(&g_once, build);
    const struct sieve_kernels *kern = sieve_kernels();
    size_t off[NPAT];
    for (size_t k = 0; k < NPAT; k++)
        off[k] = (size_t)(byte_index % g_period[k]);
    for (size_t done = 0; done < n;) {
        size_t run = n - done < RUN ? n - done : RUN;
        const uint8_t *src[NPAT];
        for (size_t k = 0; k < NPAT; k++)
            src[k] = g_bytes[k] + off[k]; /* off < period: period + RUN stored bytes suffice */
        kern->and_streams(dst + done, src, run);
        for (size_t k = 0; k < NPAT; k++)
            off[k] = (off[k] + run) % g_period[k];
        done += run;
    }
    /* The patterns cleared the primes 7 … 163 themselves (and left 1): bytes 0 … 5 (numbers up
     * to 179, whose composites all have a factor ≤ 13) take the exact bitmap. */
    for (uint64_t i = byte_index; i < SMALL_BYTES && i < byte_index + n; i++)
        dst[i - byte_index] = g_small[i];
}
