/*
 * The fixture the configuration tests share (test_conf.c, test_fnconf.c):
 * each test runs in a fresh mkdtemp directory that is also the working
 * directory, so files are loaded as "fngate.conf" and an error string can
 * be compared exactly, the way an operator reads it.
 */
#ifndef FNGATE_TEST_CONFFIX_H
#define FNGATE_TEST_CONFFIX_H

#include "conf.h"

#include <limits.h>
#include <stddef.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

extern char conffix_tmpdir[PATH_MAX];  /* as created */
extern char conffix_realdir[PATH_MAX]; /* its realpath */
extern char conffix_err[CONF_ERR_MAX]; /* the last load's error */

/* A checked fixture: makes the directory and enters it; and leaves it and
 * removes it. */
void conffix_setup(void);
void conffix_teardown(void);
/* Writes CONTENT to REL, failing the test if it cannot. */
void conffix_write(const char *rel, const char *content);
/* Writes CONTENT as fngate.conf and loads it (NULL with conffix_err). */
struct conf *conffix_load(const char *content);
/* Loads CONTENT, failing the test with the error if it is refused. */
struct conf *conffix_load_ok(const char *content);

/* A table of files that must be refused, each with its exact error. */
struct conffix_bad {
    const char *file;
    const char *err;
};
void conffix_run_bad(const struct conffix_bad *cases, size_t n);

#endif
