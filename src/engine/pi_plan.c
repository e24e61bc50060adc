/* pi_plan.c — the plan of one π(x): its parameters (y, z, segment), its tables, and the load
 * balancer that cuts each term into chunks of about equal cost, more chunks than workers.
 *
 * Knows the terms only by their cost weights; what a chunk computes lives in pi_hard.c, pi_p2.c,
 * pi_easy.c and pi_s1.c. Never aborts on ENOMEM: a failed create frees everything it took.
 */
#include <errno.h>
#include <math.h>

#include "pi_int.h"
#include "primed/primality.h"

#define HARD_SLOT_CAP (24u << 20) /* bytes of per-chunk φ/μ arrays before fewer hard chunks */

static uint64_t icbrt(uint64_t x)
{
    uint64_t r = (uint64_t)cbrtl((long double)x);
    while (r > 0 && (u128)r * r * r > x)
        r--;
    while ((u128)(r + 1) * (r + 1) * (r + 1) <= x)
        r++;
    return r;
}

/* The largest b with hard leaves at or above lo: p_b² < x / lo, and b <= b_hard. */
uint32_t pi_hard_bmax(const pi_plan *pl, uint64_t lo)
{
    uint32_t bm = pl->b_hard;
    if (lo > 0) {
        uint64_t r = primality_isqrt(pl->x / lo);
        if (r < pl->ylim && pi_tab(pl, r) < bm) bm = (uint32_t)pi_tab(pl, r);
    }
    return bm;
}

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
    double nb = pi_hard_bmax(pl, sidx * pl->seg);
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
        if ((i & 4095) == 0 && pi_cancelled(cancel)) return -ECANCELED;
        total += wf(pl, i);
    }
    double per = total / (double)k, acc = 0;
    sp->cuts[0] = lo;
    for (uint64_t i = lo; i < hi && sp->n + 1 < k; i++) {
        if ((i & 4095) == 0 && pi_cancelled(cancel)) return -ECANCELED;
        acc += wf(pl, i);
        if (acc >= per * (double)(sp->n + 1)) sp->cuts[++sp->n] = i + 1;
    }
    if (sp->cuts[sp->n] < hi) sp->cuts[++sp->n] = hi;
    return 0;
}

static void plan_free(pi_plan *pl)
{
    pi_mem_put(pl->slot_mem, pl->slot_bytes);
    pi_mem_put(pl->chunks, pl->chunks_bytes);
    pi_mem_put(pl->mulpf, pl->mulpf_bytes);
    pi_mem_put(pl->primes, pl->primes_bytes);
    pi_mem_put(pl->pt, pl->pt_bytes);
    pi_mem_put(pl, sizeof *pl);
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

/* y = α·x^(1/3) clamped to [x^(1/3), √x] (and to Y_MAX when α is the default), z = x / y, the
 * segment rounded up to whole counters, and the tables' reach. */
static void plan_params(pi_plan *pl, const struct pi_opts *opts)
{
    uint64_t x = pl->x;
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
}

/* The tables, then a = π(y), π(√y) and b_hard = min(a − 1, π(√z)) (at least c). */
static int plan_tables(pi_plan *pl, const atomic_int *cancel)
{
    int rc;
    if ((rc = pi_tables_primes(pl, cancel)) != 0) return rc;
    pl->a = (uint32_t)pi_tab(pl, pl->y);
    pl->pi_sqrty = (uint32_t)pi_tab(pl, primality_isqrt(pl->y));
    if ((rc = pi_tables_mulpf(pl, cancel)) != 0) return rc;
    uint64_t sqz = primality_isqrt(pl->z);
    uint32_t bh = (uint32_t)pi_tab(pl, sqz < pl->ylim ? sqz : pl->ylim);
    if (bh > pl->a - 1) bh = pl->a - 1;
    if (bh < PI_C) bh = PI_C;
    pl->b_hard = bh;
    return 0;
}

/* bmax of a hard chunk starting at segment sidx, at least c + 1 to keep its arrays non-empty. */
static uint32_t hard_chunk_bmax(const pi_plan *pl, uint64_t sidx)
{
    uint32_t bm = pi_hard_bmax(pl, sidx * pl->seg);
    return bm < PI_C + 1 ? PI_C + 1 : bm;
}

/* At most nh hard chunks of equal weight over the segments of [0, z]; fewer when their φ/μ
 * arrays would pass HARD_SLOT_CAP. Each chunk's arrays are carved from one slot_mem. */
static int plan_hard_chunks(pi_plan *pl, struct split *sp, uint64_t nh, const atomic_int *cancel)
{
    uint64_t hard_segs = pl->z / pl->seg + 1;
    int rc;
    for (; nh > 0; nh = nh / 2) {
        if ((rc = split_weighted(pl, 0, hard_segs, nh, hard_weight, sp, cancel)) != 0) return rc;
        size_t bytes = 0;
        for (uint64_t i = 0; i < sp->n; i++)
            bytes += (size_t)(hard_chunk_bmax(pl, sp->cuts[i]) - PI_C) * 16;
        if (bytes <= HARD_SLOT_CAP || nh == 1) {
            pl->slot_bytes = bytes;
            break;
        }
    }
    if (nh == 0) return 0;
    if (!(pl->slot_mem = pi_mem_get(pl->slot_bytes))) return -ENOMEM;
    int64_t *mem = pl->slot_mem;
    for (uint64_t i = 0; i < sp->n; i++) {
        struct chunk *ck = &pl->chunks[pl->nchunks++];
        ck->kind = CK_HARD;
        ck->lo = sp->cuts[i];
        ck->hi = sp->cuts[i + 1];
        ck->bmax = hard_chunk_bmax(pl, sp->cuts[i]);
        ck->musum = mem;
        mem += ck->bmax - PI_C;
        ck->cnt = (uint64_t *)mem;
        mem += ck->bmax - PI_C;
    }
    return 0;
}

/* P2 by equal segment ranges of [y, z] (its cost is flat per segment). */
static void plan_p2_chunks(pi_plan *pl, uint64_t np2)
{
    pl->p2_base = (pl->y + 1) & ~(uint64_t)127;
    uint64_t p2_segs = pl->z >= pl->y + 1 ? (pl->z - pl->p2_base) / pl->seg + 1 : 0;
    uint64_t per = (p2_segs + np2 - 1) / np2;
    for (uint64_t i = 0; i < p2_segs; i += per) {
        struct chunk *ck = &pl->chunks[pl->nchunks++];
        ck->kind = CK_P2;
        ck->lo = i;
        ck->hi = i + per < p2_segs ? i + per : p2_segs;
    }
}

/* Easy leaves by b ranges of equal weight: b in (max(π(√y), c), a). */
static int plan_easy_chunks(pi_plan *pl, struct split *sp, uint64_t ne, const atomic_int *cancel)
{
    uint64_t b_easy0 = (pl->pi_sqrty > PI_C ? pl->pi_sqrty : PI_C) + 1;
    uint64_t b_easy1 = pl->a; /* b < a */
    if (b_easy1 <= b_easy0) return 0;
    int rc = split_weighted(pl, b_easy0, b_easy1, ne, easy_weight, sp, cancel);
    if (rc) return rc;
    for (uint64_t i = 0; i < sp->n; i++) {
        struct chunk *ck = &pl->chunks[pl->nchunks++];
        ck->kind = CK_EASY;
        ck->lo = sp->cuts[i];
        ck->hi = sp->cuts[i + 1];
    }
    return 0;
}

/* Ordinary leaves by equal n ranges of [0, y], ns of them. */
static void plan_s1_chunks(pi_plan *pl, uint64_t ns)
{
    for (uint64_t i = 0; i < ns; i++) {
        struct chunk *ck = &pl->chunks[pl->nchunks++];
        ck->kind = CK_S1;
        ck->lo = (pl->y + 1) * i / ns;
        ck->hi = (pl->y + 1) * (i + 1) / ns;
    }
}

/* The schedule: more pieces than workers, so the last ones are short. */
static int plan_chunks(pi_plan *pl, unsigned threads, const atomic_int *cancel)
{
    uint64_t nh = pl->b_hard > PI_C ? 8 * (uint64_t)threads : 0, np2 = 4 * (uint64_t)threads;
    uint64_t ne = 4 * (uint64_t)threads, ns = (pl->y >> 22) + 1;
    uint64_t kmax = nh + np2 + ne + ns + 4;
    size_t cuts_bytes = (kmax + 1) * sizeof(uint64_t);
    struct split sp = {pi_mem_get(cuts_bytes), 0};
    if (!sp.cuts) return -ENOMEM;
    int rc = -ENOMEM;
    pl->chunks_bytes = kmax * sizeof *pl->chunks;
    if (!(pl->chunks = pi_mem_get(pl->chunks_bytes))) goto out;
    pl->nchunks = 0;
    if ((rc = plan_hard_chunks(pl, &sp, nh, cancel)) != 0) goto out;
    plan_p2_chunks(pl, np2);
    if ((rc = plan_easy_chunks(pl, &sp, ne, cancel)) != 0) goto out;
    plan_s1_chunks(pl, ns);
out:
    pi_mem_put(sp.cuts, cuts_bytes);
    return rc;
}

int pi_plan_create(uint64_t x, const struct pi_opts *opts, pi_plan **out, const atomic_int *cancel)
{
    static const struct pi_opts defaults = {0};
    if (!opts) opts = &defaults;
    *out = NULL;
    pi_tables_once();
    pi_plan *pl = pi_mem_get(sizeof *pl);
    if (!pl) return -ENOMEM;
    pl->x = x;
    if (x < DR_MIN) {
        pl->small = true;
        pl->small_pi = small_pi(x);
        *out = pl;
        return 0;
    }
    unsigned threads = opts->threads ? opts->threads : 1;
    if (threads > 256) threads = 256;
    plan_params(pl, opts);
    int rc = plan_tables(pl, cancel);
    if (rc == 0) rc = plan_chunks(pl, threads, cancel);
    if (rc) {
        plan_free(pl);
        return rc;
    }
    *out = pl;
    return 0;
}

uint64_t pi_plan_chunks(const pi_plan *plan)
{
    return plan->nchunks;
}
