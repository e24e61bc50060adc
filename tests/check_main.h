/* check_main.h — the main() every Check test binary shares: run one suite, exit non-zero on any
 * failure. Use: PRIMED_CHECK_MAIN(config_suite) at the end of tests/test_config.c. */
#ifndef PRIMED_CHECK_MAIN_H
#define PRIMED_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

#define PRIMED_CHECK_MAIN(suite_fn)                                                                \
    int main(void)                                                                                 \
    {                                                                                              \
        SRunner *sr = srunner_create(suite_fn());                                                  \
        srunner_run_all(sr, CK_NORMAL);                                                            \
        int failed = srunner_ntests_failed(sr);                                                    \
        srunner_free(sr);                                                                          \
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;                                          \
    }

#endif
