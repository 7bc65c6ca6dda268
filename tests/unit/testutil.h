/*
 * Helpers shared by the unit tests.  Temporary folders: each tcase gets a
 * root folder that
 * the runner process creates and removes (an unchecked fixture: Check skips
 * the teardown of a test that failed in its fork, so per-test folders would
 * otherwise be left behind), and each test a fresh folder inside it.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <limits.h>

extern char testutil_root[PATH_MAX - 64];
extern char testutil_dir[PATH_MAX]; /* the current test's, inside testutil_root */

/* Creates testutil_root as $TMPDIR (or /tmp)/<prefix>.XXXXXX. */
void testutil_root_make(const char *prefix);
/* Removes testutil_root and everything in it. */
void testutil_root_remove(void);
/* Creates testutil_dir inside testutil_root. */
void testutil_dir_make(void);
/* Removes testutil_dir and everything in it. */
void testutil_dir_remove(void);

/* Sends fd 2 into a pipe until testutil_capture_end, which restores it and
 * returns everything written meanwhile (a static buffer, valid until the
 * next capture; up to 64 KB). */
void testutil_capture_begin(void);
const char *testutil_capture_end(void);

#endif
