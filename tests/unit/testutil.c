/*
 * Helpers shared by the unit tests: temporary folders and stderr capture;
 * see testutil.h.
 */
#include "config.h"

#include "testutil.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

char testutil_root[PATH_MAX - 64];
char testutil_dir[PATH_MAX];

static int testdir_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void testutil_root_make(const char *prefix)
{
    const char *base = getenv("TMPDIR");

    snprintf(testutil_root, sizeof(testutil_root), "%s/%s.XXXXXX", base && *base ? base : "/tmp",
             prefix);
    ck_assert_ptr_nonnull(mkdtemp(testutil_root));
}

void testutil_root_remove(void)
{
    nftw(testutil_root, testdir_rm, 16, FTW_DEPTH | FTW_PHYS);
}

void testutil_dir_make(void)
{
    snprintf(testutil_dir, sizeof(testutil_dir), "%s/t.XXXXXX", testutil_root);
    ck_assert_ptr_nonnull(mkdtemp(testutil_dir));
}

void testutil_dir_remove(void)
{
    nftw(testutil_dir, testdir_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static int testutil_saved_stderr = -1;
static int testutil_cap_read = -1;
static char testutil_captured[65536];

void testutil_capture_begin(void)
{
    int p[2];

    ck_assert_int_eq(pipe(p), 0);
    testutil_saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_ge(testutil_saved_stderr, 0);
    ck_assert_int_eq(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    close(p[1]);
    testutil_cap_read = p[0];
}

const char *testutil_capture_end(void)
{
    size_t n = 0;
    ssize_t r;

    ck_assert_int_eq(dup2(testutil_saved_stderr, STDERR_FILENO), STDERR_FILENO);
    close(testutil_saved_stderr);
    testutil_saved_stderr = -1;
    while ((r = read(testutil_cap_read, testutil_captured + n, sizeof(testutil_captured) - 1 - n)) >
           0)
        n += (size_t)r;
    ck_assert_int_eq(r, 0);
    testutil_captured[n] = '\0';
    close(testutil_cap_read);
    testutil_cap_read = -1;
    return testutil_captured;
}
