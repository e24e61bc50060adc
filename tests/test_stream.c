/* test_stream.c — the bounded producer/consumer buffer: integrity across blocks, the producer
 * blocks when full, the consumer parks and is woken, cancel unblocks, the budget is enforced. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_main.h"
#include "primed/stream.h"

static atomic_int wakes, parks;
static void on_wake(void *arg)
{
    atomic_fetch_add(&wakes, 1);
}
static void on_park(void *arg)
{
    atomic_fetch_add(&parks, 1);
}

struct prod {
    struct stream *s;
    size_t total; /* bytes to produce: byte i is (i * 7) & 0xff */
    atomic_int blocks_got;
    int got_null;
};

static void *producer(void *arg)
{
    struct prod *p = arg;
    size_t i = 0;
    while (i < p->total) {
        size_t cap;
        char *b = stream_block_get(p->s, &cap);
        if (!b) {
            p->got_null = 1;
            return NULL;
        }
        atomic_fetch_add(&p->blocks_got, 1);
        size_t n = 0;
        size_t want = 1 + (i * 31) % cap; /* partly filled blocks too */
        while (n < want && i < p->total)
            b[n++] = (char)((i++ * 7) & 0xff);
        stream_block_commit(p->s, n);
    }
    stream_finish(p->s, true);
    return NULL;
}

START_TEST(bytes_arrive_in_order_across_blocks)
{
    atomic_store(&wakes, 0);
    struct stream *s = stream_create(NULL, 4 * 1024, 1024, on_wake, NULL);
    ck_assert_ptr_nonnull(s);
    struct prod p = {.s = s, .total = 1000003};
    pthread_t t;
    pthread_create(&t, NULL, producer, &p);
    size_t got = 0;
    char buf[777];
    for (;;) {
        size_t n;
        enum stream_read_result r = stream_read(s, buf, sizeof buf, &n, on_park, NULL);
        if (r == STREAM_EOF) break;
        ck_assert_int_ne(r, STREAM_FAILED);
        if (r == STREAM_EMPTY) {
            usleep(100);
            continue;
        }
        for (size_t k = 0; k < n; k++, got++)
            ck_assert_int_eq((unsigned char)buf[k], (unsigned char)((got * 7) & 0xff));
    }
    pthread_join(t, NULL);
    ck_assert_uint_eq(got, p.total);
    stream_destroy(s);
}
END_TEST

START_TEST(producer_blocks_when_full_until_the_consumer_reads)
{
    struct stream *s = stream_create(NULL, 2 * 100, 100, on_wake, NULL);
    struct prod p = {.s = s, .total = 100000};
    pthread_t t;
    pthread_create(&t, NULL, producer, &p);
    /* Both blocks get filled; the third get must wait for the consumer. */
    for (int i = 0; i < 2000 && atomic_load(&p.blocks_got) < 2; i++)
        usleep(1000);
    ck_assert_int_eq(atomic_load(&p.blocks_got), 2);
    usleep(50000);
    ck_assert_int_eq(atomic_load(&p.blocks_got), 2); /* still blocked */
    char buf[100];
    size_t n;
    ck_assert_int_eq(stream_read(s, buf, sizeof buf, &n, on_park, NULL), STREAM_DATA);
    for (int i = 0; i < 2000 && atomic_load(&p.blocks_got) < 3; i++)
        usleep(1000);
    ck_assert_int_ge(atomic_load(&p.blocks_got), 3);
    stream_cancel(s);
    pthread_join(t, NULL);
    stream_destroy(s);
}
END_TEST

START_TEST(empty_read_parks_and_commit_wakes)
{
    atomic_store(&wakes, 0);
    atomic_store(&parks, 0);
    struct stream *s = stream_create(NULL, 4 * 64, 64, on_wake, NULL);
    ck_assert_int_eq(stream_state(s), STREAM_S_PENDING);
    char buf[64];
    size_t n, cap;
    ck_assert_int_eq(stream_read(s, buf, sizeof buf, &n, on_park, NULL), STREAM_EMPTY);
    ck_assert_int_eq(atomic_load(&parks), 1);
    char *b = stream_block_get(s, &cap);
    memcpy(b, "abc", 3);
    stream_block_commit(s, 3);
    ck_assert_int_eq(atomic_load(&wakes), 1);
    ck_assert_int_eq(stream_state(s), STREAM_S_FLOWING);
    ck_assert_int_eq(stream_read(s, buf, sizeof buf, &n, on_park, NULL), STREAM_DATA);
    ck_assert_uint_eq(n, 3);
    /* Not parked: a commit does not wake again. */
    b = stream_block_get(s, &cap);
    stream_block_commit(s, 1);
    ck_assert_int_eq(atomic_load(&wakes), 1);
    ck_assert_int_eq(stream_read(s, buf, sizeof buf, &n, on_park, NULL), STREAM_DATA);
    ck_assert_int_eq(stream_read(s, buf, sizeof buf, &n, on_park, NULL), STREAM_EMPTY);
    stream_finish(s, true);
    ck_assert_int_eq(atomic_load(&wakes), 2); /* parked consumer woken by the finish */
    ck_assert_int_eq(stream_read(s, buf, sizeof buf, &n, on_park, NULL), STREAM_EOF);
    stream_destroy(s);
}
END_TEST

START_TEST(cancel_unblocks_a_full_producer_and_fails_the_reader)
{
    struct stream *s = stream_create(NULL, 2 * 64, 64, on_wake, NULL);
    struct prod p = {.s = s, .total = 1 << 20};
    pthread_t t;
    pthread_create(&t, NULL, producer, &p);
    for (int i = 0; i < 2000 && atomic_load(&p.blocks_got) < 2; i++)
        usleep(1000);
    stream_cancel(s);
    pthread_join(t, NULL); /* would hang if the producer stayed blocked */
    ck_assert_int_eq(p.got_null, 1);
    char buf[8];
    size_t n;
    ck_assert_int_eq(stream_read(s, buf, sizeof buf, &n, on_park, NULL), STREAM_FAILED);
    stream_destroy(s);
}
END_TEST

START_TEST(failure_before_data_is_failed_empty)
{
    struct stream *s = stream_create(NULL, 2 * 64, 64, NULL, NULL);
    stream_finish(s, false);
    ck_assert_int_eq(stream_state(s), STREAM_S_FAILED_EMPTY);
    stream_destroy(s);
}
END_TEST

START_TEST(budget_refuses_a_stream_that_does_not_fit_and_is_returned_on_destroy)
{
    struct stream_budget b;
    stream_budget_init(&b, 1000);
    struct stream *a = stream_create(&b, 600, 300, NULL, NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(atomic_load(&b.used), 600);
    errno = 0;
    struct stream *c = stream_create(&b, 600, 300, NULL, NULL);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_uint_eq(atomic_load(&b.used), 600);
    stream_destroy(a);
    ck_assert_uint_eq(atomic_load(&b.used), 0);
    c = stream_create(&b, 600, 300, NULL, NULL);
    ck_assert_ptr_nonnull(c);
    stream_destroy(c);
}
END_TEST

static Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("stream");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bytes_arrive_in_order_across_blocks);
    tcase_add_test(tc, producer_blocks_when_full_until_the_consumer_reads);
    tcase_add_test(tc, empty_read_parks_and_commit_wakes);
    tcase_add_test(tc, cancel_unblocks_a_full_producer_and_fails_the_reader);
    tcase_add_test(tc, failure_before_data_is_failed_empty);
    tcase_add_test(tc, budget_refuses_a_stream_that_does_not_fit_and_is_returned_on_destroy);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(stream_suite)
