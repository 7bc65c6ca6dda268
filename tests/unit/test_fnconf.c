/*
 * Unit tests for one function's settings (gateway/fnconf.c, conflimit.c):
 * the function keys and their values, what a function.conf may not set,
 * the [limits] ceilings, the layering order, and fnconf_equal, which
 * decides whether a reload retires a function's instances.  Errors are
 * compared exactly, file and line included (the fixture is conffix.c).
 */
#include "config.h"

#include "conf.h"
#include "conffix.h"
#include "fnconf.h"

#include <check.h>

#include "check_main.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
    int r = fnconf_load(c, name, fnconf, s, conffix_err, sizeof(conffix_err));

    ck_assert_msg(r == 0, "fnconf_load(%s) failed: %s", name, conffix_err);
}

/* ---- function keys -------------------------------------------------------- */

START_TEST(fnkeys_valid)
{
    struct fn_settings s;
    struct conf *c = conffix_load_ok("[hello]\n"
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
    c = conffix_load_ok(
        "[defaults]\nmax_instances = 1\nmemory_limit = 0\nmax_body = 0\nopen_files = 16\n"
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
    static const struct conffix_bad cases[] = {
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

    conffix_run_bad(cases, N(cases));
}
END_TEST

/* The same checks hold in [defaults], at the right line. */
START_TEST(fnkeys_bad_in_defaults)
{
    static const struct conffix_bad cases[] = {
        {"[gateway]\n[defaults]\n; x\nidle_timeout = 5x\n",
         "fngate.conf:4: idle_timeout: '5x' is not a duration (use 500ms, 30s, 5m)"},
        {"[defaults]\nqueue_size = 70000\n",
         "fngate.conf:2: queue_size: '70000' is out of range (1..65535)"},
        {"[defaults]\nmax_body = 2G\n",
         "fngate.conf:2: max_body: '2G' is out of range (at most 1G)"},
    };

    conffix_run_bad(cases, N(cases));
}
END_TEST

/* ---- identity and sandbox keys (issue 6) ---------------------------------- */

START_TEST(sandbox_keys)
{
    struct fn_settings s;
    struct conf *c;

    ck_assert_int_eq(mkdir("hello", 0755), 0);
    c = conffix_load_ok("[defaults]\nsandbox_read = /srv/data  /opt/x\n[hello]\nuser = nobody\n"
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
    conffix_write("hello/function.conf", "# shipped\nuser = postgres\n");
    ck_assert_int_eq(
        fnconf_load(c, "hello", "hello/function.conf", &s, conffix_err, sizeof(conffix_err)), -1);
    ck_assert_str_eq(conffix_err,
                     "hello/function.conf:2: user: only the operator's fngate.conf may "
                     "set who a function runs as");
    /* Nor relax its own sandbox; tightening is fine. */
    conffix_write("hello/function.conf", "sandbox = on\nsandbox = off\n");
    ck_assert_int_eq(
        fnconf_load(c, "hello", "hello/function.conf", &s, conffix_err, sizeof(conffix_err)), -1);
    ck_assert_str_eq(conffix_err,
                     "hello/function.conf:2: sandbox: only the operator's fngate.conf may "
                     "relax a function's sandbox (or allow it in [limits])");
    conffix_write("hello/function.conf", "[function]\nsandbox_write = /srv\n");
    ck_assert_int_eq(
        fnconf_load(c, "hello", "hello/function.conf", &s, conffix_err, sizeof(conffix_err)), -1);
    ck_assert_str_eq(conffix_err,
                     "hello/function.conf:2: sandbox_write: only the operator's "
                     "fngate.conf may relax a function's sandbox (or allow it in [limits])");
    conf_free(c);

    static const struct conffix_bad bad[] = {
        {"[defaults]\nsandbox = maybe\n",
         "fngate.conf:2: sandbox: 'maybe' is not a boolean (on or off)"},
        {"[defaults]\nsandbox_read = /ok relative/path\n",
         "fngate.conf:2: sandbox_read: 'relative/path' is not an absolute path without '..'"},
        {"[x]\nsandbox_write = /srv/../etc\n",
         "fngate.conf:2: sandbox_write: '/srv/../etc' is not an absolute path without '..'"},
        {"[gateway]\ndynamic_uid_min = 0\n",
         "fngate.conf:2: dynamic_uid_min: '0' is out of range (1..2147483646)"},
    };
    conffix_run_bad(bad, N(bad));
}
END_TEST

/* Loads CONF, writes hello/function.conf with FNCONF and returns
 * conf_function's result for hello (the error in conffix_err). */
static int limited(struct conf *c, const char *fnconf, struct fn_settings *s)
{
    mkdir("hello", 0755);
    conffix_write("hello/function.conf", fnconf);
    return fnconf_load(c, "hello", "hello/function.conf", s, conffix_err, sizeof(conffix_err));
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
        conffix_load_ok("[limits]\nmax_instances = 16\nmemory_limit = 256M\nrequest_timeout = 1m\n"
                        "open_files = 4096\nsandbox = on\nsandbox_read = /srv/shared /opt/lib\n"
                        "sandbox_write =\n[hello]\nenv.X = 1\n");

    for (size_t i = 0; i < N(bad); i++) {
        ck_assert_msg(limited(c, bad[i].fnconf, &s) == -1, "accepted: %s", bad[i].fnconf);
        ck_assert_str_eq(conffix_err, bad[i].err);
    }
    /* At or under every limit: accepted as asked. */
    ck_assert_msg(limited(c,
                          "max_instances = 16\nmemory_limit = 256M\nrequest_timeout = 5s\n"
                          "open_files = 64\nsandbox = on\nsandbox_read = /srv/shared/a /opt/lib\n",
                          &s) == 0,
                  "%s", conffix_err);
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
    struct conf *c = conffix_load_ok("[limits]\nmax_instances = 4\nmemory_limit = 256M\n"
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
    static const struct conffix_bad bad[] = {
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
    conffix_run_bad(bad, N(bad));
}
END_TEST

/* ---- the pool's keys (issue 7) -------------------------------------------- */

START_TEST(pool_share_keys)
{
    struct fn_settings s;
    struct conf *c;

    ck_assert_int_eq(mkdir("hello", 0755), 0);
    c = conffix_load_ok(
        "[gateway]\npool_size = 4\nmax_query = 64K\n[hello]\nmax_db_connections = 1\n"
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
    conffix_write("hello/function.conf", "max_db_connections = 4\n");
    ck_assert_int_eq(
        fnconf_load(c, "hello", "hello/function.conf", &s, conffix_err, sizeof(conffix_err)), -1);
    ck_assert_str_eq(conffix_err, "hello/function.conf:1: max_db_connections: only the operator's "
                                  "fngate.conf may set a function's share of the pool");
    /* Nor its database role (the password is the operator's). */
    conffix_write("hello/function.conf", "database_url = postgres://other:pw@db/app\n");
    ck_assert_int_eq(
        fnconf_load(c, "hello", "hello/function.conf", &s, conffix_err, sizeof(conffix_err)), -1);
    ck_assert_str_eq(conffix_err, "hello/function.conf:1: database_url: only the operator's "
                                  "fngate.conf may set a function's database role");
    conf_free(c);
    c = conffix_load_ok("");
    ck_assert_int_eq(c->gw.max_query, 1024 * 1024);
    conf_free(c);

    static const struct conffix_bad bad[] = {
        {"[x]\nmax_db_connections = 0\n",
         "fngate.conf:2: max_db_connections: '0' is out of range (1..1000)"},
        {"[gateway]\nmax_query = 100M\n",
         "fngate.conf:2: max_query: '100M' is out of range (1K..64M)"},
    };
    conffix_run_bad(bad, N(bad));
}
END_TEST

START_TEST(minmax_function)
{
    struct fn_settings s;
    struct conf *c;

    ck_assert_int_eq(mkdir("hello", 0755), 0);

    /* function.conf lowers max below [defaults]'s min: its line is named. */
    c = conffix_load_ok("[defaults]\nmin_instances = 3\n");
    conffix_write("hello/function.conf", "# shipped\nmax_instances = 2\n");
    ck_assert_int_eq(
        fnconf_load(c, "hello", "hello/function.conf", &s, conffix_err, sizeof(conffix_err)), -1);
    ck_assert_str_eq(conffix_err, "hello/function.conf:2: min_instances (3) is greater than "
                                  "max_instances (2) for function 'hello'");
    /* OUT is left empty on error, and clearing it is safe. */
    ck_assert_ptr_null(s.env);
    ck_assert_int_eq(s.max_instances, 0);
    fnconf_clear(&s);
    conf_free(c);

    /* function.conf raises min; the operator's section lowers max. */
    c = conffix_load_ok("[gateway]\n[hello]\nmax_instances = 2\n");
    conffix_write("hello/function.conf", "min_instances = 1\n");
    fn_ok(c, "hello", "hello/function.conf", &s);
    fnconf_clear(&s);
    conffix_write("hello/function.conf", "min_instances = 3\n");
    ck_assert_int_eq(
        fnconf_load(c, "hello", "hello/function.conf", &s, conffix_err, sizeof(conffix_err)), -1);
    ck_assert_str_eq(conffix_err,
                     "fngate.conf:3: min_instances (3) is greater than max_instances (2) "
                     "for function 'hello'");
    conf_free(c);

    /* function.conf alone. */
    conffix_write("hello/function.conf", "[function]\nmin_instances = 9\n");
    ck_assert_int_eq(
        fnconf_load(NULL, "hello", "hello/function.conf", &s, conffix_err, sizeof(conffix_err)),
        -1);
    ck_assert_str_eq(conffix_err, "hello/function.conf:2: min_instances (9) is greater than "
                                  "max_instances (8) for function 'hello'");
}
END_TEST

/* ---- conf_function: merging ----------------------------------------------- */

START_TEST(merge_builtin)
{
    struct fn_settings s;
    struct conf *c = conffix_load_ok("[gateway]\n");

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
    c = conffix_load_ok("[defaults]\n"
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
    conffix_write("hello/function.conf", "; shipped with the function\n"
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
    struct conf *c =
        conffix_load_ok("[defaults]\nenv.A = 1\nenv.A = 2\n[hello]\nenv.B = x\nenv.A = 3\n"
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
    conffix_write("fn/function.conf", "max_instances = 3\n"
                                      "[function]\n"
                                      "  max_instances = 5\n"
                                      "  env.X = y\n");
    fn_ok(NULL, "fn", "fn/function.conf", &s);
    ck_assert_int_eq(s.max_instances, 5);
    ck_assert_str_eq(env_get(&s, "X"), "y");
    fnconf_clear(&s);

    conffix_write("fn/function.conf", "");
    fn_ok(NULL, "fn", "fn/function.conf", &s);
    ck_assert_int_eq(s.max_instances, 8);
    fnconf_clear(&s);
}
END_TEST

START_TEST(merge_fnconf_errors)
{
    static const struct conffix_bad cases[] = {
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
    struct conf *c = conffix_load_ok("[hello]\nmax_instances = 4\n");

    ck_assert_int_eq(mkdir("fn", 0755), 0);
    for (size_t i = 0; i < N(cases); i++) {
        conffix_write("fn/function.conf", cases[i].file);
        int r = fnconf_load(c, "hello", "fn/function.conf", &s, conffix_err, sizeof(conffix_err));
        ck_assert_msg(r == -1, "case %zu accepted", i);
        ck_assert_msg(strcmp(conffix_err, cases[i].err) == 0, "case %zu:\n got  '%s'\n want '%s'",
                      i, conffix_err, cases[i].err);
        ck_assert_ptr_null(s.env);
        fnconf_clear(&s);
    }

    /* A function.conf that is there but unreadable is an error. */
    ck_assert_int_eq(mkdir("fn/dir.conf", 0755), 0);
    ck_assert_int_eq(fnconf_load(c, "hello", "fn/dir.conf", &s, conffix_err, sizeof(conffix_err)),
                     -1);
    ck_assert_str_eq(conffix_err, "fn/dir.conf: cannot open: Is a directory");
    ck_assert_int_eq(
        fnconf_load(c, "hello", "fn/function.conf/x", &s, conffix_err, sizeof(conffix_err)), -1);
    ck_assert_str_eq(conffix_err, "fn/function.conf/x: cannot open: Not a directory");

    /* A function author's file the supervisor must not wait on or read
     * without end: a FIFO (open blocks), /dev/zero (one endless line), a
     * sparse file, and one line past the 64 KiB bound; each is refused at
     * once, the function alone disabled by the caller. */
    ck_assert_int_eq(mkfifo("fn/fifo.conf", 0644), 0);
    ck_assert_int_eq(fnconf_load(c, "hello", "fn/fifo.conf", &s, conffix_err, sizeof(conffix_err)),
                     -1);
    ck_assert_str_eq(conffix_err, "fn/fifo.conf: cannot open: not a regular file");
    ck_assert_int_eq(symlink("/dev/zero", "fn/zero.conf"), 0);
    ck_assert_int_eq(fnconf_load(c, "hello", "fn/zero.conf", &s, conffix_err, sizeof(conffix_err)),
                     -1);
    ck_assert_str_eq(conffix_err, "fn/zero.conf: cannot open: not a regular file");
    FILE *f = fopen("fn/huge.conf", "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(ftruncate(fileno(f), (off_t)1 << 40), 0);
    fclose(f);
    ck_assert_int_eq(fnconf_load(c, "hello", "fn/huge.conf", &s, conffix_err, sizeof(conffix_err)),
                     -1);
    ck_assert_str_eq(conffix_err, "fn/huge.conf: cannot open: larger than 65536 bytes");
    {
        /* comment lines of 64 bytes: 65537 bytes, one past the bound */
        static char big[65536 + 2];
        for (size_t i = 0; i < sizeof(big) - 1; i++)
            big[i] = i % 64 == 63 ? '\n' : '#';
        big[sizeof(big) - 2] = '\n';
        conffix_write("fn/function.conf", big);
        ck_assert_int_eq(
            fnconf_load(c, "hello", "fn/function.conf", &s, conffix_err, sizeof(conffix_err)), -1);
        ck_assert_str_eq(conffix_err, "fn/function.conf: cannot open: larger than 65536 bytes");
        /* At the bound, and empty: read as before. */
        big[65536] = '\0';
        big[65535] = '\n';
        conffix_write("fn/function.conf", big);
        fn_ok(c, "hello", "fn/function.conf", &s);
        ck_assert_int_eq(s.max_instances, 4);
        fnconf_clear(&s);
        conffix_write("fn/function.conf", "");
        fn_ok(c, "hello", "fn/function.conf", &s);
        ck_assert_int_eq(s.max_instances, 4);
        fnconf_clear(&s);
        conffix_write("fn/function.conf", "idle_timeout = 5s");
        fn_ok(c, "hello", "fn/function.conf", &s);
        ck_assert_int_eq(s.idle_timeout_ms, 5000);
        fnconf_clear(&s);
    }
    conf_free(c);
}
END_TEST

START_TEST(merge_bad_name)
{
    static const char *const bad[] = {"gateway", "defaults", "Hello", "", "a/b"};
    struct fn_settings s;
    char want[256];
    struct conf *c = conffix_load_ok("");

    for (size_t i = 0; i < N(bad); i++) {
        ck_assert_int_eq(fnconf_load(c, bad[i], NULL, &s, conffix_err, sizeof(conffix_err)), -1);
        snprintf(want, sizeof(want),
                 "fngate.conf: '%s' is not a valid function name ([a-z0-9][a-z0-9_-]{0,63}, not "
                 "gateway, defaults or limits)",
                 bad[i]);
        ck_assert_str_eq(conffix_err, want);
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
    c1 = conffix_load_ok("[defaults]\nenv.A = 1\nenv.B = 2\nidle_timeout = 60s\n");
    fn_ok(c1, "hello", NULL, &a);
    c2 = conffix_load_ok("[hello]\nenv.B = 2\nidle_timeout = 1m\nenv.A = 0\nenv.A = 1\n");
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

    tcase_add_checked_fixture(tc, conffix_setup, conffix_teardown);
    return tc;
}

static Suite *fnconf_suite(void)
{
    Suite *s = suite_create("fnconf");
    TCase *tc;

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

CHECK_MAIN(fnconf_suite)
