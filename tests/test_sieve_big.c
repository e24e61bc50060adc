/* test_sieve_big.c — the bucket sieve of big primes against a naive crossing of every multiple:
 * any pool size (tiny pools force early applies), any slice size, windows near 0, 1e12, 1e18 and
 * 2^64, and a cancelled window must leave nothing behind for the next one. The shared table's
 * extension honours a cancel flag between blocks and keeps (correctly) what it built. */
#include <check.h>
#include <pthread.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_main.h"
#include "primed/primality.h"
#include "primed/sieve.h"
#include "sieve_big.h"
#include "sieve_kernels.h"
#include "sieve_table.h"
#include "wheel.h"

/* The table's filler, as sieve.c lends it (sieve_table.h: the table owns no sieve). */
static int fill_by_sieve(uint64_t byte_lo, size_t nbytes, uint8_t *out)
{
    sieve_ctx *c = sieve_ctx_create(0);
    if (!c) return -ENOMEM;
    int rc = sieve_bitmap(c, byte_lo, nbytes, out);
    sieve_ctx_destroy(c);
    return rc;
}

/* Primes <= n by the plainest sieve (one byte per number), independent of the engine. */
static uint8_t *composite_upto(uint64_t n)
{
    uint8_t *c = calloc(n + 1, 1);
    ck_assert_ptr_nonnull(c);
    c[0] = c[1] = 1;
    for (uint64_t i = 2; i * i <= n; i++)
        if (!c[i])
            for (uint64_t j = i * i; j <= n; j += i)
                c[j] = 1;
    return c;
}

/* Clear in buf (byte 0 = W0, a multiple of 30) the bit of every multiple p*m, m >= p, of every
 * prime p in (from, to], up to whi. */
static void naive(const uint8_t *comp, uint64_t from, uint64_t to, uint64_t W0, uint64_t whi,
                  uint8_t *buf)
{
    for (uint64_t p = from + 1; p <= to; p++) {
        if (comp[p]) continue;
        uint64_t m = W0 / p + (W0 % p != 0);
        if (m < p) m = p;
        for (; (__uint128_t)p * m <= whi; m++) {
            uint64_t n = p * m;
            int bit = wheel_bit_of[n % 30];
            if (bit >= 0) buf[(n - W0) / 30] &= (uint8_t) ~(1u << bit);
        }
    }
}

/* One window through sieve_big_window and through naive(); the two buffers must be equal. */
static void check_window(struct sieve_big *sb, const uint8_t *comp, uint64_t to_max, uint64_t W0,
                         size_t wlen)
{
    uint64_t whi = W0 + (30 * (uint64_t)wlen - 1) < W0 ? UINT64_MAX : W0 + 30 * (uint64_t)wlen - 1;
    uint64_t to = primality_isqrt(whi);
    if (to > to_max) to = to_max;
    const uint64_t from = 8191;
    const struct stable *t = stable_acquire(to, fill_by_sieve, NULL);
    ck_assert_ptr_nonnull(t);
    uint8_t *got = malloc(wlen), *want = malloc(wlen);
    ck_assert_ptr_nonnull(got);
    ck_assert_ptr_nonnull(want);
    memset(got, 0xff, wlen);
    memset(want, 0xff, wlen);
    ck_assert_int_eq(sieve_big_window(sb, t, from, to, W0, whi, got, wlen, NULL), 0);
    naive(comp, from, to, W0, whi, want);
    for (size_t i = 0; i < wlen; i++)
        ck_assert_msg(got[i] == want[i], "W0 %llu wlen %zu byte %zu: %02x want %02x",
                      (unsigned long long)W0, wlen, i, got[i], want[i]);
    free(got);
    free(want);
}

#define TO_MAX 3000000u

START_TEST(every_hit_is_crossed_whatever_the_pool_and_slice)
{
    uint8_t *comp = composite_upto(TO_MAX);
    static const uint64_t bases[] = {
        0,
        30000000000u,
        1000000000020u,
        1000000000000000020u,
        18446744073709551615u - 18446744073709551615u % 30 - 30 * 400000,
    };
    static const size_t wlens[] = {1, 97, 32768, 32769, 400000};
    static const size_t slices[] = {32768, 1 << 20};
    static const size_t pools[] = {1, 0}; /* 1 byte: the smallest pool allowed, many applies */
    /* the best variant this CPU runs, every slice and pool; then the portable one (no
     * first-multiples kernel: one division per prime) with the tiny pool, whose early applies
     * interleave with the filing (test_sieve_kernels checks every kernel against the
     * definition) */
    const char *variants[] = {NULL, "portable"};
    for (size_t j = 0; j < 2; j++) {
        ck_assert_int_eq(sieve_isa_select(variants[j]), 0);
        for (size_t s = 0; s < 2 - j; s++)
            for (size_t p = 0; p < 2 - j; p++) {
                struct sieve_big *sb = sieve_big_create(slices[s], 400000, pools[p]);
                ck_assert_ptr_nonnull(sb);
                for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++)
                    for (size_t w = 0; w < sizeof wlens / sizeof wlens[0]; w++)
                        check_window(sb, comp, TO_MAX, bases[b], wlens[w]);
                sieve_big_destroy(sb);
            }
    }
    ck_assert_int_eq(sieve_isa_select(NULL), 0);
    free(comp);
}
END_TEST

START_TEST(pool_is_bounded_and_window_beyond_promise_is_refused)
{
    struct sieve_big *sb = sieve_big_create(1 << 19, (size_t)32 << 20, 0);
    ck_assert_ptr_nonnull(sb);
    size_t bytes = sieve_big_bytes(sb);
    ck_assert_uint_ge(bytes, (size_t)16 << 20);
    ck_assert_uint_le(bytes, (size_t)17 << 20);
    const struct stable *t = stable_acquire(100000, fill_by_sieve, NULL);
    ck_assert_ptr_nonnull(t);
    uint8_t *buf = malloc((size_t)33 << 20);
    ck_assert_ptr_nonnull(buf);
    uint64_t W0 = 1000000000000000020u;
    ck_assert_int_eq(sieve_big_window(sb, t, 8191, 100000, W0, W0 + 30 * ((uint64_t)33 << 20) - 1,
                                      buf, (size_t)33 << 20, NULL),
                     -EINVAL);
    free(buf);
    sieve_big_destroy(sb);
}
END_TEST

START_TEST(cancelled_window_leaves_nothing_for_the_next)
{
    /* 2^20 primes pass before the first poll: primes up to 3e7 are 1.86M, so the poll comes
     * with hits pending in the buckets (a tiny pool has applied some already). */
    const uint64_t to = 30000000;
    uint8_t *comp = composite_upto(to);
    struct sieve_big *sb = sieve_big_create(32768, 1 << 20, 1);
    ck_assert_ptr_nonnull(sb);
    const struct stable *t = stable_acquire(to, fill_by_sieve, NULL);
    ck_assert_ptr_nonnull(t);
    size_t wlen = 1 << 20;
    uint8_t *buf = malloc(wlen);
    ck_assert_ptr_nonnull(buf);
    uint64_t W0 = 1000000000000000020u;
    atomic_int flag = 1;
    ck_assert_int_eq(
        sieve_big_window(sb, t, 8191, to, W0, W0 + 30 * (uint64_t)wlen - 1, buf, wlen, &flag),
        -ECANCELED);
    free(buf);
    /* the same state on another window: nothing of the cancelled one may leak into it */
    check_window(sb, comp, to, 2000000000000000010u, 300000);
    sieve_big_destroy(sb);
    free(comp);
}
END_TEST

/* n (> 5) is prime by the table's bitmap; every n at most t->limit. */
static bool table_says_prime(const struct stable *t, uint64_t n)
{
    int bit = wheel_bit_of[n % 30];
    return bit >= 0 && (stable_byte(t, n / 30) >> bit & 1);
}

static void check_table_near(const struct stable *t, uint64_t at)
{
    uint64_t lo = at > 20000 ? at - 20000 : 7, hi = at + 20000 <= t->limit ? at + 20000 : t->limit;
    for (uint64_t n = lo; n <= hi; n++)
        ck_assert_msg(table_says_prime(t, n) == primality_is_prime(n), "table wrong at %llu",
                      (unsigned long long)n);
}

static void *cancel_soon(void *arg)
{
    struct timespec ts = {0, 3 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_store((atomic_int *)arg, 1);
    return NULL;
}

START_TEST(table_extension_honours_cancel_and_keeps_what_it_built)
{
    ck_assert_ptr_nonnull(stable_acquire(1000, fill_by_sieve, NULL)); /* block 0 */
    uint64_t bytes0, lim0, bytes, lim;
    stable_stats(&bytes0, &lim0);
    /* Cancelled before any block: nothing built, the old table stays. */
    atomic_int now = 1;
    errno = 0;
    ck_assert_ptr_null(stable_acquire(1000000000, fill_by_sieve, &now));
    ck_assert_int_eq(errno, ECANCELED);
    stable_stats(&bytes, &lim);
    ck_assert_uint_eq(lim, lim0);
    ck_assert_uint_eq(bytes, bytes0);
    /* Cancelled while building the whole table (2^32): either it stopped between blocks and
     * published what it had, or (a fast machine) it finished first. Both must be correct. */
    atomic_int soon = 0;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, cancel_soon, &soon), 0);
    errno = 0;
    const struct stable *t = stable_acquire(UINT32_MAX, fill_by_sieve, &soon);
    pthread_join(th, NULL);
    stable_stats(&bytes, &lim);
    if (t == NULL) {
        ck_assert_int_eq(errno, ECANCELED);
        ck_assert_uint_ge(lim, lim0);
        ck_assert_uint_lt(lim, UINT32_MAX);
    } else {
        ck_assert_uint_ge(t->limit, UINT32_MAX);
    }
    uint64_t partial = lim;
    /* Extending from there gives the whole table, right on both sides of where it stopped. */
    t = stable_acquire(UINT32_MAX, fill_by_sieve, NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_ge(t->limit, UINT32_MAX);
    check_table_near(t, partial);
    check_table_near(t, lim0);
    check_table_near(t, UINT32_MAX - 20000);
}
END_TEST

static Suite *sieve_big_suite(void)
{
    Suite *s = suite_create("sieve_big");
    bool own_timeout = getenv("CK_DEFAULT_TIMEOUT") == NULL;
#define ADD(fn)                                                                                    \
    do {                                                                                           \
        TCase *tc = tcase_create(#fn);                                                             \
        if (own_timeout) tcase_set_timeout(tc, 120);                                               \
        tcase_add_test(tc, fn);                                                                    \
        suite_add_tcase(s, tc);                                                                    \
    } while (0)
    ADD(every_hit_is_crossed_whatever_the_pool_and_slice);
    ADD(pool_is_bounded_and_window_beyond_promise_is_refused);
    ADD(cancelled_window_leaves_nothing_for_the_next);
    ADD(table_extension_honours_cancel_and_keeps_what_it_built);
    return s;
}

PRIMED_CHECK_MAIN(sieve_big_suite)
