/*
 * recv() for the pool process, counting per armed socket.  The counters are
 * atomics because libpq's PQcancel, run on a short-lived thread by
 * server_cancel, reads its own socket through this recv too; the main
 * thread is the only writer of an armed socket's counter (arming, resetting
 * and every read of a server connection happen on the event loop), so
 * relaxed loads and stores suffice.  The real recv is found with
 * dlsym(RTLD_NEXT) (the C library's, or a sanitizer's interceptor), so
 * nothing changes for the reads of sockets the pool did not arm.
 */
#include "config.h"

#include "rxcount.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef ssize_t (*rxcount_recv_fn)(int, void *, size_t, int);

struct rxcount_slot {
    atomic_bool armed;
    atomic_size_t bytes;
    atomic_size_t limit; /* 0: none */
};

static struct rxcount_slot rxcount_slots[RXCOUNT_MAX_FD];
static _Atomic(rxcount_recv_fn) rxcount_real;

static ssize_t rxcount_syscall(int fd, void *buf, size_t len, int flags)
{
    return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

static rxcount_recv_fn rxcount_next(void)
{
    rxcount_recv_fn f = atomic_load_explicit(&rxcount_real, memory_order_relaxed);

    if (f == NULL) {
        /* Two threads may both look it up: they find the same function. */
        void *sym = dlsym(RTLD_NEXT, "recv");
        f = sym ? (rxcount_recv_fn)sym : rxcount_syscall;
        atomic_store_explicit(&rxcount_real, f, memory_order_relaxed);
    }
    return f;
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    struct rxcount_slot *s;
    size_t have, limit;
    ssize_t n;

    if (fd < 0 || fd >= RXCOUNT_MAX_FD ||
        !atomic_load_explicit(&rxcount_slots[fd].armed, memory_order_relaxed))
        return rxcount_next()(fd, buf, len, flags);
    s = &rxcount_slots[fd];
    have = atomic_load_explicit(&s->bytes, memory_order_relaxed);
    limit = atomic_load_explicit(&s->limit, memory_order_relaxed);
    if (limit > 0) {
        /* Past the ceiling nothing more is taken in: the caller sees no
         * data yet, and the pool, which checks rxcount_over after every
         * read, gives up on the result. */
        if (have > limit) {
            errno = EAGAIN;
            return -1;
        }
        if (len > limit - have + 1)
            len = limit - have + 1;
    }
    n = rxcount_next()(fd, buf, len, flags);
    if (n > 0 && !(flags & MSG_PEEK))
        atomic_store_explicit(&s->bytes, have + (size_t)n, memory_order_relaxed);
    return n;
}

int rxcount_arm(int fd)
{
    if (fd < 0 || fd >= RXCOUNT_MAX_FD)
        return -1;
    rxcount_reset(fd, 0);
    atomic_store_explicit(&rxcount_slots[fd].armed, true, memory_order_relaxed);
    return 0;
}

void rxcount_disarm(int fd)
{
    if (fd >= 0 && fd < RXCOUNT_MAX_FD)
        atomic_store_explicit(&rxcount_slots[fd].armed, false, memory_order_relaxed);
}

void rxcount_reset(int fd, size_t limit)
{
    if (fd < 0 || fd >= RXCOUNT_MAX_FD)
        return;
    atomic_store_explicit(&rxcount_slots[fd].bytes, 0, memory_order_relaxed);
    atomic_store_explicit(&rxcount_slots[fd].limit, limit, memory_order_relaxed);
}

void rxcount_ceil(int fd, size_t limit)
{
    if (fd >= 0 && fd < RXCOUNT_MAX_FD)
        atomic_store_explicit(&rxcount_slots[fd].limit, limit, memory_order_relaxed);
}

size_t rxcount_get(int fd)
{
    if (fd < 0 || fd >= RXCOUNT_MAX_FD ||
        !atomic_load_explicit(&rxcount_slots[fd].armed, memory_order_relaxed))
        return 0;
    return atomic_load_explicit(&rxcount_slots[fd].bytes, memory_order_relaxed);
}

int rxcount_over(int fd)
{
    size_t limit;

    if (fd < 0 || fd >= RXCOUNT_MAX_FD ||
        !atomic_load_explicit(&rxcount_slots[fd].armed, memory_order_relaxed))
        return 0;
    limit = atomic_load_explicit(&rxcount_slots[fd].limit, memory_order_relaxed);
    return limit > 0 &&
           atomic_load_explicit(&rxcount_slots[fd].bytes, memory_order_relaxed) > limit;
}
