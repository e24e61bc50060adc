/* test_procstat.c — the process collector's values are those of this very process: fds follow
 * open/close, threads follow pthread_create, RSS follows touched memory, start time is near
 * now, max fds equals getrlimit, CPU time grows with work. */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "check_main.h"
#include "primed/procstat.h"

START_TEST(values_describe_this_process)
{
    struct procstat ps;
    ck_assert_int_eq(procstat_read(&ps), 0);
    ck_assert_uint_gt(ps.open_fds, 0); /* at least stdin/stdout/stderr */
    ck_assert_uint_ge(ps.threads, 1);
    ck_assert_uint_gt(ps.resident_bytes, 0);
    ck_assert_uint_ge(ps.virtual_bytes, ps.resident_bytes);
    ck_assert(ps.cpu_seconds >= 0);
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    ck_assert_uint_eq(ps.max_fds, (uint64_t)rl.rlim_cur);
    double now = (double)time(NULL);
    /* boot time is whole seconds and the process started at most a few minutes ago */
    ck_assert_msg(ps.start_time_seconds <= now + 1 && ps.start_time_seconds > now - 600,
                  "start %f now %f", ps.start_time_seconds, now);
}
END_TEST

START_TEST(open_fds_follow_open_and_close)
{
    struct procstat a, b, c;
    ck_assert_int_eq(procstat_read(&a), 0);
    int fds[5];
    for (int i = 0; i < 5; i++)
        ck_assert_int_ge(fds[i] = open("/dev/null", O_RDONLY), 0);
    ck_assert_int_eq(procstat_read(&b), 0);
    for (int i = 0; i < 5; i++)
        close(fds[i]);
    ck_assert_int_eq(procstat_read(&c), 0);
    ck_assert_uint_eq(b.open_fds, a.open_fds + 5);
    ck_assert_uint_eq(c.open_fds, a.open_fds);
}
END_TEST

static pthread_barrier_t bar;
static void *parked(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&bar); /* started */
    pthread_barrier_wait(&bar); /* counted: may exit */
    return NULL;
}

START_TEST(threads_follow_pthread_create)
{
    struct procstat a, b;
    /* Warm-up: runtimes may start a helper thread at the first pthread_create (TSan does). */
    pthread_t w;
    pthread_barrier_init(&bar, NULL, 1);
    ck_assert_int_eq(pthread_create(&w, NULL, parked, NULL), 0);
    pthread_join(w, NULL);
    pthread_barrier_destroy(&bar);
    ck_assert_int_eq(procstat_read(&a), 0);
    pthread_barrier_init(&bar, NULL, 4);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, parked, NULL), 0);
    pthread_barrier_wait(&bar);
    ck_assert_int_eq(procstat_read(&b), 0);
    pthread_barrier_wait(&bar);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    ck_assert_uint_eq(b.threads, a.threads + 3);
}
END_TEST

START_TEST(resident_memory_follows_touched_pages)
{
    struct procstat a, b;
    size_t sz = 64u << 20;
    ck_assert_int_eq(procstat_read(&a), 0);
    volatile unsigned char *p = malloc(sz);
    ck_assert(p != NULL);
    for (size_t i = 0; i < sz; i += 4096)
        p[i] = 0x5a; /* volatile: the stores must happen */
    ck_assert_int_eq(procstat_read(&b), 0);
    ck_assert_msg(b.resident_bytes >= a.resident_bytes + sz / 2, "rss %llu → %llu",
                  (unsigned long long)a.resident_bytes, (unsigned long long)b.resident_bytes);
    ck_assert_uint_ge(b.virtual_bytes, a.virtual_bytes + sz);
    free((void *)p);
}
END_TEST

START_TEST(cpu_seconds_grow_with_work)
{
    struct procstat a, b;
    ck_assert_int_eq(procstat_read(&a), 0);
    /* spin until at least one clock tick of CPU is charged (bounded: 2^34 iterations) */
    volatile uint64_t x = 1;
    for (uint64_t i = 0; i < (1ull << 34); i++) {
        x = x * 6364136223846793005ull + 1;
        if ((i & 0xfffff) == 0) {
            ck_assert_int_eq(procstat_read(&b), 0);
            if (b.cpu_seconds > a.cpu_seconds) break;
        }
    }
    ck_assert(b.cpu_seconds > a.cpu_seconds);
}
END_TEST

static Suite *procstat_suite(void)
{
    Suite *s = suite_create("procstat");
    TCase *tc = tcase_create("procstat");
    tcase_add_test(tc, values_describe_this_process);
    tcase_add_test(tc, open_fds_follow_open_and_close);
    tcase_add_test(tc, threads_follow_pthread_create);
    tcase_add_test(tc, resident_memory_follows_touched_pages);
    tcase_add_test(tc, cpu_seconds_grow_with_work);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(procstat_suite)
