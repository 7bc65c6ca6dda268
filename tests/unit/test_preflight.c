/*
 * Unit tests for gateway/preflight.c and gateway/dburl.c: every problem
 * serve would hit is reported, with fngate.conf's line where it has one,
 * and a function its instances cannot reach is disabled with the reason.
 * The instance-user cases need root (the access test drops to nobody); as
 * another user they are skipped with a line saying so.
 */
#include "config.h"

#include "conf.h"
#include "dburl.h"
#include "discover.h"
#include "preflight.h"

#include "testutil.h"

#include <check.h>

#include "check_main.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char err[1024];
static char problems[8][1024];
static int n_problems;

static void root_setup(void)
{
    testutil_root_make("test_preflight");
}

static void root_teardown(void)
{
    testutil_root_remove();
}

static void setup(void)
{
    testutil_dir_make();
    chmod(testutil_dir, 0755);
    chmod(testutil_root, 0755);
    err[0] = '\0';
    n_problems = 0;
}

static void teardown(void)
{
    testutil_dir_remove();
}

static void collect(void *arg, const char *problem)
{
    (void)arg;
    if (n_problems < 8)
        snprintf(problems[n_problems], sizeof(problems[0]), "%s", problem);
    n_problems++;
}

static const char *tpath(const char *rel)
{
    static char bufs[4][PATH_MAX + 128];
    static unsigned next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof(bufs[0]), "%s/%s", testutil_dir, rel);
    return b;
}

/* Writes fngate.conf: a [gateway] with BODY, and loads it. */
static struct conf *load(const char *body)
{
    FILE *fp = fopen(tpath("fngate.conf"), "w");
    struct conf *c;

    ck_assert_ptr_nonnull(fp);
    fprintf(fp, "[gateway]\n%s", body);
    fclose(fp);
    c = conf_load(tpath("fngate.conf"), err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    return c;
}

static void add_fn(const char *name, mode_t dir_mode, mode_t handler_mode)
{
    char dir[PATH_MAX + 128], h[PATH_MAX + 192];
    int fd;

    snprintf(dir, sizeof(dir), "%s/functions/%s", testutil_dir, name);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(h, sizeof(h), "%s/handler", dir);
    fd = open(h, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    ck_assert_int_eq(chmod(h, handler_mode), 0);
    ck_assert_int_eq(chmod(dir, dir_mode), 0);
}

START_TEST(dburl_conninfo)
{
    char why[256];

    ck_assert_int_eq(dburl_check("host=/run/postgresql dbname=app", why, sizeof(why)), 0);
    ck_assert_int_eq(
        dburl_check("  host = 'a b\\'c'  password='x y' sslmode=require ", why, sizeof(why)), 0);
    ck_assert_int_eq(dburl_check("", why, sizeof(why)), 0);
    ck_assert_int_eq(dburl_check("host=/x dbnme=app", why, sizeof(why)), -1);
    ck_assert_str_eq(why, "invalid connection option \"dbnme\"");
    ck_assert_int_eq(dburl_check("host /x", why, sizeof(why)), -1);
    ck_assert_str_eq(why, "missing \"=\" after \"host\" in connection info string");
    ck_assert_int_eq(dburl_check("password='secret", why, sizeof(why)), -1);
    ck_assert_str_eq(why, "unterminated quoted string in connection info string");
    /* The value (a password, maybe) is never echoed. */
    ck_assert_ptr_null(strstr(why, "secret"));
}
END_TEST

START_TEST(dburl_uri)
{
    char why[256];

    ck_assert_int_eq(dburl_check("postgresql://u:p%40ss@db.example:5432,db2/app?sslmode=require"
                                 "&application_name=x",
                                 why, sizeof(why)),
                     0);
    ck_assert_int_eq(dburl_check("postgres://[::1]:5432/app?ssl=true", why, sizeof(why)), 0);
    ck_assert_int_eq(dburl_check("postgresql:///app?host=/run/postgresql", why, sizeof(why)), 0);
    ck_assert_int_eq(dburl_check("postgresql://u:bad%zzpass@h/app", why, sizeof(why)), -1);
    ck_assert_str_eq(why, "invalid percent-encoded token");
    ck_assert_int_eq(dburl_check("postgresql://h/app?sslmdoe=require", why, sizeof(why)), -1);
    ck_assert_str_eq(why, "invalid URI query parameter: \"sslmdoe\"");
    ck_assert_int_eq(dburl_check("postgresql://h/app?sslmode", why, sizeof(why)), -1);
    ck_assert_str_eq(why, "missing key/value separator \"=\" in URI query parameter: \"sslmode\"");
    ck_assert_int_eq(dburl_check("postgresql://[]/app", why, sizeof(why)), -1);
    ck_assert_str_eq(why, "IPv6 host address may not be empty in URI");
    ck_assert_int_eq(dburl_check("postgresql://h/a%00b", why, sizeof(why)), -1);
    ck_assert_str_eq(why, "forbidden value %00 in percent-encoded value");
}
END_TEST

START_TEST(gateway_every_problem_with_its_line)
{
    char body[PATH_MAX * 4], want[PATH_MAX * 4];
    struct conf *c;
    int n;

    snprintf(body, sizeof(body),
             "functions_dir = %s/nowhere\n"          /* line 2 */
             "socket_dir = %s/missing/sock\n"        /* line 3 */
             "socket_group = no-such-group-fngate\n" /* line 4 */
             "database_url = host=/x dbnme=app\n",   /* line 5 */
             testutil_dir, testutil_dir);
    c = load(body);
    n = preflight_gateway(c, collect, NULL);
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(n_problems, 4);
    snprintf(want, sizeof(want), "%s:4: socket_group 'no-such-group-fngate' does not exist",
             c->path);
    ck_assert_str_eq(problems[0], want);
    snprintf(want, sizeof(want),
             "%s:3: socket_dir %s/missing/sock: cannot be created in %s/missing: No such file or "
             "directory",
             c->path, testutil_dir, testutil_dir);
    ck_assert_str_eq(problems[1], want);
    snprintf(want, sizeof(want), "%s:2: functions_dir %s/nowhere: No such file or directory",
             c->path, testutil_dir);
    ck_assert_str_eq(problems[2], want);
    snprintf(want, sizeof(want), "%s:5: database_url: invalid connection option \"dbnme\"",
             c->path);
    ck_assert_str_eq(problems[3], want);
    conf_free(c);
}
END_TEST

START_TEST(gateway_users_as_root)
{
    char body[PATH_MAX * 4], want[PATH_MAX * 4];
    struct conf *c;

    if (geteuid() != 0) {
        fprintf(stderr, "SKIP gateway_users_as_root: needs root (users are changed only then)\n");
        return;
    }
    snprintf(body, sizeof(body),
             "functions_dir = %s\nsocket_dir = %s/sock\nuser = no-such-user-fngate\n"
             "group = no-such-group-fngate\n",
             testutil_dir, testutil_dir);
    c = load(body);
    ck_assert_int_eq(preflight_gateway(c, collect, NULL), 2);
    snprintf(want, sizeof(want), "%s:4: user 'no-such-user-fngate' does not exist", c->path);
    ck_assert_str_eq(problems[0], want);
    snprintf(want, sizeof(want), "%s:5: group 'no-such-group-fngate' does not exist", c->path);
    ck_assert_str_eq(problems[1], want);
    conf_free(c);

    n_problems = 0;
    snprintf(body, sizeof(body), "functions_dir = %s\nsocket_dir = %s/sock\nuser = root\n",
             testutil_dir, testutil_dir);
    c = load(body);
    ck_assert_int_eq(preflight_gateway(c, collect, NULL), 1);
    snprintf(want, sizeof(want), "%s:4: user 'root' is root: instances never run as root", c->path);
    ck_assert_str_eq(problems[0], want);
    conf_free(c);
}
END_TEST

START_TEST(gateway_ok)
{
    char body[PATH_MAX * 4];
    struct conf *c;

    snprintf(body, sizeof(body), "functions_dir = %s\nsocket_dir = %s/sock\n", testutil_dir,
             testutil_dir);
    c = load(body);
    ck_assert_int_eq(preflight_gateway(c, collect, NULL), 0);
    conf_free(c);
}
END_TEST

START_TEST(functions_unreachable_are_disabled)
{
    char body[PATH_MAX * 4], want[PATH_MAX * 4];
    struct conf *c;
    struct discover_list *l;
    const struct discover_fn *d;

    if (geteuid() != 0) {
        fprintf(stderr, "SKIP functions_unreachable_are_disabled: needs root to run the access "
                        "test as nobody\n");
        return;
    }
    ck_assert_int_eq(mkdir(tpath("functions"), 0755), 0);
    add_fn("good", 0755, 0755);
    add_fn("closed", 0700, 0755);
    add_fn("ownonly", 0755, 0744);
    snprintf(body, sizeof(body),
             "functions_dir = %s/functions\nsocket_dir = %s/sock\n"
             "[closed]\nuser = nobody\n[ownonly]\nuser = nobody\n",
             testutil_dir, testutil_dir);
    c = load(body);
    l = discover_functions(c, err, sizeof(err));
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(preflight_functions(c, l), 0);
    ck_assert_ptr_null(discover_list_find(l, "good")->disabled);
    d = discover_list_find(l, "closed");
    snprintf(want, sizeof(want),
             "%s/functions/closed: instances (user nobody) cannot enter this folder: Permission "
             "denied",
             testutil_dir);
    ck_assert_str_eq(d->disabled, want);
    d = discover_list_find(l, "ownonly");
    snprintf(want, sizeof(want),
             "%s/functions/ownonly/handler: instances (user nobody) cannot execute it: "
             "Permission denied",
             testutil_dir);
    ck_assert_str_eq(d->disabled, want);
    discover_list_free(l);
    conf_free(c);

    /* A dynamic uid (the default when root) is judged the same way. */
    ck_assert_int_eq(chmod(tpath("functions/good"), 0750), 0);
    snprintf(body, sizeof(body), "functions_dir = %s/functions\nsocket_dir = %s/sock\n",
             testutil_dir, testutil_dir);
    c = load(body);
    l = discover_functions(c, err, sizeof(err));
    ck_assert_int_eq(preflight_functions(c, l), 0);
    d = discover_list_find(l, "good");
    ck_assert_ptr_nonnull(d->disabled);
    ck_assert_ptr_nonnull(strstr(d->disabled, "/functions/good: instances (dynamic uid "));
    ck_assert_ptr_nonnull(strstr(d->disabled, ") cannot enter this folder: Permission denied"));
    discover_list_free(l);
    conf_free(c);
}
END_TEST

START_TEST(functions_socket_path_too_long)
{
    char body[PATH_MAX * 4], sock[200], want[PATH_MAX];
    struct conf *c;
    struct discover_list *l;

    ck_assert_int_eq(mkdir(tpath("functions"), 0755), 0);
    add_fn("a-rather-long-function-name-for-a-socket-path-0123456789", 0755, 0755);
    /* An absolute socket_dir of 60 characters: with the name, over 107. */
    snprintf(sock, sizeof(sock), "/tmp/%055d", 0);
    snprintf(body, sizeof(body), "functions_dir = %s/functions\nsocket_dir = %s\n", testutil_dir,
             sock);
    c = load(body);
    l = discover_functions(c, err, sizeof(err));
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(preflight_functions(c, l), 0);
    snprintf(want, sizeof(want), "%s/fn/%s.sock: socket path longer than 107 bytes", sock,
             "a-rather-long-function-name-for-a-socket-path-0123456789");
    ck_assert_str_eq(l->fns[0].disabled, want);
    discover_list_free(l);
    conf_free(c);
}
END_TEST

START_TEST(conf_every_error_of_the_file)
{
    FILE *fp = fopen(tpath("bad.conf"), "w");
    char want[PATH_MAX + 256];
    const char *p = tpath("bad.conf");
    struct conf *c;

    ck_assert_ptr_nonnull(fp);
    fputs("[gateway]\n"
          "bogus = 1\n"     /* 2 */
          "pool_size = 0\n" /* 3 */
          "this is junk\n"  /* 4 */
          "[Bad Name]\n"    /* 5: its keys are not looked at */
          "also_bogus = 1\n"
          "[defaults]\n"
          "max_instances = zero\n" /* 8 */
          "idle_timeout = 5s\n",
          fp);
    fclose(fp);
    c = conf_load_report(p, collect, NULL);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(n_problems, 5);
    snprintf(want, sizeof(want), "%s:2: unknown key 'bogus' in [gateway]", p);
    ck_assert_str_eq(problems[0], want);
    snprintf(want, sizeof(want), "%s:3: pool_size: '0' is out of range (1..1000)", p);
    ck_assert_str_eq(problems[1], want);
    snprintf(want, sizeof(want),
             "%s:4: syntax error (expected 'key = value', '[section]' or a comment)", p);
    ck_assert_str_eq(problems[2], want);
    snprintf(want, sizeof(want),
             "%s:5: invalid section name '[Bad Name]' (function names are "
             "[a-z0-9][a-z0-9_-]{0,63})",
             p);
    ck_assert_str_eq(problems[3], want);
    snprintf(want, sizeof(want), "%s:8: max_instances: 'zero' is not an integer", p);
    ck_assert_str_eq(problems[4], want);
    /* conf_load still says the first one only. */
    ck_assert_ptr_null(conf_load(p, err, sizeof(err)));
    snprintf(want, sizeof(want), "%s:2: unknown key 'bogus' in [gateway]", p);
    ck_assert_str_eq(err, want);
    /* A good file loads the same both ways. */
    fp = fopen(p, "w");
    fputs("[gateway]\npool_size = 3\n", fp);
    fclose(fp);
    n_problems = 0;
    c = conf_load_report(p, collect, NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(n_problems, 0);
    ck_assert_int_eq(c->gw.pool_size, 3);
    conf_free(c);
}
END_TEST

static Suite *preflight_suite(void)
{
    Suite *s = suite_create("preflight");
    TCase *tc = tcase_create("preflight");

    tcase_add_unchecked_fixture(tc, root_setup, root_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, conf_every_error_of_the_file);
    tcase_add_test(tc, dburl_conninfo);
    tcase_add_test(tc, dburl_uri);
    tcase_add_test(tc, gateway_every_problem_with_its_line);
    tcase_add_test(tc, gateway_users_as_root);
    tcase_add_test(tc, gateway_ok);
    tcase_add_test(tc, functions_unreachable_are_disabled);
    tcase_add_test(tc, functions_socket_path_too_long);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(preflight_suite)
