/* test_e2e_stream.c — clients that are slow or leave cost nothing they no longer use.
 * Slow readers of /v1/primes cost their buffer, never a worker: with one worker and four streams
 * whose clients stop reading, other requests are still answered (before parking, they waited for
 * the held worker and got 504 at request_timeout_ms); once the slow clients go away every stream
 * is freed, no worker stays busy and SIGTERM exits 0 (no leak under ASan: LSan makes the exit
 * status non-zero). A client that disconnects while its computation is queued or running (its
 * connection suspended, which libmicrohttpd does not watch) has that work cancelled at once,
 * while a client that pipelines its next request is not mistaken for one that left. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_main.h"
#include "harness.h"

/* A client that sends the request, reads a little of the response and then stops reading,
 * keeping the connection open. A small receive buffer makes the server's side fill up soon. */
static int slow_client(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    int rcvbuf = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    char buf[1024];
    ssize_t got = read(fd, buf, sizeof buf - 1); /* a little, then never again */
    ck_assert_int_gt(got, 0);
    buf[got] = '\0';
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "slow stream answered: %.40s", buf);
    return fd;
}

/* Poll /metrics (≤ 15 s) until name == want; returns the last value seen. */
static long wait_metric(int port, const char *name, long want)
{
    return http_wait_metric(port, name, want, 15000);
}

static long json_count(const char *body)
{
    const char *p = strstr(body, "\"count\":");
    return p ? strtol(p + 8, NULL, 10) : -1;
}

START_TEST(slow_stream_readers_do_not_hold_the_only_worker)
{
    struct primed_proc p;
    const char *args[] = {"--workers", "1", "--request-timeout-ms", "5000", NULL};
    ck_assert_int_eq(primed_start(&p, args), 0);
    int mport = p.debug_port ? p.debug_port : p.port;

    int fds[4];
    for (int i = 0; i < 4; i++)
        fds[i] = slow_client(p.port, i % 2 ? "/v1/primes?from=0&to=1e10&format=text"
                                           : "/v1/primes?from=0&to=1e10");
    /* Every producer fills its buffer and gives the worker back. */
    ck_assert_int_eq(wait_metric(mport, "primed_streams_active", 4), 4);
    ck_assert_int_eq(wait_metric(mport, "primed_stream_producers_parked", 4), 4);
    ck_assert_int_eq(wait_metric(mport, "primed_workers_busy", 0), 0);

    /* While the four slow streams stay open, work that needs the worker is served. */
    struct http_result r;
    ck_assert_int_eq(http_get(p.port, "/v1/count?from=0&to=1e6", &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(json_count(r.body), 78498); /* π(10^6) */
    http_result_free(&r);
    ck_assert_int_eq(http_get(p.port, "/v1/primes?from=0&to=1000", &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(json_count(r.body), 168); /* π(1000) */
    http_result_free(&r);
    ck_assert_int_eq(wait_metric(mport, "primed_streams_active", 4), 4); /* still open */

    for (int i = 0; i < 4; i++)
        close(fds[i]);
    /* The disconnects cancel the parked producers, which finish and free their streams. */
    ck_assert_int_eq(wait_metric(mport, "primed_streams_active", 0), 0);
    ck_assert_int_eq(wait_metric(mport, "primed_stream_producers_parked", 0), 0);
    ck_assert_int_eq(wait_metric(mport, "primed_workers_busy", 0), 0);
    ck_assert_int_eq(wait_metric(mport, "primed_stream_buffer_bytes", 0), 0);
    /* Five streams ran (four slow, one short), each with a fresh buffer; of the five buffers
     * two (2 × workers) stay idle for reuse and the next stream takes one of them. */
    ck_assert_int_eq(wait_metric(mport, "primed_stream_buffer_cache_buffers", 2), 2);
    ck_assert_int_eq(wait_metric(mport, "primed_stream_buffer_cache_misses_total", 5), 5);
    ck_assert_int_eq(wait_metric(mport, "primed_stream_buffer_cache_hits_total", 0), 0);
    ck_assert_int_eq(http_get(p.port, "/v1/primes?from=0&to=1000", &r), 0);
    ck_assert_int_eq(json_count(r.body), 168);
    http_result_free(&r);
    ck_assert_int_eq(wait_metric(mport, "primed_stream_buffer_cache_hits_total", 1), 1);
    ck_assert_int_eq(wait_metric(mport, "primed_stream_buffer_cache_buffers", 2), 2);
    ck_assert_int_eq(primed_stop(&p, SIGTERM, 20000), 0);
}
END_TEST

/* A client that sends `req` and then reads nothing (yet). */
static int raw_client(int port, const char *req)
{
    int fd = http_send_raw(port, req);
    ck_assert_int_ge(fd, 0);
    return fd;
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

START_TEST(clients_that_leave_a_computation_have_it_cancelled)
{
    struct primed_proc p;
    /* Minutes of work per request, and nothing that would end it but the client. */
    const char *args[] = {"--workers", "1", "--request-timeout-ms", "3600000", "--refuse-hopeless",
                          "false",     NULL};
    ck_assert_int_eq(primed_start(&p, args), 0);
    int mport = p.debug_port ? p.debug_port : p.port;

    /* One running (π(10^18) through the combinatorial engine), two queued behind it: a count
     * that sieves 10^12 numbers near 10^18 and a stream that has not produced a byte yet. */
    int run = raw_client(p.port, GET("/v1/pi?x=1e18"));
    ck_assert_int_eq(wait_metric(mport, "primed_workers_busy", 1), 1);
    int q1 = raw_client(p.port, GET("/v1/count?from=1e18&to=1000001000000000000"));
    int q2 = raw_client(p.port, GET("/v1/primes?from=1e18&to=1000001000000000000"));
    ck_assert_int_eq(wait_metric(mport, "primed_queue_depth", 2), 2);
    ck_assert_int_eq(wait_metric(mport, "primed_inflight_requests", 4), 4); /* + this scrape */
    long held = 0; /* π's tables are allocated and accounted (≤ 15 s) */
    for (int i = 0; i < 1500 && held <= 0; i++, usleep(10000))
        held = http_metric(mport, "primed_pi_memory_bytes");
    ck_assert_int_gt(held, 0);

    close(q1); /* queued: its job must never start */
    ck_assert_int_eq(wait_metric(mport, "primed_client_hangups_total", 1), 1);
    close(run); /* running: the engine must stop */
    close(q2);
    ck_assert_int_eq(wait_metric(mport, "primed_client_hangups_total", 3), 3);
    ck_assert_int_eq(wait_metric(mport, "primed_workers_busy", 0), 0);
    ck_assert_int_eq(wait_metric(mport, "primed_queue_depth", 0), 0);
    ck_assert_int_eq(wait_metric(mport, "primed_inflight_requests", 1), 1); /* the scrape */
    ck_assert_int_eq(wait_metric(mport, "primed_pi_memory_bytes", 0), 0);
    ck_assert_int_eq(wait_metric(mport, "primed_streams_active", 0), 0);
    ck_assert_int_eq(http_metric(mport, "primed_jobs_total{outcome=\"cancelled\"}"), 3);
    /* Logged and counted as 499 (client closed the request), not as an answer. */
    ck_assert_int_eq(http_metric(mport, "primed_http_requests_total{handler=\"pi\",method=\"GET\","
                                        "code=\"499\"}"),
                     1);
    ck_assert_int_eq(http_metric(mport,
                                 "primed_http_requests_total{handler=\"count\",method=\"GET\","
                                 "code=\"499\"}"),
                     1);

    /* The worker is free: work that needs it is answered. */
    struct http_result r;
    ck_assert_int_eq(http_get(p.port, "/v1/count?from=0&to=1e6", &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(json_count(r.body), 78498);
    http_result_free(&r);

    /* A client that pipelines its next request while the first computes is still there: its
     * socket is readable (POLLIN), not hung up, and both answers arrive. π(10^14) runs for many
     * watcher rounds; π(10^14) and π(10^12) are published values. */
    int pl = raw_client(p.port, GET("/v1/pi?x=1e14") GET("/v1/pi?x=1e12"));
    static char buf[8192];
    size_t got = 0;
    ssize_t k;
    while (!strstr(buf, "\"pi\":37607912018}") && got + 1 < sizeof buf &&
           (k = read(pl, buf + got, sizeof buf - 1 - got)) > 0) { /* 30 s bound per read */
        got += (size_t)k;
        buf[got] = '\0';
    }
    close(pl);
    ck_assert_msg(strstr(buf, "\"pi\":3204941750802}"), "pipelined: %s", buf);
    ck_assert_msg(strstr(buf, "\"pi\":37607912018}"), "pipelined: %s", buf);
    ck_assert_int_eq(http_metric(mport, "primed_client_hangups_total"), 3);
    ck_assert_int_eq(primed_stop(&p, SIGTERM, 20000), 0);
}
END_TEST

START_TEST(sigterm_with_parked_slow_streams_cancels_them_and_exits_0)
{
    struct primed_proc p;
    const char *args[] = {"--workers", "1", "--shutdown-timeout", "1", NULL};
    ck_assert_int_eq(primed_start(&p, args), 0);
    int mport = p.debug_port ? p.debug_port : p.port;
    int fds[2];
    for (int i = 0; i < 2; i++)
        fds[i] = slow_client(p.port, "/v1/primes?from=0&to=1e10");
    ck_assert_int_eq(wait_metric(mport, "primed_stream_producers_parked", 2), 2);
    /* The drain times out (the clients never read), the parked streams are cancelled, resumed
     * to finish, and freed; every thread is joined. */
    ck_assert_int_eq(primed_stop(&p, SIGTERM, 20000), 0);
    for (int i = 0; i < 2; i++)
        close(fds[i]);
}
END_TEST

static Suite *e2e_stream_suite(void)
{
    Suite *s = suite_create("e2e_stream");
    TCase *tc = tcase_create("e2e_stream");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, slow_stream_readers_do_not_hold_the_only_worker);
    tcase_add_test(tc, sigterm_with_parked_slow_streams_cancels_them_and_exits_0);
    tcase_add_test(tc, clients_that_leave_a_computation_have_it_cancelled);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(e2e_stream_suite)
