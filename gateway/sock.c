/*
 * Listening sockets and queue inspection.  The queue length comes from
 * sock_diag (UNIX_DIAG_RQLEN on an exact-inode request): for a listening unix
 * socket the kernel reports the number of connections not yet accepted, the
 * one figure that neither poll() nor SIOCINQ gives and that php-fpm users
 * cannot see.  One netlink socket is kept open and reused for every query.
 */
#include "config.h"

#include "sock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

static int sock_nl_fd = -1;

static int sock_queue_diag(int fd);

static int sock_mkdir(const char *path, char *err, size_t errlen)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int sock_dir_lock(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    int fd;

    if (sock_mkdir(dir, err, errlen) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/fn", dir);
    if (sock_mkdir(path, err, errlen) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/fngate.lock", dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            snprintf(err, errlen, "%s: another fngate is running with this socket_dir", dir);
        else
            snprintf(err, errlen, "%s: cannot lock: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* True when something listens on PATH right now.  Non-blocking: a live
 * socket whose queue is full answers EAGAIN instead of making us wait for
 * someone to accept. */
static int sock_is_live(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int live;

    if (fd < 0)
        return 0;
    live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN;
    close(fd);
    return live;
}

int sock_connect(const char *path, int flags)
{
    struct sockaddr_un sa;
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int sock_listen(const char *path, int backlog, mode_t mode, gid_t gid, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd = -1;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "%s: socket path longer than %zu bytes", path,
                 sizeof(sa.sun_path) - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "%s: exists and is not a socket", path);
            return -1;
        }
        if (sock_is_live(&sa)) {
            snprintf(err, errlen, "%s: another process is listening on it", path);
            return -1;
        }
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(err, errlen, "%s: bind: %s", path, strerror(errno));
        goto fail;
    }
    /* The owner-execute bit means nothing to connect(2); nginx/fngate.inc
     * tests it (`-x`) to tell a full queue from an unknown function. */
    if (chmod(path, mode | S_IXUSR) < 0) {
        snprintf(err, errlen, "%s: chmod: %s", path, strerror(errno));
        goto fail;
    }
    if (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) {
        snprintf(err, errlen, "%s: chown: %s", path, strerror(errno));
        goto fail;
    }
    if (listen(fd, backlog) < 0) {
        snprintf(err, errlen, "%s: listen: %s", path, strerror(errno));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    unlink(path);
    return -1;
}

/* Without sock_diag (a kernel or sandbox without it), poll can still tell
 * empty from non-empty. */
static int sock_queue_poll(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN) ? 1 : 0;
}

int sock_queue_len(int fd)
{
    int n = sock_queue_diag(fd);
    return n >= 0 ? n : sock_queue_poll(fd);
}

/* One exact-inode sock_diag request for INO showing SHOW; the reply's
 * attributes are handed to EACH until it returns nonzero.  Returns what EACH
 * returned last, or -1 when the kernel did not answer.  The reply buffer holds
 * the inode list of a full 4096 queue (UNIX_DIAG_ICONS, 4 bytes each). */
static int sock_diag(unsigned ino, unsigned show, int (*each)(struct rtattr *, void *), void *arg)
{
    struct {
        struct nlmsghdr h;
        struct unix_diag_req r;
    } req;
    static union {
        char buf[65536];
        struct nlmsghdr align;
    } resp;
    struct nlmsghdr *h;
    struct unix_diag_msg *msg;
    struct rtattr *attr;
    ssize_t n;
    int len, rc = -1;

    if (sock_nl_fd < 0) {
        sock_nl_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (sock_nl_fd < 0)
            return -1;
    }
    memset(&req, 0, sizeof(req));
    req.h.nlmsg_len = sizeof(req);
    req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.h.nlmsg_flags = NLM_F_REQUEST;
    req.r.sdiag_family = AF_UNIX;
    req.r.udiag_ino = ino;
    req.r.udiag_show = show;
    req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0U;
    if (send(sock_nl_fd, &req, sizeof(req), 0) < 0)
        return -1;
    do
        n = recv(sock_nl_fd, resp.buf, sizeof(resp.buf), 0);
    while (n < 0 && errno == EINTR);
    if (n < (ssize_t)NLMSG_LENGTH(sizeof(*msg)))
        return -1;
    h = &resp.align;
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len > (size_t)n)
        return -1;
    msg = NLMSG_DATA(h);
    attr = (struct rtattr *)(msg + 1);
    len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*msg)));
    for (; RTA_OK(attr, len); attr = RTA_NEXT(attr, len)) {
        rc = each(attr, arg);
        if (rc)
            break;
    }
    return rc > 0 ? rc - 1 : -1;
}

static unsigned sock_ino(int fd)
{
    struct stat st;
    return fstat(fd, &st) < 0 ? 0 : (unsigned)st.st_ino;
}

struct sock_peek {
    uint32_t *inos;
    int max;
    int n_inos;
};

/* Returns 1 + the queue length at UNIX_DIAG_RQLEN (the last attribute of
 * the two asked for), after copying UNIX_DIAG_ICONS. */
static int sock_peek_attr(struct rtattr *attr, void *arg)
{
    struct sock_peek *pk = arg;

    if (attr->rta_type == UNIX_DIAG_ICONS && pk->inos) {
        size_t n = RTA_PAYLOAD(attr) / sizeof(uint32_t);
        if (n > (size_t)pk->max)
            n = (size_t)pk->max;
        memcpy(pk->inos, RTA_DATA(attr), n * sizeof(uint32_t));
        pk->n_inos = (int)n;
    } else if (attr->rta_type == UNIX_DIAG_RQLEN &&
               RTA_PAYLOAD(attr) >= sizeof(struct unix_diag_rqlen)) {
        struct unix_diag_rqlen *rq = RTA_DATA(attr);
        return 1 + (int)rq->udiag_rqueue;
    }
    return 0;
}

static int sock_queue_diag(int fd)
{
    struct sock_peek pk = {NULL, 0, 0};
    unsigned ino = sock_ino(fd);
    return ino ? sock_diag(ino, UDIAG_SHOW_RQLEN, sock_peek_attr, &pk) : -1;
}

int sock_queue_peek(int fd, uint32_t *inos, int max, int *n_inos)
{
    struct sock_peek pk = {inos, max, 0};
    unsigned ino = sock_ino(fd);
    int q = ino ? sock_diag(ino, UDIAG_SHOW_RQLEN | UDIAG_SHOW_ICONS, sock_peek_attr, &pk) : -1;

    *n_inos = q < 0 ? 0 : pk.n_inos;
    return q;
}

static int sock_peer_attr(struct rtattr *attr, void *arg)
{
    if (attr->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(attr) >= sizeof(uint32_t)) {
        uint32_t peer;
        memcpy(&peer, RTA_DATA(attr), sizeof(peer));
        *(uint32_t *)arg = peer; /* not in the return value: it may not fit */
        return 1;
    }
    return 0;
}

uint32_t sock_peer_ino(int fd)
{
    uint32_t peer = 0;
    unsigned ino = sock_ino(fd);

    if (!ino || sock_diag(ino, UDIAG_SHOW_PEER, sock_peer_attr, &peer) < 0)
        return 0;
    return peer;
}

bool sock_diag_available(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    bool ok = false;

    /* A listening socket to ask about: autobound to an abstract name (an
     * address of just the family), nothing in the filesystem. */
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa.sun_family)) == 0 &&
        listen(fd, 1) == 0)
        ok = sock_queue_diag(fd) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

void sock_diag_close(void)
{
    if (sock_nl_fd >= 0)
        close(sock_nl_fd);
    sock_nl_fd = -1;
}
