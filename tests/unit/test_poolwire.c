/*
 * Unit tests for gateway/pool/poolwire.c, the pool's control-socket
 * messages as the supervisor and the SDK's test harness send them: the
 * settings arrive field by field as sent, the longest connection string
 * arrives and one byte more is refused before anything is sent, and a
 * short, forged or changed settings message is refused with its errno; a
 * channel hand-over arrives with its descriptor and its connection string.
 */
#include "config.h"

#include "pool/poolwire.h"

#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int sv[2];
static char buf[POOLWIRE_SETTINGS_MAX];

static void setup(void)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void teardown(void)
{
    close(sv[0]);
    close(sv[1]);
}

static struct pool_settings sample(const char *conninfo)
{
    struct pool_settings set;

    memset(&set, 0, sizeof(set));
    set.conninfo = conninfo;
    set.pool_size = 7;
    set.min_pool = 3;
    set.stmt_cache = 256;
    set.db_wait_timeout_ms = INT64_C(1) << 40;
    set.max_result = (int64_t)64 << 20;
    set.max_query = 123456789;
    set.prepared = true;
    return set;
}

START_TEST(settings_arrive_as_sent)
{
    struct pool_settings set = sample("postgresql://u:secret@/db?host=/run/pg"), got;

    ck_assert_int_eq(poolwire_send_settings(sv[0], &set), 0);
    ck_assert_int_eq(poolwire_recv_settings(sv[1], buf, sizeof(buf), &got), 0);
    ck_assert_str_eq(got.conninfo, set.conninfo);
    ck_assert_int_eq(got.pool_size, 7);
    ck_assert_int_eq(got.min_pool, 3);
    ck_assert_int_eq(got.stmt_cache, 256);
    ck_assert_int_eq(got.db_wait_timeout_ms, INT64_C(1) << 40);
    ck_assert_int_eq(got.max_result, (int64_t)64 << 20);
    ck_assert_int_eq(got.max_query, 123456789);
    ck_assert(got.prepared);

    set.prepared = false;
    set.conninfo = "";
    ck_assert_int_eq(poolwire_send_settings(sv[0], &set), 0);
    ck_assert_int_eq(poolwire_recv_settings(sv[1], buf, sizeof(buf), &got), 0);
    ck_assert_str_eq(got.conninfo, "");
    ck_assert(!got.prepared);
}
END_TEST

START_TEST(the_longest_conninfo_arrives_and_one_byte_more_is_refused)
{
    char *url = malloc(POOL_CONNINFO_MAX + 2);
    struct pool_settings set, got;
    char c;

    ck_assert_ptr_nonnull(url);
    memset(url, 'u', POOL_CONNINFO_MAX);
    url[POOL_CONNINFO_MAX] = '\0';
    set = sample(url);
    ck_assert_int_eq(poolwire_send_settings(sv[0], &set), 0);
    ck_assert_int_eq(poolwire_recv_settings(sv[1], buf, sizeof(buf), &got), 0);
    ck_assert_str_eq(got.conninfo, url);

    url[POOL_CONNINFO_MAX] = 'u';
    url[POOL_CONNINFO_MAX + 1] = '\0';
    errno = 0;
    ck_assert_int_eq(poolwire_send_settings(sv[0], &set), -1);
    ck_assert_int_eq(errno, ENAMETOOLONG);
    /* Nothing went out. */
    ck_assert_int_eq(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
    ck_assert_int_eq(errno, EAGAIN);
    free(url);
}
END_TEST

/* The settings message for SET, as bytes. */
static size_t capture(const struct pool_settings *set, char *out, size_t len)
{
    int tap[2];
    ssize_t n;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, tap), 0);
    ck_assert_int_eq(poolwire_send_settings(tap[0], set), 0);
    n = recv(tap[1], out, len, 0);
    ck_assert_int_gt(n, 0);
    close(tap[0]);
    close(tap[1]);
    return (size_t)n;
}

static void refused(const char *msg, size_t len, int want)
{
    struct pool_settings got;

    ck_assert_int_eq(send(sv[0], msg, len, 0), (ssize_t)len);
    errno = 0;
    ck_assert_int_eq(poolwire_recv_settings(sv[1], buf, sizeof(buf), &got), -1);
    ck_assert_int_eq(errno, want);
}

START_TEST(bad_settings_are_refused)
{
    struct pool_settings set = sample("dbname=x");
    char raw[256], x[257];
    size_t n = capture(&set, raw, sizeof(raw));

    refused(raw, 3, ENOMSG); /* shorter than the header */
    memcpy(x, raw, n);
    x[0] ^= 0x7f; /* another version */
    refused(x, n, EPROTO);
    memcpy(x, raw, n);
    x[n] = 'y'; /* a byte more than it says */
    refused(x, n + 1, EPROTO);
    refused(raw, n - 1, EPROTO); /* a byte less */
    set.pool_size = 0;
    n = capture(&set, raw, sizeof(raw));
    refused(raw, n, EPROTO); /* no connection at all */
}
END_TEST

START_TEST(a_channel_arrives_with_its_conninfo)
{
    struct pool_hello hello, got;
    char cinfo[] = "dbname=own", tail[64];
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } cm;
    struct iovec iov[2] = {{&got, sizeof(got)}, {tail, sizeof(tail)}};
    struct msghdr mh;
    struct stat a, b;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC), rfd;
    ssize_t n;

    memset(&hello, 0, sizeof(hello));
    hello.version = POOL_HELLO_VERSION;
    hello.kind = POOL_HELLO_CHANNEL;
    hello.pid = 4242;
    hello.conninfo_len = (uint32_t)strlen(cinfo);
    ck_assert_int_eq(poolwire_send_hello(sv[0], &hello, cinfo, fd, 0), 0);
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = iov;
    mh.msg_iovlen = 2;
    mh.msg_control = cm.buf;
    mh.msg_controllen = sizeof(cm.buf);
    n = recvmsg(sv[1], &mh, MSG_CMSG_CLOEXEC);
    ck_assert_int_eq(n, (ssize_t)(sizeof(hello) + strlen(cinfo)));
    ck_assert_mem_eq(&got, &hello, sizeof(hello));
    ck_assert_mem_eq(tail, cinfo, strlen(cinfo));
    ck_assert_ptr_nonnull(CMSG_FIRSTHDR(&mh));
    memcpy(&rfd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
    ck_assert_int_eq(fstat(fd, &a), 0);
    ck_assert_int_eq(fstat(rfd, &b), 0);
    ck_assert(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    close(rfd);

    /* The word that an instance was reaped: no descriptor, no string. */
    hello.kind = POOL_HELLO_REAPED;
    hello.conninfo_len = 0;
    ck_assert_int_eq(poolwire_send_hello(sv[0], &hello, NULL, -1, 0), 0);
    mh.msg_controllen = sizeof(cm.buf);
    n = recvmsg(sv[1], &mh, MSG_CMSG_CLOEXEC);
    ck_assert_int_eq(n, (ssize_t)sizeof(hello));
    ck_assert_ptr_null(CMSG_FIRSTHDR(&mh));
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("poolwire");
    TCase *tc = tcase_create("poolwire");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, settings_arrive_as_sent);
    tcase_add_test(tc, the_longest_conninfo_arrives_and_one_byte_more_is_refused);
    tcase_add_test(tc, bad_settings_are_refused);
    tcase_add_test(tc, a_channel_arrives_with_its_conninfo);
    suite_add_tcase(s, tc);
    return check_main_run(s);
}
