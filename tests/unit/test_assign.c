/*
 * Unit tests for gateway/assign.c, the message that turns a spare process
 * into a function's instance: what is sent arrives whole (strings, the
 * environment, the seccomp program, the descriptors), and anything short,
 * forged or too big is refused with a reason, never half used.
 */
#include "config.h"

#include "assign.h"

#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int pair[2];

static void setup(void)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
}

static void teardown(void)
{
    close(pair[0]);
    close(pair[1]);
}

static bool same_file(int a, int b)
{
    struct stat x, y;
    return fstat(a, &x) == 0 && fstat(b, &y) == 0 && x.st_ino == y.st_ino && x.st_dev == y.st_dev;
}

START_TEST(an_assignment_arrives_whole)
{
    struct sock_filter insns[3] = {{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}};
    struct sock_fprog prog = {3, insns};
    char *env[] = {"PATH=/bin", "FNGATE_FUNCTION=hello", "EMPTY=", NULL};
    int lfd = open("/dev/null", O_RDONLY | O_CLOEXEC), sfd = open("/", O_RDONLY | O_CLOEXEC);
    int dfd = open("/dev/zero", O_RDONLY | O_CLOEXEC), rfd = open("/tmp", O_RDONLY | O_CLOEXEC);
    struct assign a = {.so_path = "/srv/fn/hello/handler.so",
                       .cwd = "/srv/fn/hello",
                       .envp = env,
                       .listen_fd = lfd,
                       .db_fd = dfd,
                       .sb_fd = sfd,
                       .ruleset_fd = rfd,
                       .memory_limit = (int64_t)64 << 20,
                       .open_files = 256,
                       .drop_privileges = true,
                       .uid = 61200,
                       .gid = 61201,
                       .sandbox = true,
                       .bpf = &prog};
    struct assign *got;
    char err[160];

    ck_assert_int_eq(assign_send(pair[0], &a), 0);
    got = assign_recv(pair[1], err, sizeof(err));
    ck_assert_msg(got != NULL, "%s", err);
    ck_assert_str_eq(got->so_path, a.so_path);
    ck_assert_str_eq(got->cwd, a.cwd);
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(got->envp[i], env[i]);
    ck_assert_ptr_null(got->envp[3]);
    ck_assert(same_file(got->listen_fd, lfd) && got->listen_fd != lfd);
    ck_assert(same_file(got->db_fd, dfd));
    ck_assert(same_file(got->sb_fd, sfd));
    ck_assert(same_file(got->ruleset_fd, rfd));
    ck_assert_int_eq(fcntl(got->listen_fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    ck_assert_int_eq(got->memory_limit, (int64_t)64 << 20);
    ck_assert_int_eq(got->open_files, 256);
    ck_assert(got->drop_privileges && got->sandbox);
    ck_assert_int_eq(got->uid, 61200);
    ck_assert_int_eq(got->gid, 61201);
    ck_assert_ptr_nonnull(got->bpf);
    ck_assert_int_eq(got->bpf->len, 3);
    ck_assert_mem_eq(got->bpf->filter, insns, sizeof(insns));
    assign_free(got);
    assign_free(NULL);
    close(lfd);
    close(sfd);
    close(dfd);
    close(rfd);
}
END_TEST

START_TEST(optional_parts_stay_absent)
{
    char *env[] = {NULL};
    int lfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    struct assign a = {.so_path = "/x.so",
                       .envp = env,
                       .listen_fd = lfd,
                       .db_fd = -1,
                       .sb_fd = lfd,
                       .ruleset_fd = -1};
    struct assign *got;
    char err[160];

    ck_assert_int_eq(assign_send(pair[0], &a), 0);
    got = assign_recv(pair[1], err, sizeof(err));
    ck_assert_msg(got != NULL, "%s", err);
    ck_assert_ptr_null(got->cwd);
    ck_assert_ptr_null(got->envp[0]);
    ck_assert_int_eq(got->db_fd, -1);
    ck_assert_int_eq(got->ruleset_fd, -1);
    ck_assert_ptr_null(got->bpf);
    ck_assert(!got->sandbox && !got->drop_privileges);
    assign_free(got);
    close(lfd);
}
END_TEST

START_TEST(a_closed_socket_is_no_error)
{
    char err[160] = "x";
    close(pair[0]);
    pair[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ck_assert_ptr_null(assign_recv(pair[1], err, sizeof(err)));
    ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(forged_messages_are_refused)
{
    char err[160], junk[64];
    struct assign *got;

    memset(junk, 0x41, sizeof(junk));
    ck_assert_int_eq(send(pair[0], junk, 3, 0), 3);
    got = assign_recv(pair[1], err, sizeof(err));
    ck_assert_ptr_null(got);
    ck_assert_str_eq(err, "assignment truncated (3 bytes)");

    ck_assert_int_eq(send(pair[0], junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
    got = assign_recv(pair[1], err, sizeof(err));
    ck_assert_ptr_null(got);
    ck_assert_str_eq(err, "assignment malformed (0 descriptors)");
}
END_TEST

START_TEST(a_cut_message_is_refused)
{
    /* A real assignment with its last byte gone: the environment's NUL. */
    char *env[] = {"A=1", NULL};
    int lfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    struct assign a = {.so_path = "/x.so",
                       .envp = env,
                       .listen_fd = lfd,
                       .db_fd = -1,
                       .sb_fd = lfd,
                       .ruleset_fd = -1};
    int tap[2];
    char buf[4096], cbuf[CMSG_SPACE(4 * sizeof(int))], err[160];
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr mh = {0};
    ssize_t n;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, tap), 0);
    ck_assert_int_eq(assign_send(tap[0], &a), 0);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof(cbuf);
    n = recvmsg(tap[1], &mh, MSG_CMSG_CLOEXEC);
    ck_assert_int_gt(n, 1);
    iov.iov_len = (size_t)n - 1;
    mh.msg_iovlen = 1;
    ck_assert_int_eq(sendmsg(pair[0], &mh, 0), n - 1);
    ck_assert_ptr_null(assign_recv(pair[1], err, sizeof(err)));
    ck_assert_str_eq(err, "assignment malformed (lengths)");
    close(tap[0]);
    close(tap[1]);
    close(lfd);
}
END_TEST

START_TEST(a_huge_environment_is_refused_before_sending)
{
    size_t big = ASSIGN_MAX;
    char *v = malloc(big + 3);
    char *env[] = {v, NULL};
    struct assign a = {
        .so_path = "/x.so", .envp = env, .listen_fd = 0, .db_fd = -1, .sb_fd = 0, .ruleset_fd = -1};

    ck_assert_ptr_nonnull(v);
    memset(v, 'x', big + 2);
    v[0] = 'V';
    v[1] = '=';
    v[big + 2] = '\0';
    ck_assert_int_eq(assign_send(pair[0], &a), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    free(v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("assign");
    TCase *tc = tcase_create("assign");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, an_assignment_arrives_whole);
    tcase_add_test(tc, optional_parts_stay_absent);
    tcase_add_test(tc, a_closed_socket_is_no_error);
    tcase_add_test(tc, forged_messages_are_refused);
    tcase_add_test(tc, a_cut_message_is_refused);
    tcase_add_test(tc, a_huge_environment_is_refused_before_sending);
    suite_add_tcase(s, tc);
    return check_main_run(s);
}
