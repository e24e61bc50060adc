/* test_inflight.c — /debug/requests through inflight_handle with a fake request and a fake
 * snapshot source (no server): parameter checking (limit bounds, format, unknown and repeated
 * names → JSON 400), no source → 503, the limit reaches the source as its row capacity, every
 * row field in the JSON and text renderings, truncation, and worker rows naming their request. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "primed/http.h"
#include "primed/inflight.h"

struct args {
    const char *names[4], *values[4];
};

static void fake_each_arg(const struct http_request *req,
                          void (*fn)(void *arg, const char *name, const char *value), void *arg)
{
    const struct args *a = req->impl;
    for (int i = 0; i < 4 && a->names[i]; i++)
        fn(arg, a->names[i], a->values[i]);
}

static int call(const struct args *a, struct http_response *resp)
{
    struct http_request req = {.method = "GET",
                               .path = "/debug/requests",
                               .request_id = "t",
                               .client_addr = "127.0.0.1",
                               .each_arg = fake_each_arg,
                               .impl = (void *)a};
    http_response_init(resp);
    inflight_handle(&req, resp);
    return resp->status;
}

/* A source with `held` requests in flight: fills min(cap, held) rows and two workers. */
static size_t last_cap;
static unsigned held = 3;
static int fake_source(void *arg, struct inflight_snapshot *s)
{
    ck_assert_ptr_eq(arg, &held);
    last_cap = s->cap;
    s->total = held;
    s->n = held < s->cap ? held : s->cap;
    for (size_t i = 0; i < s->n; i++) {
        struct inflight_row *r = &s->rows[i];
        *r = (struct inflight_row){.worker = -1, .age_ms = 1000 - i, .bytes_sent = 10 * i};
        snprintf(r->request_id, sizeof r->request_id, "req-%zu", i);
        snprintf(r->client, sizeof r->client, "127.0.0.%zu", i + 1);
        snprintf(r->method, sizeof r->method, "GET");
        snprintf(r->path, sizeof r->path, i == 1 ? "/v1/primes" : "/v1/count");
        snprintf(r->params, sizeof r->params, "from=0&to=%zu\"", i); /* a quote to escape */
    }
    if (s->n > 0) {
        s->rows[0].state = INFLIGHT_RUNNING;
        s->rows[0].worker = 1;
        s->rows[0].chunks_done = 7;
        s->rows[0].chunks_total = 9;
    }
    if (s->n > 1) {
        s->rows[1].state = INFLIGHT_STREAMING;
        s->rows[1].producer = INFLIGHT_P_PARKED;
        s->rows[1].buffered = 4096;
    }
    if (s->n > 2) s->rows[2].state = INFLIGHT_QUEUED;
    ck_assert_uint_ge(s->wcap, 2);
    s->nworkers = 2;
    s->workers[0] = (struct inflight_worker){.state = 0, .row = -1};
    s->workers[1] =
        (struct inflight_worker){.state = 1, .row = 0, .chunks_done = 7, .chunks_total = 9};
    s->queue_depth = 1;
    s->queue_capacity = 8;
    s->parked = 1;
    return 0;
}

static json_t *body_json(const struct http_response *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body, r->body_len, 0, &e);
    ck_assert_msg(j != NULL, "not JSON: %.*s", (int)r->body_len, r->body);
    return j;
}

static const char *error_code(const struct http_response *r)
{
    static char code[64];
    json_t *j = body_json(r);
    snprintf(code, sizeof code, "%s",
             json_string_value(json_object_get(json_object_get(j, "error"), "code")));
    json_decref(j);
    return code;
}

START_TEST(bad_parameters_are_json_400s)
{
    static const struct args bad[] = {
        {{"limit"}, {"0"}},
        {{"limit"}, {"10001"}},
        {{"limit"}, {"abc"}},
        {{"limit"}, {""}},
        {{"limit"}, {"-1"}},
        {{"limit"}, {"1e99"}},
        {{"format"}, {"xml"}},
        {{"limit", "limit"}, {"1", "2"}},
        {{"format", "format"}, {"json", "text"}},
    };
    inflight_set_source(fake_source, &held, 2);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct http_response r;
        ck_assert_int_eq(call(&bad[i], &r), 400);
        ck_assert_str_eq(error_code(&r), "bad_parameter");
        http_response_fini(&r);
    }
    struct args unknown = {{"foo"}, {"1"}};
    struct http_response r;
    ck_assert_int_eq(call(&unknown, &r), 400);
    ck_assert_str_eq(error_code(&r), "unknown_parameter");
    http_response_fini(&r);
    inflight_set_source(NULL, NULL, 0);
}
END_TEST

START_TEST(no_source_is_503)
{
    inflight_set_source(NULL, NULL, 0);
    struct args none = {{NULL}, {NULL}};
    struct http_response r;
    ck_assert_int_eq(call(&none, &r), 503);
    http_response_fini(&r);
}
END_TEST

START_TEST(json_has_every_row_field_and_the_workers)
{
    inflight_set_source(fake_source, &held, 2);
    held = 3;
    struct args none = {{NULL}, {NULL}};
    struct http_response r;
    ck_assert_int_eq(call(&none, &r), 200);
    ck_assert_uint_eq(last_cap, INFLIGHT_DEFAULT_LIMIT);
    ck_assert_str_eq(r.content_type, HTTP_JSON);
    json_t *j = body_json(&r);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "total")), 3);
    ck_assert(json_is_false(json_object_get(j, "truncated")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "queue_depth")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "queue_capacity")), 8);
    json_t *rows = json_object_get(j, "requests");
    ck_assert_uint_eq(json_array_size(rows), 3);
    json_t *r0 = json_array_get(rows, 0), *r1 = json_array_get(rows, 1),
           *r2 = json_array_get(rows, 2);
    ck_assert_str_eq(json_string_value(json_object_get(r0, "request_id")), "req-0");
    ck_assert_str_eq(json_string_value(json_object_get(r0, "client")), "127.0.0.1");
    ck_assert_str_eq(json_string_value(json_object_get(r0, "route")), "/v1/count");
    ck_assert_str_eq(json_string_value(json_object_get(r0, "params")), "from=0&to=0\"");
    ck_assert_str_eq(json_string_value(json_object_get(r0, "state")), "running");
    ck_assert_int_eq(json_integer_value(json_object_get(r0, "worker")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(r0, "age_ms")), 1000);
    ck_assert_int_eq(json_integer_value(json_object_get(r0, "chunks_done")), 7);
    ck_assert_int_eq(json_integer_value(json_object_get(r0, "chunks_total")), 9);
    ck_assert_str_eq(json_string_value(json_object_get(r1, "state")), "streaming");
    ck_assert_str_eq(json_string_value(json_object_get(r1, "producer")), "parked");
    ck_assert(json_is_null(json_object_get(r1, "worker")));
    ck_assert_int_eq(json_integer_value(json_object_get(r1, "bytes_sent")), 10);
    ck_assert_int_eq(json_integer_value(json_object_get(r1, "bytes_buffered")), 4096);
    ck_assert_ptr_null(json_object_get(r1, "chunks_total")); /* only for split counts */
    ck_assert_str_eq(json_string_value(json_object_get(r2, "state")), "queued");
    json_t *w = json_object_get(j, "workers");
    ck_assert_uint_eq(json_array_size(w), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(w, 0), "state")), "idle");
    ck_assert(json_is_null(json_object_get(json_array_get(w, 0), "request_id")));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(w, 1), "state")), "running");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(w, 1), "request_id")),
                     "req-0");
    json_decref(j);
    http_response_fini(&r);
    inflight_set_source(NULL, NULL, 0);
}
END_TEST

START_TEST(limit_bounds_the_rows_and_marks_truncation)
{
    inflight_set_source(fake_source, &held, 2);
    held = 5;
    struct args lim = {{"limit"}, {"2"}};
    struct http_response r;
    ck_assert_int_eq(call(&lim, &r), 200);
    ck_assert_uint_eq(last_cap, 2);
    json_t *j = body_json(&r);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "requests")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "total")), 5);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "shown")), 2);
    ck_assert(json_is_true(json_object_get(j, "truncated")));
    json_decref(j);
    http_response_fini(&r);
    struct args max = {{"limit"}, {"10000"}};
    ck_assert_int_eq(call(&max, &r), 200);
    ck_assert_uint_eq(last_cap, INFLIGHT_MAX_LIMIT);
    http_response_fini(&r);
    held = 3;
    inflight_set_source(NULL, NULL, 0);
}
END_TEST

START_TEST(text_format_says_what_each_request_waits_for)
{
    inflight_set_source(fake_source, &held, 2);
    held = 3;
    struct args text = {{"format", "limit"}, {"text", "3"}};
    struct http_response r;
    ck_assert_int_eq(call(&text, &r), 200);
    ck_assert_str_eq(r.content_type, HTTP_TEXT);
    char *body = strndup(r.body, r.body_len);
    ck_assert_msg(strstr(body, "3 requests in flight (3 shown, oldest first); queue 1/8, parked 1"),
                  "%s", body);
    ck_assert_msg(strstr(body, "running on worker 1") && strstr(body, "chunks 7/9"), "%s", body);
    ck_assert_msg(strstr(body, "streaming (parked)"), "%s", body);
    ck_assert_msg(strstr(body, "/v1/count?from=0&to=0\"  req-0  127.0.0.1"), "%s", body);
    ck_assert_msg(strstr(body, "worker 0: idle\n") &&
                      strstr(body, "worker 1: running request req-0\n"),
                  "%s", body);
    free(body);
    http_response_fini(&r);
    inflight_set_source(NULL, NULL, 0);
}
END_TEST

static Suite *inflight_suite(void)
{
    Suite *s = suite_create("inflight");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, bad_parameters_are_json_400s);
    tcase_add_test(tc, no_source_is_503);
    tcase_add_test(tc, json_has_every_row_field_and_the_workers);
    tcase_add_test(tc, limit_bounds_the_rows_and_marks_truncation);
    tcase_add_test(tc, text_format_says_what_each_request_waits_for);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(inflight_suite)
