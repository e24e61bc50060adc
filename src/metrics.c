/* metrics.c — the process-wide metric registry and its Prometheus text exposition (0.0.4).
 *
 * Request accounting is fixed-size arrays of relaxed atomic counters indexed by enum
 * (handler × method × status class), so the hot path takes no lock and allocates nothing, and
 * the label space is bounded by construction. Everything that is a current value (sieve, tcmalloc,
 * /proc, the worker pool) is pulled at render time. This module must never block a request
 * thread on a scrape, nor emit a label value that did not come from one of its own tables.
 */
#include "primed/metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "primed/buf.h"
#include "primed/errors.h"
#include "primed/pi.h"
#include "primed/procstat.h"
#include "primed/sieve.h"

#if PRIMED_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif

#ifndef PRIMED_VERSION
#define PRIMED_VERSION "unknown"
#endif
#ifndef PRIMED_REVISION
#define PRIMED_REVISION "unknown"
#endif

/* ---- label tables ------------------------------------------------------------------------ */

/* The handler label set (metrics_init): written before any thread starts, read-only afterwards. */
static size_t nhandlers;
static const char *(*handler_name)(size_t i);

enum { M_GET, M_POST, M_HEAD, M_OTHER, M__COUNT };
static const char *const method_names[M__COUNT] = {"GET", "POST", "HEAD", "OTHER"};

/* Every status primed can log: 200, 499 and the distinct statuses of errors.h's table, derived once
 * (codes_once); anything else is "other". Written only by codes_build, read-only afterwards. */
#define MAX_CODES 32
static pthread_once_t codes_once = PTHREAD_ONCE_INIT;
static int codes[MAX_CODES];
static unsigned ncodes;
#define NCODES MAX_CODES
#define CODE_OTHER NCODES /* index of the "other" column */

static void codes_build(void)
{
    codes[ncodes++] = 200;
    codes[ncodes++] = 499; /* the client left before its answer (logged as nginx does) */
    for (int e = 0; e < PERR__COUNT; e++) {
        int st = errors_status((enum primed_err)e);
        unsigned k = 0;
        while (k < ncodes && codes[k] != st)
            k++;
        if (k == ncodes && ncodes < MAX_CODES) codes[ncodes++] = st;
    }
}

/* Latency buckets (seconds): 100 µs … 30 s, roughly 1-2.5-5 per decade. The +Inf bucket is the
 * extra last slot of the per-handler bucket array. */
static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

/* ---- hot-path state ----------------------------------------------------------------------
 * Written by every request thread with relaxed fetch_add; read by the renderer with relaxed
 * loads. Relaxed is enough: each counter is independent, monotone, and a scrape is a snapshot
 * that may be a few increments behind. Histogram buckets are stored non-cumulative (one
 * increment per observation) and made cumulative at render time; _count is the sum of the
 * buckets read, so +Inf == _count in every exposition.
 * Rejected alternative: per-thread shards would avoid cache-line sharing between the 2…N
 * workers, at the cost of a thread registry; at primed's request rates (≤ ~10^5/s) one atomic
 * add per counter is not measurable (see scripts/bench-metrics-overhead.sh). */
#define NLABELS METRICS_MAX_HANDLERS
static atomic_uint_fast64_t req_total[NLABELS][M__COUNT][NCODES + 1];
static atomic_uint_fast64_t dur_bucket[NLABELS][NBUCKETS + 1];
static atomic_uint_fast64_t dur_sum_ns[NLABELS];
static atomic_uint_fast64_t resp_bytes[NLABELS];
static atomic_int_fast64_t connections;

static int method_index(const char *m)
{
    if (!m) return M_OTHER;
    if (strcmp(m, "GET") == 0) return M_GET;
    if (strcmp(m, "POST") == 0) return M_POST;
    if (strcmp(m, "HEAD") == 0) return M_HEAD;
    return M_OTHER;
}

static unsigned code_index(int status)
{
    pthread_once(&codes_once, codes_build);
    for (unsigned i = 0; i < ncodes; i++)
        if (codes[i] == status) return i;
    return CODE_OTHER;
}

void metrics_observe_request(size_t h, const char *method, int status, double seconds,
                             uint64_t response_bytes)
{
    if (h >= nhandlers) h = nhandlers ? nhandlers - 1 : 0; /* the catch-all, "other" */
    atomic_fetch_add_explicit(&req_total[h][method_index(method)][code_index(status)], 1,
                              memory_order_relaxed);
    if (!(seconds >= 0)) seconds = 0; /* also catches NaN */
    unsigned b = 0;
    while (b < NBUCKETS && seconds > buckets[b])
        b++;
    atomic_fetch_add_explicit(&dur_bucket[h][b], 1, memory_order_relaxed);
    /* Nanoseconds in a u64 overflow after 584 years of summed latency. */
    double ns = seconds * 1e9;
    atomic_fetch_add_explicit(&dur_sum_ns[h], ns < 1.8e19 ? (uint64_t)ns : 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&resp_bytes[h], response_bytes, memory_order_relaxed);
}

void metrics_connections_add(int delta)
{
    atomic_fetch_add_explicit(&connections, delta, memory_order_relaxed);
}

int64_t metrics_connections(void)
{
    return atomic_load_explicit(&connections, memory_order_relaxed);
}

/* ---- collectors (cold path: a mutex) ------------------------------------------------------ */

#define MAX_COLLECTORS 16
struct collector {
    metrics_collect_fn fn;
    void *arg;
};
/* Guarded by coll_mu. Render holds it while calling collectors, so once
 * metrics_unregister_collector returns no call into that collector is running. */
static pthread_mutex_t coll_mu = PTHREAD_MUTEX_INITIALIZER;
static struct collector collectors[MAX_COLLECTORS];
static int ncollectors;

int metrics_register_collector(metrics_collect_fn fn, void *arg)
{
    if (!fn) return -EINVAL;
    int rc = -ENOSPC;
    pthread_mutex_lock(&coll_mu);
    if (ncollectors < MAX_COLLECTORS) {
        collectors[ncollectors++] = (struct collector){fn, arg};
        rc = 0;
    }
    pthread_mutex_unlock(&coll_mu);
    return rc;
}

void metrics_unregister_collector(metrics_collect_fn fn, void *arg)
{
    pthread_mutex_lock(&coll_mu);
    for (int i = 0; i < ncollectors; i++) {
        if (collectors[i].fn == fn && collectors[i].arg == arg) {
            memmove(&collectors[i], &collectors[i + 1],
                    (size_t)(ncollectors - i - 1) * sizeof collectors[0]);
            ncollectors--;
            break;
        }
    }
    pthread_mutex_unlock(&coll_mu);
}

int metrics_init(size_t n, const char *(*name)(size_t i))
{
    if (n == 0 || n > METRICS_MAX_HANDLERS || !name) return -EINVAL;
    nhandlers = n;
    handler_name = name;
    /* Everything is statically initialised; warm the /proc reader (it caches boot time) so the
     * first scrape does not pay for scanning /proc/stat. */
    struct procstat ps;
    (void)procstat_read(&ps);
    return 0;
}

void metrics_fini(void)
{
    pthread_mutex_lock(&coll_mu);
    ncollectors = 0;
    pthread_mutex_unlock(&coll_mu);
}

/* ---- the writer --------------------------------------------------------------------------- */

/* The exposition is built in a buf (buf.h). Bounded: an exposition larger than WRITER_MAX (far
 * above the ~30 KiB primed produces) fails with -ENOMEM rather than growing further. */
#define WRITER_INIT 16384
#define WRITER_MAX (8u << 20)
struct metrics_writer {
    struct buf b; /* its contents are handed to the caller of metrics_render */
};

static void w_puts(struct metrics_writer *w, const char *s, size_t n)
{
    buf_append(&w->b, s, n);
}

#define w_printf(w, ...) buf_printf(&(w)->b, __VA_ARGS__)

/* A sample value as the exposition format wants it: integers without exponent or fraction,
 * other finite values with the fewest digits that read back exactly, and +Inf/-Inf/NaN. */
static void format_value(char *out, size_t outlen, double v)
{
    if (isnan(v)) {
        snprintf(out, outlen, "NaN");
    } else if (isinf(v)) {
        snprintf(out, outlen, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(out, outlen, "%.0f", v);
    } else {
        snprintf(out, outlen, "%.15g", v);
        if (strtod(out, NULL) != v) snprintf(out, outlen, "%.17g", v);
    }
}

void metrics_write_family(struct metrics_writer *w, const char *name, const char *type,
                          const char *help)
{
    /* HELP text escapes backslash and newline; nothing else. */
    w_printf(w, "# HELP %s ", name);
    for (const char *p = help ? help : ""; *p; p++) {
        if (*p == '\\')
            w_puts(w, "\\\\", 2);
        else if (*p == '\n')
            w_puts(w, "\\n", 2);
        else
            w_puts(w, p, 1);
    }
    w_printf(w, "\n# TYPE %s %s\n", name, type);
}

void metrics_write_sample(struct metrics_writer *w, const char *name, const char *labels,
                          double value)
{
    char v[40];
    format_value(v, sizeof v, value);
    if (labels && *labels)
        w_printf(w, "%s{%s} %s\n", name, labels, v);
    else
        w_printf(w, "%s %s\n", name, v);
}

void metrics_write_sample_u64(struct metrics_writer *w, const char *name, const char *labels,
                              uint64_t value)
{
    if (labels && *labels)
        w_printf(w, "%s{%s} %llu\n", name, labels, (unsigned long long)value);
    else
        w_printf(w, "%s %llu\n", name, (unsigned long long)value);
}

void metrics_write_one(struct metrics_writer *w, const char *name, const char *type,
                       const char *help, uint64_t value)
{
    metrics_write_family(w, name, type, help);
    metrics_write_sample_u64(w, name, NULL, value);
}

void metrics_write_one_f(struct metrics_writer *w, const char *name, const char *type,
                         const char *help, double value)
{
    metrics_write_family(w, name, type, help);
    metrics_write_sample(w, name, NULL, value);
}

/* A label value escaped for the exposition format (\\, \", \n) into out[outlen]; truncates. */
static void escape_label_value(char *out, size_t outlen, const char *in)
{
    size_t o = 0;
    for (const char *p = in; *p && o + 3 < outlen; p++) {
        if (*p == '\\' || *p == '"') {
            out[o++] = '\\';
            out[o++] = *p;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* ---- built-in families -------------------------------------------------------------------- */

static void collect_http(struct metrics_writer *w)
{
    char labels[128];
    metrics_write_family(w, "primed_http_requests_total", "counter",
                         "HTTP requests answered, by handler, method and status code.");
    pthread_once(&codes_once, codes_build);
    size_t nlabels = nhandlers;
    for (unsigned h = 0; h < nlabels; h++)
        for (unsigned m = 0; m < M__COUNT; m++)
            for (unsigned c = 0; c <= NCODES; c++) {
                if (c >= ncodes && c != CODE_OTHER) continue;
                uint64_t v = atomic_load_explicit(&req_total[h][m][c], memory_order_relaxed);
                if (!v) continue; /* only series that happened, usually ~20 */
                char code[8];
                if (c == CODE_OTHER)
                    snprintf(code, sizeof code, "other");
                else
                    snprintf(code, sizeof code, "%d", codes[c]);
                snprintf(labels, sizeof labels, "handler=\"%s\",method=\"%s\",code=\"%s\"",
                         handler_name(h), method_names[m], code);
                metrics_write_sample_u64(w, "primed_http_requests_total", labels, v);
            }

    /* Histograms and byte counters for every handler that has seen a request. */
    uint64_t counts[NLABELS];
    metrics_write_family(w, "primed_http_request_duration_seconds", "histogram",
                         "Time from request start to the last byte handed to the server.");
    for (unsigned h = 0; h < nlabels; h++) {
        uint64_t cum = 0;
        uint64_t b[NBUCKETS + 1];
        for (unsigned i = 0; i <= NBUCKETS; i++) {
            b[i] = atomic_load_explicit(&dur_bucket[h][i], memory_order_relaxed);
            cum += b[i];
        }
        counts[h] = cum;
        if (!cum) continue;
        cum = 0;
        for (unsigned i = 0; i < NBUCKETS; i++) {
            cum += b[i];
            char le[40];
            format_value(le, sizeof le, buckets[i]);
            snprintf(labels, sizeof labels, "handler=\"%s\",le=\"%s\"", handler_name(h), le);
            metrics_write_sample_u64(w, "primed_http_request_duration_seconds_bucket", labels, cum);
        }
        snprintf(labels, sizeof labels, "handler=\"%s\",le=\"+Inf\"", handler_name(h));
        metrics_write_sample_u64(w, "primed_http_request_duration_seconds_bucket", labels,
                                 counts[h]);
        snprintf(labels, sizeof labels, "handler=\"%s\"", handler_name(h));
        uint64_t ns = atomic_load_explicit(&dur_sum_ns[h], memory_order_relaxed);
        metrics_write_sample(w, "primed_http_request_duration_seconds_sum", labels,
                             (double)ns / 1e9);
        metrics_write_sample_u64(w, "primed_http_request_duration_seconds_count", labels,
                                 counts[h]);
    }

    metrics_write_family(w, "primed_http_response_bytes_total", "counter",
                         "Response body bytes sent, by handler.");
    for (unsigned h = 0; h < nlabels; h++) {
        if (!counts[h]) continue;
        snprintf(labels, sizeof labels, "handler=\"%s\"", handler_name(h));
        metrics_write_sample_u64(w, "primed_http_response_bytes_total", labels,
                                 atomic_load_explicit(&resp_bytes[h], memory_order_relaxed));
    }

    metrics_write_family(w, "primed_http_connections", "gauge", "Open HTTP connections.");
    int64_t conns = atomic_load_explicit(&connections, memory_order_relaxed);
    metrics_write_sample(w, "primed_http_connections", NULL, conns > 0 ? (double)conns : 0);
}

static void collect_sieve(struct metrics_writer *w)
{
    struct sieve_stats s;
    memset(&s, 0, sizeof s);
    sieve_stats_get(&s);
    metrics_write_one(w, "primed_sieve_numbers_sieved_total", "counter",
                      "Integers covered by all ranges the sieve has processed.", s.numbers_sieved);
    metrics_write_one(w, "primed_sieve_segments_total", "counter", "Sieve segments processed.",
                      s.segments);
    metrics_write_one(w, "primed_sieve_primes_emitted_total", "counter",
                      "Primes handed to listing callbacks.", s.primes_emitted);
    metrics_write_one(w, "primed_sieve_table_bytes", "gauge",
                      "Bytes held by the shared table of sieving primes.", s.table_bytes);
    struct pi_mem_stats pm;
    pi_mem_stats_get(&pm);
    metrics_write_one(w, "primed_pi_memory_bytes", "gauge",
                      "Bytes of the pi(x) budget held now by plans and running chunks.", pm.in_use);
    metrics_write_one(w, "primed_pi_memory_peak_bytes", "gauge",
                      "Most bytes of the pi(x) budget ever held at once.", pm.peak);
    metrics_write_one(w, "primed_pi_memory_limit_bytes", "gauge",
                      "Limit of the pi(x) budget; a pi(x) that would pass it answers 503.",
                      pm.limit);
}

#if PRIMED_TCMALLOC
static void collect_tcmalloc(struct metrics_writer *w)
{
    static const struct {
        const char *property, *name, *help;
    } props[] = {
        {"generic.current_allocated_bytes", "primed_tcmalloc_allocated_bytes",
         "Bytes in use by the application (tcmalloc generic.current_allocated_bytes)."},
        {"generic.heap_size", "primed_tcmalloc_heap_size_bytes",
         "Bytes tcmalloc has reserved from the system (generic.heap_size)."},
        {"tcmalloc.pageheap_free_bytes", "primed_tcmalloc_pageheap_free_bytes",
         "Free bytes in tcmalloc's page heap, still mapped (tcmalloc.pageheap_free_bytes)."},
        {"tcmalloc.pageheap_unmapped_bytes", "primed_tcmalloc_pageheap_unmapped_bytes",
         "Free bytes released to the OS (tcmalloc.pageheap_unmapped_bytes)."},
        {"tcmalloc.current_total_thread_cache_bytes", "primed_tcmalloc_thread_cache_bytes",
         "Bytes in all thread caches (tcmalloc.current_total_thread_cache_bytes)."},
    };
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++) {
        size_t v = 0;
        if (!MallocExtension_GetNumericProperty(props[i].property, &v)) continue;
        metrics_write_one(w, props[i].name, "gauge", props[i].help, v);
    }
}
#endif

static void collect_process(struct metrics_writer *w)
{
    struct procstat ps;
    if (procstat_read(&ps) != 0) return;
    /* Names, types and help texts of the official clients' process collector. */
    metrics_write_one_f(w, "process_cpu_seconds_total", "counter",
                        "Total user and system CPU time spent in seconds.", ps.cpu_seconds);
    metrics_write_one(w, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                      ps.resident_bytes);
    metrics_write_one(w, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                      ps.virtual_bytes);
    metrics_write_one(w, "process_open_fds", "gauge", "Number of open file descriptors.",
                      ps.open_fds);
    metrics_write_one(w, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
                      ps.max_fds);
    metrics_write_one_f(w, "process_start_time_seconds", "gauge",
                        "Start time of the process since unix epoch in seconds.",
                        ps.start_time_seconds);
    metrics_write_one(w, "process_threads", "gauge", "Number of OS threads in the process.",
                      ps.threads);
}

static void collect_build_info(struct metrics_writer *w)
{
    char ver[64], rev[64], labels[160];
    escape_label_value(ver, sizeof ver, PRIMED_VERSION);
    escape_label_value(rev, sizeof rev, PRIMED_REVISION);
    snprintf(labels, sizeof labels, "version=\"%s\",revision=\"%s\"", ver, rev);
    metrics_write_family(w, "primed_build_info", "gauge",
                         "Always 1; the labels say which build of primed is running.");
    metrics_write_sample_u64(w, "primed_build_info", labels, 1);
}

int metrics_render(char **out, size_t *len)
{
    struct metrics_writer w;
    buf_init(&w.b, WRITER_MAX);
    if (buf_reserve(&w.b, WRITER_INIT) != 0) return -ENOMEM;
    collect_http(&w);
    collect_sieve(&w);
#if PRIMED_TCMALLOC
    collect_tcmalloc(&w);
#endif
    collect_process(&w);
    collect_build_info(&w);
    pthread_mutex_lock(&coll_mu);
    for (int i = 0; i < ncollectors; i++)
        collectors[i].fn(collectors[i].arg, &w);
    pthread_mutex_unlock(&coll_mu);
    /* Past WRITER_MAX, out of memory or a bad format: all are "cannot render" (the contract
     * in metrics.h is -ENOMEM). */
    *out = buf_steal(&w.b, len); /* ownership passes to the caller */
    return *out != NULL ? 0 : -ENOMEM;
}
