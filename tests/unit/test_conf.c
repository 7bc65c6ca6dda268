/*
 * Unit tests for the configuration modules (gateway/conf*.c, fnconf.c).
 * Each test runs in a fresh mkdtemp directory that is also the working
 * directory, so config files are loaded as "fngate.conf" and error strings
 * can be compared exactly, the way an operator would read them.  Every bad-input path is asserted down to the
 * line number, since the line is what makes a config error actionable.
 */
#include "config.h"

#include "conf.h"
#include "confval.h"
#include "fnconf.h"

#include <check.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];  /* as created */
static char realdir[PATH_MAX]; /* realpath of tmpdir */
static char oldcwd[PATH_MAX];
static char errbuf[CONF_ERR_MAX];

static void setup(void)
{
    const char *base = getenv("TMPDIR");

    snprintf(tmpdir, sizeof(tmpdir), "%s/test_conf.XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    ck_assert_ptr_nonnull(realpath(tmpdir, realdir));
    ck_assert_ptr_nonnull(getcwd(oldcwd, sizeof(oldcwd)));
    ck_assert_int_eq(chdir(tmpdir), 0);
    unsetenv("DATABASE_URL");
    errbuf[0] = '\0';
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    if (chdir(oldcwd) != 0)
        perror("chdir");
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *rel, const char *content)
{
    FILE *f = fopen(rel, "w");

    ck_assert_msg(f != NULL, "cannot create %s: %s", rel, strerror(errno));
    ck_assert_int_ge(fputs(content, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

static struct conf *load(const char *content)
{
    write_file("fngate.conf", content);
    return conf_load("fngate.conf", errbuf, sizeof(errbuf));
}

/* Loads CONTENT, failing the test with the error if it is refused. */
static struct conf *load_ok(const char *content)
{
    struct conf *c = load(content);

    ck_assert_msg(c != NULL, "conf_load failed: %s", errbuf);
    return c;
}

#define ck_load_err(content, expect)                                                               \
    do {                                                                                           \
        struct conf *c_ = load(content);                                                           \
        ck_assert_msg(c_ == NULL, "loaded but expected: %s", (expect));                            \
        ck_assert_str_eq(errbuf, (expect));                                                        \
    } while (0)

/* A table of files that must be refused, each with its exact error. */
struct bad_case {
    const char *file;
    const char *err;
};

static void run_bad_cases(const struct bad_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct conf *c = load(cases[i].file);
        ck_assert_msg(c == NULL, "case %zu loaded:\n%s", i, cases[i].file);
        ck_assert_msg(strcmp(errbuf, cases[i].err) == 0, "case %zu:\n got  '%s'\n want '%s'", i,
                      errbuf, cases[i].err);
    }
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *env_get(const struct fn_settings *s, const char *key)
{
    for (size_t i = 0; i < s->n_env; i++)
        if (strcmp(s->env[i].key, key) == 0)
            return s->env[i].value;
    return NULL;
}

/* Effective settings for NAME, failing the test on error. */
static void fn_ok(const struct conf *c, const char *name, const char *fnconf, struct fn_settings *s)
{
    int r = fnconf_load(c, name, fnconf, s, errbuf, sizeof(errbuf));

    ck_assert_msg(r == 0, "fnconf_load(%s) failed: %s", name, errbuf);
}

static char *repeat(char ch, size_t n)
{
    static char buf[1024];

    ck_assert_uint_lt(n, sizeof(buf));
    memset(buf, ch, n);
    buf[n] = '\0';
    return buf;
}

/* ---- durations ------------------------------------------------------------ */

START_TEST(duration_valid)
{
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        {"0", 0},
        {"0ms", 0},
        {"500ms", 500},
        {"30s", 30000},
        {"5m", 300000},
        {"1h", 3600000},
        {"7", 7000},
        {"007s", 7000},
        {"1ms", 1},
        {"9223372036854775807ms", INT64_MAX},
        {"9223372036854775s", INT64_C(9223372036854775000)},
        {"2562047788015h", INT64_C(2562047788015) * 3600000},
    };

    for (size_t i = 0; i < N(ok); i++) {
        int64_t ms = -1;
        ck_assert_msg(confval_parse_duration(ok[i].s, &ms) == 0, "'%s' refused", ok[i].s);
        ck_assert_int_eq(ms, ok[i].ms);
    }
}
END_TEST

START_TEST(duration_invalid)
{
    static const char *const bad[] = {
        "",   "5x",   "-5s",  "-1", "+5",   "5 s",  " 5s", "5s ", "1.5s", "s",    "ms",  "5S",
        "5H", "5sec", "5mss", "5d", "5ms5", "0x10", "5 ",  "５s", "5\ts", "1e3s", "5m0", "h1",
    };

    for (size_t i = 0; i < N(bad); i++) {
        int64_t ms = 42;
        ck_assert_msg(confval_parse_duration(bad[i], &ms) == -1, "'%s' accepted", bad[i]);
        ck_assert_int_eq(ms, 42); /* untouched on failure */
    }
    ck_assert_int_eq(confval_parse_duration(NULL, &(int64_t){0}), -1);
}
END_TEST

START_TEST(duration_overflow)
{
    static const char *const bad[] = {
        "9223372036854775808ms", "9223372036854776s",    "153722867280913m",
        "2562047788016h",        "99999999999999999999", "99999999999999999999999999999999ms",
    };

    for (size_t i = 0; i < N(bad); i++) {
        int64_t ms = 42;
        ck_assert_msg(confval_parse_duration(bad[i], &ms) == -1, "'%s' accepted", bad[i]);
        ck_assert_int_eq(ms, 42);
    }
    /* The largest of each unit still fits. */
    int64_t ms;
    ck_assert_int_eq(confval_parse_duration("153722867280912m", &ms), 0);
    ck_assert_int_eq(ms, INT64_C(153722867280912) * 60000);
}
END_TEST

/* ---- sizes ---------------------------------------------------------------- */

START_TEST(size_valid)
{
    static const struct {
        const char *s;
        int64_t bytes;
    } ok[] = {
        {"0", 0},
        {"512", 512},
        {"512K", 512 * 1024},
        {"512k", 512 * 1024},
        {"256M", INT64_C(256) << 20},
        {"256m", INT64_C(256) << 20},
        {"1G", INT64_C(1) << 30},
        {"1g", INT64_C(1) << 30},
        {"0K", 0},
        {"0010", 10},
        {"9223372036854775807", INT64_MAX},
        {"9007199254740991K", INT64_C(9007199254740991) << 10},
        {"8589934591G", INT64_C(8589934591) << 30},
    };

    for (size_t i = 0; i < N(ok); i++) {
        int64_t b = -1;
        ck_assert_msg(confval_parse_size(ok[i].s, &b) == 0, "'%s' refused", ok[i].s);
        ck_assert_int_eq(b, ok[i].bytes);
    }
}
END_TEST

START_TEST(size_invalid)
{
    static const char *const bad[] = {
        "",    "K",   "1KB",  "1kb",  "1MB", "1T",  "1B", "-1",  "+1",  "1 K",
        " 1K", "1K ", "1.5M", "0x10", "1e3", "1KK", "M1", "1Ki", "1Gb", "one",
    };

    for (size_t i = 0; i < N(bad); i++) {
        int64_t b = 42;
        ck_assert_msg(confval_parse_size(bad[i], &b) == -1, "'%s' accepted", bad[i]);
        ck_assert_int_eq(b, 42);
    }
    ck_assert_int_eq(confval_parse_size(NULL, &(int64_t){0}), -1);
}
END_TEST

START_TEST(size_overflow)
{
    static const char *const bad[] = {
        "9223372036854775808", "9007199254740992K",        "8796093022208M",
        "8589934592G",         "99999999999999999999999G",
    };

    for (size_t i = 0; i < N(bad); i++) {
        int64_t b = 42;
        ck_assert_msg(confval_parse_size(bad[i], &b) == -1, "'%s' accepted", bad[i]);
        ck_assert_int_eq(b, 42);
    }
}
END_TEST

/* ---- names ---------------------------------------------------------------- */

START_TEST(name_valid)
{
    static const char *const ok[] = {
        "a",  "0",    "hello",    "hello-world", "a_b",      "9lives", "a-",
        "a_", "a--b", "gateway2", "defaults_",   "function", "x0-_9",
    };
    static const char *const bad[] = {
        "",       "-a",   "_a",   "Hello",       "hEllo", "HELLO", "a.b",     "a/b",
        "../x",   ".",    "..",   "a b",         " a",    "a ",    "gateway", "defaults",
        "limits", "a\tb", "a\nb", "caf\xc3\xa9", "a:b",   "a[b]",  "a;b",     "a=b",
    };

    for (size_t i = 0; i < N(ok); i++)
        ck_assert_msg(confval_name_valid(ok[i]), "'%s' refused", ok[i]);
    for (size_t i = 0; i < N(bad); i++)
        ck_assert_msg(!confval_name_valid(bad[i]), "'%s' accepted", bad[i]);
    ck_assert(!confval_name_valid(NULL));
}
END_TEST

START_TEST(name_length)
{
    char name[80];

    memset(name, 'a', sizeof(name));
    name[63] = '\0';
    ck_assert(confval_name_valid(name));
    name[63] = 'z';
    name[64] = '\0';
    ck_assert_uint_eq(strlen(name), 64);
    ck_assert(confval_name_valid(name));
    name[64] = '9';
    name[65] = '\0';
    ck_assert_uint_eq(strlen(name), 65);
    ck_assert(!confval_name_valid(name));
    name[0] = '-';
    name[64] = '\0';
    ck_assert(!confval_name_valid(name));
}
END_TEST

/* ---- [gateway] ------------------------------------------------------------ */

START_TEST(gateway_defaults)
{
    struct conf *c = load_ok("");

    ck_assert_str_eq(c->path, "fngate.conf");
    ck_assert_str_eq(c->gw.functions_dir, CONF_DEFAULT_FUNCTIONS_DIR);
    ck_assert_str_eq(c->gw.socket_dir, "/run/fngate");
    ck_assert_uint_eq(c->gw.socket_mode, 0660);
    ck_assert_ptr_null(c->gw.socket_group);
    ck_assert_ptr_null(c->gw.database_url);
    ck_assert_int_eq(c->gw.pool_size, 10);
    ck_assert_int_eq(c->gw.min_pool, 0);
    ck_assert_int_eq(c->gw.db_wait_timeout_ms, 5000);
    ck_assert_int_eq(c->gw.max_result, 16 << 20);
    ck_assert_ptr_null(c->gw.user);
    ck_assert_ptr_null(c->gw.group);
    ck_assert_int_eq(c->gw.dynamic_uid_min, 61184);
    ck_assert_int_eq(c->gw.dynamic_uid_max, 65519);
    ck_assert_int_eq(c->gw.log_level, LOG_LVL_INFO);
    ck_assert_int_eq(c->gw.stop_timeout_ms, 10000);
    ck_assert_ptr_null(c->defaults);
    ck_assert_uint_eq(c->n_defaults, 0);
    ck_assert_uint_eq(c->n_sections, 0);
    conf_free(c);

    /* Comments and blank lines only. */
    c = load_ok("; nothing\n# here\n\n   \n");
    ck_assert_uint_eq(c->n_sections, 0);
    conf_free(c);
}
END_TEST

START_TEST(gateway_all_keys)
{
    struct conf *c = load_ok("[gateway]\n"
                             "functions_dir = /srv/fn\n"
                             "socket_dir = /run/fn/\n"
                             "socket_mode = 0600\n"
                             "socket_group = www-data\n"
                             "database_url = postgresql://u:p@db/app?sslmode=disable\n"
                             "pool_size = 20\n"
                             "min_pool = 20\n"
                             "db_wait_timeout = 250ms\n"
                             "max_result = 1K\n"
                             "user = fn\n"
                             "group = fngrp\n"
                             "log_level = debug\n"
                             "stop_timeout = 2m\n");

    ck_assert_str_eq(c->gw.functions_dir, "/srv/fn");
    ck_assert_str_eq(c->gw.socket_dir, "/run/fn");
    ck_assert_uint_eq(c->gw.socket_mode, 0600);
    ck_assert_str_eq(c->gw.socket_group, "www-data");
    ck_assert_str_eq(c->gw.database_url, "postgresql://u:p@db/app?sslmode=disable");
    ck_assert_int_eq(c->gw.pool_size, 20);
    ck_assert_int_eq(c->gw.min_pool, 20);
    ck_assert_int_eq(c->gw.db_wait_timeout_ms, 250);
    ck_assert_int_eq(c->gw.max_result, 1024);
    ck_assert_str_eq(c->gw.user, "fn");
    ck_assert_str_eq(c->gw.group, "fngrp");
    ck_assert_int_eq(c->gw.log_level, LOG_LVL_DEBUG);
    ck_assert_int_eq(c->gw.stop_timeout_ms, 120000);
    conf_free(c);
}
END_TEST

START_TEST(gateway_values)
{
    struct conf *c;

    c = load_ok("[gateway]\nsocket_mode = 777\nlog_level = warn\npool_size = 1000\n"
                "stop_timeout = 0\ndb_wait_timeout = 0\n");
    ck_assert_uint_eq(c->gw.socket_mode, 0777);
    ck_assert_int_eq(c->gw.log_level, LOG_LVL_WARN);
    ck_assert_int_eq(c->gw.pool_size, 1000);
    ck_assert_int_eq(c->gw.stop_timeout_ms, 0);
    ck_assert_int_eq(c->gw.db_wait_timeout_ms, 0);
    conf_free(c);

    c = load_ok("[gateway]\nsocket_mode = 0\nlog_level = error\npool_size = 1\nmin_pool = 1\n");
    ck_assert_uint_eq(c->gw.socket_mode, 0);
    ck_assert_int_eq(c->gw.log_level, LOG_LVL_ERROR);
    ck_assert_int_eq(c->gw.min_pool, 1);
    conf_free(c);

    /* An empty optional string means "unset"; the last value of a repeated
     * key wins. */
    c = load_ok("[gateway]\nsocket_group = web\nsocket_group =\ndatabase_url = x\n"
                "database_url =\nuser = a\nuser = b\n");
    ck_assert_ptr_null(c->gw.socket_group);
    ck_assert_ptr_null(c->gw.database_url);
    ck_assert_str_eq(c->gw.user, "b");
    conf_free(c);
}
END_TEST

START_TEST(gateway_bad_values)
{
    static const struct bad_case cases[] = {
        {"[gateway]\nfunctions_dir =\n", "fngate.conf:2: functions_dir: must not be empty"},
        {"[gateway]\nsocket_dir =\n", "fngate.conf:2: socket_dir: must not be empty"},
        {"[gateway]\nuser =\n", "fngate.conf:2: user: must not be empty"},
        {"[gateway]\ngroup = \n", "fngate.conf:2: group: must not be empty"},
        {"[gateway]\nsocket_mode = 0999\n",
         "fngate.conf:2: socket_mode: '0999' is not an octal mode (e.g. 0660)"},
        {"[gateway]\nsocket_mode = rw\n",
         "fngate.conf:2: socket_mode: 'rw' is not an octal mode (e.g. 0660)"},
        {"[gateway]\nsocket_mode =\n",
         "fngate.conf:2: socket_mode: '' is not an octal mode (e.g. 0660)"},
        {"[gateway]\nsocket_mode = -660\n",
         "fngate.conf:2: socket_mode: '-660' is not an octal mode (e.g. 0660)"},
        {"[gateway]\nsocket_mode = 01000\n",
         "fngate.conf:2: socket_mode: '01000' is out of range (at most 0777)"},
        {"[gateway]\nsocket_mode = 4755\n",
         "fngate.conf:2: socket_mode: '4755' is out of range (at most 0777)"},
        {"[gateway]\nsocket_mode = 77777777777777777777777777\n",
         "fngate.conf:2: socket_mode: '77777777777777777777777777' is out of range (at most "
         "0777)"},
        {"[gateway]\npool_size = 0\n", "fngate.conf:2: pool_size: '0' is out of range (1..1000)"},
        {"[gateway]\npool_size = 1001\n",
         "fngate.conf:2: pool_size: '1001' is out of range (1..1000)"},
        {"[gateway]\npool_size = ten\n", "fngate.conf:2: pool_size: 'ten' is not an integer"},
        {"[gateway]\npool_size = 10s\n", "fngate.conf:2: pool_size: '10s' is not an integer"},
        {"[gateway]\npool_size = 99999999999999999999\n",
         "fngate.conf:2: pool_size: '99999999999999999999' is out of range (1..1000)"},
        {"[gateway]\nmin_pool = -1\n", "fngate.conf:2: min_pool: '-1' is out of range (0..1000)"},
        {"[gateway]\nmin_pool = 1001\n",
         "fngate.conf:2: min_pool: '1001' is out of range (0..1000)"},
        {"[gateway]\nmin_pool = 1.5\n", "fngate.conf:2: min_pool: '1.5' is not an integer"},
        {"[gateway]\ndb_wait_timeout = 5x\n",
         "fngate.conf:2: db_wait_timeout: '5x' is not a duration (use 500ms, 30s, 5m)"},
        {"[gateway]\ndb_wait_timeout = 9223372036854775808ms\n",
         "fngate.conf:2: db_wait_timeout: '9223372036854775808ms' is out of range"},
        {"[gateway]\nstop_timeout = -1s\n",
         "fngate.conf:2: stop_timeout: '-1s' is not a duration (use 500ms, 30s, 5m)"},
        {"[gateway]\nmax_result = 1023\n",
         "fngate.conf:2: max_result: '1023' is out of range (at least 1K)"},
        {"[gateway]\nmax_result = 0\n",
         "fngate.conf:2: max_result: '0' is out of range (at least 1K)"},
        {"[gateway]\nmax_result = 16MB\n",
         "fngate.conf:2: max_result: '16MB' is not a size (use 512K, 64M, 1G)"},
        {"[gateway]\nmax_result = 8589934592G\n",
         "fngate.conf:2: max_result: '8589934592G' is out of range (at least 1K)"},
        {"[gateway]\nlog_level = verbose\n",
         "fngate.conf:2: log_level: 'verbose' is not a log level (debug, info, warn, error)"},
        {"[gateway]\nlog_level = INFO\n",
         "fngate.conf:2: log_level: 'INFO' is not a log level (debug, info, warn, error)"},
    };

    run_bad_cases(cases, N(cases));
}
END_TEST

START_TEST(gateway_bad_keys)
{
    static const struct bad_case cases[] = {
        {"[gateway]\nfunction_dir = /x\n",
         "fngate.conf:2: unknown key 'function_dir' in [gateway]"},
        {"[gateway]\nPool_size = 1\n", "fngate.conf:2: unknown key 'Pool_size' in [gateway]"},
        {"[gateway]\nmax_instances = 4\n",
         "fngate.conf:2: unknown key 'max_instances' in [gateway] (function settings go in "
         "[defaults] or [<function>])"},
        {"[gateway]\nenv.FOO = bar\n",
         "fngate.conf:2: unknown key 'env.FOO' in [gateway] (function settings go in [defaults] "
         "or [<function>])"},
        {"[defaults]\npool_size = 4\n",
         "fngate.conf:2: unknown key 'pool_size' in [defaults] (pool_size is only valid in "
         "[gateway])"},
        /* database_url is valid in [<function>] too (its own role, issue 7). */
        {"[hello]\nmax_result = 1M\n",
         "fngate.conf:2: unknown key 'max_result' in [hello] (max_result is only valid in "
         "[gateway])"},
    };

    run_bad_cases(cases, N(cases));
}
END_TEST

START_TEST(gateway_min_pool_over_pool_size)
{
    static const struct bad_case cases[] = {
        /* The later of the two keys is the one reported. */
        {"[gateway]\npool_size = 5\nmin_pool = 6\n",
         "fngate.conf:3: min_pool (6) is greater than pool_size (5)"},
        {"[gateway]\nmin_pool = 6\n\npool_size = 5\n",
         "fngate.conf:4: min_pool (6) is greater than pool_size (5)"},
        /* Against the default pool_size of 10. */
        {"[gateway]\n# c\nmin_pool = 11\n",
         "fngate.conf:3: min_pool (11) is greater than pool_size (10)"},
    };

    run_bad_cases(cases, N(cases));
}
END_TEST

/* Issue 10: shared hosting writes socket_dir = ~/fngate/sock.  ~ and $HOME
 * expand to $HOME (else the password database); ~user and other variables
 * are refused with the reason, never taken as a folder named "~". */
START_TEST(gateway_home_expansion)
{
    char *old = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    struct conf *c;

    ck_assert_int_eq(setenv("HOME", "/home/alice", 1), 0);
    c = load_ok("[gateway]\nfunctions_dir = ~/fngate/functions\nsocket_dir = $HOME/fngate/sock\n"
                "request_log = ${HOME}/fngate/requests.log\n");
    ck_assert_str_eq(c->gw.functions_dir, "/home/alice/fngate/functions");
    ck_assert_str_eq(c->gw.socket_dir, "/home/alice/fngate/sock");
    ck_assert_str_eq(c->gw.request_log, "/home/alice/fngate/requests.log");
    conf_free(c);
    c = load_ok("[gateway]\nfunctions_dir = ~\nsocket_dir = $HOME/\n");
    ck_assert_str_eq(c->gw.functions_dir, "/home/alice");
    ck_assert_str_eq(c->gw.socket_dir, "/home/alice");
    conf_free(c);
    /* Not at the start: a literal path, made absolute as before. */
    c = load_ok("[gateway]\nfunctions_dir = a~b\n");
    ck_assert_str_eq(c->gw.functions_dir + strlen(c->gw.functions_dir) - 4, "/a~b");
    conf_free(c);

    ck_load_err("[gateway]\nsocket_dir = ~bob/sock\n",
                "fngate.conf:2: socket_dir: '~bob/sock': ~user is not expanded (only ~/ and "
                "$HOME are): write the path out");
    ck_load_err("[gateway]\nsocket_dir = $XDG_RUNTIME_DIR/fngate\n",
                "fngate.conf:2: socket_dir: '$XDG_RUNTIME_DIR/fngate': only a leading ~ or "
                "$HOME is expanded, not '$XDG_RUNTIME_DIR/fngate'");
    ck_load_err("[gateway]\nfunctions_dir = ~/x/$USER\n",
                "fngate.conf:2: functions_dir: '~/x/$USER': only a leading ~ or $HOME is "
                "expanded, not '$USER'");

    /* No usable HOME: the password database's home of the effective uid. */
    ck_assert_int_eq(unsetenv("HOME"), 0);
    c = load_ok("[gateway]\nsocket_dir = ~/s\n");
    {
        struct passwd *pw = getpwuid(geteuid());
        char want[PATH_MAX];
        ck_assert_ptr_nonnull(pw);
        snprintf(want, sizeof(want), "%s/s", strcmp(pw->pw_dir, "/") == 0 ? "" : pw->pw_dir);
        ck_assert_str_eq(c->gw.socket_dir, want);
    }
    conf_free(c);
    if (old) {
        setenv("HOME", old, 1);
        free(old);
    }
}
END_TEST

START_TEST(gateway_relative_dirs)
{
    char want[PATH_MAX + 64];
    struct conf *c;

    ck_assert_int_eq(mkdir("proj", 0755), 0);
    write_file("proj/fngate.conf", "[gateway]\n"
                                   "functions_dir = functions\n"
                                   "socket_dir = ./run/sock/\n");

    /* Relative config path: resolved against its directory, not the cwd. */
    c = conf_load("proj/fngate.conf", errbuf, sizeof(errbuf));
    ck_assert_msg(c != NULL, "%s", errbuf);
    snprintf(want, sizeof(want), "%s/proj/functions", realdir);
    ck_assert_str_eq(c->gw.functions_dir, want);
    snprintf(want, sizeof(want), "%s/proj/run/sock", realdir);
    ck_assert_str_eq(c->gw.socket_dir, want);
    conf_free(c);

    /* Same result from another working directory with an absolute path. */
    ck_assert_int_eq(chdir("/"), 0);
    snprintf(want, sizeof(want), "%s/proj/fngate.conf", tmpdir);
    c = conf_load(want, errbuf, sizeof(errbuf));
    ck_assert_msg(c != NULL, "%s", errbuf);
    snprintf(want, sizeof(want), "%s/proj/functions", realdir);
    ck_assert_str_eq(c->gw.functions_dir, want);
    conf_free(c);
    ck_assert_int_eq(chdir(tmpdir), 0);

    /* A config in the cwd; "." is the config's own directory. */
    c = load_ok("[gateway]\nfunctions_dir = .\nsocket_dir = ../elsewhere\n");
    ck_assert_str_eq(c->gw.functions_dir, realdir);
    snprintf(want, sizeof(want), "%s/../elsewhere", realdir);
    ck_assert_str_eq(c->gw.socket_dir, want);
    ck_assert(c->gw.functions_dir[0] == '/');
    conf_free(c);
}
END_TEST

START_TEST(gateway_database_url_env)
{
    struct conf *c;

    setenv("DATABASE_URL", "postgresql:///from_env", 1);
    c = load_ok("[gateway]\ndatabase_url = postgresql:///from_file\n");
    ck_assert_str_eq(c->gw.database_url, "postgresql:///from_env");
    conf_free(c);

    /* Also when the file has none. */
    c = load_ok("");
    ck_assert_str_eq(c->gw.database_url, "postgresql:///from_env");
    conf_free(c);

    /* Empty means unset. */
    setenv("DATABASE_URL", "", 1);
    c = load_ok("[gateway]\ndatabase_url = postgresql:///from_file\n");
    ck_assert_str_eq(c->gw.database_url, "postgresql:///from_file");
    conf_free(c);

    unsetenv("DATABASE_URL");
    c = load_ok("[gateway]\ndatabase_url = postgresql:///from_file\n");
    ck_assert_str_eq(c->gw.database_url, "postgresql:///from_file");
    conf_free(c);
}
END_TEST

/* ---- file structure ------------------------------------------------------- */

START_TEST(structure_errors)
{
    static const struct bad_case cases[] = {
        {"pool_size = 4\n", "fngate.conf:1: key 'pool_size' is outside any section"},
        {"; comment\n\nmax_instances = 4\n[hello]\n",
         "fngate.conf:3: key 'max_instances' is outside any section"},
        {"[gateway]\n\n[Hello World]\nmax_instances = 1\n",
         "fngate.conf:3: invalid section name '[Hello World]' (function names are "
         "[a-z0-9][a-z0-9_-]{0,63})"},
        {"[Hello]\n", "fngate.conf:1: invalid section name '[Hello]' (function names are "
                      "[a-z0-9][a-z0-9_-]{0,63})"},
        {"[-hello]\n", "fngate.conf:1: invalid section name '[-hello]' (function names are "
                       "[a-z0-9][a-z0-9_-]{0,63})"},
        {"[a.b]\n", "fngate.conf:1: invalid section name '[a.b]' (function names are "
                    "[a-z0-9][a-z0-9_-]{0,63})"},
        {"[a/b]\n", "fngate.conf:1: invalid section name '[a/b]' (function names are "
                    "[a-z0-9][a-z0-9_-]{0,63})"},
        {"[]\n", "fngate.conf:1: invalid section name '[]' (function names are "
                 "[a-z0-9][a-z0-9_-]{0,63})"},
        {"[ hello ]\n", "fngate.conf:1: invalid section name '[ hello ]' (function names are "
                        "[a-z0-9][a-z0-9_-]{0,63})"},
        {"[Gateway]\n", "fngate.conf:1: invalid section name '[Gateway]' (function names are "
                        "[a-z0-9][a-z0-9_-]{0,63})"},
        {"[hello]\nmax_instances = 2\n[world]\n[hello]\n",
         "fngate.conf:4: duplicate section [hello] (first at line 1)"},
        {"[gateway]\n[defaults]\n[gateway]\n",
         "fngate.conf:3: duplicate section [gateway] (first at line 1)"},
        {"[defaults]\n[gateway]\n\n[defaults]\n",
         "fngate.conf:4: duplicate section [defaults] (first at line 1)"},
        {"[hello\n", "fngate.conf:1: missing ']' in section header '[hello'"},
        {"[hello] x\n", "fngate.conf:1: unexpected text after section header '[hello]'"},
        {"[gateway]\npool_size\n",
         "fngate.conf:2: syntax error (expected 'key = value', '[section]' or a comment)"},
        {"[gateway]\n= 5\n", "fngate.conf:2: missing key name before '='"},
        /* The first error wins, whatever its kind. */
        {"[gateway]\nbogus\n[Bad]\nx = 1\n",
         "fngate.conf:2: syntax error (expected 'key = value', '[section]' or a comment)"},
        {"[hello]\nnope = 1\nbogus\n", "fngate.conf:2: unknown key 'nope' in [hello]"},
        {"[hello]\nmax_instances = x\nmin_instances = y\n",
         "fngate.conf:2: max_instances: 'x' is not an integer"},
        {"[hello]\nmin_instances = 9\n[world]\nbad = 1\n",
         "fngate.conf:4: unknown key 'bad' in [world]"},
    };

    run_bad_cases(cases, N(cases));
}
END_TEST

START_TEST(structure_long_names)
{
    char file[2048], want[512];
    const char *name64 = "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij0123";
    struct conf *c;

    /* 64 characters: longer than inih's own section buffer, kept in full. */
    ck_assert_uint_eq(strlen(name64), 64);
    snprintf(file, sizeof(file), "[%s]\nmax_instances = 3\n", name64);
    c = load_ok(file);
    ck_assert_uint_eq(c->n_sections, 1);
    ck_assert_str_eq(c->sections[0].name, name64);
    ck_assert_ptr_nonnull(conf_section_find(c, name64));
    conf_free(c);

    snprintf(file, sizeof(file), "[%s4]\n", name64);
    snprintf(want, sizeof(want),
             "fngate.conf:1: invalid section name '[%s4]' (function names are "
             "[a-z0-9][a-z0-9_-]{0,63})",
             name64);
    ck_load_err(file, want);

    /* Two names that share inih's 49-character prefix stay distinct. */
    snprintf(file, sizeof(file), "[%.60sa]\n[%.60sb]\n", repeat('x', 60), repeat('x', 60));
    c = load_ok(file);
    ck_assert_uint_eq(c->n_sections, 2);
    conf_free(c);
}
END_TEST

START_TEST(structure_long_line)
{
    char file[2048];
    struct conf *c;

    /* Up to 198 characters is fine (inih's 200-byte line buffer). */
    snprintf(file, sizeof(file), "[hello]\nenv.A = %s\n", repeat('v', 190));
    c = load_ok(file);
    ck_assert_str_eq(c->sections[0].kv[0].value, repeat('v', 190));
    conf_free(c);

    snprintf(file, sizeof(file), "[hello]\n\nenv.A = %s\n", repeat('v', 300));
    ck_load_err(file, "fngate.conf:3: line too long (at most 198 characters)");
}
END_TEST

START_TEST(structure_syntax)
{
    struct conf *c;

    /* Indented keys are keys (not inih continuations), CRLF line ends,
     * inline ';' comments, '#' inside values, ':' as a separator, a BOM. */
    c = load_ok("\xEF\xBB\xBF[gateway]\r\n"
                "    pool_size = 4 ; four\r\n"
                "\tmin_pool = 2\r\n"
                "[hello]   ; the hello function\n"
                "  max_instances: 3\n"
                "  env.GREETING = hi # there\n"
                "  env.EMPTY =\n"
                "  env.SPACES =   a  b   \n"
                "# max_instances = 99\n"
                "; min_instances = 99\n");
    ck_assert_int_eq(c->gw.pool_size, 4);
    ck_assert_int_eq(c->gw.min_pool, 2);
    ck_assert_uint_eq(c->n_sections, 1);
    ck_assert_uint_eq(c->sections[0].n_kv, 4);
    ck_assert_str_eq(c->sections[0].kv[0].key, "max_instances");
    ck_assert_str_eq(c->sections[0].kv[0].value, "3");
    ck_assert_str_eq(c->sections[0].kv[1].value, "hi # there");
    ck_assert_str_eq(c->sections[0].kv[2].value, "");
    ck_assert_str_eq(c->sections[0].kv[3].value, "a  b");
    conf_free(c);
}
END_TEST

START_TEST(structure_sections_stored)
{
    struct conf *c = load_ok("[defaults]\n"
                             "max_instances = 4\n"
                             "env.A = 1\n"
                             "\n"
                             "[hello]\n"
                             "idle_timeout = 5s\n"
                             "env.A = 2\n"
                             "env.A = 3\n"
                             "[gateway]\n"
                             "pool_size = 3\n"
                             "[world-2]\n");

    ck_assert_uint_eq(c->n_defaults, 2);
    ck_assert_str_eq(c->defaults[0].key, "max_instances");
    ck_assert_str_eq(c->defaults[0].value, "4");
    ck_assert_int_eq(c->defaults[0].line, 2);
    ck_assert_str_eq(c->defaults[1].key, "env.A");
    ck_assert_int_eq(c->defaults[1].line, 3);

    ck_assert_uint_eq(c->n_sections, 2);
    ck_assert_str_eq(c->sections[0].name, "hello");
    ck_assert_int_eq(c->sections[0].line, 5);
    ck_assert_uint_eq(c->sections[0].n_kv, 3);
    ck_assert_str_eq(c->sections[0].kv[0].key, "idle_timeout");
    ck_assert_str_eq(c->sections[0].kv[0].value, "5s");
    ck_assert_int_eq(c->sections[0].kv[0].line, 6);
    ck_assert_str_eq(c->sections[0].kv[2].value, "3");
    ck_assert_int_eq(c->sections[0].kv[2].line, 8);
    ck_assert_str_eq(c->sections[1].name, "world-2");
    ck_assert_int_eq(c->sections[1].line, 11);
    ck_assert_uint_eq(c->sections[1].n_kv, 0);

    ck_assert_ptr_eq(conf_section_find(c, "hello"), &c->sections[0]);
    ck_assert_ptr_eq(conf_section_find(c, "world-2"), &c->sections[1]);
    ck_assert_ptr_null(conf_section_find(c, "world"));
    ck_assert_ptr_null(conf_section_find(c, "defaults"));
    ck_assert_ptr_null(conf_section_find(c, "gateway"));
    ck_assert_ptr_null(conf_section_find(NULL, "hello"));
    conf_free(c);
}
END_TEST

START_TEST(structure_unreadable)
{
    struct conf *c;

    c = conf_load("missing.conf", errbuf, sizeof(errbuf));
    ck_assert_ptr_null(c);
    ck_assert_str_eq(errbuf, "missing.conf: cannot open: No such file or directory");

    ck_assert_int_eq(mkdir("adir", 0755), 0);
    c = conf_load("adir", errbuf, sizeof(errbuf));
    ck_assert_ptr_null(c);
    ck_assert_str_eq(errbuf, "adir: cannot open: Is a directory");

    if (geteuid() != 0) {
        write_file("secret.conf", "[gateway]\n");
        ck_assert_int_eq(chmod("secret.conf", 0), 0);
        c = conf_load("secret.conf", errbuf, sizeof(errbuf));
        ck_assert_ptr_null(c);
        ck_assert_str_eq(errbuf, "secret.conf: cannot open: Permission denied");
    }

    /* A tiny error buffer truncates but never overflows; none is fine too. */
    char small[8];
    ck_assert_ptr_null(conf_load("missing.conf", small, sizeof(small)));
    ck_assert_str_eq(small, "missing");
    ck_assert_ptr_null(conf_load("missing.conf", NULL, 0));

    conf_free(NULL);
}
END_TEST

/* ---- function keys -------------------------------------------------------- */

START_TEST(fnkeys_valid)
{
    struct fn_settings s;
    struct conf *c = load_ok("[hello]\n"
                             "max_instances = 4096\n"
                             "min_instances = 4096\n"
                             "idle_timeout = 0\n"
                             "request_timeout = 1h\n"
                             "queue_timeout = 250ms\n"
                             "statement_timeout = 596h\n"
                             "max_requests = 9223372036854775807\n"
                             "memory_limit = 1M\n"
                             "open_files = 1048576\n"
                             "max_body = 1G\n"
                             "queue_size = 65535\n"
                             "env.A_1 = x\n"
                             "env._b = y\n"
                             "env.fngate_lower = ok\n"
                             "env.FNGATE = ok\n");

    fn_ok(c, "hello", NULL, &s);
    ck_assert_int_eq(s.max_instances, 4096);
    ck_assert_int_eq(s.min_instances, 4096);
    ck_assert_int_eq(s.idle_timeout_ms, 0);
    ck_assert_int_eq(s.request_timeout_ms, 3600000);
    ck_assert_int_eq(s.queue_timeout_ms, 250);
    ck_assert_int_eq(s.statement_timeout_ms, INT64_C(596) * 3600000);
    ck_assert_int_eq(s.max_requests, LONG_MAX);
    ck_assert_int_eq(s.memory_limit, 1 << 20);
    ck_assert_int_eq(s.open_files, 1048576);
    ck_assert_int_eq(s.max_body, 1 << 30);
    ck_assert_int_eq(s.queue_size, 65535);
    ck_assert_uint_eq(s.n_env, 4);
    ck_assert_str_eq(env_get(&s, "A_1"), "x");
    ck_assert_str_eq(env_get(&s, "_b"), "y");
    ck_assert_str_eq(env_get(&s, "fngate_lower"), "ok");
    ck_assert_str_eq(env_get(&s, "FNGATE"), "ok");
    fnconf_clear(&s);
    conf_free(c);

    /* The low ends. */
    c = load_ok("[defaults]\nmax_instances = 1\nmemory_limit = 0\nmax_body = 0\nopen_files = 16\n"
                "queue_size = 1\nmax_requests = 0\nrequest_timeout = 0\nqueue_timeout = 0s\n"
                "statement_timeout = 0ms\n");
    fn_ok(c, "any", NULL, &s);
    ck_assert_int_eq(s.max_instances, 1);
    ck_assert_int_eq(s.memory_limit, 0);
    ck_assert_int_eq(s.max_body, 0);
    ck_assert_int_eq(s.open_files, 16);
    ck_assert_int_eq(s.queue_size, 1);
    ck_assert_int_eq(s.request_timeout_ms, 0);
    ck_assert_int_eq(s.queue_timeout_ms, 0);
    fnconf_clear(&s);
    conf_free(c);
}
END_TEST

START_TEST(fnkeys_bad_values)
{
    static const struct bad_case cases[] = {
        /* integers */
        {"[hello]\nmax_instances = 0\n",
         "fngate.conf:2: max_instances: '0' is out of range (1..4096)"},
        {"[hello]\nmax_instances = 4097\n",
         "fngate.conf:2: max_instances: '4097' is out of range (1..4096)"},
        {"[hello]\nmax_instances = four\n",
         "fngate.conf:2: max_instances: 'four' is not an integer"},
        {"[hello]\nmax_instances =\n", "fngate.conf:2: max_instances: '' is not an integer"},
        {"[hello]\nmax_instances = +4\n", "fngate.conf:2: max_instances: '+4' is not an integer"},
        {"[hello]\nmax_instances = 0x10\n",
         "fngate.conf:2: max_instances: '0x10' is not an integer"},
        {"[hello]\nmax_instances = 4 4\n", "fngate.conf:2: max_instances: '4 4' is not an integer"},
        {"[hello]\nmin_instances = -1\n",
         "fngate.conf:2: min_instances: '-1' is out of range (0..4096)"},
        {"[hello]\nmin_instances = 4097\n",
         "fngate.conf:2: min_instances: '4097' is out of range (0..4096)"},
        {"[hello]\nmax_requests = -1\n",
         "fngate.conf:2: max_requests: '-1' is out of range (at least 0)"},
        {"[hello]\nmax_requests = 9223372036854775808\n",
         "fngate.conf:2: max_requests: '9223372036854775808' is out of range (at least 0)"},
        {"[hello]\nmax_requests = 1k\n", "fngate.conf:2: max_requests: '1k' is not an integer"},
        {"[hello]\nopen_files = 15\n",
         "fngate.conf:2: open_files: '15' is out of range (16..1048576)"},
        {"[hello]\nopen_files = 1048577\n",
         "fngate.conf:2: open_files: '1048577' is out of range (16..1048576)"},
        {"[hello]\nqueue_size = 0\n", "fngate.conf:2: queue_size: '0' is out of range (1..65535)"},
        {"[hello]\nqueue_size = 65536\n",
         "fngate.conf:2: queue_size: '65536' is out of range (1..65535)"},
        /* durations */
        {"[hello]\nidle_timeout = 5x\n",
         "fngate.conf:2: idle_timeout: '5x' is not a duration (use 500ms, 30s, 5m)"},
        {"[hello]\nrequest_timeout = -1\n",
         "fngate.conf:2: request_timeout: '-1' is not a duration (use 500ms, 30s, 5m)"},
        {"[hello]\nqueue_timeout = 1.5s\n",
         "fngate.conf:2: queue_timeout: '1.5s' is not a duration (use 500ms, 30s, 5m)"},
        {"[hello]\nstatement_timeout = 2 s\n",
         "fngate.conf:2: statement_timeout: '2 s' is not a duration (use 500ms, 30s, 5m)"},
        {"[hello]\nidle_timeout = 9999999999999999999h\n",
         "fngate.conf:2: idle_timeout: '9999999999999999999h' is out of range"},
        {"[hello]\nstatement_timeout = 597h\n",
         "fngate.conf:2: statement_timeout: '597h' is out of range (at most 596h)"},
        /* sizes */
        {"[hello]\nmemory_limit = 1MB\n",
         "fngate.conf:2: memory_limit: '1MB' is not a size (use 512K, 64M, 1G)"},
        {"[hello]\nmemory_limit = 1023K\n",
         "fngate.conf:2: memory_limit: '1023K' is out of range (0 for unlimited, or at least "
         "1M)"},
        {"[hello]\nmemory_limit = 1\n",
         "fngate.conf:2: memory_limit: '1' is out of range (0 for unlimited, or at least 1M)"},
        {"[hello]\nmemory_limit = 8589934592G\n",
         "fngate.conf:2: memory_limit: '8589934592G' is out of range (0 for unlimited, or at "
         "least 1M)"},
        {"[hello]\nmax_body = 1025M\n",
         "fngate.conf:2: max_body: '1025M' is out of range (at most 1G)"},
        {"[hello]\nmax_body = -1\n",
         "fngate.conf:2: max_body: '-1' is not a size (use 512K, 64M, 1G)"},
        /* env */
        {"[hello]\nenv.1X = a\n",
         "fngate.conf:2: env.1X: invalid variable name '1X' (use [A-Za-z_][A-Za-z0-9_]*)"},
        {"[hello]\nenv.A-B = a\n",
         "fngate.conf:2: env.A-B: invalid variable name 'A-B' (use [A-Za-z_][A-Za-z0-9_]*)"},
        {"[hello]\nenv.A.B = a\n",
         "fngate.conf:2: env.A.B: invalid variable name 'A.B' (use [A-Za-z_][A-Za-z0-9_]*)"},
        {"[hello]\nenv. = a\n",
         "fngate.conf:2: env.: invalid variable name '' (use [A-Za-z_][A-Za-z0-9_]*)"},
        {"[hello]\nenv.FNGATE_FN = x\n",
         "fngate.conf:2: env.FNGATE_FN: names starting with FNGATE_ are reserved for fngate"},
        {"[defaults]\nenv.FNGATE_ = x\n",
         "fngate.conf:2: env.FNGATE_: names starting with FNGATE_ are reserved for fngate"},
        /* unknown */
        {"[hello]\nmax_instance = 4\n", "fngate.conf:2: unknown key 'max_instance' in [hello]"},
        {"[hello]\nenv = 4\n", "fngate.conf:2: unknown key 'env' in [hello]"},
        {"[hello]\nENV.A = 4\n", "fngate.conf:2: unknown key 'ENV.A' in [hello]"},
        {"[defaults]\nmaxinstances = 4\n",
         "fngate.conf:2: unknown key 'maxinstances' in [defaults]"},
    };

    run_bad_cases(cases, N(cases));
}
END_TEST

/* The same checks hold in [defaults], at the right line. */
START_TEST(fnkeys_bad_in_defaults)
{
    static const struct bad_case cases[] = {
        {"[gateway]\n[defaults]\n; x\nidle_timeout = 5x\n",
         "fngate.conf:4: idle_timeout: '5x' is not a duration (use 500ms, 30s, 5m)"},
        {"[defaults]\nqueue_size = 70000\n",
         "fngate.conf:2: queue_size: '70000' is out of range (1..65535)"},
        {"[defaults]\nmax_body = 2G\n",
         "fngate.conf:2: max_body: '2G' is out of range (at most 1G)"},
    };

    run_bad_cases(cases, N(cases));
}
END_TEST

/* ---- min_instances <= max_instances --------------------------------------- */

START_TEST(minmax_load)
{
    static const struct bad_case cases[] = {
        {"[hello]\nmin_instances = 4\nmax_instances = 2\n",
         "fngate.conf:3: min_instances (4) is greater than max_instances (2) in [hello]"},
        {"[hello]\nmax_instances = 2\nmin_instances = 4\n",
         "fngate.conf:3: min_instances (4) is greater than max_instances (2) in [hello]"},
        /* Against the built-in max of 8. */
        {"[hello]\nmin_instances = 9\n",
         "fngate.conf:2: min_instances (9) is greater than max_instances (8) in [hello]"},
        /* [defaults] alone. */
        {"[defaults]\nmin_instances = 9\n",
         "fngate.conf:2: min_instances (9) is greater than max_instances (8) in [defaults]"},
        /* A section that sets neither does not hide it. */
        {"[defaults]\nmin_instances = 9\n[hello]\nidle_timeout = 1s\n",
         "fngate.conf:2: min_instances (9) is greater than max_instances (8) in [defaults]"},
        /* Even if the only section fixes it: another function may not. */
        {"[defaults]\nmin_instances = 9\n[hello]\nmax_instances = 10\n",
         "fngate.conf:2: min_instances (9) is greater than max_instances (8) in [defaults]"},
        /* Merged with [defaults], even when [defaults] comes later. */
        {"[hello]\nmax_instances = 2\n[defaults]\nmin_instances = 3\n",
         "fngate.conf:2: min_instances (3) is greater than max_instances (2) in [hello]"},
        {"[defaults]\nmin_instances = 3\n[hello]\nidle_timeout = 1s\nmax_instances = 2\n",
         "fngate.conf:5: min_instances (3) is greater than max_instances (2) in [hello]"},
        /* The earliest offending line across sections. */
        {"[aaa]\nmin_instances = 1\n[bbb]\nmin_instances = 9\n[ccc]\nmin_instances = 10\n",
         "fngate.conf:4: min_instances (9) is greater than max_instances (8) in [bbb]"},
        {"[hello]\nmin_instances = 9\n[gateway]\npool_size = 1\nmin_pool = 2\n",
         "fngate.conf:2: min_instances (9) is greater than max_instances (8) in [hello]"},
        {"[gateway]\npool_size = 1\nmin_pool = 2\n[hello]\nmin_instances = 9\n",
         "fngate.conf:3: min_pool (2) is greater than pool_size (1)"},
        /* A per-line error stops the parse before the cross checks. */
        {"[hello]\nmin_instances = 9\nbad = 1\n", "fngate.conf:3: unknown key 'bad' in [hello]"},
    };
    struct conf *c;

    run_bad_cases(cases, N(cases));

    /* Equal is fine; so is a later key that repairs an earlier one. */
    c = load_ok("[defaults]\nmin_instances = 8\n[hello]\nmin_instances = 9\nmax_instances = 9\n"
                "[world]\nmin_instances = 20\nmin_instances = 1\n");
    conf_free(c);
}
END_TEST

/* ---- identity and sandbox keys (issue 6) ---------------------------------- */

START_TEST(sandbox_keys)
{
    struct fn_settings s;
    struct conf *c;

    ck_assert_int_eq(mkdir("hello", 0755), 0);
    c = load_ok("[defaults]\nsandbox_read = /srv/data  /opt/x\n[hello]\nuser = nobody\n"
                "group = nogroup\nsandbox = off\nsandbox_write = /var/cache/hello\n");
    fn_ok(c, "hello", NULL, &s);
    ck_assert(!s.sandbox);
    ck_assert_str_eq(s.user, "nobody");
    ck_assert_str_eq(s.group, "nogroup");
    ck_assert_str_eq(s.sandbox_read, "/srv/data  /opt/x");
    ck_assert_str_eq(s.sandbox_write, "/var/cache/hello");
    fnconf_clear(&s);
    /* Defaults: sandbox on, nothing extra, a dynamic uid. */
    fn_ok(c, "other", NULL, &s);
    ck_assert(s.sandbox);
    ck_assert_ptr_null(s.user);
    ck_assert_ptr_null(s.sandbox_write);
    fnconf_clear(&s);

    /* A function must not pick whose rights it runs with. */
    write_file("hello/function.conf", "# shipped\nuser = postgres\n");
    ck_assert_int_eq(fnconf_load(c, "hello", "hello/function.conf", &s, errbuf, sizeof(errbuf)),
                     -1);
    ck_assert_str_eq(errbuf, "hello/function.conf:2: user: only the operator's fngate.conf may "
                             "set who a function runs as");
    /* Nor relax its own sandbox; tightening is fine. */
    write_file("hello/function.conf", "sandbox = on\nsandbox = off\n");
    ck_assert_int_eq(fnconf_load(c, "hello", "hello/function.conf", &s, errbuf, sizeof(errbuf)),
                     -1);
    ck_assert_str_eq(errbuf, "hello/function.conf:2: sandbox: only the operator's fngate.conf may "
                             "relax a function's sandbox (or allow it in [limits])");
    write_file("hello/function.conf", "[function]\nsandbox_write = /srv\n");
    ck_assert_int_eq(fnconf_load(c, "hello", "hello/function.conf", &s, errbuf, sizeof(errbuf)),
                     -1);
    ck_assert_str_eq(errbuf,
                     "hello/function.conf:2: sandbox_write: only the operator's "
                     "fngate.conf may relax a function's sandbox (or allow it in [limits])");
    conf_free(c);

    static const struct bad_case bad[] = {
        {"[defaults]\nsandbox = maybe\n",
         "fngate.conf:2: sandbox: 'maybe' is not a boolean (on or off)"},
        {"[defaults]\nsandbox_read = /ok relative/path\n",
         "fngate.conf:2: sandbox_read: 'relative/path' is not an absolute path without '..'"},
        {"[x]\nsandbox_write = /srv/../etc\n",
         "fngate.conf:2: sandbox_write: '/srv/../etc' is not an absolute path without '..'"},
        {"[gateway]\ndynamic_uid_min = 0\n",
         "fngate.conf:2: dynamic_uid_min: '0' is out of range (1..2147483646)"},
    };
    run_bad_cases(bad, N(bad));
}
END_TEST

/* Loads CONF, writes hello/function.conf with FNCONF and returns
 * conf_function's result for hello (the error in errbuf). */
static int limited(struct conf *c, const char *fnconf, struct fn_settings *s)
{
    mkdir("hello", 0755);
    write_file("hello/function.conf", fnconf);
    return fnconf_load(c, "hello", "hello/function.conf", s, errbuf, sizeof(errbuf));
}

START_TEST(limits_refuse_a_function_asking_more)
{
    static const struct {
        const char *fnconf, *err;
    } bad[] = {
        {"# shipped\nmax_instances = 64\n",
         "hello/function.conf:2: max_instances = 64 is more than the operator allows "
         "(max_instances = 16 in [limits], fngate.conf:2)"},
        {"memory_limit = 0\n", "hello/function.conf:1: memory_limit = 0 (none) is more than the "
                               "operator allows (memory_limit = 256M in [limits], fngate.conf:3)"},
        {"memory_limit = 1G\n", "hello/function.conf:1: memory_limit = 1G is more than the "
                                "operator allows (memory_limit = 256M in [limits], fngate.conf:3)"},
        {"request_timeout = 0\n",
         "hello/function.conf:1: request_timeout = 0 (none) is more than the operator allows "
         "(request_timeout = 1m in [limits], fngate.conf:4)"},
        {"request_timeout = 61s\n",
         "hello/function.conf:1: request_timeout = 61s is more than the operator allows "
         "(request_timeout = 1m in [limits], fngate.conf:4)"},
        {"open_files = 100000\n",
         "hello/function.conf:1: open_files = 100000 is more than the operator allows "
         "(open_files = 4096 in [limits], fngate.conf:5)"},
        {"sandbox = off\n", "hello/function.conf:1: sandbox = off is more than the operator "
                            "allows (sandbox = on in [limits], fngate.conf:6)"},
        {"sandbox_read = /srv/shared/a /etc\n",
         "hello/function.conf:1: sandbox_read = /etc is more than the operator allows "
         "(sandbox_read = /srv/shared /opt/lib in [limits], fngate.conf:7)"},
        {"sandbox_read = /srv/sharedx\n",
         "hello/function.conf:1: sandbox_read = /srv/sharedx is more than the operator allows "
         "(sandbox_read = /srv/shared /opt/lib in [limits], fngate.conf:7)"},
        {"sandbox_write = /tmp/x\n",
         "hello/function.conf:1: sandbox_write = /tmp/x is more than the operator allows "
         "(sandbox_write = \"\" in [limits], fngate.conf:8)"},
    };
    struct fn_settings s;
    struct conf *c =
        load_ok("[limits]\nmax_instances = 16\nmemory_limit = 256M\nrequest_timeout = 1m\n"
                "open_files = 4096\nsandbox = on\nsandbox_read = /srv/shared /opt/lib\n"
                "sandbox_write =\n[hello]\nenv.X = 1\n");

    for (size_t i = 0; i < N(bad); i++) {
        ck_assert_msg(limited(c, bad[i].fnconf, &s) == -1, "accepted: %s", bad[i].fnconf);
        ck_assert_str_eq(errbuf, bad[i].err);
    }
    /* At or under every limit: accepted as asked. */
    ck_assert_msg(limited(c,
                          "max_instances = 16\nmemory_limit = 256M\nrequest_timeout = 5s\n"
                          "open_files = 64\nsandbox = on\nsandbox_read = /srv/shared/a /opt/lib\n",
                          &s) == 0,
                  "%s", errbuf);
    ck_assert_int_eq(s.max_instances, 16);
    ck_assert_int_eq(s.memory_limit, 256 << 20);
    ck_assert_int_eq(s.request_timeout_ms, 5000);
    ck_assert_int_eq(s.open_files, 64);
    ck_assert_str_eq(s.sandbox_read, "/srv/shared/a /opt/lib");
    fnconf_clear(&s);
    /* Another function without a function.conf is not affected. */
    fn_ok(c, "other", NULL, &s);
    fnconf_clear(&s);
    conf_free(c);
}
END_TEST

START_TEST(limits_cap_defaults_not_sections)
{
    struct fn_settings s;
    struct conf *c = load_ok("[limits]\nmax_instances = 4\nmemory_limit = 256M\n"
                             "request_timeout = 1m\nsandbox = on\n"
                             "[defaults]\nrequest_timeout = 0\nsandbox = off\n"
                             "[big]\nmax_instances = 32\nmemory_limit = 0\n");

    /* The built-in 8 instances and unlimited memory, and [defaults]'s "no
     * timeout" and "no sandbox", come down to the limits. */
    fn_ok(c, "hello", NULL, &s);
    ck_assert_int_eq(s.max_instances, 4);
    ck_assert_int_eq(s.memory_limit, 256 << 20);
    ck_assert_int_eq(s.request_timeout_ms, 60000);
    ck_assert(s.sandbox);
    fnconf_clear(&s);
    /* The operator's own section is an exception for that function. */
    fn_ok(c, "big", NULL, &s);
    ck_assert_int_eq(s.max_instances, 32);
    ck_assert_int_eq(s.memory_limit, 0);
    ck_assert_int_eq(s.request_timeout_ms, 60000);
    fnconf_clear(&s);
    conf_free(c);
}
END_TEST

START_TEST(limits_section_errors)
{
    static const struct bad_case bad[] = {
        {"[limits]\nenv.X = 1\n",
         "fngate.conf:2: env.X cannot be limited in [limits] (these can: max_instances, "
         "min_instances, memory_limit, open_files, request_timeout, idle_timeout, queue_timeout, "
         "statement_timeout, max_body, queue_size, max_requests, sandbox, sandbox_read, "
         "sandbox_write)"},
        {"[limits]\npool_size = 3\n",
         "fngate.conf:2: pool_size cannot be limited in [limits] (these can: max_instances, "
         "min_instances, memory_limit, open_files, request_timeout, idle_timeout, queue_timeout, "
         "statement_timeout, max_body, queue_size, max_requests, sandbox, sandbox_read, "
         "sandbox_write)"},
        {"[limits]\nmax_instances = lots\n",
         "fngate.conf:2: max_instances: 'lots' is not an integer"},
        {"[limits]\nsandbox_read = relative\n",
         "fngate.conf:2: sandbox_read: 'relative' is not an absolute path without '..'"},
        {"[limits]\n[limits]\n", "fngate.conf:2: duplicate section [limits] (first at line 1)"},
    };
    run_bad_cases(bad, N(bad));
}
END_TEST

/* ---- the pool's keys (issue 7) -------------------------------------------- */

START_TEST(pool_share_keys)
{
    struct fn_settings s;
    struct conf *c;

    ck_assert_int_eq(mkdir("hello", 0755), 0);
    c = load_ok("[gateway]\npool_size = 4\nmax_query = 64K\n[hello]\nmax_db_connections = 1\n"
                "database_url = host=/run/pg user=hello\n");
    ck_assert_int_eq(c->gw.max_query, 64 * 1024);
    fn_ok(c, "hello", NULL, &s);
    ck_assert_int_eq(s.max_db_connections, 1);
    ck_assert_str_eq(s.database_url, "host=/run/pg user=hello");
    fnconf_clear(&s);
    fn_ok(c, "other", NULL, &s);
    ck_assert_int_eq(s.max_db_connections, 0); /* 0: the whole pool_size */
    ck_assert_ptr_null(s.database_url);
    fnconf_clear(&s);
    /* A function must not raise its own share. */
    write_file("hello/function.conf", "max_db_connections = 4\n");
    ck_assert_int_eq(fnconf_load(c, "hello", "hello/function.conf", &s, errbuf, sizeof(errbuf)),
                     -1);
    ck_assert_str_eq(errbuf, "hello/function.conf:1: max_db_connections: only the operator's "
                             "fngate.conf may set a function's share of the pool");
    /* Nor its database role (the password is the operator's). */
    write_file("hello/function.conf", "database_url = postgres://other:pw@db/app\n");
    ck_assert_int_eq(fnconf_load(c, "hello", "hello/function.conf", &s, errbuf, sizeof(errbuf)),
                     -1);
    ck_assert_str_eq(errbuf, "hello/function.conf:1: database_url: only the operator's "
                             "fngate.conf may set a function's database role");
    conf_free(c);
    c = load_ok("");
    ck_assert_int_eq(c->gw.max_query, 1024 * 1024);
    conf_free(c);

    static const struct bad_case bad[] = {
        {"[x]\nmax_db_connections = 0\n",
         "fngate.conf:2: max_db_connections: '0' is out of range (1..1000)"},
        {"[gateway]\nmax_query = 100M\n",
         "fngate.conf:2: max_query: '100M' is out of range (1K..64M)"},
    };
    run_bad_cases(bad, N(bad));
}
END_TEST

START_TEST(minmax_function)
{
    struct fn_settings s;
    struct conf *c;

    ck_assert_int_eq(mkdir("hello", 0755), 0);

    /* function.conf lowers max below [defaults]'s min: its line is named. */
    c = load_ok("[defaults]\nmin_instances = 3\n");
    write_file("hello/function.conf", "# shipped\nmax_instances = 2\n");
    ck_assert_int_eq(fnconf_load(c, "hello", "hello/function.conf", &s, errbuf, sizeof(errbuf)),
                     -1);
    ck_assert_str_eq(errbuf, "hello/function.conf:2: min_instances (3) is greater than "
                             "max_instances (2) for function 'hello'");
    /* OUT is left empty on error, and clearing it is safe. */
    ck_assert_ptr_null(s.env);
    ck_assert_int_eq(s.max_instances, 0);
    fnconf_clear(&s);
    conf_free(c);

    /* function.conf raises min; the operator's section lowers max. */
    c = load_ok("[gateway]\n[hello]\nmax_instances = 2\n");
    write_file("hello/function.conf", "min_instances = 1\n");
    fn_ok(c, "hello", "hello/function.conf", &s);
    fnconf_clear(&s);
    write_file("hello/function.conf", "min_instances = 3\n");
    ck_assert_int_eq(fnconf_load(c, "hello", "hello/function.conf", &s, errbuf, sizeof(errbuf)),
                     -1);
    ck_assert_str_eq(errbuf, "fngate.conf:3: min_instances (3) is greater than max_instances (2) "
                             "for function 'hello'");
    conf_free(c);

    /* function.conf alone. */
    write_file("hello/function.conf", "[function]\nmin_instances = 9\n");
    ck_assert_int_eq(fnconf_load(NULL, "hello", "hello/function.conf", &s, errbuf, sizeof(errbuf)),
                     -1);
    ck_assert_str_eq(errbuf, "hello/function.conf:2: min_instances (9) is greater than "
                             "max_instances (8) for function 'hello'");
}
END_TEST

/* ---- conf_function: merging ----------------------------------------------- */

START_TEST(merge_builtin)
{
    struct fn_settings s;
    struct conf *c = load_ok("[gateway]\n");

    fn_ok(c, "hello", NULL, &s);
    ck_assert_int_eq(s.max_instances, 8);
    ck_assert_int_eq(s.min_instances, 0);
    ck_assert_int_eq(s.idle_timeout_ms, 10000);
    ck_assert_int_eq(s.request_timeout_ms, 30000);
    ck_assert_int_eq(s.queue_timeout_ms, 10000);
    ck_assert_int_eq(s.statement_timeout_ms, 0);
    ck_assert_int_eq(s.max_requests, 0);
    ck_assert_int_eq(s.memory_limit, 0);
    ck_assert_int_eq(s.open_files, 1024);
    ck_assert_int_eq(s.max_body, 1 << 20);
    ck_assert_int_eq(s.queue_size, 511);
    ck_assert_ptr_null(s.env);
    ck_assert_uint_eq(s.n_env, 0);
    fnconf_clear(&s);

    /* A missing function.conf is not an error. */
    fn_ok(c, "hello", "nowhere/function.conf", &s);
    ck_assert_int_eq(s.max_instances, 8);
    fnconf_clear(&s);

    /* No conf at all: built-ins only. */
    fn_ok(NULL, "hello", NULL, &s);
    ck_assert_int_eq(s.queue_size, 511);
    fnconf_clear(&s);
    conf_free(c);
}
END_TEST

START_TEST(merge_order)
{
    struct fn_settings s;
    struct conf *c;

    ck_assert_int_eq(mkdir("hello", 0755), 0);
    c = load_ok("[defaults]\n"
                "max_instances = 2\n"
                "idle_timeout = 1s\n"
                "request_timeout = 2s\n"
                "env.LAYER = defaults\n"
                "env.FROM_DEFAULTS = d\n"
                "env.BOTH = defaults\n"
                "[hello]\n"
                "request_timeout = 3s\n"
                "max_body = 2K\n"
                "env.LAYER = section\n"
                "env.FROM_SECTION = s\n"
                "[other]\n"
                "max_body = 4K\n");
    write_file("hello/function.conf", "; shipped with the function\n"
                                      "idle_timeout = 5s\n"
                                      "request_timeout = 6s\n"
                                      "max_body = 8K\n"
                                      "queue_size = 7\n"
                                      "env.LAYER = function\n"
                                      "env.BOTH = function\n"
                                      "env.FROM_FILE = f\n");

    fn_ok(c, "hello", "hello/function.conf", &s);
    ck_assert_int_eq(s.max_instances, 2);         /* [defaults] only */
    ck_assert_int_eq(s.idle_timeout_ms, 5000);    /* function.conf over [defaults] */
    ck_assert_int_eq(s.request_timeout_ms, 3000); /* [hello] over both */
    ck_assert_int_eq(s.max_body, 2048);           /* [hello] over function.conf */
    ck_assert_int_eq(s.queue_size, 7);            /* function.conf only */
    ck_assert_int_eq(s.open_files, 1024);         /* built-in */
    ck_assert_uint_eq(s.n_env, 5);
    ck_assert_str_eq(env_get(&s, "LAYER"), "section");
    ck_assert_str_eq(env_get(&s, "BOTH"), "function");
    ck_assert_str_eq(env_get(&s, "FROM_DEFAULTS"), "d");
    ck_assert_str_eq(env_get(&s, "FROM_FILE"), "f");
    ck_assert_str_eq(env_get(&s, "FROM_SECTION"), "s");
    fnconf_clear(&s);

    /* Without the file. */
    fn_ok(c, "hello", NULL, &s);
    ck_assert_int_eq(s.idle_timeout_ms, 1000);
    ck_assert_int_eq(s.request_timeout_ms, 3000);
    ck_assert_int_eq(s.queue_size, 511);
    ck_assert_str_eq(env_get(&s, "BOTH"), "defaults");
    fnconf_clear(&s);

    /* A function with no section gets [defaults] and its file. */
    fn_ok(c, "nosection", "hello/function.conf", &s);
    ck_assert_int_eq(s.request_timeout_ms, 6000);
    ck_assert_int_eq(s.max_body, 8192);
    ck_assert_str_eq(env_get(&s, "LAYER"), "function");
    fnconf_clear(&s);

    /* Another section does not leak. */
    fn_ok(c, "other", NULL, &s);
    ck_assert_int_eq(s.max_body, 4096);
    ck_assert_int_eq(s.request_timeout_ms, 2000);
    fnconf_clear(&s);
    conf_free(c);
}
END_TEST

START_TEST(merge_env_replace)
{
    struct fn_settings s;
    struct conf *c = load_ok("[defaults]\nenv.A = 1\nenv.A = 2\n[hello]\nenv.B = x\nenv.A = 3\n"
                             "env.B = y\n");

    fn_ok(c, "hello", NULL, &s);
    ck_assert_uint_eq(s.n_env, 2);
    ck_assert_str_eq(env_get(&s, "A"), "3");
    ck_assert_str_eq(env_get(&s, "B"), "y");
    fnconf_clear(&s);

    fn_ok(c, "world", NULL, &s);
    ck_assert_uint_eq(s.n_env, 1);
    ck_assert_str_eq(env_get(&s, "A"), "2");
    fnconf_clear(&s);
    conf_free(c);
}
END_TEST

START_TEST(merge_fnconf_sections)
{
    struct fn_settings s;

    ck_assert_int_eq(mkdir("fn", 0755), 0);
    /* Keys at the top and under [function] both count, in order. */
    write_file("fn/function.conf", "max_instances = 3\n"
                                   "[function]\n"
                                   "  max_instances = 5\n"
                                   "  env.X = y\n");
    fn_ok(NULL, "fn", "fn/function.conf", &s);
    ck_assert_int_eq(s.max_instances, 5);
    ck_assert_str_eq(env_get(&s, "X"), "y");
    fnconf_clear(&s);

    write_file("fn/function.conf", "");
    fn_ok(NULL, "fn", "fn/function.conf", &s);
    ck_assert_int_eq(s.max_instances, 8);
    fnconf_clear(&s);
}
END_TEST

START_TEST(merge_fnconf_errors)
{
    static const struct bad_case cases[] = {
        {"[hello]\nmax_instances = 4\n",
         "fn/function.conf:1: unexpected section [hello] (function.conf takes keys at the top or "
         "under [function])"},
        {"max_instances = 4\n[gateway]\n",
         "fn/function.conf:2: unexpected section [gateway] (function.conf takes keys at the top "
         "or under [function])"},
        {"[defaults]\n", "fn/function.conf:1: unexpected section [defaults] (function.conf takes "
                         "keys at the top or under [function])"},
        {"[function]\n[function]\n",
         "fn/function.conf:2: duplicate section [function] (first at line 1)"},
        {"[function\n", "fn/function.conf:1: missing ']' in section header '[function'"},
        {"max_instance = 4\n", "fn/function.conf:1: unknown key 'max_instance'"},
        {"[function]\nmax_instance = 4\n",
         "fn/function.conf:2: unknown key 'max_instance' in [function]"},
        {"pool_size = 4\n", "fn/function.conf:1: unknown key 'pool_size' (pool_size is only valid "
                            "in [gateway] of fngate.conf)"},
        {"\n\nidle_timeout = 5x\n",
         "fn/function.conf:3: idle_timeout: '5x' is not a duration (use 500ms, 30s, 5m)"},
        {"memory_limit = 10K\n", "fn/function.conf:1: memory_limit: '10K' is out of range (0 for "
                                 "unlimited, or at least 1M)"},
        {"env.FNGATE_SOCKET = /x\n", "fn/function.conf:1: env.FNGATE_SOCKET: names starting with "
                                     "FNGATE_ are reserved for fngate"},
        {"env.9 = x\n",
         "fn/function.conf:1: env.9: invalid variable name '9' (use [A-Za-z_][A-Za-z0-9_]*)"},
        {"garbage\n",
         "fn/function.conf:1: syntax error (expected 'key = value', '[section]' or a comment)"},
    };
    struct fn_settings s;
    struct conf *c = load_ok("[hello]\nmax_instances = 4\n");

    ck_assert_int_eq(mkdir("fn", 0755), 0);
    for (size_t i = 0; i < N(cases); i++) {
        write_file("fn/function.conf", cases[i].file);
        int r = fnconf_load(c, "hello", "fn/function.conf", &s, errbuf, sizeof(errbuf));
        ck_assert_msg(r == -1, "case %zu accepted", i);
        ck_assert_msg(strcmp(errbuf, cases[i].err) == 0, "case %zu:\n got  '%s'\n want '%s'", i,
                      errbuf, cases[i].err);
        ck_assert_ptr_null(s.env);
        fnconf_clear(&s);
    }

    /* A function.conf that is there but unreadable is an error. */
    ck_assert_int_eq(mkdir("fn/dir.conf", 0755), 0);
    ck_assert_int_eq(fnconf_load(c, "hello", "fn/dir.conf", &s, errbuf, sizeof(errbuf)), -1);
    ck_assert_str_eq(errbuf, "fn/dir.conf: cannot open: Is a directory");
    ck_assert_int_eq(fnconf_load(c, "hello", "fn/function.conf/x", &s, errbuf, sizeof(errbuf)), -1);
    ck_assert_str_eq(errbuf, "fn/function.conf/x: cannot open: Not a directory");
    conf_free(c);
}
END_TEST

START_TEST(merge_bad_name)
{
    static const char *const bad[] = {"gateway", "defaults", "Hello", "", "a/b"};
    struct fn_settings s;
    char want[256];
    struct conf *c = load_ok("");

    for (size_t i = 0; i < N(bad); i++) {
        ck_assert_int_eq(fnconf_load(c, bad[i], NULL, &s, errbuf, sizeof(errbuf)), -1);
        snprintf(want, sizeof(want),
                 "fngate.conf: '%s' is not a valid function name ([a-z0-9][a-z0-9_-]{0,63}, not "
                 "gateway, defaults or limits)",
                 bad[i]);
        ck_assert_str_eq(errbuf, want);
        fnconf_clear(&s);
    }
    conf_free(c);
}
END_TEST

/* ---- fnconf_equal / clear -------------------------------------------- */

static void set_env(struct fn_settings *s, size_t n, const char *const *kv)
{
    s->env = calloc(n, sizeof(*s->env));
    ck_assert_ptr_nonnull(s->env);
    for (size_t i = 0; i < n; i++) {
        s->env[i].key = strdup(kv[2 * i]);
        s->env[i].value = strdup(kv[2 * i + 1]);
        ck_assert(s->env[i].key && s->env[i].value);
    }
    s->n_env = n;
}

START_TEST(equal_fields)
{
    struct fn_settings a, b;

    fn_ok(NULL, "x", NULL, &a);
    fn_ok(NULL, "x", NULL, &b);
    ck_assert(fnconf_equal(&a, &b));
    ck_assert(fnconf_equal(&a, &a));

    /* Every scalar field counts. */
    for (int f = 0; f < 11; f++) {
        fn_ok(NULL, "x", NULL, &b);
        switch (f) {
        case 0:
            b.max_instances++;
            break;
        case 1:
            b.min_instances++;
            break;
        case 2:
            b.idle_timeout_ms++;
            break;
        case 3:
            b.request_timeout_ms++;
            break;
        case 4:
            b.queue_timeout_ms++;
            break;
        case 5:
            b.statement_timeout_ms++;
            break;
        case 6:
            b.max_requests++;
            break;
        case 7:
            b.memory_limit++;
            break;
        case 8:
            b.open_files++;
            break;
        case 9:
            b.max_body++;
            break;
        case 10:
            b.queue_size++;
            break;
        }
        ck_assert_msg(!fnconf_equal(&a, &b), "field %d ignored", f);
        ck_assert_msg(!fnconf_equal(&b, &a), "field %d ignored", f);
        fnconf_clear(&b);
    }
    fnconf_clear(&a);
}
END_TEST

START_TEST(equal_env)
{
    static const char *const ab[] = {"A", "1", "B", "2"};
    static const char *const ba[] = {"B", "2", "A", "1"};
    static const char *const ab3[] = {"A", "1", "B", "3"};
    static const char *const ac[] = {"A", "1", "C", "2"};
    static const char *const aempty[] = {"A", "", "B", "2"};
    struct fn_settings a, b;

    fn_ok(NULL, "x", NULL, &a);
    fn_ok(NULL, "x", NULL, &b);
    set_env(&a, 2, ab);
    set_env(&b, 2, ba);
    ck_assert(fnconf_equal(&a, &b)); /* order does not matter */
    fnconf_clear(&b);

    fn_ok(NULL, "x", NULL, &b);
    set_env(&b, 2, ab3);
    ck_assert(!fnconf_equal(&a, &b)); /* value */
    fnconf_clear(&b);

    fn_ok(NULL, "x", NULL, &b);
    set_env(&b, 2, ac);
    ck_assert(!fnconf_equal(&a, &b)); /* key */
    ck_assert(!fnconf_equal(&b, &a));
    fnconf_clear(&b);

    fn_ok(NULL, "x", NULL, &b);
    set_env(&b, 2, aempty);
    ck_assert(!fnconf_equal(&a, &b)); /* "" is a value too */
    fnconf_clear(&b);

    fn_ok(NULL, "x", NULL, &b);
    set_env(&b, 1, ab);
    ck_assert(!fnconf_equal(&a, &b)); /* count */
    ck_assert(!fnconf_equal(&b, &a));
    fnconf_clear(&b);

    fn_ok(NULL, "x", NULL, &b);
    ck_assert(!fnconf_equal(&a, &b)); /* none vs some */
    fnconf_clear(&b);
    fnconf_clear(&a);
}
END_TEST

START_TEST(equal_from_files)
{
    struct fn_settings a, b;
    struct conf *c1, *c2;

    /* The same effective settings reached through different files. */
    c1 = load_ok("[defaults]\nenv.A = 1\nenv.B = 2\nidle_timeout = 60s\n");
    fn_ok(c1, "hello", NULL, &a);
    c2 = load_ok("[hello]\nenv.B = 2\nidle_timeout = 1m\nenv.A = 0\nenv.A = 1\n");
    fn_ok(c2, "hello", NULL, &b);
    ck_assert(fnconf_equal(&a, &b));
    fnconf_clear(&b);
    fn_ok(c2, "other", NULL, &b);
    ck_assert(!fnconf_equal(&a, &b));
    fnconf_clear(&b);
    fnconf_clear(&a);
    conf_free(c1);
    conf_free(c2);
}
END_TEST

START_TEST(clear_safe)
{
    struct fn_settings s;

    memset(&s, 0, sizeof(s));
    fnconf_clear(&s);
    fnconf_clear(&s);
    fnconf_clear(NULL);

    fn_ok(NULL, "x", NULL, &s);
    set_env(&s, 1, (const char *const[]){"K", "V"});
    fnconf_clear(&s);
    ck_assert_ptr_null(s.env);
    ck_assert_uint_eq(s.n_env, 0);
    ck_assert_int_eq(s.max_instances, 0);
    fnconf_clear(&s);

    memset(&s, 0, sizeof(s));
    ck_assert(fnconf_equal(&s, &s));
    ck_assert(fnconf_equal(NULL, NULL));
    ck_assert(!fnconf_equal(&s, NULL));
    conf_free(NULL);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static TCase *tcase(const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, setup, teardown);
    return tc;
}

static Suite *conf_suite(void)
{
    Suite *s = suite_create("conf");
    TCase *tc;

    tc = tcase("duration");
    tcase_add_test(tc, duration_valid);
    tcase_add_test(tc, duration_invalid);
    tcase_add_test(tc, duration_overflow);
    suite_add_tcase(s, tc);

    tc = tcase("size");
    tcase_add_test(tc, size_valid);
    tcase_add_test(tc, size_invalid);
    tcase_add_test(tc, size_overflow);
    suite_add_tcase(s, tc);

    tc = tcase("name");
    tcase_add_test(tc, name_valid);
    tcase_add_test(tc, name_length);
    suite_add_tcase(s, tc);

    tc = tcase("gateway");
    tcase_add_test(tc, gateway_defaults);
    tcase_add_test(tc, gateway_all_keys);
    tcase_add_test(tc, gateway_values);
    tcase_add_test(tc, gateway_bad_values);
    tcase_add_test(tc, gateway_bad_keys);
    tcase_add_test(tc, gateway_min_pool_over_pool_size);
    tcase_add_test(tc, gateway_relative_dirs);
    tcase_add_test(tc, gateway_home_expansion);
    tcase_add_test(tc, gateway_database_url_env);
    suite_add_tcase(s, tc);

    tc = tcase("structure");
    tcase_add_test(tc, structure_errors);
    tcase_add_test(tc, structure_long_names);
    tcase_add_test(tc, structure_long_line);
    tcase_add_test(tc, structure_syntax);
    tcase_add_test(tc, structure_sections_stored);
    tcase_add_test(tc, structure_unreadable);
    suite_add_tcase(s, tc);

    tc = tcase("fnkeys");
    tcase_add_test(tc, fnkeys_valid);
    tcase_add_test(tc, fnkeys_bad_values);
    tcase_add_test(tc, fnkeys_bad_in_defaults);
    suite_add_tcase(s, tc);

    tc = tcase("limits");
    tcase_add_test(tc, limits_refuse_a_function_asking_more);
    tcase_add_test(tc, limits_cap_defaults_not_sections);
    tcase_add_test(tc, limits_section_errors);
    suite_add_tcase(s, tc);

    tc = tcase("minmax");
    tcase_add_test(tc, minmax_load);
    tcase_add_test(tc, minmax_function);
    suite_add_tcase(s, tc);

    tc = tcase("merge");
    tcase_add_test(tc, merge_builtin);
    tcase_add_test(tc, merge_order);
    tcase_add_test(tc, merge_env_replace);
    tcase_add_test(tc, merge_fnconf_sections);
    tcase_add_test(tc, merge_fnconf_errors);
    tcase_add_test(tc, merge_bad_name);
    suite_add_tcase(s, tc);

    tc = tcase("equal");
    tcase_add_test(tc, equal_fields);
    tcase_add_test(tc, equal_env);
    tcase_add_test(tc, equal_from_files);
    tcase_add_test(tc, clear_safe);
    tcase_add_test(tc, sandbox_keys);
    tcase_add_test(tc, pool_share_keys);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(conf_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
