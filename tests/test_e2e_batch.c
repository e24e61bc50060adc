/* test_e2e_batch.c — batch bodies cost their raw bytes, within a budget, and never the I/O thread.
 *
 * Issue 11's defects 1 and 2 against the real build/primed: with the only worker busy, 20 queued
 * 1 MiB batches of the audit's shape (one query carrying ~350k empty objects, ~65 MiB of jansson
 * tree each when parsed on arrival) must raise the peak RSS by at most 160 MiB; a full request
 * memory budget answers 503 overloaded (JSON, Retry-After) at once and the metrics say so; and
 * /healthz stays prompt while 8 clients post 1 MiB batches. Figures go to stderr.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "harness.h"

#define MIB (1024L * 1024)

/* VmRSS or VmHWM of pid, in KiB (-1 when unreadable). */
static long proc_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') v = strtol(line + fl + 1, NULL, 10);
    fclose(f);
    return v;
}

/* The audit's body: one query whose extra member is an array of empty objects, `bytes` long. A
 * 1 MiB one became ~65 MiB of tree when parsed on arrival. */
static char *bomb_body(size_t bytes)
{
    char *b = malloc(bytes + 1);
    ck_assert_ptr_nonnull(b);
    const char *head = "{\"queries\":[{\"op\":\"isprime\",\"n\":7,\"x\":[", *tail = "{}]}]}";
    size_t hl = strlen(head), tl = strlen(tail), len = hl;
    memcpy(b, head, hl);
    while (len + 3 + tl <= bytes) {
        memcpy(b + len, "{},", 3);
        len += 3;
    }
    memcpy(b + len, tail, tl + 1);
    return b;
}

/* 1000 real queries, padded with spaces to `bytes`: what the scan lets through to jansson. */
static char *real_body(size_t bytes)
{
    char *b = malloc(bytes + 1);
    ck_assert_ptr_nonnull(b);
    size_t len = (size_t)snprintf(b, bytes, "{\"queries\":[");
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(b + len, bytes - len, "%s{\"op\":\"isprime\",\"n\":\"%d\"}",
                                i ? "," : "", 1000003 + 2 * i);
    while (len + 2 < bytes)
        b[len++] = ' ';
    memcpy(b + len, "]}", 3);
    return b;
}

static const char *const json_hdr[] = {"Content-Type: application/json", "Expect:", NULL};
static const char *const json_expect_hdr[] = {"Content-Type: application/json",
                                              "Expect: 100-continue", NULL};
static const char *const json_chunked_hdr[] = {"Content-Type: application/json",
                                               "Transfer-Encoding: chunked", "Expect:", NULL};

struct poster {
    pthread_t t;
    int port;
    const char *path;
    const char *body;
    const char *const *headers;
    int repeat;
    long status; /* the last answer's status (0: no answer) */
    bool json;   /* every answer was JSON */
    bool retry;  /* the last 503 carried Retry-After */
    char code[48];
    atomic_bool done; /* set (release) by the thread when it has finished */
};

static void *post_thread(void *arg)
{
    struct poster *p = arg;
    p->json = true;
    for (int i = 0; i < p->repeat; i++) {
        struct http_result r;
        p->status = 0;
        if (http_do(p->port, p->body ? "POST" : "GET", p->path, p->body, p->headers, &r) != 0) {
            http_result_free(&r);
            continue;
        }
        p->status = r.status;
        char ct[64] = "", ra[16] = "";
        http_header_value(&r, "Content-Type", ct, sizeof ct);
        p->json &= strncmp(ct, "application/json", 16) == 0;
        p->retry = http_header_value(&r, "Retry-After", ra, sizeof ra) == 0;
        const char *c = strstr(r.body, "\"code\":\"");
        snprintf(p->code, sizeof p->code, "%.*s", c ? (int)strcspn(c + 8, "\"") : 0,
                 c ? c + 8 : "");
        http_result_free(&r);
    }
    atomic_store_explicit(&p->done, true, memory_order_release);
    return NULL;
}

static void start_poster(struct poster *p, int port, const char *path, const char *body,
                         const char *const *headers, int repeat)
{
    *p = (struct poster){
        .port = port, .path = path, .body = body, .headers = headers, .repeat = repeat};
    atomic_init(&p->done, false);
    ck_assert_int_eq(pthread_create(&p->t, NULL, post_thread, p), 0);
}

/* Keeps the only worker busy until the request deadline cancels it (504): a sieved window near
 * 1e18 (π(1e18) would cost more, so the count sieves), minutes of work, attempted because the
 * servers below run with --refuse-hopeless false. */
#define BUSY_PATH "/v1/count?from=1e18&to=1000000100000000000"

START_TEST(queued_batches_hold_only_their_bytes)
{
    struct primed_proc p;
    /* One client (127.0.0.1) plays twenty here: its share is the whole budget. */
    const char *args[] = {"--workers",
                          "1",
                          "--request-timeout-ms",
                          "8000",
                          "--refuse-hopeless",
                          "false",
                          "--request-memory-per-client",
                          "64MiB",
                          NULL};
    ck_assert_int_eq(primed_start(&p, args), 0);
    char *body = bomb_body(MIB - 64);
    usleep(200000);
    long rss0 = proc_kib(p.pid, "VmRSS");
    ck_assert_int_gt(rss0, 0);

    struct poster busy, post[20];
    start_poster(&busy, p.port, BUSY_PATH, NULL, NULL, 1);
    ck_assert_int_eq(http_wait_metric(p.port, "primed_workers_busy", 1, 5000), 1);
    for (int i = 0; i < 20; i++)
        start_poster(&post[i], p.port, "/v1/batch", body, json_hdr, 1);
    long depth = http_wait_metric(p.port, "primed_queue_depth", 20, 6000);
    long hwm = proc_kib(p.pid, "VmHWM");
    long held = http_metric(p.port, "primed_request_memory_bytes");
    fprintf(stderr,
            "20 queued 1 MiB batches: queue depth %ld, RSS before %ld KiB, peak %ld KiB, "
            "growth %.1f MiB; request memory %ld bytes\n",
            depth, rss0, hwm, (double)(hwm - rss0) / 1024, held);
    /* ThreadSanitizer shadows every byte the process touches several times over (the 20 MiB of
     * bodies alone cost ~180 MiB there), so under it only the budget's own figure is checked. */
    const char *variant = getenv("PRIMED_VARIANT");
    if (!variant || strcmp(variant, "tsan") != 0)
        ck_assert_msg(hwm - rss0 <= 160 * 1024, "peak RSS grew by %ld KiB", hwm - rss0);
    ck_assert_int_eq(depth, 20);
    /* The queued bodies are what the budget holds: 20 × (1 MiB + 1), nothing more. */
    ck_assert_int_ge(held, 20 * (MIB - 64));
    ck_assert_int_le(held, 20 * MIB + 20);

    pthread_join(busy.t, NULL);
    ck_assert_int_eq(busy.status, 504);
    for (int i = 0; i < 20; i++) {
        pthread_join(post[i].t, NULL);
        /* refused by the scan (nested below a query), or past its deadline if the worker came
         * back late (a slow sanitizer build) */
        ck_assert_msg(post[i].json &&
                          ((post[i].status == 400 && !strcmp(post[i].code, "bad_json")) ||
                           post[i].status == 504),
                      "batch %d: %ld %s", i, post[i].status, post[i].code);
    }
    ck_assert_int_eq(http_wait_metric(p.port, "primed_request_memory_bytes", 0, 5000), 0);
    free(body);
    ck_assert_int_eq(primed_stop(&p, SIGTERM, 20000), 0);
}
END_TEST

START_TEST(full_request_budget_answers_503_at_once)
{
    struct primed_proc p;
    const char *args[] = {"--workers",
                          "1",
                          "--request-timeout-ms",
                          "6000",
                          "--max-body-bytes",
                          "1MiB",
                          "--request-memory-budget",
                          "3MiB",
                          "--request-memory-per-client", /* one client plays several here */
                          "3MiB",
                          "--refuse-hopeless",
                          "false",
                          NULL};
    ck_assert_int_eq(primed_start(&p, args), 0);
    char *body = bomb_body(MIB - 64);
    struct poster busy, post[6];
    start_poster(&busy, p.port, BUSY_PATH, NULL, NULL, 1);
    ck_assert_int_eq(http_wait_metric(p.port, "primed_workers_busy", 1, 5000), 1);
    /* Three bodies fit 3 MiB and wait for the worker; the others are refused as their bytes
     * arrive (what is charged is what arrived, never what is declared), while the worker is
     * still busy. */
    for (int i = 0; i < 3; i++)
        start_poster(&post[i], p.port, "/v1/batch", body, json_expect_hdr, 1);
    ck_assert_int_eq(http_wait_metric(p.port, "primed_queue_depth", 3, 5000), 3);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 3; i < 6; i++)
        start_poster(&post[i], p.port, "/v1/batch", body, json_expect_hdr, 1);
    /* Without a Content-Length the body is charged as its buffer grows: refused at the first
     * growth, the rest read and dropped, and the 503 sent when it ends. */
    struct poster chunked;
    start_poster(&chunked, p.port, "/v1/batch", body, json_chunked_hdr, 1);
    pthread_join(chunked.t, NULL);
    ck_assert_msg(chunked.status == 503 && chunked.json && chunked.retry, "chunked: %ld %s",
                  chunked.status, chunked.code);
    ck_assert_str_eq(chunked.code, "overloaded");
    for (int i = 3; i < 6; i++) {
        pthread_join(post[i].t, NULL);
        ck_assert_msg(post[i].status == 503 && post[i].json && post[i].retry,
                      "over budget %d: %ld %s", i, post[i].status, post[i].code);
        ck_assert_str_eq(post[i].code, "overloaded");
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(waited < 2.0, "503s took %.2f s (the worker is busy for 6 s)", waited);
    ck_assert_int_eq(http_metric(p.port, "primed_request_memory_budget_bytes"), 3 * MIB);
    ck_assert_int_eq(http_metric(p.port, "primed_request_memory_rejections_total"), 4);
    ck_assert_int_ge(http_metric(p.port, "primed_request_memory_bytes"), 3 * (MIB - 64));

    pthread_join(busy.t, NULL);
    for (int i = 0; i < 3; i++) {
        pthread_join(post[i].t, NULL);
        ck_assert_msg(post[i].status == 400 || post[i].status == 504, "queued %d: %ld", i,
                      post[i].status);
    }
    ck_assert_int_eq(http_wait_metric(p.port, "primed_request_memory_bytes", 0, 5000), 0);
    free(body);
    ck_assert_int_eq(primed_stop(&p, SIGTERM, 20000), 0);
}
END_TEST

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

START_TEST(healthz_stays_prompt_while_8_clients_post_1mib_batches)
{
    struct primed_proc p;
    const char *args[] = {"--workers", "2", NULL};
    ck_assert_int_eq(primed_start(&p, args), 0);
    char *bomb = bomb_body(MIB - 64), *real = real_body(MIB - 64);
    struct poster post[8];
    for (int i = 0; i < 8; i++)
        start_poster(&post[i], p.port, "/v1/batch", i % 2 ? real : bomb, json_hdr, 6);
    enum { NPROBE = 400 };
    static double lat[NPROBE];
    int n = 0;
    bool running = true;
    while (running && n < NPROBE) {
        struct http_result r;
        ck_assert_int_eq(http_get(p.port, "/healthz", &r), 0);
        ck_assert_int_eq(r.status, 200);
        lat[n++] = r.seconds;
        http_result_free(&r);
        usleep(10000);
        running = false;
        for (int i = 0; i < 8; i++)
            running |= !atomic_load_explicit(&post[i].done, memory_order_acquire);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(post[i].t, NULL);
    qsort(lat, (size_t)n, sizeof lat[0], cmp_double);
    fprintf(stderr,
            "/healthz under 8 clients posting 1 MiB batches: %d probes, p50 %.1f ms, "
            "max %.1f ms\n",
            n, lat[n / 2] * 1e3, lat[n - 1] * 1e3);
    /* A generous bound (the target, < 100 ms, is measured by scripts/bench-batch.sh): before,
     * the p50 was 434 ms and the max 2 s. */
    ck_assert_msg(lat[n - 1] < 1.0, "/healthz max %.3f s", lat[n - 1]);
    for (int i = 0; i < 8; i++)
        ck_assert_msg(post[i].status == (i % 2 ? 200 : 400), "client %d: %ld %s", i, post[i].status,
                      post[i].code);
    free(bomb);
    free(real);
    ck_assert_int_eq(primed_stop(&p, SIGTERM, 20000), 0);
}
END_TEST

static Suite *batch_suite(void)
{
    Suite *s = suite_create("e2e_batch");
    TCase *tc = tcase_create("batch");
    tcase_set_timeout(tc, 120); /* each test waits out an 8 s or 6 s request deadline */
    tcase_add_test(tc, queued_batches_hold_only_their_bytes);
    tcase_add_test(tc, full_request_budget_answers_503_at_once);
    tcase_add_test(tc, healthz_stays_prompt_while_8_clients_post_1mib_batches);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(batch_suite)
