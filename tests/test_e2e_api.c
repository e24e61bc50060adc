/* test_e2e_api.c — every /v1 endpoint through HTTP against the real binary, with primesieve /
 * primecount CLIs as oracles: 2^64 edges, JSON and text listings, batch, errors, and a stream
 * aborted by the client mid-way after which the server is healthy and every worker idle. */
#include <check.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "harness.h"
#include "testutil.h"

static struct primed_proc srv;

static void start(void)
{
    const char *args[] = {"--workers", "2", "--max-list-range", "1e10", NULL};
    if (primed_start(&srv, args) != 0) ck_abort_msg("primed did not start");
}

static void stop(void)
{
    ck_assert_int_eq(primed_stop(&srv, SIGTERM, 10000), 0);
}

/* Output of a shell command (an oracle CLI's listing, compared byte for byte), malloc'd. */
static char *run(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    size_t n;
    while ((n = fread(out + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) out = realloc(out, cap *= 2);
    }
    out[len] = '\0';
    ck_assert_int_eq(pclose(f), 0);
    return out;
}

static const char *get_body(const char *path, long status)
{
    static struct http_result r;
    http_result_free(&r);
    ck_assert_int_eq(http_get(srv.port, path, &r), 0);
    ck_assert_msg(r.status == status, "%s: status %ld, body %s", path, r.status, r.body);
    return r.body;
}

START_TEST(count_matches_primecount)
{
    const char *cases[][3] = {{"0", "1e8", "primecount 1e8"},
                              {"1000", "2000000", "primesieve 1000 2000000 -q"},
                              {"18446744073708551615", "18446744073709551615",
                               "primesieve 18446744073708551615 18446744073709551615 -q"}};
    for (int i = 0; i < 3; i++) {
        char path[256], expect[256];
        snprintf(path, sizeof path, "/v1/count?from=%s&to=%s", cases[i][0], cases[i][1]);
        const char *b = get_body(path, 200);
        uint64_t n = oracle_u64("%s", cases[i][2]);
        json_t *j = json_loads(b, JSON_DECODE_INT_AS_REAL, NULL);
        ck_assert_ptr_nonnull(j);
        json_decref(j);
        snprintf(expect, sizeof expect, ",\"count\":%" PRIu64 "}", n);
        ck_assert_msg(strstr(b, expect), "%s: %s, expected count %" PRIu64, path, b, n);
    }
}
END_TEST

START_TEST(isprime_next_prev_nth_at_the_edges)
{
    ck_assert_str_eq(get_body("/v1/isprime?n=18446744073709551557", 200),
                     "{\"n\":18446744073709551557,\"prime\":true}");
    ck_assert_str_eq(get_body("/v1/isprime?n=18446744073709551615", 200),
                     "{\"n\":18446744073709551615,\"prime\":false}");
    ck_assert_str_eq(get_body("/v1/isprime?n=0", 200), "{\"n\":0,\"prime\":false}");
    ck_assert_str_eq(get_body("/v1/next?n=18446744073709551556", 200),
                     "{\"n\":18446744073709551556,\"next\":18446744073709551557}");
    get_body("/v1/next?n=18446744073709551557", 404);
    get_body("/v1/next?n=18446744073709551615", 404);
    ck_assert_str_eq(get_body("/v1/prev?n=3", 200), "{\"n\":3,\"prev\":2}");
    get_body("/v1/prev?n=2", 404);
    get_body("/v1/prev?n=0", 404);
    ck_assert_str_eq(get_body("/v1/next?n=0", 200), "{\"n\":0,\"next\":2}");
    ck_assert_str_eq(get_body("/v1/nth?n=1", 200), "{\"n\":1,\"prime\":2}");
    char expect[128];
    snprintf(expect, sizeof expect, "{\"n\":10000000,\"prime\":%" PRIu64 "}",
             oracle_u64("primesieve 1e7 -n -q"));
    ck_assert_str_eq(get_body("/v1/nth?n=1e7", 200), expect);
    /* The default max_nth, with one worker's Meissel π(x): well inside the deadline. */
    snprintf(expect, sizeof expect, "{\"n\":10000000000,\"prime\":%" PRIu64 "}",
             oracle_u64("primecount -n 1e10"));
    ck_assert_str_eq(get_body("/v1/nth?n=1e10", 200), expect);
    get_body("/v1/nth?n=0", 400);
    get_body("/v1/isprime?n=18446744073709551616", 400);
    get_body("/v1/isprime?n=-1", 400);
    get_body("/v1/isprime", 400);
    get_body("/v1/isprime?n=1&m=2", 400);
    get_body("/v1/count?from=10&to=9", 400);
    get_body("/v1/primes?from=0&to=10000000001", 400); /* > max_list_range */
}
END_TEST

START_TEST(primes_json_and_text_match_primesieve)
{
    const char *lo = "18446744073709400000", *hi = "18446744073709551615";
    char cmd[256], path[256];
    snprintf(cmd, sizeof cmd, "primesieve %s %s -p", lo, hi);
    char *expect = run(cmd); /* one per line */
    snprintf(path, sizeof path, "/v1/primes?from=%s&to=%s&format=text", lo, hi);
    ck_assert_str_eq(get_body(path, 200), expect);
    /* JSON: the same numbers, comma-separated, count at the end. */
    snprintf(path, sizeof path, "/v1/primes?from=%s&to=%s", lo, hi);
    const char *b = get_body(path, 200);
    size_t n = 0;
    for (char *p = expect; *p; p++)
        if (*p == '\n') {
            *p = ',';
            n++;
        }
    if (n) expect[strlen(expect) - 1] = '\0';
    char *want = malloc(strlen(expect) + 256);
    sprintf(want, "{\"from\":%s,\"to\":%s,\"primes\":[%s],\"count\":%zu}", lo, hi, expect, n);
    ck_assert_str_eq(b, want);
    free(want);
    free(expect);
    /* Accept: text/plain picks text; an empty range is valid JSON. */
    const char *h[] = {"Accept: text/plain", NULL};
    struct http_result r;
    ck_assert_int_eq(http_do(srv.port, "GET", "/v1/primes?from=0&to=20", NULL, h, &r), 0);
    ck_assert_str_eq(r.body, "2\n3\n5\n7\n11\n13\n17\n19\n");
    http_result_free(&r);
    ck_assert_str_eq(get_body("/v1/primes?from=24&to=28", 200),
                     "{\"from\":24,\"to\":28,\"primes\":[],\"count\":0}");
}
END_TEST

/* A listing near 1e18 wider than the sieve's hybrid (5e6 numbers there): the stream's first
 * chunks take the hybrid (Miller–Rabin on the survivors), the rest one full-sieve window
 * (op_primes.c); every prime once, in order, across the switch. */
START_TEST(listing_across_hybrid_and_full_sieve_chunks_matches_primesieve)
{
    const char *lo = "1000000000000000000", *hi = "1000000000020000000";
    char cmd[256], path[256];
    snprintf(cmd, sizeof cmd, "primesieve %s %s -p", lo, hi);
    char *expect = run(cmd);
    snprintf(path, sizeof path, "/v1/primes?from=%s&to=%s&format=text", lo, hi);
    const char *got = get_body(path, 200);
    ck_assert_uint_gt(strlen(expect), 9000000); /* ~482k primes of 20 bytes a line */
    ck_assert_msg(strcmp(got, expect) == 0, "listing of [%s, %s] differs from primesieve's", lo,
                  hi);
    free(expect);
}
END_TEST

/* /v1/factor and batch op factor over HTTP: the answer, the documented edges, the same answer
 * from a batch. */
START_TEST(factor_over_http_and_batch)
{
    ck_assert_str_eq(get_body("/v1/factor?n=18446744073709551615", 200),
                     "{\"n\":18446744073709551615,\"factors\":[[3,1],[5,1],[17,1],[257,1],[641,1],"
                     "[65537,1],[6700417,1]]}");
    ck_assert_str_eq(get_body("/v1/factor?n=1", 200), "{\"n\":1,\"factors\":[]}");
    get_body("/v1/factor?n=0", 400);
    get_body("/v1/factor", 400);
    const char *h[] = {"Content-Type: application/json", NULL};
    struct http_result r;
    ck_assert_int_eq(http_do(srv.port, "POST", "/v1/batch",
                             "{\"queries\":[{\"op\":\"factor\",\"n\":\"18446743979220271189\"}]}",
                             h, &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"results\":[{\"n\":18446743979220271189,\"factors\":[[4294967279,"
                             "1],[4294967291,1]]}]}");
    http_result_free(&r);
}
END_TEST

/* /v1/twin and batch op twin: the pairs at the edges, and over n = 0 … 999 the number of twin
 * answers equals primesieve's count of twin pairs (-c2) whose smaller member is < 1000. */
START_TEST(twin_matches_primesieve)
{
    ck_assert_str_eq(get_body("/v1/twin?n=3", 200), "{\"n\":3,\"twin\":true,\"pair\":[3,5]}");
    ck_assert_str_eq(get_body("/v1/twin?n=2", 200), "{\"n\":2,\"twin\":false}");
    ck_assert_str_eq(get_body("/v1/twin?n=7", 200), "{\"n\":7,\"twin\":false}");
    ck_assert_str_eq(get_body("/v1/twin?n=18446744073709551615", 200),
                     "{\"n\":18446744073709551615,\"twin\":false}");
    get_body("/v1/twin?n=-1", 400);
    get_body("/v1/twin", 400);
    get_body("/v1/twin?n=3&m=1", 400);
    char *body = malloc(64 * 1024);
    size_t len = (size_t)snprintf(body, 64 * 1024, "{\"queries\":[");
    for (int n = 0; n < 1000; n++)
        len += (size_t)snprintf(body + len, 64 * 1024 - len, "%s{\"op\":\"twin\",\"n\":%d}",
                                n ? "," : "", n);
    snprintf(body + len, 64 * 1024 - len, "]}");
    const char *h[] = {"Content-Type: application/json", NULL};
    struct http_result r;
    ck_assert_int_eq(http_do(srv.port, "POST", "/v1/batch", body, h, &r), 0);
    ck_assert_int_eq(r.status, 200);
    size_t twins = 0;
    for (const char *q = r.body; (q = strstr(q, "\"twin\":true")) != NULL; q++)
        twins++;
    /* pairs (p, p+2) with p < 1000 lie in [0, 1001] */
    ck_assert_uint_eq(twins, oracle_u64("primesieve 0 1001 -c2 -q"));
    http_result_free(&r);
    free(body);
}
END_TEST

START_TEST(batch_answers_in_order)
{
    const char *h[] = {"Content-Type: application/json", NULL};
    struct http_result r;
    ck_assert_int_eq(http_do(srv.port, "POST", "/v1/batch",
                             "{\"queries\":[{\"op\":\"isprime\",\"n\":97},"
                             "{\"op\":\"count\",\"from\":0,\"to\":\"1e6\"},"
                             "{\"op\":\"next\",\"n\":\"18446744073709551556\"},"
                             "{\"op\":\"prev\",\"n\":2},{\"op\":\"nth\",\"n\":10000}]}",
                             h, &r),
                     0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"results\":[{\"n\":97,\"prime\":true},"
                             "{\"from\":0,\"to\":1000000,\"count\":78498},"
                             "{\"n\":18446744073709551556,\"next\":18446744073709551557},"
                             /* the same message as GET /v1/prev?n=2 */
                             "{\"error\":{\"code\":\"no_such_prime\",\"message\":\"no prime "
                             "below 2\",\"param\":\"n\"}},"
                             "{\"n\":10000,\"prime\":104729}]}");
    http_result_free(&r);
    ck_assert_int_eq(http_do(srv.port, "POST", "/v1/batch", "{\"queries\":", h, &r), 0);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "bad_json"));
    http_result_free(&r);
    const char *t[] = {"Content-Type: text/plain", NULL};
    ck_assert_int_eq(http_do(srv.port, "POST", "/v1/batch", "{\"queries\":[]}", t, &r), 0);
    ck_assert_int_eq(r.status, 415);
    http_result_free(&r);
}
END_TEST

static size_t abort_after(char *p, size_t s, size_t n, void *u)
{
    size_t *got = u;
    *got += s * n;
    return *got > (4u << 20) ? 0 : s * n; /* 0 aborts the transfer */
}

START_TEST(client_abort_mid_stream_frees_the_worker)
{
    for (int i = 0; i < 3; i++) {
        CURL *c = curl_easy_init();
        char url[128];
        size_t got = 0;
        snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/primes?from=0&to=1e10", srv.port);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, abort_after);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
        ck_assert_int_eq(curl_easy_perform(c), CURLE_WRITE_ERROR);
        curl_easy_cleanup(c);
    }
    get_body("/healthz", 200);
    /* Every worker goes idle and every stream buffer is returned. */
    int ok = 0;
    for (int i = 0; i < 500 && !ok; i++) {
        const char *m = get_body("/metrics", 200);
        ok = strstr(m, "\nprimed_workers_busy 0\n") && strstr(m, "\nprimed_streams_active 0\n") &&
             strstr(m, "\nprimed_stream_buffer_bytes 0\n");
        if (!ok) usleep(10000);
    }
    ck_assert_msg(ok, "workers or stream buffers still busy after the client went away");
    const char *m = get_body("/metrics", 200);
    ck_assert_ptr_nonnull(strstr(m, "primed_jobs_total{outcome=\"cancelled\"} 3"));
}
END_TEST

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Issue 11: count [0, 1e19] used to hold every worker for the whole 30 s deadline. Now the cost
 * model refuses it at once (400 limit_exceeded, estimate and deadline in the message), and the
 * pool stays free: a count and a π right after answer promptly. Also /v1/pi against published
 * π(10^k), HEAD without a body, and the batch op. */
START_TEST(pi_endpoint_and_hopeless_requests_refused_at_once)
{
    ck_assert_str_eq(get_body("/v1/pi?x=1e13", 200), "{\"x\":10000000000000,\"pi\":346065536839}");
    char expect[128];
    snprintf(expect, sizeof expect, "{\"x\":123456789012,\"pi\":%" PRIu64 "}",
             oracle_u64("primecount 123456789012"));
    ck_assert_str_eq(get_body("/v1/pi?x=123456789012", 200), expect);
    for (int i = 0; i < 3; i++) {
        double t0 = mono_ms();
        const char *b = get_body("/v1/count?from=0&to=1e19", 400);
        double dt = mono_ms() - t0;
        ck_assert_msg(strstr(b, "limit_exceeded") && strstr(b, "estimated") &&
                          strstr(b, "request_timeout_ms = 30000 ms"),
                      "%s", b);
        ck_assert_msg(dt < 50, "refusal took %.1f ms", dt);
    }
    double t0 = mono_ms();
    ck_assert_str_eq(get_body("/v1/count?from=0&to=1e6", 200),
                     "{\"from\":0,\"to\":1000000,\"count\":78498}");
    ck_assert_str_eq(get_body("/v1/isprime?n=97", 200), "{\"n\":97,\"prime\":true}");
    ck_assert_msg(mono_ms() - t0 < 2000, "pool not free");
    struct http_result r = {0};
    ck_assert_int_eq(http_do(srv.port, "HEAD", "/v1/pi?x=1000", NULL, NULL, &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.body_len, 0);
    http_result_free(&r);
    get_body("/v1/pi?x=-1", 400);
    get_body("/v1/pi", 400);
    get_body("/v1/pi?x=1&y=2", 400);
}
END_TEST

static Suite *e2e_api_suite(void)
{
    Suite *s = suite_create("e2e_api");
    TCase *tc = tcase_create("api");
    tcase_add_unchecked_fixture(tc, start, stop);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, count_matches_primecount);
    tcase_add_test(tc, twin_matches_primesieve);
    tcase_add_test(tc, factor_over_http_and_batch);
    tcase_add_test(tc, pi_endpoint_and_hopeless_requests_refused_at_once);
    tcase_add_test(tc, isprime_next_prev_nth_at_the_edges);
    tcase_add_test(tc, primes_json_and_text_match_primesieve);
    tcase_add_test(tc, listing_across_hybrid_and_full_sieve_chunks_matches_primesieve);
    tcase_add_test(tc, batch_answers_in_order);
    tcase_add_test(tc, client_abort_mid_stream_frees_the_worker);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(e2e_api_suite)
