/*
 * The main() every Check unit test shares: CHECK_MAIN(name_suite) runs the
 * suite that name_suite() builds and exits with failure if any test failed,
 * so that a new test file does not copy the runner again.
 */
#ifndef FNGATE_CHECK_MAIN_H
#define FNGATE_CHECK_MAIN_H

#include <check.h>

#include <stdlib.h>

/* Runs suite S (the runner takes it) and returns main's exit status. */
static inline int check_main_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

#define CHECK_MAIN(suite)                                                                          \
    int main(void)                                                                                 \
    {                                                                                              \
        return check_main_run(suite());                                                            \
    }

#endif
