/* test_api.c — handler-level: parameter validation gives the right error codes; small answers
 * and worker answers are correct (oracle: primality/sieve from the sieve branch, and published
 * values of π). No sockets. */
#include <check.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_op.h"
#include "api_fake.h"
#include "check_main.h"
#include "primed/api.h"
#include "primed/errors.h"
#include "primed/config.h"
#include "primed/pi.h"
#include "primed/picache.h"
#include "primed/reqmem.h"

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

static int call(enum route_id route, const char *body, struct fake *f, char *out, size_t outlen)
{
    return api_fake_call(&ctx, route, body, f, out, outlen);
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

/* /v1/pi: published values (π(10^k), OEIS A006880), x = 0, 1, 2, and its bad inputs. */
START_TEST(pi_answers_and_bad_inputs)
{
    static const struct {
        const char *x, *body;
    } known[] = {
        {"0", "{\"x\":0,\"pi\":0}"},
        {"1", "{\"x\":1,\"pi\":0}"},
        {"2", "{\"x\":2,\"pi\":1}"},
        {"1e3", "{\"x\":1000,\"pi\":168}"},
        {"1e9", "{\"x\":1000000000,\"pi\":50847534}"},
        {"1e12", "{\"x\":1000000000000,\"pi\":37607912018}"},
    };
    char b[4096];
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        ck_assert_int_eq(
            call(ROUTE_PI, NULL, Q(.names = {"x"}, .vals = {known[i].x}, .n = 1), b, sizeof b),
            200);
        ck_assert_str_eq(b, known[i].body);
    }
    ck_assert_int_eq(call(ROUTE_PI, NULL, Q(.n = 0), b, sizeof b), 400);
    ck_assert_str_eq(code_of(b), "missing_parameter");
    ck_assert_int_eq(call(ROUTE_PI, NULL, Q(.names = {"x"}, .vals = {"-1"}, .n = 1), b, sizeof b),
                     400);
    ck_assert_str_eq(code_of(b), "bad_parameter");
    ck_assert_int_eq(call(ROUTE_PI, NULL,
                          Q(.names = {"x"}, .vals = {"18446744073709551616"}, .n = 1), b, sizeof b),
                     400);
    ck_assert_str_eq(code_of(b), "bad_parameter");
    ck_assert_int_eq(
        call(ROUTE_PI, NULL, Q(.names = {"x", "n"}, .vals = {"5", "1"}, .n = 2), b, sizeof b), 400);
    ck_assert_str_eq(code_of(b), "unknown_parameter");
}
END_TEST

/* Counts through both paths agree with each other and with π(10^k). */
START_TEST(count_by_sieve_and_by_pi_agree)
{
    char b[4096], c[4096];
    ck_assert(api_count_by_pi(0, 1000000000000ull)); /* wide: π(b) − π(a−1) */
    ck_assert_int_eq(call(ROUTE_COUNT, NULL,
                          Q(.names = {"from", "to"}, .vals = {"0", "1e12"}, .n = 2), b, sizeof b),
                     200);
    ck_assert_str_eq(b, "{\"from\":0,\"to\":1000000000000,\"count\":37607912018}");
    /* [1e9+1, 1e10] by π equals the sieve's count of the same range. */
    ck_assert(api_count_by_pi(1000000001ull, 10000000000ull));
    ck_assert_int_eq(call(ROUTE_COUNT, NULL,
                          Q(.names = {"from", "to"}, .vals = {"1000000001", "1e10"}, .n = 2), b,
                          sizeof b),
                     200);
    ck_assert_str_eq(b, "{\"from\":1000000001,\"to\":10000000000,\"count\":404204977}");
    ck_assert(!api_count_by_pi(999999000000ull, 1000000000000ull)); /* narrow: sieved */
    ck_assert_int_eq(call(ROUTE_COUNT, NULL,
                          Q(.names = {"from", "to"}, .vals = {"999999000000", "1e12"}, .n = 2), c,
                          sizeof c),
                     200);
    ck_assert_str_eq(c, "{\"from\":999999000000,\"to\":1000000000000,\"count\":36400}");
}
END_TEST

/* A request that clearly cannot fit its deadline is refused in prepare, before any work, with
 * the estimate and the deadline in the message; one that might fit is planned. */
START_TEST(hopeless_requests_are_refused_up_front)
{
    char b[4096];
    cfg.request_timeout_ms = 1000;
    cfg.max_nth = UINT64_MAX;
    struct {
        enum route_id r;
        struct fake *f;
    } hopeless[] = {
        {ROUTE_PI, Q(.names = {"x"}, .vals = {"18446744073709551615"}, .n = 1)},
        {ROUTE_COUNT, Q(.names = {"from", "to"}, .vals = {"0", "1e19"}, .n = 2)},
        {ROUTE_NTH, Q(.names = {"n"}, .vals = {"1e17"}, .n = 1)},
    };
    for (size_t i = 0; i < sizeof hopeless / sizeof hopeless[0]; i++) {
        struct http_request req = {.method = "GET",
                                   .path = "/",
                                   .get_arg = f_arg,
                                   .each_arg = f_each,
                                   .impl = hopeless[i].f};
        struct http_response resp;
        http_response_init(&resp);
        struct api_query q;
        ck_assert_int_eq(api_prepare(&ctx, hopeless[i].r, &req, &q, &resp), API_ANSWERED);
        ck_assert_int_eq(resp.status, 400);
        snprintf(b, sizeof b, "%.*s", (int)resp.body_len, resp.body);
        ck_assert_str_eq(code_of(b), "limit_exceeded");
        ck_assert_msg(strstr(b, "estimated") && strstr(b, "request_timeout_ms = 1000 ms"), "%s", b);
        api_query_fini(&q);
        http_response_fini(&resp);
    }
    /* π(1e12) (~0.03 s) is attempted. */
    struct http_request req = {.method = "GET",
                               .path = "/",
                               .get_arg = f_arg,
                               .each_arg = f_each,
                               .impl = Q(.names = {"x"}, .vals = {"1e12"}, .n = 1)};
    struct http_response resp;
    http_response_init(&resp);
    struct api_query q;
    ck_assert_int_eq(api_prepare(&ctx, ROUTE_PI, &req, &q, &resp), API_RUN);
    api_query_fini(&q);
    http_response_fini(&resp);
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
                        "\"bad_parameter\",\"message\":\"n must be a decimal integer from 0 to "
                        "18446744073709551615 or the form 1e10\",\"param\":\"n\"}}]}");
}
END_TEST

/* One query of a batch answers exactly what the GET endpoint of its op answers: the same
 * result, or the same error (code, message, param), byte for byte, for every op and every error
 * a GET can get, with the argument as a JSON string and (where it is an integer) as a JSON
 * integer. */
struct same_case {
    const char *op;
    enum route_id route;
    int nargs;
    const char *names[3], *vals[3];
};

static const struct same_case same_cases[] = {
    {"isprime", ROUTE_ISPRIME, 1, {"n"}, {"97"}},
    {"isprime", ROUTE_ISPRIME, 1, {"n"}, {"18446744073709551615"}},
    {"isprime", ROUTE_ISPRIME, 0, {NULL}, {NULL}},                  /* missing_parameter */
    {"isprime", ROUTE_ISPRIME, 1, {"n"}, {"abc"}},                  /* bad_parameter */
    {"isprime", ROUTE_ISPRIME, 1, {"n"}, {"-1"}},                   /* bad_parameter */
    {"isprime", ROUTE_ISPRIME, 1, {"n"}, {""}},                     /* bad_parameter */
    {"isprime", ROUTE_ISPRIME, 1, {"n"}, {"1.5"}},                  /* bad_parameter */
    {"isprime", ROUTE_ISPRIME, 1, {"n"}, {"18446744073709551616"}}, /* overflow */
    {"isprime", ROUTE_ISPRIME, 2, {"n", "x"}, {"7", "1"}},          /* unknown_parameter */
    {"next", ROUTE_NEXT, 1, {"n"}, {"100"}},
    {"next", ROUTE_NEXT, 1, {"n"}, {"18446744073709551557"}}, /* no_such_prime */
    {"next", ROUTE_NEXT, 1, {"n"}, {"1e20"}},                 /* bad_parameter */
    {"next", ROUTE_NEXT, 0, {NULL}, {NULL}},                  /* missing_parameter */
    {"prev", ROUTE_PREV, 1, {"n"}, {"100"}},
    {"prev", ROUTE_PREV, 1, {"n"}, {"2"}},              /* no_such_prime */
    {"prev", ROUTE_PREV, 2, {"n", "from"}, {"9", "1"}}, /* unknown_parameter */
    {"nth", ROUTE_NTH, 1, {"n"}, {"1000"}},
    {"nth", ROUTE_NTH, 1, {"n"}, {"0"}},                  /* bad_parameter */
    {"nth", ROUTE_NTH, 1, {"n"}, {"100001"}},             /* limit_exceeded */
    {"nth", ROUTE_NTH, 1, {"n"}, {"425656284035217744"}}, /* no_such_prime */
    {"nth", ROUTE_NTH, 0, {NULL}, {NULL}},                /* missing_parameter */
    {"count", ROUTE_COUNT, 2, {"from", "to"}, {"0", "100"}},
    {"count", ROUTE_COUNT, 2, {"from", "to"}, {"10", "9"}},                  /* from > to */
    {"count", ROUTE_COUNT, 2, {"from", "to"}, {"0", "2000001"}},             /* limit_exceeded */
    {"count", ROUTE_COUNT, 1, {"from"}, {"0"}},                              /* missing to */
    {"count", ROUTE_COUNT, 1, {"to"}, {"9"}},                                /* missing from */
    {"count", ROUTE_COUNT, 2, {"from", "to"}, {"0x1", "9"}},                 /* bad from */
    {"count", ROUTE_COUNT, 3, {"from", "to", "format"}, {"0", "9", "text"}}, /* unknown */
};

/* The one result of a one-query batch answer, copied into out. */
static void only_result(const char *batch, char *out, size_t outlen)
{
    const char *pre = "{\"results\":[";
    size_t bl = strlen(batch), pl = strlen(pre);
    ck_assert_msg(bl > pl + 2 && strncmp(batch, pre, pl) == 0 && strcmp(batch + bl - 2, "]}") == 0,
                  "not a batch answer: %s", batch);
    snprintf(out, outlen, "%.*s", (int)(bl - pl - 2), batch + pl);
}

START_TEST(batch_query_answers_equal_get_answers)
{
    cfg.max_count_range = 2000000;
    struct fake *json = Q(.ctype = "application/json");
    for (int inl = 0; inl < 2; inl++) {
        ctx.inline_small = inl;
        for (size_t i = 0; i < sizeof same_cases / sizeof same_cases[0]; i++) {
            const struct same_case *c = &same_cases[i];
            struct fake f = {.n = c->nargs};
            for (int k = 0; k < c->nargs; k++) {
                f.names[k] = c->names[k];
                f.vals[k] = c->vals[k];
            }
            char get[4096], batch[8192], one[4096], body[512];
            int st = call(c->route, NULL, &f, get, sizeof get);
            /* every argument as a JSON string, then (when it is an integer jansson can hold) as
             * a JSON integer */
            for (int as_int = 0; as_int < 2; as_int++) {
                int len = snprintf(body, sizeof body, "{\"queries\":[{\"op\":\"%s\"", c->op);
                bool all_int = true;
                for (int k = 0; k < c->nargs; k++) {
                    char *end;
                    long long v = strtoll(c->vals[k], &end, 10);
                    bool is_int = c->vals[k][0] && !*end && v > -1000 && v < 1000000000;
                    all_int &= is_int;
                    if (as_int && is_int)
                        len += snprintf(body + len, sizeof body - (size_t)len, ",\"%s\":%lld",
                                        c->names[k], v);
                    else
                        len += snprintf(body + len, sizeof body - (size_t)len, ",\"%s\":\"%s\"",
                                        c->names[k], c->vals[k]);
                }
                snprintf(body + len, sizeof body - (size_t)len, "}]}");
                if (as_int && (!all_int || c->nargs == 0)) continue;
                ck_assert_int_eq(call(ROUTE_BATCH, body, json, batch, sizeof batch), 200);
                only_result(batch, one, sizeof one);
                ck_assert_msg(strcmp(one, get) == 0, "%s (GET %d)\n  GET:   %s\n  batch: %s", body,
                              st, get, one);
            }
        }
    }
}
END_TEST

/* Shapes the API cannot use are refused from the raw bytes, before jansson builds anything. */
START_TEST(batch_shape_bombs_are_refused_before_parsing)
{
    char b[8192], body[4096];
    struct fake *json = Q(.ctype = "application/json");
    ck_assert_int_eq(
        call(ROUTE_BATCH, "{\"queries\":[{\"op\":\"isprime\",\"n\":[[7]]}]}", json, b, sizeof b),
        400);
    ck_assert_str_eq(code_of(b), "bad_json");
    ck_assert_int_eq(call(ROUTE_BATCH, "{\"queries\":[[[[[[[[]]]]]]]]}", json, b, sizeof b), 400);
    ck_assert_str_eq(code_of(b), "bad_json");
    /* 9 members in one query */
    ck_assert_int_eq(call(ROUTE_BATCH,
                          "{\"queries\":[{\"op\":\"isprime\",\"n\":7,\"a\":1,\"b\":1,\"c\":1,"
                          "\"d\":1,\"e\":1,\"f\":1,\"g\":1}]}",
                          json, b, sizeof b),
                     400);
    ck_assert_str_eq(code_of(b), "limit_exceeded");
    /* 8 are fine: the unknown name is answered per query, as GET does */
    ck_assert_int_eq(call(ROUTE_BATCH,
                          "{\"queries\":[{\"op\":\"isprime\",\"n\":7,\"a\":1,\"b\":1,\"c\":1,"
                          "\"d\":1,\"e\":1,\"f\":1}]}",
                          json, b, sizeof b),
                     200);
    ck_assert_ptr_nonnull(strstr(b, "unknown_parameter"));
    /* a long string, a long number */
    int n = snprintf(body, sizeof body, "{\"queries\":[{\"op\":\"isprime\",\"n\":\"");
    memset(body + n, '7', 300);
    snprintf(body + n + 300, sizeof body - (size_t)n - 300, "\"}]}");
    ck_assert_int_eq(call(ROUTE_BATCH, body, json, b, sizeof b), 400);
    ck_assert_str_eq(code_of(b), "limit_exceeded");
    n = snprintf(body, sizeof body, "{\"queries\":[{\"op\":\"isprime\",\"n\":");
    memset(body + n, '7', 300);
    snprintf(body + n + 300, sizeof body - (size_t)n - 300, "}]}");
    ck_assert_int_eq(call(ROUTE_BATCH, body, json, b, sizeof b), 400);
    ck_assert_str_eq(code_of(b), "limit_exceeded");
    /* many root members */
    ck_assert_int_eq(call(ROUTE_BATCH,
                          "{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,"
                          "\"queries\":[]}",
                          json, b, sizeof b),
                     400);
    ck_assert_str_eq(code_of(b), "limit_exceeded");
    /* a value of the wrong JSON type is that query's error */
    ck_assert_int_eq(call(ROUTE_BATCH,
                          "{\"queries\":[{\"op\":\"isprime\",\"n\":7.5},{\"op\":\"isprime\","
                          "\"n\":true},{\"op\":\"isprime\",\"n\":7}]}",
                          json, b, sizeof b),
                     200);
    ck_assert_ptr_nonnull(
        strstr(b, "\"n must be a JSON integer or a string (one above 2^63-1 must be a string)\""));
    ck_assert_ptr_nonnull(strstr(b, "{\"n\":7,\"prime\":true}]}"));
}
END_TEST

/* The parse is charged to the request memory budget while it lives, given back after, and a
 * budget too small for it is a 503 overloaded, counted as a rejection. A batch of the largest
 * shape the scan lets through parses within the per-parse cap. */
START_TEST(batch_parse_is_charged_to_the_request_budget)
{
    char b[8192];
    struct fake *json = Q(.ctype = "application/json");
    struct reqmem mem;
    reqmem_init(&mem, 1024); /* less than one charge step */
    ctx.mem = &mem;
    ck_assert_int_eq(
        call(ROUTE_BATCH, "{\"queries\":[{\"op\":\"isprime\",\"n\":7}]}", json, b, sizeof b), 503);
    ck_assert_str_eq(code_of(b), "overloaded");
    ck_assert_uint_eq(atomic_load(&mem.rejections), 1);
    ck_assert_uint_eq(atomic_load(&mem.used), 0);

    reqmem_init(&mem, 64u << 20);
    cfg.max_batch_queries = 1000;
    size_t cap = 1000 * 80 + 64, len = 0;
    char *body = malloc(cap), *out = malloc(1 << 20);
    len += (size_t)snprintf(body, cap, "{\"queries\":[");
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(body + len, cap - len,
                                "%s{\"op\":\"nth\",\"n\":%d,\"a\":1,\"b\":2,\"c\":3,\"d\":4,"
                                "\"e\":5,\"f\":6}",
                                i ? "," : "", i + 1);
    snprintf(body + len, cap - len, "]}");
    ck_assert_int_eq(call(ROUTE_BATCH, body, json, out, 1 << 20), 200);
    ck_assert_ptr_nonnull(strstr(out, "unknown_parameter"));
    ck_assert_uint_eq(atomic_load(&mem.rejections), 0);
    ck_assert_uint_eq(atomic_load(&mem.used), 0);
    free(body);
    free(out);
    ctx.mem = NULL;
}
END_TEST

/* Prices: 1 for small requests, growing with the numbers sieved and their height; a batch is
 * the sum of its queries. The figures are the documented ones (docs/configuration.md). */
static uint64_t price(enum route_id route, uint64_t a, uint64_t b)
{
    struct api_query q = {.route = route, .op = router_find(route)->op, .a = a, .b = b};
    return api_cost(&ctx, &q);
}

static struct http_response run_priced_batch(const char *body, struct charge_rec *rec)
{
    return api_fake_priced_batch(&ctx, body, rec);
}

static uint64_t batch_price(const char *body)
{
    return api_fake_batch_price(&ctx, body);
}

START_TEST(batch_is_priced_before_any_query_runs)
{
    /* Refused by its price: the charge's answer is the batch's, and no query ran (a count of
     * [1e18, 1e18+1e9] would take seconds). */
    struct charge_rec rec = {.refuse = true};
    struct http_response resp = run_priced_batch(
        "{\"queries\":[{\"op\":\"isprime\",\"n\":7},{\"op\":\"count\",\"from\":\"1e18\","
        "\"to\":\"1000000001000000000\"}]}",
        &rec);
    ck_assert_int_eq(resp.status, 429);
    ck_assert_ptr_nonnull(strstr(resp.body, "test refusal"));
    ck_assert_int_eq(rec.calls, 1);
    ck_assert_uint_gt(rec.tokens, 1000); /* the count's estimate (~1600 tokens) is in it */
    http_response_fini(&resp);

    /* Refused as hopeless by its total, like one request: 20 × π(1e14) is ~0.7 s each on the
     * one worker here (each alone is attempted under a 1 s deadline), ~14 s together. */
    cfg.request_timeout_ms = 1000;
    cfg.max_batch_queries = 20;
    char body[2048] = "{\"queries\":[";
    for (int i = 0; i < 20; i++)
        strcat(body, i ? ",{\"op\":\"pi\",\"x\":\"1e14\"}" : "{\"op\":\"pi\",\"x\":\"1e14\"}");
    strcat(body, "]}");
    struct charge_rec none = {0};
    resp = run_priced_batch(body, &none);
    ck_assert_int_eq(resp.status, 400);
    ck_assert_msg(strstr(resp.body, "limit_exceeded") && strstr(resp.body, "20 queries"), "%.*s",
                  (int)resp.body_len, resp.body);
    ck_assert_int_eq(none.calls, 0); /* refused before it is charged */
    http_response_fini(&resp);
}
END_TEST

/* A π value the cache holds is answered, not refused as hopeless: the check looks at the cache
 * as it stands (cost_ms with ctx). The price does not (docs/configuration.md: prices are from
 * scratch, whatever the cache holds), for a GET as for a batch. */
START_TEST(hopeless_check_sees_the_pi_cache_prices_do_not)
{
    char b[4096];
    cfg.request_timeout_ms = 1000;
    cfg.max_batch_queries = 20;
    const uint64_t top = UINT64_MAX, pi_top = 425656284035217743ull; /* published */
    const uint64_t price_top = price(ROUTE_PI, top, 0);
    ck_assert_int_eq(call(ROUTE_PI, NULL,
                          Q(.names = {"x"}, .vals = {"18446744073709551615"}, .n = 1), b, sizeof b),
                     400);
    ck_assert_str_eq(code_of(b), "limit_exceeded");
    struct picache *pic;
    ck_assert_int_eq(picache_create(1 << 20, NULL, &pic), 0);
    ctx.pic = pic;
    picache_put(pic, top, pi_top);
    ck_assert_int_eq(call(ROUTE_PI, NULL,
                          Q(.names = {"x"}, .vals = {"18446744073709551615"}, .n = 1), b, sizeof b),
                     200);
    ck_assert_str_eq(b, "{\"x\":18446744073709551615,\"pi\":425656284035217743}");
    ck_assert_int_eq(call(ROUTE_COUNT, NULL,
                          Q(.names = {"from", "to"}, .vals = {"0", "18446744073709551615"}, .n = 2),
                          b, sizeof b),
                     200);
    ck_assert_ptr_nonnull(strstr(b, "\"count\":425656284035217743"));
    ck_assert_uint_eq(price(ROUTE_PI, top, 0), price_top);
    ck_assert_uint_eq(price(ROUTE_COUNT, 0, top), price_top);
    /* 20 × π(1e14) together are hopeless under 1 s (batch_is_priced_before_any_query_runs);
     * cached, they are charged (here: refused by the test's charge, before any runs) their
     * from-scratch price. */
    picache_put(pic, 100000000000000ull, 3204941750802ull);
    char body[2048] = "{\"queries\":[";
    for (int i = 0; i < 20; i++)
        strcat(body, i ? ",{\"op\":\"pi\",\"x\":\"1e14\"}" : "{\"op\":\"pi\",\"x\":\"1e14\"}");
    strcat(body, "]}");
    struct charge_rec rec = {.refuse = true};
    struct http_response resp = run_priced_batch(body, &rec);
    ck_assert_int_eq(resp.status, 429);
    ck_assert_int_eq(rec.calls, 1);
    ck_assert_uint_ge(rec.tokens, 20 * (price(ROUTE_PI, 100000000000000ull, 0) - 1));
    http_response_fini(&resp);
    ctx.pic = NULL;
    picache_destroy(pic);
}
END_TEST

START_TEST(prices_follow_the_work)
{
    ck_assert_uint_eq(price(ROUTE_ISPRIME, 18446744073709551557ull, 0), 1);
    ck_assert_uint_eq(price(ROUTE_NEXT, 1, 0), 1);
    ck_assert_uint_eq(price(ROUTE_COUNT, 0, 1000), 1);
    /* count, nth and pi share the engine's cost model (pi.h): a count is the cheaper of
     * sieving [a, b] and π(b) − π(a−1), so a wide count from 0 costs what π(b) costs. */
    ck_assert(api_count_by_pi(0, 9999999999ull));
    ck_assert(!api_count_by_pi(1000, 2000));
    ck_assert_uint_eq(price(ROUTE_COUNT, 0, 9999999999ull), price(ROUTE_PI, 9999999999ull, 0));
    ck_assert_uint_eq(price(ROUTE_PI, 9999999999ull, 0),
                      1 + (uint64_t)(1000 * pi_cost_seconds(9999999999ull)));
    ck_assert_uint_eq(price(ROUTE_COUNT, 0, UINT64_MAX), price(ROUTE_PI, UINT64_MAX, 0));
    ck_assert_uint_gt(price(ROUTE_PI, UINT64_MAX, 0), 900000); /* ~1,100 s of one worker */
    /* A narrow range high up is sieved: its price is the sieve's, and grows with the height. */
    uint64_t low = price(ROUTE_COUNT, 1000000000ull, 1999999999ull),
             high = price(ROUTE_COUNT, 1000000000000000000ull, 1000000000999999999ull);
    ck_assert(!api_count_by_pi(1000000000000000000ull, 1000000000999999999ull));
    ck_assert_uint_eq(high, 1 + (uint64_t)(1000 * pi_sieve_cost_seconds(1000000000000000000ull,
                                                                        1000000000999999999ull)));
    ck_assert_uint_gt(high, 10 * low); /* the same width near 1e18 costs > 10x */
    /* Listing is priced by the numbers it sieves (it cannot take the π shortcut). */
    ck_assert_uint_eq(price(ROUTE_PRIMES, 0, 999999999), 501);         /* 4 × 1e9 / 8e6 + 1 */
    ck_assert_uint_eq(price(ROUTE_PRIMES, 0, UINT64_MAX), 1000000000); /* capped */
    /* nth(k) is π at x ≈ nth(k) plus a small gap sieve: nth(1e10) ≈ 2.5e11. */
    uint64_t nth = price(ROUTE_NTH, 10000000000ull, 0);
    ck_assert_msg(nth >= price(ROUTE_PI, 240000000000ull, 0) &&
                      nth <= price(ROUTE_PI, 260000000000ull, 0) + 2,
                  "nth(1e10) = %llu", (unsigned long long)nth);
    uint64_t one = price(ROUTE_COUNT, 100000000000000ull, 100000100000000ull);
    ck_assert(!api_count_by_pi(100000000000000ull, 100000100000000ull));
    ck_assert_uint_eq(batch_price("{\"queries\":[{\"op\":\"count\",\"from\":\"1e14\",\"to\":"
                                  "100000100000000}]}"),
                      one);
    uint64_t two = batch_price("{\"queries\":[{\"op\":\"count\",\"from\":\"1e14\",\"to\":"
                               "100000100000000},{\"op\":\"isprime\",\"n\":7}]}");
    ck_assert_uint_ge(two, one);
    ck_assert_uint_le(two, one + 1);
    ck_assert_uint_eq(batch_price("{\"queries\":[{\"op\":\"isprime\",\"n\":7},{\"op\":\"bad\"},"
                                  "{\"op\":\"count\",\"from\":5,\"to\":1}]}"),
                      1);
}
END_TEST

/* The op table is complete: every API route has an op row with every part set (parse, cost,
 * shedding, and exactly one of run and stream), named as its route's label; a batch op and an
 * inline op have a fixed-size answer (run); no other route has an op. A new op that leaves a
 * part out fails here. */
START_TEST(every_api_route_has_a_complete_op_row)
{
    int api_routes = 0;
    for (size_t i = 0; i < router_count(); i++) {
        const struct route *rt = router_route(i);
        if (rt->kind != ROUTE_K_API) {
            ck_assert_msg(rt->op == NULL, "%s: not an API route but has an op", rt->path);
            continue;
        }
        api_routes++;
        const struct api_op_def *op = rt->op;
        ck_assert_msg(op != NULL, "%s: API route without an op row", rt->path);
        ck_assert_msg(op->name && strcmp(op->name, rt->label) == 0, "%s: op name", rt->path);
        ck_assert_msg(op->parse && op->cost_ms && op->holds_memory, "%s: op row", rt->path);
        ck_assert_msg(!op->run != !op->stream, "%s: exactly one of run and stream", rt->path);
        ck_assert_msg(!(op->batch || op->inline_ok) || op->run, "%s: batch/inline need run",
                      rt->path);
        ck_assert_ptr_eq(router_find(rt->id), rt);
        /* what /openapi.json says of it (openapi.c) */
        ck_assert_msg(op->answer && op->answer[0], "%s: op row without its answer", rt->path);
        for (int k = 0; k < HTTP_MAX_PARAMS && op->params[k].name; k++)
            ck_assert_msg(op->params[k].about &&
                              (op->params[k].type != API_PARAM_WORD || op->params[k].words),
                          "%s: parameter %s undescribed", rt->path, op->params[k].name);
    }
    ck_assert_int_ge(api_routes, 9);
}
END_TEST

static Suite *api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 120); /* real counts and π runs: minutes under TSan on a busy machine */
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, every_api_route_has_a_complete_op_row);
    tcase_add_test(tc, missing_and_malformed_numbers_are_400);
    tcase_add_test(tc, unknown_and_repeated_parameters_are_400);
    tcase_add_test(tc, ranges_from_above_to_and_limits);
    tcase_add_test(tc, answers_match_known_values);
    tcase_add_test(tc, batch_validation);
    tcase_add_test(tc, batch_query_answers_equal_get_answers);
    tcase_add_test(tc, batch_shape_bombs_are_refused_before_parsing);
    tcase_add_test(tc, batch_parse_is_charged_to_the_request_budget);
    tcase_add_test(tc, prices_follow_the_work);
    tcase_add_test(tc, batch_is_priced_before_any_query_runs);
    tcase_add_test(tc, hopeless_check_sees_the_pi_cache_prices_do_not);
    tcase_add_test(tc, pi_answers_and_bad_inputs);
    tcase_add_test(tc, count_by_sieve_and_by_pi_agree);
    tcase_add_test(tc, hopeless_requests_are_refused_up_front);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(api_suite)
