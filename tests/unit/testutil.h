/*
 * Temporary folders for the unit tests.  Each tcase gets a root folder that
 * the runner process creates and removes (an unchecked fixture: Check skips
 * the teardown of a test that failed in its fork, so per-test folders would
 * otherwise be left behind), and each test a fresh folder inside it.
 */
#ifndef TESTDIR_H
#define TESTDIR_H

#include <limits.h>

extern char testdir_root[PATH_MAX - 64];
extern char testdir_path[PATH_MAX]; /* the current test's, inside testdir_root */

/* Creates testdir_root as $TMPDIR (or /tmp)/<prefix>.XXXXXX. */
void testdir_root_make(const char *prefix);
/* Removes testdir_root and everything in it. */
void testdir_root_remove(void);
/* Creates testdir_path inside testdir_root. */
void testdir_make(void);
/* Removes testdir_path and everything in it. */
void testdir_remove(void);

#endif
