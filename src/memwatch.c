/* memwatch.c — see memwatch.h.
 *
 * Sampling on a thread of its own every MEMWATCH_PERIOD_MS rather than on each request: reading
 * the cgroup costs 4–6 small file reads (~20 µs); per request that would be the most expensive
 * part of an isprime answer, and memory does not change meaningfully in 200 ms at the rates a
 * buffer budget allows (one 256 KiB stream buffer per admitted stream). The price is that up to
 * one period of new work is admitted after the crossing; the gap between the high-water mark and
 * the limit (10 % by default) is sized for that.
 *
 * Hysteresis: shedding starts at used >= high and stops at used < low, so a process hovering at
 * the mark does not flap /readyz (a balancer would otherwise bounce traffic on every scrape).
 *
 * The mark is a second line only: what a burst of requests may make primed hold must already fit
 * the limit when they are admitted, because 200 streams arrive well within one period (an audit
 * opened them in under a second with --memory-budget 1GiB in a 128 MiB cgroup, and the kernel
 * killed primed before the next sample). So the stream budget, charged synchronously at
 * admission (stream.h), is clamped to MEMWATCH_BUDGET_LIMIT_PCT of the limit at start and again
 * whenever a sample finds the limit changed.
 */
#include "primed/memwatch.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heap_dumps.h"
#include "primed/cgroup.h"
#include "primed/log.h"
#include "primed/metrics.h"
#include "primed/procstat.h"
#include "primed/stream.h"
#include "primed/trace.h"

#if PRIMED_TCMALLOC
#include <gperftools/malloc_extension_c.h>

#include "heap_sample.h"
#endif

#define MIB (UINT64_C(1) << 20)
#define DUMP_STEP_PERCENT 10 /* another heap profile every further 10 % of the limit */

/* The process-wide shedding flag: written (release) by the sampling thread only, read (acquire)
 * by any thread. A global because there is one memory limit per process. */
static atomic_bool shedding;
/* Requests refused while shedding: relaxed adds by I/O threads, read at scrape time. */
static atomic_uint_fast64_t shed_requests;

struct memwatch {
    /* Set in memwatch_create, read-only afterwards. */
    struct cgroup *cg; /* NULL: no memory cgroup; physical memory and RSS are used */
    uint64_t phys_bytes;
    unsigned high_pct, low_pct, dump_pct;
    char dump_dir[CONFIG_PATH_MAX];
    struct stream_budget *budget; /* borrowed (may be NULL): its limit is set by set_budget */
    bool budget_auto;             /* memory_budget auto: recomputed from each new limit */
    uint64_t budget_fixed;        /* memory_budget when not auto */
    uint64_t stream_buffer_bytes;

    /* Written by the sampling thread (relaxed), read by the collector at scrape time; each
     * value is self-contained, so a scrape may mix two samples but never a torn value. */
    atomic_bool has_cgroup_limit;
    atomic_uint_fast64_t limit, used, cg_limit, cg_usage, cg_working_set, oom_kills, limit_hits;
    atomic_bool has_oom_kills, has_limit_hits, has_usage;
    atomic_uint_fast64_t high_bytes, low_bytes, crossings, dumps_written, dumps_failed,
        dumps_duplicate;

    /* Written by set_budget (memwatch_create, then the sampling thread only; relaxed), read at
     * scrape time: the budget before the clamp (auto resolved) and after it. */
    atomic_uint_fast64_t budget_base, budget_effective;

    /* The sampling thread's own state (memwatch_create's before the thread starts). */
    int dump_level;             /* highest dump step written in this episode; -1 = none */
    struct heap_dumps *dumps;   /* NULL: no heap_dump_dir, no tcmalloc, or no memory for it */
    bool budget_ready;          /* set_budget has run once: samples re-check the budget */
    uint64_t budget_limit_seen; /* the limit set_budget last saw */

    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* stop + cv */
    pthread_cond_t cv;
    bool stop; /* under mu */
};

bool memwatch_shedding(void)
{
    return atomic_load_explicit(&shedding, memory_order_acquire);
}

void memwatch_note_shed(void)
{
    atomic_fetch_add_explicit(&shed_requests, 1, memory_order_relaxed);
}

uint64_t memwatch_clamp_budget(uint64_t budget, uint64_t limit)
{
    if (limit == 0) return budget; /* nothing known to clamp to */
    uint64_t cap =
        limit / 100 * MEMWATCH_BUDGET_LIMIT_PCT + limit % 100 * MEMWATCH_BUDGET_LIMIT_PCT / 100;
    return budget > cap ? cap : budget;
}

uint64_t memwatch_auto_budget(uint64_t limit, uint64_t stream_buffer_bytes, char *why,
                              size_t whylen)
{
    uint64_t b = limit / 4;
    const char *clamp = "";
    if (b < MEMWATCH_BUDGET_MIN) {
        b = MEMWATCH_BUDGET_MIN;
        clamp = ", raised to the 16 MiB floor";
    } else if (b > MEMWATCH_BUDGET_MAX) {
        b = MEMWATCH_BUDGET_MAX;
        clamp = ", capped at 256 MiB";
    }
    if (b < stream_buffer_bytes) {
        b = stream_buffer_bytes;
        clamp = ", raised to one stream_buffer_bytes";
    }
    snprintf(why, whylen, "1/4 of %" PRIu64 " MiB%s", limit / MIB, clamp);
    return b;
}

static uint64_t physical_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return 0;
    return (uint64_t)pages * (uint64_t)page;
}

/* ---- heap profiles -------------------------------------------------------------------------- */

/* A failed dump is counted and logged, whatever failed: primed_heap_dumps_total{result="failed"}
 * and a heap_dump_failed warning with the path and errno. */
static void dump_failed(struct memwatch *mw, int err, const char *path, const char *used)
{
    char e[16];
    snprintf(e, sizeof e, "%d", err);
    atomic_fetch_add_explicit(&mw->dumps_failed, 1, memory_order_relaxed);
    log_event(LOG_WARN, "heap_dump_failed", strerror(err), "path", path, "errno", e, "used_bytes",
              used, NULL);
}

static void maybe_dump(struct memwatch *mw, uint64_t used, uint64_t limit, uint64_t low,
                       uint64_t rss)
{
    if (mw->dump_dir[0] == '\0' || limit == 0) return;
    uint64_t thr = limit / 100 * mw->dump_pct, step = limit / 100 * DUMP_STEP_PERCENT;
    if (used < low && used < thr) {
        mw->dump_level = -1; /* a new episode dumps again */
        return;
    }
    if (used < thr || step == 0) return;
    uint64_t lv = (used - thr) / step;
    int level = lv > 1000 ? 1000 : (int)lv;
    if (level <= mw->dump_level) return;
    mw->dump_level = level;
    char u[24];
    snprintf(u, sizeof u, "%" PRIu64, used);
#if PRIMED_TCMALLOC
    char path[CONFIG_PATH_MAX + 80], l[24];
    snprintf(l, sizeof l, "%" PRIu64, limit);
    snprintf(path, sizeof path, "%s", mw->dump_dir);
    char *buf = NULL;
    size_t len = 0;
    int rc = mw->dumps ? heap_sample_get(&buf, &len) : -ENOMEM;
    if (rc == 0) {
        rc = heap_dumps_write(mw->dumps, time(NULL), rss / MIB, buf, len, path, sizeof path);
        free(buf);
    }
    if (rc == HEAP_DUMPS_DUPLICATE) {
        /* a profile this process wrote in the same second at the same RSS: the same evidence */
        atomic_fetch_add_explicit(&mw->dumps_duplicate, 1, memory_order_relaxed);
        log_event(LOG_INFO, "heap_dump_duplicate", "a profile of this second and size exists",
                  "path", path, NULL);
    } else if (rc == 0) {
        atomic_fetch_add_explicit(&mw->dumps_written, 1, memory_order_relaxed);
        trace_mark("heap dump written");
        log_event(LOG_WARN, "heap_dump", "heap profile written", "path", path, "used_bytes", u,
                  "limit_bytes", l, NULL);
    } else {
        dump_failed(mw, -rc, path, u);
    }
#else
    (void)rss;
    dump_failed(mw, ENOSYS, mw->dump_dir, u); /* no tcmalloc, no sampled heap to write */
#endif
}

/* ---- the stream budget ---------------------------------------------------------------------- */

/* The stream budget for `limit` (0: unknown): auto follows the limit, and either is then clamped
 * to MEMWATCH_BUDGET_LIMIT_PCT of it. Sets the stream budget's limit and says so in the log when
 * the value changes. memwatch_create, then the sampling thread. */
static void set_budget(struct memwatch *mw, uint64_t limit, const char *source)
{
    char why[160] = "as configured";
    uint64_t base = mw->budget_auto
                        ? memwatch_auto_budget(limit, mw->stream_buffer_bytes, why, sizeof why)
                        : mw->budget_fixed;
    uint64_t eff = memwatch_clamp_budget(base, limit);
    uint64_t old = atomic_load_explicit(&mw->budget_effective, memory_order_relaxed);
    bool first = !mw->budget_ready;
    mw->budget_ready = true;
    mw->budget_limit_seen = limit;
    atomic_store_explicit(&mw->budget_base, base, memory_order_relaxed);
    if (!first && eff == old) return;
    atomic_store_explicit(&mw->budget_effective, eff, memory_order_relaxed);
    if (mw->budget) stream_budget_set_limit(mw->budget, eff);

    char bs[24], cs[24], ls[24];
    snprintf(bs, sizeof bs, "%" PRIu64, eff);
    snprintf(cs, sizeof cs, "%" PRIu64, base);
    snprintf(ls, sizeof ls, "%" PRIu64, limit);
    if (eff < base) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "memory_budget is above %d %% of the memory limit: clamped to it%s",
                 MEMWATCH_BUDGET_LIMIT_PCT,
                 eff < mw->stream_buffer_bytes
                     ? " (less than one stream_buffer_bytes: every stream will be refused)"
                     : "");
        log_event(LOG_WARN, "memory_budget_clamped", msg, "bytes", bs, "configured_bytes",
                  mw->budget_auto ? "auto" : cs, "why", why, "limit_bytes", ls, "limit_source",
                  source, NULL);
    } else if (first && mw->budget_auto) {
        log_event(LOG_INFO, "memory_budget", "memory_budget auto", "bytes", bs, "why", why,
                  "limit_source", source, NULL);
    } else if (!first) {
        log_event(LOG_INFO, "memory_budget", "the memory limit changed: memory_budget follows",
                  "bytes", bs, "why", why, "limit_bytes", ls, "limit_source", source, NULL);
    }
}

/* ---- sampling ------------------------------------------------------------------------------- */

static void sample(struct memwatch *mw)
{
    struct procstat ps;
    uint64_t rss = procstat_read(&ps) == 0 ? ps.resident_bytes : 0;
    struct cgroup_mem m = {0};
    if (mw->cg) cgroup_read(mw->cg, &m);
    uint64_t limit, used;
    if (m.has_limit) { /* the cgroup's limit binds (it may be above physical memory: then not) */
        limit = mw->phys_bytes && m.limit > mw->phys_bytes ? mw->phys_bytes : m.limit;
        used = m.has_usage ? cgroup_working_set(&m) : rss;
    } else {
        limit = mw->phys_bytes;
        used = rss;
    }
    atomic_store_explicit(&mw->has_cgroup_limit, m.has_limit, memory_order_relaxed);
    atomic_store_explicit(&mw->limit, limit, memory_order_relaxed);
    atomic_store_explicit(&mw->cg_limit, m.limit, memory_order_relaxed);
    atomic_store_explicit(&mw->used, used, memory_order_relaxed);
    atomic_store_explicit(&mw->has_usage, m.has_usage, memory_order_relaxed);
    atomic_store_explicit(&mw->cg_usage, m.usage, memory_order_relaxed);
    atomic_store_explicit(&mw->cg_working_set, cgroup_working_set(&m), memory_order_relaxed);
    atomic_store_explicit(&mw->has_oom_kills, m.has_oom_kills, memory_order_relaxed);
    atomic_store_explicit(&mw->oom_kills, m.oom_kills, memory_order_relaxed);
    atomic_store_explicit(&mw->has_limit_hits, m.has_limit_hits, memory_order_relaxed);
    atomic_store_explicit(&mw->limit_hits, m.limit_hits, memory_order_relaxed);

    /* percent of the limit, computed per sample: a resized cgroup takes effect at once */
    uint64_t high = mw->high_pct >= 100 ? UINT64_MAX : limit / 100 * mw->high_pct;
    uint64_t low = limit / 100 * mw->low_pct;
    atomic_store_explicit(&mw->high_bytes, high == UINT64_MAX ? limit : high, memory_order_relaxed);
    atomic_store_explicit(&mw->low_bytes, low, memory_order_relaxed);
    /* a resized cgroup resizes the budget too (only what is admitted from now on) */
    if (mw->budget_ready && limit != mw->budget_limit_seen)
        set_budget(mw, limit, m.has_limit ? "cgroup" : "physical memory");
    if (limit == 0) return; /* nothing known to compare with */

    bool was = atomic_load_explicit(&shedding, memory_order_relaxed);
    char u[24], l[24], h[24];
    snprintf(u, sizeof u, "%" PRIu64, used);
    snprintf(l, sizeof l, "%" PRIu64, limit);
    if (!was && used >= high) {
        atomic_store_explicit(&shedding, true, memory_order_release);
        trace_mark("shedding on");
        atomic_fetch_add_explicit(&mw->crossings, 1, memory_order_relaxed);
        snprintf(h, sizeof h, "%" PRIu64, high);
        log_event(LOG_WARN, "memory_high_water",
                  "above the high-water mark: shedding new streams, large counts and batches; "
                  "/readyz 503",
                  "used_bytes", u, "high_water_bytes", h, "limit_bytes", l, NULL);
    } else if (was && used < low) {
        atomic_store_explicit(&shedding, false, memory_order_release);
        trace_mark("shedding off");
        snprintf(h, sizeof h, "%" PRIu64, low);
        log_event(LOG_INFO, "memory_recovered", "below the low-water mark: accepting all work",
                  "used_bytes", u, "low_water_bytes", h, "limit_bytes", l, NULL);
    }
    maybe_dump(mw, used, limit, low, rss);
#if PRIMED_TCMALLOC
    /* Freed stream buffers stay in tcmalloc's page heap, still charged to the cgroup, so without
     * this a process that stopped admitting work might never get back below the low mark
     * (measured: tests/test_cgroup_limit.sh without it stays at 110 of 128 MiB after its clients
     * left). Only while shedding: it takes the page-heap lock, a few ms with a long free list. */
    if (atomic_load_explicit(&shedding, memory_order_relaxed)) MallocExtension_ReleaseFreeMemory();
#endif
}

static void *run(void *arg)
{
    struct memwatch *mw = arg;
    trace_thread_name("primed-memwatch");
    pthread_mutex_lock(&mw->mu);
    while (!mw->stop) {
        pthread_mutex_unlock(&mw->mu);
        sample(mw);
        pthread_mutex_lock(&mw->mu);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)MEMWATCH_PERIOD_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        while (!mw->stop && pthread_cond_timedwait(&mw->cv, &mw->mu, &until) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&mw->mu);
    return NULL;
}

/* ---- metrics -------------------------------------------------------------------------------- */

#define LD(f) atomic_load_explicit(&mw->f, memory_order_relaxed)

static void collect(void *arg, struct metrics_writer *w)
{
    struct memwatch *mw = arg;
    if (mw->cg) {
        metrics_write_one_f(w, "primed_cgroup_memory_limit_bytes", "gauge",
                            "Memory limit of primed's cgroup (+Inf when it sets none).",
                            LD(has_cgroup_limit) ? (double)LD(cg_limit) : INFINITY);
        if (LD(has_usage)) {
            metrics_write_one(w, "primed_cgroup_memory_usage_bytes", "gauge",
                              "Memory charged to primed's cgroup, page cache included.",
                              LD(cg_usage));
            metrics_write_one(w, "primed_cgroup_memory_working_set_bytes", "gauge",
                              "Cgroup usage minus inactive page cache (what the limit bites on).",
                              LD(cg_working_set));
        }
        if (LD(has_oom_kills))
            metrics_write_one(w, "primed_cgroup_oom_kills_total", "counter",
                              "Processes of primed's cgroup killed by the OOM killer.",
                              LD(oom_kills));
        if (LD(has_limit_hits))
            metrics_write_one(w, "primed_cgroup_memory_limit_hits_total", "counter",
                              "Times the cgroup's usage hit its limit (v1 failcnt, v2 max).",
                              LD(limit_hits));
    }
    metrics_write_one(w, "primed_memory_limit_bytes", "gauge",
                      "The limit the high-water mark is a percentage of (cgroup or physical).",
                      LD(limit));
    metrics_write_one(w, "primed_memory_used_bytes", "gauge",
                      "Memory measured against it (cgroup working set, else RSS).", LD(used));
    metrics_write_one(w, "primed_memory_high_water_bytes", "gauge",
                      "Above it expensive new work is shed.", LD(high_bytes));
    metrics_write_one(w, "primed_memory_low_water_bytes", "gauge", "Below it shedding stops.",
                      LD(low_bytes));
    metrics_write_one(w, "primed_memory_shedding", "gauge",
                      "1 while above the high-water mark (until below the low one).",
                      memwatch_shedding() ? 1 : 0);
    metrics_write_one(w, "primed_memory_high_water_crossings_total", "counter",
                      "Times memory crossed the high-water mark upwards.", LD(crossings));
    metrics_write_one(w, "primed_memory_budget_configured_bytes", "gauge",
                      "memory_budget as configured (auto: from the limit), before the clamp to "
                      "the limit; primed_memory_budget_bytes is what streams are admitted against.",
                      LD(budget_base));
    metrics_write_one(w, "primed_memory_shed_requests_total", "counter",
                      "Requests refused with 503 overloaded above the high-water mark.",
                      atomic_load_explicit(&shed_requests, memory_order_relaxed));
    metrics_write_family(w, "primed_heap_dumps_total", "counter",
                         "Heap profiles written to heap_dump_dir, by result.");
    metrics_write_sample_u64(w, "primed_heap_dumps_total", "result=\"written\"", LD(dumps_written));
    metrics_write_sample_u64(w, "primed_heap_dumps_total", "result=\"failed\"", LD(dumps_failed));
    metrics_write_sample_u64(w, "primed_heap_dumps_total", "result=\"duplicate\"",
                             LD(dumps_duplicate));
}

/* ---- lifetime ------------------------------------------------------------------------------- */

int memwatch_create(struct primed_config *cfg, struct stream_budget *budget, struct memwatch **out)
{
    *out = NULL;
    struct memwatch *mw = calloc(1, sizeof *mw);
    if (!mw) return -ENOMEM;
    int rc;
    mw->phys_bytes = physical_memory();
    mw->high_pct = cfg->memory_high_water;
    mw->low_pct = cfg->memory_low_water;
    mw->dump_pct = cfg->heap_dump_threshold ? cfg->heap_dump_threshold : cfg->memory_high_water;
    mw->dump_level = -1;
    mw->budget = budget;
    mw->budget_auto = cfg->memory_budget == 0;
    mw->budget_fixed = cfg->memory_budget;
    mw->stream_buffer_bytes = cfg->stream_buffer_bytes;
    snprintf(mw->dump_dir, sizeof mw->dump_dir, "%s", cfg->heap_dump_dir);
    pthread_mutex_init(&mw->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&mw->cv, &ca);
    pthread_condattr_destroy(&ca);

    rc = cgroup_open(cfg->cgroup_root, &mw->cg);
    if (rc != 0) {
        log_event(LOG_INFO, "memory_limit", "no memory cgroup: physical memory is the limit",
                  "reason", strerror(-rc), "root", cfg->cgroup_root[0] ? cfg->cgroup_root : "/",
                  NULL);
        mw->cg = NULL;
    }
    sample(mw); /* first values before anyone scrapes or sheds */
    uint64_t limit = atomic_load(&mw->limit);
    char ls[24];
    snprintf(ls, sizeof ls, "%" PRIu64, limit);
    const char *source = atomic_load(&mw->has_cgroup_limit) ? "cgroup" : "physical memory";
    if (mw->cg)
        log_event(LOG_INFO, "memory_limit", "memory limit", "source", source, "limit_bytes", ls,
                  "cgroup", cgroup_dir(mw->cg), "version",
                  cgroup_version(mw->cg) == CGROUP_V2 ? "v2" : "v1", NULL);
    set_budget(mw, limit, source);
    cfg->memory_budget = atomic_load(&mw->budget_base); /* auto resolved; before the clamp */
#if PRIMED_TCMALLOC
    /* Checked now (unusable, or open to others), not at the first crossing when the evidence is
     * needed. Without memory for it every dump is counted and logged as failed. */
    if (mw->dump_dir[0] != '\0')
        heap_dumps_create(mw->dump_dir, cfg->heap_dump_keep ? cfg->heap_dump_keep : 1, &mw->dumps);
#else
    if (mw->dump_dir[0] != '\0')
        log_event(LOG_WARN, "heap_dump_unavailable",
                  "heap_dump_dir is set but this build has no tcmalloc: no heap profiles", NULL);
#endif
    if ((rc = metrics_register_collector(collect, mw)) != 0) goto err;
    if ((rc = -pthread_create(&mw->thread, NULL, run, mw)) != 0) goto err_collector;
    mw->started = true;
    *out = mw;
    return 0;

err_collector:
    metrics_unregister_collector(collect, mw);
err:
    heap_dumps_destroy(mw->dumps);
    cgroup_close(mw->cg);
    pthread_cond_destroy(&mw->cv);
    pthread_mutex_destroy(&mw->mu);
    free(mw);
    return rc;
}

void memwatch_destroy(struct memwatch *mw)
{
    if (!mw) return;
    if (mw->started) {
        pthread_mutex_lock(&mw->mu);
        mw->stop = true;
        pthread_cond_signal(&mw->cv);
        pthread_mutex_unlock(&mw->mu);
        pthread_join(mw->thread, NULL);
    }
    metrics_unregister_collector(collect, mw);
    atomic_store_explicit(&shedding, false, memory_order_release);
    heap_dumps_destroy(mw->dumps);
    cgroup_close(mw->cg);
    pthread_cond_destroy(&mw->cv);
    pthread_mutex_destroy(&mw->mu);
    free(mw);
}
