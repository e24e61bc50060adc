/* pi.c — π(x) for every 64-bit x by the Deléglise–Rivat method, as a plan of independent chunks.
 *
 * With y = α·x^(1/3) (x^(1/3) <= y <= x^(1/2)), z = x / y, a = π(y) and c = 6 (p_c = 13):
 *     π(x) = φ(x, a) + a − 1 − P2,   P2 = Σ_{a < i <= π(√x)} (π(x / p_i) − i + 1)
 *     φ(x, a) = S1 + S2,   S1 = Σ_{n <= y, p|n ⇒ p > 13} μ(n) φ(x / n, c)   (ordinary leaves)
 *     S2 = − Σ_{b > c} Σ_{m <= y < m·p_b, lpf(m) > p_b} μ(m) φ(x / (m p_b), b − 1)  (special)
 * Special leaves with p_b <= √y are "hard" (any squarefree m); with p_b > √y, m is a prime q
 * and the leaf φ(n, b − 1), n = x / (p_b q), is trivial (n < p_b: 1), easy (n <= y: π(n) − b + 2
 * from a π table, consecutive q with equal π(n) summed at once) or hard (n > y). Hard leaves
 * are counted while sieving [0, z] segment by segment, crossing off p_b after b's leaves, with
 * a bit per odd number and a counter per 1024 numbers for the prefix counts. P2 sieves [y, z].
 *
 * Chunks: hard leaves by segment ranges (each keeps per-b partial φ counts and Σμ, combined in
 * order at the end — the φ before a chunk is the sum of earlier chunks' counts), P2 by segment
 * ranges (primes counted per chunk, prefix-summed at the end), easy leaves by b ranges, S1 by n
 * ranges. Each chunk derives its starting state (first multiples) itself. Everything a chunk
 * writes is its own slot; the plan's tables are read-only once built. Never aborts on ENOMEM.
 *
 * Rejected: a Fenwick tree for the prefix counts (O(log S) queries, but every cross-off would
 * pay O(log S) too, and cross-offs outnumber queries ~10:1 at 1e16); Gourdon's variant (about
 * 2x faster in primecount, twice the formulas; this meets the 2.5x-of-primecount target);
 * double-precision quotients in the leaf loops (measured 30 % slower than DIV on this EPYC).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "primed/pi.h"
#include "primed/primality.h"

typedef __int128 i128;
typedef unsigned __int128 u128;

#define PI_C 6           /* φ(n, c) for p_c = 13 from one period of 30030 */
#define PHI_Q 30030u     /* 2·3·5·7·11·13 */
#define PHI_PERIOD 5760u /* φ(30030, 6) */
#define PAT_WORDS 15015u /* pre-sieve period in 64-bit words of odd numbers (128 numbers) */
#define CNT_SHIFT 9      /* one counter per 512 bits = 1024 numbers */
#define SEG_DEFAULT (1u << 19)
#define DR_MIN 10000u             /* below this, count with a plain sieve */
#define CANCEL_EVERY 4096u        /* loop steps between looks at the cancel flag in table builds */
#define HARD_SLOT_CAP (24u << 20) /* bytes of per-chunk φ/μ arrays before fewer hard chunks */

/* ---------------------------------------------------------------- budget */

/* Written by every allocation and free below, on any thread (relaxed: a counter, it orders
 * nothing; the CAS makes the limit check and the add one step). */
static atomic_uint_fast64_t mem_used;
static atomic_uint_fast64_t mem_peak;
static atomic_uint_fast64_t mem_limit = PI_MEM_LIMIT_DEFAULT;

static void *mem_get(size_t n)
{
    if (n == 0) n = 1;
    uint64_t cur = atomic_load_explicit(&mem_used, memory_order_relaxed);
    uint64_t lim = atomic_load_explicit(&mem_limit, memory_order_relaxed);
    do {
        if (n > lim || cur > lim - n) return NULL;
    } while (!atomic_compare_exchange_weak_explicit(&mem_used, &cur, cur + n, memory_order_relaxed,
                                                    memory_order_relaxed));
    void *p = calloc(1, n);
    if (!p) {
        atomic_fetch_sub_explicit(&mem_used, n, memory_order_relaxed);
        return NULL;
    }
    uint64_t now = cur + n, pk = atomic_load_explicit(&mem_peak, memory_order_relaxed);
    while (pk < now && !atomic_compare_exchange_weak_explicit(
                           &mem_peak, &pk, now, memory_order_relaxed, memory_order_relaxed)) {
    }
    return p;
}

static void mem_put(void *p, size_t n)
{
    if (!p) return;
    if (n == 0) n = 1;
    free(p);
    atomic_fetch_sub_explicit(&mem_used, n, memory_order_relaxed);
}

void pi_mem_stats_get(struct pi_mem_stats *out)
{
    out->in_use = atomic_load_explicit(&mem_used, memory_order_relaxed);
    out->peak = atomic_load_explicit(&mem_peak, memory_order_relaxed);
    out->limit = atomic_load_explicit(&mem_limit, memory_order_relaxed);
}

void pi_mem_set_limit(uint64_t bytes)
{
    atomic_store_explicit(&mem_limit, bytes, memory_order_relaxed);
}

/* ---------------------------------------------------------------- per-process tables */

/* phi_tab[r] = #{1 <= k <= r : gcd(k, 30030) = 1}; pat[w]: bit i set iff 128w + 2i + 1 has no
 * factor 3 … 13 (so 1 is set and 3 … 13 are not). Built once (pthread_once), never freed:
 * 180 KB of static storage, the same for every call. */
static uint16_t phi_tab[PHI_Q];
static uint64_t pat[PAT_WORDS];
static pthread_once_t tabs_once = PTHREAD_ONCE_INIT;

static void tabs_build(void)
{
    unsigned n = 0;
    for (unsigned r = 0; r < PHI_Q; r++) {
        n += r % 2 && r % 3 && r % 5 && r % 7 && r % 11 && r % 13;
        phi_tab[r] = (uint16_t)n;
    }
    for (unsigned w = 0; w < PAT_WORDS; w++) {
        uint64_t v = 0;
        for (unsigned i = 0; i < 64; i++) {
            uint64_t m = 128 * (uint64_t)w + 2 * i + 1;
            if (m % 3 && m % 5 && m % 7 && m % 11 && m % 13) v |= (uint64_t)1 << i;
        }
        pat[w] = v;
    }
}

static inline uint64_t phi_c(uint64_t n)
{
    return n / PHI_Q * PHI_PERIOD + phi_tab[n % PHI_Q];
}

/* ---------------------------------------------------------------- integer roots */

static uint64_t icbrt(uint64_t x)
{
    uint64_t r = (uint64_t)cbrtl((long double)x);
    while (r > 0 && (u128)r * r * r > x)
        r--;
    while ((u128)(r + 1) * (r + 1) * (r + 1) <= x)
        r++;
    return r;
}

/* ---------------------------------------------------------------- the plan */

enum chunk_kind { CK_HARD, CK_P2, CK_EASY, CK_S1 };

struct chunk {
    enum chunk_kind kind;
    uint64_t lo,
        hi;         /* HARD, P2: segment indices [lo, hi); EASY: b in [lo, hi); S1: n in [lo, hi) */
    uint32_t bmax;  /* HARD: leaves and counts for c < b <= bmax */
    int64_t *musum; /* HARD: [b - c - 1], Σ of the leaf signs for b in this chunk */
    uint64_t *cnt;  /* HARD: [b - c - 1], survivors of p_1 … p_{b-1} in this chunk */
    /* Results, written only by the thread running the chunk, then published by `done`. */
    i128 sum;         /* HARD: Σ sign·(local φ); P2: Σ local π; EASY, S1: the sum */
    uint64_t nprimes; /* P2: primes in the chunk's numbers */
    uint64_t nleaves; /* P2: primes p with x / p in the chunk's numbers */
    atomic_int done;  /* 1 after a complete run: store release by the runner, load acquire by
                         pi_plan_result; reset (relaxed) when a run starts */
};

struct pient {
    uint64_t bits;   /* bit i: 128w + 2i + 1 is an odd prime */
    uint64_t before; /* odd primes below 128w */
};

struct pi_plan {
    uint64_t x, y, z, sqrtx, seg;
    uint64_t small_pi; /* x < DR_MIN: the answer, computed at create; nchunks = 0 */
    bool small;
    uint32_t a;        /* π(y) */
    uint32_t pi_sqrty; /* π(√y) */
    uint32_t b_hard;   /* hard leaves have b <= b_hard = min(a - 1, π(√z)) */
    uint64_t p2_base;  /* P2 segment s covers [p2_base + s·seg, p2_base + (s+1)·seg) */
    /* Read-only after create. */
    uint64_t ylim;    /* tables cover [0, ylim], ylim > y, primes[a + 1] exists */
    uint32_t *primes; /* primes[1] = 2 … primes[np]; primes[0] = 0 */
    uint32_t np;
    struct pient *pt; /* π table: one entry per 128 numbers (bits and count side by side, so
                         a lookup touches one cache line) */
    int32_t *mulpf;   /* odd m <= y: 0 if μ(m) = 0, else μ(m)·lpf(m) (m = 1: 1) */
    size_t primes_bytes, pt_bytes, mulpf_bytes;
    uint64_t nchunks;
    struct chunk *chunks;
    size_t chunks_bytes;
    int64_t *slot_mem; /* backing store of every hard chunk's musum and cnt */
    size_t slot_bytes;
};

/* π(n) for n <= ylim. */
static inline uint64_t pi_tab(const pi_plan *pl, uint64_t n)
{
    if (n < 2) return 0;
    uint64_t w = n >> 7;
    unsigned nb = (unsigned)(((n & 127) + 1) >> 1);
    uint64_t mask = nb == 64 ? UINT64_MAX : ((uint64_t)1 << nb) - 1;
    return 1 + pl->pt[w].before + (uint64_t)__builtin_popcountll(pl->pt[w].bits & mask);
}

static inline bool cancelled(const atomic_int *cancel)
{
    return cancel && atomic_load_explicit(cancel, memory_order_relaxed) != 0;
}

/* The largest b with hard leaves at or above lo: p_b² < x / lo, and b <= b_hard. */
static uint32_t hard_bmax(const pi_plan *pl, uint64_t lo)
{
    uint32_t bm = pl->b_hard;
    if (lo > 0) {
        uint64_t r = primality_isqrt(pl->x / lo);
        if (r < pl->ylim && pi_tab(pl, r) < bm) bm = (uint32_t)pi_tab(pl, r);
    }
    return bm;
}

/* Odd primes up to ylim in the π table, their running counts, the list. */
static int tables_primes(pi_plan *pl, const atomic_int *cancel)
{
    uint64_t words = (pl->ylim >> 7) + 1;
    pl->pt_bytes = words * sizeof *pl->pt;
    if (!(pl->pt = mem_get(pl->pt_bytes))) return -ENOMEM;
    struct pient *t = pl->pt;
    for (uint64_t w = 0; w < words; w++)
        t[w].bits = UINT64_MAX;
    t[0].bits &= ~(uint64_t)1;           /* 1 */
    uint64_t nbits = (pl->ylim + 1) / 2; /* odd numbers 1 … ylim */
    for (uint64_t i = nbits; i < words * 64; i++)
        t[i >> 6].bits &= ~((uint64_t)1 << (i & 63));
    uint64_t r = primality_isqrt(pl->ylim);
    for (uint64_t p = 3; p <= r; p += 2) {
        if (!(t[p >> 7].bits >> ((p & 127) >> 1) & 1)) continue;
        if (cancelled(cancel)) return -ECANCELED; /* <= √ylim (~5000) primes */
        for (uint64_t m = p * p; m <= pl->ylim; m += 2 * p)
            t[m >> 7].bits &= ~((uint64_t)1 << ((m & 127) >> 1));
    }
    uint64_t run = 0;
    for (uint64_t w = 0; w < words; w++) {
        t[w].before = run;
        run += (uint64_t)__builtin_popcountll(t[w].bits);
    }
    pl->np = (uint32_t)run + 1;
    pl->primes_bytes = ((size_t)pl->np + 1) * sizeof *pl->primes;
    if (!(pl->primes = mem_get(pl->primes_bytes))) return -ENOMEM;
    pl->primes[0] = 0;
    pl->primes[1] = 2;
    uint32_t k = 1;
    for (uint64_t w = 0; w < words; w++)
        for (uint64_t m = t[w].bits; m; m &= m - 1)
            pl->primes[++k] = (uint32_t)(128 * w + 2 * (uint64_t)__builtin_ctzll(m) + 1);
    return 0;
}

/* μ(m)·lpf(m) for odd m <= y: primes in decreasing order, so the smallest writes last. */
static int tables_mulpf(pi_plan *pl, const atomic_int *cancel)
{
    uint64_t n = pl->y / 2 + 1; /* odd m = 2i + 1 <= y */
    pl->mulpf_bytes = n * sizeof *pl->mulpf;
    if (!(pl->mulpf = mem_get(pl->mulpf_bytes))) return -ENOMEM;
    int32_t *v = pl->mulpf;
    for (uint64_t i = 0; i < n; i++)
        v[i] = 1;
    for (uint32_t k = pl->a; k >= 2; k--) {
        uint64_t p = pl->primes[k];
        /* p's pass costs y/2p: look at the flag every prime once p is small */
        if ((k % CANCEL_EVERY == 0 || p < 65536) && cancelled(cancel)) return -ECANCELED;
        for (uint64_t i = p / 2; i < n; i += p) /* m = p, 3p, 5p, … */
            if (v[i]) v[i] = v[i] > 0 ? -(int32_t)p : (int32_t)p;
        if (p * p <= pl->y)
            for (uint64_t i = p * p / 2; i < n; i += p * p)
                v[i] = 0;
    }
    return 0;
}

/* ---------------------------------------------------------------- sieve segments */

/* One segment of odd numbers: bit i of w[] is lo + 2i + 1 (lo a multiple of 128), nwords words;
 * cnt[j] counts the set bits of words 8j … 8j+7 (hard leaves only). */
struct seg {
    uint64_t lo;
    uint64_t *w;
    uint32_t *cnt;
    size_t nwords;
    uint64_t total; /* set bits in w */
};

static void seg_presieve(struct seg *s)
{
    size_t off = (size_t)((s->lo >> 7) % PAT_WORDS), done = 0;
    while (done < s->nwords) {
        size_t n = PAT_WORDS - off;
        if (n > s->nwords - done) n = s->nwords - done;
        memcpy(s->w + done, pat + off, n * sizeof *s->w);
        done += n;
        off = 0;
    }
}

/* Bits of the numbers <= n: [0, (n - lo + 1) / 2). */
static inline uint64_t seg_bits_upto(const struct seg *s, uint64_t n)
{
    return (n - s->lo + 1) >> 1;
}

static void seg_clear_bits(struct seg *s, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) /* only at range ends: a few hundred bits at most */
        s->w[i >> 6] &= ~((uint64_t)1 << (i & 63));
}

static uint64_t seg_popcount(const struct seg *s)
{
    uint64_t t = 0;
    for (size_t i = 0; i < s->nwords; i++)
        t += (uint64_t)__builtin_popcountll(s->w[i]);
    return t;
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

/* ---------------------------------------------------------------- hard special leaves */

/* Segments [ck->lo, ck->hi) of [0, z]. For every b the chunk keeps phi_local[b] (ck->cnt), the
 * survivors of p_1 … p_{b-1} in its earlier segments; a leaf's φ is (φ before the chunk) +
 * phi_local[b] + the segment's prefix count, and the unknown first term is added at combine
 * time as musum[b] × (φ before the chunk). */
__attribute__((noinline)) static int run_hard(const pi_plan *pl, struct chunk *ck,
                                              const atomic_int *cancel)
{
    const uint64_t S = pl->seg, x = pl->x, y = pl->y;
    const uint32_t C = PI_C, bmax = ck->bmax;
    size_t nwords = S / 128, ncnt = S / 1024, nnext = bmax + 1;
    struct seg s = {0};
    uint64_t *next = NULL;
    int rc = -ENOMEM;
    s.nwords = nwords;
    if (!(s.w = mem_get(nwords * 8)) || !(s.cnt = mem_get(ncnt * 4)) ||
        !(next = mem_get(nnext * 8)))
        goto out;
    memset(ck->musum, 0, (bmax - C) * sizeof *ck->musum);
    memset(ck->cnt, 0, (bmax - C) * sizeof *ck->cnt);
    i128 sum = 0;
    uint64_t lo0 = ck->lo * S;
    for (uint32_t b = C + 1; b <= bmax; b++) {
        uint64_t p = pl->primes[b], m = (lo0 + p - 1) / p * p;
        next[b] = m & 1 ? m : m + p;
    }
    for (uint64_t sidx = ck->lo; sidx < ck->hi; sidx++) {
        if (cancelled(cancel)) {
            rc = -ECANCELED;
            goto out;
        }
        uint64_t lo = sidx * S, hi = lo + S; /* numbers [lo, hi), those > z ignored */
        s.lo = lo;
        seg_presieve(&s);
        if (hi > pl->z + 1) seg_clear_bits(&s, seg_bits_upto(&s, pl->z), nwords * 64);
        s.total = 0;
        for (size_t j = 0; j < ncnt; j++) {
            uint32_t t = 0;
            for (size_t k = 0; k < 8; k++)
                t += (uint32_t)__builtin_popcountll(s.w[8 * j + k]);
            s.cnt[j] = t;
            s.total += t;
        }
        uint32_t bseg = hard_bmax(pl, lo) < bmax ? hard_bmax(pl, lo) : bmax;
        uint64_t top = hi - 1 < pl->z ? hi - 1 : pl->z;
        for (uint32_t b = C + 1; b <= bseg; b++) {
            /* one b's m scan can be ~xp·S/lo² long: look at the flag per 16 b too */
            if (b % 16 == 0 && cancelled(cancel)) {
                rc = -ECANCELED;
                goto out;
            }
            uint64_t p = pl->primes[b], xp = x / p;
            uint64_t *phil = &ck->cnt[b - C - 1];
            int64_t *mus = &ck->musum[b - C - 1];
            struct walk wk = {0, 0};
            if (b <= pl->pi_sqrty) {
                /* m in (max(xp / (top+1), y / p), min(xp / lo, y)], odd, squarefree, lpf > p */
                uint64_t mlo = xp / (top + 1), mhi = lo ? xp / lo : y;
                if (mlo < y / p) mlo = y / p;
                if (mhi > y) mhi = y;
                if (mhi > 0 && !(mhi & 1)) mhi--;
                for (uint64_t m = mhi; m > mlo && m > p; m -= 2) {
                    int32_t v = pl->mulpf[m >> 1];
                    if ((uint64_t)(v < 0 ? -(int64_t)v : v) <= p) continue;
                    uint64_t n = xp / m;
                    i128 phi = (i128)(*phil + seg_count(&s, &wk, seg_bits_upto(&s, n)));
                    if (v > 0) { /* μ(m) = 1: the leaf's sign is −μ(m) = −1 */
                        sum -= phi;
                        (*mus)--;
                    } else {
                        sum += phi;
                        (*mus)++;
                    }
                }
            } else {
                /* m = q prime, p < q <= y, n = xp / q in [lo, top] and n > y */
                uint64_t qhi = lo ? xp / lo : y, qlo = xp / (top + 1);
                if (qhi > y) qhi = y;
                if (qhi > xp / (y + 1)) qhi = xp / (y + 1);
                if (qlo < p) qlo = p;
                if (qhi > qlo) {
                    uint64_t l = pi_tab(pl, qhi), lmin = pi_tab(pl, qlo);
                    for (; l > lmin; l--) {
                        uint64_t n = xp / pl->primes[l];
                        sum += (i128)(*phil + seg_count(&s, &wk, seg_bits_upto(&s, n)));
                        (*mus)++;
                    }
                }
            }
            *phil += s.total;
            /* cross off p_b: odd multiples from next[b] (summing the counter decrements in a
             * register per block was measured: no gain) */
            uint64_t j = next[b], step = 2 * p;
            for (; j < hi; j += step) {
                uint64_t i = (j - lo) >> 1, bit = (s.w[i >> 6] >> (i & 63)) & 1;
                s.w[i >> 6] &= ~((uint64_t)1 << (i & 63));
                s.cnt[i >> CNT_SHIFT] -= (uint32_t)bit;
                s.total -= bit;
            }
            next[b] = j;
        }
    }
    ck->sum = sum;
    rc = 0;
out:
    mem_put(next, nnext * 8);
    mem_put(s.cnt, ncnt * 4);
    mem_put(s.w, nwords * 8);
    return rc;
}

/* ---------------------------------------------------------------- P2 */

/* Odd multiples of primes 17 … √hi crossed off s (all of its words), starting at p² at least:
 * the primes themselves stay; primes[k] for k <= kmax only. next[k] holds the next multiple of
 * primes[k] when next != NULL (kept across the segments of a chunk); otherwise each is derived with
 * one division. */
static void seg_sieve_full(const pi_plan *pl, struct seg *s, uint64_t hi, uint64_t *next,
                           uint32_t kmax)
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

/* Numbers [A, B] (A = max(chunk start, y + 1), B = min(chunk end, z)): primes counted; for every
 * prime p in (y, √x] with x / p in [A, B], sum += #primes in [A, x / p]. The p are themselves
 * sieved, per segment, in a window of at most seg + 1 numbers (x / lo − x / hi <= seg when lo >=
 * √x), walked downwards so that x / p grows. */
__attribute__((noinline)) static int run_p2(const pi_plan *pl, struct chunk *ck,
                                            const atomic_int *cancel)
{
    const uint64_t S = pl->seg, x = pl->x;
    size_t nwords = S / 128 + 2;
    uint64_t A = pl->p2_base + ck->lo * S, B = pl->p2_base + ck->hi * S - 1;
    if (A < pl->y + 1) A = pl->y + 1;
    if (B > pl->z) B = pl->z;
    uint64_t sqb = primality_isqrt(B);
    uint32_t nnext = (uint32_t)pi_tab(pl, sqb) + 1;
    struct seg s = {0}, ps = {0};
    uint64_t *next = NULL;
    int rc = -ENOMEM;
    if (!(s.w = mem_get(nwords * 8)) || !(ps.w = mem_get(nwords * 8)) ||
        !(next = mem_get((size_t)nnext * 8)))
        goto out;
    uint64_t seg0 = pl->p2_base + ck->lo * S;
    for (uint32_t k = PI_C + 1; k < nnext; k++) {
        uint64_t p = pl->primes[k], j = (seg0 + p - 1) / p * p;
        if (j < p * p) j = p * p;
        next[k] = j & 1 ? j : j + p;
    }
    uint64_t run = 0, nleaves = 0;
    u128 sum = 0;
    for (uint64_t sidx = ck->lo; sidx < ck->hi; sidx++) {
        if (cancelled(cancel)) {
            rc = -ECANCELED;
            goto out;
        }
        uint64_t lo = pl->p2_base + sidx * S, hi = lo + S;
        uint64_t nlo = lo > A ? lo : A, nhi = hi - 1 < B ? hi - 1 : B; /* counted numbers */
        s.lo = lo;
        s.nwords = S / 128;
        seg_presieve(&s);
        seg_sieve_full(pl, &s, hi, next, nnext - 1);
        seg_clear_bits(&s, 0, (nlo - lo) >> 1);
        seg_clear_bits(&s, seg_bits_upto(&s, nhi), s.nwords * 64);
        /* p in (x / (nhi + 1), x / nlo] ∩ (y, √x], downwards */
        uint64_t plo = x / (nhi + 1) + 1, phi = x / nlo;
        if (plo < pl->y + 1) plo = pl->y + 1;
        if (phi > pl->sqrtx) phi = pl->sqrtx;
        size_t wi = 0;
        uint64_t before = 0; /* set bits in s.w[0 … wi) */
        while (phi >= plo) {
            uint64_t wlo = phi - plo + 1 > S ? phi - S + 1 : plo; /* window [wlo, phi] */
            ps.lo = wlo & ~(uint64_t)127;
            ps.nwords = (size_t)((phi - ps.lo) / 128 + 1);
            seg_presieve(&ps);
            seg_sieve_full(pl, &ps, phi + 1, NULL, pl->np);
            seg_clear_bits(&ps, 0, (wlo - ps.lo) >> 1);
            seg_clear_bits(&ps, seg_bits_upto(&ps, phi), ps.nwords * 64);
            for (size_t w = ps.nwords; w-- > 0;) {
                for (uint64_t m = ps.w[w]; m;) {
                    unsigned bit = 63 - (unsigned)__builtin_clzll(m);
                    m &= ~((uint64_t)1 << bit);
                    uint64_t p = ps.lo + 128 * w + 2 * bit + 1;
                    uint64_t k = seg_bits_upto(&s, x / p);
                    while (wi < (size_t)(k >> 6))
                        before += (uint64_t)__builtin_popcountll(s.w[wi++]);
                    uint64_t c = before;
                    if (k & 63)
                        c += (uint64_t)__builtin_popcountll(s.w[wi] &
                                                            (((uint64_t)1 << (k & 63)) - 1));
                    sum += run + c;
                    nleaves++;
                }
            }
            if (wlo == plo) break;
            phi = wlo - 1;
        }
        run += seg_popcount(&s);
    }
    ck->sum = (i128)sum;
    ck->nprimes = run;
    ck->nleaves = nleaves;
    rc = 0;
out:
    mem_put(next, (size_t)nnext * 8);
    mem_put(ps.w, nwords * 8);
    mem_put(s.w, nwords * 8);
    return rc;
}

/* ---------------------------------------------------------------- easy and trivial leaves */

/* b in [lo, hi), p_b > √y: leaves φ(x / (p_b q), b − 1) for primes p_b < q <= y whose n = x /
 * (p_b q) <= y: 1 when n < p_b, π(n) − b + 2 otherwise (n < p_b² as p_b² > y). Where q > √(x/p)
 * many consecutive q share π(n): the run ends at the q with n reaching the next prime, found
 * with one more π lookup. */
__attribute__((noinline)) static int run_easy(const pi_plan *pl, struct chunk *ck,
                                              const atomic_int *cancel)
{
    const uint64_t x = pl->x, y = pl->y;
    i128 sum = 0;
    for (uint64_t b = ck->lo; b < ck->hi; b++) {
        if (cancelled(cancel)) return -ECANCELED;
        uint64_t p = pl->primes[b], xp = x / p, xpp = xp / p;
        /* trivial: q in (max(p, x / p²), y] */
        uint64_t t = xpp > p ? xpp : p;
        if (t < y) sum += (i128)(pl->a - pi_tab(pl, t));
        /* easy: q in (max(p, xp / (y + 1)), min(y, xpp)] */
        uint64_t qhi = xpp < y ? xpp : y, qlo = xp / (y + 1);
        if (qlo < p) qlo = p;
        if (qhi <= qlo) continue;
        uint64_t l = pi_tab(pl, qhi), lmin = pi_tab(pl, qlo);
        uint64_t sqxp = primality_isqrt(xp);
        while (l > lmin) {
            uint64_t q = pl->primes[l], n = xp / q, pin = pi_tab(pl, n);
            if (q > sqxp) {
                /* the q_j with π(xp / q_j) = pin are those with q_j > xp / p_{pin+1} */
                uint64_t l2 = pi_tab(pl, xp / pl->primes[pin + 1]);
                if (l2 < lmin) l2 = lmin;
                sum += (i128)(l - l2) * (i128)(pin - b + 2);
                l = l2;
            } else {
                sum += (i128)(pin - b + 2);
                l--;
            }
        }
    }
    ck->sum = sum;
    return 0;
}

/* ---------------------------------------------------------------- ordinary leaves */

__attribute__((noinline)) static int run_s1(const pi_plan *pl, struct chunk *ck,
                                            const atomic_int *cancel)
{
    i128 sum = 0;
    uint64_t n = ck->lo | 1;
    if (ck->lo <= 1) {
        sum += (i128)phi_c(pl->x); /* n = 1 */
        n = 3;
    }
    for (uint64_t k = 0; n < ck->hi; n += 2, k++) {
        if (k % (CANCEL_EVERY * 16) == 0 && cancelled(cancel)) return -ECANCELED;
        int32_t v = pl->mulpf[n >> 1];
        if (v > 13)
            sum += (i128)phi_c(pl->x / n);
        else if (v < -13)
            sum -= (i128)phi_c(pl->x / n);
    }
    ck->sum = sum;
    return 0;
}

/* ---------------------------------------------------------------- schedule */

/* α = y / x^(1/3): larger moves work from the hard-leaf and P2 sieves (~ x / y) to the easy
 * leaves and the m scans (~ y^1.5); measured best near 16 at 1e14 … 1e16 (docs/sieve.md). The
 * μ/lpf table is 2 bytes per number up to y, so y is capped at Y_MAX (48 MB) for the memory
 * bound near 2^64 (α ≈ 9 there). */
#define Y_MAX 24000000u
static double default_alpha(uint64_t x)
{
    double l = log10((double)x);
    return l <= 7 ? 1.0 : 1.1 * l - 1.6;
}

/* Cost weights of hard segment s: the sieve, and per active b a counter walk and leaf scan. */
static double hard_weight(const pi_plan *pl, uint64_t sidx)
{
    double nb = hard_bmax(pl, sidx * pl->seg);
    if (nb < PI_C) nb = PI_C;
    return (double)pl->seg * 0.5 + (nb - PI_C) * ((double)pl->seg / 1024 + 48);
}

static double easy_weight(const pi_plan *pl, uint64_t b)
{
    uint64_t p = pl->primes[b], xp = pl->x / p, xpp = xp / p;
    uint64_t qhi = xpp < pl->y ? xpp : pl->y, qlo = xp / (pl->y + 1);
    if (qlo < p) qlo = p;
    double n = qhi > qlo ? (double)(pi_tab(pl, qhi) - pi_tab(pl, qlo)) : 0;
    return 8 + (n < 4096 ? n : 4096 + sqrt(n - 4096));
}

/* Split [lo, hi) into at most k consecutive pieces of about equal weight (cuts[0 … n]).
 * Returns 0 or -ECANCELED (up to ~1.5M items, ~50 ns each: the flag every 4096). */
struct split {
    uint64_t *cuts; /* k + 1 boundaries */
    uint64_t n;     /* pieces made */
};

static int split_weighted(const pi_plan *pl, uint64_t lo, uint64_t hi, uint64_t k,
                          double (*wf)(const pi_plan *, uint64_t), struct split *sp,
                          const atomic_int *cancel)
{
    sp->n = 0;
    if (hi <= lo) return 0;
    if (k > hi - lo) k = hi - lo;
    double total = 0;
    for (uint64_t i = lo; i < hi; i++) {
        if ((i & 4095) == 0 && cancelled(cancel)) return -ECANCELED;
        total += wf(pl, i);
    }
    double per = total / (double)k, acc = 0;
    sp->cuts[0] = lo;
    for (uint64_t i = lo; i < hi && sp->n + 1 < k; i++) {
        if ((i & 4095) == 0 && cancelled(cancel)) return -ECANCELED;
        acc += wf(pl, i);
        if (acc >= per * (double)(sp->n + 1)) sp->cuts[++sp->n] = i + 1;
    }
    if (sp->cuts[sp->n] < hi) sp->cuts[++sp->n] = hi;
    return 0;
}

static void plan_free(pi_plan *pl)
{
    mem_put(pl->slot_mem, pl->slot_bytes);
    mem_put(pl->chunks, pl->chunks_bytes);
    mem_put(pl->mulpf, pl->mulpf_bytes);
    mem_put(pl->primes, pl->primes_bytes);
    mem_put(pl->pt, pl->pt_bytes);
    mem_put(pl, sizeof *pl);
}

void pi_plan_destroy(pi_plan *plan)
{
    if (plan) plan_free(plan);
}

static uint64_t small_pi(uint64_t x)
{
    uint64_t n = 0;
    for (uint64_t v = 2; v <= x; v++)
        n += primality_is_prime(v);
    return n;
}

int pi_plan_create(uint64_t x, const struct pi_opts *opts, pi_plan **out, const atomic_int *cancel)
{
    static const struct pi_opts defaults = {0};
    if (!opts) opts = &defaults;
    *out = NULL;
    pthread_once(&tabs_once, tabs_build);
    pi_plan *pl = mem_get(sizeof *pl);
    if (!pl) return -ENOMEM;
    int rc = -ENOMEM;
    uint64_t *cuts = NULL;
    size_t cuts_bytes = 0;
    pl->x = x;
    if (x < DR_MIN) {
        pl->small = true;
        pl->small_pi = small_pi(x);
        *out = pl;
        return 0;
    }
    unsigned threads = opts->threads ? opts->threads : 1;
    if (threads > 256) threads = 256;
    double alpha = opts->alpha > 0 ? opts->alpha : default_alpha(x);
    uint64_t cb = icbrt(x), sq = primality_isqrt(x);
    double yd = alpha * (double)cb;
    uint64_t y = yd >= (double)sq ? sq : (uint64_t)yd;
    if (y > Y_MAX && opts->alpha <= 0) y = Y_MAX;
    if (y < cb) y = cb;
    if (y > sq) y = sq;
    pl->y = y;
    pl->z = x / y;
    pl->sqrtx = sq;
    pl->seg = opts->segment ? opts->segment : SEG_DEFAULT;
    if (pl->seg % 1024) pl->seg += 1024 - pl->seg % 1024;
    pl->ylim = y + 2048; /* primes[π(y) + 1] exists: prime gaps below 2^32 are < 400 */
    if ((rc = tables_primes(pl, cancel)) != 0) goto err;
    pl->a = (uint32_t)pi_tab(pl, y);
    pl->pi_sqrty = (uint32_t)pi_tab(pl, primality_isqrt(y));
    if ((rc = tables_mulpf(pl, cancel)) != 0) goto err;
    uint64_t sqz = primality_isqrt(pl->z);
    uint32_t bh = (uint32_t)pi_tab(pl, sqz < pl->ylim ? sqz : pl->ylim);
    if (bh > pl->a - 1) bh = pl->a - 1;
    if (bh < PI_C) bh = PI_C;
    pl->b_hard = bh;

    /* Chunk counts: more pieces than workers, so the last ones are short. */
    uint64_t hard_segs = pl->z / pl->seg + 1;
    pl->p2_base = (y + 1) & ~(uint64_t)127;
    uint64_t p2_segs = pl->z >= y + 1 ? (pl->z - pl->p2_base) / pl->seg + 1 : 0;
    uint64_t b_easy0 = (pl->pi_sqrty > PI_C ? pl->pi_sqrty : PI_C) + 1;
    uint64_t b_easy1 = pl->a; /* b < a */
    uint64_t nh = pl->b_hard > PI_C ? 8 * (uint64_t)threads : 0, np2 = 4 * (uint64_t)threads;
    uint64_t ne = 4 * (uint64_t)threads, ns = (y >> 22) + 1;
    uint64_t kmax = nh + np2 + ne + ns + 4;
    cuts_bytes = (kmax + 1) * sizeof *cuts;
    rc = -ENOMEM; /* for the allocations below */
    if (!(cuts = mem_get(cuts_bytes))) goto err;
    pl->chunks_bytes = kmax * sizeof *pl->chunks;
    if (!(pl->chunks = mem_get(pl->chunks_bytes))) goto err;
    uint64_t nc = 0;
    struct split sp = {cuts, 0};
    /* hard: fewer chunks when their φ/μ arrays would pass HARD_SLOT_CAP */
    for (; nh > 0; nh = nh / 2) {
        if ((rc = split_weighted(pl, 0, hard_segs, nh, hard_weight, &sp, cancel)) != 0) goto err;
        size_t bytes = 0;
        for (uint64_t i = 0; i < sp.n; i++) {
            uint32_t bm = hard_bmax(pl, cuts[i] * pl->seg);
            if (bm < PI_C + 1) bm = PI_C + 1; /* keep arrays non-empty */
            bytes += (size_t)(bm - PI_C) * 16;
        }
        if (bytes <= HARD_SLOT_CAP || nh == 1) {
            pl->slot_bytes = bytes;
            break;
        }
    }
    if (nh > 0) {
        rc = -ENOMEM;
        if (!(pl->slot_mem = mem_get(pl->slot_bytes))) goto err;
        int64_t *mem = pl->slot_mem;
        for (uint64_t i = 0; i < sp.n; i++) {
            struct chunk *ck = &pl->chunks[nc++];
            ck->kind = CK_HARD;
            ck->lo = cuts[i];
            ck->hi = cuts[i + 1];
            uint32_t bm = hard_bmax(pl, cuts[i] * pl->seg);
            if (bm < PI_C + 1) bm = PI_C + 1;
            ck->bmax = bm;
            ck->musum = mem;
            mem += bm - PI_C;
            ck->cnt = (uint64_t *)mem;
            mem += bm - PI_C;
        }
    }
    for (uint64_t i = 0; i < p2_segs && np2; i += (p2_segs + np2 - 1) / np2) {
        struct chunk *ck = &pl->chunks[nc++];
        ck->kind = CK_P2;
        ck->lo = i;
        ck->hi = i + (p2_segs + np2 - 1) / np2 < p2_segs ? i + (p2_segs + np2 - 1) / np2 : p2_segs;
    }
    if (b_easy1 > b_easy0) {
        if ((rc = split_weighted(pl, b_easy0, b_easy1, ne, easy_weight, &sp, cancel)) != 0)
            goto err;
        for (uint64_t i = 0; i < sp.n; i++) {
            struct chunk *ck = &pl->chunks[nc++];
            ck->kind = CK_EASY;
            ck->lo = cuts[i];
            ck->hi = cuts[i + 1];
        }
    }
    for (uint64_t i = 0; i < ns; i++) {
        struct chunk *ck = &pl->chunks[nc++];
        ck->kind = CK_S1;
        ck->lo = (y + 1) * i / ns;
        ck->hi = (y + 1) * (i + 1) / ns;
    }
    pl->nchunks = nc;
    mem_put(cuts, cuts_bytes);
    *out = pl;
    return 0;
err:
    mem_put(cuts, cuts_bytes);
    plan_free(pl);
    return rc;
}

uint64_t pi_plan_chunks(const pi_plan *plan)
{
    return plan->nchunks;
}

int pi_run_chunk(pi_plan *plan, uint64_t i, const atomic_int *cancel)
{
    if (i >= plan->nchunks) return -EINVAL;
    struct chunk *ck = &plan->chunks[i];
    atomic_store_explicit(&ck->done, 0, memory_order_relaxed);
    int rc;
    switch (ck->kind) {
    case CK_HARD:
        rc = run_hard(plan, ck, cancel);
        break;
    case CK_P2:
        rc = run_p2(plan, ck, cancel);
        break;
    case CK_EASY:
        rc = run_easy(plan, ck, cancel);
        break;
    default:
        rc = run_s1(plan, ck, cancel);
        break;
    }
    if (rc == 0) atomic_store_explicit(&ck->done, 1, memory_order_release);
    return rc;
}

int pi_plan_result(const pi_plan *plan, uint64_t *pi)
{
    if (plan->small) {
        *pi = plan->small_pi;
        return 0;
    }
    for (uint64_t i = 0; i < plan->nchunks; i++)
        if (!atomic_load_explicit(&plan->chunks[i].done, memory_order_acquire)) return -EINVAL;
    /* φ before each hard chunk: the earlier chunks' counts, b by b (chunks are in order). */
    uint64_t nb = plan->b_hard > PI_C ? plan->b_hard - PI_C : 1;
    uint64_t *acc = mem_get(nb * sizeof *acc); /* transient, b_hard·8 bytes */
    if (!acc) return -ENOMEM;
    i128 phi = 0, p2 = 0;
    uint64_t p2_before = 0, p2_n = 0;
    for (uint64_t i = 0; i < plan->nchunks; i++) {
        const struct chunk *ck = &plan->chunks[i];
        switch (ck->kind) {
        case CK_HARD:
            phi += ck->sum;
            for (uint32_t k = 0; k < ck->bmax - PI_C && k < nb; k++) {
                phi += (i128)ck->musum[k] * (i128)acc[k];
                acc[k] += ck->cnt[k];
            }
            break;
        case CK_P2:
            p2 += ck->sum + (i128)ck->nleaves * (i128)(plan->a + p2_before);
            p2_before += ck->nprimes;
            p2_n += ck->nleaves;
            break;
        default:
            phi += ck->sum;
            break;
        }
    }
    mem_put(acc, nb * sizeof *acc);
    /* P2 = Σ π(x / p_i) − Σ_{a < i <= a + n} (i − 1) */
    uint64_t a = plan->a;
    p2 -= (i128)(2 * (u128)a + p2_n - 1) * (i128)p2_n / 2;
    i128 r = phi + (i128)a - 1 - p2;
    *pi = (uint64_t)r;
    return 0;
}

int pi_count(uint64_t x, uint64_t *pi, const atomic_int *cancel)
{
    pi_plan *pl;
    int rc = pi_plan_create(x, NULL, &pl, cancel);
    if (rc) return rc;
    for (uint64_t i = 0; i < pl->nchunks && rc == 0; i++)
        rc = pi_run_chunk(pl, i, cancel);
    if (rc == 0) rc = pi_plan_result(pl, pi);
    pi_plan_destroy(pl);
    return rc;
}

/* ---------------------------------------------------------------- cost model */

/* Fitted to one-thread CPU times on the reference VM (docs/sieve.md): π(x) grows like x^(2/3)
 * (the hard-leaf and P2 sieves over [0, x / y], y ~ x^(1/3)), 0.8 s at 1e14 and 14 s at 1e16. */
double pi_cost_seconds(uint64_t x)
{
    double xd = (double)x;
    if (xd < 1e6) return 1e-4;
    return 3.2e-10 * pow(xd, 2.0 / 3.0) + 2e-3;
}

/* sieve_count: 0.12 ns per number near 1e10 growing to ~3 ns near 2^64 (more and bigger sieving
 * primes per number), plus the sieving primes up to √hi. */
double pi_sieve_cost_seconds(uint64_t lo, uint64_t hi)
{
    if (hi < lo) return 0;
    double w = (double)(hi - lo) + 1, h = (double)hi < 1e10 ? 1e10 : (double)hi;
    double per = 1.2e-10 * pow(h / 1e10, 0.14);
    return w * per + sqrt((double)hi) * 1.2e-10 + 1e-4;
}
