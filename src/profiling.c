/* profiling.c — pprof endpoints of the debug listener: tcmalloc's sampled heap, gperftools CPU
 * profiles, and the symbol service both pprof clients (google-pprof and `go tool pprof`) use to
 * name addresses without being given the binary.
 *
 * Everything here is cold path. It must never run two CPU profiles at once, never hold a
 * profile longer than cfg->max_profile_seconds, and in builds without tcmalloc (the sanitizer
 * builds) it answers 501 for every endpoint instead of touching gperftools.
 */
#include "primed/profiling.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pprof_threads.h"
#include "primed/buf.h"
#include "primed/errors.h"
#include "primed/inflight.h"
#include "primed/jsonw.h"
#include "primed/log.h"
#include "primed/trace.h"
#include "symbolize.h"

#if PRIMED_TCMALLOC
#include <fcntl.h>
#include <gperftools/malloc_extension_c.h>
#include <gperftools/profiler.h>
#include <sys/stat.h>

#include "heap_sample.h"
#endif

#define SAMPLE_ENV "TCMALLOC_SAMPLE_PARAMETER"

/* Settings copied from the config by profiling_early_init (main thread, before any other
 * thread exists); read-only afterwards. */
static unsigned max_profile_seconds = 60;

int profiling_early_init(const struct primed_config *cfg, int argc, char *argv[])
{
    (void)argc;
    /* The re-exec below runs /proc/self/exe, which names the process "exe": name the main
     * thread after the service, for ps, top -H and thread dumps. */
    pthread_setname_np(pthread_self(), "primed");
    max_profile_seconds = cfg->max_profile_seconds ? cfg->max_profile_seconds : 1;
#if PRIMED_TCMALLOC
    /* tcmalloc reads TCMALLOC_SAMPLE_PARAMETER once, while it initialises (before main), so the
     * only way to turn sampling on from a config setting is to set it and start over. The
     * variable being present is also what stops the second image from exec'ing again. */
    if (!cfg->heap_sampling || getenv(SAMPLE_ENV) != NULL) return 0;
    char val[32];
    snprintf(val, sizeof val, "%" PRIu64, cfg->heap_sample_bytes);
    if (setenv(SAMPLE_ENV, val, 1) != 0) return -errno;
    execv("/proc/self/exe", argv);
    int e = errno; /* exec only returns on failure: go on without sampling */
    unsetenv(SAMPLE_ENV);
    return -e;
#else
    (void)cfg;
    (void)argv;
    return 0;
#endif
}

/* ?seconds=N of a profile or trace into *secs (left alone when absent): false when it is not an
 * integer in 1 … max_profile_seconds. */
static bool parse_seconds(const struct http_request *req, unsigned long *secs)
{
    const char *s = req->get_arg ? req->get_arg(req, "seconds") : NULL;
    if (s) {
        char *e;
        errno = 0;
        *secs = strtoul(s, &e, 10);
        if (errno || *e || e == s || s[0] == '-') *secs = 0;
    }
    return *secs >= 1 && *secs <= max_profile_seconds;
}

/* /debug/pprof/trace?seconds=N (default 1, as Go's): blocks this debug connection's thread for
 * the capture, as a CPU profile does; every build (the trace needs no tcmalloc). */
static int serve_trace(const struct http_request *req, struct http_response *resp)
{
    unsigned long secs = 1;
    if (!parse_seconds(req, &secs))
        return errors_render(resp, PERR_BAD_PARAM, "seconds", NULL,
                             "seconds must be an integer in 1 … %u", max_profile_seconds);
    char *out = NULL;
    size_t len = 0;
    int rc = trace_capture((unsigned)secs, &out, &len);
    if (rc == -EBUSY)
        return errors_render(resp, PERR_CONFLICT, NULL, NULL, "a trace capture is already running");
    if (rc == -EAGAIN)
        return errors_render(resp, PERR_OVERLOADED, NULL, NULL,
                             "trace_buffer_bytes does not fit the request memory budget now");
    if (rc != 0) return errors_render(resp, PERR_INTERNAL, NULL, NULL, "trace capture failed");
    http_response_body_owned(resp, 200, HTTP_JSON, out, len);
    http_response_header(resp, "Content-Disposition", "attachment; filename=\"trace.json\"");
    return 0;
}

#if PRIMED_TCMALLOC

/* POST body "0xaddr+0xaddr+…" (also accepts whitespace/commas) → "0xaddr\tname\n" lines for
 * the addresses we can name. pprof sends each distinct PC of a profile once (a few thousand);
 * SYMBOL_MAX_ADDRS bounds the answer whatever the body holds. */
#define SYMBOL_MAX_ADDRS 65536
/* Bounds the answer's bytes too: 65536 lines of a long C++ name stay far below it. */
#define SYMBOL_MAX_BYTES (64u << 20)
static int serve_symbol_post(const struct http_request *req, struct http_response *resp)
{
    struct buf out;
    buf_init(&out, SYMBOL_MAX_BYTES);
    symbolize_lock();
    const char *p = req->body ? req->body : "", *end = p + (req->body ? req->body_len : 0);
    unsigned naddrs = 0;
    while (p < end && naddrs < SYMBOL_MAX_ADDRS) {
        while (p < end &&
               (*p == '+' || *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == ','))
            p++;
        if (p >= end) break;
        char tok[24];
        size_t tl = 0;
        while (p < end &&
               !(*p == '+' || *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == ',')) {
            if (tl + 1 < sizeof tok) tok[tl] = *p;
            tl++;
            p++;
        }
        if (tl >= sizeof tok) continue; /* not an address */
        tok[tl] = '\0';
        char *e;
        errno = 0;
        unsigned long long a = strtoull(tok, &e, 16); /* accepts an optional 0x */
        if (errno || *e || e == tok || tok[0] == '-') continue;
        naddrs++;
        const char *name = symbolize_addr(a, NULL);
        if (!name) continue;
        if (buf_printf(&out, "0x%llx\t%s\n", a, name) != 0) break;
    }
    symbolize_unlock();
    size_t len;
    char *body = buf_steal(&out, &len);
    if (!body) return errors_render(resp, PERR_INTERNAL, NULL, NULL, NULL);
    http_response_body_owned(resp, 200, HTTP_TEXT, body, len);
    return 0;
}

static int serve_symbol(const struct http_request *req, struct http_response *resp)
{
    if (strcmp(req->method, "POST") == 0) return serve_symbol_post(req, resp);
    /* GET: pprof only checks that symbols exist ("num_symbols: 0" means stripped). */
    symbolize_lock(); /* loads the table */
    symbolize_unlock();
    static const char body[] = "num_symbols: 1\n";
    http_response_static(resp, 200, HTTP_TEXT, body, sizeof body - 1);
    return 0;
}

/* ---- heap, stats, cmdline ------------------------------------------------------------------ */

static int serve_heap(struct http_response *resp)
{
    char *buf = NULL;
    size_t len = 0;
    if (heap_sample_get(&buf, &len) != 0)
        return errors_render(resp, PERR_INTERNAL, NULL, NULL, "heap sample: out of memory");
    http_response_body_owned(resp, 200, HTTP_TEXT, buf, len);
    return 0;
}

static int serve_stats(struct http_response *resp)
{
    /* MallocExtension_GetStats truncates to the buffer; 64 KiB holds the whole report
     * (size-class table included). */
    size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    if (!buf) return errors_render(resp, PERR_INTERNAL, NULL, NULL, NULL);
    buf[0] = '\0';
    MallocExtension_GetStats(buf, (int)cap);
    http_response_body_owned(resp, 200, HTTP_TEXT, buf, strnlen(buf, cap));
    return 0;
}

static int serve_cmdline(struct http_response *resp)
{
    /* argv NUL-separated, as Go's net/http/pprof serves it: /proc/self/cmdline without its
     * final NUL. Bounded by the kernel's argument limit; we read at most 64 KiB. */
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    if (!buf) return errors_render(resp, PERR_INTERNAL, NULL, NULL, NULL);
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n;
        while (len < cap && ((n = read(fd, buf + len, cap - len)) > 0 || (n < 0 && errno == EINTR)))
            if (n > 0) len += (size_t)n;
        close(fd);
    }
    if (len > 0 && buf[len - 1] == '\0') len--;
    http_response_body_owned(resp, 200, HTTP_TEXT, buf, len);
    return 0;
}

/* ---- CPU profile ---------------------------------------------------------------------------
 * One at a time (cpu_busy). The requesting thread sleeps on cpu_cv for the duration so that
 * profiling_shutdown can cut it short. The profiler samples with SIGPROF from setitimer
 * (ITIMER_PROF, 100 Hz by default), which the kernel delivers to the thread that was running,
 * so worker threads are sampled too. */
static atomic_bool cpu_busy; /* set by the request that owns the profiler, cleared by it */
static pthread_mutex_t cpu_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cpu_cv = PTHREAD_COND_INITIALIZER;
static bool cpu_stop; /* guarded by cpu_mu: set once by profiling_shutdown, never cleared, so a
                       * profile asked for during the drain ends at once */

static int read_file(const char *path, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    size_t cap = (size_t)sb.st_size, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    *out = buf;
    *len = n;
    return 0;
}

static int serve_profile(const struct http_request *req, struct http_response *resp)
{
    unsigned long secs = 30; /* Go's default */
    if (!parse_seconds(req, &secs))
        return errors_render(resp, PERR_BAD_PARAM, "seconds", NULL,
                             "seconds must be an integer in 1 … %u", max_profile_seconds);
    bool expected = false;
    if (!atomic_compare_exchange_strong_explicit(&cpu_busy, &expected, true, memory_order_acq_rel,
                                                 memory_order_acquire))
        return errors_render(resp, PERR_CONFLICT, NULL, NULL, "a CPU profile is already running");

    char path[] = "/tmp/primed-cpu-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        atomic_store_explicit(&cpu_busy, false, memory_order_release);
        return errors_render(resp, PERR_INTERNAL, NULL, NULL, "cannot create profile file");
    }
    close(fd);
    int rc;
    if (!ProfilerStart(path)) {
        rc = errors_render(resp, PERR_INTERNAL, NULL, NULL, "ProfilerStart failed");
        goto out;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)secs;
    pthread_mutex_lock(&cpu_mu);
    while (!cpu_stop && pthread_cond_timedwait(&cpu_cv, &cpu_mu, &until) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&cpu_mu);
    ProfilerStop();

    char *buf = NULL;
    size_t len = 0;
    if (read_file(path, &buf, &len) != 0) {
        rc = errors_render(resp, PERR_INTERNAL, NULL, NULL, "cannot read profile file");
        goto out;
    }
    http_response_body_owned(resp, 200, "application/octet-stream", buf, len);
    http_response_header(resp, "Content-Disposition", "attachment; filename=\"profile\"");
    rc = 0;
out:
    unlink(path);
    atomic_store_explicit(&cpu_busy, false, memory_order_release);
    return rc;
}

#endif /* PRIMED_TCMALLOC */

/* The /debug/pprof/ index, derived from the route table: one line per debug-listener path. */
static int serve_index(struct http_response *resp)
{
    struct jsonw w; /* used as a bounded text builder; jsonw_escape is not needed for our paths */
    jsonw_init_dynamic(&w, 64 * 1024);
    jsonw_lit(&w, "<html><head><title>/debug/pprof/</title></head><body>\n<h1>/debug/pprof/</h1>\n"
                  "<p>Profiles and diagnostics of primed. Use <code>go tool pprof URL</code> or "
                  "<code>google-pprof --text URL</code>.</p>\n<table>\n");
    for (size_t i = 0; i < router_count(); i++) {
        const struct route *rt = router_route(i);
        if (!(rt->listeners & ROUTE_L_DEBUG) || rt->id == ROUTE_DEBUG_INDEX) continue;
        jsonw_lit(&w, "<tr><td><a href=\"");
        jsonw_raw(&w, rt->path, strlen(rt->path));
        jsonw_lit(&w, "\">");
        jsonw_raw(&w, rt->path, strlen(rt->path));
        jsonw_lit(&w, "</a></td><td>");
        jsonw_raw(&w, rt->summary, strlen(rt->summary));
        jsonw_lit(&w, "</td></tr>\n");
    }
    jsonw_lit(&w, "</table>\n</body></html>\n");
    size_t len = 0;
    char *body = w.overflow ? NULL : jsonw_steal(&w, &len);
    jsonw_fini(&w);
    if (!body) return errors_render(resp, PERR_INTERNAL, NULL, NULL, NULL);
    http_response_body_owned(resp, 200, "text/html; charset=utf-8", body, len);
    return 0;
}

int profiling_handle(enum route_id id, const struct http_request *req, struct http_response *resp)
{
    log_event(LOG_INFO, "profile_request", "debug endpoint", "path", req->path, "method",
              req->method, "client", req->client_addr ? req->client_addr : "-", "request_id",
              req->request_id ? req->request_id : "-", (const char *)NULL);
    if (id == ROUTE_DEBUG_INDEX) return serve_index(resp);
    if (id == ROUTE_DEBUG_REQUESTS) return inflight_handle(req, resp); /* no tcmalloc needed */
    /* Thread dumps need neither tcmalloc nor gperftools: they answer in the sanitizer builds
     * too (501 under ThreadSanitizer, see threaddump.c). */
    if (id == ROUTE_DEBUG_THREADS || id == ROUTE_DEBUG_THREADS_LEGACY)
        return pprof_threads_serve(req, resp, id == ROUTE_DEBUG_THREADS_LEGACY);
    if (id == ROUTE_DEBUG_TRACE) return serve_trace(req, resp);
#if PRIMED_TCMALLOC
    switch (id) {
    case ROUTE_DEBUG_HEAP:
        return serve_heap(resp);
    case ROUTE_DEBUG_PROFILE:
        return serve_profile(req, resp);
    case ROUTE_DEBUG_SYMBOL:
        return serve_symbol(req, resp);
    case ROUTE_DEBUG_CMDLINE:
        return serve_cmdline(resp);
    case ROUTE_DEBUG_STATS:
        return serve_stats(resp);
    default:
        break;
    }
    return errors_render(resp, PERR_NOT_FOUND, NULL, NULL, NULL);
#else
    return errors_render(resp, PERR_NOT_IMPLEMENTED, NULL, NULL,
                         "profiling needs the tcmalloc build (this build has sanitizers)");
#endif
}

void profiling_shutdown(void)
{
#if PRIMED_TCMALLOC
    pthread_mutex_lock(&cpu_mu);
    cpu_stop = true;
    pthread_cond_broadcast(&cpu_cv);
    pthread_mutex_unlock(&cpu_mu);
    /* A profile in flight stops itself now; wait (bounded) for it to release the profiler. */
    for (int i = 0; i < 200 && atomic_load_explicit(&cpu_busy, memory_order_acquire); i++)
        usleep(10000);
    symbolize_unload();
#endif
}
