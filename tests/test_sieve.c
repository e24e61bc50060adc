/* test_sieve.c — the sieve engine against oracles it did not write: published values of π(10^k),
 * the primesieve and primecount CLIs, and the engine's own unsplit results for splits. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "testutil.h"
#include "primed/sieve.h"

#define U64_MAX_PRIME 18446744073709551557u

static bool slow_variant(void)
{
    const char *v = getenv("PRIMED_VARIANT");
    return v && strcmp(v, "release") != 0;
}

/* Deterministic xorshift so that failures are reproducible. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
    return xorshift64(&rng_state);
}

static uint64_t ps_count(uint64_t lo, uint64_t hi)
{
    return oracle_u64("primesieve %" PRIu64 " %" PRIu64 " -c -q", lo, hi);
}

static uint64_t count(sieve_ctx *ctx, uint64_t lo, uint64_t hi)
{
    uint64_t c = 0;
    ck_assert_int_eq(sieve_count(ctx, lo, hi, &c, NULL), 0);
    return c;
}

/* π(10^k), k = 0 … 12, as published (OEIS A006880). */
static const uint64_t published_pi[] = {0,         4,           25,          168,     1229,
                                        9592,      78498,       664579,      5761455, 50847534,
                                        455052511, 4118054813u, 37607912018u};

START_TEST(pi_of_powers_of_ten_matches_published_values)
{
    sieve_ctx *ctx = sieve_ctx_create(0);
    uint64_t x = 1;
    for (int k = 0; k <= 10; k++, x *= 10)
        ck_assert_msg(count(ctx, 0, x) == published_pi[k], "pi(1e%d)", k);
    /* π(1e11), π(1e12) whole take minutes on one core: check the top 1e8 below each against
     * the published value minus primecount's π of the rest (an independent algorithm). */
    for (int k = 11; k <= 12; k++, x *= 10) {
        uint64_t w = slow_variant() ? 10000000 : 100000000;
        uint64_t below = oracle_u64("primecount %" PRIu64, x - w);
        ck_assert_msg(count(ctx, x - w + 1, x) == published_pi[k] - below, "pi(1e%d)", k);
    }
    sieve_ctx_destroy(ctx);
}
END_TEST

START_TEST(tiny_and_degenerate_windows_are_exact)
{
    sieve_ctx *ctx = sieve_ctx_create(0);
    ck_assert_uint_eq(count(ctx, 0, 0), 0);
    ck_assert_uint_eq(count(ctx, 0, 1), 0);
    ck_assert_uint_eq(count(ctx, 2, 2), 1);
    ck_assert_uint_eq(count(ctx, 1, 2), 1);
    ck_assert_uint_eq(count(ctx, 10, 5), 0); /* lo > hi */
    ck_assert_uint_eq(count(ctx, UINT64_MAX, UINT64_MAX), 0);
    ck_assert_uint_eq(count(ctx, U64_MAX_PRIME, U64_MAX_PRIME), 1);
    ck_assert_uint_eq(count(ctx, U64_MAX_PRIME + 1, UINT64_MAX), 0);
    /* every width 0 and 1 window in [0, 400) */
    for (uint64_t lo = 0; lo < 200; lo++) {
        ck_assert_uint_eq(count(ctx, lo, lo), ps_count(lo, lo));
        ck_assert_uint_eq(count(ctx, lo, lo + 1), ps_count(lo, lo + 1));
    }
    sieve_ctx_destroy(ctx);
}
END_TEST

/* Random windows at every magnitude, with a tiny segment so that windows straddle many segment
 * and window boundaries, and with the default segment. */
START_TEST(random_windows_match_primesieve)
{
    sieve_ctx *small = sieve_ctx_create(1024);
    sieve_ctx *dflt = sieve_ctx_create(0);
    int rounds = slow_variant() ? 40 : 150;
    for (int i = 0; i < rounds; i++) {
        /* hi around 2^4 … 2^48 mostly; every 16th near 2^56 … 2^64 (the oracle needs ~1 s
         * there to generate its sieving primes) */
        int bits = i % 16 == 15 ? 56 + (int)(rnd() % 9) : 4 + (int)(rnd() % 45);
        uint64_t lo = bits >= 64 ? rnd() : rnd() & (((uint64_t)1 << bits) - 1);
        uint64_t width = rnd() % (i % 3 == 0 ? 100 : i % 3 == 1 ? 100000 : 3000000);
        uint64_t hi = UINT64_MAX - lo < width ? UINT64_MAX : lo + width;
        uint64_t want = ps_count(lo, hi);
        ck_assert_msg(count(dflt, lo, hi) == want, "[%" PRIu64 ", %" PRIu64 "]", lo, hi);
        if (width < 200000)
            ck_assert_msg(count(small, lo, hi) == want, "seg 1024 [%" PRIu64 ", %" PRIu64 "]", lo,
                          hi);
    }
    sieve_ctx_destroy(small);
    sieve_ctx_destroy(dflt);
}
END_TEST

/* Primes of a sorted listing inside [lo, hi]. */
static uint64_t list_count(const uint64_t *v, size_t n, uint64_t lo, uint64_t hi)
{
    uint64_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += v[i] >= lo && v[i] <= hi;
    return c;
}

START_TEST(windows_straddling_segment_boundaries_match_primesieve)
{
    sieve_ctx *ctx = sieve_ctx_create(1024); /* segment = 30720 numbers */
    const uint64_t span = 30 * 1024;
    static const uint64_t bases[] = {0, 1000000007, 1000000000000000000u, 18446744073709000000u};
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++) {
        uint64_t first = bases[b] - bases[b] % span + span;
        size_t n;
        uint64_t *v = oracle_primes(first - 100, first + 3 * span + 100, &n);
        for (uint64_t k = 0; k < 3; k++) {
            uint64_t edge = first + k * span;
            for (uint64_t d = 0; d < 3; d++) {
                uint64_t lo = edge - 30 - d, hi = edge + d * 7 + 29;
                ck_assert_uint_eq(count(ctx, lo, hi), list_count(v, n, lo, hi));
                ck_assert_uint_eq(count(ctx, lo, edge - 1 + d), list_count(v, n, lo, edge - 1 + d));
            }
        }
        /* a window over all three boundaries */
        ck_assert_uint_eq(count(ctx, first - 100, first + 3 * span + 100), n);
        free(v);
    }
    sieve_ctx_destroy(ctx);
}
END_TEST

START_TEST(windows_near_1e18_and_2_64_match_primesieve)
{
    /* Both paths: the full sieve (every sieving prime up to √hi) and the hybrid one (primes up to
     * 2^20, survivors by Miller–Rabin) that narrow high windows take by default. */
    sieve_ctx *full = sieve_ctx_create(0), *hyb = sieve_ctx_create(0), *tiny = sieve_ctx_create(0);
    sieve_ctx_set_hybrid(full, false);
    sieve_ctx_set_hybrid(tiny, false);
    sieve_ctx_set_bucket_pool(tiny, 1); /* the smallest pool: big-prime hits applied early, often */
    uint64_t w = slow_variant() ? 2000000 : 30000000;
    static const uint64_t los[] = {1000000000000000000u, 999999999999000000u};
    for (size_t i = 0; i < 2; i++) {
        uint64_t want = ps_count(los[i], los[i] + w);
        ck_assert_uint_eq(count(full, los[i], los[i] + w), want);
        ck_assert_uint_eq(count(hyb, los[i], los[i] + w), want);
        ck_assert_uint_eq(count(tiny, los[i], los[i] + w), want);
    }
    /* ending at 2^64-1, several widths (the last byte of the wheel passes 2^64) */
    size_t n;
    uint64_t *v = oracle_primes(UINT64_MAX - w, UINT64_MAX, &n);
    static const uint64_t widths[] = {0, 1, 58, 59, 60, 1000, 1234567};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        uint64_t lo = UINT64_MAX - widths[i];
        ck_assert_uint_eq(count(hyb, lo, UINT64_MAX), list_count(v, n, lo, UINT64_MAX));
        ck_assert_uint_eq(count(hyb, lo - 100, UINT64_MAX - 60),
                          list_count(v, n, lo - 100, UINT64_MAX - 60));
    }
    ck_assert_uint_eq(count(full, UINT64_MAX - 59, UINT64_MAX),
                      list_count(v, n, UINT64_MAX - 59, UINT64_MAX));
    ck_assert_uint_eq(count(full, UINT64_MAX - w, UINT64_MAX), n);
    ck_assert_uint_eq(count(hyb, UINT64_MAX - w, UINT64_MAX), n);
    free(v);
    sieve_ctx_destroy(full);
    sieve_ctx_destroy(hyb);
    sieve_ctx_destroy(tiny);
}
END_TEST

/* sieve_foreach collector: checks strict increase as it goes. */
struct collect {
    uint64_t *v;
    size_t n, cap;
    size_t batches;
};

static int collect_cb(void *arg, const uint64_t *primes, size_t n)
{
    struct collect *c = arg;
    ck_assert_uint_gt(n, 0);
    c->batches++;
    for (size_t i = 0; i < n; i++) {
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 1024;
            c->v = realloc(c->v, c->cap * sizeof *c->v);
            ck_assert_ptr_nonnull(c->v);
        }
        if (c->n) ck_assert_uint_gt(primes[i], c->v[c->n - 1]);
        c->v[c->n++] = primes[i];
    }
    return 0;
}

static void check_foreach(sieve_ctx *ctx, uint64_t lo, uint64_t hi)
{
    struct collect c = {0};
    ck_assert_int_eq(sieve_foreach(ctx, lo, hi, collect_cb, &c, NULL), 0);
    size_t n;
    uint64_t *want = oracle_primes(lo, hi, &n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(i < c.n, "[%" PRIu64 ", %" PRIu64 "]: missing %" PRIu64, lo, hi, want[i]);
        ck_assert_msg(c.v[i] == want[i],
                      "[%" PRIu64 ", %" PRIu64 "]: #%zu is %" PRIu64 ", want %" PRIu64, lo, hi, i,
                      c.v[i], want[i]);
    }
    ck_assert_msg(n == c.n, "[%" PRIu64 ", %" PRIu64 "]: %zu extra primes", lo, hi, c.n - n);
    free(want);
    free(c.v);
}

/* The default ctx sieves a job without big primes in L2-sized segments and one with them in
 * L2/4 (seg_low, sieve.c): several segments of each kind, a job on either side of the switch
 * (√hi = big_min = 8 × L2/4, 4e12 with a 1 MiB L2), listed and counted. */
START_TEST(low_and_big_segment_sizes_match_primesieve)
{
    sieve_ctx *ctx = sieve_ctx_create(0);
    const uint64_t w = slow_variant() ? 40000000 : 100000000; /* > 3 segments of 1 MiB */
    uint64_t edge = 8 * 262144; /* big_min with 256 KiB segments (an L2 of 1 MiB) */
    edge *= edge;
    const uint64_t lo[] = {0, 1000000000000 - w / 2, edge - w, edge - w / 2, edge};
    for (size_t i = 0; i < sizeof lo / sizeof lo[0]; i++)
        ck_assert_msg(count(ctx, lo[i], lo[i] + w) == ps_count(lo[i], lo[i] + w),
                      "[%" PRIu64 ", +%" PRIu64 "]", lo[i], w);
    check_foreach(ctx, 999000000, 1000000000 + 31457280); /* across a 1 MiB segment's end */
    sieve_ctx_destroy(ctx);
}
END_TEST

START_TEST(foreach_matches_primesieve_listing)
{
    sieve_ctx *ctx = sieve_ctx_create(1024);
    check_foreach(ctx, 0, 100000);
    check_foreach(ctx, 2, 2);
    check_foreach(ctx, 1000000000000u, 1000000300000u);
    check_foreach(ctx, 1000000000000000000u, 1000000000000100000u);
    check_foreach(ctx, UINT64_MAX - 100000, UINT64_MAX);
    sieve_ctx_destroy(ctx);
}
END_TEST

static int stop_cb(void *arg, const uint64_t *primes, size_t n)
{
    (void)primes;
    (void)n;
    int *calls = arg;
    return ++*calls == 2 ? 42 : 0;
}

START_TEST(foreach_returns_callback_stop_value_and_batches_are_bounded)
{
    sieve_ctx *ctx = sieve_ctx_create(0);
    int calls = 0;
    ck_assert_int_eq(sieve_foreach(ctx, 0, 100000000, stop_cb, &calls, NULL), 42);
    ck_assert_int_eq(calls, 2);
    struct collect c = {0};
    ck_assert_int_eq(sieve_foreach(ctx, 0, 10000000, collect_cb, &c, NULL), 0);
    ck_assert_uint_eq(c.n, 664579);
    ck_assert_uint_gt(c.batches, 10); /* streamed, not gathered */
    free(c.v);
    sieve_ctx_destroy(ctx);
}
END_TEST

START_TEST(chunked_count_equals_unsplit_count)
{
    sieve_ctx *ctx = sieve_ctx_create(0);
    static const uint64_t los[] = {0, 123456789, 1000000000000000000u, UINT64_MAX - 50000000};
    uint64_t w = slow_variant() ? 5000000 : 50000000;
    for (size_t i = 0; i < 4; i++) {
        uint64_t lo = los[i], hi = UINT64_MAX - lo < w ? UINT64_MAX : lo + w;
        uint64_t whole = count(ctx, lo, hi), sum = 0;
        for (uint64_t a = lo;;) {
            uint64_t step = rnd() % (w / 3) + 1;
            uint64_t b = hi - a < step ? hi : a + step;
            sum += count(ctx, a, b);
            if (b == hi) break;
            a = b + 1;
        }
        ck_assert_uint_eq(sum, whole);
        ck_assert_uint_eq(whole, ps_count(lo, hi));
    }
    sieve_ctx_destroy(ctx);
}
END_TEST

START_TEST(chunk_width_is_a_useful_split)
{
    static const uint64_t his[] = {1000, 10000000000u, 1000000000000000000u, UINT64_MAX};
    for (size_t i = 0; i < 4; i++) {
        uint64_t w = sieve_chunk_width(0, his[i]);
        ck_assert_uint_ge(w, 100000000);
        ck_assert_uint_le(w, 2000000000);
        ck_assert_uint_eq(w % 30, 0);
    }
    /* wide ranges are split into several chunks so that 2+ threads get work */
    ck_assert_uint_le(sieve_chunk_width(0, 10000000000u), 10000000000u / 4);
}
END_TEST

static int cancel_cb(void *arg, const uint64_t *primes, size_t n)
{
    (void)primes;
    (void)n;
    atomic_store((atomic_int *)arg, 1);
    return 0;
}

START_TEST(cancellation_returns_ecanceled)
{
    sieve_ctx *ctx = sieve_ctx_create(0);
    atomic_int flag = 1;
    uint64_t c = 7, p;
    ck_assert_int_eq(sieve_count(ctx, 0, 1000000000, &c, &flag), -ECANCELED);
    ck_assert_int_eq(sieve_count(ctx, UINT64_MAX - 1000000000, UINT64_MAX, &c, &flag), -ECANCELED);
    ck_assert_int_eq(sieve_nth(ctx, 1000000000, &p, &flag), -ECANCELED);
    atomic_store(&flag, 0); /* raised mid-run by the callback itself */
    ck_assert_int_eq(sieve_foreach(ctx, 0, 1000000000, cancel_cb, &flag, &flag), -ECANCELED);
    atomic_store(&flag, 0);
    ck_assert_int_eq(sieve_count(ctx, 0, 1000000, &c, &flag), 0);
    ck_assert_uint_eq(c, 78498);
    sieve_ctx_destroy(ctx);
}
END_TEST

struct worker {
    uint64_t lo, hi, got;
    int rc;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    sieve_ctx *ctx = sieve_ctx_create(0);
    if (ctx) sieve_ctx_set_hybrid(ctx, false); /* make every thread need sieving primes up to √hi */
    w->rc = ctx ? sieve_count(ctx, w->lo, w->hi, &w->got, NULL) : -ENOMEM;
    sieve_ctx_destroy(ctx);
    return NULL;
}

/* Threads whose ranges need ever larger sieving primes start together, so that the shared table
 * is extended while others read it (run under TSan by `make tsan`). */
START_TEST(concurrent_counts_race_table_extension_and_agree)
{
    sieve_shutdown(); /* start from an empty table */
    /* Under TSan sieving the table to 2^32 takes minutes: there the race is on blocks up to
     * √1e17 = 3.2e8 (20 blocks), still built while other threads read block 0. */
    const char *v = getenv("PRIMED_VARIANT");
    bool tsan = v && strcmp(v, "tsan") == 0;
    static const uint64_t los[] = {1000000000000000u,     100000000000000000u,  0,
                                   10000000000000000000u, UINT64_MAX - 3000000, 5000000000000u};
    enum { N = sizeof los / sizeof los[0] };
    const int n_run = tsan ? 3 : N;
    struct worker w[N];
    pthread_t th[N];
    for (int i = 0; i < n_run; i++) {
        w[i] = (struct worker){.lo = los[i], .hi = los[i] + 3000000};
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < n_run; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(w[i].rc, 0);
        ck_assert_uint_eq(w[i].got, ps_count(w[i].lo, w[i].hi));
    }
    struct sieve_stats st;
    sieve_stats_get(&st);
    ck_assert_uint_ge(st.table_limit, tsan ? 316227766u : 4294967295u);
    ck_assert_uint_gt(st.table_bytes, tsan ? 10000000u : 140000000u);
    sieve_shutdown();
    sieve_stats_get(&st);
    ck_assert_uint_eq(st.table_bytes, 0);
}
END_TEST

START_TEST(bitmap_marks_exactly_the_primes)
{
    sieve_ctx *ctx = sieve_ctx_create(2048);
    static const uint64_t starts[] = {0, 33333333333u};
    for (int s = 0; s < 2; s++) {
        size_t n = 100000;
        uint8_t *bm = malloc(n);
        ck_assert_int_eq(sieve_bitmap(ctx, starts[s], n, bm), 0);
        uint64_t bits = 0;
        for (size_t i = 0; i < n; i++)
            bits += (uint64_t)__builtin_popcount(bm[i]);
        uint64_t lo = 30 * starts[s], hi = lo + 30 * n - 1;
        ck_assert_uint_eq(bits + (lo == 0 ? 3 : 0), ps_count(lo, hi));
        free(bm);
    }
    sieve_ctx_destroy(ctx);
}
END_TEST

START_TEST(stats_count_work_done)
{
    struct sieve_stats a, b;
    sieve_stats_get(&a);
    sieve_ctx *ctx = sieve_ctx_create(0);
    struct collect c = {0};
    ck_assert_int_eq(sieve_foreach(ctx, 0, 1000000, collect_cb, &c, NULL), 0);
    sieve_stats_get(&b);
    ck_assert_uint_eq(b.primes_emitted - a.primes_emitted, 78498);
    ck_assert_uint_eq(b.numbers_sieved - a.numbers_sieved, 1000001);
    ck_assert_uint_gt(b.segments, a.segments);
    ck_assert_uint_ge(b.table_limit, 1000);
    free(c.v);
    sieve_ctx_destroy(ctx);
}
END_TEST

START_TEST(nth_prime_matches_known_values)
{
    sieve_ctx *ctx = sieve_ctx_create(0);
    uint64_t p;
    static const uint64_t k[] = {1, 2, 3, 4, 5, 6, 10, 25, 168, 1000000};
    static const uint64_t want[] = {2, 3, 5, 7, 11, 13, 29, 97, 997, 15485863};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        ck_assert_int_eq(sieve_nth(ctx, k[i], &p, NULL), 0);
        ck_assert_uint_eq(p, want[i]);
    }
    ck_assert_int_eq(sieve_nth(ctx, 1000000000, &p, NULL), 0);
    ck_assert_uint_eq(p, 22801763489u);
    ck_assert_int_eq(sieve_nth(ctx, 10000000000u, &p, NULL), 0); /* the service's max_nth */
    ck_assert_uint_eq(p, 252097800623u);
    /* random k of every magnitude up to 1e11 against primecount's nth prime */
    for (int i = 0; i < 8; i++) {
        uint64_t kk = (rnd() % 100000000000u >> (rnd() % 30)) + 1;
        ck_assert_int_eq(sieve_nth(ctx, kk, &p, NULL), 0);
        ck_assert_uint_eq(p, oracle_u64("primecount -n %" PRIu64, kk));
    }
    ck_assert_int_eq(sieve_nth(ctx, 0, &p, NULL), -EINVAL);
    ck_assert_int_eq(sieve_nth(ctx, 425656284035217744u, &p, NULL), -ERANGE);
    ck_assert_int_eq(sieve_nth(ctx, UINT64_MAX, &p, NULL), -ERANGE);
    sieve_ctx_destroy(ctx);
}
END_TEST

START_TEST(nth_estimate_is_close)
{
    for (uint64_t k = 1000; k <= 10000000000000u; k *= 10) {
        uint64_t x = sieve_nth_estimate(k);
        uint64_t pi = oracle_u64("primecount %" PRIu64, x);
        /* R(x) is within O(sqrt(x)/log x) of π(x); allow sqrt(x) */
        double err = fabs((double)pi - (double)k);
        ck_assert_msg(err <= sqrt((double)x), "k=%" PRIu64 " x=%" PRIu64 " pi=%" PRIu64, k, x, pi);
    }
    ck_assert_uint_ge(sieve_nth_estimate(425656284035217743u), 18000000000000000000u);
}
END_TEST

START_TEST(nth_finish_sieves_both_directions)
{
    sieve_ctx *ctx = sieve_ctx_create(0);
    uint64_t p;
    uint64_t k = 1000000, want = 15485863;
    /* below: π(15000000) = 970704 (primecount), forward */
    uint64_t x = 15000000, pix = oracle_u64("primecount %" PRIu64, x);
    ck_assert_int_eq(sieve_nth_finish(ctx, x, pix, k, &p, NULL), 0);
    ck_assert_uint_eq(p, want);
    /* above, backward; and exactly at the prime */
    x = 16000000;
    pix = oracle_u64("primecount %" PRIu64, x);
    ck_assert_int_eq(sieve_nth_finish(ctx, x, pix, k, &p, NULL), 0);
    ck_assert_uint_eq(p, want);
    ck_assert_int_eq(sieve_nth_finish(ctx, want, k, k, &p, NULL), 0);
    ck_assert_uint_eq(p, want);
    ck_assert_int_eq(sieve_nth_finish(ctx, want - 1, k - 1, k, &p, NULL), 0);
    ck_assert_uint_eq(p, want);
    /* the last 64-bit prime, from just below and from 2^64-1 */
    const uint64_t kmax = 425656284035217743u;
    ck_assert_int_eq(sieve_nth_finish(ctx, U64_MAX_PRIME, kmax, kmax, &p, NULL), 0);
    ck_assert_uint_eq(p, U64_MAX_PRIME);
    ck_assert_int_eq(sieve_nth_finish(ctx, U64_MAX_PRIME - 1, kmax - 1, kmax, &p, NULL), 0);
    ck_assert_uint_eq(p, U64_MAX_PRIME);
    ck_assert_int_eq(sieve_nth_finish(ctx, UINT64_MAX, kmax, kmax - 1, &p, NULL), 0);
    ck_assert_uint_eq(
        p, oracle_u64("primesieve 18446744073709551000 18446744073709551556 -p | tail -1"));
    ck_assert_int_eq(sieve_nth_finish(ctx, UINT64_MAX, kmax, kmax + 1, &p, NULL), -ERANGE);
    sieve_ctx_destroy(ctx);
}
END_TEST

static Suite *sieve_suite(void)
{
    Suite *s = suite_create("sieve");
    /* One case per test, so that CK_RUN_CASE=<name> runs one. The per-variant
     * CK_DEFAULT_TIMEOUT of scripts/run-tests.sh (x3 ASan, x5 TSan) applies; run by hand
     * without it, Check's 4 s default would be too short. */
    bool own_timeout = getenv("CK_DEFAULT_TIMEOUT") == NULL;
#define ADD(fn)                                                                                    \
    do {                                                                                           \
        TCase *tc = tcase_create(#fn);                                                             \
        if (own_timeout) tcase_set_timeout(tc, 300);                                               \
        tcase_add_test(tc, fn);                                                                    \
        suite_add_tcase(s, tc);                                                                    \
    } while (0)
    ADD(pi_of_powers_of_ten_matches_published_values);
    ADD(tiny_and_degenerate_windows_are_exact);
    ADD(random_windows_match_primesieve);
    ADD(windows_straddling_segment_boundaries_match_primesieve);
    ADD(windows_near_1e18_and_2_64_match_primesieve);
    ADD(low_and_big_segment_sizes_match_primesieve);
    ADD(foreach_matches_primesieve_listing);
    ADD(foreach_returns_callback_stop_value_and_batches_are_bounded);
    ADD(chunked_count_equals_unsplit_count);
    ADD(chunk_width_is_a_useful_split);
    ADD(cancellation_returns_ecanceled);
    ADD(concurrent_counts_race_table_extension_and_agree);
    ADD(bitmap_marks_exactly_the_primes);
    ADD(stats_count_work_done);
    ADD(nth_prime_matches_known_values);
    ADD(nth_estimate_is_close);
    ADD(nth_finish_sieves_both_directions);
    return s;
}

PRIMED_CHECK_MAIN(sieve_suite)
