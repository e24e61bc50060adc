/* pi_hard.c — the hard special leaves: φ(x / (m p_b), b − 1) counted while [0, dlim] is sieved
 * segment by segment, p_b crossed off after b's leaves, prefix counts from a counter per 1024
 * numbers. primecount's S2_hard (DR: m <= y < m p_b, x / (m p_b) > y) and D (Gourdon: m <= zg <
 * m p_b, P+(m) <= y, x / (m p_b) >= p_b²); the plan's mmax and gourdon flag choose.
 *
 * A chunk (a range of segments) knows nothing of the φ before it: it records per b its own
 * survivors (cnt) and Σ of its leaf signs (musum), and pi_plan_result adds the product later.
 * It sieves for itself rather than with sieve.c: b's leaves must be counted after p_{b−1} and
 * before p_b is crossed off, one prime at a time, with counters kept exact; sieve.c crosses every
 * prime of a segment in one pass (P2, which has no such order, uses sieve.c: pi_p2.c).
 */
#include <errno.h>
#include <string.h>

#include "pi_int.h"

/* One segment of odd numbers: bit i of w[] is lo + 2i + 1 (lo a multiple of 128), nwords words;
 * cnt[j] counts the set bits of words 8j … 8j+7. */
struct seg {
    uint64_t lo;
    uint64_t *w;
    uint32_t *cnt;
    size_t nwords;
    uint64_t total; /* set bits in w */
};

/* Copy the 3 … 13 pre-sieve pattern over all of s's words. */
static void seg_presieve(struct seg *s)
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

/* Clear bits [from, to). */
static void seg_clear_bits(struct seg *s, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) /* only at range ends: a few hundred bits at most */
        s->w[i >> 6] &= ~((uint64_t)1 << (i & 63));
}

/* Bits of the numbers <= n: [0, (n - lo + 1) / 2). */
static inline uint64_t seg_bits_upto(const struct seg *s, uint64_t n)
{
    return (n - s->lo + 1) >> 1;
}

/* Incremental prefix count for increasing queries: the counters below blk are summed in sum. */
struct walk {
    size_t blk;
    uint64_t sum;
};

static inline uint64_t seg_count(const struct seg *s, struct walk *wk, uint64_t k)
{
    size_t blk = (size_t)(k >> CNT_SHIFT);
    while (wk->blk < blk)
        wk->sum += s->cnt[wk->blk++];
    uint64_t r = wk->sum;
    size_t w1 = (size_t)(k >> 6);
    for (size_t w = blk << 3; w < w1; w++)
        r += (uint64_t)__builtin_popcountll(s->w[w]);
    if (k & 63) r += (uint64_t)__builtin_popcountll(s->w[w1] & (((uint64_t)1 << (k & 63)) - 1));
    return r;
}

/* One chunk's sieve state: the segment, each b's next odd multiple of p_b, the running sum. */
struct hard {
    const pi_plan *pl;
    struct chunk *ck;
    struct seg s;
    uint64_t *next; /* [b]: the next odd multiple of p_b at or above the current segment */
    size_t nwords, ncnt, nnext;
    i128 sum;
};

/* Segment [lo, hi) presieved and clipped to dlim, with its counters and total. */
static void hard_segment_fill(struct hard *h, uint64_t lo, uint64_t hi)
{
    struct seg *s = &h->s;
    s->lo = lo;
    seg_presieve(s);
    if (hi > h->pl->dlim + 1) seg_clear_bits(s, seg_bits_upto(s, h->pl->dlim), h->nwords * 64);
    s->total = 0;
    for (size_t j = 0; j < h->ncnt; j++) {
        uint32_t t = 0;
        for (size_t k = 0; k < 8; k++)
            t += (uint32_t)__builtin_popcountll(s->w[8 * j + k]);
        s->cnt[j] = t;
        s->total += t;
    }
}

/* b <= π(√M), M = mmax: m squarefree, odd, lpf(m) > p, in (max(xp / (top+1), M / p),
 * min(xp / lo, M)], and (Gourdon) m <= x / p³. */
static inline void hard_leaves_sqfree(struct hard *h, uint32_t b, uint64_t lo, uint64_t top)
{
    const pi_plan *pl = h->pl;
    const uint64_t y = pl->mmax, p = pl->primes[b], xp = pl->x / p;
    uint64_t phil = h->ck->cnt[b - PI_C - 1];
    int64_t *mus = &h->ck->musum[b - PI_C - 1];
    struct walk wk = {0, 0};
    uint64_t mlo = xp / (top + 1), mhi = lo ? xp / lo : y;
    if (mlo < y / p) mlo = y / p;
    if (mhi > y) mhi = y;
    if (pl->gourdon && mhi > xp / p / p) mhi = xp / p / p;
    if (mhi > 0 && !(mhi & 1)) mhi--;
    i128 sum = 0;
    for (uint64_t m = mhi; m > mlo && m > p; m -= 2) {
        int32_t v = pl->mulpf[m >> 1];
        if ((uint64_t)(v < 0 ? -(int64_t)v : v) <= p) continue;
        uint64_t n = xp / m;
        i128 phi = (i128)(phil + seg_count(&h->s, &wk, seg_bits_upto(&h->s, n)));
        if (v > 0) { /* μ(m) = 1: the leaf's sign is −μ(m) = −1 */
            sum -= phi;
            (*mus)--;
        } else {
            sum += phi;
            (*mus)++;
        }
    }
    h->sum += sum;
}

/* b > π(√mmax): m = q prime, p < q <= y, n = xp / q in [lo, top], and n > y (DR) or n >= p²
 * (Gourdon; q > zg / p holds as p > √zg). */
static inline void hard_leaves_prime(struct hard *h, uint32_t b, uint64_t lo, uint64_t top)
{
    const pi_plan *pl = h->pl;
    const uint64_t y = pl->y, p = pl->primes[b], xp = pl->x / p;
    uint64_t phil = h->ck->cnt[b - PI_C - 1];
    struct walk wk = {0, 0};
    uint64_t qhi = lo ? xp / lo : y, qlo = xp / (top + 1);
    if (qhi > y) qhi = y;
    uint64_t qcap = pl->gourdon ? xp / p / p : xp / (y + 1);
    if (qhi > qcap) qhi = qcap;
    if (qlo < p) qlo = p;
    if (qhi <= qlo) return;
    uint64_t l = pi_tab(pl, qhi), lmin = pi_tab(pl, qlo);
    h->ck->musum[b - PI_C - 1] += (int64_t)(l - lmin);
    i128 sum = 0;
    for (; l > lmin; l--) {
        uint64_t n = xp / pl->primes[l];
        sum += (i128)(phil + seg_count(&h->s, &wk, seg_bits_upto(&h->s, n)));
    }
    h->sum += sum;
}

/* Cross off p_b in [next[b], hi): odd multiples, keeping the counters and total (summing the
 * counter decrements in a register per block was measured: no gain). */
static inline void hard_cross_off(struct hard *h, uint32_t b, uint64_t lo, uint64_t hi)
{
    struct seg *s = &h->s;
    uint64_t *w = s->w, j = h->next[b], step = 2 * (uint64_t)h->pl->primes[b], total = s->total;
    uint32_t *cnt = s->cnt;
    for (; j < hi; j += step) {
        uint64_t i = (j - lo) >> 1, bit = (w[i >> 6] >> (i & 63)) & 1;
        w[i >> 6] &= ~((uint64_t)1 << (i & 63));
        cnt[i >> CNT_SHIFT] -= (uint32_t)bit;
        total -= bit;
    }
    s->total = total;
    h->next[b] = j;
}

/* One segment: every active b's leaves, then p_b crossed off. 0 or -ECANCELED. */
static int hard_segment(struct hard *h, uint64_t sidx, const atomic_int *cancel)
{
    const pi_plan *pl = h->pl;
    uint64_t lo = sidx * pl->seg, hi = lo + pl->seg; /* numbers [lo, hi), those > dlim ignored */
    hard_segment_fill(h, lo, hi);
    uint32_t bseg = pi_hard_bmax(pl, lo) < h->ck->bmax ? pi_hard_bmax(pl, lo) : h->ck->bmax;
    uint64_t top = hi - 1 < pl->dlim ? hi - 1 : pl->dlim;
    for (uint32_t b = PI_C + 1; b <= bseg; b++) {
        /* one b's m scan can be ~xp·S/lo² long: look at the flag per 16 b too */
        if (b % 16 == 0 && pi_cancelled(cancel)) return -ECANCELED;
        if (b <= pl->pi_sqrty)
            hard_leaves_sqfree(h, b, lo, top);
        else
            hard_leaves_prime(h, b, lo, top);
        h->ck->cnt[b - PI_C - 1] += h->s.total;
        hard_cross_off(h, b, lo, hi);
    }
    return 0;
}

/* Segments [ck->lo, ck->hi) of [0, dlim]. For every b the chunk keeps phi_local[b] (ck->cnt), the
 * survivors of p_1 … p_{b-1} in its earlier segments; a leaf's φ is (φ before the chunk) +
 * phi_local[b] + the segment's prefix count, and the unknown first term is added at combine
 * time as musum[b] × (φ before the chunk). */
int pi_hard_run(const pi_plan *pl, struct chunk *ck, const atomic_int *cancel)
{
    const uint32_t bmax = ck->bmax;
    struct hard h = {.pl = pl, .ck = ck, .nwords = pl->seg / 128, .ncnt = pl->seg / 1024};
    h.nnext = bmax + 1;
    h.s.nwords = h.nwords;
    int rc = -ENOMEM;
    if (!(h.s.w = pi_mem_get(h.nwords * 8)) || !(h.s.cnt = pi_mem_get(h.ncnt * 4)) ||
        !(h.next = pi_mem_get(h.nnext * 8)))
        goto out;
    memset(ck->musum, 0, (bmax - PI_C) * sizeof *ck->musum);
    memset(ck->cnt, 0, (bmax - PI_C) * sizeof *ck->cnt);
    uint64_t lo0 = ck->lo * pl->seg;
    for (uint32_t b = PI_C + 1; b <= bmax; b++) {
        uint64_t p = pl->primes[b], m = (lo0 + p - 1) / p * p;
        h.next[b] = m & 1 ? m : m + p;
    }
    rc = 0;
    for (uint64_t sidx = ck->lo; sidx < ck->hi && rc == 0; sidx++)
        rc = pi_cancelled(cancel) ? -ECANCELED : hard_segment(&h, sidx, cancel);
    if (rc == 0) ck->sum = h.sum;
out:
    pi_mem_put(h.next, h.nnext * 8);
    pi_mem_put(h.s.cnt, h.ncnt * 4);
    pi_mem_put(h.s.w, h.nwords * 8);
    return rc;
}
