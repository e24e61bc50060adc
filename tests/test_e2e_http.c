/* test_e2e_http.c — the HTTP front end against the real binary on 127.0.0.1: every status of
 * the error table that the transport produces (404, 405 + Allow, 413, 414, 431, 401), rendered
 * as the JSON error shape; keep-alive; X-Request-Id echo/sanitise; nosniff; content types. */
#include <check.h>
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "harness.h"

static struct primed_proc srv;

static void start(void)
{
    setenv("PRIMED_DEBUG_TOKEN", "s3cret", 1);
    const char *args[] = {"--workers",
                          "2",
                          "--max-body-bytes",
                          "1000",
                          "--max-uri-bytes",
                          "200",
                          "--connection-memory-limit",
                          "16384",
                          NULL};
    if (primed_start(&srv, args) != 0) ck_abort_msg("primed did not start");
}

static void stop(void)
{
    ck_assert_int_eq(primed_stop(&srv, SIGTERM, 10000), 0);
}

/* The body is {"error":{"code":C,"message":non-empty,...}} and the status is S. */
static void assert_error(const struct http_result *r, long status, const char *code)
{
    ck_assert_int_eq(r->status, status);
    json_t *j = json_loads(r->body, 0, NULL);
    ck_assert_msg(j != NULL, "status %ld body is not JSON: %s", r->status, r->body);
    json_t *e = json_object_get(j, "error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
    const char *m = json_string_value(json_object_get(e, "message"));
    ck_assert(m && *m);
    json_decref(j);
    char ct[128];
    ck_assert_int_eq(http_header_value(r, "Content-Type", ct, sizeof ct), 0);
    ck_assert_str_eq(ct, "application/json");
}

START_TEST(health_ready_root_answer_json)
{
    struct http_result r;
    ck_assert_int_eq(http_get(srv.port, "/healthz", &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    http_result_free(&r);
    ck_assert_int_eq(http_get(srv.port, "/readyz", &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"status\":\"ready\"}");
    http_result_free(&r);
    ck_assert_int_eq(http_get(srv.port, "/", &r), 0);
    json_t *j = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "primed");
    ck_assert(json_is_string(json_object_get(j, "version")));
    ck_assert_int_ge(json_array_size(json_object_get(j, "endpoints")), 7);
    json_decref(j);
    http_result_free(&r);
}
END_TEST

START_TEST(unknown_path_is_404_and_debug_is_not_on_main)
{
    struct http_result r;
    ck_assert_int_eq(http_get(srv.port, "/nope", &r), 0);
    assert_error(&r, 404, "not_found");
    http_result_free(&r);
    ck_assert_int_eq(http_get(srv.port, "/debug/pprof/heap", &r), 0);
    assert_error(&r, 404, "not_found");
    http_result_free(&r);
}
END_TEST

START_TEST(wrong_method_is_405_with_allow)
{
    struct http_result r;
    char allow[64];
    ck_assert_int_eq(http_do(srv.port, "DELETE", "/v1/count?from=1&to=2", NULL, NULL, &r), 0);
    assert_error(&r, 405, "method_not_allowed");
    ck_assert_int_eq(http_header_value(&r, "Allow", allow, sizeof allow), 0);
    ck_assert_str_eq(allow, "GET, HEAD");
    http_result_free(&r);
    ck_assert_int_eq(http_get(srv.port, "/v1/batch", &r), 0);
    assert_error(&r, 405, "method_not_allowed");
    ck_assert_int_eq(http_header_value(&r, "Allow", allow, sizeof allow), 0);
    ck_assert_str_eq(allow, "POST");
    http_result_free(&r);
}
END_TEST

START_TEST(body_over_limit_is_413)
{
    char body[2001];
    memset(body, ' ', 2000);
    body[2000] = '\0';
    const char *h[] = {"Content-Type: application/json", NULL};
    struct http_result r;
    ck_assert_int_eq(http_do(srv.port, "POST", "/v1/batch", body, h, &r), 0);
    assert_error(&r, 413, "body_too_large");
    http_result_free(&r);
    /* Without Content-Length (chunked upload): rejected once it passes the limit. */
    const char *hc[] = {"Content-Type: application/json", "Transfer-Encoding: chunked", NULL};
    ck_assert_int_eq(http_do(srv.port, "POST", "/v1/batch", body, hc, &r), 0);
    assert_error(&r, 413, "body_too_large");
    http_result_free(&r);
}
END_TEST

START_TEST(long_uri_is_414_and_big_headers_are_431)
{
    char path[600];
    snprintf(path, sizeof path, "/v1/isprime?n=7&pad=%0300d", 0);
    struct http_result r;
    ck_assert_int_eq(http_get(srv.port, path, &r), 0);
    assert_error(&r, 414, "uri_too_long");
    http_result_free(&r);
    static char big[12000];
    memcpy(big, "X-Big: ", 7);
    memset(big + 7, 'a', 10000);
    const char *h[] = {big, NULL};
    ck_assert_int_eq(http_do(srv.port, "GET", "/healthz", NULL, h, &r), 0);
    assert_error(&r, 431, "headers_too_large");
    http_result_free(&r);
}
END_TEST

START_TEST(request_id_is_echoed_sanitised_or_made)
{
    struct http_result r;
    char v[128];
    const char *good[] = {"X-Request-Id: abc-123_X.y", NULL};
    ck_assert_int_eq(http_do(srv.port, "GET", "/healthz", NULL, good, &r), 0);
    ck_assert_int_eq(http_header_value(&r, "X-Request-Id", v, sizeof v), 0);
    ck_assert_str_eq(v, "abc-123_X.y");
    ck_assert_int_eq(http_header_value(&r, "X-Content-Type-Options", v, sizeof v), 0);
    ck_assert_str_eq(v, "nosniff");
    http_result_free(&r);
    const char *bad[] = {"X-Request-Id: <script>\"x", NULL};
    ck_assert_int_eq(http_do(srv.port, "GET", "/nope", NULL, bad, &r), 0);
    ck_assert_int_eq(http_header_value(&r, "X-Request-Id", v, sizeof v), 0);
    ck_assert_int_eq(strlen(v), 16);
    ck_assert_int_eq(strspn(v, "0123456789abcdef"), 16);
    ck_assert_int_eq(http_header_value(&r, "X-Content-Type-Options", v, sizeof v), 0);
    http_result_free(&r);
}
END_TEST

static size_t sink(char *p, size_t s, size_t n, void *u)
{
    return s * n;
}
static size_t hdr_close(char *p, size_t s, size_t n, void *u)
{
    if (n * s >= 17 && strncasecmp(p, "Connection: close", 17) == 0) *(int *)u = 1;
    return s * n;
}

START_TEST(keep_alive_reuses_the_connection)
{
    CURL *c = curl_easy_init();
    char url[128];
    int saw_close = 0;
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, hdr_close);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &saw_close);
    const char *paths[] = {"/healthz", "/v1/count?from=0&to=100000", "/v1/isprime?n=97",
                           "/v1/primes?from=0&to=1000", "/nope"};
    for (int i = 0; i < 5; i++) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", srv.port, paths[i]);
        curl_easy_setopt(c, CURLOPT_URL, url);
        ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
        long nc = -1;
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &nc);
        if (i > 0) ck_assert_msg(nc == 0, "request %d (%s) opened a new connection", i, paths[i]);
    }
    ck_assert_int_eq(saw_close, 0);
    curl_easy_cleanup(c);
}
END_TEST

START_TEST(debug_listener_requires_the_token)
{
    struct http_result r;
    ck_assert_int_eq(http_get(srv.debug_port, "/debug/pprof/heap", &r), 0);
    assert_error(&r, 401, "unauthorized");
    http_result_free(&r);
    const char *wrong[] = {"Authorization: Bearer nope", NULL};
    ck_assert_int_eq(http_do(srv.debug_port, "GET", "/debug/pprof/heap", NULL, wrong, &r), 0);
    assert_error(&r, 401, "unauthorized");
    http_result_free(&r);
    const char *right[] = {"Authorization: Bearer s3cret", NULL};
    ck_assert_int_eq(http_do(srv.debug_port, "GET", "/debug/pprof/heap", NULL, right, &r), 0);
    ck_assert_int_ne(r.status, 401);
    ck_assert_int_ne(r.status, 404);
    http_result_free(&r);
    ck_assert_int_eq(http_get(srv.debug_port, "/metrics", &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "primed_queue_capacity"));
    ck_assert_ptr_nonnull(strstr(r.body, "primed_jobs_total{outcome=\"rejected\"}"));
    http_result_free(&r);
    ck_assert_int_eq(http_get(srv.port, "/metrics", &r), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "primed_workers 2"));
    http_result_free(&r);
}
END_TEST

static Suite *e2e_http_suite(void)
{
    Suite *s = suite_create("e2e_http");
    TCase *tc = tcase_create("http");
    tcase_add_unchecked_fixture(tc, start, stop);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, health_ready_root_answer_json);
    tcase_add_test(tc, unknown_path_is_404_and_debug_is_not_on_main);
    tcase_add_test(tc, wrong_method_is_405_with_allow);
    tcase_add_test(tc, body_over_limit_is_413);
    tcase_add_test(tc, long_uri_is_414_and_big_headers_are_431);
    tcase_add_test(tc, request_id_is_echoed_sanitised_or_made);
    tcase_add_test(tc, keep_alive_reuses_the_connection);
    tcase_add_test(tc, debug_listener_requires_the_token);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(e2e_http_suite)
