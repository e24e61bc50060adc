/* test_router.c — path/method → handler, 404 and 405 with Allow, listener separation. */
#include <check.h>
#include <string.h>

#include "check_main.h"
#include "primed/router.h"

static enum router_result m(bool debug, const char *method, const char *path,
                            const struct route **r)
{
    return router_match(debug, method, path, r);
}

START_TEST(api_paths_map_to_their_handlers)
{
    static const struct {
        const char *path;
        enum route_id id;
        enum metrics_handler h;
    } t[] = {
        {"/", ROUTE_ROOT, MH_ROOT},
        {"/healthz", ROUTE_HEALTHZ, MH_HEALTHZ},
        {"/readyz", ROUTE_READYZ, MH_READYZ},
        {"/metrics", ROUTE_METRICS, MH_METRICS},
        {"/v1/primes", ROUTE_PRIMES, MH_PRIMES},
        {"/v1/count", ROUTE_COUNT, MH_COUNT},
        {"/v1/isprime", ROUTE_ISPRIME, MH_ISPRIME},
        {"/v1/nth", ROUTE_NTH, MH_NTH},
        {"/v1/next", ROUTE_NEXT, MH_NEXT},
        {"/v1/prev", ROUTE_PREV, MH_PREV},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const struct route *r;
        ck_assert_int_eq(m(false, "GET", t[i].path, &r), ROUTER_OK);
        ck_assert_int_eq(r->id, t[i].id);
        ck_assert_int_eq(r->handler, t[i].h);
        ck_assert_int_eq(m(false, "HEAD", t[i].path, &r), ROUTER_OK);
    }
    const struct route *r;
    ck_assert_int_eq(m(false, "POST", "/v1/batch", &r), ROUTER_OK);
    ck_assert_int_eq(r->id, ROUTE_BATCH);
}
END_TEST

START_TEST(wrong_method_is_405_with_allow)
{
    const struct route *r;
    ck_assert_int_eq(m(false, "POST", "/v1/count", &r), ROUTER_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(r->allow, "GET, HEAD");
    ck_assert_int_eq(m(false, "GET", "/v1/batch", &r), ROUTER_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(r->allow, "POST");
    ck_assert_int_eq(m(false, "DELETE", "/healthz", &r), ROUTER_METHOD_NOT_ALLOWED);
}
END_TEST

START_TEST(unknown_paths_are_404)
{
    const struct route *r;
    const char *bad[] = {"/v1", "/v1/", "/v1/count/", "/V1/count", "/healthz/x", "", "/v2/count"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(m(false, "GET", bad[i], &r), ROUTER_NOT_FOUND);
}
END_TEST

START_TEST(debug_paths_only_on_the_debug_listener)
{
    const struct route *r;
    ck_assert_int_eq(m(false, "GET", "/debug/pprof/heap", &r), ROUTER_NOT_FOUND);
    ck_assert_int_eq(m(false, "GET", "/symbolz", &r), ROUTER_NOT_FOUND);
    ck_assert_int_eq(m(true, "GET", "/debug/pprof/heap", &r), ROUTER_OK);
    ck_assert_int_eq(r->id, ROUTE_DEBUG);
    ck_assert_int_eq(m(true, "POST", "/symbolz", &r), ROUTER_OK);
    ck_assert_int_eq(m(true, "GET", "/metrics", &r), ROUTER_OK);
    ck_assert_int_eq(m(true, "GET", "/v1/count", &r), ROUTER_NOT_FOUND); /* no API on debug */
}
END_TEST

static Suite *router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("router");
    tcase_add_test(tc, api_paths_map_to_their_handlers);
    tcase_add_test(tc, wrong_method_is_405_with_allow);
    tcase_add_test(tc, unknown_paths_are_404);
    tcase_add_test(tc, debug_paths_only_on_the_debug_listener);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(router_suite)
