/*
 * Unit tests for gateway/status.c (the supervisor's FastCGI responder),
 * gateway/statcmd.c (`fngate status`, its client) and gateway/pool/poolstat.c
 * (the pool's statistics memfd).  The server runs on a libevent loop in a
 * thread; clients talk to it over its real unix socket.
 */
#include "config.h"

#include "fcgirec.h"
#include "metrics.h"
#include "pool/poolstat.h"
#include "statcmd.h"
#include "status.h"
#include "testutil.h"

#include <check.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static struct event_base *base;
static struct status *st;
static struct metrics *mx;
static struct discover_fn desc;
static pid_t server_pid;

static void server_up(void)
{
    char err[256];

    testutil_dir_make();
    base = event_base_new();
    mx = metrics_new();
    memset(&desc, 0, sizeof(desc));
    desc.name = (char *)"hello";
    desc.handler = (char *)"/srv/hello/handler";
    desc.set.max_instances = 3;
    metrics_fn_new(mx, &desc, -1);
    st = status_new(base, testutil_dir, 0600, (gid_t)-1, mx, err, sizeof(err));
    ck_assert_msg(st != NULL, "%s", err);
    /* The server's loop in a child: the test talks to it as nginx would. */
    server_pid = fork();
    ck_assert_int_ge(server_pid, 0);
    if (server_pid == 0) {
        event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
        _exit(0);
    }
}

static void server_down(void)
{
    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
    status_free(st);
    metrics_free(mx);
    event_base_free(base);
    testutil_dir_remove();
}

static int connect_status(void)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    ck_assert_uint_lt(strlen(testutil_dir) + 12, sizeof(sa.sun_path));
    memcpy(sa.sun_path, testutil_dir, strlen(testutil_dir));
    memcpy(sa.sun_path + strlen(testutil_dir), "/status.sock", 12);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static size_t nv(unsigned char *p, const char *n, const char *v)
{
    p[0] = (unsigned char)strlen(n);
    p[1] = (unsigned char)strlen(v);
    memcpy(p + 2, n, strlen(n));
    memcpy(p + 2 + strlen(n), v, strlen(v));
    return 2 + strlen(n) + strlen(v);
}

/* Sends one request; returns the whole FCGI_STDOUT (static buffer). */
static const char *ask(const char *method, const char *path)
{
    static char out[1 << 20];
    unsigned char req[1024], params[512], *p = req;
    struct evbuffer *in = evbuffer_new();
    size_t n = 0, got = 0;
    int fd = connect_status();
    char buf[65536];
    ssize_t r;

    fcgirec_header(p, FCGIREC_BEGIN_REQUEST, 1, 8);
    memcpy(p + 8, "\0\1\0\0\0\0\0\0", 8);
    p += 16;
    n += nv(params + n, "REQUEST_METHOD", method);
    n += nv(params + n, "FNGATE_STATUS_PATH", path);
    fcgirec_header(p, FCGIREC_PARAMS, 1, n);
    memcpy(p + 8, params, n);
    p += 8 + n;
    fcgirec_header(p, FCGIREC_PARAMS, 1, 0);
    p += 8;
    fcgirec_header(p, FCGIREC_STDIN, 1, 0);
    p += 8;
    ck_assert_int_eq(write(fd, req, (size_t)(p - req)), p - req);
    while ((r = read(fd, buf, sizeof(buf))) > 0)
        evbuffer_add(in, buf, (size_t)r);
    close(fd);
    for (;;) {
        struct fcgirec rec;
        if (!fcgirec_peek(in, &rec))
            break;
        if (rec.type == FCGIREC_STDOUT) {
            ck_assert_uint_lt(got + rec.len, sizeof(out));
            evbuffer_drain(in, 8);
            evbuffer_remove(in, out + got, rec.len);
            got += rec.len;
            evbuffer_drain(in, rec.total - 8 - rec.len);
        } else {
            ck_assert_int_eq(rec.type, FCGIREC_END_REQUEST);
            evbuffer_drain(in, rec.total);
        }
    }
    ck_assert_uint_eq(evbuffer_get_length(in), 0);
    evbuffer_free(in);
    out[got] = '\0';
    return out;
}

START_TEST(serves_every_page)
{
    const char *r;

    r = ask("GET", "/_fngate/metrics");
    ck_assert_msg(strncmp(r, "Status: 200 OK\r\nContent-Type: text/plain; version=0.0.4", 55) == 0,
                  "%s", r);
    ck_assert_ptr_nonnull(strstr(r, "\r\n\r\n# HELP fngate_build_info"));
    ck_assert_ptr_nonnull(strstr(r, "fngate_instances_max{function=\"hello\"} 3\n"));
    r = ask("GET", "/_fngate/status");
    ck_assert_ptr_nonnull(strstr(r, "Content-Type: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "\"name\":\"hello\",\"handler\":\"/srv/hello/handler\""));
    r = ask("GET", "/_fngate/status.txt");
    ck_assert_ptr_nonnull(strstr(r, "\r\n\r\nfunction "));
    r = ask("GET", "/_fngate/");
    ck_assert_ptr_nonnull(strstr(r, "Content-Type: text/html; charset=utf-8\r\n"));
    ck_assert_ptr_nonnull(strstr(r, "<title>fngate</title>"));
    r = ask("GET", "/_fngate/nope");
    ck_assert_str_eq(r, "Status: 404 Not Found\r\nContent-Type: application/json\r\n"
                        "Content-Length: 22\r\nCache-Control: no-store\r\n"
                        "X-Content-Type-Options: nosniff\r\n\r\n{\"error\":\"not found\"}\n");
    r = ask("POST", "/_fngate/status");
    ck_assert_ptr_nonnull(strstr(r, "Status: 405 Method Not Allowed\r\n"));
    r = ask("HEAD", "/_fngate/metrics");
    ck_assert_ptr_nonnull(strstr(r, "Status: 200 OK\r\n"));
    ck_assert_str_eq(strstr(r, "\r\n\r\n"), "\r\n\r\n"); /* no body */
}
END_TEST

START_TEST(a_flood_of_params_is_cut_off)
{
    int fd = connect_status();
    unsigned char rec[8 + 65535];
    char buf[256];
    ssize_t r = 0;

    memset(rec, 'a', sizeof(rec));
    fcgirec_header(rec, FCGIREC_PARAMS, 1, 65535);
    /* Past the 64 KB budget the server closes without answering. */
    /* MSG_NOSIGNAL: the server may already have closed, which is the
     * point; a plain write() would kill the test with SIGPIPE. */
    for (int i = 0; i < 3; i++) {
        if (send(fd, rec, sizeof(rec), MSG_NOSIGNAL) < 0) {
            ck_assert_msg(errno == EPIPE || errno == ECONNRESET, "send: %s", strerror(errno));
            break;
        }
    }
    while ((r = read(fd, buf, sizeof(buf))) > 0)
        ;
    ck_assert(r == 0 || (r < 0 && errno == ECONNRESET));
    close(fd);
    /* And it still serves the next client. */
    ck_assert_ptr_nonnull(strstr(ask("GET", "/_fngate/metrics"), "Status: 200 OK"));
}
END_TEST

/* Slowloris: STATUS_CONNS connections that each send one byte a second
 * never trip an idle timeout, and without a deadline of their own they
 * would hold every slot, so that monitoring gets its connection closed
 * unanswered for as long as they keep it up. */
START_TEST(slow_clients_cannot_hold_every_connection)
{
    enum { N = 64 };
    int fds[N];
    const char *r;

    for (int i = 0; i < N; i++)
        fds[i] = connect_status();
    for (int t = 0; t < 12; t++) {
        for (int i = 0; i < N; i++)
            (void)!send(fds[i], "\1", 1, MSG_NOSIGNAL);
        sleep(1);
    }
    signal(SIGPIPE, SIG_IGN);
    r = ask("GET", "/_fngate/metrics");
    ck_assert_msg(strncmp(r, "Status: 200 OK\r\n", 16) == 0, "answer: '%s'", r);
    for (int i = 0; i < N; i++)
        close(fds[i]);
}
END_TEST

START_TEST(statcmd_prints_the_table_and_the_json)
{
    char conf[PATH_MAX + 32];
    FILE *f;
    char *argv_t[] = {"status", "-c", conf, NULL};
    char *argv_j[] = {"status", "--json", "-c", conf, NULL};
    char out[] = "/tmp/test_status_out_XXXXXX";
    int ofd = mkstemp(out), saved = dup(1);
    char text[65536];
    ssize_t n;

    snprintf(conf, sizeof(conf), "%s/fngate.conf", testutil_dir);
    f = fopen(conf, "w");
    fprintf(f, "[gateway]\nsocket_dir = %s\nfunctions_dir = %s\n", testutil_dir, testutil_dir);
    fclose(f);
    fflush(stdout);
    dup2(ofd, 1);
    ck_assert_int_eq(statcmd_main(3, argv_t, "/nonexistent"), 0);
    ck_assert_int_eq(statcmd_main(4, argv_j, "/nonexistent"), 0);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    n = pread(ofd, text, sizeof(text) - 1, 0);
    close(ofd);
    unlink(out);
    ck_assert_int_gt(n, 0);
    text[n] = '\0';
    ck_assert_msg(strncmp(text, "function ", 9) == 0, "%s", text);
    ck_assert_ptr_nonnull(strstr(text, "\nhello "));
    ck_assert_ptr_nonnull(strstr(text, "\n{\"version\":\""));
}
END_TEST

START_TEST(statcmd_without_a_gateway)
{
    char conf[PATH_MAX + 32];
    char *argv[] = {"status", "-c", conf, NULL};
    FILE *f;
    const char *err;

    snprintf(conf, sizeof(conf), "%s/other.conf", testutil_dir);
    f = fopen(conf, "w");
    fprintf(f, "[gateway]\nsocket_dir = %s/none\nfunctions_dir = %s\n", testutil_dir, testutil_dir);
    fclose(f);
    testutil_capture_begin();
    ck_assert_int_eq(statcmd_main(3, argv, "/nonexistent"), 1);
    err = testutil_capture_end();
    ck_assert_msg(strstr(err, "fngate status: cannot connect to ") == err, "%s", err);
    ck_assert_ptr_nonnull(strstr(err, "/none/status.sock: No such file or directory"));
}
END_TEST

/* --- poolstat ----------------------------------------------------------- */

START_TEST(poolstat_counts_survive_a_new_pool)
{
    struct poolstat *ps;
    struct poolstat_shm *sh;
    struct evbuffer *b = evbuffer_new();
    char *text;
    int i;

    /* Not on fd 4 itself: with fd 3 inherited open (make check under a
     * lock), Check's own pipe to the runner is fd 4. */
    ps = poolstat_new();
    ck_assert_ptr_nonnull(ps);
    poolstat_set_slow(ps, 250);
    for (int round = 0; round < 2; round++) {
        /* What fngate-pool does at start: a copy of the memfd, mapped and
         * closed. */
        int fd = dup(poolstat_fd(ps));
        ck_assert_int_ge(fd, 0);
        sh = poolstat_attach(fd, 5);
        ck_assert_int_eq(fcntl(fd, F_GETFD), -1); /* closed */
        ck_assert_int_eq(sh->pool_size, 5);
        ck_assert_int_eq(sh->slow_query_ms, 250);
        i = poolstat_fn_index(sh, "users");
        ck_assert_int_eq(i, 0);
        ck_assert_int_eq(poolstat_fn_index(sh, "other"), 1);
        ck_assert_int_eq(poolstat_fn_index(sh, "users"), 0);
        poolstat_wait(sh, 1000);
        poolstat_query(sh, i, 30000, NULL);
        poolstat_query(sh, i, 30000, "42P01");
        poolstat_query(sh, i, -1, "FG001");
        munmap(sh, sizeof(*sh));
    }
    poolstat_render_prom(ps, b);
    evbuffer_add(b, "", 1);
    text = (char *)evbuffer_pullup(b, -1);
    ck_assert_ptr_nonnull(strstr(text, "fngate_pool_size 5\n"));
    ck_assert_ptr_nonnull(strstr(text, "fngate_pool_wait_seconds_count 2\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "fngate_pool_query_duration_seconds_count{function=\"users\"} 4\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "fngate_pool_errors_total{function=\"users\",sqlstate_class=\"42\"} 2\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "fngate_pool_errors_total{function=\"users\",sqlstate_class=\"FG\"} 2\n"));
    ck_assert_ptr_null(strstr(text, "function=\"other\"} 1"));
    evbuffer_free(b);
    b = evbuffer_new();
    poolstat_render_json(ps, b);
    evbuffer_add(b, "", 1);
    text = (char *)evbuffer_pullup(b, -1);
    ck_assert_ptr_nonnull(strstr(text, "\"users\":{\"queries\":6,\"errors\":4}"));
    ck_assert_ptr_nonnull(strstr(text, "\"slow_query_ms\":250}"));
    evbuffer_free(b);
    poolstat_free(ps);
    poolstat_free(NULL);
}
END_TEST

static void root_up(void)
{
    testutil_root_make("test_status");
}

static void root_down(void)
{
    testutil_root_remove();
}

int main(void)
{
    Suite *s = suite_create("status");
    TCase *tc = tcase_create("server");
    TCase *tp = tcase_create("poolstat");
    SRunner *sr;
    int failed;

    tcase_add_unchecked_fixture(tc, root_up, root_down);
    tcase_add_checked_fixture(tc, server_up, server_down);
    tcase_set_timeout(tc, 40); /* the slowloris test waits out a 10 s deadline */
    tcase_add_test(tc, serves_every_page);
    tcase_add_test(tc, a_flood_of_params_is_cut_off);
    tcase_add_test(tc, slow_clients_cannot_hold_every_connection);
    tcase_add_test(tc, statcmd_prints_the_table_and_the_json);
    tcase_add_test(tc, statcmd_without_a_gateway);
    suite_add_tcase(s, tc);
    tcase_add_test(tp, poolstat_counts_survive_a_new_pool);
    suite_add_tcase(s, tp);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
