/* test_factor.c — the 64-bit factorization against trial division (random n < 2^40), and on the
 * inputs rho finds hardest or that break naive code: two 32-bit primes, prime squares near 2^64,
 * 2^64-1, primes near 2^64, and a product/primality property over random 64-bit n. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>

#include "check_main.h"
#include "testutil.h"
#include "primed/factor.h"
#include "primed/primality.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
    return xorshift64(&rng_state);
}

/* The oracle: trial division by 2 and the odd numbers up to √n. */
static unsigned trial_factor(uint64_t n, struct factor *out)
{
    unsigned k = 0;
    for (uint64_t d = 2; d * d <= n; d += d == 2 ? 1 : 2) {
        unsigned e = 0;
        while (n % d == 0) {
            n /= d;
            e++;
        }
        if (e) out[k++] = (struct factor){.p = d, .e = e};
    }
    if (n > 1) out[k++] = (struct factor){.p = n, .e = 1};
    return k;
}

static void assert_factors(uint64_t n, const struct factor *want, unsigned nwant)
{
    struct factor got[FACTOR_MAX];
    unsigned k = factor_u64(n, got);
    ck_assert_msg(k == nwant, "n=%" PRIu64 ": %u factors, want %u", n, k, nwant);
    for (unsigned i = 0; i < k; i++)
        ck_assert_msg(got[i].p == want[i].p && got[i].e == want[i].e,
                      "n=%" PRIu64 ": factor %u is %" PRIu64 "^%u, want %" PRIu64 "^%u", n, i,
                      got[i].p, got[i].e, want[i].p, want[i].e);
}

START_TEST(random_n_below_2_40_match_trial_division)
{
    for (int i = 0; i < 300; i++) {
        uint64_t n = rnd() >> 24;
        struct factor want[FACTOR_MAX + 1];
        unsigned k = trial_factor(n, want);
        assert_factors(n, want, n < 2 ? 0 : k);
    }
    for (uint64_t n = 0; n < 20000; n++) { /* every small n, squares and prime powers included */
        struct factor want[FACTOR_MAX + 1];
        unsigned k = trial_factor(n, want);
        assert_factors(n, want, n < 2 ? 0 : k);
    }
}
END_TEST

START_TEST(products_of_two_32_bit_primes)
{
    for (int i = 0; i < 100; i++) {
        uint64_t p, q;
        ck_assert(primality_next((rnd() >> 33) | (1u << 31), &p));
        ck_assert(primality_next((rnd() >> 33) | (1u << 31), &q));
        if (p > q) {
            uint64_t t = p;
            p = q;
            q = t;
        }
        if (p == q)
            assert_factors(p * q, (struct factor[]){{p, 2}}, 1);
        else
            assert_factors(p * q, (struct factor[]){{p, 1}, {q, 1}}, 2);
    }
    /* the two largest 32-bit primes: rho's worst case */
    assert_factors(4294967279ull * 4294967291ull,
                   (struct factor[]){{4294967279ull, 1}, {4294967291ull, 1}}, 2);
}
END_TEST

START_TEST(prime_squares_and_powers_near_2_64)
{
    assert_factors(4294967291ull * 4294967291ull, (struct factor[]){{4294967291ull, 2}}, 1);
    assert_factors(4294967279ull * 4294967279ull, (struct factor[]){{4294967279ull, 2}}, 1);
    assert_factors(2642245ull * 2642245ull * 2642245ull, /* 5 · 41 · 12889, cubed */
                   (struct factor[]){{5, 3}, {41, 3}, {12889, 3}}, 3);
    assert_factors(2642239ull * 2642239ull * 2642239ull, /* the largest prime whose cube fits */
                   (struct factor[]){{2642239ull, 3}}, 1);
    assert_factors(1ull << 63, (struct factor[]){{2, 63}}, 1);
    assert_factors(12157665459056928801ull, (struct factor[]){{3, 40}}, 1);
}
END_TEST

START_TEST(two_64_minus_1_and_primes_near_2_64)
{
    assert_factors(
        UINT64_MAX,
        (struct factor[]){{3, 1}, {5, 1}, {17, 1}, {257, 1}, {641, 1}, {65537, 1}, {6700417, 1}},
        7);
    uint64_t p = UINT64_MAX;
    for (int i = 0; i < 10; i++) {
        ck_assert(primality_prev(p, &p));
        assert_factors(p, (struct factor[]){{p, 1}}, 1);
    }
    ck_assert_uint_eq(factor_u64(0, (struct factor[FACTOR_MAX]){{0}}), 0);
    ck_assert_uint_eq(factor_u64(1, (struct factor[FACTOR_MAX]){{0}}), 0);
    /* 15 distinct primes, the most any n < 2^64 has: 2·3·…·47 */
    struct factor f[FACTOR_MAX];
    ck_assert_uint_eq(factor_u64(614889782588491410ull, f), 15);
    ck_assert_uint_eq(f[14].p, 47);
}
END_TEST

/* Property: over random 64-bit n, the factors are primes, ascending, and multiply back to n. */
START_TEST(random_64_bit_n_multiply_back_from_primes)
{
    for (int i = 0; i < 2000; i++) {
        uint64_t n = rnd() | (uint64_t)1 << (i % 64);
        struct factor f[FACTOR_MAX];
        unsigned k = factor_u64(n, f);
        unsigned __int128 prod = 1;
        for (unsigned j = 0; j < k; j++) {
            ck_assert_msg(primality_is_prime(f[j].p), "n=%" PRIu64 ": %" PRIu64, n, f[j].p);
            ck_assert(j == 0 || f[j - 1].p < f[j].p);
            for (unsigned e = 0; e < f[j].e; e++)
                prod *= f[j].p;
        }
        ck_assert_msg(prod == n, "n=%" PRIu64 " does not multiply back", n);
    }
}
END_TEST

static Suite *factor_suite(void)
{
    Suite *s = suite_create("factor");
    TCase *tc = tcase_create("factor");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, random_n_below_2_40_match_trial_division);
    tcase_add_test(tc, products_of_two_32_bit_primes);
    tcase_add_test(tc, prime_squares_and_powers_near_2_64);
    tcase_add_test(tc, two_64_minus_1_and_primes_near_2_64);
    tcase_add_test(tc, random_64_bit_n_multiply_back_from_primes);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(factor_suite)
