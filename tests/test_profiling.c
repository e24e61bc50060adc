/* test_profiling.c — the debug endpoints through profiling_handle with a fake request (no
 * sockets): symbolization of known functions (including a static one only .symtab knows), the
 * heap profile's shape, CPU-profile argument bounds and one-at-a-time 409, cmdline, index,
 * 404/405; and in builds without tcmalloc, 501 not_implemented for every gperftools endpoint. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "primed/config.h"
#include "primed/http.h"
#include "primed/errors.h"
#include "primed/profiling.h"

struct fake {
    const char *arg_name, *arg_value;
};

static const char *fake_get_arg(const struct http_request *req, const char *name)
{
    const struct fake *f = req->impl;
    return f && f->arg_name && strcmp(name, f->arg_name) == 0 ? f->arg_value : NULL;
}
static const char *fake_get_header(const struct http_request *req, const char *name)
{
    (void)req;
    (void)name;
    return NULL;
}

/* One request; returns the status and leaves the response in *resp (caller finis it). */
static int call(const char *method, const char *path, const char *arg, const char *value,
                const char *body, struct http_response *resp)
{
    struct fake f = {arg, value};
    struct http_request req = {
        .method = method,
        .path = path,
        .request_id = "test",
        .client_addr = "127.0.0.1",
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .get_arg = fake_get_arg,
        .get_header = fake_get_header,
        .impl = &f,
    };
    http_response_init(resp);
    /* As the server dispatches: the route table decides 404/405, then the endpoint runs. */
    const struct route *rt = NULL;
    switch (router_match(true, method, path, &rt)) {
    case ROUTER_NOT_FOUND:
        errors_render(resp, PERR_NOT_FOUND, NULL, NULL, NULL);
        break;
    case ROUTER_METHOD_NOT_ALLOWED:
        errors_render(resp, PERR_METHOD_NOT_ALLOWED, NULL, router_allow(rt), NULL);
        break;
    case ROUTER_OK:
        profiling_handle(rt->id, &req, resp);
        break;
    }
    return resp->status;
}

static void setup(void)
{
    struct primed_config cfg;
    config_defaults(&cfg);
    cfg.heap_sampling = false; /* never re-exec the test binary */
    cfg.max_profile_seconds = 3;
    char *argv[] = {"test_profiling", NULL};
    ck_assert_int_eq(profiling_early_init(&cfg, 1, argv), 0);
}

static bool body_has(const struct http_response *r, const char *needle)
{
    return r->body && memmem(r->body, r->body_len, needle, strlen(needle)) != NULL;
}

START_TEST(unknown_debug_path_is_404)
{
    struct http_response r;
    ck_assert_int_eq(call("GET", "/debug/nope", NULL, NULL, NULL, &r), 404);
    ck_assert(body_has(&r, "not_found"));
    http_response_fini(&r);
}
END_TEST

START_TEST(wrong_method_is_405_with_allow)
{
    struct http_response r;
    ck_assert_int_eq(call("DELETE", "/debug/pprof/heap", NULL, NULL, NULL, &r), 405);
    ck_assert_int_ge(r.nheaders, 1);
    ck_assert_str_eq(r.headers[0].name, "Allow");
    http_response_fini(&r);
    ck_assert_int_eq(call("PUT", "/debug/pprof/symbol", NULL, NULL, NULL, &r), 405);
    http_response_fini(&r);
}
END_TEST

#if PRIMED_TCMALLOC

/* A function only the ELF .symtab names (static, not exported): dladdr() alone cannot. */
__attribute__((noinline)) static int symbolz_marker_function(int x)
{
    __asm__ volatile("" ::: "memory");
    return x * 3 + 1;
}

START_TEST(symbol_get_reports_symbols)
{
    struct http_response r;
    ck_assert_int_eq(call("GET", "/debug/pprof/symbol", NULL, NULL, NULL, &r), 200);
    ck_assert(body_has(&r, "num_symbols: 1\n"));
    http_response_fini(&r);
    ck_assert_int_eq(call("GET", "/symbolz", NULL, NULL, NULL, &r), 200);
    ck_assert(body_has(&r, "num_symbols: 1\n"));
    http_response_fini(&r);
}
END_TEST

START_TEST(symbol_post_names_known_functions)
{
    ck_assert_int_eq(symbolz_marker_function(1), 4);
    char body[256], line[128];
    uintptr_t a1 = (uintptr_t)&symbolz_marker_function + 1; /* inside, not at the start */
    uintptr_t a2 = (uintptr_t)&profiling_handle + 2;        /* a library (libprimed.a) function */
    uintptr_t a3 = (uintptr_t)&fopen;                       /* libc: via dladdr */
    snprintf(body, sizeof body, "0x%lx+0x%lx+0x%lx+0x1+garbage", (unsigned long)a1,
             (unsigned long)a2, (unsigned long)a3);
    struct http_response r;
    ck_assert_int_eq(call("POST", "/debug/pprof/symbol", NULL, NULL, body, &r), 200);
    snprintf(line, sizeof line, "0x%lx\tsymbolz_marker_function\n", (unsigned long)a1);
    ck_assert_msg(body_has(&r, line), "no %s in %.*s", line, (int)r.body_len, r.body);
    snprintf(line, sizeof line, "0x%lx\tprofiling_handle\n", (unsigned long)a2);
    ck_assert_msg(body_has(&r, line), "no %s in %.*s", line, (int)r.body_len, r.body);
    snprintf(line, sizeof line, "0x%lx\t", (unsigned long)a3);
    ck_assert_msg(body_has(&r, line), "libc address not named: %.*s", (int)r.body_len, r.body);
    ck_assert(!body_has(&r, "0x1\t")); /* unknown addresses are left out */
    http_response_fini(&r);
    /* same answer through /symbolz, whitespace-separated as some clients send */
    snprintf(body, sizeof body, "0x%lx\n", (unsigned long)a1);
    ck_assert_int_eq(call("POST", "/symbolz", NULL, NULL, body, &r), 200);
    ck_assert(body_has(&r, "symbolz_marker_function"));
    http_response_fini(&r);
}
END_TEST

START_TEST(heap_profile_has_header_and_mapped_libraries)
{
    struct http_response r;
    ck_assert_int_eq(call("GET", "/debug/pprof/heap", NULL, NULL, NULL, &r), 200);
    ck_assert(body_has(&r, "heap profile:"));
    ck_assert(body_has(&r, "\nMAPPED_LIBRARIES:\n"));
    ck_assert(body_has(&r, "test_profiling")); /* the executable's own mapping */
    http_response_fini(&r);
    ck_assert_int_eq(call("GET", "/debug/heap", NULL, NULL, NULL, &r), 200);
    ck_assert(body_has(&r, "heap profile:"));
    http_response_fini(&r);
}
END_TEST

START_TEST(stats_index_and_cmdline)
{
    struct http_response r;
    ck_assert_int_eq(call("GET", "/debug/stats", NULL, NULL, NULL, &r), 200);
    ck_assert(body_has(&r, "MALLOC:"));
    http_response_fini(&r);
    ck_assert_int_eq(call("GET", "/debug/pprof/", NULL, NULL, NULL, &r), 200);
    ck_assert_str_eq(r.content_type, "text/html; charset=utf-8");
    static const char *const links[] = {"/debug/pprof/heap", "/debug/pprof/profile",
                                        "/debug/pprof/symbol", "/debug/pprof/cmdline",
                                        "/debug/stats"};
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
        ck_assert(body_has(&r, links[i]));
    http_response_fini(&r);
    ck_assert_int_eq(call("GET", "/debug/pprof/cmdline", NULL, NULL, NULL, &r), 200);
    ck_assert(r.body_len > 0 && r.body[r.body_len - 1] != '\0');
    ck_assert(body_has(&r, "test_profiling"));
    http_response_fini(&r);
}
END_TEST

START_TEST(profile_seconds_out_of_range_is_400)
{
    static const char *const bad[] = {"0", "4", "-1", "abc", "", "1.5", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct http_response r;
        ck_assert_int_eq(call("GET", "/debug/pprof/profile", "seconds", bad[i], NULL, &r), 400);
        ck_assert(body_has(&r, "\"param\":\"seconds\""));
        http_response_fini(&r);
    }
}
END_TEST

static pthread_barrier_t race;
struct racer {
    int status;
    bool header_ok;
};
static void *profile_racer(void *arg)
{
    struct racer *me = arg;
    struct http_response r;
    pthread_barrier_wait(&race);
    me->status = call("GET", "/debug/pprof/profile", "seconds", "2", NULL, &r);
    /* a gperftools CPU profile starts with the header words 0, 3, 0, period (µs), 0 */
    if (me->status == 200 && r.body_len >= 5 * sizeof(uint64_t)) {
        uint64_t w[5];
        memcpy(w, r.body, sizeof w);
        me->header_ok = w[0] == 0 && w[1] == 3 && w[2] == 0 && w[3] > 0 && w[4] == 0;
        me->header_ok = me->header_ok && strcmp(r.content_type, "application/octet-stream") == 0;
    }
    http_response_fini(&r);
    return NULL;
}

START_TEST(second_cpu_profile_while_one_runs_is_409)
{
    /* Two requests released together: one owns the profiler for 2 s, the other is refused at
     * once with 409. */
    pthread_t th[2];
    struct racer rs[2] = {{0, false}, {0, false}};
    pthread_barrier_init(&race, NULL, 2);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, profile_racer, &rs[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&race);
    int winner = rs[0].status == 200 ? 0 : 1;
    ck_assert_int_eq(rs[winner].status, 200);
    ck_assert(rs[winner].header_ok);
    ck_assert_int_eq(rs[1 - winner].status, 409);
    /* and once it is over, a new one may start */
    struct http_response r;
    ck_assert_int_eq(call("GET", "/debug/pprof/profile", "seconds", "1", NULL, &r), 200);
    http_response_fini(&r);
}
END_TEST

#else /* !PRIMED_TCMALLOC */

START_TEST(every_endpoint_is_501_without_tcmalloc)
{
    static const char *const paths[] = {
        "/debug/heap", "/debug/pprof/heap",    "/debug/pprof/profile", "/debug/pprof/symbol",
        "/symbolz",    "/debug/pprof/cmdline", "/debug/stats"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct http_response r;
        ck_assert_msg(call("GET", paths[i], "seconds", "1", NULL, &r) == 501, "%s", paths[i]);
        ck_assert(body_has(&r, "\"code\":\"not_implemented\""));
        http_response_fini(&r);
    }
    struct http_response r;
    ck_assert_int_eq(call("POST", "/debug/pprof/symbol", NULL, NULL, "0x1234", &r), 501);
    http_response_fini(&r);
    /* The index is derived from the route table and needs no tcmalloc: it answers. */
    ck_assert_int_eq(call("GET", "/debug/pprof/", NULL, NULL, NULL, &r), 200);
    ck_assert(body_has(&r, "/debug/requests"));
    http_response_fini(&r);
}
END_TEST

#endif

static Suite *profiling_suite(void)
{
    Suite *s = suite_create("profiling");
    TCase *tc = tcase_create("endpoints");
    tcase_add_checked_fixture(tc, setup, profiling_shutdown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, unknown_debug_path_is_404);
    tcase_add_test(tc, wrong_method_is_405_with_allow);
#if PRIMED_TCMALLOC
    tcase_add_test(tc, symbol_get_reports_symbols);
    tcase_add_test(tc, symbol_post_names_known_functions);
    tcase_add_test(tc, heap_profile_has_header_and_mapped_libraries);
    tcase_add_test(tc, stats_index_and_cmdline);
    tcase_add_test(tc, profile_seconds_out_of_range_is_400);
    tcase_add_test(tc, second_cpu_profile_while_one_runs_is_409);
#else
    tcase_add_test(tc, every_endpoint_is_501_without_tcmalloc);
#endif
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(profiling_suite)
