/* test_trace.c — the execution trace recorder: nothing is kept outside a capture; a capture
 * names every thread's track and holds its spans, instants, counters and requests in the Chrome
 * Trace Event Format (parsed back with jansson and checked field by field); one capture at a
 * time; a full ring keeps the newest events and counts the rest; the buffer is charged to the
 * budget and refused when it does not fit; text longer than a slot survives, escaped. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "primed/reqmem.h"
#include "primed/trace.h"

/* A thread that names its track and emits numbered spans (chunk = sequence) until told to stop. */
struct emitter {
    const char *name;
    atomic_bool stop;
    atomic_uint_fast64_t sent; /* spans emitted while a capture was on */
    unsigned sleep_us;
};

static void *emitter_main(void *arg)
{
    struct emitter *e = arg;
    trace_thread_name(e->name);
    for (int64_t seq = 0; !atomic_load(&e->stop); seq++) {
        struct trace_ev ev = TRACE_EV_INIT;
        ev.name = "work";
        ev.route = "test";
        ev.rid = "rid-1";
        ev.chunk = seq;
        ev.t0 = trace_now_ns();
        ev.t1 = ev.t0 + 1000;
        if (trace_on()) atomic_fetch_add(&e->sent, 1);
        trace_span(&ev);
        if (e->sleep_us) usleep(e->sleep_us);
    }
    return NULL;
}

static uint64_t counter_read(void *arg)
{
    return atomic_fetch_add((atomic_uint_fast64_t *)arg, 1);
}

static json_t *capture_json(unsigned seconds)
{
    char *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(trace_capture(seconds, &out, &len), 0);
    ck_assert_uint_eq(strlen(out), len);
    json_error_t err;
    json_t *j = json_loadb(out, len, 0, &err);
    ck_assert_msg(j != NULL, "trace is not JSON: %s (line %d)", err.text, err.line);
    free(out);
    return j;
}

/* The tid whose thread_name metadata says name, or -1. */
static json_int_t tid_named(json_t *evs, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(evs, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "ph")), "M") == 0 &&
            strcmp(json_string_value(json_object_get(e, "name")), "thread_name") == 0 &&
            strcmp(json_string_value(json_object_get(json_object_get(e, "args"), "name")), name) ==
                0)
            return json_integer_value(json_object_get(e, "tid"));
    }
    return -1;
}

static double num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    ck_assert_msg(json_is_number(v), "field %s is not a number", k);
    return json_number_value(v);
}

/* Every event has ph, name, pid, tid; all but metadata a ts; X a dur ≥ 0; C a numeric value. */
static void check_schema(json_t *evs)
{
    size_t i;
    json_t *e;
    json_array_foreach(evs, i, e)
    {
        const char *ph = json_string_value(json_object_get(e, "ph"));
        ck_assert_ptr_nonnull(ph);
        ck_assert_ptr_nonnull(json_string_value(json_object_get(e, "name")));
        ck_assert(json_is_integer(json_object_get(e, "pid")));
        ck_assert(json_is_integer(json_object_get(e, "tid")));
        if (strcmp(ph, "M") == 0) continue;
        ck_assert(num(e, "ts") > 0);
        if (strcmp(ph, "X") == 0) ck_assert(num(e, "dur") >= 0);
        if (strcmp(ph, "C") == 0) num(json_object_get(e, "args"), "value");
        if (strchr("ben", ph[0])) ck_assert(json_is_integer(json_object_get(e, "id")));
    }
}

START_TEST(outside_a_capture_nothing_is_kept)
{
    ck_assert_int_eq(trace_init(1 << 20, NULL), 0);
    trace_thread_name("main-test");
    ck_assert(!trace_on());
    struct trace_ev ev = TRACE_EV_INIT;
    ev.name = "before";
    trace_span(&ev);
    trace_instant(&ev);
    json_t *j = capture_json(1);
    json_t *evs = json_object_get(j, "traceEvents");
    check_schema(evs);
    size_t i;
    json_t *e;
    json_array_foreach(evs, i, e)
    {
        ck_assert_str_ne(json_string_value(json_object_get(e, "name")), "before");
    }
    ck_assert_int_ge(tid_named(evs, "main-test"), 1);
    json_decref(j);
    trace_fini();
}
END_TEST

START_TEST(a_capture_holds_named_tracks_spans_counters_and_requests)
{
    ck_assert_int_eq(trace_init(1 << 20, NULL), 0);
    atomic_uint_fast64_t ticks = 0;
    ck_assert_int_eq(trace_counter_add("ticks", counter_read, &ticks), 0);
    struct emitter em = {.name = "emitter-a", .sleep_us = 2000};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, emitter_main, &em), 0);
    usleep(1000);
    char *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(trace_capture(1, &out, &len), 0);
    atomic_store(&em.stop, true);
    pthread_join(th, NULL);
    json_error_t err;
    json_t *j = json_loadb(out, len, 0, &err);
    free(out);
    ck_assert_ptr_nonnull(j);
    json_t *evs = json_object_get(j, "traceEvents");
    check_schema(evs);
    json_int_t tid = tid_named(evs, "emitter-a"), sampler = tid_named(evs, "primed-trace");
    ck_assert_int_ge(tid, 1);
    ck_assert_int_ge(sampler, 1);
    double t0 = num(json_object_get(j, "otherData"), "capture_start_us");
    double t1 = num(json_object_get(j, "otherData"), "capture_end_us");
    ck_assert(t1 - t0 >= 0.99e6);
    size_t spans = 0, counters = 0, i;
    json_t *e;
    json_array_foreach(evs, i, e)
    {
        const char *ph = json_string_value(json_object_get(e, "ph"));
        if (strcmp(ph, "X") == 0 && json_integer_value(json_object_get(e, "tid")) == tid) {
            ck_assert_str_eq(json_string_value(json_object_get(e, "name")), "work test");
            json_t *a = json_object_get(e, "args");
            ck_assert_str_eq(json_string_value(json_object_get(a, "request_id")), "rid-1");
            ck_assert_str_eq(json_string_value(json_object_get(a, "route")), "test");
            ck_assert(num(e, "ts") >= t0 && num(e, "ts") <= t1);
            ck_assert(num(e, "dur") > 0.99 && num(e, "dur") < 1.01); /* 1000 ns */
            spans++;
        }
        if (strcmp(ph, "C") == 0) {
            ck_assert_str_eq(json_string_value(json_object_get(e, "name")), "ticks");
            ck_assert_int_eq(json_integer_value(json_object_get(e, "tid")), sampler);
            counters++;
        }
    }
    /* ~1 s at one span per ≥ 2 ms, and a sample every 5 ms: both well above a few */
    ck_assert_uint_ge(spans, 50);
    ck_assert_uint_le(spans, atomic_load(&em.sent));
    ck_assert_uint_ge(counters, 20);
    ck_assert_uint_le(counters, 1000 / TRACE_SAMPLE_MS + 2);
    json_decref(j);
    trace_fini();
}
END_TEST

/* A capture on a helper thread; the test records a request meanwhile. */
struct bg {
    pthread_t th;
    int rc;
    char *out;
    size_t len;
    unsigned seconds;
};

static void *bg_main(void *arg)
{
    struct bg *b = arg;
    b->rc = trace_capture(b->seconds, &b->out, &b->len);
    return NULL;
}

static void wait_on(void)
{
    for (int i = 0; i < 500 && !trace_on(); i++)
        usleep(2000);
    ck_assert(trace_on());
}

START_TEST(a_request_becomes_ordered_phases_and_a_second_capture_is_refused)
{
    ck_assert_int_eq(trace_init(1 << 20, NULL), 0);
    struct bg b = {.seconds = 1};
    ck_assert_int_eq(pthread_create(&b.th, NULL, bg_main, &b), 0);
    wait_on();
    char *out2 = NULL;
    size_t len2 = 0;
    ck_assert_int_eq(trace_capture(1, &out2, &len2), -EBUSY);
    trace_thread_name("io-test");
    uint64_t now = trace_now_ns(), at[TRACE__PHASES];
    for (int k = 0; k < TRACE__PHASES; k++)
        at[k] = now + (uint64_t)k * 1000000u; /* a phase per ms */
    struct trace_ev rq = TRACE_EV_INIT;
    rq.name = "request";
    rq.route = "pi";
    rq.rid = "known-id";
    char params[300];
    memset(params, 'p', sizeof params - 1);
    params[0] = '"'; /* escaped in the JSON */
    params[sizeof params - 1] = '\0';
    rq.params = params;
    rq.status = 200;
    rq.bytes = 42;
    trace_request(&rq, at, 4242);
    pthread_join(b.th, NULL);
    ck_assert_int_eq(b.rc, 0);
    json_error_t err;
    json_t *j = json_loadb(b.out, b.len, 0, &err);
    free(b.out);
    ck_assert_ptr_nonnull(j);
    json_t *evs = json_object_get(j, "traceEvents");
    check_schema(evs);
    static const char *const want[] = {"request",   "received", "received", "queued",
                                       "queued",    "running",  "running",  "answering",
                                       "answering", "done",     "request"};
    static const char want_ph[] = "bbebebebene";
    size_t k = 0, i;
    json_t *e;
    double last = 0;
    json_array_foreach(evs, i, e)
    {
        if (!json_object_get(e, "id")) continue;
        ck_assert_uint_lt(k, sizeof want / sizeof want[0]);
        ck_assert_str_eq(json_string_value(json_object_get(e, "name")), want[k]);
        ck_assert_int_eq(json_string_value(json_object_get(e, "ph"))[0], want_ph[k]);
        ck_assert(num(e, "ts") >= last);
        last = num(e, "ts");
        if (k == 0) {
            json_t *a = json_object_get(e, "args");
            ck_assert_str_eq(json_string_value(json_object_get(a, "request_id")), "known-id");
            const char *p = json_string_value(json_object_get(a, "params"));
            ck_assert_ptr_nonnull(p);
            ck_assert_uint_gt(strlen(p), 200); /* past the first slot's text */
            ck_assert_int_eq(p[0], '"');
            ck_assert_int_eq(json_integer_value(json_object_get(a, "worker_tid")), 4242);
            ck_assert_int_eq(json_integer_value(json_object_get(a, "status")), 200);
        }
        k++;
    }
    ck_assert_uint_eq(k, sizeof want / sizeof want[0]);
    json_decref(j);
    trace_fini();
}
END_TEST

START_TEST(a_full_ring_keeps_the_newest_events_and_counts_the_rest)
{
    ck_assert_int_eq(trace_init(TRACE_MIN_BYTES, NULL), 0);
    struct emitter em = {.name = "flood"};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, emitter_main, &em), 0);
    usleep(20000); /* registered before the capture: a ring of its own */
    json_t *j = capture_json(1);
    atomic_store(&em.stop, true);
    pthread_join(th, NULL);
    json_t *evs = json_object_get(j, "traceEvents");
    check_schema(evs);
    json_int_t tid = tid_named(evs, "flood");
    ck_assert_int_ge(tid, 1);
    int64_t prev = -1, n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(evs, i, e)
    {
        if (json_integer_value(json_object_get(e, "tid")) != tid ||
            strcmp(json_string_value(json_object_get(e, "ph")), "X") != 0)
            continue;
        int64_t seq = json_integer_value(json_object_get(json_object_get(e, "args"), "chunk"));
        if (prev >= 0) ck_assert_int_eq(seq, prev + 1); /* contiguous: only the oldest went */
        prev = seq;
        n++;
    }
    uint64_t dropped = (uint64_t)json_integer_value(
        json_object_get(json_object_get(j, "otherData"), "dropped_events"));
    ck_assert_int_gt(n, 0);
    ck_assert_uint_gt(dropped, 0);
    /* every span sent during the capture was kept or counted as dropped (the sampler's are not
     * in this thread's ring) */
    ck_assert_uint_ge((uint64_t)n + dropped, 1000);
    json_decref(j);
    trace_fini();
}
END_TEST

START_TEST(the_buffer_is_charged_to_the_budget_and_refused_when_it_does_not_fit)
{
    struct reqmem m;
    reqmem_init(&m, 256 * 1024);
    ck_assert_int_eq(trace_init(128 * 1024, &m), 0);
    struct bg b = {.seconds = 1};
    ck_assert_int_eq(pthread_create(&b.th, NULL, bg_main, &b), 0);
    wait_on();
    ck_assert_uint_eq(atomic_load(&m.used), 128 * 1024);
    pthread_join(b.th, NULL);
    ck_assert_int_eq(b.rc, 0);
    free(b.out);
    ck_assert_uint_eq(atomic_load(&m.used), 0);
    ck_assert(reqmem_charge(&m, 200 * 1024)); /* now only 56 KiB are left */
    char *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(trace_capture(1, &out, &len), -EAGAIN);
    reqmem_release(&m, 200 * 1024);
    trace_fini();
    reqmem_fini(&m);
}
END_TEST

START_TEST(shutdown_ends_a_capture_early)
{
    ck_assert_int_eq(trace_init(1 << 20, NULL), 0);
    struct bg b = {.seconds = 30};
    uint64_t t0 = trace_now_ns();
    ck_assert_int_eq(pthread_create(&b.th, NULL, bg_main, &b), 0);
    wait_on();
    trace_shutdown();
    pthread_join(b.th, NULL);
    ck_assert_int_eq(b.rc, 0);
    ck_assert_uint_lt(trace_now_ns() - t0, 10ull * 1000000000u);
    free(b.out);
    trace_fini();
}
END_TEST

static Suite *trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *tc = tcase_create("trace");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, outside_a_capture_nothing_is_kept);
    tcase_add_test(tc, a_capture_holds_named_tracks_spans_counters_and_requests);
    tcase_add_test(tc, a_request_becomes_ordered_phases_and_a_second_capture_is_refused);
    tcase_add_test(tc, a_full_ring_keeps_the_newest_events_and_counts_the_rest);
    tcase_add_test(tc, the_buffer_is_charged_to_the_budget_and_refused_when_it_does_not_fit);
    tcase_add_test(tc, shutdown_ends_a_capture_early);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(trace_suite)
