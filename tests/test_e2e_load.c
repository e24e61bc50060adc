/* test_e2e_load.c — admission control under a small, bounded load: a full queue answers 503
 * overloaded with Retry-After at once, a request past request_timeout_ms gets 504, the stream
 * memory budget refuses a stream that does not fit, and /healthz keeps answering throughout. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "harness.h"

struct call {
    int port;
    const char *path;
    struct http_result r; /* valid once done is set (release/acquire) */
    atomic_int done;
};

static void *do_get(void *arg)
{
    struct call *c = arg;
    http_get(c->port, c->path, &c->r);
    atomic_store_explicit(&c->done, 1, memory_order_release);
    return NULL;
}

static bool overloaded(struct call *c)
{
    return atomic_load_explicit(&c->done, memory_order_acquire) && c->r.status == 503;
}

START_TEST(full_queue_returns_503_overloaded_with_retry_after)
{
    struct primed_proc p;
    const char *args[] = {"--workers",
                          "1",
                          "--queue-capacity",
                          "1",
                          "--request-timeout-ms",
                          "60000",
                          "--shutdown-timeout",
                          "1",
                          NULL};
    ck_assert_int_eq(primed_start(&p, args), 0);
    enum { N = 6 };
    struct call c[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        /* A sieved window near 1e18 (π(1e18) would cost more): ~45 s of work, within what
         * refuse_hopeless lets through for the 60 s deadline. */
        c[i] = (struct call){.port = p.port, .path = "/v1/count?from=1e18&to=1000000030000000000"};
        pthread_create(&t[i], NULL, do_get, &c[i]);
        /* The first one must be running (not merely queued) before the rest arrive. */
        for (int k = 0; i == 0 && k < 1000; k++) {
            struct http_result m;
            int busy = http_get(p.debug_port, "/metrics", &m) == 0 &&
                       strstr(m.body, "\nprimed_workers_busy 1\n");
            http_result_free(&m);
            if (busy) break;
            usleep(10000);
        }
    }
    /* 1 running + 1 queued; the other 4 must be refused quickly, long before any count ends. */
    int n503 = 0;
    for (int i = 0; i < 3000 && n503 < N - 2; i++) {
        n503 = 0;
        for (int k = 0; k < N; k++)
            n503 += overloaded(&c[k]);
        usleep(10000);
    }
    ck_assert_int_eq(n503, N - 2);
    for (int k = 0; k < N; k++) {
        if (!overloaded(&c[k])) continue;
        ck_assert_ptr_nonnull(strstr(c[k].r.body, "\"code\":\"overloaded\""));
        char ra[16];
        ck_assert_int_eq(http_header_value(&c[k].r, "Retry-After", ra, sizeof ra), 0);
    }
    struct http_result h;
    ck_assert_int_eq(http_get(p.port, "/healthz", &h), 0); /* the I/O thread is not blocked */
    ck_assert_int_eq(h.status, 200);
    http_result_free(&h);
    ck_assert_int_eq(http_get(p.port, "/metrics", &h), 0);
    ck_assert_ptr_nonnull(strstr(h.body, "primed_jobs_total{outcome=\"rejected\"} 4"));
    http_result_free(&h);
    ck_assert_int_eq(primed_stop(&p, SIGTERM, 30000), 0); /* cancels the two counts */
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        http_result_free(&c[i].r);
    }
}
END_TEST

START_TEST(request_past_its_deadline_returns_504)
{
    struct primed_proc p;
    /* refuse_hopeless off: these would be refused up front (tests/test_e2e_api.c), and this
     * test is about the deadline ending work that was attempted. */
    const char *args[] = {"--workers", "1",    "--request-timeout-ms", "50",
                          "--max-nth", "1e13", "--refuse-hopeless",    "false",
                          NULL};
    ck_assert_int_eq(primed_start(&p, args), 0);
    struct http_result r;
    ck_assert_int_eq(http_get(p.port, "/v1/count?from=0&to=1e13", &r), 0);
    ck_assert_int_eq(r.status, 504);
    ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"deadline_exceeded\""));
    ck_assert(r.seconds < 5.0); /* stopped within a segment, not after the whole count */
    http_result_free(&r);
    ck_assert_int_eq(http_get(p.port, "/v1/nth?n=1e13", &r), 0);
    ck_assert_int_eq(r.status, 504);
    http_result_free(&r);
    ck_assert_int_eq(http_get(p.port, "/metrics", &r), 0);
    ck_assert_ptr_nonnull(strstr(r.body, "primed_jobs_total{outcome=\"timeout\"} 2"));
    ck_assert_ptr_nonnull(strstr(r.body, "\nprimed_workers_busy 0\n"));
    http_result_free(&r);
    ck_assert_int_eq(primed_stop(&p, SIGTERM, 10000), 0);
}
END_TEST

START_TEST(stream_over_memory_budget_returns_503)
{
    struct primed_proc p;
    const char *args[] = {"--workers",
                          "2",
                          "--stream-buffer-bytes",
                          "262144",
                          "--memory-budget",
                          "300000",
                          "--shutdown-timeout",
                          "1",
                          NULL};
    ck_assert_int_eq(primed_start(&p, args), 0);
    /* The first stream holds its buffer while its slow reader never reads (a raw socket that
     * sends the request and then sleeps). */
    struct call c = {.port = p.port, .path = "/v1/primes?from=0&to=1e10"};
    pid_t reader = -1;
    {
        char cmd[256];
        snprintf(
            cmd, sizeof cmd,
            "exec 3<>/dev/tcp/127.0.0.1/%d; printf 'GET %s HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' >&3;"
            " sleep 3",
            p.port, c.path);
        pid_t pid = fork();
        if (pid == 0) {
            execl("/bin/bash", "bash", "-c", cmd, (char *)NULL);
            _exit(127);
        }
        reader = pid;
    }
    int got = 0;
    for (int i = 0; i < 300 && !got; i++) {
        struct http_result m;
        http_get(p.port, "/metrics", &m);
        got = strstr(m.body, "\nprimed_streams_active 1\n") != NULL;
        http_result_free(&m);
        usleep(10000);
    }
    ck_assert_msg(got, "the first stream never started");
    struct http_result r;
    ck_assert_int_eq(http_get(p.port, "/v1/primes?from=0&to=100", &r), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_ptr_nonnull(strstr(r.body, "\"code\":\"overloaded\""));
    http_result_free(&r);
    kill(reader, SIGKILL);
    waitpid(reader, NULL, 0);
    ck_assert_int_eq(primed_stop(&p, SIGTERM, 30000), 0);
}
END_TEST

START_TEST(tiny_stream_buffers_still_stream_the_whole_list)
{
    struct primed_proc p;
    const char *args[] = {"--workers", "1", "--stream-buffer-bytes", "4096", NULL};
    ck_assert_int_eq(primed_start(&p, args), 0);
    struct http_result r;
    ck_assert_int_eq(http_get(p.port, "/v1/primes?from=0&to=1e6", &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, ",999983],\"count\":78498}")); /* π(10^6) */
    http_result_free(&r);
    ck_assert_int_eq(primed_stop(&p, SIGTERM, 10000), 0);
}
END_TEST

static Suite *e2e_load_suite(void)
{
    Suite *s = suite_create("e2e_load");
    TCase *tc = tcase_create("load");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, full_queue_returns_503_overloaded_with_retry_after);
    tcase_add_test(tc, request_past_its_deadline_returns_504);
    tcase_add_test(tc, stream_over_memory_budget_returns_503);
    tcase_add_test(tc, tiny_stream_buffers_still_stream_the_whole_list);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(e2e_load_suite)
