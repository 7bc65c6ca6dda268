/*
 * Unit tests for gateway/log.c.  Each test points fd 2 at a pipe, logs, and
 * reads back exactly what an operator would see on the gateway's stderr:
 * "<UTC time> <level> <proc>: <message>[: <strerror>]".
 */
#include "config.h"

#include "log.h"

#include <check.h>

#include "check_main.h"

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The part of LINE after "<timestamp> ", checking the timestamp's shape and
 * that it is the current UTC time. */
static const char *after_time(const char *line)
{
    regex_t re;
    struct tm tm;
    time_t t, now = time(NULL);

    ck_assert_int_eq(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z ",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0, "no timestamp: '%s'", line);
    regfree(&re);
    memset(&tm, 0, sizeof(tm));
    ck_assert_ptr_nonnull(strptime(line, "%Y-%m-%dT%H:%M:%S", &tm));
    t = timegm(&tm);
    ck_assert_msg(t >= now - 5 && t <= now + 1, "timestamp %lld is not now (%lld) in UTC",
                  (long long)t, (long long)now);
    return line + strlen("2026-01-01T00:00:00.000Z ");
}

START_TEST(level_parse_all)
{
    static const struct {
        const char *s;
        enum log_level lvl;
    } ok[] = {
        {"debug", LOG_LVL_DEBUG},
        {"info", LOG_LVL_INFO},
        {"warn", LOG_LVL_WARN},
        {"error", LOG_LVL_ERROR},
    };
    static const char *const bad[] = {
        "", "DEBUG", "Info", "warning", "err", "fatal", "info ", " info", "debug\n", "errors",
    };

    for (size_t i = 0; i < N(ok); i++) {
        enum log_level l = (enum log_level) - 1;
        ck_assert_msg(log_level_parse(ok[i].s, &l) == 0, "'%s' refused", ok[i].s);
        ck_assert_int_eq(l, ok[i].lvl);
    }
    for (size_t i = 0; i < N(bad); i++) {
        enum log_level l = LOG_LVL_ERROR;
        ck_assert_msg(log_level_parse(bad[i], &l) == -1, "'%s' accepted", bad[i]);
        ck_assert_int_eq(l, LOG_LVL_ERROR); /* untouched */
    }
}
END_TEST

START_TEST(level_set_get)
{
    ck_assert_int_eq(log_get_level(), LOG_LVL_INFO); /* the default */
    log_set_level(LOG_LVL_ERROR);
    ck_assert_int_eq(log_get_level(), LOG_LVL_ERROR);
    log_set_level(LOG_LVL_DEBUG);
    ck_assert_int_eq(log_get_level(), LOG_LVL_DEBUG);
}
END_TEST

START_TEST(line_format)
{
    const char *o;

    testutil_capture_begin();
    log_info("started %d functions", 3);
    o = testutil_capture_end();
    ck_assert_str_eq(after_time(o), "info  fngate: started 3 functions\n");

    log_set_proc("pool");
    testutil_capture_begin();
    log_error("database %s unreachable", "db1");
    o = testutil_capture_end();
    ck_assert_str_eq(after_time(o), "error pool: database db1 unreachable\n");
}
END_TEST

START_TEST(each_level_named)
{
    static const char *const want[] = {
        "debug sup: d\n", "info  sup: i\n", "warn  sup: w\n", "warn  sup: x\n", "error sup: e\n",
    };
    char *line, *save = NULL;
    size_t i = 0;
    const char *o;

    log_set_level(LOG_LVL_DEBUG);
    log_set_proc("sup");
    testutil_capture_begin();
    log_debug("d");
    log_info("i");
    errno = 0;
    log_warn("w");
    log_warnx("x");
    log_error("e");
    o = testutil_capture_end();
    for (line = strtok_r((char *)o, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
        char buf[256];
        ck_assert_uint_lt(i, N(want));
        snprintf(buf, sizeof(buf), "%s\n", after_time(line));
        /* log_warn with errno 0 adds nothing */
        ck_assert_str_eq(buf, want[i]);
    }
    ck_assert_uint_eq(i, N(want));
}
END_TEST

START_TEST(warn_appends_strerror)
{
    char want[256];
    const char *o;

    testutil_capture_begin();
    errno = ENOENT;
    log_warn("open %s", "/etc/fngate.conf");
    ck_assert_int_eq(errno, ENOENT); /* preserved for the caller */
    errno = EACCES;
    log_warnx("no errno %s", "here");
    ck_assert_int_eq(errno, EACCES);
    o = testutil_capture_end();
    snprintf(want, sizeof(want),
             "warn  fngate: open /etc/fngate.conf: %s\n"
             "warn  fngate: no errno here\n",
             strerror(ENOENT));
    {
        /* two lines, each with its own timestamp */
        const char *nl = strchr(o, '\n');
        char first[256], buf[512];
        ck_assert_ptr_nonnull(nl);
        snprintf(first, sizeof(first), "%.*s", (int)(nl + 1 - o), o);
        snprintf(buf, sizeof(buf), "%s%s", after_time(first), after_time(nl + 1));
        ck_assert_str_eq(buf, want);
    }
}
END_TEST

START_TEST(below_level_dropped)
{
    const char *o;

    log_set_level(LOG_LVL_WARN);
    testutil_capture_begin();
    log_debug("debug line");
    log_info("info line");
    log_child("hello", 7, "child line", 10);
    log_warnx("kept");
    o = testutil_capture_end();
    ck_assert_str_eq(after_time(o), "warn  fngate: kept\n");

    log_set_level(LOG_LVL_ERROR);
    testutil_capture_begin();
    errno = EIO;
    log_warn("dropped");
    log_warnx("dropped");
    o = testutil_capture_end();
    ck_assert_str_eq(o, "");

    /* The default (info) drops only debug. */
    log_set_level(LOG_LVL_INFO);
    testutil_capture_begin();
    log_debug("dropped");
    log_info("kept");
    o = testutil_capture_end();
    ck_assert_str_eq(after_time(o), "info  fngate: kept\n");
}
END_TEST

START_TEST(child_prefix)
{
    const char *o;

    log_set_proc("sup");
    testutil_capture_begin();
    log_child("hello", 4242, "listening on fd 0", strlen("listening on fd 0"));
    o = testutil_capture_end();
    ck_assert_str_eq(after_time(o), "info  sup: [fn hello pid 4242] listening on fd 0\n");

    /* Exactly LEN bytes: the line need not be NUL-terminated there. */
    testutil_capture_begin();
    log_child("echo", 1, "abcdef", 3);
    o = testutil_capture_end();
    ck_assert_str_eq(after_time(o), "info  sup: [fn echo pid 1] abc\n");

    /* Verbatim: a '%' in a child's output is not a format. */
    testutil_capture_begin();
    log_child("echo", 2, "100%s %d %n", 11);
    o = testutil_capture_end();
    ck_assert_str_eq(after_time(o), "info  sup: [fn echo pid 2] 100%s %d %n\n");
}
END_TEST

START_TEST(child_long_line_capped)
{
    static char line[5000];
    const char *o, *msg;
    const char *prefix = "info  fngate: [fn big pid 9] ";

    memset(line, 'x', sizeof(line));
    testutil_capture_begin();
    log_child("big", 9, line, sizeof(line));
    o = testutil_capture_end();
    msg = after_time(o);
    ck_assert_int_eq(strncmp(msg, prefix, strlen(prefix)), 0);
    ck_assert_uint_eq(strlen(msg), strlen(prefix) + 3500 + 1);
    ck_assert_int_eq(msg[strlen(msg) - 1], '\n');
    ck_assert_uint_eq(strspn(msg + strlen(prefix), "x"), 3500);
}
END_TEST

START_TEST(long_message_one_line)
{
    static char big[8000];
    const char *o;
    size_t len;

    memset(big, 'y', sizeof(big) - 1);
    testutil_capture_begin();
    log_info("%s", big);
    log_info("next");
    o = testutil_capture_end();
    /* Cut to the line buffer, still one whole line ending in '\n'. */
    len = strcspn(o, "\n");
    ck_assert_uint_eq(len, 4094);
    ck_assert_int_eq(o[len], '\n');
    ck_assert_int_eq(strncmp(after_time(o), "info  fngate: yyy", 17), 0);
    ck_assert_str_eq(after_time(o + len + 1), "info  fngate: next\n");
}
END_TEST

START_TEST(fatal_exits)
{
    const char *o;
    int status;
    pid_t pid;

    testutil_capture_begin();
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        errno = EACCES;
        log_fatal("cannot open %s", "x.conf");
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 1);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        errno = EACCES;
        log_fatalx("bad %s", "config");
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    o = testutil_capture_end();
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 1);
    {
        const char *nl = strchr(o, '\n');
        char first[256], want[256];
        ck_assert_ptr_nonnull(nl);
        snprintf(first, sizeof(first), "%.*s", (int)(nl + 1 - o), o);
        snprintf(want, sizeof(want), "error fngate: cannot open x.conf: %s\n", strerror(EACCES));
        ck_assert_str_eq(after_time(first), want);
        ck_assert_str_eq(after_time(nl + 1), "error fngate: bad config\n");
    }
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc;

    tc = tcase_create("level");
    tcase_add_test(tc, level_parse_all);
    tcase_add_test(tc, level_set_get);
    tcase_add_test(tc, below_level_dropped);
    suite_add_tcase(s, tc);

    tc = tcase_create("format");
    tcase_add_test(tc, line_format);
    tcase_add_test(tc, each_level_named);
    tcase_add_test(tc, warn_appends_strerror);
    tcase_add_test(tc, long_message_one_line);
    tcase_add_test(tc, fatal_exits);
    suite_add_tcase(s, tc);

    tc = tcase_create("child");
    tcase_add_test(tc, child_prefix);
    tcase_add_test(tc, child_long_line_capped);
    suite_add_tcase(s, tc);

    return s;
}

CHECK_MAIN(log_suite)
