/* test_op_factor.c — /v1/factor at the API: the documented answers at the edges (1 is the empty
 * product, 0 a 400), answers for the inputs rho finds hardest, the price from the cost model,
 * and every answer (results and errors) equal byte for byte to batch op `factor`'s. The
 * factorization itself is checked against oracles in test_factor.c. No sockets. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "api_fake.h"
#include "check_main.h"
#include "primed/config.h"

static struct primed_config cfg;
static struct api_ctx ctx;

static void setup(void)
{
    config_defaults(&cfg);
    ctx = (struct api_ctx){.cfg = &cfg, .pool = NULL, .inline_small = true};
}

static int get(const char *n, char *out, size_t outlen)
{
    struct fake f = {.names = {"n"}, .vals = {n}, .n = n ? 1 : 0};
    return api_fake_call(&ctx, ROUTE_FACTOR, NULL, &f, out, outlen);
}

START_TEST(factor_answers_and_edges)
{
    char b[4096];
    ck_assert_int_eq(get("18446744073709551615", b, sizeof b), 200);
    ck_assert_str_eq(b, "{\"n\":18446744073709551615,\"factors\":[[3,1],[5,1],[17,1],[257,1],"
                        "[641,1],[65537,1],[6700417,1]]}");
    ck_assert_int_eq(get("1", b, sizeof b), 200);
    ck_assert_str_eq(b, "{\"n\":1,\"factors\":[]}");
    ck_assert_int_eq(get("0", b, sizeof b), 400);
    ck_assert_str_eq(code_of(b), "bad_parameter");
    ck_assert_int_eq(get(NULL, b, sizeof b), 400);
    ck_assert_str_eq(code_of(b), "missing_parameter");
    ck_assert_int_eq(get("18446743979220271189", b, sizeof b),
                     200); /* the two largest u32 primes */
    ck_assert_str_eq(b, "{\"n\":18446743979220271189,\"factors\":[[4294967279,1],[4294967291,1]]}");
    ck_assert_int_eq(get("18446744030759878681", b, sizeof b), 200); /* 4294967291^2 */
    ck_assert_str_eq(b, "{\"n\":18446744030759878681,\"factors\":[[4294967291,2]]}");
    ck_assert_int_eq(get("18446744073709551557", b, sizeof b), 200); /* the largest u64 prime */
    ck_assert_str_eq(b, "{\"n\":18446744073709551557,\"factors\":[[18446744073709551557,1]]}");
    ck_assert_int_eq(get("1e18", b, sizeof b), 200);
    ck_assert_str_eq(b, "{\"n\":1000000000000000000,\"factors\":[[2,18],[5,18]]}");
}
END_TEST

/* The price is the cost model's (1 + ms, 1 ms at 2^64), on GET and inside a batch alike. */
START_TEST(factor_is_priced_by_the_cost_model)
{
    struct api_query q = {.route = ROUTE_FACTOR, .op = router_find(ROUTE_FACTOR)->op};
    q.a = UINT64_MAX;
    ck_assert_uint_eq(api_cost(&ctx, &q), 2);
    q.a = 1000000000000ull;
    ck_assert_uint_eq(api_cost(&ctx, &q), 1);
    ck_assert_uint_eq(api_fake_batch_price(
                          &ctx, "{\"queries\":[{\"op\":\"factor\",\"n\":\"18446744073709551615\"},"
                                "{\"op\":\"factor\",\"n\":\"18446744073709551615\"}]}"),
                      3); /* 1 + 2 × 1 ms */
}
END_TEST

/* A batch query answers what its GET answers, inline or on a worker, for results and errors. */
START_TEST(batch_factor_equals_get_factor)
{
    static const char *ns[] = {"18446744073709551615",
                               "18446743979220271189",
                               "1",
                               "12",
                               "0",
                               "-1",
                               "1e19",
                               "18446744073709551616",
                               "x"};
    struct fake *json = Q(.ctype = "application/json");
    for (int inl = 0; inl < 2; inl++) {
        ctx.inline_small = inl;
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
            char want[1024], body[256], got[2048], one[1024];
            get(ns[i], want, sizeof want);
            snprintf(body, sizeof body, "{\"queries\":[{\"op\":\"factor\",\"n\":\"%s\"}]}", ns[i]);
            ck_assert_int_eq(api_fake_call(&ctx, ROUTE_BATCH, body, json, got, sizeof got), 200);
            size_t gl = strlen(got), pl = strlen("{\"results\":[");
            ck_assert(gl > pl + 2);
            snprintf(one, sizeof one, "%.*s", (int)(gl - pl - 2), got + pl);
            ck_assert_msg(strcmp(one, want) == 0, "n=%s\n  GET:   %s\n  batch: %s", ns[i], want,
                          one);
        }
    }
}
END_TEST

static Suite *op_factor_suite(void)
{
    Suite *s = suite_create("op_factor");
    TCase *tc = tcase_create("op_factor");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, factor_answers_and_edges);
    tcase_add_test(tc, factor_is_priced_by_the_cost_model);
    tcase_add_test(tc, batch_factor_equals_get_factor);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(op_factor_suite)
