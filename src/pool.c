/* pool.c — worker threads, the bounded job queue, chunk helping and the deadline watchdog.
 *
 * One mutex guards the queue (jobq.c), the list of open parallel tasks, the per-worker `current`
 * job and the counters. It is held only for O(1) work (plus an O(queue) scan by the watchdog when
 * a deadline fires), never while a job or chunk runs. Idle workers sleep on cv_work; nothing spins.
 * A lock-free queue was not used: a submit is one uncontended lock round-trip (~50 ns) against
 * a job of ≥ several µs, and the condvar is needed for sleeping anyway. The chunk cursor of a
 * parallel task is the one lock-free structure: claimed once per chunk by any worker.
 *
 * Parked jobs (POOL_PARKED: a stream whose reader is slow) are on no list: the pool only counts
 * them, and pool_resume puts them on a second FIFO that is not bounded by the queue capacity
 * (a resume must not fail; it is bounded by the number of parked jobs, i.e. live streams, each
 * holding its share of the memory budget). A pool_resume that arrives while the parking run is
 * still returning sets resume_pending and run_job re-queues the job itself, so runs of one job
 * never overlap and no resume is lost.
 *
 * Per-client cap (pool_set_client_cap): the queue keeps one FIFO per client and a ring of the
 * clients under their cap (jobq.c), so taking the next eligible job is O(1) whatever the depth.
 * The pool tells it when a worker starts or stops being busy for a client (a job, resumed or
 * not, or a chunk); when that frees a capped client's slot, a sleeping worker is woken. Together
 * with a signal per submit of an eligible job, no worker sleeps while a job it may take waits.
 * (Replaced: a scan of the first 64 queued jobs, which left a worker idle behind 64 jobs of one
 * capped client while another client's job waited further back.)
 */
#include "primed/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobq.h"
#include "primed/assert.h"
#include "primed/metrics.h"
#include "primed/trace.h"

struct worker {
    struct pool *p;
    pthread_t tid;
    bool started;
    bool prefer_queue;        /* last job was a resumed one: take a queued one first (fairness) */
    void *local;              /* from init; used and freed on this worker's thread only */
    struct pool_job *current; /* the job being run, under p->mu (read by the watchdog) */
    struct pool_par *par;     /* current's open parallel task, under p->mu (/debug/requests) */
    struct pool_par *helping; /* the task this worker runs a chunk of, under p->mu */
    /* Metering: this thread's CPU clock (set by the thread itself before it takes work), and
     * the clock's reading when it began the metered run or chunk it is in now (`metering`: the
     * job it is for; NULL = none). Under p->mu, read by the watchdog. */
    clockid_t clock;
    struct pool_job *metering;
    uint64_t cpu0;
};

/* The worker the calling thread is (NULL on other threads): lets pool_parallel, which is given
 * only `local`, record its task on its worker for pool_workers_get and tag it with the running
 * job's client. Written once per thread. */
static _Thread_local struct worker *self;

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* workers: a job is queued, a task opened, or stopping */
    pthread_cond_t cv_par;  /* pool_parallel owners: a helper left their task */
    pthread_cond_t cv_wd;   /* watchdog: an earlier deadline appeared, or stopping */
    pthread_cond_t cv_init; /* pool_create: a worker finished its init */

    /* Everything below is under mu. */
    struct jobq *q; /* queued jobs, at most qcap */
    unsigned qcap;
    struct pool_job *rhead, *rtail; /* resumed jobs (pool_resume), FIFO, unbounded by qcap */
    unsigned rlen, nparked;
    uint64_t resumes;
    struct pool_par *pars; /* open parallel tasks, newest first */
    unsigned nworkers, busy;
    unsigned init_done, init_failed;
    bool stopping;       /* no more submits; workers exit once no job is queued or parked */
    bool wd_stop;        /* watchdog exits */
    uint64_t wd_next_ns; /* the watchdog's next wake-up (UINT64_MAX = none): submit signals
                            cv_wd only for an earlier deadline, so it does not wake per job */
    uint64_t jobs[POOL__OUTCOMES];

    pool_worker_init_fn init;
    pool_worker_fini_fn fini;
    void *arg;
    struct worker *w; /* [nworkers] */
    pthread_t wd;
    bool wd_started;
};

/* The label of what this thread runs (pool_current_label). Written only by the thread itself
 * (release), read by itself, also from a signal handler (acquire): no other thread touches it.
 * initial-exec: a thread-local of the executable, reached without __tls_get_addr (which may
 * allocate), so the handler's load is async-signal-safe. */
static _Thread_local _Atomic(const char *) cur_label __attribute__((tls_model("initial-exec")));

const char *pool_current_label(void)
{
    return atomic_load_explicit(&cur_label, memory_order_acquire);
}

uint64_t pool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t clock_ns(clockid_t c)
{
    struct timespec ts;
    if (clock_gettime(c, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t pool_job_cpu_ns(const struct pool_job *job)
{
    return atomic_load_explicit(&((struct pool_job *)job)->cpu_ns, memory_order_relaxed);
}

/* Worker w begins (job != NULL) or ends (NULL) a run or chunk of a metered job. mu held. A
 * begin makes sure the watchdog ticks (POOL_METER_TICK_MS) while metered work runs. */
static void meter_begin(struct pool *p, struct worker *w, struct pool_job *job)
{
    if (!w || !job || !job->metered) return;
    w->metering = job;
    w->cpu0 = clock_ns(w->clock);
    uint64_t tick = pool_now_ns() + POOL_METER_TICK_MS * 1000000ull;
    if (atomic_load_explicit(&job->cpu_limit_ns, memory_order_relaxed) && p->wd_next_ns > tick)
        pthread_cond_signal(&p->cv_wd);
}

static void meter_end(struct worker *w)
{
    if (!w || !w->metering) return;
    uint64_t now = clock_ns(w->clock);
    atomic_fetch_add_explicit(&w->metering->cpu_ns, now > w->cpu0 ? now - w->cpu0 : 0,
                              memory_order_relaxed);
    w->metering = NULL;
}

/* The watchdog's meter (mu held): a metered job whose CPU so far — what it has banked plus what
 * its workers have used since they began — passes its limit is cancelled. Returns whether any
 * limited metered work is running (the watchdog then ticks). O(workers²), workers ≤ 1024. */
static bool meter_check(struct pool *p)
{
    bool any = false;
    for (unsigned i = 0; i < p->nworkers; i++) {
        struct pool_job *j = p->w[i].metering;
        uint64_t limit = j ? atomic_load_explicit(&j->cpu_limit_ns, memory_order_relaxed) : 0;
        if (!limit || atomic_load_explicit(&j->cancel, memory_order_relaxed)) continue;
        bool first = true; /* count each job once: at its first worker */
        for (unsigned k = 0; k < i && first; k++)
            first = p->w[k].metering != j;
        if (!first) continue;
        any = true;
        uint64_t used = atomic_load_explicit(&j->cpu_ns, memory_order_relaxed);
        for (unsigned k = i; k < p->nworkers; k++)
            if (p->w[k].metering == j) {
                uint64_t now = clock_ns(p->w[k].clock);
                used += now > p->w[k].cpu0 ? now - p->w[k].cpu0 : 0;
            }
        if (used > limit) pool_job_cancel(j, POOL_CANCEL_PRICE);
    }
    return any;
}

bool pool_job_cancel(struct pool_job *job, enum pool_cancel reason)
{
    int expected = 0;
    return atomic_compare_exchange_strong_explicit(&job->cancel, &expected, (int)reason,
                                                   memory_order_release, memory_order_relaxed);
}

static void rlist_push(struct pool *p, struct pool_job *j)
{
    j->next = NULL;
    if (p->rtail)
        p->rtail->next = j;
    else
        p->rhead = j;
    p->rtail = j;
    p->rlen++;
    pthread_cond_signal(&p->cv_work);
}

static struct pool_job *rlist_pop(struct pool *p)
{
    struct pool_job *j = p->rhead;
    if (!j) return NULL;
    p->rhead = j->next;
    if (!p->rhead) p->rtail = NULL;
    j->next = NULL;
    p->rlen--;
    return j;
}

/* Claim and run one chunk of par. Returns false when no chunk was left to claim. */
static bool par_run_one(struct pool_par *par, void *local)
{
    if (atomic_load_explicit(&par->err, memory_order_acquire) != 0) return false;
    uint64_t c = atomic_fetch_add_explicit(&par->cursor, 1, memory_order_relaxed);
    if (c >= par->nchunks) return false;
    int r = par->fn(par->arg, c, local);
    atomic_fetch_add_explicit(&par->done, 1, memory_order_relaxed);
    if (r != 0) {
        int expected = 0;
        atomic_compare_exchange_strong_explicit(&par->err, &expected, r, memory_order_release,
                                                memory_order_relaxed);
    }
    return true;
}

static bool par_open(struct pool_par *par)
{
    return atomic_load_explicit(&par->err, memory_order_acquire) == 0 &&
           atomic_load_explicit(&par->cursor, memory_order_relaxed) < par->nchunks;
}

/* Run one job; called and returns with mu held. w is NULL on the watchdog (expired job). */
static void run_job(struct pool *p, struct worker *w, struct pool_job *job)
{
    /* A job runs on one thread at a time, and a parked job runs again only after pool_resume
     * took it off the parked count (parked cleared) and onto the resume list. */
    PRIMED_ASSERT(!job->running && !job->parked);
    job->running = true;
    if (w) {
        w->current = job;
        p->busy++;
        jobq_busy(p->q, job->qc, +1);
    }
    meter_begin(p, w, job);
    pthread_mutex_unlock(&p->mu);
    atomic_store_explicit(&cur_label, job->label, memory_order_release);
    enum pool_outcome o = job->run(job, w ? w->local : NULL);
    atomic_store_explicit(&cur_label, NULL, memory_order_release); /* before `done` frees it */
    pthread_mutex_lock(&p->mu);
    meter_end(w);
    if (w) {
        w->current = NULL;
        p->busy--;
        /* A queued job of this client may have waited for this slot: a sleeper may take it now
         * (this worker may have a `done` to call first). */
        if (jobq_busy(p->q, job->qc, -1)) pthread_cond_signal(&p->cv_work);
    }
    job->running = false;
    /* At most one resume per park: a second pool_resume while the first is pending would run
     * the job twice at once. Only a parking run may carry a pending resume. */
    PRIMED_ASSERT(o == POOL_PARKED || !job->resume_pending);
    if (o == POOL_PARKED) {
        /* Not finished and not done: forgotten until pool_resume, unless that came already. */
        if (job->resume_pending) {
            job->resume_pending = false;
            rlist_push(p, job);
        } else {
            job->parked = true;
            p->nparked++;
        }
        return;
    }
    if ((unsigned)o >= POOL__OUTCOMES) o = POOL_DONE;
    p->jobs[o]++;
    jobq_release(p->q, job);
    pthread_mutex_unlock(&p->mu);
    /* The pool holds no pointer to the job any more: its owner may free it now. */
    if (job->done) job->done(job);
    pthread_mutex_lock(&p->mu);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct pool *p = w->p;
    /* Thread names (15 chars at most) are how thread dumps and `top -H` tell threads apart;
     * "primed-wrk-N" fits up to 99999 workers in one format. */
    char name[16];
    snprintf(name, sizeof name, "primed-wrk-%u", (unsigned)(w - p->w));
    pthread_setname_np(pthread_self(), name);
    trace_thread_name(name);
    void *local = p->init ? p->init(p->arg) : NULL;
    bool failed = p->init && !local;
    self = w;
    clockid_t clock = CLOCK_THREAD_CPUTIME_ID;
    pthread_getcpuclockid(pthread_self(), &clock); /* readable from the watchdog too */

    pthread_mutex_lock(&p->mu);
    w->local = local;
    w->clock = clock;
    p->init_done++;
    p->init_failed += failed;
    pthread_cond_broadcast(&p->cv_init);
    if (failed) {
        pthread_mutex_unlock(&p->mu);
        return NULL;
    }
    for (;;) {
        /* Resumed streams first (a reader is waiting on them and each run is short: it fills
         * the free half of one stream buffer), but never twice in a row while a queued job may
         * be taken. */
        struct pool_job *job = w->prefer_queue ? jobq_pop(p->q) : NULL;
        bool resumed = false;
        if (!job) resumed = (job = rlist_pop(p)) != NULL;
        if (!job) job = jobq_pop(p->q);
        if (job) { /* queued jobs before chunks: fairness towards small requests */
            w->prefer_queue = resumed;
            run_job(p, w, job);
            continue;
        }
        struct pool_par *par = p->pars;
        while (par && (!par_open(par) || jobq_at_cap(p->q, par->qc)))
            par = par->next;
        if (par) {
            /* One chunk, then back to the queue check. helpers > 0 keeps `par` alive: its owner
             * waits for helpers == 0 before returning from pool_parallel. */
            par->helpers++;
            p->busy++;
            jobq_busy(p->q, par->qc, +1);
            w->helping = par;
            meter_begin(p, w, (struct pool_job *)par->owner); /* the owner outlives the chunk */
            pthread_mutex_unlock(&p->mu);
            atomic_store_explicit(&cur_label, par->label, memory_order_release);
            par_run_one(par, local);
            atomic_store_explicit(&cur_label, NULL, memory_order_release); /* par may end */
            pthread_mutex_lock(&p->mu);
            meter_end(w);
            w->helping = NULL;
            p->busy--;
            if (jobq_busy(p->q, par->qc, -1)) pthread_cond_signal(&p->cv_work);
            if (--par->helpers == 0) pthread_cond_broadcast(&p->cv_par);
            continue;
        }
        if (p->stopping && p->nparked == 0 && jobq_len(p->q) == 0) {
            pthread_cond_broadcast(&p->cv_work); /* the others may be waiting for the last park */
            break;
        }
        pthread_cond_wait(&p->cv_work, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    if (p->fini) p->fini(p->arg, local);
    return NULL;
}

static void *watchdog_main(void *arg)
{
    struct pool *p = arg;
    pthread_setname_np(pthread_self(), "primed-watchdog");
    trace_thread_name("primed-watchdog");
    pthread_mutex_lock(&p->mu);
    while (!p->wd_stop) {
        uint64_t now = pool_now_ns(), next = UINT64_MAX;
        for (unsigned i = 0; i < p->nworkers; i++) {
            struct pool_job *j = p->w[i].current;
            if (!j || !j->deadline_ns) continue;
            if (j->deadline_ns <= now) {
                pool_job_cancel(j, POOL_CANCEL_DEADLINE);
                j->deadline_ns = 0;
            } else if (j->deadline_ns < next) {
                next = j->deadline_ns;
            }
        }
        /* Queued jobs past their deadline are answered here and now (run with local == NULL),
         * not when a worker frees up. */
        struct pool_job *expired = jobq_take_expired(p->q, now, &next);
        if (expired) {
            while (expired) {
                struct pool_job *j = expired;
                expired = j->next;
                j->next = NULL;
                pool_job_cancel(j, POOL_CANCEL_DEADLINE);
                run_job(p, NULL, j);
            }
            continue; /* rescan: time passed while running them */
        }
        if (meter_check(p)) {
            uint64_t tick = now + POOL_METER_TICK_MS * 1000000ull;
            if (tick < next) next = tick;
        }
        p->wd_next_ns = next;
        if (next == UINT64_MAX) {
            pthread_cond_wait(&p->cv_wd, &p->mu);
        } else {
            struct timespec ts = {.tv_sec = (time_t)(next / 1000000000u),
                                  .tv_nsec = (long)(next % 1000000000u)};
            pthread_cond_timedwait(&p->cv_wd, &p->mu, &ts);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* The pool's own metrics, pulled at each scrape (registered by pool_create for the pool's
 * lifetime). One pool_stats_get: one cut under the pool lock. Lock order: the metrics registry's
 * lock, then p->mu; the pool never calls into metrics with p->mu held. */
static void collect(void *arg, struct metrics_writer *w)
{
    struct pool_stats ps;
    pool_stats_get(arg, &ps);
    metrics_write_one(w, "primed_workers", "gauge", "Worker threads.", ps.workers);
    metrics_write_one(w, "primed_workers_busy", "gauge", "Workers running a job or a chunk.",
                      ps.busy);
    metrics_write_one(w, "primed_queue_depth", "gauge", "Jobs waiting for a worker.",
                      ps.queue_depth);
    metrics_write_one(w, "primed_queue_capacity", "gauge", "Job queue bound.", ps.queue_capacity);
    metrics_write_family(w, "primed_jobs_total", "counter", "Jobs by outcome.");
    static const char *const names[POOL__OUTCOMES] = {
        "outcome=\"done\"", "outcome=\"rejected\"", "outcome=\"cancelled\"", "outcome=\"timeout\""};
    for (int i = 0; i < POOL__OUTCOMES; i++)
        metrics_write_sample_u64(w, "primed_jobs_total", names[i], ps.jobs[i]);
    metrics_write_one(w, "primed_stream_producers_parked", "gauge",
                      "Streams whose producer gave its worker back: their buffer is full.",
                      ps.parked);
    metrics_write_one(w, "primed_stream_resumes_total", "counter",
                      "Parked stream producers resumed (reader freed space, or cancel).",
                      ps.resumes);
    metrics_write_one(w, "primed_stream_resume_queue_depth", "gauge",
                      "Resumed stream producers waiting for a worker.", ps.resume_depth);
    metrics_write_one(w, "primed_pool_fair_skips_total", "counter",
                      "Clients with jobs queued passed over, at each job taken, because "
                      "max_inflight_per_client workers were busy for them.",
                      ps.fair_skips);
}

struct pool *pool_create(unsigned workers, unsigned queue_capacity, pool_worker_init_fn init,
                         pool_worker_fini_fn fini, void *arg)
{
    if (workers == 0 || queue_capacity == 0) {
        errno = EINVAL;
        return NULL;
    }
    struct pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->w = calloc(workers, sizeof *p->w);
    /* Client records: one per client with a queued (≤ qcap) or running (≤ workers) job, plus
     * parked ones; the hint sizes the hash table. */
    p->q = jobq_create(queue_capacity + workers);
    if (!p->w || !p->q) {
        jobq_destroy(p->q);
        free(p->w);
        free(p);
        errno = ENOMEM;
        return NULL;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_par, NULL);
    pthread_cond_init(&p->cv_wd, &ca);
    pthread_cond_init(&p->cv_init, NULL);
    pthread_condattr_destroy(&ca);
    p->qcap = queue_capacity;
    p->init = init;
    p->fini = fini;
    p->arg = arg;
    p->wd_next_ns = UINT64_MAX;

    unsigned started = 0;
    for (unsigned i = 0; i < workers; i++) {
        p->w[i].p = p;
        if (pthread_create(&p->w[i].tid, NULL, worker_main, &p->w[i]) != 0) break;
        p->w[i].started = true;
        started++;
    }
    pthread_mutex_lock(&p->mu);
    p->nworkers = started; /* the watchdog is not running yet: nobody reads it concurrently */
    while (p->init_done < started)
        pthread_cond_wait(&p->cv_init, &p->mu);
    bool ok = started == workers && p->init_failed == 0;
    pthread_mutex_unlock(&p->mu);
    if (ok && pthread_create(&p->wd, NULL, watchdog_main, p) == 0) p->wd_started = true;
    if (ok && p->wd_started && metrics_register_collector(collect, p) != 0) ok = false;
    if (!ok || !p->wd_started) {
        pool_destroy(p);
        errno = ENOMEM;
        return NULL;
    }
    return p;
}

void pool_destroy(struct pool *p)
{
    if (!p) return;
    /* First: once this returns no scrape is reading the pool (a no-op if never registered). */
    metrics_unregister_collector(collect, p);
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nworkers; i++)
        if (p->w[i].started) pthread_join(p->w[i].tid, NULL);
    pthread_mutex_lock(&p->mu);
    p->wd_stop = true;
    pthread_cond_broadcast(&p->cv_wd);
    pthread_mutex_unlock(&p->mu);
    if (p->wd_started) pthread_join(p->wd, NULL);
    pthread_cond_destroy(&p->cv_init);
    pthread_cond_destroy(&p->cv_wd);
    pthread_cond_destroy(&p->cv_par);
    pthread_cond_destroy(&p->cv_work);
    pthread_mutex_destroy(&p->mu);
    jobq_destroy(p->q);
    free(p->w);
    free(p);
}

int pool_submit(struct pool *p, struct pool_job *job)
{
    job->next = NULL;
    job->running = job->parked = job->resume_pending = false;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        return -ESHUTDOWN;
    }
    int rc = jobq_len(p->q) >= p->qcap ? -EAGAIN : jobq_push(p->q, job);
    if (rc < 0) {
        p->jobs[POOL_REJECTED]++;
        pthread_mutex_unlock(&p->mu);
        return rc;
    }
    /* One wake-up per job a worker may take now; a job whose client is at its cap gets its
     * wake-up when a slot frees (run_job). */
    if (rc > 0) pthread_cond_signal(&p->cv_work);
    if (job->deadline_ns && job->deadline_ns < p->wd_next_ns) {
        p->wd_next_ns = job->deadline_ns;
        pthread_cond_signal(&p->cv_wd);
    }
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void pool_set_client_cap(struct pool *p, unsigned cap)
{
    pthread_mutex_lock(&p->mu);
    jobq_set_cap(p->q, cap);
    pthread_mutex_unlock(&p->mu);
}

void pool_resume(struct pool *p, struct pool_job *job)
{
    pthread_mutex_lock(&p->mu);
    p->resumes++;
    /* Resume answers exactly one park: the job is parked (returned POOL_PARKED) or still inside
     * the run that is parking it, and no other resume is pending. A resume of a job that is
     * queued, on the resume list already or finished would run it twice or after `done`. */
    PRIMED_ASSERT(job->parked ? !job->running : job->running && !job->resume_pending);
    if (job->parked) {
        job->parked = false;
        p->nparked--;
        rlist_push(p, job);
    } else {
        job->resume_pending = true; /* still inside run: run_job re-queues it */
    }
    pthread_mutex_unlock(&p->mu);
}

void pool_job_clear_deadline(struct pool *p, struct pool_job *job)
{
    pthread_mutex_lock(&p->mu);
    job->deadline_ns = 0;
    pthread_mutex_unlock(&p->mu);
}

void pool_cancel_all(struct pool *p, enum pool_cancel reason)
{
    pthread_mutex_lock(&p->mu);
    jobq_cancel_all(p->q, reason);
    for (struct pool_job *j = p->rhead; j; j = j->next)
        pool_job_cancel(j, reason);
    for (unsigned i = 0; i < p->nworkers; i++)
        if (p->w[i].current) pool_job_cancel(p->w[i].current, reason);
    pthread_mutex_unlock(&p->mu);
}

unsigned pool_cancel_queued(struct pool *p, enum pool_cancel reason)
{
    unsigned n = 0;
    pthread_mutex_lock(&p->mu);
    struct pool_job *list = jobq_take_all(p->q);
    while (list) {
        struct pool_job *j = list;
        list = j->next;
        j->next = NULL;
        pool_job_cancel(j, reason);
        run_job(p, NULL, j); /* answers its cancellation at once; `done` outside the lock */
        n++;
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}

int pool_parallel(struct pool *p, struct pool_par *par, void *local)
{
    atomic_store_explicit(&par->cursor, 0, memory_order_relaxed);
    atomic_store_explicit(&par->err, 0, memory_order_relaxed);
    atomic_store_explicit(&par->done, 0, memory_order_relaxed);
    par->helpers = 0;
    par->owner = NULL;
    par->label = pool_current_label(); /* helpers wear the owner's label */
    bool shared = par->nchunks > 1 && p->nworkers > 1;
    par->qc = NULL;
    /* On a worker (the normal case; tests may call from elsewhere), show the task's progress on
     * its job: one more lock round-trip per task, against tasks of many sieve segments. */
    struct worker *me = self && self->p == p ? self : NULL;
    if (me) {
        pthread_mutex_lock(&p->mu);
        me->par = par;
        par->owner = me->current;
        pthread_mutex_unlock(&p->mu);
    }
    if (shared) {
        pthread_mutex_lock(&p->mu);
        /* w->current is written by this very thread (run_job): no race. */
        if (me && me->current) par->qc = me->current->qc;
        par->next = p->pars;
        p->pars = par;
        pthread_cond_broadcast(&p->cv_work);
        pthread_mutex_unlock(&p->mu);
    }
    while (par_run_one(par, local)) {
    }
    if (shared) {
        /* Unlist first so no new helper enters, then wait for those inside a chunk. */
        pthread_mutex_lock(&p->mu);
        for (struct pool_par **pp = &p->pars; *pp; pp = &(*pp)->next) {
            if (*pp == par) {
                *pp = par->next;
                break;
            }
        }
        while (par->helpers > 0)
            pthread_cond_wait(&p->cv_par, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
    if (me) {
        pthread_mutex_lock(&p->mu);
        me->par = NULL;
        pthread_mutex_unlock(&p->mu);
    }
    return atomic_load_explicit(&par->err, memory_order_acquire);
}

/* Called with mu held. */
static void stats_locked(struct pool *p, struct pool_stats *out)
{
    out->workers = p->nworkers;
    out->busy = p->busy;
    out->queue_depth = jobq_len(p->q);
    out->queue_capacity = p->qcap;
    out->parked = p->nparked;
    out->resume_depth = p->rlen;
    out->resumes = p->resumes;
    out->fair_skips = jobq_skips(p->q);
    memcpy(out->jobs, p->jobs, sizeof out->jobs);
}

void pool_stats_get(struct pool *p, struct pool_stats *out)
{
    pthread_mutex_lock(&p->mu);
    stats_locked(p, out);
    pthread_mutex_unlock(&p->mu);
}

unsigned pool_workers_get(struct pool *p, struct pool_worker_info *out, unsigned cap,
                          struct pool_stats *stats)
{
    pthread_mutex_lock(&p->mu);
    if (stats) stats_locked(p, stats);
    unsigned n = p->nworkers < cap ? p->nworkers : cap;
    for (unsigned i = 0; i < n; i++) {
        const struct worker *w = &p->w[i];
        /* A listed task is alive: its owner unlists it under mu before returning. */
        const struct pool_par *par = w->current ? w->par : w->helping;
        out[i] = (struct pool_worker_info){
            .state = w->current   ? POOL_WORKER_RUNNING
                     : w->helping ? POOL_WORKER_HELPING
                                  : POOL_WORKER_IDLE,
            .job = w->current   ? w->current
                   : w->helping ? w->helping->owner
                                : NULL,
            .chunks_done = par ? atomic_load_explicit(&par->done, memory_order_relaxed) : 0,
            .chunks_total = par ? par->nchunks : 0,
        };
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}
