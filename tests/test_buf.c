/* test_buf.c — the bounded growable buffer: contents against a plain reference copy under random
 * appends, the max as a hard ceiling, sticky errors, steal/free ownership, printf growth. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "testutil.h"
#include "primed/buf.h"

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;

START_TEST(random_appends_match_a_reference_copy)
{
    static char ref[1 << 16];
    struct buf b;
    buf_init(&b, sizeof ref);
    size_t n = 0;
    while (n < sizeof ref - 600) {
        size_t k = (size_t)(xorshift64(&rng_state) % 512);
        char chunk[512];
        for (size_t i = 0; i < k; i++)
            chunk[i] = (char)xorshift64(&rng_state);
        if (xorshift64(&rng_state) % 3 == 0) {
            unsigned v = (unsigned)xorshift64(&rng_state);
            ck_assert_int_eq(buf_printf(&b, "[%u]", v), 0);
            n += (size_t)snprintf(ref + n, sizeof ref - n, "[%u]", v);
        } else {
            ck_assert_int_eq(buf_append(&b, chunk, k), 0);
            memcpy(ref + n, chunk, k);
            n += k;
        }
        ck_assert_uint_eq(b.len, n);
        ck_assert_int_eq(memcmp(b.p, ref, n), 0);
        ck_assert_int_eq(b.p[b.len], '\0');
        ck_assert_uint_le(b.cap, 2 * (b.len > 64 ? b.len : 64)); /* at most twice the contents */
    }
    buf_free(&b);
}
END_TEST

START_TEST(append_past_max_fails_whole_and_sticks)
{
    struct buf b;
    buf_init(&b, 10);
    ck_assert_int_eq(buf_append(&b, "0123456", 7), 0);
    ck_assert_int_eq(buf_append(&b, "abcd", 4), -ENOSPC); /* 11 > 10: nothing appended */
    ck_assert_uint_eq(b.len, 7);
    ck_assert_str_eq(b.p, "0123456");
    ck_assert_int_eq(buf_append(&b, "x", 1), -ENOSPC); /* sticky, though it would fit */
    ck_assert_int_eq(buf_printf(&b, "%d", 1), -ENOSPC);
    ck_assert_int_eq(buf_error(&b), -ENOSPC);
    size_t len = 99;
    ck_assert_ptr_null(buf_steal(&b, &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_null(b.p);
    buf_free(&b);
    ck_assert_int_eq(buf_error(&b), 0);                    /* reusable after free */
    ck_assert_int_eq(buf_append(&b, "0123456789", 10), 0); /* exactly max */
    ck_assert_uint_le(b.cap, 10);
    buf_free(&b);
}
END_TEST

START_TEST(printf_past_max_leaves_contents_untorn)
{
    struct buf b;
    buf_init(&b, 100);
    ck_assert_int_eq(buf_printf(&b, "%s", "hello"), 0);
    char big[200];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(buf_printf(&b, "%s", big), -ENOSPC);
    ck_assert_str_eq(b.p, "hello");
    ck_assert_uint_eq(b.len, 5);
    buf_free(&b);
}
END_TEST

START_TEST(printf_grows_past_the_first_allocation)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(buf_printf(&b, "<%s>", big), 0);
    ck_assert_uint_eq(b.len, sizeof big + 1);
    ck_assert_int_eq(b.p[0], '<');
    ck_assert_int_eq(b.p[b.len - 1], '>');
    ck_assert_int_eq(b.p[b.len], '\0');
    buf_free(&b);
}
END_TEST

START_TEST(steal_hands_over_and_empties)
{
    struct buf b;
    buf_init(&b, 1024);
    size_t len = 99;
    char *s = buf_steal(&b, &len); /* nothing appended: an owned "" */
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "");
    ck_assert_uint_eq(len, 0);
    free(s);
    ck_assert_int_eq(buf_append(&b, "abc", 3), 0);
    s = buf_steal(&b, &len);
    ck_assert_str_eq(s, "abc");
    ck_assert_uint_eq(len, 3);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.len, 0);
    free(s);
    ck_assert_int_eq(buf_append(&b, NULL, 0), 0); /* empty append: no-op, NULL allowed */
    buf_free(&b);
    buf_free(&b); /* twice is safe */
}
END_TEST

START_TEST(reserve_then_write_in_place_and_reset_keeps_the_allocation)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    ck_assert_int_eq(buf_reserve(&b, 16384), 0);
    ck_assert_uint_ge(b.cap, 16384);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.p, "");
    ck_assert_int_eq(buf_append(&b, "xyz", 3), 0);
    char *before = b.p;
    buf_reset(&b); /* reuse: same allocation, empty */
    ck_assert_ptr_eq(b.p, before);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.p, "");
    ck_assert_int_eq(buf_reserve(&b, (1 << 16) + 1), -ENOSPC);
    buf_reset(&b);
    ck_assert_int_eq(buf_error(&b), -ENOSPC); /* the error survives a reset */
    buf_free(&b);
}
END_TEST

static Suite *buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("buf");
    tcase_add_test(tc, random_appends_match_a_reference_copy);
    tcase_add_test(tc, append_past_max_fails_whole_and_sticks);
    tcase_add_test(tc, printf_past_max_leaves_contents_untorn);
    tcase_add_test(tc, printf_grows_past_the_first_allocation);
    tcase_add_test(tc, steal_hands_over_and_empties);
    tcase_add_test(tc, reserve_then_write_in_place_and_reset_keeps_the_allocation);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(buf_suite)
