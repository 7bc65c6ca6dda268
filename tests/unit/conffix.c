/*
 * The configuration tests' shared fixture (conffix.h): a fresh directory per
 * test, entered and removed, and the helpers that load a file from it and
 * compare its error exactly.
 */
#include "config.h"

#include "conffix.h"

#include <check.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char conffix_tmpdir[PATH_MAX];
char conffix_realdir[PATH_MAX];
char conffix_err[CONF_ERR_MAX];
static char conffix_oldcwd[PATH_MAX];

void conffix_setup(void)
{
    const char *base = getenv("TMPDIR");

    snprintf(conffix_tmpdir, sizeof(conffix_tmpdir), "%s/test_conf.XXXXXX",
             base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(conffix_tmpdir));
    ck_assert_ptr_nonnull(realpath(conffix_tmpdir, conffix_realdir));
    ck_assert_ptr_nonnull(getcwd(conffix_oldcwd, sizeof(conffix_oldcwd)));
    ck_assert_int_eq(chdir(conffix_tmpdir), 0);
    unsetenv("DATABASE_URL");
    conffix_err[0] = '\0';
}

static int conffix_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void conffix_teardown(void)
{
    if (chdir(conffix_oldcwd) != 0)
        perror("chdir");
    nftw(conffix_tmpdir, conffix_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void conffix_write(const char *rel, const char *content)
{
    FILE *f = fopen(rel, "w");

    ck_assert_msg(f != NULL, "cannot create %s: %s", rel, strerror(errno));
    ck_assert_int_ge(fputs(content, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

struct conf *conffix_load(const char *content)
{
    conffix_write("fngate.conf", content);
    return conf_load("fngate.conf", conffix_err, sizeof(conffix_err));
}

struct conf *conffix_load_ok(const char *content)
{
    struct conf *c = conffix_load(content);

    ck_assert_msg(c != NULL, "conf_load failed: %s", conffix_err);
    return c;
}

void conffix_run_bad(const struct conffix_bad *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct conf *c = conffix_load(cases[i].file);
        ck_assert_msg(c == NULL, "case %zu loaded:\n%s", i, cases[i].file);
        ck_assert_msg(strcmp(conffix_err, cases[i].err) == 0, "case %zu:\n got  '%s'\n want '%s'",
                      i, conffix_err, cases[i].err);
    }
}
