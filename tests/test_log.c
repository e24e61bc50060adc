/* test_log.c — log lines captured from stderr (redirected to a pipe read by a thread) are one
 * valid JSON object per line with the documented fields; truncation keeps them valid; threads
 * never interleave; request ids are well-formed and unique; X-Request-Id sanitising. */
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "testutil.h"
#include "primed/log.h"

/* ---- stderr capture: a pipe drained by a thread so writers never block on a full pipe ---- */
struct capture {
    int saved_fd;
    int rfd;
    pthread_t reader;
    char *buf;
    size_t len, cap;
};

static void *drain(void *arg)
{
    struct capture *c = arg;
    for (;;) {
        if (c->cap - c->len < 65536) {
            c->cap = c->cap * 2 + 65536;
            c->buf = realloc(c->buf, c->cap + 1);
            ck_assert_ptr_nonnull(c->buf);
        }
        ssize_t n = read(c->rfd, c->buf + c->len, c->cap - c->len);
        if (n <= 0) break;
        c->len += (size_t)n;
    }
    c->buf[c->len] = '\0';
    return NULL;
}

static void capture_start(struct capture *c)
{
    memset(c, 0, sizeof(*c));
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fflush(stderr);
    c->saved_fd = dup(STDERR_FILENO);
    ck_assert_int_eq(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    close(p[1]);
    c->rfd = p[0];
    ck_assert_int_eq(pthread_create(&c->reader, NULL, drain, c), 0);
}

/* Restores stderr; returns the captured text (c->buf, NUL-terminated; free it). */
static char *capture_stop(struct capture *c)
{
    dup2(c->saved_fd, STDERR_FILENO); /* closes the last write end: the reader sees EOF */
    close(c->saved_fd);
    pthread_join(c->reader, NULL);
    close(c->rfd);
    return c->buf;
}

/* Split into lines (every line must end in '\n'), parse each as one JSON object. */
static size_t parse_lines(char *text, json_t **out, size_t max)
{
    size_t n = 0;
    char *p = text;
    while (*p != '\0') {
        char *nl = strchr(p, '\n');
        ck_assert_msg(nl != NULL, "unterminated log line: %s", p);
        json_error_t e;
        json_t *j = json_loadb(p, (size_t)(nl - p), 0, &e);
        ck_assert_msg(j != NULL, "log line is not JSON: %.*s (%s)", (int)(nl - p), p, e.text);
        ck_assert(json_is_object(j));
        if (n < max)
            out[n] = j;
        else
            json_decref(j);
        n++;
        p = nl + 1;
    }
    return n;
}

static const char *sget(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    ck_assert_msg(json_is_string(v), "field %s missing or not a string", k);
    return json_string_value(v);
}

static json_int_t iget(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    ck_assert_msg(json_is_integer(v), "field %s missing or not an integer", k);
    return json_integer_value(v);
}

/* "2026-01-02T03:04:05.678Z", within a minute of now (a format check, not a timing check). */
static void check_ts(const char *ts)
{
    ck_assert_uint_eq(strlen(ts), 24);
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm);
    ck_assert_ptr_nonnull(end);
    ck_assert(end[0] == '.' && end[1] >= '0' && end[1] <= '9' && end[2] >= '0' && end[2] <= '9' &&
              end[3] >= '0' && end[3] <= '9' && end[4] == 'Z');
    time_t t = timegm(&tm);
    ck_assert(llabs((long long)(t - time(NULL))) < 60);
}

START_TEST(event_line_is_json_with_ts_level_event_msg_and_pairs)
{
    log_init(LOG_INFO, LOG_FORMAT_JSON);
    struct capture c;
    capture_start(&c);
    log_event(LOG_WARN, "listening", "ready on \"port\"\n", "port", "8080", "addr", "0.0.0.0",
              "nothing", NULL, NULL);
    char *text = capture_stop(&c);
    json_t *l[4];
    ck_assert_uint_eq(parse_lines(text, l, 4), 1);
    check_ts(sget(l[0], "ts"));
    ck_assert_str_eq(sget(l[0], "level"), "warn");
    ck_assert_str_eq(sget(l[0], "event"), "listening");
    ck_assert_str_eq(sget(l[0], "msg"), "ready on \"port\"\n");
    ck_assert_str_eq(sget(l[0], "port"), "8080");
    ck_assert_str_eq(sget(l[0], "addr"), "0.0.0.0");
    ck_assert(json_is_null(json_object_get(l[0], "nothing")));
    ck_assert_ptr_null(json_object_get(l[0], "truncated"));
    json_decref(l[0]);
    free(text);
}
END_TEST

START_TEST(request_line_has_every_documented_field)
{
    log_init(LOG_INFO, LOG_FORMAT_JSON);
    struct capture c;
    capture_start(&c);
    struct log_request_rec r = {.request_id = "0123456789abcdef",
                                .method = "GET",
                                .path = "/v1/primes",
                                .client_addr = "127.0.0.1",
                                .status = 503,
                                .bytes = UINT64_C(9000000000),
                                .duration_us = 1234};
    log_request(&r);
    struct log_request_rec hostile = {.request_id = "x",
                                      .method = "G\"ET",
                                      .path = "/\xff\x01\"\\\n",
                                      .client_addr = NULL,
                                      .status = 200};
    log_request(&hostile);
    char *text = capture_stop(&c);
    json_t *l[4];
    ck_assert_uint_eq(parse_lines(text, l, 4), 2);
    check_ts(sget(l[0], "ts"));
    ck_assert_str_eq(sget(l[0], "level"), "info");
    ck_assert_str_eq(sget(l[0], "event"), "request");
    ck_assert_str_eq(sget(l[0], "request_id"), "0123456789abcdef");
    ck_assert_str_eq(sget(l[0], "method"), "GET");
    ck_assert_str_eq(sget(l[0], "path"), "/v1/primes");
    ck_assert_str_eq(sget(l[0], "client"), "127.0.0.1");
    ck_assert_int_eq(iget(l[0], "status"), 503);
    ck_assert_int_eq(iget(l[0], "bytes"), 9000000000LL);
    ck_assert_int_eq(iget(l[0], "duration_us"), 1234);
    ck_assert_str_eq(sget(l[1], "method"), "G\"ET");
    ck_assert_str_eq(sget(l[1], "path"), "/\xef\xbf\xbd\x01\"\\\n");
    ck_assert_str_eq(sget(l[1], "client"), "-");
    json_decref(l[0]);
    json_decref(l[1]);
    free(text);
}
END_TEST

START_TEST(level_filter_drops_less_severe_lines)
{
    log_init(LOG_WARN, LOG_FORMAT_JSON);
    ck_assert(!log_enabled(LOG_INFO));
    ck_assert(log_enabled(LOG_ERROR));
    struct capture c;
    capture_start(&c);
    log_event(LOG_DEBUG, "d", NULL, NULL);
    log_event(LOG_INFO, "i", NULL, NULL);
    struct log_request_rec r = {.request_id = "a", .method = "GET", .path = "/", .status = 200};
    log_request(&r); /* requests are info */
    log_event(LOG_WARN, "w", NULL, NULL);
    log_event(LOG_ERROR, "e", NULL, NULL);
    char *text = capture_stop(&c);
    json_t *l[8];
    ck_assert_uint_eq(parse_lines(text, l, 8), 2);
    ck_assert_str_eq(sget(l[0], "event"), "w");
    ck_assert_str_eq(sget(l[1], "level"), "error");
    ck_assert_ptr_null(json_object_get(l[0], "msg")); /* NULL msg is omitted */
    json_decref(l[0]);
    json_decref(l[1]);
    free(text);
    log_init(LOG_INFO, LOG_FORMAT_JSON);
}
END_TEST

START_TEST(text_format_is_one_readable_line)
{
    log_init(LOG_DEBUG, LOG_FORMAT_TEXT);
    struct capture c;
    capture_start(&c);
    log_event(LOG_INFO, "listening", "two words", "port", "8080", NULL);
    struct log_request_rec r = {.request_id = "id1",
                                .method = "GET",
                                .path = "/a b",
                                .client_addr = "::1",
                                .status = 404,
                                .bytes = 7,
                                .duration_us = 9};
    log_request(&r);
    char *text = capture_stop(&c);
    log_init(LOG_INFO, LOG_FORMAT_JSON);
    char *nl1 = strchr(text, '\n');
    ck_assert_ptr_nonnull(nl1);
    *nl1 = '\0';
    ck_assert_ptr_nonnull(strstr(text, " info listening msg=\"two words\" port=8080"));
    char *second = nl1 + 1;
    ck_assert_ptr_nonnull(strstr(second, "request request_id=id1 method=GET status=404 bytes=7 "
                                         "duration_us=9 client=::1 path=\"/a b\"\n"));
    ck_assert_ptr_null(strchr(strchr(second, '\n') + 1, '\n')); /* exactly two lines */
    free(text);
}
END_TEST

START_TEST(overlong_line_is_truncated_but_stays_valid_json)
{
    log_init(LOG_INFO, LOG_FORMAT_JSON);
    static char big[20000];
    for (size_t i = 0; i < sizeof(big) - 1; i++)
        big[i] = "ab\"\n\xe2\x82\xac"[i % 7]; /* quotes, newlines, 3-byte UTF-8 */
    big[sizeof(big) - 1] = '\0';
    struct capture c;
    capture_start(&c);
    log_event(LOG_ERROR, "big", big, "after", "dropped", NULL);
    struct log_request_rec r = {.request_id = "id", .method = "GET", .path = big, .status = 414};
    log_request(&r);
    char *text = capture_stop(&c);
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        ck_assert((size_t)(nl - p) < 4096); /* fits PIPE_BUF with its newline */
        p = nl + 1;
    }
    json_t *l[4];
    ck_assert_uint_eq(parse_lines(text, l, 4), 2);
    ck_assert(json_is_true(json_object_get(l[0], "truncated")));
    const char *msg = sget(l[0], "msg");
    ck_assert(strlen(msg) > 1000 && strcmp(msg + strlen(msg) - 3, "...") == 0);
    ck_assert_int_eq(strncmp(msg, big, strlen(msg) - 3), 0);
    ck_assert_ptr_null(json_object_get(l[0], "after"));
    ck_assert(json_is_true(json_object_get(l[1], "truncated")));
    ck_assert_int_eq(iget(l[1], "status"), 414); /* fixed fields survive a huge path */
    ck_assert_str_eq(sget(l[1], "request_id"), "id");
    json_decref(l[0]);
    json_decref(l[1]);
    free(text);
}
END_TEST

#define NTHREADS 4
#define NLINES 500

static void *log_many(void *arg)
{
    char who[8];
    snprintf(who, sizeof(who), "t%d", (int)(intptr_t)arg);
    char pad[1500];
    memset(pad, 'p', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    for (int i = 0; i < NLINES; i++) {
        char n[16];
        snprintf(n, sizeof(n), "%d", i);
        log_event(LOG_INFO, "tick", pad, "who", who, "n", n, NULL);
    }
    return NULL;
}

START_TEST(concurrent_lines_never_interleave)
{
    log_init(LOG_INFO, LOG_FORMAT_JSON);
    struct capture c;
    capture_start(&c);
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, log_many, (void *)(intptr_t)i), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    char *text = capture_stop(&c);
    /* every line parses alone, and each thread's lines arrive complete and in order */
    int next[NTHREADS] = {0};
    size_t count = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        ck_assert_ptr_nonnull(nl);
        json_error_t e;
        json_t *j = json_loadb(p, (size_t)(nl - p), 0, &e);
        ck_assert_msg(j != NULL, "interleaved or broken line: %s", e.text);
        int who = atoi(sget(j, "who") + 1);
        ck_assert(who >= 0 && who < NTHREADS);
        ck_assert_int_eq(atoi(sget(j, "n")), next[who]);
        next[who]++;
        json_decref(j);
        count++;
        p = nl + 1;
    }
    ck_assert_uint_eq(count, NTHREADS * NLINES);
    free(text);
}
END_TEST

#define NIDS 50000
static char ids[NTHREADS][NIDS][17];

static void *make_ids(void *arg)
{
    intptr_t k = (intptr_t)arg;
    for (int i = 0; i < NIDS; i++)
        log_new_request_id(ids[k][i]);
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 17);
}

START_TEST(request_ids_are_16_hex_and_unique_across_threads)
{
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, make_ids, (void *)(intptr_t)i), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    char(*all)[17] = &ids[0][0];
    size_t n = (size_t)NTHREADS * NIDS;
    unsigned hist[16] = {0};
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_eq(strlen(all[i]), 16);
        ck_assert_uint_eq(strspn(all[i], "0123456789abcdef"), 16);
        hist[all[i][0] >= 'a' ? all[i][0] - 'a' + 10 : all[i][0] - '0']++;
    }
    qsort(all, n, 17, cmp_id);
    for (size_t i = 1; i < n; i++)
        ck_assert_msg(memcmp(all[i - 1], all[i], 17) != 0, "duplicate id %s", all[i]);
    /* the first hex digit is roughly uniform (each bucket expects n/16 = 12500) */
    for (int d = 0; d < 16; d++)
        ck_assert_msg(hist[d] > n / 16 * 8 / 10 && hist[d] < n / 16 * 12 / 10,
                      "digit %x appears %u times", d, hist[d]);
}
END_TEST

START_TEST(request_id_sanitising_accepts_only_safe_short_ids)
{
    char out[65];
    ck_assert_int_eq(log_sanitize_request_id("abc-DEF_012.x", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "abc-DEF_012.x");
    char max[65];
    memset(max, 'a', 64);
    max[64] = '\0';
    ck_assert_int_eq(log_sanitize_request_id(max, out, sizeof(out)), 0);
    ck_assert_str_eq(out, max);
    char over[66];
    memset(over, 'a', 65);
    over[65] = '\0';
    static const char *const bad[] = {"",    "a b", "a\"b", "a\nb",    "a/b",
                                      "a:b", "é",   "a%20", "<script>"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(log_sanitize_request_id(bad[i], out, sizeof(out)) == -1, "accepted '%s'",
                      bad[i]);
    ck_assert_int_eq(log_sanitize_request_id(over, out, sizeof(out)), -1);
    ck_assert_int_eq(log_sanitize_request_id(NULL, out, sizeof(out)), -1);
    /* a too-small output buffer is a refusal, never an overflow */
    ck_assert_int_eq(log_sanitize_request_id("abcdef", out, 6), -1);
    ck_assert_int_eq(log_sanitize_request_id("abcde", out, 6), 0);
}
END_TEST

/* The hand-written civil-date conversion against glibc's gmtime_r + strftime, at the calendar's
 * edges (leap days, century rules, year ends) and for random instants up to year 9999. */
static void check_time(time_t t, long ns)
{
    struct timespec ts = {.tv_sec = t, .tv_nsec = ns};
    char got[25], want[40];
    log_format_time(&ts, got);
    struct tm tm;
    ck_assert_ptr_nonnull(gmtime_r(&t, &tm));
    size_t n = strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(want + n, sizeof(want) - n, ".%03ldZ", ns / 1000000);
    ck_assert_str_eq(got, want);
}

START_TEST(timestamps_match_gmtime_everywhere_in_the_calendar)
{
    static const time_t edges[] = {0,           59,         86399,      86400,
                                   951782399,   951782400,  951868800,  /* 2000-02-29 */
                                   4107542399,  4107542400, 4107628800, /* 2100-02-28/03-01 */
                                   1709164800,  1709251199, 1735689599, 1735689600,
                                   253402300799 /* 9999-12-31T23:59:59 */};
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        check_time(edges[i], 0);
        check_time(edges[i], 999999999);
    }
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 200000; i++) {
        xorshift64(&x);
        check_time((time_t)(x % 253402300800ULL), (long)(x >> 34) % 1000000000L);
    }
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, event_line_is_json_with_ts_level_event_msg_and_pairs);
    tcase_add_test(tc, request_line_has_every_documented_field);
    tcase_add_test(tc, level_filter_drops_less_severe_lines);
    tcase_add_test(tc, text_format_is_one_readable_line);
    tcase_add_test(tc, overlong_line_is_truncated_but_stays_valid_json);
    tcase_add_test(tc, concurrent_lines_never_interleave);
    tcase_add_test(tc, request_ids_are_16_hex_and_unique_across_threads);
    tcase_add_test(tc, request_id_sanitising_accepts_only_safe_short_ids);
    tcase_add_test(tc, timestamps_match_gmtime_everywhere_in_the_calendar);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(log_suite)
