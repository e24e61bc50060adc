/* test_picache.c — the bounded π cache (picache.h): exact LRU eviction per shard against a model,
 * neighbour lookups (by x and by π) against a brute-force scan, the charges to the request memory
 * budget (as the arrays grow; a budget that cannot take more stops the growth, not the cache),
 * and the bound under random inserts and lookups from 8 threads while a ninth samples the stats
 * (bytes never above the bound, entries never above the capacity, every hit the value that was
 * put). The cache never computes π: values here are a function of x. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "testutil.h"
#include "primed/picache.h"
#include "primed/reqmem.h"

/* Any non-decreasing function will do for the π of the tests (near_pi relies on that order). */
static uint64_t val(uint64_t x)
{
    return x / 3 + 7;
}

static unsigned shard_of(const struct picache_stats *st, uint64_t x)
{
    unsigned bits = 0;
    while ((1u << bits) < st->shards)
        bits++;
    return bits ? (unsigned)((x * 0x9e3779b97f4a7c15ull) >> (64 - bits)) : 0;
}

START_TEST(off_small_and_charged)
{
    struct picache *c = (struct picache *)1;
    ck_assert_int_eq(picache_create(0, NULL, &c), 0);
    ck_assert_ptr_null(c); /* off */
    uint64_t pi = 0;
    ck_assert(!picache_get(NULL, 5, &pi));
    picache_put(NULL, 5, 3); /* dropped */
    struct picache_point lo, hi;
    picache_near_x(NULL, 5, &lo, &hi);
    ck_assert(!lo.ok && !hi.ok);
    ck_assert_int_eq(picache_create(PICACHE_BYTES_MIN - 1, NULL, &c), -EINVAL);

    /* The entry arrays are charged as they grow, the fixed part not at all. */
    struct reqmem m;
    reqmem_init(&m, 1 << 20);
    ck_assert_int_eq(picache_create(32 << 10, &m, &c), 0);
    ck_assert_uint_eq(atomic_load(&m.used), 0);
    struct picache_stats st;
    picache_stats_get(c, &st);
    ck_assert_uint_eq(st.bound, 32 << 10);
    ck_assert_uint_le(st.bytes, 4096); /* the shard table */
    ck_assert_uint_ge(st.capacity, (32 << 10) * 9 / 10 / PICACHE_ENTRY_BYTES);
    for (uint64_t x = 0; x < 5000; x++)
        picache_put(c, x * 7919, x);
    picache_stats_get(c, &st);
    ck_assert_uint_eq(st.entries, st.capacity);
    ck_assert_uint_le(st.bytes, st.bound);
    ck_assert_uint_eq(atomic_load(&m.used), st.capacity * PICACHE_ENTRY_BYTES);
    ck_assert_uint_eq(atomic_load(&m.rejections), 0);
    picache_destroy(c);
    ck_assert_uint_eq(atomic_load(&m.used), 0);

    /* A budget that cannot hold the bound: the cache stops growing where the budget ends, keeps
     * working at that size (evicting), and never makes a refusal count as a refused request. */
    reqmem_init(&m, 64 << 10);
    ck_assert_int_eq(reqmem_charge(&m, 60 << 10), true); /* bodies hold most of it */
    ck_assert_int_eq(picache_create(32 << 10, &m, &c), 0);
    for (uint64_t x = 0; x < 5000; x++)
        picache_put(c, x * 7919, x);
    picache_stats_get(c, &st);
    ck_assert_uint_le(atomic_load(&m.used), 64 << 10);
    ck_assert_uint_gt(st.entries, 0);
    ck_assert_uint_lt(st.entries, st.capacity);
    ck_assert_uint_gt(st.evictions, 0);
    ck_assert_uint_eq(atomic_load(&m.rejections), 0);
    picache_destroy(c);
    ck_assert_uint_eq(atomic_load(&m.used), 60 << 10);
}
END_TEST

START_TEST(get_put_hits_and_misses)
{
    struct picache *c;
    ck_assert_int_eq(picache_create(PICACHE_BYTES_DEFAULT, NULL, &c), 0);
    uint64_t pi = 0;
    ck_assert(!picache_get(c, 1000, &pi));
    picache_put(c, 1000, 168);
    ck_assert(picache_get(c, 1000, &pi));
    ck_assert_uint_eq(pi, 168);
    picache_put(c, 1000, 168); /* again: one entry */
    picache_put(c, 0, 0);
    picache_put(c, UINT64_MAX, 425656284035217743ull);
    ck_assert(picache_get(c, 0, &pi) && pi == 0);
    ck_assert(picache_get(c, UINT64_MAX, &pi) && pi == 425656284035217743ull);
    struct picache_stats st;
    picache_stats_get(c, &st);
    ck_assert_uint_eq(st.entries, 3);
    ck_assert_uint_eq(st.hits, 3);
    ck_assert_uint_eq(st.misses, 1);
    ck_assert_uint_eq(st.evictions, 0);
    ck_assert_uint_eq(st.shards, 16);
    picache_destroy(c);
}
END_TEST

/* A small cache filled far past its capacity with keys drawn from a pool a little larger than
 * it, gets mixed in: after every operation the cache holds exactly what a per-shard LRU model
 * holds (each shard's capacity is capacity / shards). */
START_TEST(lru_per_shard_agrees_with_a_model)
{
    enum { KEYS = 1200, STEPS = 60000 };
    struct picache *c;
    ck_assert_int_eq(picache_create(16 << 10, NULL, &c), 0);
    struct picache_stats st;
    picache_stats_get(c, &st);
    unsigned ns = st.shards, per = (unsigned)(st.capacity / ns);
    ck_assert_uint_ge(per, 64);
    ck_assert_uint_le(KEYS / ns, per * 3); /* a pool not far above the capacity: hits too */
    /* model: per shard, keys in recency order (most recent first) */
    uint64_t *order = calloc((size_t)ns * per, sizeof *order);
    unsigned *len = calloc(ns, sizeof *len);
    uint64_t keys[KEYS], seed = 0xc0ffee1234ull, evictions = 0, hits = 0, misses = 0;
    for (int i = 0; i < KEYS; i++)
        keys[i] = xorshift64(&seed) >> (i % 40);
    for (int step = 0; step < STEPS; step++) {
        uint64_t x = keys[xorshift64(&seed) % KEYS];
        unsigned s = shard_of(&st, x);
        uint64_t *o = order + (size_t)s * per;
        unsigned pos = len[s];
        for (unsigned i = 0; i < len[s]; i++)
            if (o[i] == x) pos = i;
        bool is_get = xorshift64(&seed) % 3 == 0;
        uint64_t pi = 0;
        if (is_get) {
            bool hit = picache_get(c, x, &pi);
            ck_assert_msg(hit == (pos < len[s]), "step %d: get %" PRIu64 " hit %d", step, x, hit);
            if (!hit) {
                misses++;
                continue;
            }
            hits++;
            ck_assert_uint_eq(pi, val(x));
        } else {
            picache_put(c, x, val(x));
            if (pos == len[s]) {
                if (len[s] == per) {
                    evictions++;
                    pos = per - 1; /* the least recent goes */
                } else {
                    len[s]++;
                }
            }
        }
        memmove(o + 1, o, pos * sizeof *o); /* x to the front */
        o[0] = x;
    }
    picache_stats_get(c, &st);
    uint64_t total = 0;
    for (unsigned s = 0; s < ns; s++)
        total += len[s];
    ck_assert_uint_eq(st.entries, total);
    ck_assert_uint_eq(st.evictions, evictions);
    ck_assert_uint_eq(st.hits, hits);
    ck_assert_uint_eq(st.misses, misses);
    ck_assert_uint_gt(evictions, 1000);
    ck_assert_uint_le(st.bytes, st.bound);
    free(order);
    free(len);
    picache_destroy(c);
}
END_TEST

/* near_x and near_pi against a scan of everything put (no evictions: the cache is large), at
 * random points, at cached points and beyond both ends; π with long runs of equal values. */
START_TEST(neighbours_agree_with_a_scan)
{
    enum { N = 3000, PROBES = 20000 };
    struct picache *c;
    ck_assert_int_eq(picache_create(PICACHE_BYTES_DEFAULT, NULL, &c), 0);
    uint64_t xs[N], seed = 0xabcdef987ull;
    for (int i = 0; i < N; i++) {
        xs[i] = xorshift64(&seed) % 1000000 + 1000;
        picache_put(c, xs[i], xs[i] / 64); /* many equal π */
    }
    for (int p = 0; p < PROBES; p++) {
        uint64_t x = p % 3 == 0 ? xs[xorshift64(&seed) % N] : xorshift64(&seed) % 1002000;
        struct picache_point lo, hi, want_lo = {0}, want_hi = {0};
        picache_near_x(c, x, &lo, &hi);
        for (int i = 0; i < N; i++) {
            if (xs[i] < x && (!want_lo.ok || xs[i] > want_lo.x))
                want_lo = (struct picache_point){true, xs[i], xs[i] / 64};
            if (xs[i] > x && (!want_hi.ok || xs[i] < want_hi.x))
                want_hi = (struct picache_point){true, xs[i], xs[i] / 64};
        }
        ck_assert(lo.ok == want_lo.ok && hi.ok == want_hi.ok);
        ck_assert(!lo.ok || (lo.x == want_lo.x && lo.pi == want_lo.pi));
        ck_assert(!hi.ok || (hi.x == want_hi.x && hi.pi == want_hi.pi));

        uint64_t k = x / 64;
        picache_near_pi(c, k, &lo, &hi);
        want_lo = want_hi = (struct picache_point){0};
        for (int i = 0; i < N; i++) {
            uint64_t v = xs[i] / 64;
            if (v < k && (!want_lo.ok || v > want_lo.pi || (v == want_lo.pi && xs[i] > want_lo.x)))
                want_lo = (struct picache_point){true, xs[i], v};
            if (v >= k && (!want_hi.ok || v < want_hi.pi || (v == want_hi.pi && xs[i] < want_hi.x)))
                want_hi = (struct picache_point){true, xs[i], v};
        }
        ck_assert(lo.ok == want_lo.ok && hi.ok == want_hi.ok);
        ck_assert_msg(!lo.ok || (lo.x == want_lo.x && lo.pi == want_lo.pi), "k %" PRIu64, k);
        ck_assert_msg(!hi.ok || (hi.x == want_hi.x && hi.pi == want_hi.pi), "k %" PRIu64, k);
    }
    struct picache_stats st;
    picache_stats_get(c, &st);
    ck_assert_uint_eq(st.hits + st.misses, 0); /* neighbour lookups are neither */
    picache_destroy(c);
}
END_TEST

/* ---- threads ------------------------------------------------------------------------------- */

struct hammer {
    struct picache *c;
    uint64_t seed;
    uint64_t wrong; /* hits with a value that was never put for that x */
};
static atomic_bool stop_sampling;

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < 200000; i++) {
        uint64_t r = xorshift64(&h->seed);
        /* half the keys from a small hot set (hits and refreshes), half anywhere (evictions) */
        uint64_t x = r & 1 ? (r >> 8) % 4096 : r >> 1;
        uint64_t pi;
        if (r & 2) {
            if (picache_get(h->c, x, &pi) && pi != val(x)) h->wrong++;
        } else if (r & 4) {
            struct picache_point lo, hi;
            picache_near_x(h->c, x, &lo, &hi);
            if ((lo.ok && (lo.x >= x || lo.pi != val(lo.x))) ||
                (hi.ok && (hi.x <= x || hi.pi != val(hi.x))))
                h->wrong++;
        } else {
            picache_put(h->c, x, val(x));
        }
    }
    return NULL;
}

struct sampler {
    struct picache *c;
    uint64_t samples, max_bytes, max_entries, capacity, bound;
};

static void *sampler_main(void *arg)
{
    struct sampler *s = arg;
    while (!atomic_load(&stop_sampling)) {
        struct picache_stats st;
        picache_stats_get(s->c, &st);
        s->samples++;
        if (st.bytes > s->max_bytes) s->max_bytes = st.bytes;
        if (st.entries > s->max_entries) s->max_entries = st.entries;
        s->capacity = st.capacity;
        s->bound = st.bound;
    }
    return NULL;
}

START_TEST(bound_holds_under_threads)
{
    enum { T = 8 };
    const uint64_t bound = 64 << 10; /* ~2300 entries: evictions all the time */
    struct reqmem m;
    reqmem_init(&m, 1 << 20);
    struct picache *c;
    ck_assert_int_eq(picache_create(bound, &m, &c), 0);
    struct hammer h[T];
    pthread_t th[T], sth;
    struct sampler smp = {.c = c};
    atomic_store(&stop_sampling, false);
    ck_assert_int_eq(pthread_create(&sth, NULL, sampler_main, &smp), 0);
    for (int i = 0; i < T; i++) {
        h[i] = (struct hammer){.c = c, .seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1)};
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        ck_assert_uint_eq(h[i].wrong, 0);
    }
    atomic_store(&stop_sampling, true);
    pthread_join(sth, NULL);
    struct picache_stats st;
    picache_stats_get(c, &st);
    ck_assert_uint_gt(smp.samples, 0);
    ck_assert_uint_le(smp.max_bytes, bound);
    ck_assert_uint_le(smp.max_entries, smp.capacity);
    ck_assert_uint_le(st.bytes, bound);
    ck_assert_uint_eq(st.entries, st.capacity); /* full: every shard reached its share */
    ck_assert_uint_gt(st.evictions, 10000);
    ck_assert_uint_gt(st.hits, 1000);
    ck_assert_uint_eq(atomic_load(&m.used), st.capacity * PICACHE_ENTRY_BYTES); /* its arrays */
    picache_destroy(c);
    ck_assert_uint_eq(atomic_load(&m.used), 0);
}
END_TEST

static Suite *picache_suite(void)
{
    Suite *s = suite_create("picache");
    TCase *tc = tcase_create("picache");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, off_small_and_charged);
    tcase_add_test(tc, get_put_hits_and_misses);
    tcase_add_test(tc, lru_per_shard_agrees_with_a_model);
    tcase_add_test(tc, neighbours_agree_with_a_scan);
    tcase_add_test(tc, bound_holds_under_threads);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(picache_suite)
