/* test_pool.c — the worker pool: bounded queue, exactly-once runs, cancellation, deadlines,
 * parallel chunks (against a direct computation and against sieve_count), per-client fairness
 * (thousands queued; random interleavings on real workers against a model), joins, and parked
 * jobs (POOL_PARKED + pool_resume; a stream producer parked and cancelled). */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "primed/pool.h"
#include "primed/sieve.h"
#include "primed/stream.h"

struct tjob {
    struct pool_job job; /* first: the pool hands us &job */
    sem_t *done_sem;
    atomic_int *gate; /* run spins politely (sleep) until *gate != 0 or cancelled */
    atomic_int runs;
    int local_was_null;
    enum pool_outcome outcome;
    int seen_cancel;
};

static enum pool_outcome tjob_run(struct pool_job *j, void *local)
{
    struct tjob *t = (struct tjob *)j;
    atomic_fetch_add(&t->runs, 1);
    t->local_was_null = local == NULL;
    while (t->gate && !atomic_load(t->gate) && !atomic_load(&j->cancel))
        usleep(1000);
    t->seen_cancel = atomic_load(&j->cancel);
    t->outcome = t->seen_cancel == POOL_CANCEL_DEADLINE ? POOL_TIMEOUT
                 : t->seen_cancel                       ? POOL_CANCELLED
                                                        : POOL_DONE;
    return t->outcome;
}

static void tjob_done(struct pool_job *j)
{
    struct tjob *t = (struct tjob *)j;
    if (t->done_sem) sem_post(t->done_sem);
}

static void tjob_init(struct tjob *t, sem_t *s, atomic_int *gate)
{
    *t = (struct tjob){.done_sem = s, .gate = gate};
    t->job.run = tjob_run;
    t->job.done = tjob_done;
    atomic_init(&t->job.cancel, 0);
    atomic_init(&t->runs, 0);
}

static atomic_int inits, finis;
static void *local_init(void *arg)
{
    atomic_fetch_add(&inits, 1);
    return sieve_ctx_create(0);
}
static void local_fini(void *arg, void *local)
{
    atomic_fetch_add(&finis, 1);
    sieve_ctx_destroy(local);
}

static void wait_busy(struct pool *p, unsigned busy)
{
    struct pool_stats st;
    for (int i = 0; i < 5000; i++) {
        pool_stats_get(p, &st);
        if (st.busy >= busy) return;
        usleep(1000);
    }
    ck_abort_msg("pool never reached %u busy workers", busy);
}

START_TEST(queue_full_returns_eagain_and_counts_rejected)
{
    sem_t s;
    sem_init(&s, 0, 0);
    atomic_int gate = 0;
    struct pool *p = pool_create(1, 1, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(p);
    struct tjob a, b, c;
    tjob_init(&a, &s, &gate);
    tjob_init(&b, &s, &gate);
    tjob_init(&c, &s, &gate);
    ck_assert_int_eq(pool_submit(p, &a.job), 0);
    wait_busy(p, 1); /* a is running, the queue is empty */
    ck_assert_int_eq(pool_submit(p, &b.job), 0);
    ck_assert_int_eq(pool_submit(p, &c.job), -EAGAIN);
    struct pool_stats st;
    pool_stats_get(p, &st);
    ck_assert_uint_eq(st.queue_depth, 1);
    ck_assert_uint_eq(st.jobs[POOL_REJECTED], 1);
    atomic_store(&gate, 1);
    sem_wait(&s);
    sem_wait(&s);
    pool_destroy(p);
    ck_assert_int_eq(atomic_load(&a.runs), 1);
    ck_assert_int_eq(atomic_load(&b.runs), 1);
    ck_assert_int_eq(atomic_load(&c.runs), 0);
    sem_destroy(&s);
}
END_TEST

START_TEST(every_job_runs_exactly_once)
{
    enum { N = 500 };
    sem_t s;
    sem_init(&s, 0, 0);
    struct pool *p = pool_create(3, N, NULL, NULL, NULL);
    static struct tjob jobs[N];
    for (int i = 0; i < N; i++) {
        tjob_init(&jobs[i], &s, NULL);
        ck_assert_int_eq(pool_submit(p, &jobs[i].job), 0);
    }
    for (int i = 0; i < N; i++)
        sem_wait(&s);
    struct pool_stats st;
    pool_stats_get(p, &st);
    ck_assert_uint_eq(st.jobs[POOL_DONE], N);
    pool_destroy(p);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(atomic_load(&jobs[i].runs), 1);
    sem_destroy(&s);
}
END_TEST

START_TEST(cancel_stops_a_running_job)
{
    sem_t s;
    sem_init(&s, 0, 0);
    atomic_int gate = 0;
    struct pool *p = pool_create(1, 4, NULL, NULL, NULL);
    struct tjob a;
    tjob_init(&a, &s, &gate);
    ck_assert_int_eq(pool_submit(p, &a.job), 0);
    wait_busy(p, 1);
    ck_assert(pool_job_cancel(&a.job, POOL_CANCEL_CLIENT));
    ck_assert(!pool_job_cancel(&a.job, POOL_CANCEL_DEADLINE)); /* first reason wins */
    sem_wait(&s);
    ck_assert_int_eq(a.seen_cancel, POOL_CANCEL_CLIENT);
    struct pool_stats st;
    pool_stats_get(p, &st);
    ck_assert_uint_eq(st.jobs[POOL_CANCELLED], 1);
    ck_assert_uint_eq(st.busy, 0);
    pool_destroy(p);
    sem_destroy(&s);
}
END_TEST

START_TEST(deadline_cancels_running_and_expires_queued_jobs)
{
    sem_t s;
    sem_init(&s, 0, 0);
    atomic_int gate = 0;
    struct pool *p = pool_create(1, 4, NULL, NULL, NULL);
    struct tjob a, b;
    tjob_init(&a, &s, &gate);
    tjob_init(&b, &s, &gate);
    a.job.deadline_ns = pool_now_ns() + 30 * 1000000u;
    b.job.deadline_ns = pool_now_ns() + 10 * 1000000u;
    ck_assert_int_eq(pool_submit(p, &a.job), 0);
    wait_busy(p, 1);
    ck_assert_int_eq(pool_submit(p, &b.job), 0); /* queued behind a, expires first */
    sem_wait(&s);
    sem_wait(&s);
    ck_assert_int_eq(a.seen_cancel, POOL_CANCEL_DEADLINE);
    ck_assert_int_eq(b.seen_cancel, POOL_CANCEL_DEADLINE);
    ck_assert_int_eq(b.local_was_null, 1); /* answered by the watchdog, not a worker */
    struct pool_stats st;
    pool_stats_get(p, &st);
    ck_assert_uint_eq(st.jobs[POOL_TIMEOUT], 2);
    pool_destroy(p);
    sem_destroy(&s);
}
END_TEST

/* ---- parallel ---- */

struct sumpar {
    struct pool_par par;
    uint64_t width;
    atomic_uint_fast64_t total;
    atomic_int chunks_done;
    int sleep_us;
    uint64_t lo, hi;
    int use_sieve;
};

static int sum_chunk(void *arg, uint64_t c, void *local)
{
    struct sumpar *sp = arg;
    uint64_t lo = sp->lo + c * sp->width;
    uint64_t hi = sp->hi - lo < sp->width ? sp->hi : lo + sp->width - 1;
    uint64_t v = 0;
    if (sp->use_sieve) {
        int r = sieve_count(local, lo, hi, &v, NULL);
        if (r) return r;
    } else {
        for (uint64_t x = lo; x <= hi; x++)
            v += x;
    }
    if (sp->sleep_us) usleep((useconds_t)sp->sleep_us);
    atomic_fetch_add(&sp->total, v);
    atomic_fetch_add(&sp->chunks_done, 1);
    return 0;
}

struct parjob {
    struct pool_job job;
    struct pool *p;
    struct sumpar *sp;
    int rc;
    sem_t *done;
};

static enum pool_outcome parjob_run(struct pool_job *j, void *local)
{
    struct parjob *pj = (struct parjob *)j;
    pj->rc = pool_parallel(pj->p, &pj->sp->par, local);
    return POOL_DONE;
}
static void parjob_done(struct pool_job *j)
{
    sem_post(((struct parjob *)j)->done);
}

static void run_par(struct pool *p, struct sumpar *sp, sem_t *s)
{
    struct parjob pj = {
        .job = {.run = parjob_run, .done = parjob_done}, .p = p, .sp = sp, .done = s};
    atomic_init(&pj.job.cancel, 0);
    ck_assert_int_eq(pool_submit(p, &pj.job), 0);
    sem_wait(s);
    ck_assert_int_eq(pj.rc, 0);
}

START_TEST(parallel_chunks_combine_to_the_single_threaded_sum)
{
    sem_t s;
    sem_init(&s, 0, 0);
    struct pool *p = pool_create(3, 8, local_init, local_fini, NULL);
    struct sumpar sp = {.par = {.fn = sum_chunk}, .lo = 7, .hi = 1000003, .width = 9973};
    sp.par.arg = &sp;
    sp.par.nchunks = (sp.hi - sp.lo) / sp.width + 1;
    atomic_init(&sp.total, 0);
    run_par(p, &sp, &s);
    uint64_t expect = (sp.hi * (sp.hi + 1) - (sp.lo - 1) * sp.lo) / 2;
    ck_assert_uint_eq(atomic_load(&sp.total), expect);
    ck_assert_int_eq(atomic_load(&sp.chunks_done), (int)sp.par.nchunks);
    pool_destroy(p);
    sem_destroy(&s);
}
END_TEST

/* pool_workers_get: the job's own worker is RUNNING it, the others HELPING with its chunks, all
 * naming the same job and its progress, which grows; idle again afterwards. */
START_TEST(workers_get_names_the_running_job_its_helpers_and_chunk_progress)
{
    sem_t s;
    sem_init(&s, 0, 0);
    struct pool *p = pool_create(3, 8, local_init, local_fini, NULL);
    struct sumpar sp = {
        .par = {.fn = sum_chunk}, .lo = 1, .hi = 400, .width = 1, .sleep_us = 20000};
    sp.par.arg = &sp;
    sp.par.nchunks = 400;
    atomic_init(&sp.total, 0);
    struct parjob pj = {
        .job = {.run = parjob_run, .done = parjob_done}, .p = p, .sp = &sp, .done = &s};
    atomic_init(&pj.job.cancel, 0);
    ck_assert_int_eq(pool_submit(p, &pj.job), 0);
    struct pool_worker_info wi[4];
    struct pool_stats st;
    unsigned running = 0, helping = 0;
    uint64_t first_done = 0;
    for (int i = 0; i < 500 && (running != 1 || helping != 2); i++) { /* ≤ 5 s */
        usleep(10000);
        ck_assert_uint_eq(pool_workers_get(p, wi, 4, &st), 3);
        running = helping = 0;
        for (int w = 0; w < 3; w++) {
            if (wi[w].state == POOL_WORKER_IDLE) continue;
            ck_assert_ptr_eq(wi[w].job, &pj.job);
            ck_assert_uint_eq(wi[w].chunks_total, 400);
            running += wi[w].state == POOL_WORKER_RUNNING;
            helping += wi[w].state == POOL_WORKER_HELPING;
            first_done = wi[w].chunks_done;
        }
    }
    ck_assert_uint_eq(running, 1);
    ck_assert_uint_eq(helping, 2);
    ck_assert_uint_eq(st.workers, 3);
    uint64_t later = first_done;
    for (int i = 0; i < 300 && later <= first_done; i++) { /* ≤ 3 s */
        usleep(10000);
        pool_workers_get(p, wi, 4, NULL);
        for (int w = 0; w < 3; w++)
            if (wi[w].state == POOL_WORKER_RUNNING) later = wi[w].chunks_done;
    }
    ck_assert_uint_gt(later, first_done);
    ck_assert_uint_le(later, 400);
    sem_wait(&s);
    ck_assert_uint_eq(pool_workers_get(p, wi, 2, NULL), 2); /* bounded by cap */
    for (int w = 0; w < 2; w++) {
        ck_assert_int_eq(wi[w].state, POOL_WORKER_IDLE);
        ck_assert_ptr_null(wi[w].job);
        ck_assert_uint_eq(wi[w].chunks_total, 0);
    }
    pool_destroy(p);
    sem_destroy(&s);
}
END_TEST

START_TEST(parallel_sieve_count_equals_single_count)
{
    sem_t s;
    sem_init(&s, 0, 0);
    struct pool *p = pool_create(2, 8, local_init, local_fini, NULL);
    uint64_t lo = 1000000000000ull, hi = 1000050000000ull;
    struct sumpar sp = {.par = {.fn = sum_chunk}, .lo = lo, .hi = hi, .use_sieve = 1};
    sp.width = sieve_chunk_width(lo, hi);
    if (sp.width > (hi - lo) / 7) sp.width = (hi - lo) / 7; /* force several chunks */
    sp.par.arg = &sp;
    sp.par.nchunks = (hi - lo) / sp.width + 1;
    atomic_init(&sp.total, 0);
    run_par(p, &sp, &s);
    sieve_ctx *c = sieve_ctx_create(0);
    uint64_t single = 0;
    ck_assert_int_eq(sieve_count(c, lo, hi, &single, NULL), 0);
    sieve_ctx_destroy(c);
    ck_assert_uint_gt(single, 0);
    ck_assert_uint_eq(atomic_load(&sp.total), single);
    pool_destroy(p);
    sem_destroy(&s);
}
END_TEST

START_TEST(queued_small_job_is_taken_before_helping_with_chunks)
{
    sem_t s, small_done;
    sem_init(&s, 0, 0);
    sem_init(&small_done, 0, 0);
    struct pool *p = pool_create(2, 8, local_init, local_fini, NULL);
    struct sumpar sp = {
        .par = {.fn = sum_chunk, .nchunks = 400}, .lo = 0, .hi = 399, .width = 1, .sleep_us = 2000};
    sp.par.arg = &sp;
    atomic_init(&sp.total, 0);
    struct parjob pj = {
        .job = {.run = parjob_run, .done = parjob_done}, .p = p, .sp = &sp, .done = &s};
    atomic_init(&pj.job.cancel, 0);
    ck_assert_int_eq(pool_submit(p, &pj.job), 0);
    wait_busy(p, 2); /* the owner and a helper are in chunks */
    struct tjob small;
    tjob_init(&small, &small_done, NULL);
    ck_assert_int_eq(pool_submit(p, &small.job), 0);
    sem_wait(&small_done);
    int done_when_small_finished = atomic_load(&sp.chunks_done);
    sem_wait(&s);
    ck_assert_int_lt(done_when_small_finished, 200);
    ck_assert_int_eq(atomic_load(&sp.chunks_done), 400);
    pool_destroy(p);
    sem_destroy(&s);
    sem_destroy(&small_done);
}
END_TEST

START_TEST(destroy_joins_every_worker_and_runs_fini)
{
    atomic_store(&inits, 0);
    atomic_store(&finis, 0);
    struct pool *p = pool_create(4, 4, local_init, local_fini, NULL);
    ck_assert_int_eq(atomic_load(&inits), 4);
    pool_destroy(p);
    ck_assert_int_eq(atomic_load(&finis), 4);
    pool_destroy(NULL);
}
END_TEST

/* ---- parked jobs ------------------------------------------------------------------------- */

struct pjob {
    struct pool_job job; /* first */
    struct pool *p;
    sem_t *done_sem;
    atomic_int runs;
    int park_runs;    /* return POOL_PARKED from this many first runs */
    bool self_resume; /* call pool_resume before returning POOL_PARKED */
    atomic_int dones;
};

static enum pool_outcome pjob_run(struct pool_job *j, void *local)
{
    struct pjob *t = (struct pjob *)j;
    int n = atomic_fetch_add(&t->runs, 1) + 1;
    if (n <= t->park_runs) {
        if (t->self_resume) pool_resume(t->p, j); /* the "reader" is faster than the return */
        return POOL_PARKED;
    }
    return POOL_DONE;
}

static void pjob_done(struct pool_job *j)
{
    struct pjob *t = (struct pjob *)j;
    atomic_fetch_add(&t->dones, 1);
    sem_post(t->done_sem);
}

static void wait_parked(struct pool *p, unsigned n)
{
    struct pool_stats st;
    for (int i = 0; i < 5000; i++) {
        pool_stats_get(p, &st);
        if (st.parked == n && st.busy == 0) return;
        usleep(1000);
    }
    ck_abort_msg("pool never had %u parked jobs and no busy worker", n);
}

START_TEST(parked_job_gives_its_worker_back_and_resume_runs_it_counted_once)
{
    struct pool *p = pool_create(1, 4, NULL, NULL, NULL);
    sem_t sem;
    sem_init(&sem, 0, 0);
    struct pjob a = {.p = p, .done_sem = &sem, .park_runs = 2};
    a.job.run = pjob_run;
    a.job.done = pjob_done;
    atomic_init(&a.job.cancel, 0);
    ck_assert_int_eq(pool_submit(p, &a.job), 0);
    wait_parked(p, 1);
    /* The only worker is free: another job runs while `a` is parked. */
    struct tjob b;
    tjob_init(&b, &sem, NULL);
    ck_assert_int_eq(pool_submit(p, &b.job), 0);
    sem_wait(&sem);
    ck_assert_int_eq(atomic_load(&b.runs), 1);
    ck_assert_int_eq(atomic_load(&a.dones), 0); /* parked: not done */
    pool_resume(p, &a.job);
    wait_parked(p, 1); /* parked again (second run) */
    ck_assert_int_eq(atomic_load(&a.runs), 2);
    pool_resume(p, &a.job);
    sem_wait(&sem);
    ck_assert_int_eq(atomic_load(&a.runs), 3);
    ck_assert_int_eq(atomic_load(&a.dones), 1);
    struct pool_stats st;
    pool_stats_get(p, &st);
    ck_assert_uint_eq(st.parked, 0);
    ck_assert_uint_eq(st.resumes, 2);
    ck_assert_uint_eq(st.jobs[POOL_DONE], 2); /* a once, b once */
    pool_destroy(p);
    sem_destroy(&sem);
}
END_TEST

START_TEST(resume_before_the_parking_run_returns_requeues_the_job)
{
    struct pool *p = pool_create(2, 4, NULL, NULL, NULL);
    sem_t sem;
    sem_init(&sem, 0, 0);
    struct pjob a = {.p = p, .done_sem = &sem, .park_runs = 3, .self_resume = true};
    a.job.run = pjob_run;
    a.job.done = pjob_done;
    atomic_init(&a.job.cancel, 0);
    ck_assert_int_eq(pool_submit(p, &a.job), 0);
    sem_wait(&sem);
    ck_assert_int_eq(atomic_load(&a.runs), 4);
    ck_assert_int_eq(atomic_load(&a.dones), 1);
    struct pool_stats st;
    pool_stats_get(p, &st);
    ck_assert_uint_eq(st.parked, 0);
    ck_assert_uint_eq(st.resumes, 3);
    ck_assert_uint_eq(st.jobs[POOL_DONE], 1);
    pool_destroy(p);
    sem_destroy(&sem);
}
END_TEST

/* A stream producer as server.c runs it: an endless body, parked when the buffer is full,
 * resumed by the stream (reader or cancel), freed by the last of two references (job, reader).
 * ASan sees a double finish/free or a leak; TSan sees races. */
struct sjob {
    struct pool_job job; /* first */
    struct pool *p;
    struct stream *s;
    atomic_int refs;
    atomic_int *freed;
    sem_t *done_sem;
};

static void sjob_unref(struct sjob *t)
{
    if (atomic_fetch_sub(&t->refs, 1) != 1) return;
    stream_destroy(t->s);
    atomic_fetch_add(t->freed, 1);
    free(t);
}

static void sjob_resume(void *arg)
{
    struct sjob *t = arg;
    pool_resume(t->p, &t->job);
}

static enum pool_outcome sjob_run(struct pool_job *j, void *local)
{
    struct sjob *t = (struct sjob *)j;
    for (;;) {
        char *b = NULL;
        size_t cap = 0;
        switch (stream_block_get(t->s, &b, &cap)) {
        case STREAM_GET_OK:
            memset(b, 'p', cap);
            stream_block_commit(t->s, cap);
            break;
        case STREAM_GET_FULL:
            return POOL_PARKED;
        default:
            stream_finish(t->s, false);
            return POOL_CANCELLED;
        }
    }
}

static void sjob_done(struct pool_job *j)
{
    struct sjob *t = (struct sjob *)j;
    sem_t *sem = t->done_sem;
    sjob_unref(t);
    sem_post(sem);
}

static struct sjob *sjob_start(struct pool *p, sem_t *sem, atomic_int *freed)
{
    struct sjob *t = calloc(1, sizeof *t);
    t->p = p;
    t->done_sem = sem;
    t->freed = freed;
    atomic_init(&t->refs, 2); /* the job's and the reader's */
    t->s = stream_create(NULL, 2 * 64, 64, NULL, NULL, sjob_resume, t);
    t->job.run = sjob_run;
    t->job.done = sjob_done;
    atomic_init(&t->job.cancel, 0);
    ck_assert_int_eq(pool_submit(p, &t->job), 0);
    return t;
}

START_TEST(cancelled_parked_stream_is_finished_and_freed_exactly_once)
{
    atomic_int freed;
    atomic_init(&freed, 0);
    struct pool *p = pool_create(1, 4, NULL, NULL, NULL);
    sem_t sem;
    sem_init(&sem, 0, 0);
    struct sjob *t = sjob_start(p, &sem, &freed);
    wait_parked(p, 1);
    stream_cancel(t->s); /* the client went away: resumes the producer, which finishes */
    sem_wait(&sem);
    char buf[64];
    size_t n;
    ck_assert_int_eq(stream_read(t->s, buf, sizeof buf, &n, NULL, NULL), STREAM_FAILED);
    stream_cancel(t->s); /* a second cancel (shutdown after disconnect) resumes nothing */
    sjob_unref(t);       /* the reader's reference: frees */
    ck_assert_int_eq(atomic_load(&freed), 1);
    struct pool_stats st;
    pool_stats_get(p, &st);
    ck_assert_uint_eq(st.parked, 0);
    ck_assert_uint_eq(st.resumes, 1);
    ck_assert_uint_eq(st.jobs[POOL_CANCELLED], 1);
    pool_destroy(p);
    sem_destroy(&sem);
}
END_TEST

struct race_reader {
    struct sjob *t;
    pthread_barrier_t *go;
};

static void *race_reader_main(void *arg)
{
    struct race_reader *rr = arg;
    pthread_barrier_wait(rr->go);
    char buf[48];
    size_t n;
    for (int i = 0; i < 50; i++)
        if (stream_read(rr->t->s, buf, sizeof buf, &n, NULL, NULL) == STREAM_FAILED) break;
    sjob_unref(rr->t);
    return NULL;
}

START_TEST(reader_resume_racing_cancel_frees_each_parked_stream_once)
{
    atomic_int freed;
    atomic_init(&freed, 0);
    struct pool *p = pool_create(2, 4, NULL, NULL, NULL);
    sem_t sem;
    sem_init(&sem, 0, 0);
    const int rounds = 200;
    for (int i = 0; i < rounds; i++) {
        struct sjob *t = sjob_start(p, &sem, &freed);
        wait_parked(p, 1);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        struct race_reader rr = {.t = t, .go = &go};
        atomic_fetch_add(&t->refs, 1); /* this thread's, for the cancel below */
        pthread_t th;
        pthread_create(&th, NULL, race_reader_main, &rr);
        pthread_barrier_wait(&go);
        stream_cancel(t->s);
        sjob_unref(t);
        pthread_join(th, NULL);
        sem_wait(&sem); /* the job finished (done) */
        pthread_barrier_destroy(&go);
    }
    ck_assert_int_eq(atomic_load(&freed), rounds);
    struct pool_stats st;
    pool_stats_get(p, &st);
    ck_assert_uint_eq(st.parked, 0);
    ck_assert_uint_eq(st.jobs[POOL_CANCELLED], (uint64_t)rounds);
    pool_destroy(p);
    sem_destroy(&sem);
}
END_TEST

/* With a cap of 1 job per client, client A's blocked jobs hold one worker, not both: client
 * B's job, queued behind three of A's, runs on the other worker while A is still blocked. */
START_TEST(client_cap_keeps_a_worker_for_other_clients)
{
    struct pool *p = pool_create(2, 16, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(p);
    pool_set_client_cap(p, 1);
    sem_t sem;
    sem_init(&sem, 0, 0);
    atomic_int gate_a = 0, gate_b = 1;
    struct tjob a[4], b;
    for (int i = 0; i < 4; i++) {
        tjob_init(&a[i], &sem, &gate_a);
        a[i].job.client = 0xA;
        ck_assert_int_eq(pool_submit(p, &a[i].job), 0);
    }
    /* A's first job is running (else B could finish before any of A's started, and the count
     * below would say nothing about the cap: a race seen once under ASan). */
    for (int i = 0; i < 5000 && atomic_load(&a[0].runs) == 0; i++)
        usleep(1000);
    ck_assert_int_eq(atomic_load(&a[0].runs), 1);
    tjob_init(&b, &sem, &gate_b);
    b.job.client = 0xB;
    ck_assert_int_eq(pool_submit(p, &b.job), 0);
    /* B finishes (bounded wait) while A's first job is still blocked. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    ck_assert_int_eq(sem_timedwait(&sem, &until), 0);
    ck_assert_int_eq(atomic_load(&b.runs), 1);
    int a_started = 0;
    for (int i = 0; i < 4; i++)
        a_started += atomic_load(&a[i].runs);
    ck_assert_int_eq(a_started, 1); /* the cap held even with a worker idle */
    struct pool_stats st;
    pool_stats_get(p, &st);
    ck_assert_uint_ge(st.fair_skips, 1);
    atomic_store(&gate_a, 1);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(sem_timedwait(&sem, &until), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(atomic_load(&a[i].runs), 1);
    pool_destroy(p);
    sem_destroy(&sem);
}
END_TEST

/* Jobs without a client tag, or with no cap set, use every worker as before. */
START_TEST(no_cap_or_untagged_jobs_use_every_worker)
{
    for (int capped = 0; capped < 2; capped++) {
        struct pool *p = pool_create(2, 16, NULL, NULL, NULL);
        if (capped) pool_set_client_cap(p, 1);
        sem_t sem;
        sem_init(&sem, 0, 0);
        atomic_int gate = 0;
        struct tjob j[2];
        for (int i = 0; i < 2; i++) {
            tjob_init(&j[i], &sem, &gate);
            j[i].job.client = capped ? 0 : 0xA;
            ck_assert_int_eq(pool_submit(p, &j[i].job), 0);
        }
        wait_busy(p, 2);
        atomic_store(&gate, 1);
        pool_destroy(p);
        sem_destroy(&sem);
    }
}
END_TEST

/* Helping with chunks counts towards the cap: with a cap of 1, a capped client's parallel job
 * runs its chunks on its own worker only; without the cap, the idle worker helps. */
struct capjob {
    struct pool_job job; /* first */
    struct pool *p;
    atomic_int max_inside, inside;
    sem_t *done_sem;
};

static int cap_chunk(void *arg, uint64_t c, void *local)
{
    struct capjob *pj = arg;
    int now = atomic_fetch_add(&pj->inside, 1) + 1;
    int prev = atomic_load(&pj->max_inside);
    while (now > prev && !atomic_compare_exchange_weak(&pj->max_inside, &prev, now)) {
    }
    usleep(2000);
    atomic_fetch_sub(&pj->inside, 1);
    return 0;
}

static enum pool_outcome capjob_run(struct pool_job *j, void *local)
{
    struct capjob *pj = (struct capjob *)j;
    struct pool_par par = {.fn = cap_chunk, .arg = pj, .nchunks = 200};
    pool_parallel(pj->p, &par, local);
    return POOL_DONE;
}

static void capjob_done(struct pool_job *j)
{
    sem_post(((struct capjob *)j)->done_sem);
}

START_TEST(helping_with_chunks_counts_towards_the_cap)
{
    for (int capped = 0; capped < 2; capped++) {
        struct pool *p = pool_create(2, 4, NULL, NULL, NULL);
        if (capped) pool_set_client_cap(p, 1);
        sem_t sem;
        sem_init(&sem, 0, 0);
        struct capjob pj = {.p = p, .done_sem = &sem};
        pj.job.run = capjob_run;
        pj.job.done = capjob_done;
        pj.job.client = 0xA;
        atomic_init(&pj.job.cancel, 0);
        atomic_init(&pj.inside, 0);
        atomic_init(&pj.max_inside, 0);
        ck_assert_int_eq(pool_submit(p, &pj.job), 0);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        ck_assert_int_eq(sem_timedwait(&sem, &until), 0);
        ck_assert_int_eq(atomic_load(&pj.max_inside), (capped ? 1 : 2));
        pool_destroy(p);
        sem_destroy(&sem);
    }
}
END_TEST

/* The audit's case, scaled up: with a cap of 1 on 2 workers, client A has one job running
 * (blocked) and 4999 queued; client B's one job, queued last, must be taken by the idle worker
 * at once, whatever the depth of A's backlog. Asserted on order (B starts while A's first job
 * is the only one of A's to have started; then A's jobs run one at a time, oldest first); the
 * timed wait is only a bound on a hang. */
struct ordjob {
    struct pool_job job; /* first */
    atomic_int *gate;    /* NULL: returns at once */
    atomic_int *started; /* A's jobs started so far (shared) */
    int seen;            /* *started when this one started (before counting itself) */
    bool count;          /* counts itself in *started */
    atomic_int runs;
    sem_t *sem;
};

static enum pool_outcome ordjob_run(struct pool_job *j, void *local)
{
    struct ordjob *t = (struct ordjob *)j;
    atomic_fetch_add(&t->runs, 1);
    t->seen = t->count ? atomic_fetch_add(t->started, 1) : atomic_load(t->started);
    while (t->gate && !atomic_load(t->gate))
        usleep(1000);
    return POOL_DONE;
}

static void ordjob_done(struct pool_job *j)
{
    sem_post(((struct ordjob *)j)->sem);
}

START_TEST(capped_client_with_thousands_queued_leaves_the_idle_worker_to_another)
{
    enum { N = 5000 };
    struct pool *p = pool_create(2, N + 1, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(p);
    pool_set_client_cap(p, 1);
    sem_t sem;
    sem_init(&sem, 0, 0);
    atomic_int gate = 0, started = 0;
    static struct ordjob a[N];
    struct ordjob b;
    for (int i = 0; i < N; i++) {
        a[i] = (struct ordjob){
            .gate = i == 0 ? &gate : NULL, .started = &started, .count = true, .sem = &sem};
        a[i].job.run = ordjob_run;
        a[i].job.done = ordjob_done;
        a[i].job.client = 0xA;
        atomic_init(&a[i].job.cancel, 0);
        atomic_init(&a[i].runs, 0);
        ck_assert_int_eq(pool_submit(p, &a[i].job), 0);
        if (i == 0) wait_busy(p, 1); /* A's first job holds its one worker */
    }
    b = (struct ordjob){.started = &started, .sem = &sem};
    b.job.run = ordjob_run;
    b.job.done = ordjob_done;
    b.job.client = 0xB;
    atomic_init(&b.job.cancel, 0);
    atomic_init(&b.runs, 0);
    ck_assert_int_eq(pool_submit(p, &b.job), 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    int waited = sem_timedwait(&sem, &until);
    struct pool_stats st;
    pool_stats_get(p, &st);
    atomic_store(&gate, 1); /* then everything drains, even on failure */
    if (waited != 0) sem_wait(&sem);
    ck_assert_msg(waited == 0 && atomic_load(&b.runs) == 1,
                  "B's job did not run while A held one worker (queue depth %u, %u busy)",
                  st.queue_depth, st.busy);
    ck_assert_int_eq(b.seen, 1); /* only A's first job had started */
    ck_assert_uint_eq(st.queue_depth, N - 1);
    ck_assert_uint_eq(st.busy, 1);
    for (int i = 0; i < N; i++)
        sem_wait(&sem);
    pool_destroy(p);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(atomic_load(&a[i].runs), 1);
        ck_assert_int_eq(a[i].seen, i); /* one at a time, oldest first */
    }
    sem_destroy(&sem);
}
END_TEST

/* Same class, resumed jobs: after running a resumed job a worker prefers the queue, but when
 * every queued job is held back by the cap it must still take the resumed one (it used to sleep
 * with it waiting until the capped client's job finished). */
START_TEST(resumed_job_runs_while_every_queued_job_is_capped)
{
    struct pool *p = pool_create(2, 4, NULL, NULL, NULL);
    pool_set_client_cap(p, 1);
    sem_t sem;
    sem_init(&sem, 0, 0);
    struct pjob s = {.p = p, .done_sem = &sem, .park_runs = 2};
    s.job.run = pjob_run;
    s.job.done = pjob_done;
    atomic_init(&s.job.cancel, 0);
    ck_assert_int_eq(pool_submit(p, &s.job), 0);
    wait_parked(p, 1);
    atomic_int gate = 0;
    struct tjob a[2];
    for (int i = 0; i < 2; i++) {
        tjob_init(&a[i], &sem, &gate);
        a[i].job.client = 0xA;
        ck_assert_int_eq(pool_submit(p, &a[i].job), 0);
        if (i == 0) wait_busy(p, 1); /* a[0] holds A's one slot; a[1] stays queued */
    }
    pool_resume(p, &s.job); /* second run, on the free worker: parks again */
    struct pool_stats st = {0};
    for (int i = 0; i < 5000 && (atomic_load(&s.runs) < 2 || st.parked != 1); i++) {
        usleep(1000);
        pool_stats_get(p, &st);
    }
    ck_assert_int_eq(atomic_load(&s.runs), 2);
    pool_resume(p, &s.job); /* third run: finishes, while a[1] is still capped */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    int waited = sem_timedwait(&sem, &until);
    int runs = atomic_load(&s.runs), a1_runs = atomic_load(&a[1].runs);
    atomic_store(&gate, 1);
    ck_assert_msg(waited == 0 && runs == 3 && a1_runs == 0,
                  "the resumed job waited behind a capped queue (runs %d, a[1] runs %d)", runs,
                  a1_runs);
    for (int i = 0; i < 2; i++)
        sem_wait(&sem);
    pool_destroy(p);
    sem_destroy(&sem);
}
END_TEST

/* ---- property: random interleavings on real workers, against a model ---------------------
 * Jobs of PC clients (0 untagged, 1 a flood) are submitted and released (finished) in random
 * order. Each job blocks until released, so after every step the pool settles into a state the
 * model predicts exactly: with every released job done, the number running is
 * min(workers, Σ per client min(cap, its unfinished jobs)) — fewer means a worker is idle while a
 * job it may take waits (caught by a bounded wait: the only use of time). Checked throughout:
 * no client ever has more than `cap` jobs running, the started jobs of each client are its
 * oldest (with no cap: the oldest of all), a submit is refused exactly when the queue holds
 * queue_capacity jobs, queue depth and busy agree with the model, and in the end every accepted
 * job ran and was done exactly once. */
enum { PC = 5, PJOBS = 700 };

struct propjob {
    struct pool_job job; /* first */
    int c, idx;          /* client, its place in its FIFO's submission order */
    bool released;       /* under prop.mu */
    int runs, dones;     /* under prop.mu */
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned cap;
    int running[PC], running_total;
    int dones;
    char violation[160];
} prop = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static enum pool_outcome propjob_run(struct pool_job *j, void *local)
{
    struct propjob *t = (struct propjob *)j;
    pthread_mutex_lock(&prop.mu);
    t->runs++;
    if (prop.cap && t->c != 0 && (unsigned)++prop.running[t->c] > prop.cap && !prop.violation[0])
        snprintf(prop.violation, sizeof prop.violation, "client %d: %d running, cap %u", t->c,
                 prop.running[t->c], prop.cap);
    if (!prop.cap || t->c == 0) prop.running[t->c]++;
    prop.running_total++;
    pthread_cond_broadcast(&prop.cv);
    while (!t->released)
        pthread_cond_wait(&prop.cv, &prop.mu);
    prop.running[t->c]--;
    prop.running_total--;
    pthread_mutex_unlock(&prop.mu);
    return POOL_DONE;
}

static void propjob_done(struct pool_job *j)
{
    struct propjob *t = (struct propjob *)j;
    pthread_mutex_lock(&prop.mu);
    t->dones++;
    prop.dones++;
    pthread_cond_broadcast(&prop.cv);
    pthread_mutex_unlock(&prop.mu);
}

static void prop_run(unsigned workers, unsigned cap, unsigned qcap, uint64_t seed)
{
    static struct propjob jobs[PJOBS];
    memset(jobs, 0, sizeof jobs);
    memset(prop.running, 0, sizeof prop.running);
    prop.running_total = prop.dones = 0;
    prop.violation[0] = '\0';
    prop.cap = cap;
    struct pool *p = pool_create(workers, qcap, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(p);
    pool_set_client_cap(p, cap);
    int submitted[PC] = {0}, finished[PC] = {0}, njobs = 0, accepted = 0, released = 0;
    int fifo_len[PC] = {0}; /* accepted per FIFO: per client, or all in [0] with no cap */
    uint64_t r = seed;
    for (int step = 0; step < 1000 && njobs < PJOBS; step++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        pthread_mutex_lock(&prop.mu);
        if (r % 100 < 60) { /* submit: the queue grows, past 100 deep without a bound */
            int c = (r >> 8) % 2 ? 1 : (int)((r >> 16) % PC);
            struct propjob *t = &jobs[njobs++];
            t->c = c;
            t->idx = fifo_len[cap ? c : 0];
            t->job.run = propjob_run;
            t->job.done = propjob_done;
            t->job.client = (uint64_t)c * 0x1000193u; /* 0 stays untagged */
            atomic_init(&t->job.cancel, 0);
            int queued = accepted - released - prop.running_total;
            pthread_mutex_unlock(&prop.mu);
            int rc = pool_submit(p, &t->job);
            pthread_mutex_lock(&prop.mu);
            if (rc != ((unsigned)queued >= qcap ? -EAGAIN : 0) && !prop.violation[0])
                snprintf(prop.violation, sizeof prop.violation,
                         "submit returned %d with %d queued of %u", rc, queued, qcap);
            if (rc == 0) {
                submitted[c]++;
                fifo_len[cap ? c : 0]++;
                accepted++;
            } else {
                t->c = -1; /* refused: must never run */
            }
        } else { /* release one running job, if any */
            int n = 0, pick = -1;
            for (int i = 0; i < njobs; i++)
                if (jobs[i].c >= 0 && jobs[i].runs && !jobs[i].released && r % (unsigned)++n == 0)
                    pick = i;
            if (pick >= 0) {
                jobs[pick].released = true;
                finished[jobs[pick].c]++;
                released++;
                pthread_cond_broadcast(&prop.cv);
            }
        }
        /* Settle: every released job done, and as many running as the model allows. */
        int want = 0;
        for (int c = 0; c < PC; c++) {
            int unfinished = submitted[c] - finished[c];
            want += cap && c != 0 && unfinished > (int)cap ? (int)cap : unfinished;
        }
        if (want > (int)workers) want = (int)workers;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        while ((prop.dones != released || prop.running_total != want) && !prop.violation[0])
            if (pthread_cond_timedwait(&prop.cv, &prop.mu, &until) != 0) break;
        int running = prop.running_total, dones = prop.dones;
        char violation[sizeof prop.violation];
        memcpy(violation, prop.violation, sizeof violation);
        pthread_mutex_unlock(&prop.mu);
        ck_assert_msg(!violation[0], "workers %u cap %u step %d: %s", workers, cap, step,
                      violation);
        ck_assert_msg(dones == released && running == want,
                      "workers %u cap %u step %d: %d running, model %d (%d of %d released done)",
                      workers, cap, step, running, want, dones, released);
        /* FIFO: the jobs started of each FIFO are its first ones (two workers may enter `run`
         * in either order, so this is checked on settled states, not at each start). */
        pthread_mutex_lock(&prop.mu);
        for (int f = 0; f < PC; f++) {
            int started = 0, first_unstarted = fifo_len[f];
            for (int i = 0; i < njobs; i++) {
                if (jobs[i].c < 0 || (cap ? jobs[i].c : 0) != f) continue;
                started += jobs[i].runs;
                if (!jobs[i].runs && jobs[i].idx < first_unstarted) first_unstarted = jobs[i].idx;
            }
            if (started != first_unstarted) pthread_mutex_unlock(&prop.mu);
            ck_assert_msg(started == first_unstarted,
                          "workers %u cap %u step %d: FIFO %d has %d started but job %d not",
                          workers, cap, step, f, started, first_unstarted);
        }
        pthread_mutex_unlock(&prop.mu);
        struct pool_stats st;
        pool_stats_get(p, &st);
        ck_assert_uint_eq(st.busy, (unsigned)running);
        ck_assert_uint_eq(st.queue_depth, (unsigned)(accepted - released - running));
    }
    pthread_mutex_lock(&prop.mu);
    for (int i = 0; i < njobs; i++)
        jobs[i].released = true;
    pthread_cond_broadcast(&prop.cv);
    pthread_mutex_unlock(&prop.mu);
    pool_destroy(p); /* drains: every queued job runs */
    ck_assert_msg(!prop.violation[0], "workers %u cap %u drain: %s", workers, cap, prop.violation);
    for (int i = 0; i < njobs; i++) {
        ck_assert_int_eq(jobs[i].runs, jobs[i].c >= 0);
        ck_assert_int_eq(jobs[i].dones, jobs[i].c >= 0);
    }
}

START_TEST(random_interleavings_keep_caps_fifo_and_no_idle_worker)
{
    for (unsigned workers = 1; workers <= 4; workers++)
        for (unsigned cap = 0; cap <= 2; cap++)
            for (unsigned qcap = 12; qcap <= 1200; qcap *= 100)
                prop_run(workers, cap, qcap, 0x9E3779B97F4A7C15ull * (workers * 3 + cap + 1));
}
END_TEST

/* ---- metering (rate limits) ---- */

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Burns CPU until cancelled or `burn_ms` of its thread's CPU are spent; or sleeps `sleep_ms`. */
struct mjob {
    struct pool_job job;
    sem_t *done;
    unsigned burn_ms, sleep_ms;
    int seen_cancel;
};

static enum pool_outcome mjob_run(struct pool_job *j, void *local)
{
    struct mjob *m = (struct mjob *)j;
    if (m->sleep_ms) usleep(m->sleep_ms * 1000u);
    uint64_t t0 = thread_cpu_ns();
    volatile uint64_t x = 0;
    while (!atomic_load(&j->cancel) && thread_cpu_ns() - t0 < (uint64_t)m->burn_ms * 1000000u)
        for (int k = 0; k < 10000; k++)
            x += (uint64_t)k;
    m->seen_cancel = atomic_load(&j->cancel);
    return m->seen_cancel ? POOL_CANCELLED : POOL_DONE;
}

static void mjob_done(struct pool_job *j)
{
    sem_post(((struct mjob *)j)->done);
}

static void mjob_submit(struct pool *p, struct mjob *m, sem_t *s, unsigned limit_ms)
{
    m->job.run = mjob_run;
    m->job.done = mjob_done;
    m->done = s;
    m->job.metered = true;
    atomic_init(&m->job.cancel, 0);
    atomic_init(&m->job.cpu_ns, 0);
    atomic_init(&m->job.cpu_limit_ns, (uint64_t)limit_ms * 1000000u);
    ck_assert_int_eq(pool_submit(p, &m->job), 0);
}

/* A metered job is stopped once its CPU passes its limit (within a few meter ticks), a job that
 * waits rather than computes is not (the meter reads CPU, not the clock), and cpu_ns reports what
 * each used. */
START_TEST(metered_jobs_are_stopped_past_their_cpu_limit)
{
    sem_t s;
    sem_init(&s, 0, 0);
    struct pool *p = pool_create(2, 8, NULL, NULL, NULL);
    struct mjob burner = {.burn_ms = 5000}, sleeper = {.sleep_ms = 150, .burn_ms = 5},
                unlimited = {.burn_ms = 60};
    mjob_submit(p, &burner, &s, 40);
    mjob_submit(p, &sleeper, &s, 40);
    sem_wait(&s);
    sem_wait(&s);
    mjob_submit(p, &unlimited, &s, 0);
    sem_wait(&s);
    uint64_t used = pool_job_cpu_ns(&burner.job) / 1000000u;
    ck_assert_int_eq(burner.seen_cancel, POOL_CANCEL_PRICE);
    ck_assert_msg(used >= 40 && used < 40 + 50 * POOL_METER_TICK_MS, "burner used %llu ms",
                  (unsigned long long)used);
    ck_assert_int_eq(sleeper.seen_cancel, 0);
    ck_assert_uint_lt(pool_job_cpu_ns(&sleeper.job) / 1000000u, 40);
    ck_assert_int_eq(unlimited.seen_cancel, 0); /* no limit: metered, never stopped */
    ck_assert_uint_ge(pool_job_cpu_ns(&unlimited.job) / 1000000u, 60);
    pool_destroy(p);
    sem_destroy(&s);
}
END_TEST

/* A metered job's CPU includes its chunks run by helpers (pool_parallel), not only its own
 * thread's: every chunk burns ~20 ms on whichever worker runs it. */
struct burnpar {
    struct pool_par par;
    atomic_uint_fast64_t chunk_cpu; /* what the chunks measured themselves */
};

static int burn_chunk(void *arg, uint64_t c, void *local)
{
    struct burnpar *bp = arg;
    uint64_t t0 = thread_cpu_ns();
    volatile uint64_t x = 0;
    while (thread_cpu_ns() - t0 < 20000000u)
        for (int k = 0; k < 10000; k++)
            x += (uint64_t)k;
    atomic_fetch_add(&bp->chunk_cpu, thread_cpu_ns() - t0);
    return 0;
}

struct mparjob {
    struct pool_job job;
    struct pool *p;
    struct burnpar *bp;
    sem_t *done;
};

static enum pool_outcome mparjob_run(struct pool_job *j, void *local)
{
    struct mparjob *m = (struct mparjob *)j;
    pool_parallel(m->p, &m->bp->par, local);
    return POOL_DONE;
}

static void mparjob_done(struct pool_job *j)
{
    sem_post(((struct mparjob *)j)->done);
}

START_TEST(metered_cpu_includes_helpers_chunks)
{
    sem_t s;
    sem_init(&s, 0, 0);
    struct pool *p = pool_create(3, 8, NULL, NULL, NULL);
    struct burnpar bp = {.par = {.fn = burn_chunk, .nchunks = 12}};
    bp.par.arg = &bp;
    atomic_init(&bp.chunk_cpu, 0);
    struct mparjob m = {
        .job = {.run = mparjob_run, .done = mparjob_done, .metered = true}, .p = p, .bp = &bp};
    m.done = &s;
    atomic_init(&m.job.cancel, 0);
    atomic_init(&m.job.cpu_ns, 0);
    atomic_init(&m.job.cpu_limit_ns, 0);
    ck_assert_int_eq(pool_submit(p, &m.job), 0);
    sem_wait(&s);
    uint64_t chunks = atomic_load(&bp.chunk_cpu), used = pool_job_cpu_ns(&m.job);
    ck_assert_msg(used >= chunks && used < chunks + 100000000u, "job %llu ns, its chunks %llu ns",
                  (unsigned long long)used, (unsigned long long)chunks);
    pool_destroy(p);
    sem_destroy(&s);
}
END_TEST

/* pool_cancel_queued (a drain): every queued job is answered at once, on the caller's thread,
 * with local == NULL and SHUTDOWN; the running one is left to finish. */
START_TEST(cancel_queued_answers_queued_jobs_and_leaves_running_ones)
{
    sem_t s;
    sem_init(&s, 0, 0);
    struct pool *p = pool_create(1, 8, local_init, local_fini, NULL);
    atomic_int gate = 0;
    struct tjob running, queued[3];
    tjob_init(&running, &s, &gate);
    ck_assert_int_eq(pool_submit(p, &running.job), 0);
    while (atomic_load(&running.runs) == 0)
        usleep(1000);
    for (int i = 0; i < 3; i++) {
        tjob_init(&queued[i], &s, &gate);
        ck_assert_int_eq(pool_submit(p, &queued[i].job), 0);
    }
    ck_assert_uint_eq(pool_cancel_queued(p, POOL_CANCEL_SHUTDOWN), 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(sem_trywait(&s), 0); /* done already: answered on this thread */
        ck_assert_int_eq(queued[i].seen_cancel, POOL_CANCEL_SHUTDOWN);
        ck_assert(queued[i].local_was_null);
    }
    ck_assert_int_eq(atomic_load(&running.job.cancel), 0);
    atomic_store(&gate, 1);
    sem_wait(&s);
    ck_assert_int_eq(running.outcome, POOL_DONE);
    ck_assert_uint_eq(pool_cancel_queued(p, POOL_CANCEL_SHUTDOWN), 0);
    pool_destroy(p);
    sem_destroy(&s);
}
END_TEST

static Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, queue_full_returns_eagain_and_counts_rejected);
    tcase_add_test(tc, every_job_runs_exactly_once);
    tcase_add_test(tc, cancel_stops_a_running_job);
    tcase_add_test(tc, deadline_cancels_running_and_expires_queued_jobs);
    tcase_add_test(tc, parallel_chunks_combine_to_the_single_threaded_sum);
    tcase_add_test(tc, parallel_sieve_count_equals_single_count);
    tcase_add_test(tc, workers_get_names_the_running_job_its_helpers_and_chunk_progress);
    tcase_add_test(tc, queued_small_job_is_taken_before_helping_with_chunks);
    tcase_add_test(tc, destroy_joins_every_worker_and_runs_fini);
    tcase_add_test(tc, parked_job_gives_its_worker_back_and_resume_runs_it_counted_once);
    tcase_add_test(tc, resume_before_the_parking_run_returns_requeues_the_job);
    tcase_add_test(tc, cancelled_parked_stream_is_finished_and_freed_exactly_once);
    tcase_add_test(tc, reader_resume_racing_cancel_frees_each_parked_stream_once);
    tcase_add_test(tc, client_cap_keeps_a_worker_for_other_clients);
    tcase_add_test(tc, no_cap_or_untagged_jobs_use_every_worker);
    tcase_add_test(tc, helping_with_chunks_counts_towards_the_cap);
    tcase_add_test(tc, capped_client_with_thousands_queued_leaves_the_idle_worker_to_another);
    tcase_add_test(tc, resumed_job_runs_while_every_queued_job_is_capped);
    tcase_add_test(tc, random_interleavings_keep_caps_fifo_and_no_idle_worker);
    tcase_add_test(tc, metered_jobs_are_stopped_past_their_cpu_limit);
    tcase_add_test(tc, metered_cpu_includes_helpers_chunks);
    tcase_add_test(tc, cancel_queued_answers_queued_jobs_and_leaves_running_ones);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(pool_suite)
