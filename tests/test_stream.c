/* test_stream.c — the bounded producer/consumer buffer: integrity across blocks, the producer
 * parks when full and is resumed exactly once (by the reader or by cancel, whichever is first),
 * the consumer parks and is woken, the budget is enforced. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
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

/* The test's producer thread stands in for a pool job: on STREAM_GET_FULL it waits (here, in
 * the test only) until `resume` has been called for that park. */
struct prod {
    struct stream *s;
    size_t total; /* bytes to produce: byte i is (i * 7) & 0xff */
    atomic_int blocks_got;
    int got_failed;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned resumes; /* under mu */
};

static void prod_resume(void *arg)
{
    struct prod *p = arg;
    pthread_mutex_lock(&p->mu);
    p->resumes++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void *producer(void *arg)
{
    struct prod *p = arg;
    size_t i = 0;
    unsigned parks_seen = 0;
    while (i < p->total) {
        size_t cap;
        char *b = NULL;
        enum stream_get g = stream_block_get(p->s, &b, &cap);
        if (g == STREAM_GET_FULL) {
            parks_seen++;
            pthread_mutex_lock(&p->mu);
            while (p->resumes < parks_seen)
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
            continue;
        }
        if (g != STREAM_GET_OK) {
            p->got_failed = 1;
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

static void prod_init(struct prod *p, size_t total)
{
    memset(p, 0, sizeof *p);
    p->total = total;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
}

static void prod_fini(struct prod *p)
{
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

START_TEST(bytes_arrive_in_order_across_blocks_with_parks)
{
    atomic_store(&wakes, 0);
    struct prod p;
    prod_init(&p, 1000003);
    struct stream *s = stream_create(NULL, 4 * 1024, 1024, on_wake, NULL, prod_resume, &p);
    ck_assert_ptr_nonnull(s);
    p.s = s;
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
    prod_fini(&p);
}
END_TEST

static atomic_int resumes;
static void on_resume(void *arg)
{
    atomic_fetch_add(&resumes, 1);
}

static void fill_all(struct stream *s, unsigned nblocks)
{
    for (unsigned i = 0; i < nblocks; i++) {
        char *b = NULL;
        size_t cap = 0;
        ck_assert_int_eq(stream_block_get(s, &b, &cap), STREAM_GET_OK);
        memset(b, 'x', cap);
        stream_block_commit(s, cap);
    }
}

START_TEST(full_producer_parks_and_is_resumed_once_half_the_blocks_are_free)
{
    atomic_store(&resumes, 0);
    struct stream *s = stream_create(NULL, 4 * 100, 100, on_wake, NULL, on_resume, NULL);
    fill_all(s, 4);
    char *b = NULL;
    size_t cap = 0, n;
    ck_assert_int_eq(stream_block_get(s, &b, &cap), STREAM_GET_FULL); /* never blocks */
    char buf[100];
    ck_assert_int_eq(stream_read(s, buf, sizeof buf, &n, on_park, NULL), STREAM_DATA);
    ck_assert_int_eq(atomic_load(&resumes), 0); /* one block free of four: not yet */
    ck_assert_int_eq(stream_read(s, buf, 50, &n, on_park, NULL), STREAM_DATA);
    ck_assert_int_eq(atomic_load(&resumes), 0); /* a partly read block is not free */
    ck_assert_int_eq(stream_read(s, buf, 50, &n, on_park, NULL), STREAM_DATA);
    ck_assert_int_eq(atomic_load(&resumes), 1); /* two of four free */
    ck_assert_int_eq(stream_read(s, buf, sizeof buf, &n, on_park, NULL), STREAM_DATA);
    ck_assert_int_eq(atomic_load(&resumes), 1); /* not parked any more: no second resume */
    ck_assert_int_eq(stream_block_get(s, &b, &cap), STREAM_GET_OK);
    stream_block_commit(s, 1);
    stream_finish(s, true);
    size_t rest = 0;
    enum stream_read_result r;
    while ((r = stream_read(s, buf, sizeof buf, &n, on_park, NULL)) == STREAM_DATA)
        rest += n;
    ck_assert_int_eq(r, STREAM_EOF);
    ck_assert_uint_eq(rest, 100 + 1); /* the fourth block and the one after the resume */
    ck_assert_int_eq(atomic_load(&resumes), 1);
    stream_destroy(s);
}
END_TEST

/* A reader thread that frees one block 200 µs after it starts: a reader keeping pace. */
static void *late_reader(void *arg)
{
    struct stream *s = arg;
    char buf[100];
    size_t n;
    usleep(200);
    stream_read(s, buf, sizeof buf, &n, on_park, NULL);
    return NULL;
}

START_TEST(full_producer_waits_for_a_reader_that_keeps_pace)
{
    /* The wait is at most 1 ms: on a loaded machine the reader may miss it, so one success in
     * up to 20 tries; without the wait every try would find the buffer full at once. */
    bool waited = false;
    for (int attempt = 0; attempt < 20 && !waited; attempt++) {
        atomic_store(&resumes, 0);
        struct stream *s = stream_create(NULL, 4 * 100, 100, on_wake, NULL, on_resume, NULL);
        fill_all(s, 4);
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, late_reader, s), 0);
        char *b = NULL;
        size_t cap = 0;
        enum stream_get g = stream_block_get(s, &b, &cap);
        ck_assert_int_ne(g, STREAM_GET_FAILED);
        waited = g == STREAM_GET_OK;
        pthread_join(t, NULL);
        if (!waited) stream_cancel(s); /* the park must still be resumed exactly once */
        ck_assert_int_eq(atomic_load(&resumes), waited ? 0 : 1);
        stream_destroy(s);
    }
    ck_assert_msg(waited, "the producer never waited for a reader 200 us away");
}
END_TEST

START_TEST(a_slow_reader_costs_one_wait_then_the_producer_parks_at_once)
{
    /* Once a wait has run out, a reader 200 µs away no longer holds the producer. A stall of the
     * test thread could let the reader in first, so one clean park in up to 5 tries; with a wait
     * every try would get the block the reader frees. */
    bool parked_at_once = false;
    for (int attempt = 0; attempt < 5 && !parked_at_once; attempt++) {
        atomic_store(&resumes, 0);
        struct stream *s = stream_create(NULL, 4 * 100, 100, on_wake, NULL, on_resume, NULL);
        fill_all(s, 4);
        char *b = NULL, buf[100];
        size_t cap = 0, n;
        /* nobody reads: the one wait runs out, the reader is now known slow */
        ck_assert_int_eq(stream_block_get(s, &b, &cap), STREAM_GET_FULL);
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(stream_read(s, buf, sizeof buf, &n, on_park, NULL), STREAM_DATA);
        ck_assert_int_eq(atomic_load(&resumes), 1);
        fill_all(s, 2);
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, late_reader, s), 0);
        enum stream_get g = stream_block_get(s, &b, &cap);
        ck_assert_int_ne(g, STREAM_GET_FAILED);
        parked_at_once = g == STREAM_GET_FULL;
        pthread_join(t, NULL);
        stream_cancel(s);
        ck_assert_int_eq(atomic_load(&resumes), parked_at_once ? 2 : 1);
        stream_destroy(s);
    }
    ck_assert_msg(parked_at_once, "the producer kept waiting for a reader known to be slow");
}
END_TEST

START_TEST(empty_read_parks_and_commit_wakes)
{
    atomic_store(&wakes, 0);
    atomic_store(&parks, 0);
    struct stream *s = stream_create(NULL, 4 * 64, 64, on_wake, NULL, NULL, NULL);
    ck_assert_int_eq(stream_state(s), STREAM_S_PENDING);
    char buf[64];
    size_t n, cap;
    char *b = NULL;
    ck_assert_int_eq(stream_read(s, buf, sizeof buf, &n, on_park, NULL), STREAM_EMPTY);
    ck_assert_int_eq(atomic_load(&parks), 1);
    ck_assert_int_eq(stream_block_get(s, &b, &cap), STREAM_GET_OK);
    memcpy(b, "abc", 3);
    stream_block_commit(s, 3);
    ck_assert_int_eq(atomic_load(&wakes), 1);
    ck_assert_int_eq(stream_state(s), STREAM_S_FLOWING);
    ck_assert_int_eq(stream_read(s, buf, sizeof buf, &n, on_park, NULL), STREAM_DATA);
    ck_assert_uint_eq(n, 3);
    /* Not parked: a commit does not wake again. */
    ck_assert_int_eq(stream_block_get(s, &b, &cap), STREAM_GET_OK);
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

START_TEST(cancel_resumes_a_parked_producer_once_and_fails_both_sides)
{
    atomic_store(&resumes, 0);
    struct stream *s = stream_create(NULL, 2 * 64, 64, on_wake, NULL, on_resume, NULL);
    fill_all(s, 2);
    char *b = NULL;
    size_t cap, n;
    ck_assert_int_eq(stream_block_get(s, &b, &cap), STREAM_GET_FULL);
    stream_cancel(s);
    ck_assert_int_eq(atomic_load(&resumes), 1);
    stream_cancel(s); /* again: nothing is parked any more */
    char buf[64];
    ck_assert_int_eq(stream_read(s, buf, sizeof buf, &n, on_park, NULL), STREAM_FAILED);
    ck_assert_int_eq(atomic_load(&resumes), 1);
    ck_assert_int_eq(stream_block_get(s, &b, &cap), STREAM_GET_FAILED);
    stream_destroy(s);
}
END_TEST

START_TEST(cancel_without_a_parked_producer_does_not_resume)
{
    atomic_store(&resumes, 0);
    struct stream *s = stream_create(NULL, 2 * 64, 64, on_wake, NULL, on_resume, NULL);
    fill_all(s, 1);
    stream_cancel(s);
    ck_assert_int_eq(atomic_load(&resumes), 0);
    stream_destroy(s);
}
END_TEST

/* The reader freeing space and a cancel race for one parked producer: exactly one resume, in
 * every interleaving (run under TSan too). */
struct race {
    struct stream *s;
    pthread_barrier_t go;
};

static void *race_reader(void *arg)
{
    struct race *rc = arg;
    pthread_barrier_wait(&rc->go);
    char buf[64];
    size_t n;
    while (stream_read(rc->s, buf, sizeof buf, &n, NULL, NULL) == STREAM_DATA) {
    }
    return NULL;
}

static void *race_cancel(void *arg)
{
    struct race *rc = arg;
    pthread_barrier_wait(&rc->go);
    stream_cancel(rc->s);
    return NULL;
}

START_TEST(reader_resume_and_cancel_race_resumes_exactly_once)
{
    for (int i = 0; i < 500; i++) {
        atomic_store(&resumes, 0);
        struct race rc;
        rc.s = stream_create(NULL, 2 * 64, 64, NULL, NULL, on_resume, NULL);
        pthread_barrier_init(&rc.go, NULL, 2);
        fill_all(rc.s, 2);
        char *b = NULL;
        size_t cap;
        ck_assert_int_eq(stream_block_get(rc.s, &b, &cap), STREAM_GET_FULL);
        pthread_t a, c;
        pthread_create(&a, NULL, race_reader, &rc);
        pthread_create(&c, NULL, race_cancel, &rc);
        pthread_join(a, NULL);
        pthread_join(c, NULL);
        ck_assert_int_eq(atomic_load(&resumes), 1);
        pthread_barrier_destroy(&rc.go);
        stream_destroy(rc.s);
    }
}
END_TEST

START_TEST(failure_before_data_is_failed_empty)
{
    struct stream *s = stream_create(NULL, 2 * 64, 64, NULL, NULL, NULL, NULL);
    stream_finish(s, false);
    ck_assert_int_eq(stream_state(s), STREAM_S_FAILED_EMPTY);
    stream_destroy(s);
}
END_TEST

START_TEST(budget_refuses_a_stream_that_does_not_fit_and_is_returned_on_destroy)
{
    struct stream_budget b;
    stream_budget_init(&b, 1000);
    struct stream *a = stream_create(&b, 600, 300, NULL, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(atomic_load(&b.used), 600);
    errno = 0;
    struct stream *c = stream_create(&b, 600, 300, NULL, NULL, NULL, NULL);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_uint_eq(atomic_load(&b.used), 600);
    stream_destroy(a);
    ck_assert_uint_eq(atomic_load(&b.used), 0);
    c = stream_create(&b, 600, 300, NULL, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(c);
    stream_destroy(c);
    stream_budget_destroy(&b);
}
END_TEST

/* The producer's first block is the start of the stream's buffer. */
static char *first_block(struct stream *s)
{
    char *blk = NULL;
    size_t cap = 0;
    ck_assert_int_eq(stream_block_get(s, &blk, &cap), STREAM_GET_OK);
    ck_assert_ptr_nonnull(blk);
    return blk;
}

START_TEST(finished_buffers_are_reused_up_to_the_cache_bound)
{
    struct stream_budget b;
    stream_budget_init(&b, 1 << 20);
    stream_budget_set_cache(&b, 650, 300, 1); /* streams of 650 have 2 blocks of 300: 600 */

    /* A stream that never produced holds no buffer and gives none back. */
    stream_destroy(stream_create(&b, 650, 300, NULL, NULL, NULL, NULL));
    ck_assert_uint_eq(stream_budget_cached(&b), 0);

    struct stream *a = stream_create(&b, 650, 300, NULL, NULL, NULL, NULL);
    char *mem = first_block(a);
    memset(mem, 'x', 300);
    stream_destroy(a);
    ck_assert_uint_eq(stream_budget_cached(&b), 1);
    ck_assert_uint_eq(atomic_load(&b.cache_misses), 1);

    /* The next stream's producer gets that buffer back; one alongside it gets a fresh one. */
    struct stream *c = stream_create(&b, 600, 300, NULL, NULL, NULL, NULL);
    ck_assert_ptr_eq(first_block(c), mem);
    ck_assert_uint_eq(atomic_load(&b.cache_hits), 1);
    ck_assert_uint_eq(stream_budget_cached(&b), 0);
    struct stream *d = stream_create(&b, 600, 300, NULL, NULL, NULL, NULL);
    ck_assert_ptr_ne(first_block(d), mem);
    ck_assert_uint_eq(atomic_load(&b.cache_misses), 2);

    /* Another size is neither taken from nor given to the cache. */
    struct stream *e = stream_create(&b, 900, 300, NULL, NULL, NULL, NULL);
    (void)first_block(e);
    stream_destroy(e);
    ck_assert_uint_eq(stream_budget_cached(&b), 0);
    ck_assert_uint_eq(atomic_load(&b.cache_misses), 2);

    /* Two finish: the cache keeps one (its bound), the other is freed. */
    stream_destroy(c);
    stream_destroy(d);
    ck_assert_uint_eq(stream_budget_cached(&b), 1);
    ck_assert_uint_eq(atomic_load(&b.used), 0);
    stream_budget_destroy(&b); /* frees the cached one: LeakSanitizer would see a leak otherwise */
}
END_TEST

static Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("stream");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bytes_arrive_in_order_across_blocks_with_parks);
    tcase_add_test(tc, full_producer_parks_and_is_resumed_once_half_the_blocks_are_free);
    tcase_add_test(tc, full_producer_waits_for_a_reader_that_keeps_pace);
    tcase_add_test(tc, a_slow_reader_costs_one_wait_then_the_producer_parks_at_once);
    tcase_add_test(tc, empty_read_parks_and_commit_wakes);
    tcase_add_test(tc, cancel_resumes_a_parked_producer_once_and_fails_both_sides);
    tcase_add_test(tc, cancel_without_a_parked_producer_does_not_resume);
    tcase_add_test(tc, reader_resume_and_cancel_race_resumes_exactly_once);
    tcase_add_test(tc, failure_before_data_is_failed_empty);
    tcase_add_test(tc, budget_refuses_a_stream_that_does_not_fit_and_is_returned_on_destroy);
    tcase_add_test(tc, finished_buffers_are_reused_up_to_the_cache_bound);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(stream_suite)
