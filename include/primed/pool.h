/* pool.h — the worker threads that do every computation primed serves.
 *
 * A fixed set of pthreads takes jobs from one bounded queue (FIFO; with a per-client cap, one FIFO
 * per client served in turn). Submitting never blocks: a full queue is an immediate -EAGAIN (the
 * caller answers 503), so the I/O threads never wait on computation. A running job may split itself
 * into chunks (pool_parallel) that idle workers help with; a queued job is always taken before an
 * idle worker helps, so one huge request cannot starve small ones. A watchdog cancels jobs past
 * their deadline. The pool knows nothing of HTTP, JSON or the sieve: per-worker state (e.g. a sieve
 * context) comes from the caller's worker_init callback.
 */
#ifndef PRIMED_POOL_H
#define PRIMED_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct pool;
struct jobq_client; /* pool-private: a client's record in the job queue (src/jobq.h) */

/* Why a job was cancelled: the value of pool_job.cancel (0 = not cancelled). The sieve polls the
 * flag once per segment and stops on any non-zero value. */
enum pool_cancel {
    POOL_CANCEL_NONE = 0,
    POOL_CANCEL_CLIENT = 1,   /* client disconnected */
    POOL_CANCEL_DEADLINE = 2, /* request_timeout_ms passed */
    POOL_CANCEL_SHUTDOWN = 3, /* shutdown_timeout passed while draining, or queued at a drain */
    POOL_CANCEL_PRICE = 4,    /* a metered job used more CPU than cpu_limit_ns (its price) */
};

/* What a job reports when it finishes (counted in primed_jobs_total{outcome}: one count per
 * accepted job, when it finishes, however many times it parked). */
enum pool_outcome {
    POOL_DONE = 0,
    POOL_REJECTED, /* counted by pool_submit, never returned by a job */
    POOL_CANCELLED,
    POOL_TIMEOUT,
    POOL__OUTCOMES,
    /* Not an outcome: the job gave its worker back without finishing (a stream whose reader is
     * slow). It is neither counted nor `done`; the pool keeps no pointer to it until its owner
     * calls pool_resume, which runs it again (from the start of `run`: the job keeps its own
     * position). */
    POOL_PARKED = 100,
};

/* A unit of work, embedded by the caller in its own per-request object (the pool never
 * allocates or frees jobs). Ownership: from a successful pool_submit until `done` is called, the
 * pool may touch the job; the caller must keep it alive that long (dispatch.c takes a reference
 * on the request for it and drops it in `done`). `run` is called exactly once per accepted job: on
 * a worker with its `local` state, or — when the job's deadline passes while it is still queued —
 * on the watchdog thread with local == NULL and cancel already set, so that the client gets its 504
 * at the deadline and not when a worker frees up. */
struct pool_job {
    enum pool_outcome (*run)(struct pool_job *job, void *local);
    /* Called once after run, when the pool holds no pointer to the job any more (so it may drop
     * the caller's reference and free it). May be NULL. */
    void (*done)(struct pool_job *job);
    /* Written by anyone (watchdog, I/O thread, pool_cancel) with release order, read by the job
     * (relaxed, per segment). First non-zero reason wins (compare-exchange). */
    atomic_int cancel;
    /* Absolute CLOCK_MONOTONIC deadline in ns, 0 = none. Set before submit; cleared through
     * pool_job_clear_deadline (under the pool lock). */
    uint64_t deadline_ns;
    /* Who the job is for (a client tag), 0 = nobody in particular. Set before submit; with a
     * per-client cap (pool_set_client_cap) it picks the FIFO the job waits in. */
    uint64_t client;
    /* Borrowed, may be NULL: names the job in thread dumps (dispatch.c: the request id). Set
     * before submit; must stay valid until `done` (see pool_current_label). */
    const char *label;
    /* pool-private, under the pool lock */
    struct pool_job *next;
    /* Metering (rate limits): with `metered` set before submit, the pool adds the worker CPU
     * the job uses — its own runs and its chunks run by helpers (pool_parallel) — to cpu_ns
     * (relaxed; final once `done` is called: pool_job_cpu_ns), and the watchdog cancels it with
     * POOL_CANCEL_PRICE once that passes cpu_limit_ns (0 = no limit; any thread may change it,
     * relaxed), checking every POOL_METER_TICK_MS while it runs. */
    bool metered;
    atomic_uint_fast64_t cpu_ns;
    atomic_uint_fast64_t cpu_limit_ns;
    struct jobq_client *qc; /* its client's record, from submit until done */
    bool running;           /* inside run */
    bool parked;            /* returned POOL_PARKED, not resumed yet */
    bool resume_pending;    /* pool_resume came while still running: re-queue when run returns */
};

/* Per-worker state constructor/destructor, called on the worker thread itself (init returns NULL
 * on failure: pool_create then fails). `arg` is borrowed for the pool's lifetime. */
typedef void *(*pool_worker_init_fn)(void *arg);
typedef void (*pool_worker_fini_fn)(void *arg, void *local);

/* Start `workers` threads and a watchdog, and register the pool's metrics collector
 * (primed_workers, primed_queue_depth, primed_jobs_total, …) until pool_destroy. Returns NULL
 * (errno set) on failure. */
struct pool *pool_create(unsigned workers, unsigned queue_capacity, pool_worker_init_fn init,
                         pool_worker_fini_fn fini, void *arg);
/* Stop accepting jobs; queued jobs still run (they see `cancel` if pool_cancel_all was called,
 * so they finish at once). Waits for the queue to empty and for every parked job to be resumed
 * and finish, joins every thread and frees the pool.
 * Accepts NULL. */
void pool_destroy(struct pool *p);

/* Per-client fairness: at most `cap` workers busy for the same non-zero `client` at once (0 = no
 * cap, the default). Queued jobs wait in one FIFO per client; a worker takes the oldest job of
 * the next client in turn (round-robin) that is under the cap, in O(1) however many jobs are
 * queued, and never sleeps while such a job waits. Jobs of client 0 share one FIFO that is never
 * capped. Workers helping with a job's chunks (pool_parallel) count towards its client's cap too;
 * so do resumed jobs (pool_resume), which are not themselves held back by it. Jobs and chunks of
 * a client at its cap wait even if a worker is idle, so one client cannot hold every worker when
 * another client's job arrives (a chunk or a job, once started, is not preempted). With no cap
 * jobs start in submission order. Call before submitting. */
void pool_set_client_cap(struct pool *p, unsigned cap);

/* Queue a job. Returns 0, -EAGAIN (queue full: answer 503), -ENOMEM (with a cap: no memory for
 * a new client's record; also counted as rejected) or -ESHUTDOWN (draining). Never blocks beyond
 * the pool lock. */
int pool_submit(struct pool *p, struct pool_job *job);

/* Run a job that returned POOL_PARKED again, exactly once per park (the caller guarantees one
 * call per park; it may come before the parking run has returned: the job is then re-queued when
 * it does, so two runs of one job never overlap). Never fails and never blocks beyond the pool
 * lock: resumed jobs go to a second list, bounded by the number of parked jobs (each a live
 * stream holding its share of the memory budget), not by queue_capacity. Workers take resumed
 * jobs before queued ones, but after running a resumed job a worker takes a queued one first if
 * one may be taken (its client under the cap): under load the two lists alternate, so neither
 * starves. A resumed job has no deadline (see pool_job_clear_deadline). Also while the pool
 * drains: pool_destroy waits for parked jobs, so their owners must resume them (cancelled)
 * before it. */
void pool_resume(struct pool *p, struct pool_job *job);

/* Set job->cancel to `reason` if it is still 0. Any thread. Returns true when this call set it. */
bool pool_job_cancel(struct pool_job *job, enum pool_cancel reason);
/* Stop the watchdog from cancelling a running job (streams: the deadline covers waiting and
 * time to first byte only). Call from the job's own run. */
void pool_job_clear_deadline(struct pool *p, struct pool_job *job);
/* Cancel every queued, resumed and running job (shutdown timeout). Parked jobs are their
 * owners' to cancel and resume. */
void pool_cancel_all(struct pool *p, enum pool_cancel reason);
/* Take every queued job (none has started) off the queue and finish it now, on the calling
 * thread: cancel set to `reason`, run with local == NULL (it answers its cancellation), then
 * `done`. Running, parked and resumed jobs are left alone (a drain waits for work that has
 * started, and for nothing else). Returns how many. */
unsigned pool_cancel_queued(struct pool *p, enum pool_cancel reason);

/* The worker CPU a metered job has used, in ns (0 for a job that is not metered). Final once
 * its `done` has been called. */
uint64_t pool_job_cpu_ns(const struct pool_job *job);
#define POOL_METER_TICK_MS 10

/* Intra-job parallelism. The caller (a running job, on its worker, with its worker's `local`)
 * fills `fn`, `arg`, `nchunks` and calls pool_parallel: it runs chunks itself while idle workers
 * claim the others through an atomic cursor; returns when every claimed chunk has finished, with
 * the first non-zero chunk result (or 0). A chunk result stops further chunks being started.
 * Chunks must be independent; `fn` runs on any worker with that worker's `local`. `cancel` (may
 * be NULL) is passed through to fn. */
struct pool_par {
    int (*fn)(void *arg, uint64_t chunk, void *local);
    void *arg;
    uint64_t nchunks;
    /* pool-private */
    atomic_uint_fast64_t cursor;  /* next unclaimed chunk; fetch_add by owner and helpers */
    atomic_int err;               /* first non-zero chunk result (compare-exchange) */
    atomic_uint_fast64_t done;    /* chunks finished (relaxed: progress for /debug/requests) */
    const struct pool_job *owner; /* the job that opened it, under the pool lock */
    unsigned helpers;             /* workers inside a chunk of this task, under the pool lock */
    struct jobq_client *qc;       /* the owning job's client (helpers count towards its cap) */
    struct pool_par *next;        /* in the pool's list of open tasks, under the pool lock */
    const char *label;            /* the owner's job label, worn by helpers while in a chunk */
};
int pool_parallel(struct pool *p, struct pool_par *par, void *local);

/* The label of the job the calling thread is running (or helping with, in a chunk of its
 * pool_parallel), or NULL when the thread runs none. Async-signal-safe: one atomic load of a
 * thread-local, written by the pool on that same thread (release before the job runs, cleared
 * before its `done`), so a signal handler on a worker may copy the string: it outlives every
 * moment the pointer is set. Thread dumps (threads.c) read it this way. */
const char *pool_current_label(void);

/* Numbers for /metrics and tests (a consistent snapshot under the pool lock). */
struct pool_stats {
    unsigned workers;
    unsigned busy; /* running a job or helping with a chunk */
    unsigned queue_depth;
    unsigned queue_capacity;
    unsigned parked;       /* jobs that returned POOL_PARKED and wait for pool_resume */
    unsigned resume_depth; /* resumed jobs waiting for a worker */
    uint64_t resumes;      /* pool_resume calls */
    uint64_t fair_skips;   /* at each job taken, the clients passed over for being at their cap */
    uint64_t jobs[POOL__OUTCOMES];
};
void pool_stats_get(struct pool *p, struct pool_stats *out);

/* What each worker is doing, for /debug/requests. */
enum pool_worker_state {
    POOL_WORKER_IDLE = 0,
    POOL_WORKER_RUNNING, /* running `job` */
    POOL_WORKER_HELPING, /* running one chunk of `job`'s parallel task */
};
struct pool_worker_info {
    enum pool_worker_state state;
    /* Identity only: compare it with the caller's own jobs, never dereference it (the job may
     * be done and freed as soon as the pool lock is released). NULL when idle. */
    const struct pool_job *job;
    /* Progress of the parallel task of `job` (pool_parallel) when it has one, else 0/0. */
    uint64_t chunks_done, chunks_total;
};
/* One cut under the pool lock: out[i] for the first min(cap, workers) workers, and *stats (may
 * be NULL). O(workers); never allocates. Returns the number of workers written. */
unsigned pool_workers_get(struct pool *p, struct pool_worker_info *out, unsigned cap,
                          struct pool_stats *stats);

/* CLOCK_MONOTONIC now, in ns (deadlines are in this clock). */
uint64_t pool_now_ns(void);

#endif
