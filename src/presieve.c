/* presieve.c — the periodic patterns of presieve.h.
 *
 * A pattern for a set of primes P has period prod(P) bytes (30 prod(P) numbers). Four patterns
 * cover 7 … 43: the first is copied, the others AND-ed in, each pass running over a segment
 * that is in L1/L2 anyway. One pattern for all of them would have a period of ~10^16 bytes; more
 * patterns of smaller primes each would cost more passes than they save.
 */
#include "primed/presieve.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "primed/wheel.h"

struct pattern {
    uint32_t primes[5];
    size_t len; /* bytes: product of the primes */
    uint8_t *bytes;
};

/* Written once under pthread_once, read-only afterwards (pthread_once orders the writes). */
static struct pattern g_pat[] = {
    {{7, 11, 13, 17, 19}, 7u * 11 * 13 * 17 * 19, NULL},
    {{23, 29, 31, 0, 0}, 23u * 29 * 31, NULL},
    {{37, 41, 0, 0, 0}, 37u * 41, NULL},
    {{43, 0, 0, 0, 0}, 43u, NULL},
};
#define NPAT (sizeof g_pat / sizeof g_pat[0])
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
/* Storage for all patterns: static, so there is nothing to free and nothing can fail. */
static uint8_t g_store[7u * 11 * 13 * 17 * 19 + 23u * 29 * 31 + 37u * 41 + 43u];

static void build(void)
{
    uint8_t *at = g_store;
    for (size_t k = 0; k < NPAT; k++) {
        struct pattern *pt = &g_pat[k];
        pt->bytes = at;
        at += pt->len;
        memset(pt->bytes, 0xff, pt->len);
        for (int j = 0; j < 5 && pt->primes[j]; j++) {
            uint64_t p = pt->primes[j];
            /* multiples p*n, n coprime to 30, over one period of 30*len numbers */
            for (uint64_t n = 1; p * n < 30 * (uint64_t)pt->len; n++) {
                uint64_t m = p * n;
                int bit = wheel_bit_of[m % 30];
                if (bit >= 0)
                    pt->bytes[m / 30] &= (uint8_t) ~(1u << bit);
            }
        }
    }
}

static void apply(const struct pattern *pt, uint8_t *dst, uint64_t byte_index, size_t n, int first)
{
    size_t off = (size_t)(byte_index % pt->len);
    while (n > 0) {
        size_t run = pt->len - off;
        if (run > n)
            run = n;
        if (first) {
            memcpy(dst, pt->bytes + off, run);
        } else {
            const uint8_t *src = pt->bytes + off;
            for (size_t i = 0; i < run; i++)
                dst[i] &= src[i];
        }
        dst += run;
        n -= run;
        off = 0;
    }
}

void presieve_fill(uint8_t *dst, uint64_t byte_index, size_t n)
{
    pthread_once(&g_once, build);
    for (size_t k = 0; k < NPAT; k++)
        apply(&g_pat[k], dst, byte_index, n, k == 0);
    /* Bytes 0 and 1 hold 1 (not prime) and the pattern primes themselves (all <= 59). */
    if (byte_index == 0 && n > 0)
        dst[0] = (uint8_t)((dst[0] & ~1u) | 0xfe); /* 7..29 are all prime; 1 is not */
    if (byte_index <= 1 && byte_index + n > 1)
        dst[1 - byte_index] |= (uint8_t)((1u << 0) | (1u << 1) | (1u << 2) | (1u << 3) |
                                         (1u << 4)); /* 31, 37, 41, 43, 47 */
}
