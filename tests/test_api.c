/* test_api.c — handler-level: parameter validation gives the right error codes; small answers
 * and worker answers are correct (oracle: primality/sieve from the sieve branch, and published
 * values of π). No sockets. */
#include <check.h>
#include <jansson.h>
#include <string.h>
#include <strings.h>

#include "check_main.h"
#include "primed/api.h"
#include "primed/config.h"

struct fake {
    const char *names[8], *vals[8];
    int n;
    const char *accept, *ctype;
};

static const char *f_arg(const struct http_request *r, const char *name)
{
    const struct fake *f = r->impl;
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0) return f->vals[i];
    return NULL;
}
static const char *f_header(const struct http_request *r, const char *name)
{
    const struct fake *f = r->impl;
    if (strcasecmp(name, "Accept") == 0) return f->accept;
    if (strcasecmp(name, "Content-Type") == 0) return f->ctype;
    return NULL;
}
static void f_each(const struct http_request *r, void (*fn)(void *, const char *, const char *),
                   void *arg)
{
    const struct fake *f = r->impl;
    for (int i = 0; i < f->n; i++)
        fn(arg, f->names[i], f->vals[i]);
}

static struct primed_config cfg;
static struct api_ctx ctx;

static void setup(void)
{
    config_defaults(&cfg);
    cfg.max_list_range = 1000000;
    cfg.max_nth = 100000;
    cfg.max_batch_queries = 3;
    ctx = (struct api_ctx){.cfg = &cfg, .pool = NULL, .inline_small = true};
}

/* Run prepare (and, if planned, api_run on a private worker state) for a query string made of
 * name=value pairs; returns the status and leaves the body in *body (static buffer). */
static int call(enum route_id route, const char *body, struct fake *f, char *out, size_t outlen)
{
    struct http_request req = {.method = "GET",
                               .path = "/",
                               .get_arg = f_arg,
                               .get_header = f_header,
                               .each_arg = f_each,
                               .impl = f,
                               .body = body,
                               .body_len = body ? strlen(body) : 0};
    struct http_response resp;
    http_response_init(&resp);
    struct api_query q;
    enum api_plan plan = api_prepare(&ctx, route, &req, &q, &resp);
    if (plan == API_RUN) {
        void *w = api_worker_init(&ctx);
        atomic_int cancel = 0;
        api_run(&ctx, &q, w, &cancel, &resp);
        api_worker_fini(&ctx, w);
    } else if (plan == API_STREAM) {
        http_response_static(&resp, 200, "stream", "", 0);
    }
    snprintf(out, outlen, "%.*s", (int)resp.body_len, resp.body ? resp.body : "");
    int st = resp.status;
    api_query_fini(&q);
    http_response_fini(&resp);
    return st;
}

#define Q(...) (&(struct fake){__VA_ARGS__})

static const char *code_of(const char *body)
{
    static char code[64];
    json_t *j = json_loads(body, 0, NULL);
    const char *c = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    snprintf(code, sizeof code, "%s", c ? c : "(none)");
    json_decref(j);
    return code;
}

START_TEST(missing_and_malformed_numbers_are_400)
{
    char b[4096];
    ck_assert_int_eq(call(ROUTE_ISPRIME, NULL, Q(.n = 0), b, sizeof b), 400);
    ck_assert_str_eq(code_of(b), "missing_parameter");
    const char *bad[] = {
        "", "-1", "+1", "1.5", "0x10", " 1", "1e", "abc", "18446744073709551616", "1e20"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(
            call(ROUTE_ISPRIME, NULL, Q(.names = {"n"}, .vals = {bad[i]}, .n = 1), b, sizeof b),
            400);
        ck_assert_str_eq(code_of(b), "bad_parameter");
    }
}
END_TEST

START_TEST(unknown_and_repeated_parameters_are_400)
{
    char b[4096];
    ck_assert_int_eq(
        call(ROUTE_ISPRIME, NULL, Q(.names = {"n", "x"}, .vals = {"7", "1"}, .n = 2), b, sizeof b),
        400);
    ck_assert_str_eq(code_of(b), "unknown_parameter");
    ck_assert_int_eq(call(ROUTE_COUNT, NULL,
                          Q(.names = {"from", "to", "from"}, .vals = {"1", "9", "2"}, .n = 3), b,
                          sizeof b),
                     400);
    ck_assert_str_eq(code_of(b), "bad_parameter");
    ck_assert_int_eq(call(ROUTE_COUNT, NULL,
                          Q(.names = {"from", "to", "format"}, .vals = {"1", "9", "text"}, .n = 3),
                          b, sizeof b),
                     400);
    ck_assert_str_eq(code_of(b), "unknown_parameter"); /* format only on /v1/primes */
}
END_TEST

START_TEST(ranges_from_above_to_and_limits)
{
    char b[4096];
    ck_assert_int_eq(call(ROUTE_COUNT, NULL,
                          Q(.names = {"from", "to"}, .vals = {"10", "9"}, .n = 2), b, sizeof b),
                     400);
    ck_assert_str_eq(code_of(b), "bad_parameter");
    ck_assert_int_eq(call(ROUTE_PRIMES, NULL,
                          Q(.names = {"from", "to"}, .vals = {"0", "1000001"}, .n = 2), b,
                          sizeof b),
                     400);
    ck_assert_str_eq(code_of(b), "limit_exceeded");
    ck_assert_ptr_nonnull(strstr(b, "1000000")); /* states the limit */
    ck_assert_int_eq(call(ROUTE_PRIMES, NULL,
                          Q(.names = {"from", "to"}, .vals = {"0", "1000000"}, .n = 2), b,
                          sizeof b),
                     200);
    ck_assert_int_eq(call(ROUTE_PRIMES, NULL,
                          Q(.names = {"from", "to", "format"}, .vals = {"0", "10", "xml"}, .n = 3),
                          b, sizeof b),
                     400);
    ck_assert_int_eq(call(ROUTE_NTH, NULL, Q(.names = {"n"}, .vals = {"0"}, .n = 1), b, sizeof b),
                     400);
    ck_assert_str_eq(code_of(b), "bad_parameter");
    ck_assert_int_eq(
        call(ROUTE_NTH, NULL, Q(.names = {"n"}, .vals = {"100001"}, .n = 1), b, sizeof b), 400);
    ck_assert_str_eq(code_of(b), "limit_exceeded");
}
END_TEST

START_TEST(answers_match_known_values)
{
    char b[4096];
    ck_assert_int_eq(call(ROUTE_COUNT, NULL,
                          Q(.names = {"from", "to"}, .vals = {"0", "1e6"}, .n = 2), b, sizeof b),
                     200);
    ck_assert_str_eq(b, "{\"from\":0,\"to\":1000000,\"count\":78498}"); /* π(10^6) */
    ck_assert_int_eq(
        call(ROUTE_NTH, NULL, Q(.names = {"n"}, .vals = {"10000"}, .n = 1), b, sizeof b), 200);
    ck_assert_str_eq(b, "{\"n\":10000,\"prime\":104729}");
    ck_assert_int_eq(call(ROUTE_ISPRIME, NULL,
                          Q(.names = {"n"}, .vals = {"18446744073709551557"}, .n = 1), b, sizeof b),
                     200);
    ck_assert_str_eq(b, "{\"n\":18446744073709551557,\"prime\":true}");
    ck_assert_int_eq(call(ROUTE_NEXT, NULL,
                          Q(.names = {"n"}, .vals = {"18446744073709551557"}, .n = 1), b, sizeof b),
                     404);
    ck_assert_str_eq(code_of(b), "no_such_prime");
    ck_assert_int_eq(call(ROUTE_PREV, NULL,
                          Q(.names = {"n"}, .vals = {"18446744073709551615"}, .n = 1), b, sizeof b),
                     200);
    ck_assert_str_eq(b, "{\"n\":18446744073709551615,\"prev\":18446744073709551557}");
    ck_assert_int_eq(call(ROUTE_PREV, NULL, Q(.names = {"n"}, .vals = {"2"}, .n = 1), b, sizeof b),
                     404);
    /* nth beyond π(2^64-1) does not exist (404), whatever max_nth allows. */
    cfg.max_nth = UINT64_MAX;
    ck_assert_int_eq(call(ROUTE_NTH, NULL,
                          Q(.names = {"n"}, .vals = {"425656284035217744"}, .n = 1), b, sizeof b),
                     404);
    ck_assert_str_eq(code_of(b), "no_such_prime");
    ck_assert_int_eq(call(ROUTE_NTH, NULL,
                          Q(.names = {"n"}, .vals = {"18446744073709551615"}, .n = 1), b, sizeof b),
                     404);
}
END_TEST

START_TEST(batch_validation)
{
    char b[8192];
    struct fake *json = Q(.ctype = "application/json; charset=utf-8");
    ck_assert_int_eq(call(ROUTE_BATCH, "{\"queries\":[", json, b, sizeof b), 400);
    ck_assert_str_eq(code_of(b), "bad_json");
    ck_assert_int_eq(call(ROUTE_BATCH, "{\"queries\":[]}", Q(.ctype = "text/plain"), b, sizeof b),
                     415);
    ck_assert_int_eq(call(ROUTE_BATCH, "{\"queries\":[{},{},{},{}]}", json, b, sizeof b), 400);
    ck_assert_str_eq(code_of(b), "limit_exceeded");
    ck_assert_int_eq(call(ROUTE_BATCH,
                          "{\"queries\":[{\"op\":\"isprime\",\"n\":\"18446744073709551557\"},"
                          "{\"op\":\"count\",\"from\":0,\"to\":100},{\"op\":\"nth\",\"n\":-1}]}",
                          json, b, sizeof b),
                     200);
    /* jansson cannot hold integers above 2^63-1, so compare text (numbers are exact). */
    ck_assert_str_eq(b, "{\"results\":[{\"n\":18446744073709551557,\"prime\":true},"
                        "{\"from\":0,\"to\":100,\"count\":25},{\"error\":{\"code\":"
                        "\"bad_parameter\",\"message\":\"must be a non-negative integer or a "
                        "decimal string\",\"param\":\"n\"}}]}");
}
END_TEST

/* Prices: 1 for small requests, growing with the numbers sieved and their height; a batch is
 * the sum of its queries. The figures are the documented ones (docs/configuration.md). */
static uint64_t price(enum api_op op, uint64_t a, uint64_t b)
{
    struct api_query q = {.op = op, .a = a, .b = b};
    return api_cost(&ctx, &q);
}

static uint64_t batch_price(const char *body)
{
    struct api_query q = {.op = API_BATCH};
    q.batch = json_loads(body, 0, NULL);
    ck_assert_ptr_nonnull(q.batch);
    uint64_t c = api_cost(&ctx, &q);
    api_query_fini(&q);
    return c;
}

START_TEST(prices_follow_the_work)
{
    ck_assert_uint_eq(price(API_ISPRIME, 18446744073709551557ull, 0), 1);
    ck_assert_uint_eq(price(API_NEXT, 1, 0), 1);
    ck_assert_uint_eq(price(API_COUNT, 0, 1000), 1);
    ck_assert_uint_eq(price(API_COUNT, 0, 9999999999ull), 1251); /* 1e10 / 8e6 + 1 */
    uint64_t low = price(API_COUNT, 0, 999999999),
             high = price(API_COUNT, 1000000000000000000ull, 1000000000999999999ull);
    ck_assert_uint_gt(high, 10 * low); /* the same width near 1e18 costs > 10x */
    ck_assert_uint_eq(price(API_PRIMES, 0, 999999999), 4 * low - 3);
    uint64_t nth = price(API_NTH, 10000000000ull, 0);
    ck_assert_msg(nth > 50 && nth < 250, "nth(1e10) = %llu", (unsigned long long)nth);
    ck_assert_uint_eq(price(API_COUNT, 0, UINT64_MAX), 1000000000); /* capped */
    ck_assert_uint_eq(
        batch_price("{\"queries\":[{\"op\":\"count\",\"from\":0,\"to\":9999999999}]}"), 1251);
    ck_assert_uint_eq(batch_price("{\"queries\":[{\"op\":\"count\",\"from\":0,\"to\":"
                                  "9999999999},{\"op\":\"count\",\"from\":0,\"to\":9999999999}]}"),
                      2501);
    ck_assert_uint_eq(batch_price("{\"queries\":[{\"op\":\"isprime\",\"n\":7},{\"op\":\"bad\"},"
                                  "{\"op\":\"count\",\"from\":5,\"to\":1}]}"),
                      1);
}
END_TEST

static Suite *api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("api");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, missing_and_malformed_numbers_are_400);
    tcase_add_test(tc, unknown_and_repeated_parameters_are_400);
    tcase_add_test(tc, ranges_from_above_to_and_limits);
    tcase_add_test(tc, answers_match_known_values);
    tcase_add_test(tc, batch_validation);
    tcase_add_test(tc, prices_follow_the_work);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(api_suite)
