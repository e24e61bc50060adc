/* test_openapi.c — openapi_render: the description covers every row of the route, op and error
 * tables and carries the configuration's limits. Reads the tables, never a copy of them; the
 * real validators (redocly, ajv) and the running service are tests/test_openapi.sh's. */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api_op.h"
#include "check_main.h"
#include "openapi.h"
#include "primed/config.h"
#include "primed/errors.h"
#include "primed/router.h"

static json_t *render(const struct primed_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(openapi_render(cfg, &text, &len), 0);
    ck_assert_uint_eq(strlen(text), len);
    json_error_t err;
    json_t *doc = json_loads(text, 0, &err);
    ck_assert_msg(doc != NULL, "not JSON: %s", err.text);
    free(text);
    return doc;
}

START_TEST(every_route_and_method_is_described)
{
    struct primed_config cfg;
    config_defaults(&cfg);
    json_t *doc = render(&cfg);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    json_t *paths = json_object_get(doc, "paths");
    for (size_t i = 0; i < router_count(); i++) {
        const struct route *rt = router_route(i);
        json_t *item = json_object_get(paths, rt->path);
        ck_assert_msg(item != NULL, "%s is not described", rt->path);
        ck_assert_msg(!(rt->methods & ROUTE_M_GET) || json_object_get(item, "get"), "GET %s",
                      rt->path);
        ck_assert_msg(!(rt->methods & ROUTE_M_POST) || json_object_get(item, "post"), "POST %s",
                      rt->path);
        json_t *op = json_object_get(item, rt->methods & ROUTE_M_GET ? "get" : "post");
        ck_assert_ptr_nonnull(json_object_get(json_object_get(op, "responses"), "200"));
        if (rt->kind != ROUTE_K_API || rt->op->body) continue;
        json_t *params = json_object_get(op, "parameters");
        for (int k = 0; k < HTTP_MAX_PARAMS; k++) {
            const char *name = rt->op->params[k].name;
            ck_assert_int_eq(json_array_size(params) > (size_t)k, name != NULL);
            if (!name) break;
            json_t *p = json_array_get(params, (size_t)k);
            ck_assert_str_eq(json_string_value(json_object_get(p, "name")), name);
            ck_assert_int_eq(json_is_true(json_object_get(p, "required")),
                             rt->op->params[k].required);
        }
    }
    json_decref(doc);
}
END_TEST

START_TEST(every_error_code_has_its_status)
{
    struct primed_config cfg;
    config_defaults(&cfg);
    json_t *doc = render(&cfg);
    json_t *comp = json_object_get(doc, "components");
    json_t *codes = json_object_get(
        json_object_get(
            json_object_get(
                json_object_get(json_object_get(json_object_get(comp, "schemas"), "Error"),
                                "properties"),
                "error"),
            "properties"),
        "code");
    codes = json_object_get(codes, "enum");
    ck_assert_uint_eq(json_array_size(codes), PERR__COUNT);
    for (int e = 0; e < PERR__COUNT; e++) {
        ck_assert_str_eq(json_string_value(json_array_get(codes, (size_t)e)),
                         errors_code((enum primed_err)e));
        char key[16];
        snprintf(key, sizeof key, "E%d", errors_status((enum primed_err)e));
        ck_assert_msg(json_object_get(json_object_get(comp, "responses"), key), "%s", key);
    }
    /* 429 and 504 on an API path; 401 only on the debug listener's */
    json_t *count =
        json_object_get(json_object_get(json_object_get(doc, "paths"), "/v1/count"), "get");
    json_t *resp = json_object_get(count, "responses");
    ck_assert_ptr_nonnull(json_object_get(resp, "429"));
    ck_assert_ptr_nonnull(json_object_get(resp, "503"));
    ck_assert_ptr_nonnull(json_object_get(resp, "504"));
    ck_assert_ptr_null(json_object_get(resp, "401"));
    json_decref(doc);
}
END_TEST

START_TEST(limits_follow_the_configuration)
{
    struct primed_config cfg;
    config_defaults(&cfg);
    cfg.max_nth = 12345;
    cfg.max_batch_queries = 7;
    json_t *doc = render(&cfg);
    json_t *paths = json_object_get(doc, "paths");
    json_t *n = json_array_get(
        json_object_get(json_object_get(json_object_get(paths, "/v1/nth"), "get"), "parameters"),
        0);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(n, "schema"), "maximum")),
                     12345);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(n, "schema"), "minimum")),
                     1);
    json_t *body = json_object_get(
        json_object_get(
            json_object_get(json_object_get(json_object_get(paths, "/v1/batch"), "post"),
                            "requestBody"),
            "content"),
        "application/json");
    json_t *queries =
        json_object_get(json_object_get(json_object_get(body, "schema"), "properties"), "queries");
    ck_assert_int_eq(json_integer_value(json_object_get(queries, "maxItems")), 7);
    json_decref(doc);
}
END_TEST

static Suite *openapi_suite(void)
{
    Suite *s = suite_create("openapi");
    TCase *tc = tcase_create("openapi");
    tcase_add_test(tc, every_route_and_method_is_described);
    tcase_add_test(tc, every_error_code_has_its_status);
    tcase_add_test(tc, limits_follow_the_configuration);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(openapi_suite)
