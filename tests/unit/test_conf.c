/*
 * Unit tests for reading fngate.conf (gateway/conf.c, confread.c,
 * confkey.c): the [gateway] keys, the file's structure and the cross-key
 * rules.  Every bad-input path is asserted down to the line number, since
 * the line is what makes a config error actionable (the fixture is
 * conffix.c).
 */
#include "config.h"

#include "conf.h"
#include "conffix.h"

#include <check.h>

#include "check_main.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ck_load_err(content, expect)                                                               \
    do {                                                                                           \
        struct conf *c_ = conffix_load(content);                                                   \
        ck_assert_msg(c_ == NULL, "loaded but expected: %s", (expect));                            \
        ck_assert_str_eq(conffix_err, (expect));                                                   \
    } while (0)

static char *repeat(char ch, size_t n)
{
    static char buf[1024];

    ck_assert_uint_lt(n, sizeof(buf));
    memset(buf, ch, n);
    buf[n] = '\0';
    return buf;
}

/* ---- [gateway] ------------------------------------------------------------ */

START_TEST(gateway_defaults)
{
    struct conf *c = conffix_load_ok("");

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
    ck_assert_int_eq(c->gw.request_log_rate, 50000);
    ck_assert_int_eq(c->gw.request_log_burst, 100000);
    ck_assert_ptr_null(c->defaults);
    ck_assert_uint_eq(c->n_defaults, 0);
    ck_assert_uint_eq(c->n_sections, 0);
    conf_free(c);

    /* Comments and blank lines only. */
    c = conffix_load_ok("; nothing\n# here\n\n   \n");
    ck_assert_uint_eq(c->n_sections, 0);
    conf_free(c);
}
END_TEST

START_TEST(gateway_all_keys)
{
    struct conf *c = conffix_load_ok("[gateway]\n"
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
                                     "stop_timeout = 2m\n"
                                     "request_log_rate = 10\n"
                                     "request_log_burst = 20\n");

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
    ck_assert_int_eq(c->gw.request_log_rate, 10);
    ck_assert_int_eq(c->gw.request_log_burst, 20);
    conf_free(c);
}
END_TEST

START_TEST(gateway_values)
{
    struct conf *c;

    c = conffix_load_ok("[gateway]\nsocket_mode = 777\nlog_level = warn\npool_size = 1000\n"
                        "stop_timeout = 0\ndb_wait_timeout = 0\n");
    ck_assert_uint_eq(c->gw.socket_mode, 0777);
    ck_assert_int_eq(c->gw.log_level, LOG_LVL_WARN);
    ck_assert_int_eq(c->gw.pool_size, 1000);
    ck_assert_int_eq(c->gw.stop_timeout_ms, 0);
    ck_assert_int_eq(c->gw.db_wait_timeout_ms, 0);
    conf_free(c);

    c = conffix_load_ok(
        "[gateway]\nsocket_mode = 0\nlog_level = error\npool_size = 1\nmin_pool = 1\n");
    ck_assert_uint_eq(c->gw.socket_mode, 0);
    ck_assert_int_eq(c->gw.log_level, LOG_LVL_ERROR);
    ck_assert_int_eq(c->gw.min_pool, 1);
    conf_free(c);

    /* An empty optional string means "unset"; the last value of a repeated
     * key wins. */
    c = conffix_load_ok("[gateway]\nsocket_group = web\nsocket_group =\ndatabase_url = x\n"
                        "database_url =\nuser = a\nuser = b\n");
    ck_assert_ptr_null(c->gw.socket_group);
    ck_assert_ptr_null(c->gw.database_url);
    ck_assert_str_eq(c->gw.user, "b");
    conf_free(c);
}
END_TEST

START_TEST(gateway_bad_values)
{
    static const struct conffix_bad cases[] = {
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
        {"[gateway]\nrequest_log_rate = 0\n",
         "fngate.conf:2: request_log_rate: '0' is out of range (1..10000000)"},
        {"[gateway]\nrequest_log_burst = lots\n",
         "fngate.conf:2: request_log_burst: 'lots' is not an integer"},
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

    conffix_run_bad(cases, N(cases));
}
END_TEST

START_TEST(gateway_bad_keys)
{
    static const struct conffix_bad cases[] = {
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

    conffix_run_bad(cases, N(cases));
}
END_TEST

START_TEST(gateway_min_pool_over_pool_size)
{
    static const struct conffix_bad cases[] = {
        /* The later of the two keys is the one reported. */
        {"[gateway]\npool_size = 5\nmin_pool = 6\n",
         "fngate.conf:3: min_pool (6) is greater than pool_size (5)"},
        {"[gateway]\nmin_pool = 6\n\npool_size = 5\n",
         "fngate.conf:4: min_pool (6) is greater than pool_size (5)"},
        /* Against the default pool_size of 10. */
        {"[gateway]\n# c\nmin_pool = 11\n",
         "fngate.conf:3: min_pool (11) is greater than pool_size (10)"},
    };

    conffix_run_bad(cases, N(cases));
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
    c = conffix_load_ok(
        "[gateway]\nfunctions_dir = ~/fngate/functions\nsocket_dir = $HOME/fngate/sock\n"
        "request_log = ${HOME}/fngate/requests.log\n");
    ck_assert_str_eq(c->gw.functions_dir, "/home/alice/fngate/functions");
    ck_assert_str_eq(c->gw.socket_dir, "/home/alice/fngate/sock");
    ck_assert_str_eq(c->gw.request_log, "/home/alice/fngate/requests.log");
    conf_free(c);
    c = conffix_load_ok("[gateway]\nfunctions_dir = ~\nsocket_dir = $HOME/\n");
    ck_assert_str_eq(c->gw.functions_dir, "/home/alice");
    ck_assert_str_eq(c->gw.socket_dir, "/home/alice");
    conf_free(c);
    /* Not at the start: a literal path, made absolute as before. */
    c = conffix_load_ok("[gateway]\nfunctions_dir = a~b\n");
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
    c = conffix_load_ok("[gateway]\nsocket_dir = ~/s\n");
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
    conffix_write("proj/fngate.conf", "[gateway]\n"
                                      "functions_dir = functions\n"
                                      "socket_dir = ./run/sock/\n");

    /* Relative config path: resolved against its directory, not the cwd. */
    c = conf_load("proj/fngate.conf", conffix_err, sizeof(conffix_err));
    ck_assert_msg(c != NULL, "%s", conffix_err);
    snprintf(want, sizeof(want), "%s/proj/functions", conffix_realdir);
    ck_assert_str_eq(c->gw.functions_dir, want);
    snprintf(want, sizeof(want), "%s/proj/run/sock", conffix_realdir);
    ck_assert_str_eq(c->gw.socket_dir, want);
    conf_free(c);

    /* Same result from another working directory with an absolute path. */
    ck_assert_int_eq(chdir("/"), 0);
    snprintf(want, sizeof(want), "%s/proj/fngate.conf", conffix_tmpdir);
    c = conf_load(want, conffix_err, sizeof(conffix_err));
    ck_assert_msg(c != NULL, "%s", conffix_err);
    snprintf(want, sizeof(want), "%s/proj/functions", conffix_realdir);
    ck_assert_str_eq(c->gw.functions_dir, want);
    conf_free(c);
    ck_assert_int_eq(chdir(conffix_tmpdir), 0);

    /* A config in the cwd; "." is the config's own directory. */
    c = conffix_load_ok("[gateway]\nfunctions_dir = .\nsocket_dir = ../elsewhere\n");
    ck_assert_str_eq(c->gw.functions_dir, conffix_realdir);
    snprintf(want, sizeof(want), "%s/../elsewhere", conffix_realdir);
    ck_assert_str_eq(c->gw.socket_dir, want);
    ck_assert(c->gw.functions_dir[0] == '/');
    conf_free(c);
}
END_TEST

START_TEST(gateway_database_url_env)
{
    struct conf *c;

    setenv("DATABASE_URL", "postgresql:///from_env", 1);
    c = conffix_load_ok("[gateway]\ndatabase_url = postgresql:///from_file\n");
    ck_assert_str_eq(c->gw.database_url, "postgresql:///from_env");
    conf_free(c);

    /* Also when the file has none. */
    c = conffix_load_ok("");
    ck_assert_str_eq(c->gw.database_url, "postgresql:///from_env");
    conf_free(c);

    /* Empty means unset. */
    setenv("DATABASE_URL", "", 1);
    c = conffix_load_ok("[gateway]\ndatabase_url = postgresql:///from_file\n");
    ck_assert_str_eq(c->gw.database_url, "postgresql:///from_file");
    conf_free(c);

    unsetenv("DATABASE_URL");
    c = conffix_load_ok("[gateway]\ndatabase_url = postgresql:///from_file\n");
    ck_assert_str_eq(c->gw.database_url, "postgresql:///from_file");
    conf_free(c);
}
END_TEST

/* ---- file structure ------------------------------------------------------- */

START_TEST(structure_errors)
{
    static const struct conffix_bad cases[] = {
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

    conffix_run_bad(cases, N(cases));
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
    c = conffix_load_ok(file);
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
    c = conffix_load_ok(file);
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
    c = conffix_load_ok(file);
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
    c = conffix_load_ok("\xEF\xBB\xBF[gateway]\r\n"
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
    struct conf *c = conffix_load_ok("[defaults]\n"
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

    c = conf_load("missing.conf", conffix_err, sizeof(conffix_err));
    ck_assert_ptr_null(c);
    ck_assert_str_eq(conffix_err, "missing.conf: cannot open: No such file or directory");

    ck_assert_int_eq(mkdir("adir", 0755), 0);
    c = conf_load("adir", conffix_err, sizeof(conffix_err));
    ck_assert_ptr_null(c);
    ck_assert_str_eq(conffix_err, "adir: cannot open: Is a directory");

    if (geteuid() != 0) {
        conffix_write("secret.conf", "[gateway]\n");
        ck_assert_int_eq(chmod("secret.conf", 0), 0);
        c = conf_load("secret.conf", conffix_err, sizeof(conffix_err));
        ck_assert_ptr_null(c);
        ck_assert_str_eq(conffix_err, "secret.conf: cannot open: Permission denied");
    }

    /* A tiny error buffer truncates but never overflows; none is fine too. */
    char small[8];
    ck_assert_ptr_null(conf_load("missing.conf", small, sizeof(small)));
    ck_assert_str_eq(small, "missing");
    ck_assert_ptr_null(conf_load("missing.conf", NULL, 0));

    conf_free(NULL);
}
END_TEST

/* ---- min_instances <= max_instances --------------------------------------- */

START_TEST(minmax_load)
{
    static const struct conffix_bad cases[] = {
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

    conffix_run_bad(cases, N(cases));

    /* Equal is fine; so is a later key that repairs an earlier one. */
    c = conffix_load_ok(
        "[defaults]\nmin_instances = 8\n[hello]\nmin_instances = 9\nmax_instances = 9\n"
        "[world]\nmin_instances = 20\nmin_instances = 1\n");
    conf_free(c);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static TCase *tcase(const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, conffix_setup, conffix_teardown);
    return tc;
}

static Suite *conf_suite(void)
{
    Suite *s = suite_create("conf");
    TCase *tc;

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

    tc = tcase("minmax");
    tcase_add_test(tc, minmax_load);
    suite_add_tcase(s, tc);

    return s;
}

CHECK_MAIN(conf_suite)
