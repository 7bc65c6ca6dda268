/*
 * Unit tests for the pool's server connections (gateway/pool/server.c) and
 * their dispatch, on a throwaway PostgreSQL (tests/unit/pgtmp.c): a free
 * connection goes round-robin to the next function with a query waiting,
 * not to the function that queued first; a function never holds more
 * connections than its share (max_db_connections); and a session passed to
 * another function is reset first, so nothing one function set is seen by
 * the next.  Exits 77 (SKIP) without PostgreSQL's server binaries.
 */
#include "config.h"

#include <check.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "dispatch.h"
#include "pgtmp.h"
#include "server.h"
#include "types.h"

static struct pgtmp pg;
static struct pool pool;
static struct poolstat_shm *stats;

static void pool_setup(int n)
{
    PGconn *db;
    PGresult *r;

    memset(&pool, 0, sizeof(pool));
    pool.set.conninfo = pgtmp_conninfo(&pg);
    pool.set.pool_size = n;
    pool.set.max_result = 1 << 20;
    pool.set.max_query = 1 << 20;
    pool.set.db_wait_timeout_ms = 10000;
    pool.set.prepared = true;
    pool.set.stmt_cache = 16;
    pool.base = event_base_new();
    ck_assert_ptr_nonnull(pool.base);
    stats = calloc(1, sizeof(*stats));
    pool.stats = stats;
    pool.conns = calloc((size_t)n, sizeof(*pool.conns));
    for (int i = 0; i < n; i++) {
        pool.conns[i].pool = &pool;
        pool.conns[i].idx = i;
        stmt_init(&pool.conns[i].stmts, pool.set.stmt_cache);
    }
    /* The order queries ran in: nextval when each one runs. */
    db = PQconnectdb(pool.set.conninfo);
    ck_assert_int_eq(PQstatus(db), CONNECTION_OK);
    r = PQexec(db, "set client_min_messages = warning; drop sequence if exists seq; "
                   "create sequence seq");
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(db);
}

static void pool_teardown(void)
{
    while (pool.clients) {
        struct client *c = pool.clients;
        pool.clients = c->next;
        client_free(c);
    }
    for (int i = 0; i < pool.set.pool_size; i++) {
        pool.conns[i].client = NULL;
        pool.conns[i].fq = NULL;
        pool.conns[i].pinned = NULL;
        server_drop(&pool.conns[i], "test over");
    }
    free(pool.conns);
    free(stats);
    event_base_free(pool.base);
}

static struct client *channel(const char *fn, int pid, int share, int *peer)
{
    int sv[2];
    struct pool_hello h;
    struct client *c;

    memset(&h, 0, sizeof(h));
    h.version = POOL_HELLO_VERSION;
    h.pid = pid;
    h.max_db_connections = share;
    snprintf(h.fn, sizeof(h.fn), "%s", fn);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    c = client_new(&pool, sv[0], &h, NULL);
    ck_assert_ptr_nonnull(c);
    *peer = sv[1];
    return c;
}

static void send_query(int fd, const char *sql)
{
    struct fnsdk_buf b;

    fnsdk_buf_init(&b, 0);
    fnsdk_frame_begin(&b, FNSDK_FRAME_QUERY);
    fnsdk_frame_add(&b, sql, strlen(sql));
    ck_assert_int_eq(fnsdk_frame_end(&b), 0);
    ck_assert_int_eq(fnsdk_frame_write_all(fd, b.data, b.len), 0);
    fnsdk_buf_free(&b);
}

/* Runs the pool until FD has something to read (10 s at most). */
static void pool_until(int fd)
{
    int64_t end = pool_now_ns() + 10LL * 1000000000;
    struct pollfd p = {.fd = fd, .events = POLLIN};

    while (poll(&p, 1, 0) == 0) {
        ck_assert_msg(pool_now_ns() < end, "no answer within 10 s");
        ck_assert_int_ge(event_base_loop(pool.base, EVLOOP_ONCE), 0);
        usleep(1000);
    }
}

/* Lets the pool handle what is readable now. */
static void pool_turn(void)
{
    ck_assert_int_ge(event_base_loop(pool.base, EVLOOP_NONBLOCK), 0);
}

/* The rows of the result frame FD gets, into OUT. */
static void answer_rows(int fd, char *out, size_t len)
{
    static struct fnsdk_frame_view v;
    struct fnsdk_buf b;
    char err[128];

    pool_until(fd);
    fnsdk_buf_init(&b, 0);
    ck_assert_msg(fnsdk_frame_read_one(fd, &b, 1 << 20, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(fnsdk_frame_parse(b.data, b.len, &v, err, sizeof(err)), 0);
    ck_assert_msg(v.type == FNSDK_FRAME_RESULT, "error: %.*s", (int)v.field[1].len, v.field[1].p);
    snprintf(out, len, "%.*s", (int)v.field[2].len, v.field[2].p);
    fnsdk_buf_free(&b);
}

#define SEQ_SQL "select nextval('seq') as n"
/* Waits for the test's lock, so that the connection stays busy until the
 * test lets it go: no race with a fast server. */
#define WAIT_SQL "select nextval('seq') as n from pg_advisory_xact_lock_shared(1)"

static PGconn *locker;

static void lock_hold(void)
{
    PGresult *r;

    locker = PQconnectdb(pgtmp_conninfo(&pg));
    ck_assert_int_eq(PQstatus(locker), CONNECTION_OK);
    r = PQexec(locker, "select pg_advisory_lock(1)");
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
}

static void lock_release(void)
{
    PQfinish(locker);
    locker = NULL;
}

/* One connection, busy with a's first query; a queues two more, then b
 * one: b runs next, not after a's backlog. */
START_TEST(test_round_robin)
{
    int pa[3], pb;
    char rows[256];

    pool_setup(1);
    channel("b", 20, 0, &pb); /* b first: a is the ring's head */
    for (int i = 0; i < 3; i++)
        channel("a", 10 + i, 0, &pa[i]);
    /* Warm: the connection is open and idle, a served last. */
    send_query(pa[0], SEQ_SQL);
    answer_rows(pa[0], rows, sizeof(rows));
    ck_assert_str_eq(rows, "[{\"n\":\"1\"}]");
    lock_hold();
    for (int i = 0; i < 3; i++) {
        send_query(pa[i], WAIT_SQL);
        pool_turn();
    }
    send_query(pb, WAIT_SQL);
    pool_turn();
    ck_assert_int_eq(pool.nwait, 3);
    lock_release();
    answer_rows(pa[0], rows, sizeof(rows));
    ck_assert_str_eq(rows, "[{\"n\":\"2\"}]");
    answer_rows(pb, rows, sizeof(rows));
    ck_assert_str_eq(rows, "[{\"n\":\"3\"}]");
    answer_rows(pa[1], rows, sizeof(rows));
    ck_assert_str_eq(rows, "[{\"n\":\"4\"}]");
    answer_rows(pa[2], rows, sizeof(rows));
    ck_assert_str_eq(rows, "[{\"n\":\"5\"}]");
    ck_assert_int_eq(pool.nwait, 0);
    for (int i = 0; i < 3; i++)
        close(pa[i]);
    close(pb);
    pool_teardown();
}
END_TEST

/* Three connections, a function with a share of one: its queries run one
 * after another, the pool opens no other connection for it, and with three
 * idle it still takes one. */
START_TEST(test_share_cap)
{
    int pa[3], pw[3];
    char rows[256];
    int used = 0;

    pool_setup(3);
    for (int i = 0; i < 3; i++)
        channel("a", 10 + i, 1, &pa[i]);
    for (int i = 0; i < 3; i++) {
        send_query(pa[i], SEQ_SQL);
        pool_turn();
    }
    for (int i = 0; i < 3; i++) {
        char want[32];
        answer_rows(pa[i], rows, sizeof(rows));
        snprintf(want, sizeof(want), "[{\"n\":\"%d\"}]", i + 1);
        ck_assert_str_eq(rows, want);
        ck_assert_int_le(pool.clients->fq->busy, 1);
    }
    for (int i = 0; i < 3; i++)
        used += pool.conns[i].state != PC_FREE;
    ck_assert_int_eq(used, 1);

    /* All three open and idle (w has the whole pool): still one at a time. */
    lock_hold();
    for (int i = 0; i < 3; i++) {
        channel("w", 30 + i, 0, &pw[i]);
        send_query(pw[i], WAIT_SQL);
        pool_turn();
    }
    /* Each waits on a connection of its own (two opening). */
    for (int64_t end = pool_now_ns() + 10LL * 1000000000; pool.nwait > 0 && pool_now_ns() < end;) {
        ck_assert_int_ge(event_base_loop(pool.base, EVLOOP_ONCE), 0);
        usleep(1000);
    }
    ck_assert_int_eq(pool.nwait, 0);
    lock_release();
    for (int i = 0; i < 3; i++)
        answer_rows(pw[i], rows, sizeof(rows));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pool.conns[i].state, PC_IDLE);
    lock_hold();
    for (int i = 0; i < 3; i++) {
        send_query(pa[i], WAIT_SQL);
        pool_turn();
    }
    used = 0;
    for (int i = 0; i < 3; i++)
        used += pool.conns[i].state == PC_BUSY;
    ck_assert_int_eq(used, 1);
    ck_assert_int_eq(pool.nwait, 2);
    lock_release();
    for (int i = 0; i < 3; i++)
        answer_rows(pa[i], rows, sizeof(rows));
    for (int i = 0; i < 3; i++) {
        close(pa[i]);
        close(pw[i]);
    }
    pool_teardown();
}
END_TEST

/* What a function sets in its session is gone when the session passes to
 * another function, and kept while it stays with the same function. */
START_TEST(test_reset_between_functions)
{
    int pa, pa2, pb;
    char rows[256];

    pool_setup(1);
    channel("a", 10, 0, &pa);
    channel("a", 11, 0, &pa2);
    channel("b", 20, 0, &pb);
    send_query(pa, "select set_config('application_name', 'leak', false) as v");
    answer_rows(pa, rows, sizeof(rows));
    ck_assert_str_eq(rows, "[{\"v\":\"leak\"}]");
    send_query(pa2, "select current_setting('application_name') as v");
    answer_rows(pa2, rows, sizeof(rows));
    ck_assert_str_eq(rows, "[{\"v\":\"leak\"}]"); /* same function: no reset */
    send_query(pb, "select current_setting('application_name') as v");
    answer_rows(pb, rows, sizeof(rows));
    ck_assert_str_eq(rows, "[{\"v\":\"\"}]");
    ck_assert_str_eq(pool.conns[0].owner, "b");
    close(pa);
    close(pa2);
    close(pb);
    pool_teardown();
}
END_TEST

static Suite *server_suite(void)
{
    Suite *s = suite_create("server");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_round_robin);
    tcase_add_test(tc, test_share_cap);
    tcase_add_test(tc, test_reset_between_functions);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    if (pgtmp_start(&pg) < 0) {
        fprintf(stderr, "test_server: %s\n", pg.err);
        return pg.unavailable ? 77 : EXIT_FAILURE; /* 77: automake's SKIP */
    }
    sr = srunner_create(server_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    pgtmp_stop(&pg);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
