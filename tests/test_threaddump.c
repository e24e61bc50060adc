/* test_threaddump.c — the thread dump without HTTP: threads parked in a known function are
 * listed by name with that function on their stack; a thread that blocks the signal is reported
 * as not answering after ~100 ms, not waited for; a second capture during one is -EBUSY; a pool
 * worker reports the label (request id) of the job it runs, and its chunk helpers too. Under
 * ThreadSanitizer every capture is -ENOSYS (the endpoint's 501), which is what is checked there. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../src/symbolize.h"
#include "../src/threaddump.h"
#include "check_main.h"
#include "primed/pool.h"

#if defined(__SANITIZE_THREAD__)
#define THREADDUMP_TEST_WORKS 0
#else
#define THREADDUMP_TEST_WORKS 1
#endif

#if THREADDUMP_TEST_WORKS

static atomic_int release_all; /* parked threads return when set */

/* Parked threads sit here; noinline so it keeps its own frame and name. */
__attribute__((noinline)) static void park_here(void)
{
    while (!atomic_load(&release_all))
        usleep(1000);
    __asm__ volatile("" ::: "memory");
}

static void *parked_main(void *arg)
{
    char name[32];
    snprintf(name, sizeof name, "t-park-%d", (int)(intptr_t)arg);
    pthread_setname_np(pthread_self(), name);
    if ((intptr_t)arg < 0) { /* this one refuses the dump's signal */
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGRTMIN + 3);
        pthread_sigmask(SIG_BLOCK, &s, NULL);
    }
    park_here();
    return NULL;
}

static bool stack_has(const struct threaddump_thread *t, const char *fn)
{
    bool found = false;
    symbolize_lock();
    for (unsigned f = 0; f < t->nframes && !found; f++) {
        const char *n = symbolize_addr(f ? t->pc[f] - 1 : t->pc[f], NULL);
        found = n && strcmp(n, fn) == 0;
    }
    symbolize_unlock();
    return found;
}

static const struct threaddump_thread *find(const struct threaddump *d, const char *name)
{
    for (unsigned i = 0; i < d->nthreads; i++)
        if (strcmp(d->t[i].name, name) == 0) return &d->t[i];
    return NULL;
}

static int state(const struct threaddump_thread *t)
{
    return atomic_load(&t->state);
}

static uint64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

START_TEST(parked_threads_are_listed_by_name_with_their_function)
{
    atomic_store(&release_all, 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, parked_main, (void *)(intptr_t)i), 0);
    usleep(50000); /* let them name themselves and park */
    struct threaddump *d;
    ck_assert_int_eq(threaddump_capture(&d), 0);
    ck_assert_uint_ge(d->nthreads, 4); /* three and this one */
    ck_assert_uint_eq(d->answered, d->nthreads);
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "t-park-%d", i);
        const struct threaddump_thread *t = find(d, name);
        ck_assert_msg(t != NULL, "%s not listed", name);
        ck_assert_int_eq(state(t), THREADDUMP_OK);
        ck_assert_msg(stack_has(t, "park_here"), "%s: park_here not on its stack", name);
        ck_assert_msg(stack_has(t, "parked_main"), "%s: parked_main not on its stack", name);
        ck_assert_str_eq(t->label, "");
        ck_assert_str_eq(threaddump_role(t), "other");
    }
    /* the capturing thread is in the dump too, inside the capture */
    const struct threaddump_thread *me = NULL;
    for (unsigned i = 0; i < d->nthreads; i++)
        if (d->t[i].tid == (int)getpid()) me = &d->t[i];
    ck_assert_ptr_nonnull(me);
    ck_assert_str_eq(threaddump_role(me), "main");
    ck_assert(stack_has(me, "threaddump_capture"));
    threaddump_free(d);
    atomic_store(&release_all, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
}
END_TEST

static atomic_int second_rc = 1;
static void *second_capture(void *arg)
{
    (void)arg;
    usleep(30000); /* inside the first capture's 100 ms wait */
    struct threaddump *d = NULL;
    atomic_store(&second_rc, threaddump_capture(&d));
    threaddump_free(d);
    return NULL;
}

START_TEST(a_thread_blocking_the_signal_is_reported_and_a_second_capture_is_ebusy)
{
    atomic_store(&release_all, 0);
    pthread_t deaf, ok, other;
    ck_assert_int_eq(pthread_create(&deaf, NULL, parked_main, (void *)(intptr_t)-1), 0);
    ck_assert_int_eq(pthread_create(&ok, NULL, parked_main, (void *)(intptr_t)7), 0);
    usleep(50000);
    ck_assert_int_eq(pthread_create(&other, NULL, second_capture, NULL), 0);
    struct threaddump *d;
    uint64_t t0 = ms_now();
    ck_assert_int_eq(threaddump_capture(&d), 0);
    uint64_t took = ms_now() - t0;
    pthread_join(other, NULL);
    ck_assert_int_eq(atomic_load(&second_rc), -EBUSY);
    ck_assert_msg(took >= THREADDUMP_WAIT_MS && took < 1000, "capture took %llu ms",
                  (unsigned long long)took);
    const struct threaddump_thread *t = find(d, "t-park--1");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(state(t), THREADDUMP_WAITING); /* no answer */
    ck_assert_uint_eq(t->nframes, 0);
    t = find(d, "t-park-7");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(state(t), THREADDUMP_OK);
    ck_assert(stack_has(t, "park_here"));
    ck_assert_uint_eq(d->answered, d->nthreads - 1);
    threaddump_free(d);
    /* the signal still pending on the deaf thread stays harmless once it unblocks: it has no
     * capture to write into (the handler checks), and the next capture works */
    ck_assert_int_eq(threaddump_capture(&d), 0);
    threaddump_free(d);
    atomic_store(&release_all, 1);
    pthread_join(deaf, NULL);
    pthread_join(ok, NULL);
}
END_TEST

/* A pool job that parks in park_here; helpers of its parallel task park there too. */
struct pjob {
    struct pool_job job;
    struct pool *p;
    atomic_int started;
};
static int chunk_park(void *arg, uint64_t chunk, void *local)
{
    (void)arg;
    (void)chunk;
    (void)local;
    park_here();
    return 0;
}
static enum pool_outcome pjob_run(struct pool_job *j, void *local)
{
    struct pjob *pj = (struct pjob *)j;
    atomic_store(&pj->started, 1);
    struct pool_par par = {.fn = chunk_park, .nchunks = 2};
    pool_parallel(pj->p, &par, local);
    return POOL_DONE;
}

START_TEST(workers_report_the_label_of_their_job)
{
    atomic_store(&release_all, 0);
    struct pool *p = pool_create(2, 4, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(p);
    struct pjob pj = {.job = {.run = pjob_run, .label = "req-42"}, .p = p};
    ck_assert_int_eq(pool_submit(p, &pj.job), 0);
    for (int i = 0; i < 200 && !atomic_load(&pj.started); i++)
        usleep(5000);
    usleep(50000); /* the second worker claims the other chunk */
    struct threaddump *d;
    ck_assert_int_eq(threaddump_capture(&d), 0);
    for (int w = 0; w < 2; w++) {
        char name[32];
        snprintf(name, sizeof name, "primed-wrk-%d", w);
        const struct threaddump_thread *t = find(d, name);
        ck_assert_msg(t != NULL, "%s not listed", name);
        ck_assert_str_eq(threaddump_role(t), "worker");
        ck_assert_str_eq(t->label, "req-42");
        ck_assert(stack_has(t, "park_here"));
        ck_assert(stack_has(t, "chunk_park"));
    }
    const struct threaddump_thread *wd = find(d, "primed-watchdog");
    ck_assert_ptr_nonnull(wd);
    ck_assert_str_eq(threaddump_role(wd), "watchdog");
    ck_assert_str_eq(wd->label, "");
    threaddump_free(d);
    atomic_store(&release_all, 1);
    pool_destroy(p);
    ck_assert_ptr_null(pool_current_label()); /* this thread runs no job */
}
END_TEST

#else

START_TEST(capture_is_enosys_under_tsan)
{
    struct threaddump *d = (struct threaddump *)1;
    ck_assert_int_eq(threaddump_capture(&d), -ENOSYS);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(threaddump_signal(), 0);
}
END_TEST

#endif

static Suite *threaddump_suite(void)
{
    Suite *s = suite_create("threaddump");
    TCase *tc = tcase_create("capture");
    tcase_set_timeout(tc, 60);
#if THREADDUMP_TEST_WORKS
    tcase_add_test(tc, parked_threads_are_listed_by_name_with_their_function);
    tcase_add_test(tc, a_thread_blocking_the_signal_is_reported_and_a_second_capture_is_ebusy);
    tcase_add_test(tc, workers_report_the_label_of_their_job);
#else
    tcase_add_test(tc, capture_is_enosys_under_tsan);
#endif
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(threaddump_suite)
