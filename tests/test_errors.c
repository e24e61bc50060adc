/* test_errors.c — the error table and its JSON rendering, every enum value parsed back with
 * jansson. The expected status/code pairs are copied from the comments of errors.h (the
 * published contract), not from errors.c. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check_main.h"
#include "primed/errors.h"
#include "primed/http.h"

static const struct {
    enum primed_err e;
    int status;
    const char *code;
} contract[] = {
    {PERR_BAD_PARAM, 400, "bad_parameter"},
    {PERR_MISSING_PARAM, 400, "missing_parameter"},
    {PERR_UNKNOWN_PARAM, 400, "unknown_parameter"},
    {PERR_LIMIT_EXCEEDED, 400, "limit_exceeded"},
    {PERR_BAD_REQUEST, 400, "bad_request"},
    {PERR_BAD_JSON, 400, "bad_json"},
    {PERR_UNAUTHORIZED, 401, "unauthorized"},
    {PERR_NOT_FOUND, 404, "not_found"},
    {PERR_NO_SUCH_PRIME, 404, "no_such_prime"},
    {PERR_METHOD_NOT_ALLOWED, 405, "method_not_allowed"},
    {PERR_NOT_ACCEPTABLE, 406, "not_acceptable"},
    {PERR_REQUEST_TIMEOUT, 408, "request_timeout"},
    {PERR_CONFLICT, 409, "conflict"},
    {PERR_BODY_TOO_LARGE, 413, "body_too_large"},
    {PERR_URI_TOO_LONG, 414, "uri_too_long"},
    {PERR_UNSUPPORTED_MEDIA, 415, "unsupported_media_type"},
    {PERR_RATE_LIMITED, 429, "rate_limited"},
    {PERR_HEADERS_TOO_LARGE, 431, "headers_too_large"},
    {PERR_INTERNAL, 500, "internal"},
    {PERR_NOT_IMPLEMENTED, 501, "not_implemented"},
    {PERR_OVERLOADED, 503, "overloaded"},
    {PERR_UNAVAILABLE, 503, "unavailable"},
    {PERR_DEADLINE, 504, "deadline_exceeded"},
};
#define NCONTRACT (sizeof(contract) / sizeof(contract[0]))

static const char *header(const struct http_response *r, const char *name)
{
    for (int i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) return r->headers[i].value;
    return NULL;
}

/* Parse resp's body; assert the {"error":{…}} shape; return the inner object (borrowed from
 * *root, which the caller decrefs). */
static json_t *parse_error(const struct http_response *r, json_t **root)
{
    json_error_t e;
    *root = json_loadb(r->body, r->body_len, 0, &e);
    ck_assert_msg(*root != NULL, "body is not JSON: %.*s (%s)", (int)r->body_len, r->body, e.text);
    ck_assert_uint_eq(json_object_size(*root), 1);
    json_t *inner = json_object_get(*root, "error");
    ck_assert(json_is_object(inner));
    return inner;
}

START_TEST(table_covers_every_error_as_the_contract_says)
{
    ck_assert_uint_eq(NCONTRACT, PERR__COUNT);
    for (size_t i = 0; i < NCONTRACT; i++) {
        const struct primed_error_info *info = errors_info(contract[i].e);
        ck_assert_int_eq(info->status, contract[i].status);
        ck_assert_str_eq(info->code, contract[i].code);
        ck_assert(info->message != NULL && info->message[0] != '\0');
        ck_assert_int_eq(errors_status(contract[i].e), contract[i].status);
        ck_assert_str_eq(errors_code(contract[i].e), contract[i].code);
    }
    /* codes are unique: clients switch on them */
    for (size_t i = 0; i < NCONTRACT; i++)
        for (size_t j = i + 1; j < NCONTRACT; j++)
            ck_assert_str_ne(contract[i].code, contract[j].code);
}
END_TEST

START_TEST(render_every_error_with_default_message_and_no_param)
{
    for (size_t i = 0; i < NCONTRACT; i++) {
        struct http_response r;
        http_response_init(&r);
        ck_assert_int_eq(errors_render(&r, contract[i].e, NULL, "GET, HEAD", NULL), 0);
        ck_assert_int_eq(r.status, contract[i].status);
        ck_assert_str_eq(r.content_type, "application/json");
        json_t *root, *inner = parse_error(&r, &root);
        ck_assert_str_eq(json_string_value(json_object_get(inner, "code")), contract[i].code);
        ck_assert_str_eq(json_string_value(json_object_get(inner, "message")),
                         errors_info(contract[i].e)->message);
        ck_assert_ptr_null(json_object_get(inner, "param")); /* omitted, not null */
        ck_assert_uint_eq(json_object_size(inner), 2);

        const char *allow = header(&r, "Allow"), *retry = header(&r, "Retry-After");
        if (contract[i].e == PERR_METHOD_NOT_ALLOWED)
            ck_assert_str_eq(allow, "GET, HEAD");
        else
            ck_assert_ptr_null(allow);
        if (contract[i].e == PERR_OVERLOADED || contract[i].e == PERR_UNAVAILABLE)
            ck_assert_str_eq(retry, "1");
        else
            ck_assert_ptr_null(retry);
        json_decref(root);
        http_response_fini(&r);
    }
}
END_TEST

START_TEST(render_every_error_with_param_and_formatted_message)
{
    for (size_t i = 0; i < NCONTRACT; i++) {
        struct http_response r;
        http_response_init(&r);
        ck_assert_int_eq(errors_render(&r, contract[i].e, "from", NULL,
                                       "from must be <= %s, got %llu", "to", 42ULL),
                         0);
        ck_assert_int_eq(r.status, contract[i].status);
        json_t *root, *inner = parse_error(&r, &root);
        ck_assert_str_eq(json_string_value(json_object_get(inner, "message")),
                         "from must be <= to, got 42");
        ck_assert_str_eq(json_string_value(json_object_get(inner, "param")), "from");
        ck_assert_uint_eq(json_object_size(inner), 3);
        if (contract[i].e == PERR_METHOD_NOT_ALLOWED) /* no Allow given: none sent */
            ck_assert_ptr_null(header(&r, "Allow"));
        json_decref(root);
        http_response_fini(&r);
    }
}
END_TEST

START_TEST(hostile_param_and_message_are_escaped_and_bounded)
{
    char big[10000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[10] = '"';
    big[20] = '\n';
    big[30] = (char)0xff; /* not UTF-8 */
    struct http_response r;
    http_response_init(&r);
    ck_assert_int_eq(errors_render(&r, PERR_UNKNOWN_PARAM, big, NULL, "unknown '%s'", big), 0);
    ck_assert_int_eq(r.status, 400);
    ck_assert(r.body_len < 4096); /* a client cannot grow an error body */
    json_t *root, *inner = parse_error(&r, &root);
    const char *msg = json_string_value(json_object_get(inner, "message"));
    const char *param = json_string_value(json_object_get(inner, "param"));
    ck_assert_int_eq(strncmp(msg, "unknown 'xxxxxxxxxx\"xxxxxxxxx\n", 30), 0);
    ck_assert_int_eq(strncmp(param, "xxxxxxxxxx\"xxxxxxxxx\n", 21), 0);
    ck_assert(strlen(msg) < 600 && strcmp(msg + strlen(msg) - 3, "...") == 0);
    ck_assert(strlen(param) < 200 && strcmp(param + strlen(param) - 3, "...") == 0);
    json_decref(root);
    http_response_fini(&r);
}
END_TEST

START_TEST(render_replaces_an_earlier_body_without_leaking)
{
    struct http_response r;
    http_response_init(&r);
    ck_assert_int_eq(http_response_body(&r, 200, HTTP_TEXT, "partial", 7), 0);
    ck_assert_int_eq(errors_render(&r, PERR_DEADLINE, NULL, NULL, NULL), 0);
    ck_assert_int_eq(r.status, 504);
    ck_assert_ptr_nonnull(strstr(r.body, "deadline_exceeded"));
    http_response_fini(&r); /* LSan in the asan build catches a leaked "partial" */
}
END_TEST

START_TEST(out_of_range_enum_maps_to_internal)
{
    ck_assert_int_eq(errors_info((enum primed_err)PERR__COUNT)->status, 500);
    ck_assert_int_eq(errors_info((enum primed_err) - 1)->status, 500);
}
END_TEST

START_TEST(http_response_helpers_own_and_bound_their_data)
{
    struct http_response r;
    http_response_init(&r);
    char big[HTTP_HEADER_VALUE_MAX * 2];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(http_response_header(&r, "X-Big", big), 0);
    ck_assert_uint_eq(strlen(r.headers[0].value), HTTP_HEADER_VALUE_MAX - 1);
    for (int i = 1; i < HTTP_MAX_EXTRA_HEADERS; i++)
        ck_assert_int_eq(http_response_header(&r, "X-N", "1"), 0);
    ck_assert_int_eq(http_response_header(&r, "X-Over", "1"), -ENOSPC);
    ck_assert_int_eq(r.nheaders, HTTP_MAX_EXTRA_HEADERS);

    static const char text[] = "static body";
    http_response_static(&r, 200, HTTP_TEXT, text, sizeof(text) - 1);
    ck_assert(r.body_static);
    ck_assert_ptr_eq(r.body, text);
    ck_assert_int_eq(http_response_body(&r, 201, HTTP_JSON, "{}", 2), 0); /* copied, owned */
    ck_assert(!r.body_static);
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(r.body, "{}");
    char *owned = strdup("[1,2]");
    http_response_body_owned(&r, 200, HTTP_JSON, owned, 5);
    ck_assert_ptr_eq(r.body, owned);
    http_response_fini(&r); /* frees owned; LSan checks */
    ck_assert_ptr_null(r.body);
    http_response_fini(&r); /* idempotent */
}
END_TEST

static Suite *errors_suite(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, table_covers_every_error_as_the_contract_says);
    tcase_add_test(tc, render_every_error_with_default_message_and_no_param);
    tcase_add_test(tc, render_every_error_with_param_and_formatted_message);
    tcase_add_test(tc, hostile_param_and_message_are_escaped_and_bounded);
    tcase_add_test(tc, render_replaces_an_earlier_body_without_leaking);
    tcase_add_test(tc, out_of_range_enum_maps_to_internal);
    tcase_add_test(tc, http_response_helpers_own_and_bound_their_data);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(errors_suite)
