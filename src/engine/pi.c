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
 *
 * This file adds the terms up; each term has its own file (pi_s1.c, pi_hard.c, pi_easy.c, pi_p2.c),
 * the plan and its load balancer pi_plan.c, the tables pi_tables.c, the budget pi_mem.c.
 */
#include <errno.h>
#include <math.h>

#include "pi_int.h"

int pi_run_chunk(pi_plan *plan, uint64_t i, const atomic_int *cancel)
{
    if (i >= plan->nchunks) return -EINVAL;
    struct chunk *ck = &plan->chunks[i];
    atomic_store_explicit(&ck->done, 0, memory_order_relaxed);
    int rc;
    switch (ck->kind) {
    case CK_HARD:
        rc = pi_hard_run(plan, ck, cancel);
        break;
    case CK_P2:
        rc = pi_p2_run(plan, ck, cancel);
        break;
    case CK_EASY:
        rc = pi_easy_run(plan, ck, cancel);
        break;
    case CK_C1:
        rc = pi_c1_run(plan, ck, cancel);
        break;
    case CK_AC:
        rc = pi_ac_run(plan, ck, cancel);
        break;
    default:
        rc = pi_s1_run(plan, ck, cancel);
        break;
    }
    if (rc == 0) atomic_store_explicit(&ck->done, 1, memory_order_release);
    return rc;
}

const char *pi_chunk_kind(const pi_plan *plan, uint64_t i)
{
    static const char *const names[] = {"hard", "p2", "easy", "s1", "c1", "ac"};
    return i < plan->nchunks ? names[plan->chunks[i].kind] : "none";
}

int pi_plan_terms(const pi_plan *plan, struct pi_terms *t)
{
    *t = (struct pi_terms){0};
    if (plan->small) return -EINVAL;
    for (uint64_t i = 0; i < plan->nchunks; i++)
        if (!atomic_load_explicit(&plan->chunks[i].done, memory_order_acquire)) return -EINVAL;
    /* φ before each hard chunk: the earlier chunks' counts, b by b (chunks are in order). */
    uint64_t nb = plan->b_hard > PI_C ? plan->b_hard - PI_C : 1;
    uint64_t *acc = pi_mem_get(nb * sizeof *acc); /* transient, b_hard·8 bytes */
    if (!acc) return -ENOMEM;
    uint64_t p2_before = 0, p2_n = 0, ac_before = 3; /* π(AC_FIRST − 1) */
    for (uint64_t i = 0; i < plan->nchunks; i++) {
        const struct chunk *ck = &plan->chunks[i];
        switch (ck->kind) {
        case CK_HARD:
            t->hard += ck->sum;
            for (uint32_t k = 0; k < ck->bmax - PI_C && k < nb; k++) {
                t->hard += (i128)ck->musum[k] * (i128)acc[k];
                acc[k] += ck->cnt[k];
            }
            break;
        case CK_P2:
            t->p2 += ck->sum + (i128)ck->nleaves * (i128)(plan->a + p2_before);
            p2_before += ck->nprimes;
            p2_n += ck->nleaves;
            break;
        case CK_AC:
            t->ac += ck->sum + (i128)ck->nleaves * (i128)ac_before;
            ac_before += ck->nprimes;
            break;
        case CK_EASY:
            t->easy += ck->sum;
            break;
        case CK_C1:
            t->c1 += ck->sum;
            break;
        default:
            t->s1 += ck->sum;
            break;
        }
    }
    pi_mem_put(acc, nb * sizeof *acc);
    /* P2 = Σ π(x / p_i) − Σ_{a < i <= a + n} (i − 1) */
    t->p2 -= (i128)(2 * (u128)plan->a + p2_n - 1) * (i128)p2_n / 2;
    if (plan->gourdon) t->sigma = pi_sigma(plan);
    return 0;
}

int pi_plan_result(const pi_plan *plan, uint64_t *pi)
{
    if (plan->small) {
        *pi = plan->small_pi;
        return 0;
    }
    struct pi_terms t;
    int rc = pi_plan_terms(plan, &t);
    if (rc) return rc;
    i128 r = t.s1 + t.hard + t.easy + t.c1 + t.ac + t.sigma + (i128)plan->a - 1 - t.p2;
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

/* Fitted to the CPU times of Gourdon's plan on the reference VM (docs/sieve.md): 0.42 s at 1e14,
 * 1.5 s at 1e15, 6.2 s at 1e16, 24.7 s at 1e17, 105 s at 1e18 — x^0.6 over that range (the D and
 * B sieves grow like x^(2/3) / log, the tables like x^(1/3)) — and 1,096 s at 2^64 − 1: x^0.83
 * above 1e18, where y and z meet their table cap (pi_plan.c's Y_MAX). DR (pi_opts.algo) costs
 * ~1.8x this. */
double pi_cost_seconds(uint64_t x)
{
    double xd = (double)x;
    if (xd < 1e6) return 1e-4;
    if (xd > 1e18) return 6.2 * pow(100.0, 0.6) * pow(xd / 1e18, 0.83) + 2e-3;
    return 6.2 * pow(xd / 1e16, 0.6) + 2e-3;
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
