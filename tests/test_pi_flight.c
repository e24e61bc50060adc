/* test_pi_flight.c — api_pi (src/pi_flight.c) on a real pool of 2 workers: one computation for
 * many requests of the same x (single-flight), a leaving participant's chunks finished by the one
 * that stays, the work stopping and every table freed when all leave, reuse of a cached
 * neighbour (both sides) and nth from a cached point, the cache off, and a failed computation
 * reaching every participant. Values against primecount (and the engine's pi_count on this
 * thread where many are needed). Also the TSan exercise of
 * the registry, the flights' chunk states and the cache under concurrent requests. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_op.h"
#include "check_main.h"
#include "testutil.h"
#include "primed/config.h"
#include "primed/pi.h"
#include "primed/picache.h"
#include "primed/pool.h"

static struct primed_config cfg;
static struct api_ctx ctx;

static bool slow_variant(void)
{
    const char *v = getenv("PRIMED_VARIANT");
    return v && strcmp(v, "release") != 0;
}

/* An x whose π takes long enough that requests sent together overlap (~0.8 s of CPU in a
 * release build at 1e14, several seconds under a sanitizer at 1e13). */
/* Long enough that participants are still inside it after 100 ms (300 ms under the sanitizers):
 * Gourdon's π(1e14) takes ~0.2 s on 2 workers, π(1e13) ~0.3 s under ASan. */
static uint64_t big_x(void)
{
    return slow_variant() ? 100000000000000ull : 1000000000000000ull;
}

static void setup(bool with_cache)
{
    config_defaults(&cfg);
    cfg.workers = 2;
    ctx = (struct api_ctx){.cfg = &cfg};
    if (with_cache) ck_assert_int_eq(picache_create(PICACHE_BYTES_DEFAULT, NULL, &ctx.pic), 0);
    ctx.pool = pool_create(2, 64, api_worker_init, api_worker_fini, &ctx);
    ck_assert_ptr_nonnull(ctx.pool);
}

static void teardown(void)
{
    pool_destroy(ctx.pool);
    picache_destroy(ctx.pic);
    ctx = (struct api_ctx){0};
}

/* One request: api_pi on a worker with the job's own cancel. */
struct req {
    struct pool_job job;
    uint64_t x, pi;
    int rc;
    atomic_bool running, done;
    uint64_t done_ns;
};

static enum pool_outcome req_run(struct pool_job *job, void *local)
{
    struct req *r = (struct req *)job;
    atomic_store(&r->running, true);
    if (!local) {
        r->rc = -ECANCELED;
    } else {
        r->rc = api_pi(&ctx, local, r->x, &r->pi, &job->cancel);
    }
    return POOL_DONE;
}

static void req_done(struct pool_job *job)
{
    struct req *r = (struct req *)job;
    r->done_ns = pool_now_ns();
    atomic_store(&r->done, true);
}

static void submit(struct req *r, uint64_t x)
{
    memset(r, 0, sizeof *r);
    r->x = x;
    r->job.run = req_run;
    r->job.done = req_done;
    ck_assert_int_eq(pool_submit(ctx.pool, &r->job), 0);
}

static bool wait_done(struct req *r, int ms)
{
    for (int i = 0; i < ms && !atomic_load(&r->done); i++)
        usleep(1000);
    return atomic_load(&r->done);
}

static struct api_pi_stats stats(void)
{
    struct api_pi_stats st;
    api_pi_stats_get(&st);
    return st;
}

static uint64_t pi_memory_in_use(void)
{
    struct pi_mem_stats ms;
    pi_mem_stats_get(&ms);
    return ms.in_use;
}

static uint64_t pi_of(uint64_t x)
{
    uint64_t r = 0;
    ck_assert_int_eq(pi_count(x, &r, NULL), 0);
    return r;
}

START_TEST(same_x_from_8_requests_is_computed_once)
{
    setup(true);
    uint64_t x = big_x() + 12345, want = oracle_u64("primecount %" PRIu64, x);
    struct api_pi_stats before = stats();
    struct req r[8];
    for (int i = 0; i < 8; i++)
        submit(&r[i], x);
    for (int i = 0; i < 8; i++) {
        ck_assert(wait_done(&r[i], 600000));
        ck_assert_int_eq(r[i].rc, 0);
        ck_assert_uint_eq(r[i].pi, want);
    }
    struct api_pi_stats after = stats();
    ck_assert_uint_eq(after.engine - before.engine, 1); /* one computation … */
    ck_assert_uint_ge(after.joined - before.joined, 1); /* … the second worker joined it */
    ck_assert_uint_eq(after.inflight, 0);
    struct picache_stats cs;
    picache_stats_get(ctx.pic, &cs);
    ck_assert_uint_le(cs.hits + (after.joined - before.joined), 7); /* the rest were cached */
    ck_assert_uint_eq(pi_memory_in_use(), 0);
    teardown();
}
END_TEST

/* A and B asking for x, B joined to A's flight, the computation some chunks in (the prologue
 * of the tests where participants leave). */
static void submit_joined_pair(struct req *a, struct req *b, uint64_t x)
{
    struct api_pi_stats before = stats();
    submit(a, x);
    submit(b, x);
    for (int i = 0; i < 60000 && stats().joined == before.joined; i++)
        usleep(1000);
    ck_assert_uint_eq(stats().joined - before.joined, 1);
    usleep(slow_variant() ? 300000 : 100000); /* some chunks under way */
}

/* A and B in one flight; A's client leaves: A answers at once, B gets the value, and the work
 * was not started over (one computation). */
START_TEST(a_leaving_participant_hands_over)
{
    setup(false); /* single-flight works without the cache */
    uint64_t x = big_x() + 777, want = pi_of(x);
    struct api_pi_stats before = stats();
    struct req a, b;
    submit_joined_pair(&a, &b, x);
    uint64_t t0 = pool_now_ns();
    pool_job_cancel(&a.job, POOL_CANCEL_CLIENT);
    ck_assert(wait_done(&a, 10000));
    ck_assert_int_eq(a.rc, -ECANCELED);
    uint64_t left_ms = (a.done_ns - t0) / 1000000;
    fprintf(stderr, "a participant left %" PRIu64 " ms after its cancel\n", left_ms);
    ck_assert_msg(left_ms < (slow_variant() ? 1000u : 200u), "A took %" PRIu64 " ms to leave",
                  left_ms);
    ck_assert(wait_done(&b, 600000));
    ck_assert_int_eq(b.rc, 0);
    ck_assert_uint_eq(b.pi, want);
    ck_assert_uint_eq(stats().engine - before.engine, 1);
    ck_assert_uint_eq(stats().inflight, 0);
    ck_assert_uint_eq(pi_memory_in_use(), 0);
    teardown();
}
END_TEST

/* Both leave: both answer within the engine's poll, nothing is in flight, the plan's tables are
 * back in the π budget, and the next request computes it afresh (and right). */
START_TEST(all_leaving_stops_the_work)
{
    setup(true);
    uint64_t x = big_x() * 3, want = pi_of(x);
    struct api_pi_stats before = stats();
    struct req a, b;
    submit_joined_pair(&a, &b, x);
    uint64_t t0 = pool_now_ns();
    pool_job_cancel(&a.job, POOL_CANCEL_CLIENT);
    pool_job_cancel(&b.job, POOL_CANCEL_DEADLINE);
    ck_assert(wait_done(&a, 10000) && wait_done(&b, 10000));
    ck_assert_int_eq(a.rc, -ECANCELED);
    ck_assert_int_eq(b.rc, -ECANCELED);
    uint64_t ms = ((a.done_ns > b.done_ns ? a.done_ns : b.done_ns) - t0) / 1000000;
    fprintf(stderr, "all left: the work stopped %" PRIu64 " ms after the cancels\n", ms);
    ck_assert_msg(ms < (slow_variant() ? 1000u : 100u), "stopped after %" PRIu64 " ms", ms);
    ck_assert_uint_eq(stats().inflight, 0);
    ck_assert_uint_eq(pi_memory_in_use(), 0);
    uint64_t v;
    ck_assert(!picache_peek(ctx.pic, x, &v));
    struct req c;
    submit(&c, x);
    ck_assert(wait_done(&c, 600000));
    ck_assert_int_eq(c.rc, 0);
    ck_assert_uint_eq(c.pi, want);
    ck_assert_uint_eq(stats().engine - before.engine, 2);
    teardown();
}
END_TEST

/* With π(x0) cached, π(x0 ± d) is π(x0) ± a sieved gap (counted as "gap", not "engine"), on
 * both sides; a far x is computed. nth from a cached point walks. Sequential (no pool). */
START_TEST(neighbours_and_walks)
{
    config_defaults(&cfg);
    cfg.workers = 1;
    ctx = (struct api_ctx){.cfg = &cfg};
    ck_assert_int_eq(picache_create(PICACHE_BYTES_DEFAULT, NULL, &ctx.pic), 0);
    struct api_worker *w = api_worker_init(&ctx);
    ck_assert_ptr_nonnull(w);
    uint64_t x0 = 1000000000000ull, v, pi0 = oracle_u64("primecount %" PRIu64, x0);
    struct api_pi_stats s0 = stats();
    ck_assert_int_eq(api_pi(&ctx, w, x0, &v, NULL), 0);
    ck_assert_uint_eq(v, pi0);
    ck_assert_uint_eq(stats().engine - s0.engine, 1);
    const uint64_t xs[] = {x0 + 1, x0 + 1000003, x0 - 1, x0 - 999999, x0 + 2, 99999999977ull};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        ck_assert_int_eq(api_pi(&ctx, w, xs[i], &v, NULL), 0);
        ck_assert_uint_eq(v, oracle_u64("primecount %" PRIu64, xs[i]));
    }
    struct api_pi_stats s1 = stats();
    ck_assert_uint_eq(s1.gap - s0.gap, 5);
    ck_assert_uint_eq(s1.engine - s0.engine, 2); /* 1e12 and the far 1e11-ish */
    ck_assert_double_lt(api_pi_cost_seconds(&ctx, x0 + 5), pi_cost_seconds(x0 + 5) / 10);
    ck_assert_double_eq(api_pi_cost_seconds(&ctx, x0), 0);

    /* nth: π(x0) is cached, so the primes around x0 are a walk from it, up and down */
    const uint64_t ks[] = {pi0 + 10, pi0, pi0 - 3};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        uint64_t p = 0;
        ck_assert_int_eq(api_nth_walk(&ctx, w, ks[i], 1.0, &p, NULL), 0);
        ck_assert_uint_eq(p, oracle_u64("primecount %" PRIu64 " -n", ks[i]));
    }
    /* From the nearest cached π: back from (10^4, π(10^4)), not 4e9 primes from the 1e11 one. */
    picache_put(ctx.pic, 10000, oracle_u64("primecount 10000"));
    const uint64_t small[] = {1130, 1000};
    for (size_t i = 0; i < 2; i++) {
        uint64_t p = 0;
        ck_assert_int_eq(api_nth_walk(&ctx, w, small[i], 1.0, &p, NULL), 0);
        ck_assert_uint_eq(p, oracle_u64("primecount %" PRIu64 " -n", small[i]));
    }
    uint64_t p = 0;
    ck_assert_int_eq(api_nth_walk(&ctx, w, 1000, 1e-9, &p, NULL), 1); /* nothing that cheap */
    ck_assert_uint_eq(stats().walks - s1.walks, 5);
    api_worker_fini(&ctx, w);
    picache_destroy(ctx.pic);
    ctx = (struct api_ctx){0};
}
END_TEST

/* The π budget cannot hold the plan: every participant gets -ENOMEM, nothing stays in flight
 * or held, and with the budget back the same x is computed. */
START_TEST(a_failed_computation_reaches_everyone)
{
    setup(true);
    uint64_t x = big_x() + 99;
    pi_mem_set_limit(4096);
    struct req r[4];
    for (int i = 0; i < 4; i++)
        submit(&r[i], x);
    for (int i = 0; i < 4; i++) {
        ck_assert(wait_done(&r[i], 60000));
        ck_assert_int_eq(r[i].rc, -ENOMEM);
    }
    pi_mem_set_limit(PI_MEM_LIMIT_DEFAULT);
    ck_assert_uint_eq(stats().inflight, 0);
    ck_assert_uint_eq(pi_memory_in_use(), 0);
    submit(&r[0], x);
    ck_assert(wait_done(&r[0], 600000));
    ck_assert_int_eq(r[0].rc, 0);
    ck_assert_uint_eq(r[0].pi, pi_of(x));
    teardown();
}
END_TEST

/* Many different and repeated x from 6 submitters at once (TSan's exercise): every answer
 * right, nothing left in flight. */
START_TEST(mixed_concurrent_requests)
{
    setup(true);
    enum { N = 48 };
    static struct req r[N];
    uint64_t seed = 0x1234567ull;
    uint64_t base = slow_variant() ? 1000000000ull : 100000000000ull;
    for (int i = 0; i < N; i++)
        submit(&r[i], base + (xorshift64(&seed) % 6) * (base / 1000) + (i % 3));
    for (int i = 0; i < N; i++) {
        ck_assert(wait_done(&r[i], 600000));
        ck_assert_int_eq(r[i].rc, 0);
        ck_assert_uint_eq(r[i].pi, pi_of(r[i].x));
    }
    ck_assert_uint_eq(stats().inflight, 0);
    teardown();
}
END_TEST

static Suite *pi_flight_suite(void)
{
    Suite *s = suite_create("pi_flight");
    TCase *tc = tcase_create("pi_flight");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, same_x_from_8_requests_is_computed_once);
    tcase_add_test(tc, a_leaving_participant_hands_over);
    tcase_add_test(tc, all_leaving_stops_the_work);
    tcase_add_test(tc, neighbours_and_walks);
    tcase_add_test(tc, a_failed_computation_reaches_everyone);
    tcase_add_test(tc, mixed_concurrent_requests);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(pi_flight_suite)
