/* test_pi.c — π(x) by the plan (pi.h: Gourdon by default, Deléglise–Rivat on request) against
 * oracles it did not write: the published values of π(10^k), the primecount and primesieve CLIs;
 * the two algorithms against each other; chunked runs against the sequential one; cancellation
 * and the memory budget (everything freed on every path).
 * PRIMED_PI_SLOW=1 (scripts/pi-slow-test.sh) adds 10^16 … 10^19, 2^64 − 1 and primecount near
 * 2^63 and 2^64. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "pi_int.h" /* struct pi_plan and pi_plan_terms: the terms one by one */
#include "primed/pi.h"
#include "primed/sieve.h"
#include "testutil.h"

static bool slow_variant(void) /* sanitizer builds run 3-10x slower: smaller magnitudes */
{
    const char *v = getenv("PRIMED_VARIANT");
    return v && strcmp(v, "release") != 0;
}

static bool slow_tests(void)
{
    const char *v = getenv("PRIMED_PI_SLOW");
    return v && strcmp(v, "0") != 0;
}

static uint64_t rng_state = 0x2545f4914f6cdd1du;
static uint64_t rnd(void)
{
    return xorshift64(&rng_state);
}

/* A random number of magnitude 10^d: in [10^d, 10^(d+1)). */
static uint64_t rnd_magnitude(int d)
{
    uint64_t p = 1;
    for (int i = 0; i < d; i++)
        p *= 10;
    return p + rnd() % (9 * p);
}

static uint64_t pc_pi(uint64_t x)
{
    return oracle_u64("primecount %" PRIu64, x);
}

static uint64_t pi_of(uint64_t x)
{
    uint64_t r = UINT64_MAX;
    int rc = pi_count(x, &r, NULL);
    ck_assert_msg(rc == 0, "pi_count(%" PRIu64 ") = %d", x, rc);
    return r;
}

static uint64_t in_use(void)
{
    struct pi_mem_stats ms;
    pi_mem_stats_get(&ms);
    return ms.in_use;
}

/* Every chunk of a plan for x with opts, in the order `order` (NULL: 0, 1, …), then the result;
 * checks that the budget is back to what it was. */
static uint64_t pi_plan_run(uint64_t x, const struct pi_opts *o, bool shuffle)
{
    uint64_t before = in_use();
    pi_plan *pl;
    ck_assert_int_eq(pi_plan_create(x, o, &pl, NULL), 0);
    uint64_t n = pi_plan_chunks(pl), *ord = malloc((n + 1) * sizeof *ord);
    ck_assert_ptr_nonnull(ord);
    for (uint64_t i = 0; i < n; i++)
        ord[i] = i;
    for (uint64_t i = n; shuffle && i > 1; i--) {
        uint64_t j = rnd() % i, t = ord[i - 1];
        ord[i - 1] = ord[j];
        ord[j] = t;
    }
    uint64_t r = UINT64_MAX;
    for (uint64_t i = 0; i < n; i++) {
        if (i == n / 2 && n > 0) ck_assert_int_eq(pi_plan_result(pl, &r), -EINVAL);
        ck_assert_int_eq(pi_run_chunk(pl, ord[i], NULL), 0);
    }
    ck_assert_int_eq(pi_run_chunk(pl, n, NULL), -EINVAL);
    ck_assert_int_eq(pi_plan_result(pl, &r), 0);
    pi_plan_destroy(pl);
    free(ord);
    ck_assert_uint_eq(in_use(), before);
    return r;
}

/* Published values (OEIS A006880). */
static const uint64_t pi_pow10[20] = {0,
                                      4,
                                      25,
                                      168,
                                      1229,
                                      9592,
                                      78498,
                                      664579,
                                      5761455,
                                      50847534,
                                      455052511,
                                      4118054813u,
                                      37607912018u,
                                      346065536839u,
                                      3204941750802u,
                                      29844570422669u,
                                      279238341033925u,
                                      2623557157654233u,
                                      24739954287740860u,
                                      234057667276344607u};

START_TEST(pi_matches_published_powers_of_ten)
{
    uint64_t p = 1;
    int kmax = slow_tests() ? 19 : slow_variant() ? 14 : 15;
    for (int k = 0; k <= kmax; k++, p *= 10)
        ck_assert_msg(pi_of(p) == pi_pow10[k], "pi(10^%d)", k);
}
END_TEST

START_TEST(pi_of_2_64_minus_1_is_published_value)
{
    ck_assert_uint_eq(pi_of(UINT64_MAX), 425656284035217743u);
}
END_TEST

START_TEST(pi_matches_primecount_near_2_63_and_2_64)
{
    uint64_t xs[] = {(1ull << 63) - 1 - rnd() % 1000000000, (1ull << 63) + rnd() % 1000000000,
                     UINT64_MAX - rnd() % 1000000000000u};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++)
        ck_assert_msg(pi_of(xs[i]) == pc_pi(xs[i]), "pi(%" PRIu64 ")", xs[i]);
}
END_TEST

START_TEST(pi_tiny_x_match_primesieve)
{
    /* 0 … 3, and both sides of the switch from a plain count to Deléglise–Rivat at 10^4 */
    for (uint64_t x = 0; x < 40; x++)
        ck_assert_uint_eq(pi_of(x), x < 2 ? 0 : oracle_u64("primesieve 2 %" PRIu64 " -c -q", x));
    for (uint64_t x = 9990; x <= 10010; x++)
        ck_assert_uint_eq(pi_of(x), oracle_u64("primesieve 2 %" PRIu64 " -c -q", x));
}
END_TEST

START_TEST(pi_matches_primecount_on_random_x_every_magnitude)
{
    int top = slow_variant() ? 13 : 15;
    for (int d = 3; d <= top; d++) {
        int reps = d <= 12 ? 4 : 1;
        for (int r = 0; r < reps; r++) {
            uint64_t x = rnd_magnitude(d);
            ck_assert_msg(pi_of(x) == pc_pi(x), "pi(%" PRIu64 ")", x);
        }
    }
}
END_TEST

/* Where the parameters step: x a cube (x^(1/3) and with it y change), a square (√x: the last
 * P2 prime), p² and p³ for primes p, and around them. */
START_TEST(pi_at_cubes_squares_and_prime_powers)
{
    uint64_t base[] = {21, 22, 100, 2154, 4642, 10000, 46416};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
        uint64_t k = base[i] + rnd() % 7, c = k * k * k;
        for (uint64_t x = c - 1; x <= c + 1; x++)
            ck_assert_msg(pi_of(x) == pc_pi(x), "pi(%" PRIu64 ")", x);
    }
    uint64_t primes[] = {101, 9973, 104729, 1299709, 9999991};
    for (size_t i = 0; i < sizeof primes / sizeof primes[0]; i++) {
        uint64_t p = primes[i], sq = p * p;
        for (uint64_t x = sq - 1; x <= sq + 1; x++)
            ck_assert_msg(pi_of(x) == pc_pi(x), "pi(%" PRIu64 ")", x);
        if (p < 50000) {
            uint64_t cb = p * p * p;
            for (uint64_t x = cb - 1; x <= cb + 1; x++)
                ck_assert_msg(pi_of(x) == pc_pi(x), "pi(%" PRIu64 ")", x);
        }
    }
}
END_TEST

/* α (and Gourdon's α_z), the segment size and the chunk count change y, z, x*, every segment and
 * chunk boundary, for both algorithms; the answer must not move. Tiny segments (1024 numbers =
 * one counter) put leaves on boundaries. */
START_TEST(pi_same_for_every_alpha_segment_and_chunking)
{
    uint64_t xs[] = {30011, 123456789, 1000000007, 98765432101u, 2199023255552u /* 2^41 */};
    double alphas[] = {1, 2.5, 7, 40}, alpha_zs[] = {1, 1.6, 4};
    uint64_t segs[] = {1024, 3072, 65536, 0};
    unsigned threads[] = {1, 3, 8};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        uint64_t want = pc_pi(xs[i]);
        for (size_t a = 0; a < 4; a++)
            for (size_t s = 0; s < 4; s++)
                for (int g = 0; g < 2; g++) {
                    if (xs[i] > 1e11 && segs[s] && segs[s] < 65536) continue; /* too many */
                    struct pi_opts o = {threads[(a + s) % 3], alphas[a], segs[s],
                                        g ? PI_ALGO_GOURDON : PI_ALGO_DR, alpha_zs[(a + s) % 3]};
                    uint64_t got = pi_plan_run(xs[i], &o, (a + s) % 2 == 1);
                    ck_assert_msg(got == want,
                                  "pi(%" PRIu64 ") %s alpha %g alpha_z %g seg %" PRIu64
                                  ": %" PRIu64,
                                  xs[i], g ? "gourdon" : "dr", alphas[a], o.alpha_z, segs[s], got);
                }
    }
}
END_TEST

/* The two algorithms share only the tables and the P2 term: on seeded random x of every
 * magnitude (and their default parameters) they must agree. */
START_TEST(gourdon_equals_dr_on_seeded_random_x)
{
    int top = slow_variant() ? 12 : 14;
    for (int d = 4; d <= top; d++) {
        for (int r = 0; r < (d <= 11 ? 6 : 2); r++) {
            uint64_t x = rnd_magnitude(d);
            struct pi_opts g = {.algo = PI_ALGO_GOURDON}, dr = {.algo = PI_ALGO_DR};
            uint64_t a = pi_plan_run(x, &g, false), b = pi_plan_run(x, &dr, r % 2 == 1);
            ck_assert_msg(a == b, "pi(%" PRIu64 "): gourdon %" PRIu64 ", dr %" PRIu64, x, a, b);
        }
    }
}
END_TEST

/* primecount prints every term of Gourdon's formula for given α_y, α_z (-s): with the same
 * parameters (y = ⌊α_y·x^(1/3)⌋, z = ⌊α_z·y⌋, the same x*) each of ours must equal its — Σ (ours
 * plus Σ0, which ours keeps in P2), A + C, B (our P2 plus Σ_{a<i<=π(√x)} (i − 1)) and Φ0 + D (its k
 * = 8 moves leaves between Φ0 and D, our c = 6; their sum is the same). An independent
 * implementation, term by term. */
static i128 pc_term(const char *out, const char *name)
{
    char key[32];
    snprintf(key, sizeof key, "\n%s = ", name);
    const char *at = strstr(out, key);
    ck_assert_msg(at != NULL, "primecount printed no %s", name);
    return (i128)strtoll(at + strlen(key), NULL, 10);
}

START_TEST(gourdon_terms_match_primecount_term_by_term)
{
    uint64_t xs[] = {1000000000000u, 31415926535897u,
                     slow_variant() ? 99999999977u : 1000000000000007u};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        uint64_t x = xs[i];
        char cmd[160], out[8192];
        snprintf(cmd, sizeof cmd, "primecount %" PRIu64 " --alpha-y=5 --alpha-z=2 -s -t1 2>&1", x);
        FILE *f = popen(cmd, "r");
        ck_assert_ptr_nonnull(f);
        size_t n = fread(out + 1, 1, sizeof out - 2, f);
        out[0] = '\n';
        out[n + 1] = '\0';
        ck_assert_int_eq(pclose(f), 0);
        struct pi_opts o = {.threads = 3, .alpha = 5, .algo = PI_ALGO_GOURDON, .alpha_z = 2};
        pi_plan *pl;
        ck_assert_int_eq(pi_plan_create(x, &o, &pl, NULL), 0);
        for (uint64_t c = 0; c < pi_plan_chunks(pl); c++)
            ck_assert_int_eq(pi_run_chunk(pl, c, NULL), 0);
        ck_assert_uint_eq(pl->y, (uint64_t)pc_term(out, "y"));
        ck_assert_uint_eq(pl->mmax, (uint64_t)pc_term(out, "z"));
        ck_assert_uint_eq(pl->xstar, (uint64_t)pc_term(out, "x_star"));
        struct pi_terms t;
        ck_assert_int_eq(pi_plan_terms(pl, &t), 0);
        i128 ps = (i128)pi_of(pl->sqrtx), a = pl->a;
        i128 sigma0 = a - 1 + ps * (ps - 1) / 2 - a * (a - 1) / 2; /* ours sits in P2 */
        ck_assert_msg(t.sigma + sigma0 == pc_term(out, "Sigma"), "Sigma of %" PRIu64, x);
        ck_assert_msg(t.c1 + t.ac == pc_term(out, "A + C"), "A + C of %" PRIu64, x);
        ck_assert_msg(t.p2 + ps * (ps - 1) / 2 - a * (a - 1) / 2 == pc_term(out, "B"),
                      "B of %" PRIu64, x);
        ck_assert_msg(t.s1 + t.hard == pc_term(out, "Phi0") + pc_term(out, "D"),
                      "Phi0 + D of %" PRIu64, x);
        pi_plan_destroy(pl);
    }
}
END_TEST

/* The plan's integer roots near 2^64: 65536^4 and 1626^6 overflow 64 bits, and the 4th-root loop
 * once spun forever there (a worker lost for good on /v1/pi?x=18446744073709551615). Creating the
 * plan is ~2.5 s; running it is `make slow-test` / `make bench-pi-huge`. */
START_TEST(pi_plan_parameters_near_2_64)
{
    uint64_t xs[] = {UINT64_MAX, 18445618199572250625u /* 65535^4 */, 18445618199572250624u};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        pi_plan *pl;
        struct pi_opts o = {.threads = 2};
        ck_assert_int_eq(pi_plan_create(xs[i], &o, &pl, NULL), 0);
        ck_assert(pl->gourdon);
        ck_assert_uint_gt(pl->y, pl->x13);
        ck_assert_uint_le(pl->y, pl->mmax);
        ck_assert_uint_le((u128)pl->mmax * pl->mmax, (u128)xs[i]); /* zg <= √x */
        uint64_t r4 = xs[i] >= 18445618199572250625u ? 65535 : 65534;
        ck_assert_uint_ge(pl->xstar, r4); /* x* >= ⌊x^(1/4)⌋ */
        ck_assert_uint_le(pl->xstar, pl->y);
        ck_assert_uint_gt(pi_plan_chunks(pl), 4);
        pi_plan_destroy(pl);
    }
}
END_TEST

START_TEST(pi_chunks_in_random_order_equal_sequential)
{
    uint64_t x = slow_variant() ? 3000000000000u : 300000000000000u;
    uint64_t seq = pi_of(x);
    for (unsigned t = 2; t <= 6; t += 4) {
        struct pi_opts o = {.threads = t};
        ck_assert_uint_eq(pi_plan_run(x, &o, true), seq);
    }
}
END_TEST

/* The chunks of one plan on real threads, claimed through an atomic cursor (as pool_parallel
 * does): the run TSan checks. */
struct par {
    pi_plan *plan;
    atomic_uint_fast64_t cursor;
    atomic_int err;
    const atomic_int *cancel;
};

static void *par_worker(void *arg)
{
    struct par *pa = arg;
    uint64_t n = pi_plan_chunks(pa->plan), i;
    while ((i = atomic_fetch_add(&pa->cursor, 1)) < n) {
        int rc = pi_run_chunk(pa->plan, i, pa->cancel);
        if (rc) {
            atomic_store(&pa->err, rc);
            break;
        }
    }
    return NULL;
}

static int par_run(uint64_t x, unsigned nthreads, const atomic_int *cancel, uint64_t *out)
{
    struct pi_opts o = {.threads = nthreads};
    struct par pa = {.cursor = 0, .err = 0, .cancel = cancel};
    int rc = pi_plan_create(x, &o, &pa.plan, cancel);
    if (rc) return rc;
    pthread_t th[8];
    for (unsigned i = 0; i < nthreads; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, par_worker, &pa), 0);
    for (unsigned i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    rc = atomic_load(&pa.err);
    if (rc == 0) rc = pi_plan_result(pa.plan, out);
    pi_plan_destroy(pa.plan);
    return rc;
}

START_TEST(pi_chunks_on_threads_equal_sequential)
{
    uint64_t x = slow_variant() ? 1000000000000u : 100000000000000u;
    uint64_t want = pi_of(x);
    for (unsigned t = 2; t <= 4; t++) {
        uint64_t got = 0;
        ck_assert_int_eq(par_run(x, t, NULL, &got), 0);
        ck_assert_uint_eq(got, want);
    }
    ck_assert_uint_eq(in_use(), 0);
}
END_TEST

static double thread_cpu(pthread_t t)
{
    clockid_t cid;
    struct timespec ts;
    ck_assert_int_eq(pthread_getcpuclockid(t, &cid), 0);
    ck_assert_int_eq(clock_gettime(cid, &ts), 0);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct bg {
    uint64_t x;
    atomic_int cancel;
    int rc;
    uint64_t pi;
};

static void *bg_pi(void *arg)
{
    struct bg *b = arg;
    b->rc = pi_count(b->x, &b->pi, &b->cancel);
    return NULL;
}

/* π(1e17) takes a minute; cancelled once it has used 0.05 … 1.5 s of CPU (tables, then hard,
 * P2, easy chunks) it must stop within 100 ms of CPU time (CPU, not wall: the machine is
 * shared; ×5 on sanitizer builds, which run 3-10x slower), say -ECANCELED and hold nothing
 * (LSan checks the heap at exit on the ASan build). */
START_TEST(pi_cancel_mid_run_stops_within_100ms_and_frees)
{
    double targets[] = {0.05, 0.3, 0.8, 1.5}, bound = slow_variant() ? 0.5 : 0.1;
    for (size_t k = 0; k < sizeof targets / sizeof targets[0]; k++) {
        struct bg b = {.x = 100000000000000000u, .cancel = 0, .rc = 1};
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, bg_pi, &b), 0);
        double c0 = 0;
        for (int i = 0; i < 60000 && (c0 = thread_cpu(t)) < targets[k]; i++) {
            struct timespec s = {0, 1000 * 1000};
            nanosleep(&s, NULL);
        }
        atomic_store(&b.cancel, 1);
        /* the thread's CPU clock dies with it: sample until it has returned */
        double c1 = c0;
        bool joined = false;
        for (int i = 0; i < 20000 && !joined; i++) {
            struct timespec s = {0, 1000 * 1000};
            nanosleep(&s, NULL);
            joined = pthread_tryjoin_np(t, NULL) == 0;
            if (!joined) c1 = thread_cpu(t);
        }
        ck_assert_msg(joined, "pi_count still running 20 s after cancel");
        ck_assert_int_eq(b.rc, -ECANCELED);
        ck_assert_msg(c1 - c0 < bound, "cancel at %.2f s CPU: %.3f s of CPU after it", c0, c1 - c0);
        ck_assert_uint_eq(in_use(), 0);
    }
}
END_TEST

/* Every kind of chunk looks at the flag: a set flag fails each one, and the plan survives. */
START_TEST(pi_every_chunk_and_create_honour_cancel)
{
    atomic_int flag = 1;
    pi_plan *pl = (pi_plan *)1;
    uint64_t r;
    ck_assert_int_eq(pi_plan_create(1000000000000u, NULL, &pl, &flag), -ECANCELED);
    ck_assert_ptr_null(pl);
    ck_assert_uint_eq(in_use(), 0);
    struct pi_opts o = {.threads = 2};
    ck_assert_int_eq(pi_plan_create(1000000000000u, &o, &pl, NULL), 0);
    for (uint64_t i = 0; i < pi_plan_chunks(pl); i++)
        ck_assert_int_eq(pi_run_chunk(pl, i, &flag), -ECANCELED);
    ck_assert_int_eq(pi_plan_result(pl, &r), -EINVAL);
    for (uint64_t i = 0; i < pi_plan_chunks(pl); i++) /* a failed chunk may run again */
        ck_assert_int_eq(pi_run_chunk(pl, i, NULL), 0);
    ck_assert_int_eq(pi_plan_result(pl, &r), 0);
    ck_assert_uint_eq(r, 37607912018u);
    pi_plan_destroy(pl);
    ck_assert_uint_eq(in_use(), 0);
    ck_assert_int_eq(pi_count(1000000000000u, &r, &flag), -ECANCELED);
    ck_assert_uint_eq(in_use(), 0);
}
END_TEST

/* Budget limits from nothing to enough, in steps small enough to fail every allocation site in
 * turn (tables, chunk list, hard-chunk arrays, a chunk's scratch, the combine): each call either
 * answers right or says -ENOMEM, and afterwards holds no byte. */
START_TEST(pi_budget_enomem_frees_everything)
{
    uint64_t x = 10000000000000u, want = 346065536839u;
    int ok = 0, nomem = 0;
    for (uint64_t limit = 0; limit <= 1200000; limit += limit < 200000 ? 4000 : 20000) {
        pi_mem_set_limit(limit);
        uint64_t r = 0;
        int rc = pi_count(x, &r, NULL);
        ck_assert_msg(rc == 0 || rc == -ENOMEM, "limit %" PRIu64 ": rc %d", limit, rc);
        if (rc == 0) {
            ck_assert_uint_eq(r, want);
            ok++;
        } else {
            nomem++;
        }
        ck_assert_uint_eq(in_use(), 0);
    }
    pi_mem_set_limit(PI_MEM_LIMIT_DEFAULT);
    ck_assert_int_gt(ok, 0);
    ck_assert_int_gt(nomem, 2);
}
END_TEST

START_TEST(nth_matches_primecount_on_random_k)
{
    sieve_ctx *ctx = sieve_ctx_create(0);
    ck_assert_ptr_nonnull(ctx);
    int top = slow_variant() ? 11 : 13;
    for (int d = 3; d <= top; d++) {
        uint64_t k = rnd_magnitude(d), got = 0;
        ck_assert_int_eq(sieve_nth(ctx, k, &got, NULL), 0);
        ck_assert_msg(got == oracle_u64("primecount -n %" PRIu64, k), "nth(%" PRIu64 ")", k);
    }
    sieve_ctx_destroy(ctx);
}
END_TEST

/* The model the service uses to pick a method and refuse hopeless requests: π's cost grows
 * with x; counting a wide range costs more by sieve than by two π, a narrow one less. */
START_TEST(cost_model_orders_methods)
{
    double prev = 0;
    for (uint64_t x = 1000; x < UINT64_MAX / 10; x *= 10) {
        double c = pi_cost_seconds(x);
        ck_assert(c >= prev && c > 0);
        prev = c;
    }
    ck_assert(pi_cost_seconds(UINT64_MAX) < 3600 * 4);
    ck_assert(pi_sieve_cost_seconds(0, 1000000000000000u) > 2 * pi_cost_seconds(1000000000000000u));
    uint64_t lo = 1000000000000000u;
    ck_assert(pi_sieve_cost_seconds(lo, lo + 1000000) < 2 * pi_cost_seconds(lo));
    ck_assert(pi_sieve_cost_seconds(5, 4) == 0);
}
END_TEST

static Suite *pi_suite(void)
{
    Suite *s = suite_create("pi");
    TCase *tc = tcase_create("pi");
    tcase_set_timeout(tc, slow_tests() ? 36000 : slow_variant() ? 900 : 300);
    tcase_add_test(tc, pi_tiny_x_match_primesieve);
    tcase_add_test(tc, pi_matches_published_powers_of_ten);
    tcase_add_test(tc, pi_matches_primecount_on_random_x_every_magnitude);
    tcase_add_test(tc, pi_at_cubes_squares_and_prime_powers);
    tcase_add_test(tc, pi_same_for_every_alpha_segment_and_chunking);
    tcase_add_test(tc, gourdon_equals_dr_on_seeded_random_x);
    tcase_add_test(tc, gourdon_terms_match_primecount_term_by_term);
    tcase_add_test(tc, pi_plan_parameters_near_2_64);
    tcase_add_test(tc, pi_chunks_in_random_order_equal_sequential);
    tcase_add_test(tc, pi_chunks_on_threads_equal_sequential);
    tcase_add_test(tc, pi_cancel_mid_run_stops_within_100ms_and_frees);
    tcase_add_test(tc, pi_every_chunk_and_create_honour_cancel);
    tcase_add_test(tc, pi_budget_enomem_frees_everything);
    tcase_add_test(tc, nth_matches_primecount_on_random_k);
    tcase_add_test(tc, cost_model_orders_methods);
    suite_add_tcase(s, tc);
    if (slow_tests()) { /* minutes to hours: scripts/pi-slow-test.sh, `make slow-test` */
        TCase *big = tcase_create("pi_near_2_64");
        tcase_set_timeout(big, 36000);
        tcase_add_test(big, pi_of_2_64_minus_1_is_published_value);
        tcase_add_test(big, pi_matches_primecount_near_2_63_and_2_64);
        suite_add_tcase(s, big);
    }
    return s;
}

PRIMED_CHECK_MAIN(pi_suite)
