/*
 * Unit tests for gateway/discover.c: which folders of functions_dir become
 * functions, in what order, with what settings, why the others are skipped
 * (the log line the operator reads), and how a deployed binary is told from
 * the one already running.  Each test builds its own functions_dir and
 * fngate.conf in a fresh mkdtemp directory.
 */
#include "config.h"

#include "discover.h"

#include <check.h>

#include "check_main.h"

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* One folder per tcase, made and removed by the runner process itself, so a
 * failed test (which skips its checked teardown) leaves nothing behind. */
static char fndir[PATH_MAX + 32];    /* <testutil_dir>/functions */
static char confpath[PATH_MAX + 32]; /* <testutil_dir>/fngate.conf */
static char errbuf[CONF_ERR_MAX];

static void setup(void)
{

    testutil_dir_make();
    snprintf(fndir, sizeof(fndir), "%s/functions", testutil_dir);
    snprintf(confpath, sizeof(confpath), "%s/fngate.conf", testutil_dir);
    ck_assert_int_eq(mkdir(fndir, 0755), 0);
    errbuf[0] = '\0';
}

static void root_setup(void)
{
    testutil_root_make("test_discover");
}

static void root_teardown(void)
{
    testutil_root_remove();
}

static void teardown(void)
{
    testutil_dir_remove();
}

/* <functions_dir>/REL, in one of a few static buffers. */
static const char *fpath(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *fpath(const char *fmt, ...)
{
    static char bufs[4][PATH_MAX + 256];
    static unsigned next;
    char *b = bufs[next++ % N(bufs)];
    int n = snprintf(b, sizeof(bufs[0]), "%s/", fndir);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(b + n, sizeof(bufs[0]) - (size_t)n, fmt, ap);
    va_end(ap);
    return b;
}

static void write_file(const char *path, const char *content, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    ck_assert_msg(fd >= 0, "cannot create %s: %s", path, strerror(errno));
    ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    ck_assert_int_eq(fchmod(fd, mode), 0);
    ck_assert_int_eq(close(fd), 0);
}

/* <functions_dir>/NAME/handler, executable. */
static void add_fn(const char *name)
{
    ck_assert_msg(mkdir(fpath("%s", name), 0755) == 0, "mkdir %s: %s", name, strerror(errno));
    write_file(fpath("%s/handler", name), "#!/bin/sh\nexit 0\n", 0755);
}

/* fngate.conf pointing at our functions_dir, then EXTRA. */
static struct conf *load_conf(const char *extra)
{
    FILE *f = fopen(confpath, "w");
    struct conf *c;

    ck_assert_ptr_nonnull(f);
    fprintf(f, "[gateway]\nfunctions_dir = %s\n%s", fndir, extra);
    ck_assert_int_eq(fclose(f), 0);
    c = conf_load(confpath, errbuf, sizeof(errbuf));
    ck_assert_msg(c != NULL, "conf_load: %s", errbuf);
    ck_assert_str_eq(c->gw.functions_dir, fndir);
    return c;
}

/* ---- stderr capture (discover.c reports skips with log_warnx) ------------------- */

static const char *logbuf = ""; /* what the last discover() logged */

/* Runs discover_functions with stderr captured into logbuf. */
static struct discover_list *discover(const struct conf *c)
{
    struct discover_list *l;

    testutil_capture_begin();
    l = discover_functions(c, errbuf, sizeof(errbuf));
    logbuf = testutil_capture_end();
    return l;
}

static struct discover_list *discover_ok(const struct conf *c)
{
    struct discover_list *l = discover(c);

    ck_assert_msg(l != NULL, "discover_functions: %s", errbuf);
    return l;
}

/* Fails unless the captured log holds a line ending in "warn  fngate: " MSG. */
static void assert_logged(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void assert_logged(const char *fmt, ...)
{
    char msg[PATH_MAX * 2], want[PATH_MAX * 2 + 32];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(want, sizeof(want), "Z warn  fngate: %s\n", msg);
    ck_assert_msg(strstr(logbuf, want) != NULL, "log lacks '%s'; log was:\n%s", msg, logbuf);
}

static void assert_names(const struct discover_list *l, const char *const *want, size_t n)
{
    ck_assert_uint_eq(l->n, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(l->fns[i].name, want[i]);
}

/* ---- discovery ----------------------------------------------------------- */

START_TEST(discover_sorted)
{
    static const char *const made[] = {"zeta", "alpha", "m-1", "a_b", "0num", "b", "a"};
    static const char *const want[] = {"0num", "a", "a_b", "alpha", "b", "m-1", "zeta"};
    struct conf *c = load_conf("");
    struct discover_list *l;

    for (size_t i = 0; i < N(made); i++)
        add_fn(made[i]);
    l = discover_ok(c);
    assert_names(l, want, N(want));
    for (size_t i = 0; i < l->n; i++) {
        const struct discover_fn *d = &l->fns[i];
        struct stat st;
        ck_assert_str_eq(d->dir, fpath("%s", want[i]));
        ck_assert_str_eq(d->handler, fpath("%s/handler", want[i]));
        ck_assert_int_eq(stat(d->handler, &st), 0);
        ck_assert(d->dev == st.st_dev && d->ino == st.st_ino);
        ck_assert_int_eq(d->size, st.st_size);
        ck_assert_int_eq(d->mtime.tv_sec, st.st_mtim.tv_sec);
        ck_assert_int_eq(d->mtime.tv_nsec, st.st_mtim.tv_nsec);
        ck_assert_int_eq(d->set.max_instances, 8); /* built-in default */
        ck_assert_ptr_eq(discover_list_find(l, want[i]), d);
    }
    ck_assert_ptr_null(discover_list_find(l, "nope"));
    ck_assert_ptr_null(discover_list_find(l, "Alpha"));
    ck_assert_str_eq(logbuf, "");
    discover_list_free(l);
    conf_free(c);
}
END_TEST

START_TEST(discover_empty)
{
    /* Not captured: under UBSan a failure here is a runtime error on
     * stderr (an empty folder means no array to sort), which must show. */
    struct conf *c = load_conf("");
    struct discover_list *l = discover_functions(c, errbuf, sizeof(errbuf));

    ck_assert_msg(l != NULL, "discover_functions: %s", errbuf);
    ck_assert_uint_eq(l->n, 0);
    ck_assert_ptr_null(discover_list_find(l, "hello"));
    discover_list_free(l);
    discover_list_free(NULL);
    conf_free(c);
}
END_TEST

START_TEST(discover_missing_dir)
{
    struct conf *c = load_conf("");
    char want[PATH_MAX * 3];

    ck_assert_int_eq(rmdir(fndir), 0);
    ck_assert_ptr_null(discover(c));
    /* Line 2 of fngate.conf is where functions_dir is set. */
    snprintf(want, sizeof(want), "%s:2: functions_dir %s: %s", confpath, fndir, strerror(ENOENT));
    ck_assert_str_eq(errbuf, want);
    conf_free(c);
}
END_TEST

START_TEST(discover_skips_bad_names)
{
    static const char *const bad[] = {"Upper", "hEllo",  "-lead",   "_lead",   "a.b",
                                      "dot.",  "sp ace", "gateway", "defaults"};
    char n64[65], n65[66];
    const char *want[3];
    struct conf *c = load_conf("");
    struct discover_list *l;

    memset(n64, 'a', 64);
    n64[64] = '\0';
    memset(n65, 'b', 65);
    n65[65] = '\0';
    for (size_t i = 0; i < N(bad); i++)
        add_fn(bad[i]);
    add_fn(n65);
    add_fn(n64);
    add_fn(".hidden");
    add_fn("ok");
    add_fn("ok-2");
    l = discover_ok(c);
    want[0] = n64; /* 64 characters is the limit, and allowed */
    want[1] = "ok";
    want[2] = "ok-2";
    assert_names(l, want, N(want));
    for (size_t i = 0; i < N(bad); i++)
        assert_logged("functions_dir: skipping '%s': not a valid function name "
                      "([a-z0-9][a-z0-9_-]{0,63})",
                      bad[i]);
    assert_logged("functions_dir: skipping '%s': not a valid function name "
                  "([a-z0-9][a-z0-9_-]{0,63})",
                  n65);
    /* Hidden entries are not even mentioned. */
    ck_assert_ptr_null(strstr(logbuf, ".hidden"));
    discover_list_free(l);
    conf_free(c);
}
END_TEST

START_TEST(discover_skips_no_handler)
{
    static const char *const want[] = {"good", "linked"};
    struct conf *c = load_conf("");
    struct discover_list *l;

    add_fn("good");
    /* A folder without handler. */
    ck_assert_int_eq(mkdir(fpath("empty"), 0755), 0);
    write_file(fpath("empty/handler.sh"), "#!/bin/sh\n", 0755);
    /* A handler that is not executable. */
    ck_assert_int_eq(mkdir(fpath("noexec"), 0755), 0);
    write_file(fpath("noexec/handler"), "#!/bin/sh\n", 0644);
    /* A directory named handler, even one with x bits. */
    ck_assert_int_eq(mkdir(fpath("dirhandler"), 0755), 0);
    ck_assert_int_eq(mkdir(fpath("dirhandler/handler"), 0755), 0);
    /* A dangling symlink as handler. */
    ck_assert_int_eq(mkdir(fpath("dangling"), 0755), 0);
    ck_assert_int_eq(symlink("nowhere", fpath("dangling/handler")), 0);
    /* A plain file at the top is no function, and not worth a line. */
    write_file(fpath("README"), "notes\n", 0644);
    write_file(fpath("script"), "#!/bin/sh\n", 0755);
    /* A handler that is a symlink to an executable is fine. */
    ck_assert_int_eq(mkdir(fpath("linked"), 0755), 0);
    ck_assert_int_eq(symlink(fpath("good/handler"), fpath("linked/handler")), 0);

    l = discover_ok(c);
    assert_names(l, want, N(want));
    assert_logged("functions_dir: skipping 'empty': no %s (%s)", fpath("empty/handler"),
                  strerror(ENOENT));
    assert_logged("functions_dir: skipping 'noexec': %s is not an executable file",
                  fpath("noexec/handler"));
    assert_logged("functions_dir: skipping 'dirhandler': %s is not an executable file",
                  fpath("dirhandler/handler"));
    assert_logged("functions_dir: skipping 'dangling': no %s (%s)", fpath("dangling/handler"),
                  strerror(ENOENT));
    ck_assert_ptr_null(strstr(logbuf, "README"));
    ck_assert_ptr_null(strstr(logbuf, "'script'"));
    discover_list_free(l);
    conf_free(c);
}
END_TEST

START_TEST(discover_symlinked_folder)
{
    /* Deployments often symlink a release folder into functions_dir. */
    static const char *const want[] = {"current", "real"};
    struct conf *c = load_conf("");
    struct discover_list *l;

    add_fn("real");
    ck_assert_int_eq(symlink(fpath("real"), fpath("current")), 0);
    l = discover_ok(c);
    assert_names(l, want, N(want));
    ck_assert_str_eq(l->fns[0].handler, fpath("current/handler"));
    ck_assert(discover_fn_same_binary(&l->fns[0], &l->fns[1]));
    discover_list_free(l);
    conf_free(c);
}
END_TEST

START_TEST(discover_settings_layered)
{
    struct conf *c = load_conf("[defaults]\nidle_timeout = 2s\n"
                               "[hello]\nmax_instances = 3\nenv.GREETING = hi\n");
    struct discover_list *l;
    const struct discover_fn *h, *o;

    add_fn("hello");
    add_fn("other");
    write_file(fpath("hello/function.conf"), "queue_size = 7\nmax_instances = 5\n", 0644);
    l = discover_ok(c);
    ck_assert_uint_eq(l->n, 2);
    h = discover_list_find(l, "hello");
    o = discover_list_find(l, "other");
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(h->set.max_instances, 3); /* fngate.conf over function.conf */
    ck_assert_int_eq(h->set.queue_size, 7);
    ck_assert_int_eq(h->set.idle_timeout_ms, 2000);
    ck_assert_uint_eq(h->set.n_env, 1);
    ck_assert_str_eq(h->set.env[0].key, "GREETING");
    ck_assert_str_eq(h->set.env[0].value, "hi");
    ck_assert_int_eq(o->set.max_instances, 8);
    ck_assert_int_eq(o->set.queue_size, 511);
    ck_assert_int_eq(o->set.idle_timeout_ms, 2000);
    ck_assert_uint_eq(o->set.n_env, 0);
    ck_assert_str_eq(logbuf, "");
    discover_list_free(l);
    conf_free(c);
}
END_TEST

START_TEST(discover_bad_function_conf)
{
    struct conf *c = load_conf("");
    char want[PATH_MAX * 2];

    add_fn("alpha");
    add_fn("hello");
    add_fn("zeta");
    /* Only that function is disabled, with the reason; the others load. */
    write_file(fpath("hello/function.conf"), "# shipped\nmax_instances = 0\n", 0644);
    {
        struct discover_list *l = discover_ok(c);
        const struct discover_fn *h = discover_list_find(l, "hello");
        ck_assert_uint_eq(l->n, 3);
        ck_assert_ptr_null(discover_list_find(l, "alpha")->disabled);
        ck_assert_ptr_null(discover_list_find(l, "zeta")->disabled);
        snprintf(want, sizeof(want), "%s:2: max_instances: '0' is out of range (1..4096)",
                 fpath("hello/function.conf"));
        ck_assert_ptr_nonnull(h->disabled);
        ck_assert_str_eq(h->disabled, want);
        /* Settings of fngate.conf alone, never instances kept warm. */
        ck_assert_int_eq(h->set.max_instances, 8);
        ck_assert_int_eq(h->set.min_instances, 0);
        ck_assert_str_eq(logbuf, "");
        discover_list_free(l);
    }

    write_file(fpath("hello/function.conf"), "[function]\n\nnot_a_key = 1\n", 0644);
    {
        struct discover_list *l = discover_ok(c);
        snprintf(want, sizeof(want), "%s:3: unknown key 'not_a_key' in [function]",
                 fpath("hello/function.conf"));
        ck_assert_str_eq(discover_list_find(l, "hello")->disabled, want);
        discover_list_free(l);
    }

    /* A function.conf of a skipped folder is never read. */
    write_file(fpath("hello/function.conf"), "", 0644);
    ck_assert_int_eq(mkdir(fpath("Bad"), 0755), 0);
    write_file(fpath("Bad/function.conf"), "garbage\n", 0644);
    {
        struct discover_list *l = discover_ok(c);
        ck_assert_uint_eq(l->n, 3);
        discover_list_free(l);
    }
    conf_free(c);
}
END_TEST

START_TEST(discover_unknown_section_loads)
{
    static const char *const want[] = {"hello"};
    struct conf *c = load_conf("[hello]\nmax_instances = 2\n\n[ghost]\nmax_instances = 4\n");
    struct discover_list *l;

    add_fn("hello");
    l = discover_ok(c);
    assert_names(l, want, N(want));
    ck_assert_int_eq(l->fns[0].set.max_instances, 2);
    /* [ghost] is the 6th line: two [gateway] lines come first. */
    assert_logged("%s:6: section [ghost] names no function in %s", confpath, fndir);
    ck_assert_ptr_null(strstr(logbuf, "[hello]"));
    discover_list_free(l);
    conf_free(c);
}
END_TEST

/* ---- binary identity ------------------------------------------------------ */

static struct discover_list *discover_hello(const struct conf *c)
{
    struct discover_list *l = discover_ok(c);

    ck_assert_uint_eq(l->n, 1);
    ck_assert_str_eq(l->fns[0].name, "hello");
    return l;
}

START_TEST(same_binary_unchanged)
{
    struct conf *c = load_conf("");
    struct discover_list *a, *b;

    add_fn("hello");
    a = discover_hello(c);
    b = discover_hello(c);
    ck_assert(discover_fn_same_binary(&a->fns[0], &b->fns[0]));
    ck_assert(discover_fn_same_binary(&a->fns[0], &a->fns[0]));
    discover_list_free(a);
    discover_list_free(b);
    conf_free(c);
}
END_TEST

START_TEST(same_binary_atomic_replace)
{
    struct conf *c = load_conf("");
    struct discover_list *a, *b;

    add_fn("hello");
    a = discover_hello(c);
    /* Same content, same size: only the inode tells. */
    write_file(fpath("hello/handler.new"), "#!/bin/sh\nexit 0\n", 0755);
    ck_assert_int_eq(rename(fpath("hello/handler.new"), fpath("hello/handler")), 0);
    b = discover_hello(c);
    ck_assert_int_eq(a->fns[0].size, b->fns[0].size);
    ck_assert(!discover_fn_same_binary(&a->fns[0], &b->fns[0]));
    ck_assert(!discover_fn_same_binary(&b->fns[0], &a->fns[0]));
    discover_list_free(a);
    discover_list_free(b);
    conf_free(c);
}
END_TEST

START_TEST(same_binary_in_place_rewrite)
{
    struct conf *c = load_conf("");
    struct discover_list *a, *b;
    struct stat st;

    add_fn("hello");
    a = discover_hello(c);
    /* cp over the old file: same inode, new size. */
    write_file(fpath("hello/handler"), "#!/bin/sh\necho v2\nexit 0\n", 0755);
    ck_assert_int_eq(stat(fpath("hello/handler"), &st), 0);
    ck_assert(st.st_ino == a->fns[0].ino);
    b = discover_hello(c);
    ck_assert(!discover_fn_same_binary(&a->fns[0], &b->fns[0]));
    discover_list_free(b);

    /* Same size again but a new mtime: still a new binary. */
    discover_list_free(a);
    a = discover_hello(c);
    write_file(fpath("hello/handler"), "#!/bin/sh\necho v3\nexit 0\n", 0755);
    {
        struct timespec ts[2] = {{.tv_sec = 1000000000, .tv_nsec = 0},
                                 {.tv_sec = 1000000000, .tv_nsec = 0}};
        ck_assert_int_eq(utimensat(AT_FDCWD, fpath("hello/handler"), ts, 0), 0);
    }
    b = discover_hello(c);
    ck_assert_int_eq(a->fns[0].size, b->fns[0].size);
    ck_assert(!discover_fn_same_binary(&a->fns[0], &b->fns[0]));
    discover_list_free(a);
    discover_list_free(b);
    conf_free(c);
}
END_TEST

static TCase *tcase(const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    return tc;
}

static Suite *discover_suite(void)
{
    Suite *s = suite_create("discover");
    TCase *tc;

    tc = tcase("discover");
    tcase_add_test(tc, discover_sorted);
    tcase_add_test(tc, discover_empty);
    tcase_add_test(tc, discover_missing_dir);
    tcase_add_test(tc, discover_skips_bad_names);
    tcase_add_test(tc, discover_skips_no_handler);
    tcase_add_test(tc, discover_symlinked_folder);
    suite_add_tcase(s, tc);

    tc = tcase("conf");
    tcase_add_test(tc, discover_settings_layered);
    tcase_add_test(tc, discover_bad_function_conf);
    tcase_add_test(tc, discover_unknown_section_loads);
    suite_add_tcase(s, tc);

    tc = tcase("identity");
    tcase_add_test(tc, same_binary_unchanged);
    tcase_add_test(tc, same_binary_atomic_replace);
    tcase_add_test(tc, same_binary_in_place_rewrite);
    suite_add_tcase(s, tc);

    return s;
}

CHECK_MAIN(discover_suite)
