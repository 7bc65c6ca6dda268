/*
 * Unit tests for the pool's dispatch (gateway/pool/dispatch.c) and instance
 * channels (gateway/pool/client.c), through their public API on a pool with
 * no database behind it: a function's share clamped to pool_size, queues
 * shared and freed with their function's channels, queries failed fast with
 * the reason when the database is unreachable and at db_wait_timeout
 * oldest first, a second frame before the answer closing the channel, and
 * the unread-output cap closing the channel with the most unread output.
 */
#include "config.h"

#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "dispatch.h"
#include "types.h"

static struct pool pool;
static struct poolstat_shm *stats;

/* A pool of N connections in state ST, nothing connected. */
static void pool_setup(int n, enum server_state st)
{
    memset(&pool, 0, sizeof(pool));
    pool.set.pool_size = n;
    pool.set.max_result = 1;
    pool.set.max_query = 1 << 20;
    pool.set.db_wait_timeout_ms = 1000;
    pool.base = event_base_new();
    ck_assert_ptr_nonnull(pool.base);
    stats = calloc(1, sizeof(*stats));
    pool.stats = stats;
    pool.conns = calloc((size_t)n, sizeof(*pool.conns));
    for (int i = 0; i < n; i++) {
        pool.conns[i].pool = &pool;
        pool.conns[i].idx = i;
        pool.conns[i].state = st;
    }
}

static void pool_teardown(void)
{
    while (pool.clients) {
        struct client *c = pool.clients;
        pool.clients = c->next;
        client_free(c);
    }
    ck_assert_ptr_null(pool.fnqs);
    free(pool.conns);
    free(stats);
    event_base_free(pool.base);
}

static struct pool_hello hello_of(const char *fn, int pid, int share)
{
    struct pool_hello h;

    memset(&h, 0, sizeof(h));
    h.version = POOL_HELLO_VERSION;
    h.kind = POOL_HELLO_CHANNEL;
    h.pid = pid;
    h.max_db_connections = share;
    snprintf(h.fn, sizeof(h.fn), "%s", fn);
    return h;
}

/* A channel of FN; *PEER is the instance's end. */
static struct client *channel(const char *fn, int pid, int *peer)
{
    int sv[2];
    struct pool_hello h = hello_of(fn, pid, 0);
    struct client *c;

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

/* Lets the pool handle what is readable now. */
static void pool_turn(void)
{
    ck_assert_int_ge(event_base_loop(pool.base, EVLOOP_NONBLOCK), 0);
}

/* Reads the error frame the instance gets; checks its SQLSTATE and that its
 * message starts with MSG. */
static void expect_error(int fd, const char *sqlstate, const char *msg)
{
    static struct fnsdk_frame_view v;
    struct fnsdk_buf b;
    char err[128];

    fnsdk_buf_init(&b, 0);
    ck_assert_msg(fnsdk_frame_read_one(fd, &b, 1 << 20, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(fnsdk_frame_parse(b.data, b.len, &v, err, sizeof(err)), 0);
    ck_assert_int_eq(v.type, FNSDK_FRAME_ERROR);
    ck_assert_int_eq(v.field[0].len, 5);
    ck_assert_int_eq(memcmp(v.field[0].p, sqlstate, 5), 0);
    ck_assert_msg(v.field[1].len >= strlen(msg) && memcmp(v.field[1].p, msg, strlen(msg)) == 0,
                  "message %.*s", (int)v.field[1].len, v.field[1].p);
    fnsdk_buf_free(&b);
}

/* Nothing waiting on FD (and it is still open). */
static void expect_quiet(int fd)
{
    char ch;

    errno = 0;
    ck_assert_int_eq(recv(fd, &ch, 1, MSG_DONTWAIT), -1);
    ck_assert_int_eq(errno, EAGAIN);
}

/* The pool closed its end of FD's channel. */
static void expect_closed(int fd)
{
    char ch;

    ck_assert_int_eq(recv(fd, &ch, 1, MSG_DONTWAIT), 0);
}

static bool pool_has(const struct client *c)
{
    for (struct client *k = pool.clients; k; k = k->next) {
        if (k == c)
            return true;
    }
    return false;
}

START_TEST(test_join_share)
{
    struct pool_hello a0 = hello_of("a", 1, 0), a9 = hello_of("a", 2, 9);
    struct pool_hello b2 = hello_of("b", 3, 2);
    struct fnq *fa, *fa2, *fb;

    pool_setup(4, PC_FREE);
    fa = dispatch_join(&pool, &a0, NULL);
    ck_assert_ptr_nonnull(fa);
    ck_assert_int_eq(fa->share, 4); /* 0: the whole pool */
    fa2 = dispatch_join(&pool, &a9, NULL);
    ck_assert_ptr_eq(fa2, fa);      /* one queue per function */
    ck_assert_int_eq(fa->share, 4); /* over pool_size: pool_size */
    ck_assert_int_eq(fa->nclients, 2);
    fb = dispatch_join(&pool, &b2, "dbname=b");
    ck_assert_ptr_ne(fb, fa);
    ck_assert_int_eq(fb->share, 2);
    ck_assert_str_eq(fb->conninfo, "dbname=b");

    dispatch_leave(&pool, fa);
    ck_assert_ptr_nonnull(pool.fnqs);
    ck_assert_int_eq(fa->nclients, 1);
    dispatch_leave(&pool, fa);
    dispatch_leave(&pool, NULL);
    ck_assert_ptr_eq(pool.fnqs, fb);
    ck_assert_ptr_null(fb->next);
    dispatch_leave(&pool, fb);
    pool_teardown();
}
END_TEST

START_TEST(test_queue_fifo)
{
    int pa, pb, pc;
    struct client *a, *b, *c;

    pool_setup(2, PC_FREE);
    a = channel("f", 1, &pa);
    b = channel("f", 2, &pb);
    c = channel("g", 3, &pc);
    ck_assert_ptr_eq(a->fq, b->fq);
    dispatch_add(&pool, a);
    dispatch_add(&pool, b);
    dispatch_add(&pool, c);
    ck_assert_int_eq(pool.nwait, 3);
    ck_assert_int_eq(a->fq->nwait, 2);
    ck_assert_ptr_eq(a->fq->head, a);
    ck_assert_ptr_eq(a->wnext, b);
    ck_assert_ptr_eq(a->fq->tail, b);
    dispatch_remove(&pool, b);
    ck_assert_ptr_eq(a->fq->tail, a);
    ck_assert_ptr_null(a->wnext);
    ck_assert(!b->waiting);
    dispatch_remove(&pool, a);
    ck_assert_ptr_null(a->fq->head);
    ck_assert_ptr_null(a->fq->tail);
    ck_assert_int_eq(pool.nwait, 1);
    dispatch_remove(&pool, c);
    ck_assert_int_eq(pool.nwait, 0);
    close(pa);
    close(pb);
    close(pc);
    pool_teardown();
}
END_TEST

/* The database is down and the backoff runs: queries fail at once with the
 * reason, not at db_wait_timeout. */
START_TEST(test_unreachable_fails_fast)
{
    int pa, pb;
    struct client *a, *b;

    pool_setup(2, PC_FREE);
    pool.connect_after_ns = pool_now_ns() + 60LL * 1000000000;
    snprintf(pool.conn_err, sizeof(pool.conn_err), "connection refused");
    a = channel("f", 1, &pa);
    b = channel("g", 2, &pb);
    send_query(pa, "select 1");
    send_query(pb, "select 2");
    pool_turn();
    expect_error(pa, POOL_ERR_CONNECT, "database unavailable: connection refused");
    expect_error(pb, POOL_ERR_CONNECT, "database unavailable: connection refused");
    ck_assert_int_eq(pool.nwait, 0);
    ck_assert(!a->has_query);
    ck_assert(!b->has_query);
    /* The channel stays usable for the next query. */
    send_query(pa, "select 3");
    pool_turn();
    expect_error(pa, POOL_ERR_CONNECT, "database unavailable");
    close(pa);
    close(pb);
    pool_teardown();
}
END_TEST

/* Connections are opening: queries wait, then fail at db_wait_timeout,
 * oldest first, the younger one staying queued. */
START_TEST(test_expire_oldest)
{
    int pa, pb;
    struct client *a, *b;
    int64_t now;

    pool_setup(2, PC_CONNECTING);
    a = channel("f", 1, &pa);
    b = channel("g", 2, &pb);
    send_query(pa, "select 1");
    pool_turn();
    send_query(pb, "select 2");
    pool_turn();
    ck_assert_int_eq(pool.nwait, 2);
    expect_quiet(pa);
    expect_quiet(pb);
    a->queued_ns -= 3LL * 1000000000; /* waited 3 s */
    b->queued_ns -= 500LL * 1000000;  /* 0.5 s */
    now = pool_now_ns();
    dispatch_expire(&pool, now);
    expect_error(pa, POOL_ERR_TIMEOUT,
                 "pool timeout: no database connection free within db_wait_timeout (1000 ms)");
    expect_quiet(pb);
    ck_assert(b->waiting);
    ck_assert_int_eq(pool.nwait, 1);
    b->queued_ns -= 1000LL * 1000000;
    dispatch_expire(&pool, now);
    expect_error(pb, POOL_ERR_TIMEOUT, "pool timeout");
    ck_assert_int_eq(pool.nwait, 0);
    close(pa);
    close(pb);
    pool_teardown();
}
END_TEST

/* An instance is single-threaded: a second query frame before the answer to
 * the first is a protocol error that closes its channel. */
START_TEST(test_second_frame_closes)
{
    int pa, pb;
    struct client *a, *b;

    pool_setup(2, PC_CONNECTING);
    a = channel("f", 1, &pa);
    b = channel("f", 2, &pb);
    send_query(pb, "select 1");
    pool_turn();
    ck_assert(b->waiting);
    send_query(pa, "select 1");
    send_query(pa, "select 2");
    pool_turn();
    ck_assert(!pool_has(a));
    expect_closed(pa);
    ck_assert_int_eq(pool.nwait, 1); /* a's query left the queue */
    ck_assert(pool_has(b));
    ck_assert_ptr_eq(b->fq->head, b);
    expect_quiet(pb);
    close(pa);
    close(pb);
    pool_teardown();
}
END_TEST

/* Past the cap (4 MB here), the channel with the most unread output goes,
 * and only as many as bring the total under the cap. */
START_TEST(test_unsent_cap)
{
    int pa, pb, pc;
    struct client *a, *b, *c;
    const size_t mb = (size_t)1 << 20;

    pool_setup(1, PC_FREE);
    a = channel("f", 1, &pa);
    b = channel("g", 2, &pb);
    c = channel("h", 3, &pc);
    a->unsent = 1 * mb;
    b->unsent = 3 * mb;
    c->unsent = 1 * mb;
    pool.unsent = a->unsent + b->unsent + c->unsent;
    client_enforce_unsent(&pool); /* 5 MB: over */
    ck_assert(!pool_has(b));
    expect_closed(pb);
    ck_assert(pool_has(a));
    ck_assert(pool_has(c));
    ck_assert_uint_eq(pool.unsent, 2 * mb);
    expect_quiet(pa);
    expect_quiet(pc);
    /* At the cap exactly: nothing closes. */
    c->unsent = 3 * mb;
    pool.unsent = 4 * mb;
    client_enforce_unsent(&pool);
    ck_assert(pool_has(a));
    ck_assert(pool_has(c));
    close(pa);
    close(pb);
    close(pc);
    pool_teardown();
}
END_TEST

static Suite *dispatch_suite(void)
{
    Suite *s = suite_create("dispatch");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_join_share);
    tcase_add_test(tc, test_queue_fifo);
    tcase_add_test(tc, test_unreachable_fails_fast);
    tcase_add_test(tc, test_expire_oldest);
    tcase_add_test(tc, test_second_frame_closes);
    tcase_add_test(tc, test_unsent_cap);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(dispatch_suite)
