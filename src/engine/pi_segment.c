/* pi_segment.c — the odd-number bit segments the hard-leaf (pi_hard.c) and P2 (pi_p2.c) sieves
 * fill: pre-sieve copy, clipping, popcount, and crossing off by the plan's primes from 17 up.
 *
 * A segment is scratch of one chunk: never shared, never allocated here.
 */
#include <string.h>

#include "pi_int.h"

void seg_presieve(struct seg *s)
{
    size_t off = (size_t)((s->lo >> 7) % PAT_WORDS), done = 0;
    while (done < s->nwords) {
        size_t n = PAT_WORDS - off;
        if (n > s->nwords - done) n = s->nwords - done;
        memcpy(s->w + done, pi_pat + off, n * sizeof *s->w);
        done += n;
        off = 0;
    }
}

void seg_clear_bits(struct seg *s, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) /* only at range ends: a few hundred bits at most */
        s->w[i >> 6] &= ~((uint64_t)1 << (i & 63));
}

uint64_t seg_popcount(const struct seg *s)
{
    uint64_t t = 0;
    for (size_t i = 0; i < s->nwords; i++)
        t += (uint64_t)__builtin_popcountll(s->w[i]);
    return t;
}

void seg_sieve_full(const pi_plan *pl, struct seg *s, uint64_t hi, uint64_t *next, uint32_t kmax)
{
    for (uint32_t k = PI_C + 1; k <= kmax; k++) {
        uint64_t p = pl->primes[k];
        if (p * p >= hi) break;
        uint64_t j;
        if (next) {
            j = next[k];
        } else {
            j = (s->lo + p - 1) / p * p;
            if (j < p * p) j = p * p;
            if (!(j & 1)) j += p;
        }
        for (; j < hi; j += 2 * p) {
            uint64_t i = (j - s->lo) >> 1;
            s->w[i >> 6] &= ~((uint64_t)1 << (i & 63));
        }
        if (next) next[k] = j;
    }
}
