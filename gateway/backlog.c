/*
 * The queue police.  nginx connects straight to a function's listening
 * socket and the kernel queues the connection until an instance accepts; the
 * supervisor is off that path.  Two limits still need an answer from someone
 * when every instance is busy: queue_timeout (the SDK can only enforce it
 * when an instance finally accepts, seconds late) and queue_size (the kernel
 * enforces a listen backlog by refusing the connect, which nginx reports as
 * 502).  So the socket listens with a large backlog and, on every tick while
 * a queue exists, the supervisor reads it through sock_diag: its length and
 * the inode of every waiting client, head first.  The first look that sees an
 * inode stamps it; connections at the head whose stamp is queue_timeout old,
 * and any beyond queue_size, are accepted by the supervisor and answered 503
 * with Retry-After by refuse.c.  Accepting takes from the head, so overflow
 * drops the oldest request (the one nearest its queue_timeout anyway), not
 * the newest as the kernel would.
 */
#include "config.h"

#include "backlog.h"

#include "log.h"
#include "metrics.h"
#include "refuse.h"
#include "sock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The most inodes one look keeps (net.core.somaxconn is 4096 by default). */
#define BACKLOG_MAX 16384
/* The most connections one look answers: bounded work per event. */
#define BACKLOG_BUDGET 512
#define BACKLOG_RETRY_AFTER_S 1
#define BACKLOG_LOG_EVERY_NS (1000LL * 1000000)

/* Scratch for sock_queue_peek, shared: the supervisor is one thread. */
static uint32_t backlog_inos[BACKLOG_MAX];

struct backlog_entry {
    uint32_t ino;
    int64_t seen_ns;
};

struct backlog {
    char *name;                     /* owned: the function's, for the log */
    struct backlog_entry *q, *next; /* owned: the last look, head first; scratch */
    int n, cap;
    uint64_t rejected[BACKLOG_N_REASONS];
    uint64_t logged[BACKLOG_N_REASONS]; /* rejected[] at the last log line */
    int64_t logged_ns;
};

struct backlog *backlog_new(const char *fn_name)
{
    struct backlog *b = calloc(1, sizeof(*b));

    if (!b)
        return NULL;
    b->name = strdup(fn_name);
    if (!b->name) {
        backlog_free(b);
        return NULL;
    }
    return b;
}

void backlog_free(struct backlog *b)
{
    if (!b)
        return;
    free(b->name);
    free(b->q);
    free(b->next);
    free(b);
}

int backlog_listen_size(int queue_size)
{
    return sock_diag_available() ? 65535 : queue_size;
}

uint64_t backlog_rejected(const struct backlog *b, enum backlog_reason reason)
{
    return b && reason < BACKLOG_N_REASONS ? b->rejected[reason] : 0;
}

/* Connections leave a queue only from its head and arrive only at its tail,
 * so what the last look saw and is still there comes first, in the same
 * order.  A client that went away reads as inode 0: it inherits the stamp
 * of the one before it. */
int backlog_track(struct backlog *b, const uint32_t *inos, int n, int64_t now_ns,
                  int64_t timeout_ms)
{
    int i = 0, expired = 0;
    int64_t prev = 0;
    bool matching = true;

    if (n > BACKLOG_MAX)
        n = BACKLOG_MAX;
    if (n > b->cap) {
        /* Grown only as queues are seen: an idle function costs nothing. */
        int cap = b->cap ? b->cap : 64;
        struct backlog_entry *q, *next;
        while (cap < n)
            cap *= 2;
        q = realloc(b->q, (size_t)cap * sizeof(*q));
        if (q)
            b->q = q;
        next = q ? realloc(b->next, (size_t)cap * sizeof(*next)) : NULL;
        if (next)
            b->next = next;
        if (!q || !next) {
            n = b->cap; /* out of memory: track what fits */
            if (b->n > n)
                b->n = n;
        } else {
            b->cap = cap;
        }
    }
    for (int k = 0; k < n; k++) {
        int64_t seen = now_ns;
        if (inos[k] == 0 && k > 0) {
            seen = prev;
        } else if (matching && inos[k] != 0) {
            int j = i;
            while (j < b->n && b->q[j].ino != inos[k])
                j++;
            if (j < b->n) {
                seen = b->q[j].seen_ns;
                i = j + 1;
            } else {
                matching = false; /* new from here on: the tail */
            }
        }
        b->next[k].ino = inos[k];
        b->next[k].seen_ns = seen;
        prev = seen;
    }
    {
        struct backlog_entry *t = b->q;
        b->q = b->next;
        b->next = t;
        b->n = n;
    }
    if (timeout_ms <= 0)
        return 0;
    while (expired < n && now_ns - b->q[expired].seen_ns >= timeout_ms * 1000000)
        expired++;
    return expired;
}

static void backlog_log(struct backlog *b, int64_t now_ns)
{
    uint64_t qt = b->rejected[BACKLOG_QUEUE_TIMEOUT] - b->logged[BACKLOG_QUEUE_TIMEOUT];
    uint64_t ov = b->rejected[BACKLOG_OVERLOAD] - b->logged[BACKLOG_OVERLOAD];

    if ((!qt && !ov) || (b->logged_ns && now_ns - b->logged_ns < BACKLOG_LOG_EVERY_NS))
        return;
    log_warnx("[fn %s] answered 503 to %llu request%s past queue_timeout and %llu beyond "
              "queue_size",
              b->name, (unsigned long long)qt, qt == 1 ? "" : "s", (unsigned long long)ov);
    memcpy(b->logged, b->rejected, sizeof(b->logged));
    b->logged_ns = now_ns;
}

static int backlog_accept(int listen_fd)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0 || (errno != EINTR && errno != ECONNABORTED))
            return fd;
    }
}

/* How long the connection the police just took has waited, by its client's
 * inode; -1 if the last look did not see it (it is newer). */
static int64_t backlog_waited_ns(const struct backlog *b, int fd, int64_t now_ns)
{
    uint32_t peer = sock_peer_ino(fd);

    for (int j = 0; peer && j < b->n; j++) {
        if (b->q[j].ino == peer)
            return now_ns - b->q[j].seen_ns;
    }
    return -1;
}

int backlog_police(struct backlog *b, struct metrics_fn *fm, struct event_base *base, int listen_fd,
                   int queue_size, int64_t queue_timeout_ms, int64_t now_ns)
{
    int n_inos = 0, q, expired, taken = 0, flags, excess, timed_out;
    /* What refuse.c can hold without pushing out what this look took. */
    int budget = refuse_budget() < BACKLOG_BUDGET ? refuse_budget() : BACKLOG_BUDGET;
    char msg[256];

    if (!b || listen_fd < 0)
        return -1;
    q = sock_queue_peek(listen_fd, backlog_inos, BACKLOG_MAX, &n_inos);
    if (q <= 0) {
        b->n = 0;
        return q;
    }
    expired = backlog_track(b, backlog_inos, n_inos, now_ns, queue_timeout_ms);
    excess = queue_size > 0 && q - expired > queue_size ? q - expired - queue_size : 0;
    if (expired == 0 && excess == 0)
        return q;
    /* Never block the event loop (the flag is on the file description the
     * instances share; they keep it non-blocking themselves). */
    flags = fcntl(listen_fd, F_GETFL);
    if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return q;
    for (; taken < expired && taken < budget; taken++) {
        int fd = backlog_accept(listen_fd);
        int64_t waited, hold_ms = 0;
        if (fd < 0)
            break;
        /* An instance may have taken the head since the look: then this is
         * a younger one, answered when its own queue_timeout is up. */
        waited = backlog_waited_ns(b, fd, now_ns);
        if (waited < 0)
            waited = 0;
        if (waited < queue_timeout_ms * 1000000)
            hold_ms = queue_timeout_ms - waited / 1000000;
        snprintf(msg, sizeof(msg),
                 "{\"error\":\"no instance free: waited %lld ms in the queue (queue_timeout "
                 "%lld ms)\"}",
                 (long long)(waited / 1000000 + hold_ms), (long long)queue_timeout_ms);
        refuse_conn(base, fd, b->name, msg, BACKLOG_RETRY_AFTER_S, hold_ms);
        b->rejected[BACKLOG_QUEUE_TIMEOUT]++;
    }
    timed_out = taken;
    metrics_fn_rejected(fm, METRICS_REJ_QUEUE_TIMEOUT, timed_out);
    snprintf(msg, sizeof(msg),
             "{\"error\":\"function %s is overloaded: its queue is full (queue_size %d)\"}",
             b->name, queue_size);
    for (int i = 0; i < excess && taken < budget; i++, taken++) {
        int fd = backlog_accept(listen_fd);
        if (fd < 0)
            break;
        refuse_conn(base, fd, b->name, msg, BACKLOG_RETRY_AFTER_S, 0);
        b->rejected[BACKLOG_OVERLOAD]++;
    }
    fcntl(listen_fd, F_SETFL, flags);
    metrics_fn_rejected(fm, METRICS_REJ_OVERLOAD, taken - timed_out);
    /* What was taken came off the head. */
    if (taken > b->n)
        taken = b->n;
    memmove(b->q, b->q + taken, (size_t)(b->n - taken) * sizeof(*b->q));
    b->n -= taken;
    backlog_log(b, now_ns);
    return q > taken ? q - taken : 0;
}
