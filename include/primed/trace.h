/* trace.h — an execution trace: what every thread did, and when, over a few seconds.
 *
 * A capture (trace_capture, served at /debug/pprof/trace) gives each thread a ring buffer of
 * fixed-size records carved out of one block of `trace_buffer_bytes`, lets the event sites fill
 * them for N seconds while a sampler thread records counter tracks, then renders everything in
 * the Chrome Trace Event Format (JSON: Perfetto, chrome://tracing, speedscope). A full ring
 * drops its oldest records (counted). With no capture running an event site costs one relaxed
 * atomic load (trace_on); it must never block on anything but its own thread's ring lock, which
 * only the collector at the end of a capture also takes. Knows nothing of HTTP.
 */
#ifndef PRIMED_TRACE_H
#define PRIMED_TRACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct reqmem;

/* Written (release) by the capturing thread only: true from the moment the rings are ready
 * until the capture stops. Event sites read it relaxed through trace_on. */
extern atomic_bool trace_capturing;

/* Is a capture running? The one check an event site makes when none is. */
static inline bool trace_on(void)
{
    return atomic_load_explicit(&trace_capturing, memory_order_relaxed);
}

/* Call once at start, after metrics_init: the buffer size of a capture (≥ TRACE_MIN_BYTES), the
 * budget it is charged to while it runs (borrowed until trace_fini; NULL = none), and the
 * metrics collector (primed_trace_*). Returns 0 or -ENOSPC (metrics registry full). */
#define TRACE_MIN_BYTES (64u * 1024)
int trace_init(uint64_t buffer_bytes, struct reqmem *mem);
/* Ends a capture in flight (trace_shutdown), unregisters the collector. Accepts no init. */
void trace_fini(void);

/* Name the calling thread's track (at most 15 characters kept). Threads primed starts call it
 * first thing; a thread that never does is registered at its first event with its OS name.
 * Forgotten when the thread exits. */
void trace_thread_name(const char *name);

/* Timestamps are CLOCK_MONOTONIC ns (pool_now_ns, trace_now_ns). */
uint64_t trace_now_ns(void);

/* What an event says. name (and route, when set) must be static strings: only the pointer is
 * kept. rid and params are copied (cut to fit); NULL = none. */
struct trace_ev {
    const char *name;   /* "running", "π chunk", "429", … */
    const char *route;  /* the route's label, or NULL */
    const char *rid;    /* request id, or NULL */
    const char *params; /* raw query string, or NULL */
    uint64_t t0, t1;    /* a span's start and end; an instant's time (0: now) */
    int status;         /* HTTP status, 0 = none */
    uint64_t bytes;     /* response bytes */
    int64_t chunk;      /* a chunk's index, -1 = not a chunk */
    bool stream;        /* trace_request: the answer was streamed */
};
#define TRACE_EV_INIT                                                                              \
    {                                                                                              \
        .chunk = -1                                                                                \
    }

/* A span [t0, t1] of work the calling thread did ("X": its track shows it; spans of one thread
 * nest or follow each other). */
void trace_span(const struct trace_ev *e);
/* A moment (an instant on the calling thread's track; t0 == 0: now). */
void trace_instant(const struct trace_ev *e);

/* An instant with a name only (shedding on/off, a heap dump written). Costs trace_on when off. */
void trace_mark(const char *name);

/* One request's life, recorded once at its end: its phases become one async track per request
 * (received → queued → running on worker N → streaming → done), nested under a "request" span.
 * Phase times are 0 when the request never reached them. */
enum trace_phase {
    TRACE_RECEIVED = 0, /* the request line arrived */
    TRACE_QUEUED,       /* handed to the pool */
    TRACE_STARTED,      /* a worker began it */
    TRACE_RAN,          /* its worker finished its first run (a stream goes on streaming) */
    TRACE_DONE,         /* answered, or given up */
    TRACE__PHASES
};
void trace_request(const struct trace_ev *e, const uint64_t at[TRACE__PHASES], int worker_tid);

/* The calling thread's id as the trace names it (the kernel's tid). */
int trace_tid(void);

/* A counter track the sampler reads every TRACE_SAMPLE_MS while a capture runs. name must be
 * static; read runs on the sampler thread and must be cheap and thread-safe. Register before
 * the first capture (start-up). Returns 0 or -ENOSPC (TRACE_MAX_COUNTERS). */
#define TRACE_SAMPLE_MS 5
#define TRACE_MAX_COUNTERS 16
int trace_counter_add(const char *name, uint64_t (*read)(void *arg), void *arg);

/* The service's counter tracks (trace_counters.c): queue depth and busy workers of p, the
 * request memory and stream budgets in use, open connections, tcmalloc's bytes in use (release
 * builds). All borrowed until trace_fini. Returns 0 or -ENOSPC. */
struct pool;
struct stream_budget;
int trace_counters_wire(struct pool *p, struct reqmem *mem, struct stream_budget *streams);

/* Record for `seconds` (≥ 1) and render the trace: on 0, *out is the JSON (malloc'd, the
 * caller frees it) of *len bytes. Blocks the calling thread for the duration (or until
 * trace_shutdown). Returns 0, -EBUSY (a capture is running), -EAGAIN (the buffer does not fit
 * the budget now), -ENOMEM, -EINVAL (trace_init not called, or seconds 0). */
int trace_capture(unsigned seconds, char **out, size_t *len);
/* A capture in flight stops now and answers with what it has; later ones end at once. */
void trace_shutdown(void);

#endif
