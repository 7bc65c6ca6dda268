/*
 * Temporary folders for the unit tests: see testdir.h.
 */
#include "config.h"

#include "testdir.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

char testdir_root[PATH_MAX - 64];
char testdir_path[PATH_MAX];

static int testdir_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void testdir_root_make(const char *prefix)
{
    const char *base = getenv("TMPDIR");

    snprintf(testdir_root, sizeof(testdir_root), "%s/%s.XXXXXX", base && *base ? base : "/tmp",
             prefix);
    ck_assert_ptr_nonnull(mkdtemp(testdir_root));
}

void testdir_root_remove(void)
{
    nftw(testdir_root, testdir_rm, 16, FTW_DEPTH | FTW_PHYS);
}

void testdir_make(void)
{
    snprintf(testdir_path, sizeof(testdir_path), "%s/t.XXXXXX", testdir_root);
    ck_assert_ptr_nonnull(mkdtemp(testdir_path));
}

void testdir_remove(void)
{
    nftw(testdir_path, testdir_rm, 16, FTW_DEPTH | FTW_PHYS);
}
