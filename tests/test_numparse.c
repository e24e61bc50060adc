/* test_numparse.c — strict u64 parsing: the boundaries of numparse.h, and random agreement with
 * strtoull (plain decimals) and with 128-bit arithmetic (the DeK shorthand). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "testutil.h"
#include "primed/numparse.h"

static enum numparse_result parse(const char *s, uint64_t *v)
{
    *v = 0xdeadbeef;
    return numparse_u64(s, v);
}

#define ASSERT_OK(s, want)                                                                         \
    do {                                                                                           \
        uint64_t v_;                                                                               \
        ck_assert_int_eq(parse((s), &v_), NUMPARSE_OK);                                            \
        ck_assert_uint_eq(v_, (want));                                                             \
    } while (0)
#define ASSERT_RES(s, res)                                                                         \
    do {                                                                                           \
        uint64_t v_;                                                                               \
        ck_assert_msg(parse((s), &v_) == (res), "numparse_u64(\"%s\") != %s", (s), #res);          \
    } while (0)

START_TEST(decimal_boundaries_accepted)
{
    ASSERT_OK("0", 0);
    ASSERT_OK("1", 1);
    ASSERT_OK("01", 1);
    ASSERT_OK("0000000000000000000000000000042", 42);
    ASSERT_OK("18446744073709551615", UINT64_MAX);
    ASSERT_OK("018446744073709551615", UINT64_MAX);
    ASSERT_OK("9223372036854775808", 9223372036854775808ULL);
}
END_TEST

START_TEST(decimal_overflow_never_wraps)
{
    ASSERT_RES("18446744073709551616", NUMPARSE_OVERFLOW);
    ASSERT_RES("18446744073709551620", NUMPARSE_OVERFLOW);
    ASSERT_RES("99999999999999999999", NUMPARSE_OVERFLOW);
    ASSERT_RES("184467440737095516150", NUMPARSE_OVERFLOW);
    ASSERT_RES("100000000000000000000000000000000000000000", NUMPARSE_OVERFLOW);
}
END_TEST

START_TEST(exponent_form_accepted_when_it_fits)
{
    ASSERT_OK("1e19", 10000000000000000000ULL);
    ASSERT_OK("25e8", 2500000000ULL);
    ASSERT_OK("1e0", 1);
    ASSERT_OK("0e5", 0);
    ASSERT_OK("0e999999999999999999999999", 0);
    ASSERT_OK("1E10", 10000000000ULL); /* upper-case E is documented as accepted */
    ASSERT_OK("1e010", 10000000000ULL);
    ASSERT_OK("1e0000000000000000000000000019", 10000000000000000000ULL);
    ASSERT_OK("18446744073709551615e0", UINT64_MAX);
    ASSERT_OK("1844674407370955161e1", 18446744073709551610ULL);
    ASSERT_OK("3e12", 3000000000000ULL);
}
END_TEST

START_TEST(exponent_overflow_detected)
{
    ASSERT_RES("2e19", NUMPARSE_OVERFLOW);
    ASSERT_RES("1e20", NUMPARSE_OVERFLOW);
    ASSERT_RES("1844674407370955162e1", NUMPARSE_OVERFLOW);
    ASSERT_RES("18446744073709551616e0", NUMPARSE_OVERFLOW);
    ASSERT_RES("1e100", NUMPARSE_OVERFLOW);
    /* Must answer at once, not loop 10^12 times or overflow an int exponent. */
    ASSERT_RES("1e999999999999", NUMPARSE_OVERFLOW);
    ASSERT_RES("1e18446744073709551616000000", NUMPARSE_OVERFLOW);
}
END_TEST

START_TEST(malformed_inputs_rejected)
{
    ASSERT_RES("", NUMPARSE_EMPTY);
    static const char *const bad[] = {" 1",   "1 ",    "+1",   "-1",    "0x10", "1.5",   "1e",
                                      "e5",   "1e-3",  "1e+3", "1e10x", "x",    "1_000", "1,000",
                                      "1ee3", "1e3e3", "E5",   "\t1",   "1\n",  "１",    "0b1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ASSERT_RES(bad[i], NUMPARSE_SYNTAX);
    /* syntax is judged before magnitude */
    ASSERT_RES("99999999999999999999x", NUMPARSE_SYNTAX);
}
END_TEST

START_TEST(length_bounded_variant_respects_len_and_nul)
{
    uint64_t v = 7;
    ck_assert_int_eq(numparse_u64n("12345", 3, &v), NUMPARSE_OK);
    ck_assert_uint_eq(v, 123);
    ck_assert_int_eq(numparse_u64n("12\0"
                                   "3",
                                   4, &v),
                     NUMPARSE_SYNTAX);
    ck_assert_int_eq(numparse_u64n("1e\0"
                                   "5",
                                   4, &v),
                     NUMPARSE_SYNTAX);
    ck_assert_int_eq(numparse_u64n("\0", 1, &v), NUMPARSE_SYNTAX);
    ck_assert_int_eq(numparse_u64n("1", 0, &v), NUMPARSE_EMPTY);
    ck_assert_int_eq(numparse_u64n(NULL, 0, &v), NUMPARSE_EMPTY);
    ck_assert_int_eq(numparse_u64(NULL, &v), NUMPARSE_EMPTY);
    /* not NUL-terminated: a buffer of digits followed by garbage beyond len */
    char buf[4] = {'9', '9', 'x', 'x'};
    ck_assert_int_eq(numparse_u64n(buf, 2, &v), NUMPARSE_OK);
    ck_assert_uint_eq(v, 99);
}
END_TEST

START_TEST(failure_leaves_output_untouched)
{
    uint64_t v = 12345;
    ck_assert_int_eq(numparse_u64("2e19", &v), NUMPARSE_OVERFLOW);
    ck_assert_uint_eq(v, 12345);
    ck_assert_int_eq(numparse_u64("1x", &v), NUMPARSE_SYNTAX);
    ck_assert_uint_eq(v, 12345);
}
END_TEST

static uint64_t rng_state = 0x243F6A8885A308D3ULL;
static uint64_t rnd(void)
{
    return xorshift64(&rng_state);
}

START_TEST(random_decimals_agree_with_strtoull)
{
    char s[48];
    for (int i = 0; i < 200000; i++) {
        /* random digit strings of 1…22 digits: some fit, some overflow */
        int n = 1 + (int)(rnd() % 22);
        for (int j = 0; j < n; j++)
            s[j] = (char)('0' + rnd() % 10);
        s[n] = '\0';
        errno = 0;
        unsigned long long want = strtoull(s, NULL, 10);
        int want_overflow = errno == ERANGE;
        uint64_t got;
        enum numparse_result r = numparse_u64(s, &got);
        if (want_overflow) {
            ck_assert_msg(r == NUMPARSE_OVERFLOW, "%s should overflow", s);
        } else {
            ck_assert_msg(r == NUMPARSE_OK, "%s should parse", s);
            ck_assert_uint_eq(got, want);
        }
    }
}
END_TEST

START_TEST(random_exponent_forms_agree_with_128bit_arithmetic)
{
    char s[64];
    for (int i = 0; i < 200000; i++) {
        uint64_t m = rnd() >> (rnd() % 64);
        unsigned k = (unsigned)(rnd() % 24);
        snprintf(s, sizeof(s), "%" PRIu64 "e%u", m, k);
        unsigned __int128 x = m;
        int over = 0;
        for (unsigned j = 0; j < k && !over; j++) {
            x *= 10;
            if (x > UINT64_MAX) over = 1;
        }
        if (m == 0) over = 0, x = 0;
        uint64_t got;
        enum numparse_result r = numparse_u64(s, &got);
        if (over) {
            ck_assert_msg(r == NUMPARSE_OVERFLOW, "%s should overflow", s);
        } else {
            ck_assert_msg(r == NUMPARSE_OK, "%s should parse", s);
            ck_assert_uint_eq(got, (uint64_t)x);
        }
    }
}
END_TEST

START_TEST(messages_name_the_accepted_form)
{
    ck_assert_ptr_nonnull(strstr(numparse_message(NUMPARSE_SYNTAX), "18446744073709551615"));
    ck_assert_ptr_nonnull(strstr(numparse_message(NUMPARSE_SYNTAX), "1e10"));
    ck_assert_ptr_nonnull(strstr(numparse_message(NUMPARSE_OVERFLOW), "2^64-1"));
    ck_assert_ptr_nonnull(strstr(numparse_message(NUMPARSE_EMPTY), "empty"));
}
END_TEST

static Suite *numparse_suite(void)
{
    Suite *s = suite_create("numparse");
    TCase *tc = tcase_create("numparse");
    tcase_add_test(tc, decimal_boundaries_accepted);
    tcase_add_test(tc, decimal_overflow_never_wraps);
    tcase_add_test(tc, exponent_form_accepted_when_it_fits);
    tcase_add_test(tc, exponent_overflow_detected);
    tcase_add_test(tc, malformed_inputs_rejected);
    tcase_add_test(tc, length_bounded_variant_respects_len_and_nul);
    tcase_add_test(tc, failure_leaves_output_untouched);
    tcase_add_test(tc, random_decimals_agree_with_strtoull);
    tcase_add_test(tc, random_exponent_forms_agree_with_128bit_arithmetic);
    tcase_add_test(tc, messages_name_the_accepted_form);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(numparse_suite)
