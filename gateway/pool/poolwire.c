/*
 * The settings message's wire format: a fixed header (struct poolwire_head,
 * native byte order: both ends are this build's programs on this machine),
 * then the connection string, without its NUL.  The connection string
 * travels in its own iovec, so no copy of the password is made here; on
 * the receiving side it lands in the caller's buffer.
 */
#include "config.h"

#include "poolwire.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define POOLWIRE_VERSION 2

struct poolwire_head {
    uint32_t version;
    int32_t pool_size;
    int32_t min_pool;
    int32_t stmt_cache;
    int64_t db_wait_timeout_ms;
    int64_t max_result;
    int64_t max_query;
    uint32_t prepared;
    uint32_t conninfo_len;
};
_Static_assert(sizeof(struct poolwire_head) + POOL_CONNINFO_MAX + 1 <= POOLWIRE_SETTINGS_MAX,
               "POOLWIRE_SETTINGS_MAX holds the largest settings message");

int poolwire_send_settings(int fd, const struct pool_settings *set)
{
    struct poolwire_head h;
    size_t len = strlen(set->conninfo);
    struct iovec iov[2];
    struct msghdr msg;
    ssize_t n;

    if (len > POOL_CONNINFO_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memset(&h, 0, sizeof(h));
    h.version = POOLWIRE_VERSION;
    h.pool_size = set->pool_size;
    h.min_pool = set->min_pool;
    h.stmt_cache = set->stmt_cache;
    h.db_wait_timeout_ms = set->db_wait_timeout_ms;
    h.max_result = set->max_result;
    h.max_query = set->max_query;
    h.prepared = set->prepared;
    h.conninfo_len = (uint32_t)len;
    iov[0].iov_base = &h;
    iov[0].iov_len = sizeof(h);
    iov[1].iov_base = (void *)set->conninfo;
    iov[1].iov_len = len;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    do
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if ((size_t)n != sizeof(h) + len) {
        errno = EMSGSIZE;
        return -1;
    }
    return 0;
}

int poolwire_recv_settings(int fd, char *buf, size_t len, struct pool_settings *set)
{
    struct poolwire_head h;
    ssize_t n;

    do
        n = recv(fd, buf, len - 1, 0);
    while (n < 0 && errno == EINTR);
    if (n < (ssize_t)sizeof(h)) {
        errno = ENOMSG;
        return -1;
    }
    memcpy(&h, buf, sizeof(h));
    if (h.version != POOLWIRE_VERSION || h.conninfo_len > POOL_CONNINFO_MAX ||
        (size_t)n != sizeof(h) + h.conninfo_len || h.pool_size < 1) {
        errno = EPROTO;
        return -1;
    }
    buf[n] = '\0';
    memset(set, 0, sizeof(*set));
    set->conninfo = buf + sizeof(h);
    set->pool_size = h.pool_size;
    set->min_pool = h.min_pool;
    set->stmt_cache = h.stmt_cache;
    set->db_wait_timeout_ms = h.db_wait_timeout_ms;
    set->max_result = h.max_result;
    set->max_query = h.max_query;
    set->prepared = h.prepared != 0;
    return 0;
}

int poolwire_send_hello(int fd, const struct pool_hello *hello, const char *conninfo, int chan,
                        int flags)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } cm;
    struct iovec iov[2] = {{(void *)hello, sizeof(*hello)},
                           {(void *)conninfo, conninfo ? hello->conninfo_len : 0}};
    struct msghdr msg;
    struct cmsghdr *c;

    memset(&msg, 0, sizeof(msg));
    memset(&cm, 0, sizeof(cm));
    msg.msg_iov = iov;
    msg.msg_iovlen = conninfo ? 2 : 1;
    if (chan >= 0) {
        msg.msg_control = cm.buf;
        msg.msg_controllen = sizeof(cm.buf);
        c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &chan, sizeof(int));
    }
    return sendmsg(fd, &msg, MSG_NOSIGNAL | flags) < 0 ? -1 : 0;
}
