/* test_assert.c — the debug assert layer: on, a false condition aborts (and a true one does
 * nothing); off, the condition is not even evaluated. This file turns the layer on for itself,
 * whatever the build variant, and checks the "off" expansion through a second definition. */
#define PRIMED_DEBUG_ASSERTS 1
#include "primed/assert.h"

#include <signal.h>

#include "check_main.h"

START_TEST(true_condition_passes)
{
    int x = 1;
    PRIMED_ASSERT(x == 1);
}
END_TEST

START_TEST(false_condition_aborts)
{
    int x = 1;
    PRIMED_ASSERT(x == 2); /* SIGABRT, after the line on stderr */
}
END_TEST

/* The release expansion, spelled out: sizeof never evaluates its operand. */
#define OFF_ASSERT(cond) ((void)sizeof(!(cond)))
START_TEST(off_expansion_does_not_evaluate)
{
    int calls = 0;
    OFF_ASSERT(++calls == 5);
    ck_assert_int_eq(calls, 0);
}
END_TEST

static Suite *assert_suite(void)
{
    Suite *s = suite_create("assert");
    TCase *tc = tcase_create("assert");
    tcase_add_test(tc, true_condition_passes);
    tcase_add_test_raise_signal(tc, false_condition_aborts, SIGABRT);
    tcase_add_test(tc, off_expansion_does_not_evaluate);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(assert_suite)
