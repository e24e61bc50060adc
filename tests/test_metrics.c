/* test_metrics.c — the Prometheus exposition of a known registry state, parsed line by line:
 * HELP/TYPE once per family and before its samples, histogram buckets cumulative with
 * +Inf == _count and each bucket equal to an independently computed count, bounded labels,
 * HELP escaping, collectors, and exact sums under concurrent observation.
 * (Check forks each test, so every test starts from an empty registry.) */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "primed/metrics.h"
#include "primed/router.h"

static char *render(void)
{
    char *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(metrics_render(&out, &len), 0);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(strlen(out), len);
    ck_assert(len > 0 && out[len - 1] == '\n');
    return out;
}

/* Value of the sample line that starts with exactly `series` followed by a space; NAN when
 * absent. series is e.g. `x_total{a="b"}` or `x`. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
    }
    return NAN;
}

static int count_lines_starting(const char *text, const char *prefix)
{
    int c = 0;
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, prefix, n) == 0) c++;
    return c;
}

/* Walk every line: comments are exactly "# HELP name text" / "# TYPE name type"; every sample's
 * family (name minus _bucket/_sum/_count for histograms) had HELP then TYPE before it; no family
 * is declared twice; samples of one family are contiguous. */
static void check_structure(const char *text)
{
    char declared[128][128];
    char types[128][16];
    int nfam = 0;
    char last_family[128] = "";
    char *copy = strdup(text);
    char *save = NULL;
    char pending_help[128] = "";
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# HELP ", 7) == 0) {
            ck_assert_msg(sscanf(line + 7, "%127s", pending_help) == 1, "bad HELP: %s", line);
            for (int i = 0; i < nfam; i++)
                ck_assert_msg(strcmp(declared[i], pending_help) != 0, "family twice: %s", line);
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[128], type[16];
            ck_assert_int_eq(sscanf(line + 7, "%127s %15s", name, type), 2);
            ck_assert_msg(strcmp(name, pending_help) == 0, "TYPE without HELP first: %s", line);
            ck_assert(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                      strcmp(type, "histogram") == 0);
            ck_assert_int_lt(nfam, 128);
            strcpy(declared[nfam], name);
            strcpy(types[nfam], type);
            nfam++;
            strcpy(last_family, name);
            continue;
        }
        ck_assert_msg(line[0] != '#', "unexpected comment: %s", line);
        /* A sample: name, optional {labels}, space, value. */
        char name[128];
        size_t nl = strcspn(line, "{ ");
        ck_assert(nl > 0 && nl < sizeof name);
        memcpy(name, line, nl);
        name[nl] = '\0';
        ck_assert_msg(strcmp(name, last_family) == 0 ||
                          (strncmp(name, last_family, strlen(last_family)) == 0 && nfam > 0 &&
                           strcmp(types[nfam - 1], "histogram") == 0 &&
                           (strcmp(name + strlen(last_family), "_bucket") == 0 ||
                            strcmp(name + strlen(last_family), "_sum") == 0 ||
                            strcmp(name + strlen(last_family), "_count") == 0)),
                      "sample %s outside its family (last declared %s)", name, last_family);
        const char *v = strrchr(line, ' ');
        ck_assert_ptr_nonnull(v);
        char *end;
        double d = strtod(v + 1, &end);
        ck_assert_msg(*end == '\0' && !isnan(d), "bad value in %s", line);
        /* naming rules: counters end in _total */
        if (strcmp(types[nfam - 1], "counter") == 0)
            ck_assert_msg(strlen(name) > 6 && strcmp(name + strlen(name) - 6, "_total") == 0,
                          "counter without _total: %s", name);
    }
    free(copy);
}

/* The metric label index of the route serving path on the main listener. */
static size_t label_of(const char *path)
{
    const struct route *r = NULL;
    router_match(false, "GET", path, &r);
    ck_assert_ptr_nonnull(r);
    return router_label_index(r);
}

START_TEST(exposition_declares_every_family_before_its_samples)
{
    ck_assert_int_eq(metrics_init(router_label_count(), router_label_name), 0);
    metrics_observe_request(label_of("/v1/count"), "GET", 200, 0.002, 120);
    metrics_observe_request(label_of("/v1/primes"), "POST", 400, 0.0001, 80);
    metrics_observe_request(label_of("/v1/nth"), "HEAD", 504, 31.0, 0);
    metrics_connections_add(3);
    metrics_connections_add(-1);
    char *t = render();
    check_structure(t);
    ck_assert_double_eq(sample(t, "primed_http_connections"), 2);
    ck_assert_double_eq(
        sample(t, "primed_http_requests_total{handler=\"count\",method=\"GET\",code=\"200\"}"), 1);
    ck_assert_double_eq(
        sample(t, "primed_http_requests_total{handler=\"primes\",method=\"POST\",code=\"400\"}"),
        1);
    ck_assert_double_eq(sample(t, "primed_http_response_bytes_total{handler=\"count\"}"), 120);
    /* the revision is baked in when metrics.o is compiled, so only its presence is checked */
    ck_assert_int_eq(
        count_lines_starting(t, "primed_build_info{version=\"" PRIMED_VERSION "\",revision=\""), 1);
    /* the process collector, sieve and HTTP families are always there */
    static const char *const always[] = {
        "# TYPE process_cpu_seconds_total counter",
        "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_virtual_memory_bytes gauge",
        "# TYPE process_open_fds gauge",
        "# TYPE process_max_fds gauge",
        "# TYPE process_start_time_seconds gauge",
        "# TYPE process_threads gauge",
        "# TYPE primed_sieve_numbers_sieved_total counter",
        "# TYPE primed_sieve_segments_total counter",
        "# TYPE primed_sieve_primes_emitted_total counter",
        "# TYPE primed_sieve_table_bytes gauge",
        "# TYPE primed_http_connections gauge",
        "# TYPE primed_http_request_duration_seconds histogram",
    };
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
        ck_assert_msg(count_lines_starting(t, always[i]) == 1, "missing: %s", always[i]);
#if PRIMED_TCMALLOC
    ck_assert(sample(t, "primed_tcmalloc_allocated_bytes") > 0);
    ck_assert(sample(t, "primed_tcmalloc_heap_size_bytes") > 0);
#else
    ck_assert_int_eq(count_lines_starting(t, "primed_tcmalloc_"), 0);
#endif
    free(t);
    metrics_fini();
}
END_TEST

START_TEST(histogram_buckets_are_cumulative_and_match_an_independent_count)
{
    static const double les[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30};
    /* durations spread over 10 µs … 100 s, including values exactly on bucket bounds */
    double obs[400];
    int n = 0;
    for (int i = 0; i < 300; i++)
        obs[n++] = 1e-5 * pow(10.0, 7.0 * i / 299.0);
    for (size_t i = 0; i < sizeof les / sizeof les[0]; i++)
        obs[n++] = les[i];
    double sum = 0;
    for (int i = 0; i < n; i++) {
        metrics_observe_request(label_of("/v1/isprime"), "GET", 200, obs[i], 1);
        sum += obs[i];
    }
    char *t = render();
    double prev = 0;
    char series[160];
    for (size_t b = 0; b < sizeof les / sizeof les[0]; b++) {
        /* the bound as the exposition prints it */
        char le[32];
        snprintf(le, sizeof le, "%g", les[b]);
        snprintf(series, sizeof series,
                 "primed_http_request_duration_seconds_bucket{handler=\"isprime\",le=\"%s\"}", le);
        double v = sample(t, series);
        ck_assert_msg(!isnan(v), "missing bucket %s", series);
        int expect = 0;
        for (int i = 0; i < n; i++)
            expect += obs[i] <= les[b];
        ck_assert_msg(v == expect, "bucket le=%s: %g, expected %d", le, v, expect);
        ck_assert(v >= prev);
        prev = v;
    }
    double inf =
        sample(t, "primed_http_request_duration_seconds_bucket{handler=\"isprime\",le=\"+Inf\"}");
    double cnt = sample(t, "primed_http_request_duration_seconds_count{handler=\"isprime\"}");
    ck_assert_double_eq(inf, n);
    ck_assert_double_eq(cnt, inf);
    ck_assert(inf >= prev);
    double s = sample(t, "primed_http_request_duration_seconds_sum{handler=\"isprime\"}");
    ck_assert_msg(fabs(s - sum) < 1e-6 * sum, "sum %g vs %g", s, sum);
    /* handlers without requests have no histogram series: bounded output */
    ck_assert_int_eq(
        count_lines_starting(t, "primed_http_request_duration_seconds_bucket{handler=\"count\""),
        0);
    free(t);
}
END_TEST

START_TEST(labels_stay_within_their_tables)
{
    metrics_observe_request(router_label_index(NULL), "PATCH", 418, 0.01, 5);
    metrics_observe_request(999, "GET", 200, 0.01, 5);
    metrics_observe_request(label_of("/"), NULL, 200, -1.0, 5); /* negative duration → 0 bucket */
    metrics_observe_request(label_of("/"), "GET", 200, NAN, 5); /* NaN → 0 bucket */
    char *t = render();
    check_structure(t);
    ck_assert_double_eq(
        sample(t, "primed_http_requests_total{handler=\"other\",method=\"OTHER\",code=\"other\"}"),
        1);
    ck_assert_double_eq(
        sample(t, "primed_http_requests_total{handler=\"other\",method=\"GET\",code=\"200\"}"), 1);
    ck_assert_double_eq(
        sample(t, "primed_http_requests_total{handler=\"root\",method=\"OTHER\",code=\"200\"}"), 1);
    ck_assert_double_eq(
        sample(t, "primed_http_request_duration_seconds_bucket{handler=\"root\",le=\"0.0001\"}"),
        2);
    ck_assert_int_eq(count_lines_starting(t, "primed_http_requests_total{"), 4);
    ck_assert_str_eq(router_label_name(label_of("/v1/nth")), "nth");
    ck_assert_str_eq(router_label_name((size_t)-1), "other");
    free(t);
}
END_TEST

static void weird_collector(void *arg, struct metrics_writer *w)
{
    int *calls = arg;
    (*calls)++;
    metrics_write_family(w, "primed_test_value", "gauge", "back\\slash and\nnewline");
    metrics_write_sample(w, "primed_test_value", "kind=\"a\\\"b\"", 0.1);
    metrics_write_sample(w, "primed_test_value", "kind=\"inf\"", INFINITY);
    metrics_write_sample(w, "primed_test_value", "kind=\"neg\"", -2.5e-7);
    metrics_write_sample_u64(w, "primed_test_value", "kind=\"max\"", UINT64_MAX);
}

START_TEST(collectors_are_called_per_render_and_help_is_escaped)
{
    int calls = 0;
    ck_assert_int_eq(metrics_register_collector(weird_collector, &calls), 0);
    char *t = render();
    ck_assert_int_eq(calls, 1);
    ck_assert_int_eq(
        count_lines_starting(t, "# HELP primed_test_value back\\\\slash and\\nnewline\n"), 1);
    ck_assert_int_eq(count_lines_starting(t, "primed_test_value{kind=\"a\\\"b\"} 0.1\n"), 1);
    ck_assert_int_eq(count_lines_starting(t, "primed_test_value{kind=\"inf\"} +Inf\n"), 1);
    ck_assert_double_eq(sample(t, "primed_test_value{kind=\"neg\"}"), -2.5e-7);
    ck_assert_int_eq(
        count_lines_starting(t, "primed_test_value{kind=\"max\"} 18446744073709551615\n"), 1);
    free(t);
    metrics_unregister_collector(weird_collector, &calls);
    t = render();
    ck_assert_int_eq(calls, 1);
    ck_assert_int_eq(count_lines_starting(t, "# TYPE primed_test_value"), 0);
    free(t);
}
END_TEST

static void nop_collector(void *arg, struct metrics_writer *w)
{
    (void)arg;
    (void)w;
}

START_TEST(at_most_sixteen_collectors)
{
    static int args[17];
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(metrics_register_collector(nop_collector, &args[i]), 0);
    ck_assert_int_lt(metrics_register_collector(nop_collector, &args[16]), 0);
    metrics_unregister_collector(nop_collector, &args[3]);
    ck_assert_int_eq(metrics_register_collector(nop_collector, &args[16]), 0);
}
END_TEST

#define THREADS 4
#define PER_THREAD 50000
static void *observer(void *arg)
{
    int id = (int)(intptr_t)arg;
    static const int statuses[] = {200, 404, 503};
    for (int i = 0; i < PER_THREAD; i++)
        metrics_observe_request(label_of("/v1/count"), (i & 1) ? "GET" : "POST", statuses[i % 3],
                                (i % 7) * 0.001, (uint64_t)(id + 1));
    return NULL;
}

START_TEST(concurrent_observations_sum_exactly)
{
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, observer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    char *t = render();
    double total = 0;
    static const char *const methods[] = {"GET", "POST"};
    static const char *const codes[] = {"200", "404", "503"};
    char series[160];
    for (int m = 0; m < 2; m++)
        for (int c = 0; c < 3; c++) {
            snprintf(series, sizeof series,
                     "primed_http_requests_total{handler=\"count\",method=\"%s\",code=\"%s\"}",
                     methods[m], codes[c]);
            double v = sample(t, series);
            ck_assert_msg(!isnan(v), "missing %s", series);
            total += v;
        }
    ck_assert_double_eq(total, (double)THREADS * PER_THREAD);
    ck_assert_double_eq(sample(t, "primed_http_request_duration_seconds_count{handler=\"count\"}"),
                        (double)THREADS * PER_THREAD);
    /* bytes: thread i adds i+1 per request */
    ck_assert_double_eq(sample(t, "primed_http_response_bytes_total{handler=\"count\"}"),
                        (double)PER_THREAD * (1 + 2 + 3 + 4));
    free(t);
}
END_TEST

START_TEST(promtool_accepts_a_render_with_every_kind_of_series)
{
    /* An oracle we did not write: Prometheus' own linter (scripts/install-deps.sh installs it). */
    int calls = 0;
    ck_assert_int_eq(metrics_register_collector(weird_collector, &calls), 0);
    for (size_t h = 0; h < router_label_count(); h++)
        metrics_observe_request(h, h % 2 ? "GET" : "PUT", 200 + (int)h, (double)h * 0.37,
                                (uint64_t)h);
    metrics_connections_add(1);
    char *t = render();
    char path[] = "/tmp/primed-metrics-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_int_eq(fputs(t, f) >= 0, 1);
    fclose(f);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
    int rc = system(cmd);
    unlink(path);
    free(t);
    ck_assert_msg(rc == 0, "promtool check metrics failed (%d)", rc);
}
END_TEST

static const char *const own_labels[] = {"alpha", "beta", "rest"};
static const char *own_label(size_t i)
{
    return own_labels[i < 3 ? i : 2];
}

START_TEST(handler_labels_are_the_set_the_caller_hands_in)
{
    ck_assert_int_eq(metrics_init(0, own_label), -EINVAL);
    ck_assert_int_eq(metrics_init(METRICS_MAX_HANDLERS + 1, own_label), -EINVAL);
    ck_assert_int_eq(metrics_init(3, own_label), 0);
    metrics_observe_request(1, "GET", 200, 0.01, 5);
    metrics_observe_request(7, "GET", 200, 0.01, 5); /* out of range: the last, catch-all */
    char *t = render();
    check_structure(t);
    ck_assert_double_eq(
        sample(t, "primed_http_requests_total{handler=\"beta\",method=\"GET\",code=\"200\"}"), 1);
    ck_assert_double_eq(
        sample(t, "primed_http_requests_total{handler=\"rest\",method=\"GET\",code=\"200\"}"), 1);
    ck_assert_int_eq(count_lines_starting(t, "primed_http_requests_total{"), 2);
    free(t);
}
END_TEST

/* Every test starts with the route table's label set, as main.c sets it (Check forks each test:
 * this runs in the test's own process). */
static void init_registry(void)
{
    ck_assert_int_eq(metrics_init(router_label_count(), router_label_name), 0);
}

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("exposition");
    tcase_add_checked_fixture(tc, init_registry, NULL);
    tcase_add_test(tc, exposition_declares_every_family_before_its_samples);
    tcase_add_test(tc, histogram_buckets_are_cumulative_and_match_an_independent_count);
    tcase_add_test(tc, labels_stay_within_their_tables);
    tcase_add_test(tc, collectors_are_called_per_render_and_help_is_escaped);
    tcase_add_test(tc, at_most_sixteen_collectors);
    tcase_add_test(tc, concurrent_observations_sum_exactly);
    tcase_add_test(tc, promtool_accepts_a_render_with_every_kind_of_series);
    tcase_add_test(tc, handler_labels_are_the_set_the_caller_hands_in);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(metrics_suite)
