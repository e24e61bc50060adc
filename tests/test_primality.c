/* test_primality.c — Miller–Rabin against the primesieve CLI, a plain sieve, and the composites
 * that fool weaker tests (Carmichael numbers, strong pseudoprimes to many prime bases). */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "testutil.h"
#include "primed/primality.h"

#define LARGEST 18446744073709551557u /* 2^64 - 59 */

static uint64_t rng_state = 0x2545f4914f6cdd1du;
static uint64_t rnd(void)
{
    return xorshift64(&rng_state);
}

START_TEST(every_n_below_one_million_matches_primesieve)
{
    enum { N = 1000000 };
    char *isp = calloc(N, 1);
    ck_assert_ptr_nonnull(isp);
    size_t np;
    uint64_t *primes = oracle_primes(0, N - 1, &np);
    ck_assert_uint_eq(np, 78498); /* π(10^6) */
    for (size_t i = 0; i < np; i++)
        isp[primes[i]] = 1;
    free(primes);
    for (uint64_t n = 0; n < N; n++)
        ck_assert_msg(primality_is_prime(n) == (isp[n] == 1), "n=%" PRIu64, n);
    free(isp);
}
END_TEST

START_TEST(pseudoprimes_and_carmichael_numbers_are_composite)
{
    static const uint64_t composites[] = {
        /* Carmichael numbers */
        561,
        1105,
        1729,
        2465,
        2821,
        6601,
        41041,
        825265,
        321197185,
        5394826801u,
        232250619601u,
        9746347772161u,
        /* strong pseudoprimes to the first prime bases (OEIS A014233): psi_1 … psi_9;
         * 3825123056546413051 fools every prime base up to 23 */
        2047,
        1373653,
        25326001,
        3215031751u,
        2152302898747u,
        3474749660383u,
        341550071728321u,
        3825123056546413051u,
        /* squares of primes and a prime power */
        49,
        3481,
        (uint64_t)4294967291u * 65521u,
        1u << 31,
        18446744030759878681u, /* 4294967291^2 */
        /* the largest odd composite */
        UINT64_MAX,
        UINT64_MAX - 2,
    };
    for (size_t i = 0; i < sizeof composites / sizeof composites[0]; i++)
        ck_assert_msg(!primality_is_prime(composites[i]), "%" PRIu64, composites[i]);
    /* products of two primes near 2^32 */
    static const uint64_t near32[] = {4294967291u, 4294967279u, 4294967231u, 4294967197u};
    for (int i = 0; i < 4; i++) {
        ck_assert(primality_is_prime(near32[i]));
        for (int j = i; j < 4; j++)
            ck_assert(!primality_is_prime(near32[i] * near32[j]));
    }
    ck_assert(primality_is_prime(LARGEST));
    ck_assert(primality_is_prime(2147483647u));          /* 2^31 - 1 */
    ck_assert(primality_is_prime(2305843009213693951u)); /* 2^61 - 1 */
}
END_TEST

/* Every n of a few random windows (and the top one) against primesieve's listing, with next
 * and prev walking the same listing. */
START_TEST(random_windows_match_primesieve_with_next_and_prev)
{
    uint64_t los[6] = {LARGEST - 2000, 1000000000000000000u};
    for (int i = 2; i < 6; i++)
        los[i] = rnd() >> (rnd() % 40);
    for (int i = 0; i < 6; i++) {
        uint64_t lo = los[i], hi = UINT64_MAX - lo < 3000 ? UINT64_MAX : lo + 3000;
        size_t n;
        uint64_t *v = oracle_primes(lo, hi, &n);
        ck_assert_uint_gt(n, 2);
        size_t k = 0;
        for (uint64_t x = lo;; x++) {
            bool want = k < n && v[k] == x;
            ck_assert_msg(primality_is_prime(x) == want, "n=%" PRIu64, x);
            k += want;
            uint64_t r;
            if (k < n) { /* next(x) is the first listed prime > x */
                ck_assert(primality_next(x, &r));
                ck_assert_uint_eq(r, v[k]);
            }
            if (k >= 2 || (k == 1 && !want)) { /* prev(x) is the last listed prime < x */
                ck_assert(primality_prev(x, &r));
                ck_assert_uint_eq(r, v[want ? k - 2 : k - 1]);
            }
            if (x == hi) break;
        }
        ck_assert_uint_eq(k, n);
        free(v);
    }
}
END_TEST

START_TEST(next_and_prev_at_the_edges)
{
    uint64_t r = 0;
    ck_assert(primality_next(0, &r) && r == 2);
    ck_assert(primality_next(1, &r) && r == 2);
    ck_assert(primality_next(2, &r) && r == 3);
    ck_assert(primality_next(3, &r) && r == 5);
    ck_assert(primality_next(LARGEST - 1, &r) && r == LARGEST);
    ck_assert(!primality_next(LARGEST, &r));
    ck_assert(!primality_next(UINT64_MAX, &r));
    ck_assert(!primality_prev(0, &r));
    ck_assert(!primality_prev(2, &r));
    ck_assert(primality_prev(3, &r) && r == 2);
    ck_assert(primality_prev(4, &r) && r == 3);
    ck_assert(primality_prev(UINT64_MAX, &r) && r == LARGEST);
    ck_assert(primality_prev(LARGEST + 1, &r) && r == LARGEST);
    ck_assert(primality_prev(LARGEST, &r) && r < LARGEST && primality_is_prime(r));
}
END_TEST

/* r = isqrt(n) iff r*r <= n < (r+1)^2, checked in 128 bits: around every square near the limits
 * of long double's 64-bit mantissa, where a plain sqrtl cast can be one off. */
static void check_isqrt(uint64_t n)
{
    uint64_t r = primality_isqrt(n);
    ck_assert_msg((__uint128_t)r * r <= n && (__uint128_t)(r + 1) * (r + 1) > n,
                  "isqrt(%llu) = %llu", (unsigned long long)n, (unsigned long long)r);
}

START_TEST(isqrt_is_exact_at_squares_and_the_top)
{
    for (uint64_t n = 0; n < 100000; n++)
        check_isqrt(n);
    for (uint64_t r = 4294967295u; r > 4294967295u - 100000; r--) {
        uint64_t sq = r * r;
        check_isqrt(sq - 1);
        check_isqrt(sq);
        check_isqrt(sq + 1);
    }
    for (uint64_t r = 1u << 20; r < (1u << 20) + 1000; r++)
        check_isqrt(r * r - 1);
    check_isqrt(UINT64_MAX);
    ck_assert_uint_eq(primality_isqrt(UINT64_MAX), 4294967295u);
    ck_assert_uint_eq(primality_isqrt(1000000000000000000u), 1000000000u);
    ck_assert_uint_eq(primality_isqrt(999999999999999999u), 999999999u);
}
END_TEST

static Suite *primality_suite(void)
{
    Suite *s = suite_create("primality");
    TCase *tc = tcase_create("core");
    if (!getenv("CK_DEFAULT_TIMEOUT")) /* run by hand: Check's 4 s default is too short */
        tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_n_below_one_million_matches_primesieve);
    tcase_add_test(tc, pseudoprimes_and_carmichael_numbers_are_composite);
    tcase_add_test(tc, random_windows_match_primesieve_with_next_and_prev);
    tcase_add_test(tc, next_and_prev_at_the_edges);
    tcase_add_test(tc, isqrt_is_exact_at_squares_and_the_top);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(primality_suite)
