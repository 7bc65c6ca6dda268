/*
 * Unit tests for gateway/assign.c, the message that carries an instance's
 * set-up description (struct childsetup) to a spare process: every field
 * that is sent arrives as it was (strings, the environment, the seccomp
 * program, each of the descriptors or its absence, limits, identity), the
 * parts that are not sent arrive as childsetup_init leaves them, the
 * largest assignment arrives and one byte more is refused before sending,
 * and anything short, forged or changed is refused with its reason and no
 * received descriptor left open, never half used.
 */
#include "config.h"

#include "assign.h"
#include "childsetup.h"

#include <check.h>

#include "check_main.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <signal.h>
#include <stdio.h>
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

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* A received descriptor: another number for the same file, CLOEXEC; an
 * absent one stays -1. */
static void same_fd(int got, int sent)
{
    if (sent < 0) {
        ck_assert_int_eq(got, -1);
        return;
    }
    ck_assert_int_ge(got, 0);
    ck_assert_int_ne(got, sent);
    ck_assert(same_file(got, sent));
    ck_assert_int_eq(fcntl(got, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}

/* GOT is SENT, field by field, for the part that travels; the rest is as
 * childsetup_init leaves it. */
static void same_setup(const struct childsetup *got, const struct childsetup *sent)
{
    int i;

    ck_assert_str_eq(got->so_path, sent->so_path);
    if (sent->cwd)
        ck_assert_str_eq(got->cwd, sent->cwd);
    else
        ck_assert_ptr_null(got->cwd);
    for (i = 0; sent->envp && sent->envp[i]; i++)
        ck_assert_str_eq(got->envp[i], sent->envp[i]);
    ck_assert_ptr_null(got->envp[i]);
    same_fd(got->listen_fd, sent->listen_fd);
    same_fd(got->db_fd, sent->db_fd);
    same_fd(got->scoreboard_fd, sent->scoreboard_fd);
    same_fd(got->ruleset_fd, sent->ruleset_fd);
    ck_assert_int_eq(got->memory_limit, sent->memory_limit);
    ck_assert_int_eq(got->open_files, sent->open_files);
    ck_assert_int_eq(got->drop_privileges, sent->drop_privileges);
    ck_assert_int_eq(got->uid, sent->uid);
    ck_assert_int_eq(got->gid, sent->gid);
    ck_assert_int_eq(got->sandbox, sent->sandbox);
    if (sent->bpf) {
        ck_assert_ptr_nonnull(got->bpf);
        ck_assert_int_eq(got->bpf->len, sent->bpf->len);
        ck_assert_mem_eq(got->bpf->filter, sent->bpf->filter,
                         sent->bpf->len * sizeof(struct sock_filter));
    } else {
        ck_assert_ptr_null(got->bpf);
    }
    /* Not sent: the exec path's and the receiver's own. */
    ck_assert_ptr_null(got->path);
    ck_assert_ptr_null(got->argv);
    ck_assert_int_eq(got->log_fd, -1);
    ck_assert_int_eq(got->devnull, -1);
    ck_assert_ptr_null(got->sigs);
    ck_assert_int_eq(got->nsigs, 0);
    ck_assert_int_eq(got->parent, 0);
    ck_assert_ptr_null(got->execve_ns);
}

/* Sends CS and checks that it arrives whole. */
static void round_trip(const struct childsetup *cs)
{
    struct childsetup *got;
    char err[160];

    ck_assert_int_eq(assign_send(pair[0], cs), 0);
    got = assign_recv(pair[1], err, sizeof(err));
    ck_assert_msg(got != NULL, "%s", err);
    same_setup(got, cs);
    assign_free(got);
}

START_TEST(every_field_arrives_whole)
{
    static const int sigs[] = {SIGPIPE};
    struct sock_filter insns[3] = {{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}};
    struct sock_fprog prog = {3, insns};
    char *env[] = {"PATH=/bin", "FNGATE_FUNCTION=hello", "EMPTY=", "", "WITH_EQ=a=b", NULL};
    char *argv[] = {"handler", NULL};
    int64_t ns = 0;
    struct childsetup cs;
    int fds = open_fds();

    childsetup_init(&cs);
    cs.path = "/srv/fn/hello/handler";
    cs.argv = argv;
    cs.so_path = "/srv/fn/hello/handler.so";
    cs.cwd = "/srv/fn/hello";
    cs.envp = env;
    cs.listen_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cs.db_fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    cs.scoreboard_fd = open("/", O_RDONLY | O_CLOEXEC);
    cs.ruleset_fd = open("/tmp", O_RDONLY | O_CLOEXEC);
    cs.memory_limit = (int64_t)64 << 20;
    cs.open_files = 256;
    cs.drop_privileges = true;
    cs.uid = 61200;
    cs.gid = 61201;
    cs.sandbox = true;
    cs.bpf = &prog;
    /* The sender's own part stays behind. */
    cs.log_fd = 1;
    cs.devnull = 2;
    cs.sigs = sigs;
    cs.nsigs = 1;
    cs.parent = getpid();
    cs.execve_ns = &ns;
    round_trip(&cs);
    close(cs.listen_fd);
    close(cs.db_fd);
    close(cs.scoreboard_fd);
    close(cs.ruleset_fd);
    ck_assert_int_eq(open_fds(), fds); /* assign_free closed what arrived */
    assign_free(NULL);
}
END_TEST

START_TEST(each_descriptor_travels_or_stays_absent)
{
    /* All sixteen ways of having some of the four. */
    char *env[] = {NULL};
    int files[4];
    struct childsetup cs;

    files[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    files[1] = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    files[2] = open("/", O_RDONLY | O_CLOEXEC);
    files[3] = open("/tmp", O_RDONLY | O_CLOEXEC);
    for (unsigned mask = 0; mask < 16; mask++) {
        childsetup_init(&cs);
        cs.so_path = "/x.so";
        cs.envp = env;
        cs.listen_fd = mask & 1 ? files[0] : -1;
        cs.db_fd = mask & 2 ? files[1] : -1;
        cs.scoreboard_fd = mask & 4 ? files[2] : -1;
        cs.ruleset_fd = mask & 8 ? files[3] : -1;
        round_trip(&cs);
    }
    for (int i = 0; i < 4; i++)
        close(files[i]);
}
END_TEST

START_TEST(optional_parts_stay_absent)
{
    struct childsetup cs;

    childsetup_init(&cs);
    cs.so_path = "/x.so";
    round_trip(&cs); /* no folder, no environment at all, no program */
}
END_TEST

START_TEST(extreme_values_arrive_as_they_were)
{
    char *env[] = {"A=1", NULL};
    struct childsetup cs;

    childsetup_init(&cs);
    cs.so_path = "/x.so";
    cs.envp = env;
    cs.memory_limit = INT64_MAX;
    cs.open_files = LONG_MAX;
    cs.drop_privileges = true;
    cs.uid = (uid_t)0xfffffffeu;
    cs.gid = (gid_t)0xfffffffeu;
    round_trip(&cs);
    cs.memory_limit = -1;
    cs.open_files = -1;
    cs.uid = 0;
    cs.gid = 0;
    round_trip(&cs);
}
END_TEST

START_TEST(the_largest_assignment_arrives_and_one_byte_more_is_refused)
{
    char *v = malloc(ASSIGN_MAX + 1);
    char *env[] = {v, NULL};
    struct childsetup cs;
    size_t fill;

    ck_assert_ptr_nonnull(v);
    childsetup_init(&cs);
    cs.so_path = "/x.so";
    cs.cwd = "/";
    cs.envp = env;
    strcpy(v, "V=");
    fill = ASSIGN_MAX - assign_size(&cs);
    memset(v + 2, 'x', fill);
    v[2 + fill] = '\0';
    ck_assert_uint_eq(assign_size(&cs), ASSIGN_MAX);
    round_trip(&cs);

    v[2 + fill] = 'y';
    v[3 + fill] = '\0';
    ck_assert_uint_eq(assign_size(&cs), ASSIGN_MAX + 1);
    errno = 0;
    ck_assert_int_eq(assign_send(pair[0], &cs), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    free(v);
}
END_TEST

START_TEST(the_longest_program_arrives_and_one_instruction_more_is_refused)
{
    struct sock_filter *insns = calloc(ASSIGN_MAX_BPF + 1, sizeof(*insns));
    struct sock_fprog prog = {ASSIGN_MAX_BPF, insns};
    struct childsetup cs;

    ck_assert_ptr_nonnull(insns);
    for (int i = 0; i <= ASSIGN_MAX_BPF; i++)
        insns[i].k = (uint32_t)i;
    childsetup_init(&cs);
    cs.so_path = "/x.so";
    cs.sandbox = true;
    cs.bpf = &prog;
    round_trip(&cs);
    prog.len = ASSIGN_MAX_BPF + 1;
    errno = 0;
    ck_assert_int_eq(assign_send(pair[0], &cs), -1);
    ck_assert_int_eq(errno, EMSGSIZE);
    free(insns);
}
END_TEST

START_TEST(many_empty_strings_arrive)
{
    /* Each string takes at least its NUL: as many as the bytes allow. */
    enum { N = 100000 };
    char **env = calloc(N + 1, sizeof(char *));
    struct childsetup cs;

    ck_assert_ptr_nonnull(env);
    for (int i = 0; i < N; i++)
        env[i] = "";
    childsetup_init(&cs);
    cs.so_path = "/x.so";
    cs.envp = env;
    round_trip(&cs);
    free(env);
}
END_TEST

START_TEST(no_shared_object_is_not_sent)
{
    struct childsetup cs;

    childsetup_init(&cs);
    errno = 0;
    ck_assert_int_eq(assign_send(pair[0], &cs), -1);
    ck_assert_int_eq(errno, EINVAL);
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

/* ---- hostile messages: a real assignment, captured, then changed ---------- */

struct raw {
    char buf[ASSIGN_MAX + 16];
    size_t len;
    int fds[8];
    int nfds;
};

/* What assign_send puts on the wire for CS (the descriptors as received). */
static void capture(const struct childsetup *cs, struct raw *r)
{
    int tap[2];
    union {
        char buf[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } cm;
    struct iovec iov = {r->buf, sizeof(r->buf)};
    struct msghdr mh = {0};
    struct cmsghdr *c;
    ssize_t n;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, tap), 0);
    ck_assert_int_eq(assign_send(tap[0], cs), 0);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cm.buf;
    mh.msg_controllen = sizeof(cm.buf);
    n = recvmsg(tap[1], &mh, MSG_CMSG_CLOEXEC);
    ck_assert_int_gt(n, 0);
    r->len = (size_t)n;
    r->nfds = 0;
    for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        int got = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        memcpy(r->fds + r->nfds, CMSG_DATA(c), (size_t)got * sizeof(int));
        r->nfds += got;
    }
    close(tap[0]);
    close(tap[1]);
}

/* Sends R's bytes with its first NFDS descriptors (as many as it has, and
 * copies of /dev/null past them). */
static void replay(const struct raw *r, int nfds)
{
    union {
        char buf[CMSG_SPACE(8 * sizeof(int))];
        struct cmsghdr align;
    } cm;
    struct iovec iov = {(void *)r->buf, r->len};
    struct msghdr mh = {0};
    struct cmsghdr *c;
    int fds[8];

    for (int i = 0; i < nfds; i++)
        fds[i] = i < r->nfds ? r->fds[i] : open("/dev/null", O_RDONLY | O_CLOEXEC);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (nfds) {
        mh.msg_control = cm.buf;
        mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    ck_assert_int_eq(sendmsg(pair[0], &mh, 0), (ssize_t)r->len);
    for (int i = r->nfds; i < nfds; i++)
        close(fds[i]);
}

/* The next message is refused with exactly WANT, and nothing it brought
 * stays open. */
static void refused(const char *want)
{
    char err[160];
    int fds = open_fds();

    ck_assert_ptr_null(assign_recv(pair[1], err, sizeof(err)));
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(open_fds(), fds);
}

static void raw_free(struct raw *r)
{
    for (int i = 0; i < r->nfds; i++)
        close(r->fds[i]);
}

/* A real assignment with two descriptors and a short environment. */
static void sample(struct raw *r)
{
    static char *env[] = {"A=1", "B=22", NULL};
    struct childsetup cs;

    childsetup_init(&cs);
    cs.so_path = "/srv/fn/x/handler.so";
    cs.cwd = "/srv/fn/x";
    cs.envp = env;
    cs.listen_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cs.scoreboard_fd = cs.listen_fd;
    capture(&cs, r);
    close(cs.listen_fd);
    ck_assert_int_eq(r->nfds, 2);
}

/* Where NEEDLE starts in R's bytes. */
static size_t find(const struct raw *r, const char *needle)
{
    const char *at = memmem(r->buf, r->len, needle, strlen(needle));
    ck_assert_ptr_nonnull(at);
    return (size_t)(at - r->buf);
}

START_TEST(forged_messages_are_refused)
{
    char junk[64];

    memset(junk, 0x41, sizeof(junk));
    ck_assert_int_eq(send(pair[0], junk, 3, 0), 3);
    refused("assignment truncated (3 bytes)");
    ck_assert_int_eq(send(pair[0], junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
    refused("assignment malformed (0 descriptors)");
    ck_assert_int_eq(send(pair[0], "", 0, 0), 0);
    /* An empty message reads as the supervisor closing: silent. */
    {
        char err[160] = "x";
        ck_assert_ptr_null(assign_recv(pair[1], err, sizeof(err)));
        ck_assert_str_eq(err, "");
    }
}
END_TEST

START_TEST(a_message_too_big_is_refused)
{
    char *big = calloc(1, ASSIGN_MAX + 1);

    ck_assert_ptr_nonnull(big);
    ck_assert_int_eq(send(pair[0], big, ASSIGN_MAX + 1, 0), ASSIGN_MAX + 1);
    refused("assignment truncated (131072 bytes)");
    free(big);
}
END_TEST

START_TEST(descriptors_that_do_not_match_are_refused)
{
    struct raw r;
    char want[64];

    sample(&r);
    replay(&r, 2); /* the real one first: it passes */
    {
        char err[160];
        struct childsetup *got = assign_recv(pair[1], err, sizeof(err));
        ck_assert_msg(got != NULL, "%s", err);
        assign_free(got);
    }
    replay(&r, 0);
    refused("assignment malformed (0 descriptors)");
    replay(&r, 1);
    refused("assignment malformed (1 descriptors)");
    replay(&r, 3);
    refused("assignment malformed (3 descriptors)");
    replay(&r, 4);
    refused("assignment malformed (4 descriptors)");
    /* More than any assignment has: cut off by the kernel, and closed. */
    replay(&r, 5);
    snprintf(want, sizeof(want), "assignment truncated (%zu bytes)", r.len);
    refused(want);
    raw_free(&r);
}
END_TEST

START_TEST(changed_bytes_are_refused)
{
    struct raw r, x;
    size_t so, env;

    sample(&r);
    so = find(&r, "/srv/fn/x/handler.so");
    env = find(&r, "A=1");

    x = r; /* another magic */
    x.buf[0] ^= 0x01;
    replay(&x, 2);
    refused("assignment malformed (2 descriptors)");

    x = r; /* cut: its last NUL gone */
    x.len--;
    replay(&x, 2);
    refused("assignment malformed (lengths)");

    x = r; /* a byte more */
    x.buf[x.len++] = '\0';
    replay(&x, 2);
    refused("assignment malformed (lengths)");

    x = r; /* a NUL inside the path: shorter than it says */
    x.buf[so + 4] = '\0';
    replay(&x, 2);
    refused("assignment malformed (lengths)");

    x = r; /* the environment's last NUL overwritten */
    x.buf[x.len - 1] = 'x';
    replay(&x, 2);
    refused("assignment malformed (environment)");

    x = r; /* one string more than it says */
    x.buf[env + 1] = '\0';
    replay(&x, 2);
    refused("assignment malformed (environment)");
    raw_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("assign");
    TCase *tc = tcase_create("assign");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, every_field_arrives_whole);
    tcase_add_test(tc, each_descriptor_travels_or_stays_absent);
    tcase_add_test(tc, optional_parts_stay_absent);
    tcase_add_test(tc, extreme_values_arrive_as_they_were);
    tcase_add_test(tc, the_largest_assignment_arrives_and_one_byte_more_is_refused);
    tcase_add_test(tc, the_longest_program_arrives_and_one_instruction_more_is_refused);
    tcase_add_test(tc, many_empty_strings_arrive);
    tcase_add_test(tc, no_shared_object_is_not_sent);
    tcase_add_test(tc, a_closed_socket_is_no_error);
    tcase_add_test(tc, forged_messages_are_refused);
    tcase_add_test(tc, a_message_too_big_is_refused);
    tcase_add_test(tc, descriptors_that_do_not_match_are_refused);
    tcase_add_test(tc, changed_bytes_are_refused);
    suite_add_tcase(s, tc);
    return check_main_run(s);
}
