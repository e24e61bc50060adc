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
        const char *label;
    } t[] = {
        {"/", ROUTE_ROOT, "root"},
        {"/healthz", ROUTE_HEALTHZ, "healthz"},
        {"/readyz", ROUTE_READYZ, "readyz"},
        {"/metrics", ROUTE_METRICS, "metrics"},
        {"/v1/primes", ROUTE_PRIMES, "primes"},
        {"/v1/count", ROUTE_COUNT, "count"},
        {"/v1/isprime", ROUTE_ISPRIME, "isprime"},
        {"/v1/nth", ROUTE_NTH, "nth"},
        {"/v1/next", ROUTE_NEXT, "next"},
        {"/v1/prev", ROUTE_PREV, "prev"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const struct route *r;
        ck_assert_int_eq(m(false, "GET", t[i].path, &r), ROUTER_OK);
        ck_assert_int_eq(r->id, t[i].id);
        ck_assert_str_eq(router_label_name(router_label_index(r)), t[i].label);
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
    ck_assert_str_eq(router_allow(r), "GET, HEAD");
    ck_assert_int_eq(m(false, "GET", "/v1/batch", &r), ROUTER_METHOD_NOT_ALLOWED);
    ck_assert_str_eq(router_allow(r), "POST");
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
    ck_assert_int_eq(r->id, ROUTE_DEBUG_HEAP);
    ck_assert_int_eq(m(true, "POST", "/symbolz", &r), ROUTER_OK);
    ck_assert_int_eq(m(true, "GET", "/metrics", &r), ROUTER_OK);
    ck_assert_int_eq(m(true, "GET", "/v1/count", &r), ROUTER_NOT_FOUND); /* no API on debug */
}
END_TEST

/* The derived views of the table: every row is reachable by its own path on its listeners, the
 * label set is the rows' distinct labels plus "other", and an unmatched request is "other". */
START_TEST(table_rows_are_consistent)
{
    ck_assert_uint_gt(router_count(), 10);
    for (size_t i = 0; i < router_count(); i++) {
        const struct route *row = router_route(i), *r;
        ck_assert_ptr_nonnull(row->summary);
        ck_assert_uint_ne(row->listeners, 0);
        for (int dbg = 0; dbg < 2; dbg++) {
            unsigned l = dbg ? ROUTE_L_DEBUG : ROUTE_L_MAIN;
            enum router_result want = (row->listeners & l) ? ROUTER_OK : ROUTER_NOT_FOUND;
            const char *meth = (row->methods & ROUTE_M_GET) ? "GET" : "POST";
            enum router_result got = m(dbg, meth, row->path, &r);
            if (want == ROUTER_NOT_FOUND && got == ROUTER_OK) continue; /* a later row's path */
            ck_assert_int_eq(got, want);
            if (got == ROUTER_OK) ck_assert_int_eq(r->id, row->id);
        }
        ck_assert_str_eq(router_label_name(router_label_index(row)), row->label);
    }
    ck_assert_str_eq(router_label_name(router_label_index(NULL)), "other");
    ck_assert_uint_eq(router_label_index(NULL), router_label_count() - 1);
    for (size_t a = 0; a < router_label_count(); a++)
        for (size_t b = a + 1; b < router_label_count(); b++)
            ck_assert_str_ne(router_label_name(a), router_label_name(b));
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
    tcase_add_test(tc, table_rows_are_consistent);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(router_suite)
