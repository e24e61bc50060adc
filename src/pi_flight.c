/* pi_flight.c — π(x) for the ops (pi, count's π path, nth's estimate): the cache first, then one
 * shared computation per x, by the engine or from a cached neighbour.
 *
 *   1. A cached π(x) (picache.h) is the answer.
 *   2. Otherwise the cheaper way by the engine's cost model (pi_cost_seconds vs
 *      pi_sieve_cost_seconds, one worker's CPU either way): a fresh π(x) (the engine's plan), or
 *      the nearest cached x0 on either side and a sieve of the gap, π(x) = π(x0) ± #primes in
 *      (x0, x] or (x, x0]. Near 1e15 a gap of 1e9 is ~0.6 s of sieving against ~3 s of π
 *      (the break-even is ~5e9 there, ~6e10 near 1e17).
 *   3. Single-flight: the computation is a "flight" in a registry keyed by x. A request that finds
 *      one in flight joins it instead of starting its own. Every request in a flight takes part:
 *      the work is cut into chunks (the plan's chunks, or pieces of the gap) and each participant
 *      claims and runs chunks on its own worker, with idle workers helping it (pool_parallel),
 *      until none is left; then it waits (polling its own cancel every WAIT_POLL_MS) for the
 *      chunks others are running. Whoever completes the last chunk sums the result, puts it in
 *      the cache and wakes the rest.
 *
 * Cancellation stays per request. A participant runs its chunks (and its helpers run theirs) with
 * its own cancel, so when its client leaves or its deadline passes its chunks stop within the
 * engine's poll (milliseconds), go back to pending, and it answers its own 503/504 at once; the
 * remaining participants pick the chunks up and the work continues for them. When the last one
 * leaves, nobody runs a chunk any more: the work has stopped, and the flight is freed with its
 * tables. So no thread watches cancels on anyone's behalf, and no computation outlives everyone
 * who asked for it. The price: a chunk interrupted by its runner's cancel is run again from its
 * start by someone else (a plan has ~16 chunks per worker, so at most ~1/16 of a worker's share).
 * Requests still queued for a worker are not participants yet; they find the answer in the cache
 * (or the flight, or start over) when they run.
 *
 * Rejected: a leader that computes while the others sleep — each sleeping waiter holds a worker
 * that could be running chunks (8 requests on 2 workers: the computation would get 1 of them),
 * and the leader's own deadline or hang-up would have to either stop everyone's work or be
 * answered late; a watcher thread that stops a computation once every waiter's cancel is set —
 * per-participant cancels make it unnecessary.
 *
 * Locks: reg_mu (the registry, refs) and each flight's mu (its state and chunks) are never held
 * together; the only nesting is reg_mu → a cache shard's lock (the second look in flight_join).
 * No lock is held while a plan is built or a chunk runs.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_op.h"
#include "primed/metrics.h"
#include "primed/pi.h"
#include "primed/picache.h"
#include "primed/trace.h"

#define WAIT_POLL_MS 10
#define GAP_MAX_CHUNKS 4096u

enum fl_kind { FK_ENGINE, FK_GAP };
enum fl_state {
    FS_NEW,      /* no plan yet: the next participant builds it */
    FS_BUILDING, /* a participant is building the plan */
    FS_READY,    /* chunks to run */
    FS_DONE,     /* result set */
    FS_FAILED,   /* err set */
};
enum { CS_PENDING = 0, CS_RUNNING, CS_DONE };

struct flight {
    uint64_t x;
    /* Under reg_mu. */
    struct flight *next;
    unsigned refs; /* participants that have not left */
    bool linked;   /* in the registry (new requests may join) */

    /* Set at creation, read-only after. FK_GAP: π(x) = base_pi + count (up) or − count (down),
     * count = the primes of [lo, hi] in chunks of `width` numbers. */
    enum fl_kind kind;
    uint64_t base_pi, lo, hi, width;
    bool down;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC; state changes and chunks given back */
    /* Under mu. */
    enum fl_state state;
    int err;
    uint64_t result;
    pi_plan *plan; /* FK_ENGINE, from FS_READY until the result is taken (or the flight freed) */
    uint64_t nchunks, ndone;
    uint64_t scan; /* no pending chunk below this index */
    uint8_t *cst;  /* [nchunks] CS_* */
    uint64_t gap_count;
};

/* The registry: flights are few (each has a participant on a worker), so a list. */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct flight *reg_head;
static unsigned reg_len;

/* Counters for /metrics (relaxed). */
static atomic_uint_fast64_t n_engine, n_gap, n_joined, n_walks;

static bool cancelled(const atomic_int *cancel)
{
    return cancel && atomic_load_explicit(cancel, memory_order_acquire) != 0;
}

/* ---- the method ------------------------------------------------------------------------------ */

struct method {
    enum fl_kind kind;
    double seconds; /* one worker's CPU by the cost model */
    uint64_t base_pi, lo, hi;
    bool down;
};

/* The cheaper way to π(x) given the cache's neighbours of x (not x itself). */
static void choose(const struct api_ctx *ctx, uint64_t x, struct method *m)
{
    *m = (struct method){.kind = FK_ENGINE, .seconds = pi_cost_seconds(x)};
    if (!ctx->pic) return;
    struct picache_point below, above;
    picache_near_x(ctx->pic, x, &below, &above);
    if (below.ok) {
        double s = pi_sieve_cost_seconds(below.x + 1, x);
        if (s < m->seconds) *m = (struct method){FK_GAP, s, below.pi, below.x + 1, x, false};
    }
    if (above.ok) {
        double s = pi_sieve_cost_seconds(x + 1, above.x);
        if (s < m->seconds) *m = (struct method){FK_GAP, s, above.pi, x + 1, above.x, true};
    }
}

double api_pi_cost_seconds(const struct api_ctx *ctx, uint64_t x)
{
    uint64_t pi;
    if (!ctx) return pi_cost_seconds(x);
    if (picache_peek(ctx->pic, x, &pi)) return 0;
    struct method m;
    choose(ctx, x, &m);
    return m.seconds;
}

/* ---- flights --------------------------------------------------------------------------------- */

static struct flight *flight_new(uint64_t x, const struct method *m)
{
    struct flight *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->x = x;
    f->kind = m->kind;
    f->state = FS_NEW;
    if (m->kind == FK_GAP) {
        uint64_t span = m->hi - m->lo; /* numbers − 1; lo ≥ 1, so no overflow below */
        uint64_t w = sieve_chunk_width(m->lo, m->hi);
        if (w == 0 || w > span) w = span + 1;
        if (span / w + 1 > GAP_MAX_CHUNKS) w = span / GAP_MAX_CHUNKS + 1;
        f->base_pi = m->base_pi;
        f->lo = m->lo;
        f->hi = m->hi;
        f->down = m->down;
        f->width = w;
        f->nchunks = span / w + 1;
        f->cst = calloc(f->nchunks, 1);
        if (!f->cst) {
            free(f);
            return NULL;
        }
        f->state = FS_READY;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    return f;
}

static void flight_free(struct flight *f)
{
    pi_plan_destroy(f->plan);
    free(f->cst);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static void unlink_locked(struct flight *f)
{
    if (!f->linked) return;
    for (struct flight **pp = &reg_head; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    f->linked = false;
    reg_len--;
}

/* No new request may join f (it has its answer, or failed). */
static void flight_unlink(struct flight *f)
{
    pthread_mutex_lock(&reg_mu);
    unlink_locked(f);
    pthread_mutex_unlock(&reg_mu);
}

/* A participant leaves: the last one frees the flight (unlinking it if it still was). */
static void flight_leave(struct flight *f)
{
    pthread_mutex_lock(&reg_mu);
    bool last = --f->refs == 0;
    if (last) unlink_locked(f);
    pthread_mutex_unlock(&reg_mu);
    if (last) flight_free(f);
}

/* Join the flight for x, or start one. Returns 0 with *fp, 1 with *out when the answer reached
 * the cache meanwhile, or -ENOMEM. */
static int flight_join(const struct api_ctx *ctx, uint64_t x, struct flight **fp, uint64_t *out)
{
    struct method m;
    choose(ctx, x, &m);
    struct flight *mine = NULL;
    for (;;) {
        pthread_mutex_lock(&reg_mu);
        for (struct flight *f = reg_head; f; f = f->next)
            if (f->x == x) {
                f->refs++;
                pthread_mutex_unlock(&reg_mu);
                if (mine) flight_free(mine);
                atomic_fetch_add_explicit(&n_joined, 1, memory_order_relaxed);
                *fp = f;
                return 0;
            }
        /* A flight puts its answer in the cache before it leaves the registry: look again. */
        if (picache_peek(ctx->pic, x, out)) {
            pthread_mutex_unlock(&reg_mu);
            if (mine) flight_free(mine);
            return 1;
        }
        if (mine) {
            mine->refs = 1;
            mine->linked = true;
            mine->next = reg_head;
            reg_head = mine;
            reg_len++;
            pthread_mutex_unlock(&reg_mu);
            atomic_fetch_add_explicit(m.kind == FK_GAP ? &n_gap : &n_engine, 1,
                                      memory_order_relaxed);
            *fp = mine;
            return 0;
        }
        pthread_mutex_unlock(&reg_mu);
        /* Allocated without the registry lock; the registry is looked at again after. */
        if (!(mine = flight_new(x, &m))) return -ENOMEM;
    }
}

/* ---- chunks ---------------------------------------------------------------------------------- */

/* The answer is complete (the caller ran the last chunk, so no chunk runs any more): sum it,
 * publish it — into the cache, out of the registry, then to the participants — and free the
 * plan. In that order, so that a request arriving meanwhile finds the answer in the cache rather
 * than joining a flight that has ended. */
static void flight_complete(const struct api_ctx *ctx, struct flight *f)
{
    uint64_t r = 0;
    int rc = 0;
    pthread_mutex_lock(&f->mu);
    if (f->kind == FK_ENGINE)
        rc = pi_plan_result(f->plan, &r);
    else
        r = f->down ? f->base_pi - f->gap_count : f->base_pi + f->gap_count;
    pthread_mutex_unlock(&f->mu);
    if (rc == 0) picache_put(ctx->pic, f->x, r);
    flight_unlink(f);
    pthread_mutex_lock(&f->mu);
    if (rc == 0) {
        f->state = FS_DONE;
        f->result = r;
    } else {
        f->state = FS_FAILED;
        f->err = rc;
    }
    /* Its tables go back to the π budget now, not when the last participant leaves. */
    pi_plan *plan = f->plan;
    f->plan = NULL;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pi_plan_destroy(plan);
}

/* Claim one pending chunk and run it with `cancel` on worker w. Returns 1 (ran it), 0 (nothing
 * to claim) or the chunk's error (-ECANCELED: given back as pending). */
static int run_one(const struct api_ctx *ctx, struct flight *f, struct api_worker *w,
                   const atomic_int *cancel)
{
    pthread_mutex_lock(&f->mu);
    uint64_t i = f->scan;
    if (f->state == FS_READY)
        while (i < f->nchunks && f->cst[i] != CS_PENDING)
            i++;
    if (f->state != FS_READY || i >= f->nchunks) {
        pthread_mutex_unlock(&f->mu);
        return 0;
    }
    f->cst[i] = CS_RUNNING;
    f->scan = i + 1;
    pthread_mutex_unlock(&f->mu);

    int rc;
    uint64_t n = 0;
    uint64_t t0 = trace_on() ? trace_now_ns() : 0; /* a span per chunk during a capture */
    if (f->kind == FK_ENGINE) {
        rc = pi_run_chunk(f->plan, i, cancel); /* plan is not freed while a chunk runs */
        if (t0) api_trace_work("π chunk", (int64_t)i, t0);
    } else {
        uint64_t clo = f->lo + i * f->width;
        uint64_t chi = f->hi - clo < f->width ? f->hi : clo + f->width - 1;
        rc = sieve_count(w->sieve, clo, chi, &n, cancel);
        if (t0) api_trace_work("sieve chunk", (int64_t)i, t0);
    }

    bool last = false, failed = false;
    pthread_mutex_lock(&f->mu);
    if (rc == 0) {
        f->cst[i] = CS_DONE;
        f->gap_count += n;
        last = ++f->ndone == f->nchunks;
    } else if (rc == -ECANCELED) {
        f->cst[i] = CS_PENDING; /* someone else's now */
        if (i < f->scan) f->scan = i;
        pthread_cond_broadcast(&f->cv);
    } else if (f->state == FS_READY) {
        f->state = FS_FAILED;
        f->err = rc;
        failed = true;
        pthread_cond_broadcast(&f->cv);
    }
    pthread_mutex_unlock(&f->mu);
    if (last) flight_complete(ctx, f);
    if (failed) flight_unlink(f);
    return rc == 0 ? 1 : rc;
}

/* A participant's chunks spread over idle workers: each call claims whichever chunk is pending
 * (not chunk c: other participants claim from the same flight), with the participant's cancel. */
struct fl_par {
    struct pool_par par;
    const struct api_ctx *ctx;
    struct flight *f;
    const atomic_int *cancel;
};

static int fl_chunk(void *arg, uint64_t c, void *local)
{
    (void)c;
    struct fl_par *fp = arg;
    int rc = run_one(fp->ctx, fp->f, local, fp->cancel);
    return rc < 0 ? rc : 0;
}

static void run_chunks(const struct api_ctx *ctx, struct api_worker *w, struct flight *f,
                       uint64_t pending, const atomic_int *cancel)
{
    if (ctx->pool && pending > 1) {
        struct fl_par fp = {
            .par = {.fn = fl_chunk, .nchunks = pending}, .ctx = ctx, .f = f, .cancel = cancel};
        fp.par.arg = &fp;
        pool_parallel(ctx->pool, &fp.par, w);
        return;
    }
    while (run_one(ctx, f, w, cancel) == 1) {
    }
}

/* Build the plan (f->mu held on entry and return; released while building). */
static void build_plan(const struct api_ctx *ctx, struct flight *f, const atomic_int *cancel)
{
    f->state = FS_BUILDING;
    pthread_mutex_unlock(&f->mu);
    struct pi_opts opts = {.threads = ctx->pool ? ctx->cfg->workers : 1};
    pi_plan *plan = NULL;
    uint64_t t0 = trace_on() ? trace_now_ns() : 0;
    int rc = pi_plan_create(f->x, &opts, &plan, cancel);
    if (t0) api_trace_work("π plan", -1, t0);
    uint64_t n = rc == 0 ? pi_plan_chunks(plan) : 0;
    uint8_t *cst = rc == 0 ? calloc(n ? n : 1, 1) : NULL;
    if (rc == 0 && !cst) rc = -ENOMEM;
    pthread_mutex_lock(&f->mu);
    if (rc == 0) {
        f->plan = plan;
        f->cst = cst;
        f->nchunks = n;
        f->state = FS_READY;
    } else {
        pi_plan_destroy(plan);
        /* Cancelled: this participant is leaving; the next one builds it. */
        f->state = rc == -ECANCELED ? FS_NEW : FS_FAILED;
        if (rc != -ECANCELED) f->err = rc;
    }
    pthread_cond_broadcast(&f->cv);
}

/* Take part in f until it has an answer or this request's cancel is set. */
static int participate(const struct api_ctx *ctx, struct api_worker *w, struct flight *f,
                       uint64_t *out, const atomic_int *cancel)
{
    int rc;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        if (f->state == FS_DONE) {
            *out = f->result;
            rc = 0;
            break;
        }
        if (f->state == FS_FAILED) {
            rc = f->err;
            break;
        }
        if (cancelled(cancel)) {
            rc = -ECANCELED;
            break;
        }
        if (f->state == FS_NEW) {
            build_plan(ctx, f, cancel);
            if (f->state == FS_FAILED) {
                pthread_mutex_unlock(&f->mu);
                flight_unlink(f);
                pthread_mutex_lock(&f->mu);
            } else if (f->state == FS_READY && f->nchunks == 0) {
                pthread_mutex_unlock(&f->mu);
                flight_complete(ctx, f); /* a small x: the plan holds the answer */
                pthread_mutex_lock(&f->mu);
            }
            continue;
        }
        uint64_t pending = 0;
        if (f->state == FS_READY)
            for (uint64_t i = f->scan; i < f->nchunks; i++)
                pending += f->cst[i] == CS_PENDING;
        if (pending > 0) {
            pthread_mutex_unlock(&f->mu);
            run_chunks(ctx, w, f, pending, cancel);
            pthread_mutex_lock(&f->mu);
            continue;
        }
        /* Built or run by others: wait for them (or a chunk given back), watching our cancel. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += WAIT_POLL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&f->cv, &f->mu, &ts);
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

int api_pi(const struct api_ctx *ctx, struct api_worker *w, uint64_t x, uint64_t *out,
           const atomic_int *cancel)
{
    if (picache_get(ctx->pic, x, out)) return 0;
    struct flight *f = NULL;
    int rc = flight_join(ctx, x, &f, out);
    if (rc != 0) return rc > 0 ? 0 : rc;
    rc = participate(ctx, w, f, out, cancel);
    flight_leave(f);
    return rc;
}

/* ---- nth from a cached point ----------------------------------------------------------------- */

/* Numbers to sieve from a point to meet `need` more primes near x (sieve_nth_finish's step). */
static double walk_width(uint64_t need, uint64_t x)
{
    return (double)need * log((double)x + 16) * 1.1 + 10000;
}

int api_nth_walk(const struct api_ctx *ctx, struct api_worker *w, uint64_t k, double budget_s,
                 uint64_t *prime, const atomic_int *cancel)
{
    if (!ctx->pic) return 1;
    struct picache_point below, above;
    picache_near_pi(ctx->pic, k, &below, &above);
    const struct picache_point *from = NULL;
    double best = budget_s;
    if (below.ok) { /* forward from below.x: k − π(below.x) primes */
        double wd = walk_width(k - below.pi, below.x);
        double hi = (double)below.x + wd;
        double s = pi_sieve_cost_seconds(below.x + 1, hi >= 1.8e19 ? UINT64_MAX : (uint64_t)hi);
        if (s < best) {
            best = s;
            from = &below;
        }
    }
    if (above.ok) { /* backward from above.x: π(above.x) − k + 1 primes */
        double wd = walk_width(above.pi - k + 1, above.x);
        uint64_t lo = (double)above.x > wd ? above.x - (uint64_t)wd : 0;
        double s = pi_sieve_cost_seconds(lo, above.x);
        if (s < best) {
            best = s;
            from = &above;
        }
    }
    if (!from) return 1;
    atomic_fetch_add_explicit(&n_walks, 1, memory_order_relaxed);
    return sieve_nth_finish(w->sieve, from->x, from->pi, k, prime, cancel);
}

/* ---- metrics --------------------------------------------------------------------------------- */

void api_pi_stats_get(struct api_pi_stats *out)
{
    pthread_mutex_lock(&reg_mu);
    out->inflight = reg_len;
    pthread_mutex_unlock(&reg_mu);
    out->engine = atomic_load_explicit(&n_engine, memory_order_relaxed);
    out->gap = atomic_load_explicit(&n_gap, memory_order_relaxed);
    out->joined = atomic_load_explicit(&n_joined, memory_order_relaxed);
    out->walks = atomic_load_explicit(&n_walks, memory_order_relaxed);
}

void api_pi_collect(void *arg, struct metrics_writer *mw)
{
    (void)arg;
    struct api_pi_stats st;
    api_pi_stats_get(&st);
    unsigned inflight = st.inflight;
    metrics_write_one(mw, "primed_pi_inflight", "gauge",
                      "pi(x) computations in flight that requests may join.", inflight);
    metrics_write_family(mw, "primed_pi_computations_total", "counter",
                         "pi(x) computations started, by method: the engine's pi(x), or a cached "
                         "neighbour's pi plus a sieve of the gap.");
    metrics_write_sample_u64(mw, "primed_pi_computations_total", "method=\"engine\"", st.engine);
    metrics_write_sample_u64(mw, "primed_pi_computations_total", "method=\"gap\"", st.gap);
    metrics_write_one(mw, "primed_pi_singleflight_joins_total", "counter",
                      "Requests that joined a pi(x) computation already in flight instead of "
                      "starting their own.",
                      st.joined);
    metrics_write_one(mw, "primed_nth_walks_total", "counter",
                      "nth answers sieved from a cached (x, pi(x)) instead of from a fresh "
                      "estimate's pi(x).",
                      st.walks);
}
