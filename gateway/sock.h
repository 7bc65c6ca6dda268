/*
 * The listening side: one unix socket per function under <socket_dir>/fn/,
 * the lock that keeps two gateways out of one socket_dir, and the exact
 * length of a socket's accept queue read through sock_diag netlink, which is
 * what lets the supervisor spawn for a whole burst at once.  Also the one
 * client connect fngate's own commands (invoke, status) make to them.
 */
#ifndef FNGATE_SOCK_H
#define FNGATE_SOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Creates <dir> and <dir>/fn if needed and takes an exclusive flock on
 * <dir>/fngate.lock.  Returns the lock fd, or -1 with ERR set (another
 * gateway holds it, or the folder is unusable). */
int sock_dir_lock(const char *dir, char *err, size_t errlen);

/* Binds and listens on PATH with BACKLOG, then applies MODE (plus the
 * owner-execute bit, nginx/fngate.inc's mark of an fngate socket) and, when GID is
 * not (gid_t)-1, the group.  A stale socket file (nobody listening) is
 * replaced; a live one is refused.  The socket is CLOEXEC and created
 * blocking, for programs without the SDK; instances inherit it as fd 0, and
 * an SDK instance makes the shared file description non-blocking (its
 * accept must never block), so one function should not mix SDK and non-SDK
 * binaries across a reload.  Returns the fd or -1 with ERR set. */
int sock_listen(const char *path, int backlog, mode_t mode, gid_t gid, char *err, size_t errlen);

/* A unix stream socket connected to PATH (CLOEXEC, plus FLAGS such as
 * SOCK_NONBLOCK), or -1 with errno set (ENAMETOOLONG for a path that does
 * not fit). */
int sock_connect(const char *path, int flags);

/* Connections waiting in the accept queue of listening unix socket FD.  When
 * sock_diag is unavailable, 1 if any is waiting (poll), else 0. */
int sock_queue_len(int fd);

/* Like sock_queue_len (without the poll fallback: -1 when sock_diag is
 * unavailable), and copies up to MAX inodes of the waiting connections'
 * client ends into INOS, head of the queue first, setting *N_INOS.  An
 * inode is 0 for a client that has gone away. */
int sock_queue_peek(int fd, uint32_t *inos, int max, int *n_inos);

/* The inode of the other end of connected unix socket FD (for an accepted
 * connection: the client's, as sock_queue_peek lists it), 0 if unknown. */
uint32_t sock_peer_ino(int fd);

/* Whether this kernel (or sandbox) answers sock_diag queries at all. */
bool sock_diag_available(void);

/* Releases the netlink socket sock_queue_len keeps open. */
void sock_diag_close(void);

#endif
