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

uint64_t pi_icbrt(uint64_t x)
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
#define GOURDON_MIN 30000u
static double default_alpha(uint64_t x)
{
    double l = log10((double)x);
    return l <= 7 ? 1.0 : 1.1 * l - 1.6;
}

/* Gourdon's α_y, interpolated in log10 x between measured optima (docs/sieve.md); α_z = 2 from
 * 1e12 up (1 below: the C and D terms are too small there to move). */
static double gourdon_alpha_y(uint64_t x)
{
    static const double lg[] = {6, 10, 12, 14, 16, 18, 19.3};
    static const double al[] = {1, 2.8, 5, 6, 9, 13.6, 18};
    double l = log10((double)x);
    if (l <= lg[0]) return al[0];
    for (size_t i = 1; i < sizeof lg / sizeof lg[0]; i++)
        if (l <= lg[i])
            return al[i - 1] + (al[i] - al[i - 1]) * (l - lg[i - 1]) / (lg[i] - lg[i - 1]);
    return al[sizeof al / sizeof al[0] - 1];
}

/* zg = α_z·y in [y, x^(1/3)·x^(1/6)] (so √zg <= x^(1/4) <= x*), capped with y so the μ/lpf table (2
 * bytes per number up to zg) stays under 48 MB; x* = max(x^(1/4), ⌈x / y²⌉) clamped to [1, min(y,
 * √(x / y))] (primecount's bounds); D sieves [0, x / zg]; the tables reach zg and √(x / x*). */
static void gourdon_params(pi_plan *pl, const struct pi_opts *opts)
{
    uint64_t x = pl->x, y = pl->y, sq = pl->sqrtx;
    /* x^(1/3) < y <= zg <= x^(1/3)·x^(1/6) (integer roots; primecount's bounds, without which
     * the Σ terms miss leaves for small x) */
    /* integer roots in u128: near 2^64, 1626^6 and 65536^4 overflow 64 bits */
    uint64_t r6 = (uint64_t)cbrt((double)sq) + 1, zmax;
    while ((u128)r6 * r6 * r6 * r6 * r6 * r6 > x)
        r6--;
    zmax = pl->x13 * r6;
    if (y > zmax) y = zmax;
    if (y <= pl->x13) y = pl->x13 + 1;
    if (zmax < y) zmax = y;
    pl->y = y;
    pl->z = x / y;
    double az = opts->alpha_z > 0 ? opts->alpha_z : (x >= 1000000000000u ? 2.0 : 1.0);
    double zd = az * (double)y;
    uint64_t zg = zd >= (double)zmax ? zmax : (uint64_t)zd;
    if (zg > Y_MAX && opts->alpha_z <= 0) zg = Y_MAX > y ? Y_MAX : y;
    if (zg < y) zg = y;
    uint64_t r4 = primality_isqrt(sq), yy = y * y; /* y <= √x: y² fits */
    while ((u128)(r4 + 1) * (r4 + 1) * (r4 + 1) * (r4 + 1) <= x)
        r4++;
    while ((u128)r4 * r4 * r4 * r4 > x)
        r4--;
    uint64_t xs = x / yy + (x % yy != 0), sxy = primality_isqrt(x / y);
    if (xs < r4) xs = r4;
    if (xs > y) xs = y;
    if (xs > sxy) xs = sxy;
    if (xs < 1) xs = 1;
    pl->mmax = zg;
    pl->xstar = xs;
    pl->dlim = x / zg;
    uint64_t reach = primality_isqrt(x / xs);
    if (reach < zg) reach = zg;
    if (reach < y) reach = y;
    pl->ylim = reach + 2048;
}

/* Hard leaves with n in [lo, hi), estimated from a sample of at most 64 b's up to
 * bm = pi_hard_bmax(pl, lo): per b the primes q of its leaf range (composite m, for
 * b <= π(√mmax), are not counted: their scans cost per m, and they sit at the same n as the
 * prime ones). */
static double hard_leaves_est(const pi_plan *pl, uint64_t lo, uint64_t hi, uint32_t bm)
{
    if (bm <= PI_C) return 0;
    uint32_t step = (bm - PI_C + 63) / 64;
    double n = 0;
    for (uint32_t b = PI_C + 1; b <= bm; b += step) {
        uint64_t p = pl->primes[b], xp = pl->x / p;
        uint64_t qhi = lo && xp / lo < pl->y ? xp / lo : pl->y;
        uint64_t cap = pl->gourdon ? xp / p / p : xp / (pl->y + 1), qlo = xp / hi;
        if (qhi > cap) qhi = cap;
        if (qlo < p) qlo = p;
        if (qlo < pl->mmax / p) qlo = pl->mmax / p;
        if (qhi > qlo) n += (double)(pi_tab(pl, qhi) - pi_tab(pl, qlo)) * step;
    }
    return n;
}

/* Cost weights of hard segment s (~0.4 ns a unit): the sieve, per active b a counter walk and
 * leaf scan, and per leaf a division and a prefix count (~40 units, fitted to the per-segment
 * CPU times of π(1e16), which peak ~100x above the sieve's cost in segments 4 … 40). */
static double hard_weight(const pi_plan *pl, uint64_t sidx)
{
    const uint32_t bm = pi_hard_bmax(pl, sidx * pl->seg);
    const double nb = bm < PI_C ? PI_C : bm;
    double leaves = hard_leaves_est(pl, sidx * pl->seg, (sidx + 1) * pl->seg, bm);
    return (double)pl->seg * 0.5 + (nb - PI_C) * ((double)pl->seg / 1024 + 48) + 40 * leaves;
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
    /* Gourdon's terms start at b > c, which needs x* >= x^(1/4) >= p_c = 13: below GOURDON_MIN
     * (28561 = 13^4, rounded up) DR answers. */
    pl->gourdon = opts->algo != PI_ALGO_DR && x >= GOURDON_MIN;
    double alpha = opts->alpha > 0 ? opts->alpha
                   : pl->gourdon   ? gourdon_alpha_y(x)
                                   : default_alpha(x);
    uint64_t cb = pi_icbrt(x), sq = primality_isqrt(x);
    double yd = alpha * (double)cb;
    uint64_t y = yd >= (double)sq ? sq : (uint64_t)yd;
    if (y > Y_MAX && opts->alpha <= 0) y = Y_MAX;
    if (y < cb) y = cb;
    if (y > sq) y = sq;
    pl->x13 = cb;
    pl->y = y;
    pl->z = x / y;
    pl->sqrtx = sq;
    pl->seg = opts->segment ? opts->segment : SEG_DEFAULT;
    if (pl->seg % 1024) pl->seg += 1024 - pl->seg % 1024;
    pl->mmax = y;
    pl->dlim = pl->z;
    pl->ylim = y + 2048; /* primes[π(y) + 1] exists: prime gaps below 2^32 are < 400 */
    if (pl->gourdon) gourdon_params(pl, opts);
}

/* The tables, then a = π(y), π(√mmax) and b_hard = min(a − 1, DR π(√z), Gourdon π(x*)) (at
 * least c). */
static int plan_tables(pi_plan *pl, const atomic_int *cancel)
{
    int rc;
    if ((rc = pi_tables_primes(pl, cancel)) != 0) return rc;
    pl->a = (uint32_t)pi_tab(pl, pl->y);
    pl->pi_sqrty = (uint32_t)pi_tab(pl, primality_isqrt(pl->mmax));
    if ((rc = pi_tables_mulpf(pl, cancel)) != 0) return rc;
    uint64_t sqz = pl->gourdon ? pl->xstar : primality_isqrt(pl->z);
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

/* At most nh hard chunks of equal weight over the segments of [0, dlim]; fewer when their φ/μ
 * arrays would pass HARD_SLOT_CAP. Each chunk's arrays are carved from one slot_mem. */
static int plan_hard_chunks(pi_plan *pl, struct split *sp, uint64_t nh, const atomic_int *cancel)
{
    uint64_t hard_segs = pl->dlim / pl->seg + 1;
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

/* Ordinary leaves by equal n ranges of [0, mmax], ns of them. */
static void plan_s1_chunks(pi_plan *pl, uint64_t ns)
{
    for (uint64_t i = 0; i < ns; i++) {
        struct chunk *ck = &pl->chunks[pl->nchunks++];
        ck->kind = CK_S1;
        ck->lo = (pl->mmax + 1) * i / ns;
        ck->hi = (pl->mmax + 1) * (i + 1) / ns;
    }
}

/* Gourdon's C1: b in (max(c, π((x / zg)^(1/3))), π(√zg)], nc ranges of equal length. */
static void plan_c1_chunks(pi_plan *pl, uint64_t nc)
{
    if (!pl->gourdon || nc == 0) return;
    uint64_t b0 = pi_tab(pl, pi_icbrt(pl->x / pl->mmax));
    if (b0 < PI_C) b0 = PI_C;
    uint64_t b1 = pl->pi_sqrty + 1; /* exclusive */
    if (b1 <= b0 + 1) return;
    b0++;
    for (uint64_t i = 0; i < nc; i++) {
        uint64_t lo = b0 + (b1 - b0) * i / nc, hi = b0 + (b1 - b0) * (i + 1) / nc;
        if (hi <= lo) continue;
        struct chunk *ck = &pl->chunks[pl->nchunks++];
        ck->kind = CK_C1;
        ck->lo = lo;
        ck->hi = hi;
    }
}

/* Gourdon's A and C2 look up π(n) for n in [AC_FIRST, √x]. The cost of [AC_FIRST, n) is modelled
 * as 0.5 per number (sieve and per-block b loop, ns) + 10 per leaf with x / (pq) < n, the leaves
 * counted for at most 64 sampled b of each term with two π lookups; on a geometric grid of n the
 * na - 1 cuts fall where the modelled cost reaches equal shares. (A 1/n² guess of the leaves'
 * spread was tried first: at 1e17 a quarter of its chunks took 0.3 ms and the last ones 79 ms.) */
#define AC_SAMPLES 64

static double ac_leaves_below(const pi_plan *pl, double n)
{
    const uint64_t bx = pi_tab(pl, pl->xstar), b13 = pi_tab(pl, pl->x13);
    uint64_t bz = pi_tab(pl, primality_isqrt(pl->mmax));
    if (bz < PI_C) bz = PI_C;
    double leaves = 0;
    for (int t = 0; t < 2; t++) { /* t = 0: C2, b in (bz, bx]; t = 1: A, b in (bx, b13] */
        uint64_t b0 = t ? bx : bz, b1 = t ? b13 : bx;
        if (b1 <= b0) continue;
        uint64_t step = (b1 - b0 + AC_SAMPLES - 1) / AC_SAMPLES;
        for (uint64_t b = b0 + 1; b <= b1; b += step) {
            uint64_t p = pl->primes[b], xp = pl->x / p, qhi, qlo;
            if (t) {
                qhi = primality_isqrt(xp), qlo = p;
            } else {
                qhi = xp / p < pl->y ? xp / p : pl->y, qlo = xp / p / p > p ? xp / p / p : p;
            }
            double q = (double)xp / n; /* leaves below n have q > xp / n */
            if (q > (double)qlo) qlo = q >= (double)qhi ? qhi : (uint64_t)q;
            if (qhi > qlo) leaves += (double)(pi_tab(pl, qhi) - pi_tab(pl, qlo)) * (double)step;
        }
    }
    return leaves;
}

static int plan_ac_chunks(pi_plan *pl, uint64_t na)
{
    if (!pl->gourdon || na == 0 || pl->sqrtx < AC_FIRST) return 0;
    size_t ng = 32 * na < 2048 ? 32 * na : 2048, bytes = (ng + 1) * 2 * sizeof(double);
    double *gn = pi_mem_get(bytes), *gc = gn + ng + 1;
    if (!gn) return -ENOMEM;
    double top = (double)pl->sqrtx + 1, r = log(top / AC_FIRST);
    for (size_t i = 0; i <= ng; i++) {
        gn[i] = i == ng ? top : AC_FIRST * exp(r * (double)i / (double)ng);
        gc[i] = 0.5 * (gn[i] - AC_FIRST) + 10 * ac_leaves_below(pl, gn[i]);
    }
    uint64_t lo = AC_FIRST;
    size_t g = 0;
    for (uint64_t k = 1; k <= na && lo <= pl->sqrtx; k++) {
        uint64_t hi = pl->sqrtx + 1;
        if (k < na) {
            double want = gc[ng] * (double)k / (double)na;
            while (g < ng && gc[g] < want)
                g++;
            hi = (uint64_t)gn[g];
        }
        if (hi <= lo) continue;
        struct chunk *ck = &pl->chunks[pl->nchunks++];
        ck->kind = CK_AC;
        ck->lo = lo;
        ck->hi = hi;
        lo = hi;
    }
    pi_mem_put(gn, bytes);
    return 0;
}

/* The schedule: more pieces than workers, so the last ones are short. */
static int plan_chunks(pi_plan *pl, unsigned threads, const atomic_int *cancel)
{
    uint64_t nh = pl->b_hard > PI_C ? 8 * (uint64_t)threads : 0, np2 = 4 * (uint64_t)threads;
    uint64_t ne = 4 * (uint64_t)threads, ns = (pl->mmax >> 22) + 1;
    uint64_t na = pl->gourdon ? 8 * (uint64_t)threads : 0,
             nc = pl->gourdon ? 2 * (uint64_t)threads : 0;
    uint64_t kmax = nh + np2 + ne + ns + na + nc + 4;
    size_t cuts_bytes = (kmax + 1) * sizeof(uint64_t);
    struct split sp = {pi_mem_get(cuts_bytes), 0};
    if (!sp.cuts) return -ENOMEM;
    int rc = -ENOMEM;
    pl->chunks_bytes = kmax * sizeof *pl->chunks;
    if (!(pl->chunks = pi_mem_get(pl->chunks_bytes))) goto out;
    pl->nchunks = 0;
    if ((rc = plan_hard_chunks(pl, &sp, nh, cancel)) != 0) goto out;
    plan_c1_chunks(pl, nc); /* before the long tail of small A + C2 and P2 chunks */
    if ((rc = plan_ac_chunks(pl, na)) != 0) goto out;
    plan_p2_chunks(pl, np2);
    if (!pl->gourdon && (rc = plan_easy_chunks(pl, &sp, ne, cancel)) != 0) goto out;
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
