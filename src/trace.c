/* trace.c — the recorder behind trace.h: the thread registry, per-thread rings, the event sites'
 * writes, the counter sampler and one capture at a time.
 *
 * Rings exist only during a capture: one block of trace_buffer_bytes, charged to the request
 * memory budget, split evenly between the threads alive when it starts plus TRACE_SPARE rings
 * for threads that register during it (a debug connection, a new I/O thread). Each ring has one
 * writer, its thread, which holds the ring's mutex for the few stores of one event; the collector
 * takes it once per ring at the end, so the lock is never contended while recording and a writer
 * that saw trace_on just before the stop finishes its event before the ring is read. A lock-free
 * ring (a sequence number per slot) was not used: an uncontended lock is ~20 ns against the ~1 µs
 * of work around the cheapest event site, and the lock makes the hand-over to the collector
 * obviously safe. A full ring overwrites its oldest slots; a record whose first slot is lost is
 * skipped whole and counted in primed_trace_events_dropped_total.
 */
#include "primed/trace.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "primed/metrics.h"
#include "primed/reqmem.h"
#include "trace_int.h"

#define TRACE_MAX_THREADS 1280 /* workers (≤ 1024), I/O, debug connections (≤ 64), the rest */
#define TRACE_SPARE 8
#define TRACE_MIN_SLOTS 64

atomic_bool trace_capturing;

/* A thread's entry. name, tid, used and alive are under reg_mu; ring, cap, head and dropped
 * under mu (the thread writes, the collector reads once at the end). */
struct tthread {
    pthread_mutex_t mu;
    union trace_slot *ring; /* NULL: no ring this capture (none yet, or none left) */
    uint64_t cap, head, dropped;
    uint64_t events; /* recorded this capture, summed into the metric by the collector: the
                        writers share no counter (bench-trace.sh: a global atomic add per
                        event cost +7.7 % CPU per isprime during a capture, this +2.3 %) */
    unsigned gen;    /* the capture it last asked a spare ring for (its own thread only) */
    int tid;
    char name[16];
    bool used;  /* the entry belongs to a thread, alive or not */
    bool alive; /* its thread has not exited */
};

struct tcounter {
    const char *name;
    uint64_t (*read)(void *);
    void *arg;
};

static struct {
    pthread_mutex_t mu; /* reg[] names, the spare rings, counters[], the capture below */
    struct tthread reg[TRACE_MAX_THREADS];
    unsigned nreg; /* entries ever used: a high-water mark, scans stop there */
    bool ready;    /* trace_init ran */
    uint64_t buffer_bytes;
    struct reqmem *mem;
    /* The capture in flight (under mu): spare rings not handed out yet, its generation. */
    union trace_slot *spare;
    uint64_t spare_left, ring_slots;
    struct tcounter counters[TRACE_MAX_COUNTERS];
    unsigned ncounters;
} T = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* One capture at a time: set by trace_capture's compare-exchange, cleared by it at the end. */
static atomic_bool busy;
/* +1 at each capture's start (under T.mu); read relaxed by writers, compared with their own
 * tthread.gen (which only their thread touches) to ask for a spare ring once per capture. */
static atomic_uint gen;
/* The capture's wait (and the sampler's), cut short by trace_shutdown. */
static pthread_mutex_t wait_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wait_cv;
static bool stop_all;     /* under wait_mu: trace_shutdown, never cleared */
static bool sampler_stop; /* under wait_mu */
/* Metrics (relaxed counters; the gauge is the block held now). */
static atomic_uint_fast64_t m_events, m_dropped, m_captures, m_held;

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static _Thread_local struct tthread *me;

uint64_t trace_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int trace_tid(void)
{
    return me ? me->tid : (int)gettid();
}

/* ---- the thread registry ------------------------------------------------------------------- */

/* The thread exits: its entry may be reused once no capture holds its ring. */
static void thread_gone(void *arg)
{
    struct tthread *t = arg;
    pthread_mutex_lock(&T.mu);
    t->alive = false;
    if (!t->ring) t->used = false;
    pthread_mutex_unlock(&T.mu);
}

static void key_make(void)
{
    pthread_key_create(&key, thread_gone);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wait_cv, &ca);
    pthread_condattr_destroy(&ca);
    for (unsigned i = 0; i < TRACE_MAX_THREADS; i++)
        pthread_mutex_init(&T.reg[i].mu, NULL);
}

/* A spare ring for t, if the capture in flight has one left. T.mu held. */
static void give_spare_locked(struct tthread *t)
{
    unsigned g = atomic_load_explicit(&gen, memory_order_relaxed);
    if (!trace_on() || t->gen == g) return;
    t->gen = g;
    if (T.spare_left == 0) return;
    pthread_mutex_lock(&t->mu);
    if (!t->ring) {
        t->ring = T.spare;
        t->cap = T.ring_slots;
        t->head = t->dropped = t->events = 0;
        T.spare += T.ring_slots;
        T.spare_left--;
    }
    pthread_mutex_unlock(&t->mu);
}

void trace_thread_name(const char *name)
{
    pthread_once(&key_once, key_make);
    pthread_mutex_lock(&T.mu);
    struct tthread *t = me;
    for (unsigned i = 0; !t && i < TRACE_MAX_THREADS; i++)
        if (!T.reg[i].used) {
            t = &T.reg[i];
            t->used = t->alive = true;
            t->tid = (int)gettid();
            t->gen = 0;
            pthread_mutex_lock(&t->mu);
            t->dropped = 0;
            pthread_mutex_unlock(&t->mu);
            if (i >= T.nreg) T.nreg = i + 1;
        }
    if (t) {
        snprintf(t->name, sizeof t->name, "%s", name);
        me = t;
        pthread_setspecific(key, t);
        give_spare_locked(t);
    }
    pthread_mutex_unlock(&T.mu);
}

/* The calling thread's entry, registered under its OS name at its first event. */
static struct tthread *self(void)
{
    if (!me) {
        char name[16] = "thread";
        pthread_getname_np(pthread_self(), name, sizeof name);
        trace_thread_name(name);
    }
    return me;
}

/* ---- writing --------------------------------------------------------------------------------- */

/* Append rec (its text: rid then params, cut to TRACE_TEXT_MAX) to the calling thread's ring. */
static void put(struct trace_rec *rec, const char *rid, const char *params)
{
    struct tthread *t = self();
    if (!t) {
        atomic_fetch_add_explicit(&m_dropped, 1, memory_order_relaxed);
        return;
    }
    char text[TRACE_TEXT_MAX];
    size_t rl = rid ? strnlen(rid, TRACE_RID_MAX) : 0;
    size_t pl = params ? strnlen(params, TRACE_TEXT_MAX - rl) : 0;
    if (pl > 255) pl = 255;
    memcpy(text, rid ? rid : "", rl);
    memcpy(text + rl, params ? params : "", pl);
    size_t len = rl + pl;
    rec->ridlen = (uint8_t)rl;
    rec->plen = (uint8_t)pl;
    size_t first = len < TRACE_REC_TEXT ? len : TRACE_REC_TEXT;
    memcpy(rec->text, text, first);
    rec->ncont = (uint8_t)((len - first + TRACE_CONT_TEXT - 1) / TRACE_CONT_TEXT);

    pthread_mutex_lock(&t->mu);
    if (!t->ring &&
        t->gen !=
            atomic_load_explicit(
                &gen,
                memory_order_relaxed)) { /* registered before this capture but after its start */
        pthread_mutex_unlock(&t->mu);
        pthread_mutex_lock(&T.mu);
        give_spare_locked(t);
        pthread_mutex_unlock(&T.mu);
        pthread_mutex_lock(&t->mu);
    }
    if (!t->ring) {
        t->dropped++;
        pthread_mutex_unlock(&t->mu);
        return;
    }
    for (unsigned k = 0; k <= rec->ncont; k++) {
        union trace_slot *s = &t->ring[t->head % t->cap];
        /* Overwriting the first slot of an event loses that event. */
        if (t->head >= t->cap && s->r.kind != TREC_CONT) t->dropped++;
        if (k == 0) {
            s->r = *rec;
        } else {
            size_t off = first + (k - 1) * TRACE_CONT_TEXT, n = len - off;
            s->c.kind = TREC_CONT;
            memcpy(s->c.text, text + off, n < TRACE_CONT_TEXT ? n : TRACE_CONT_TEXT);
        }
        t->head++;
    }
    t->events++;
    pthread_mutex_unlock(&t->mu);
}

static void rec_from(struct trace_rec *r, int kind, const struct trace_ev *e)
{
    *r = (struct trace_rec){.kind = (uint8_t)kind,
                            .status = (int16_t)e->status,
                            .flags = e->stream ? TREC_F_STREAM : 0,
                            .ts = e->t0 ? e->t0 : trace_now_ns(),
                            .bytes = e->bytes,
                            .chunk = e->chunk,
                            .name = e->name,
                            .route = e->route};
}

void trace_span(const struct trace_ev *e)
{
    if (!trace_on()) return;
    struct trace_rec r;
    rec_from(&r, TREC_SPAN, e);
    r.at[0] = e->t1 > r.ts ? e->t1 : r.ts;
    put(&r, e->rid, e->params);
}

void trace_instant(const struct trace_ev *e)
{
    if (!trace_on()) return;
    struct trace_rec r;
    rec_from(&r, TREC_INSTANT, e);
    put(&r, e->rid, e->params);
}

void trace_mark(const char *name)
{
    if (!trace_on()) return;
    struct trace_ev e = TRACE_EV_INIT;
    e.name = name;
    trace_instant(&e);
}

void trace_request(const struct trace_ev *e, const uint64_t at[TRACE__PHASES], int worker_tid)
{
    if (!trace_on()) return;
    struct trace_rec r;
    rec_from(&r, TREC_REQUEST, e);
    r.ts = at[TRACE_RECEIVED];
    for (int i = 1; i < TRACE__PHASES; i++)
        r.at[i - 1] = at[i];
    r.wtid = worker_tid;
    put(&r, e->rid, e->params);
}

size_t trace_text(const struct trace_view *v, uint64_t i, char *out)
{
    const struct trace_rec *r = &v->ring[i % v->cap].r;
    size_t len = (size_t)r->ridlen + r->plen, first = len < TRACE_REC_TEXT ? len : TRACE_REC_TEXT;
    memcpy(out, r->text, first);
    for (unsigned k = 1; k <= r->ncont && first < len; k++) {
        const struct trace_cont *c = &v->ring[(i + k) % v->cap].c;
        size_t n = len - first < TRACE_CONT_TEXT ? len - first : TRACE_CONT_TEXT;
        memcpy(out + first, c->text, n);
        first += n;
    }
    return len;
}

/* ---- counters and their sampler ---------------------------------------------------------------
 */

int trace_counter_add(const char *name, uint64_t (*read)(void *arg), void *arg)
{
    pthread_mutex_lock(&T.mu);
    int rc = -ENOSPC;
    if (T.ncounters < TRACE_MAX_COUNTERS) {
        T.counters[T.ncounters++] = (struct tcounter){name, read, arg};
        rc = 0;
    }
    pthread_mutex_unlock(&T.mu);
    return rc;
}

/* Wait until `until` (monotonic ns) or a stop; returns true when stopped. wait_mu held. */
static bool wait_until_locked(uint64_t until, const bool *flag)
{
    struct timespec ts = {.tv_sec = (time_t)(until / 1000000000u),
                          .tv_nsec = (long)(until % 1000000000u)};
    while (!stop_all && !*flag && trace_now_ns() < until)
        if (pthread_cond_timedwait(&wait_cv, &wait_mu, &ts) == ETIMEDOUT) break;
    return stop_all || *flag;
}

static void *sampler_main(void *arg)
{
    (void)arg;
    trace_thread_name("primed-trace");
    pthread_mutex_lock(&T.mu);
    unsigned n = T.ncounters; /* the table is complete before the first capture */
    pthread_mutex_unlock(&T.mu);
    pthread_mutex_lock(&wait_mu);
    for (uint64_t next = trace_now_ns();; next += TRACE_SAMPLE_MS * 1000000ull) {
        if (wait_until_locked(next, &sampler_stop)) break;
        pthread_mutex_unlock(&wait_mu);
        for (unsigned i = 0; i < n; i++) {
            struct trace_rec r = {.kind = TREC_COUNTER, .name = T.counters[i].name, .chunk = -1};
            r.at[0] = T.counters[i].read(T.counters[i].arg);
            r.ts = trace_now_ns();
            put(&r, NULL, NULL);
        }
        pthread_mutex_lock(&wait_mu);
    }
    pthread_mutex_unlock(&wait_mu);
    return NULL;
}

/* ---- one capture ----------------------------------------------------------------------------- */

/* Rings for the threads alive now and TRACE_SPARE more, out of block[bytes]; then recording
 * starts. */
static void rings_assign(union trace_slot *block, uint64_t bytes)
{
    pthread_mutex_lock(&T.mu);
    uint64_t alive = 0, slots = bytes / TRACE_SLOT_BYTES;
    for (unsigned i = 0; i < T.nreg; i++)
        alive += T.reg[i].used && T.reg[i].alive;
    uint64_t nrings = alive + TRACE_SPARE;
    if (nrings > slots / TRACE_MIN_SLOTS) nrings = slots / TRACE_MIN_SLOTS;
    uint64_t per = slots / nrings, k = 0;
    for (unsigned i = 0; i < T.nreg && k < nrings; i++) {
        struct tthread *t = &T.reg[i];
        if (!t->used || !t->alive) continue;
        pthread_mutex_lock(&t->mu);
        t->ring = block + k++ * per;
        t->cap = per;
        t->head = t->dropped = t->events = 0;
        pthread_mutex_unlock(&t->mu);
    }
    T.spare = block + k * per;
    T.spare_left = nrings - k;
    T.ring_slots = per;
    atomic_fetch_add_explicit(&gen, 1, memory_order_relaxed);
    atomic_store_explicit(&trace_capturing, true, memory_order_release);
    pthread_mutex_unlock(&T.mu);
}

/* Recording stops; every ring is taken from its thread into views[] (a writer inside its event
 * finishes it first). Returns the number of views; *dropped: the events lost. */
static size_t rings_collect(struct trace_view *views, uint64_t *dropped)
{
    atomic_store_explicit(&trace_capturing, false, memory_order_release);
    size_t n = 0;
    *dropped = 0;
    pthread_mutex_lock(&T.mu);
    for (unsigned i = 0; i < T.nreg; i++) {
        struct tthread *t = &T.reg[i];
        if (!t->used) continue;
        pthread_mutex_lock(&t->mu);
        if (t->ring) {
            views[n] =
                (struct trace_view){.tid = t->tid, .ring = t->ring, .cap = t->cap, .head = t->head};
            memcpy(views[n++].name, t->name, sizeof t->name);
        }
        *dropped += t->dropped;
        atomic_fetch_add_explicit(&m_events, t->events, memory_order_relaxed);
        t->ring = NULL;
        t->dropped = t->events = 0;
        pthread_mutex_unlock(&t->mu);
        if (!t->alive) t->used = false; /* its ring is read: the entry may be reused */
    }
    T.spare_left = 0;
    pthread_mutex_unlock(&T.mu);
    atomic_fetch_add_explicit(&m_dropped, *dropped, memory_order_relaxed);
    return n;
}

/* Sleep `seconds` (or until trace_shutdown) while the sampler, if there are counters, runs. */
static void record_for(unsigned seconds, uint64_t t0)
{
    pthread_t th;
    pthread_mutex_lock(&wait_mu);
    sampler_stop = false;
    pthread_mutex_unlock(&wait_mu);
    bool sampling = T.ncounters > 0 && pthread_create(&th, NULL, sampler_main, NULL) == 0;
    static const bool never = false;
    pthread_mutex_lock(&wait_mu);
    wait_until_locked(t0 + (uint64_t)seconds * 1000000000u, &never);
    sampler_stop = true;
    pthread_cond_broadcast(&wait_cv);
    pthread_mutex_unlock(&wait_mu);
    if (sampling) pthread_join(th, NULL);
}

int trace_capture(unsigned seconds, char **out, size_t *len)
{
    if (!T.ready || seconds == 0) return -EINVAL;
    bool expected = false;
    if (!atomic_compare_exchange_strong_explicit(&busy, &expected, true, memory_order_acq_rel,
                                                 memory_order_acquire))
        return -EBUSY;
    int rc = -EAGAIN;
    uint64_t bytes = T.buffer_bytes;
    union trace_slot *block = NULL;
    struct trace_view *views = NULL;
    if (T.mem && !reqmem_charge(T.mem, bytes)) goto out;
    rc = -ENOMEM;
    block = malloc(bytes);
    views = calloc(TRACE_MAX_THREADS, sizeof *views);
    if (!block || !views) goto release;
    atomic_store_explicit(&m_held, bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&m_captures, 1, memory_order_relaxed);
    struct trace_export_info info = {.pid = (int)getpid(), .buffer_bytes = bytes};
    rings_assign(block, bytes);
    info.t0 = trace_now_ns();
    record_for(seconds, info.t0);
    info.t1 = trace_now_ns();
    size_t n = rings_collect(views, &info.dropped);
    rc = trace_export(views, n, &info, out, len);
release:
    free(views);
    free(block);
    atomic_store_explicit(&m_held, 0, memory_order_relaxed);
    if (T.mem) reqmem_release(T.mem, bytes);
out:
    atomic_store_explicit(&busy, false, memory_order_release);
    return rc;
}

void trace_shutdown(void)
{
    pthread_once(&key_once, key_make);
    pthread_mutex_lock(&wait_mu);
    stop_all = true;
    pthread_cond_broadcast(&wait_cv);
    pthread_mutex_unlock(&wait_mu);
    /* A capture in flight renders what it has and lets go; wait for it (bounded). */
    for (int i = 0; i < 500 && atomic_load_explicit(&busy, memory_order_acquire); i++)
        usleep(10000);
}

/* ---- start, stop, metrics -------------------------------------------------------------------- */

static void collect(void *arg, struct metrics_writer *w)
{
    (void)arg;
    metrics_write_one(w, "primed_trace_buffer_bytes", "gauge",
                      "Bytes of trace ring buffers held now (a capture holds trace_buffer_bytes, "
                      "charged to the request memory budget).",
                      atomic_load_explicit(&m_held, memory_order_relaxed));
    metrics_write_one(w, "primed_trace_buffer_limit_bytes", "gauge",
                      "trace_buffer_bytes: what one capture holds.", T.buffer_bytes);
    metrics_write_one(w, "primed_trace_captures_total", "counter",
                      "Execution traces captured (/debug/pprof/trace).",
                      atomic_load_explicit(&m_captures, memory_order_relaxed));
    metrics_write_one(w, "primed_trace_events_total", "counter", "Trace events recorded.",
                      atomic_load_explicit(&m_events, memory_order_relaxed));
    metrics_write_one(w, "primed_trace_events_dropped_total", "counter",
                      "Trace events lost: overwritten in a full ring, or no ring for the thread.",
                      atomic_load_explicit(&m_dropped, memory_order_relaxed));
}

int trace_init(uint64_t buffer_bytes, struct reqmem *mem)
{
    pthread_once(&key_once, key_make);
    T.buffer_bytes = buffer_bytes < TRACE_MIN_BYTES ? TRACE_MIN_BYTES : buffer_bytes;
    T.mem = mem;
    pthread_mutex_lock(&wait_mu);
    stop_all = false;
    pthread_mutex_unlock(&wait_mu);
    if (metrics_register_collector(collect, NULL) != 0) return -ENOSPC;
    T.ready = true;
    return 0;
}

void trace_fini(void)
{
    if (!T.ready) return;
    trace_shutdown();
    metrics_unregister_collector(collect, NULL);
    T.ready = false;
}
