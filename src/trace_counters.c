/* trace_counters.c — the counter tracks a trace of the service shows: the job queue, busy
 * workers, tcmalloc's bytes in use (release builds: the sanitizer builds have no tcmalloc), the
 * request memory and stream budgets in use, open connections. Each reads the same number its
 * metric does (pool_stats_get, the budgets' atomics, metrics_connections); the trace's sampler
 * calls them every TRACE_SAMPLE_MS during a capture only.
 */
#include <errno.h>

#include "primed/metrics.h"
#include "primed/pool.h"
#include "primed/reqmem.h"
#include "primed/stream.h"
#include "primed/trace.h"

#if PRIMED_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif

static uint64_t queue_depth(void *arg)
{
    struct pool_stats st;
    pool_stats_get(arg, &st);
    return st.queue_depth;
}

static uint64_t busy_workers(void *arg)
{
    struct pool_stats st;
    pool_stats_get(arg, &st);
    return st.busy;
}

static uint64_t reqmem_used(void *arg)
{
    return atomic_load_explicit(&((struct reqmem *)arg)->used, memory_order_relaxed);
}

static uint64_t streams_used(void *arg)
{
    return atomic_load_explicit(&((struct stream_budget *)arg)->used, memory_order_relaxed);
}

static uint64_t connections(void *arg)
{
    (void)arg;
    int64_t n = metrics_connections();
    return n > 0 ? (uint64_t)n : 0;
}

#if PRIMED_TCMALLOC
static uint64_t tcmalloc_in_use(void *arg)
{
    (void)arg;
    size_t v = 0;
    MallocExtension_GetNumericProperty("generic.current_allocated_bytes", &v);
    return v;
}
#endif

int trace_counters_wire(struct pool *p, struct reqmem *mem, struct stream_budget *streams)
{
    int rc = 0;
    rc |= trace_counter_add("queue depth", queue_depth, p);
    rc |= trace_counter_add("busy workers", busy_workers, p);
    rc |= trace_counter_add("request memory bytes", reqmem_used, mem);
    rc |= trace_counter_add("stream budget bytes", streams_used, streams);
    rc |= trace_counter_add("open connections", connections, NULL);
#if PRIMED_TCMALLOC
    rc |= trace_counter_add("tcmalloc in-use bytes", tcmalloc_in_use, NULL);
#endif
    return rc ? -ENOSPC : 0;
}
