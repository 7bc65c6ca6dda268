/*
 * The assignment's wire format (assign.h): a fixed header, then the seccomp
 * program's instructions, the shared object's path, the folder, and the
 * environment's strings, each NUL-terminated.  One message, so a spare
 * either has all of its assignment or none of it; its length and every
 * count are checked against the bytes that arrived before anything is used.
 */
#include "config.h"

#include "assign.h"

#include "childsetup.h"

#include <errno.h>
#include <linux/filter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ASSIGN_MAGIC 0x32736766u /* "fgs2" */
#define ASSIGN_MAXFDS 4

struct assign_head {
    uint32_t magic;
    uint32_t nfds;
    uint8_t fds; /* bit I: assign_fd_at[I] is among the descriptors, in order */
    uint8_t drop, sandbox, pad;
    uint32_t uid, gid;
    int64_t memory_limit, open_files;
    uint32_t bpf_len; /* instructions */
    uint32_t nenv;
    uint32_t so_len, cwd_len, env_len; /* bytes with their NULs; cwd_len 0: none */
};
/* The instructions follow the header in a malloc'd buffer: aligned. */
_Static_assert(sizeof(struct assign_head) % 8 == 0, "assign_head keeps the program aligned");

/* The descriptors a childsetup sends, in the order they travel. */
static const size_t assign_fd_at[ASSIGN_MAXFDS] = {
    offsetof(struct childsetup, listen_fd),
    offsetof(struct childsetup, db_fd),
    offsetof(struct childsetup, scoreboard_fd),
    offsetof(struct childsetup, ruleset_fd),
};
#define ASSIGN_FD(cs, i) (*(int *)(void *)((char *)(cs) + assign_fd_at[i]))
#define ASSIGN_FD_OF(cs, i) (*(const int *)(const void *)((const char *)(cs) + assign_fd_at[i]))

/* What assign_recv hands out: the public part first. */
struct assign_owned {
    struct childsetup cs;
    int fds[ASSIGN_MAXFDS];
    int nfds;
    struct sock_fprog prog;
    char **env; /* into buf */
    char *buf;  /* the message */
};

size_t assign_size(const struct childsetup *cs)
{
    size_t n = sizeof(struct assign_head) + (cs->so_path ? strlen(cs->so_path) + 1 : 0);

    if (cs->bpf)
        n += cs->bpf->len * sizeof(struct sock_filter);
    if (cs->cwd)
        n += strlen(cs->cwd) + 1;
    for (char *const *e = cs->envp; e && *e; e++)
        n += strlen(*e) + 1;
    return n;
}

int assign_send(int sock, const struct childsetup *cs)
{
    struct assign_head h;
    struct iovec iov[6];
    struct msghdr mh;
    union {
        char buf[CMSG_SPACE(ASSIGN_MAXFDS * sizeof(int))];
        struct cmsghdr align;
    } cm;
    struct cmsghdr *c;
    int fds[ASSIGN_MAXFDS], nfds = 0, niov = 0;
    size_t env_len = 0, total;
    char *env = NULL;
    int rc = -1;

    if (!cs->so_path) {
        errno = EINVAL;
        return -1;
    }
    memset(&h, 0, sizeof(h));
    h.magic = ASSIGN_MAGIC;
    for (int i = 0; i < ASSIGN_MAXFDS; i++) {
        if (ASSIGN_FD_OF(cs, i) >= 0) {
            h.fds |= (uint8_t)(1u << i);
            fds[nfds++] = ASSIGN_FD_OF(cs, i);
        }
    }
    h.nfds = (uint32_t)nfds;
    h.drop = cs->drop_privileges;
    h.sandbox = cs->sandbox;
    h.uid = (uint32_t)cs->uid;
    h.gid = (uint32_t)cs->gid;
    h.memory_limit = cs->memory_limit;
    h.open_files = cs->open_files;
    h.bpf_len = cs->bpf ? cs->bpf->len : 0;
    h.so_len = (uint32_t)strlen(cs->so_path) + 1;
    h.cwd_len = cs->cwd ? (uint32_t)strlen(cs->cwd) + 1 : 0;
    for (char *const *e = cs->envp; e && *e; e++) {
        env_len += strlen(*e) + 1;
        h.nenv++;
    }
    total = sizeof(h) + h.bpf_len * sizeof(struct sock_filter) + h.so_len + h.cwd_len + env_len;
    if (total > ASSIGN_MAX || h.bpf_len > ASSIGN_MAX_BPF) {
        errno = EMSGSIZE;
        return -1;
    }
    h.env_len = (uint32_t)env_len;
    env = malloc(env_len ? env_len : 1);
    if (!env)
        return -1;
    env_len = 0;
    for (char *const *e = cs->envp; e && *e; e++) {
        size_t n = strlen(*e) + 1;
        memcpy(env + env_len, *e, n);
        env_len += n;
    }

    iov[niov].iov_base = &h;
    iov[niov++].iov_len = sizeof(h);
    if (h.bpf_len) {
        iov[niov].iov_base = cs->bpf->filter;
        iov[niov++].iov_len = h.bpf_len * sizeof(struct sock_filter);
    }
    iov[niov].iov_base = (void *)cs->so_path;
    iov[niov++].iov_len = h.so_len;
    if (h.cwd_len) {
        iov[niov].iov_base = (void *)cs->cwd;
        iov[niov++].iov_len = h.cwd_len;
    }
    iov[niov].iov_base = env;
    iov[niov++].iov_len = env_len;

    memset(&mh, 0, sizeof(mh));
    memset(&cm, 0, sizeof(cm));
    mh.msg_iov = iov;
    mh.msg_iovlen = (size_t)niov;
    if (nfds) {
        mh.msg_control = cm.buf;
        mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    ssize_t n;
    do
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        goto out;
    if ((size_t)n != total) {
        errno = EMSGSIZE;
        goto out;
    }
    rc = 0;
out:
    free(env);
    return rc;
}

void assign_free(struct childsetup *cs)
{
    struct assign_owned *o = (struct assign_owned *)cs;

    if (!o)
        return;
    for (int i = 0; i < o->nfds; i++)
        close(o->fds[i]);
    free(o->env);
    free(o->buf);
    free(o);
}

/* Takes LEN bytes at *P out of the END-bounded message. */
static char *assign_take(char **p, const char *end, size_t len)
{
    char *at = *p;
    if ((size_t)(end - at) < len)
        return NULL;
    *p += len;
    return at;
}

/* A string of LEN bytes (its NUL the last) at *P. */
static const char *assign_string(char **p, const char *end, uint32_t len)
{
    char *s = len ? assign_take(p, end, len) : NULL;
    if (!s || s[len - 1] != '\0' || strlen(s) != len - 1)
        return NULL;
    return s;
}

/* How many bits of MASK are set. */
static uint32_t assign_bits(unsigned mask)
{
    uint32_t n = 0;
    for (; mask; mask >>= 1)
        n += mask & 1u;
    return n;
}

struct childsetup *assign_recv(int sock, char *err, size_t errlen)
{
    struct assign_owned *o = calloc(1, sizeof(*o));
    struct assign_head h;
    struct iovec iov;
    struct msghdr mh;
    union {
        char buf[CMSG_SPACE(ASSIGN_MAXFDS * sizeof(int))];
        struct cmsghdr align;
    } cm;
    char *p, *end, *bpf;
    ssize_t n;
    int k = 0;

    err[0] = '\0';
    if (!o || !(o->buf = malloc(ASSIGN_MAX))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    childsetup_init(&o->cs);
    iov.iov_base = o->buf;
    iov.iov_len = ASSIGN_MAX;
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cm.buf;
    mh.msg_controllen = sizeof(cm.buf);
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        goto fail; /* closed: nothing to say */
    if (n < 0) {
        snprintf(err, errlen, "recvmsg: %s", strerror(errno));
        goto fail;
    }
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int got = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < got; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + (size_t)i * sizeof(int), sizeof(int));
            if (o->nfds < ASSIGN_MAXFDS)
                o->fds[o->nfds++] = fd;
            else
                close(fd);
        }
    }
    if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n < sizeof(h)) {
        snprintf(err, errlen, "assignment truncated (%zd bytes)", n);
        goto fail;
    }
    memcpy(&h, o->buf, sizeof(h));
    p = o->buf + sizeof(h);
    end = o->buf + n;
    if (h.magic != ASSIGN_MAGIC || h.nfds != (uint32_t)o->nfds || h.fds >> ASSIGN_MAXFDS ||
        h.nfds != assign_bits(h.fds) || h.bpf_len > ASSIGN_MAX_BPF || h.nenv > h.env_len) {
        snprintf(err, errlen, "assignment malformed (%d descriptors)", o->nfds);
        goto fail;
    }
    bpf = h.bpf_len ? assign_take(&p, end, h.bpf_len * sizeof(struct sock_filter)) : NULL;
    o->cs.so_path = assign_string(&p, end, h.so_len);
    o->cs.cwd = h.cwd_len ? assign_string(&p, end, h.cwd_len) : NULL;
    if ((h.bpf_len && !bpf) || !o->cs.so_path || (h.cwd_len && !o->cs.cwd) ||
        (size_t)(end - p) != h.env_len) {
        snprintf(err, errlen, "assignment malformed (lengths)");
        goto fail;
    }
    o->env = calloc((size_t)h.nenv + 1, sizeof(char *));
    if (!o->env) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < h.nenv; i++) {
        char *nul = memchr(p, '\0', (size_t)(end - p));
        if (!nul) {
            snprintf(err, errlen, "assignment malformed (environment)");
            goto fail;
        }
        o->env[i] = p;
        p = nul + 1;
    }
    if (p != end) {
        snprintf(err, errlen, "assignment malformed (environment)");
        goto fail;
    }
    if (bpf) {
        o->prog.len = (unsigned short)h.bpf_len;
        o->prog.filter = (struct sock_filter *)(void *)bpf;
        o->cs.bpf = &o->prog;
    }
    o->cs.envp = o->env;
    for (int i = 0; i < ASSIGN_MAXFDS; i++) {
        if (h.fds & (1u << i))
            ASSIGN_FD(&o->cs, i) = o->fds[k++];
    }
    o->cs.memory_limit = h.memory_limit;
    o->cs.open_files = (long)h.open_files;
    o->cs.drop_privileges = h.drop;
    o->cs.uid = (uid_t)h.uid;
    o->cs.gid = (gid_t)h.gid;
    o->cs.sandbox = h.sandbox;
    return &o->cs;
fail:
    assign_free(o ? &o->cs : NULL);
    return NULL;
}
