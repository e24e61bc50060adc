/* presieve.c — the periodic patterns of presieve.h.
 *
 * A pattern for a set of primes P has period prod(P) bytes (30 prod(P) numbers). The first
 * pattern (7 … 19, 323 KB) is copied, the others (23 … 59) are AND-ed in by one fused pass, so
 * the segment is written once. To keep that pass in long straight runs, the short patterns are
 * stored repeated to at least REPEAT_MIN bytes (a whole number of periods): a run ends only where
 * one of the patterns wraps. One pattern for all primes would need ~10^20 bytes; a separate
 * pass per pattern costs a segment read+write each (measured: 18% of a count to 1e10).
 */
#include "presieve.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "wheel.h"

#define REPEAT_MIN 65536u
#define NPAT 5

struct pattern {
    uint32_t primes[5];
    size_t period; /* bytes: product of the primes */
    size_t len;    /* stored bytes: a multiple of period, >= REPEAT_MIN unless period is bigger */
    uint8_t *bytes;
};

/* Written once under pthread_once, read-only afterwards (pthread_once orders the writes). The
 * storage is static, so there is nothing to free and nothing can fail. */
static struct pattern g_pat[NPAT] = {
    {{7, 11, 13, 17, 19}, 7u * 11 * 13 * 17 * 19, 0, NULL},
    {{23, 29, 31, 0, 0}, 23u * 29 * 31, 0, NULL},
    {{37, 41, 0, 0, 0}, 37u * 41, 0, NULL},
    {{43, 47, 0, 0, 0}, 43u * 47, 0, NULL},
    {{53, 59, 0, 0, 0}, 53u * 59, 0, NULL},
};
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static uint8_t g_store[323323 + 4 * (REPEAT_MIN + 20677)];

static void build(void)
{
    uint8_t *at = g_store;
    for (size_t k = 0; k < NPAT; k++) {
        struct pattern *pt = &g_pat[k];
        pt->len = pt->period;
        while (pt->len < REPEAT_MIN)
            pt->len += pt->period;
        pt->bytes = at;
        at += pt->len;
        memset(pt->bytes, 0xff, pt->len);
        for (int j = 0; j < 5 && pt->primes[j]; j++) {
            uint64_t p = pt->primes[j];
            for (uint64_t m = p; m < 30 * (uint64_t)pt->len; m += p) {
                int bit = wheel_bit_of[m % 30];
                if (bit >= 0) pt->bytes[m / 30] &= (uint8_t) ~(1u << bit);
            }
        }
    }
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

void presieve_fill(uint8_t *dst, uint64_t byte_index, size_t n)
{
    pthread_once(&g_once, build);
    size_t off[NPAT];
    for (size_t k = 0; k < NPAT; k++)
        off[k] = (size_t)(byte_index % g_pat[k].period);
    const uint8_t *a = g_pat[0].bytes, *b = g_pat[1].bytes, *c = g_pat[2].bytes,
                  *d = g_pat[3].bytes, *e = g_pat[4].bytes;
    for (size_t done = 0; done < n;) {
        size_t run = n - done;
        for (size_t k = 0; k < NPAT; k++)
            if (g_pat[k].len - off[k] < run) run = g_pat[k].len - off[k];
        const uint8_t *pa = a + off[0], *pb = b + off[1], *pc = c + off[2], *pd = d + off[3],
                      *pe = e + off[4];
        uint8_t *o = dst + done;
        size_t i = 0;
        for (; i + 8 <= run; i += 8) {
            uint64_t v =
                load64(pa + i) & load64(pb + i) & load64(pc + i) & load64(pd + i) & load64(pe + i);
            memcpy(o + i, &v, 8);
        }
        for (; i < run; i++)
            o[i] = pa[i] & pb[i] & pc[i] & pd[i] & pe[i];
        for (size_t k = 0; k < NPAT; k++) {
            off[k] += run;
            if (off[k] == g_pat[k].len) off[k] = 0;
        }
        done += run;
    }
    /* Bytes 0 and 1 hold 1 (not prime) and the pattern primes themselves (7 … 59). */
    if (byte_index == 0 && n > 0) dst[0] = 0xfe; /* 7, 11, 13, 17, 19, 23, 29 are prime; 1 is not */
    if (byte_index <= 1 && byte_index + n > 1)
        dst[1 - byte_index] |= 0xdf; /* 31, 37, 41, 43, 47, 53, 59 (not 49) */
}
