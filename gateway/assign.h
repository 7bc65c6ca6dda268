/*
 * The assignment a spare process receives: the instance's whole set-up
 * description (struct childsetup, childsetup.h), which turns a generic,
 * already exec'd spare (functions/sdk/fnsdk_spare.c) into one function's
 * instance, in one SOCK_SEQPACKET message on the spare's socket to the
 * supervisor.  The descriptors go as SCM_RIGHTS (the listening socket, the
 * pool channel, the scoreboard slot and the Landlock ruleset, each that
 * there is); the rest (the shared object's path, its folder, its
 * environment, uid and gid, limits, sandbox on or off and the seccomp
 * program itself, so that both ways of starting load the very same filter)
 * is packed after a fixed header.  What is not sent is the exec path's
 * (path, argv, execve_ns) or the receiving process's own (log_fd, devnull,
 * sigs, parent).  Compiled into the gateway and the spare.
 */
#ifndef FNGATE_ASSIGN_H
#define FNGATE_ASSIGN_H

#include "childsetup.h"

#include <stddef.h>

/* The largest assignment: a bigger environment is refused before sending. */
#define ASSIGN_MAX (128 * 1024)
/* The most seccomp instructions one carries: what a spare can load. */
#define ASSIGN_MAX_BPF CHILDSETUP_BPF_MAX

/* The bytes CS takes on the wire: more than ASSIGN_MAX cannot be sent. */
size_t assign_size(const struct childsetup *cs);

/* Sends CS on SOCK in one sendmsg.  The descriptors stay the caller's.
 * Returns 0, or -1 with errno set (EMSGSIZE: too big or too many seccomp
 * instructions; EINVAL: no shared object). */
int assign_send(int sock, const struct childsetup *cs);

/* Waits for one assignment on SOCK.  Returns it (one allocation that owns
 * every string, the environment array, the program and the received
 * descriptors, which arrive CLOEXEC; the parts that are not sent are as
 * childsetup_init leaves them), or NULL: with *ERR "" when the supervisor
 * closed the socket, else ERR says why. */
struct childsetup *assign_recv(int sock, char *err, size_t errlen);
/* Frees CS, which assign_recv returned, and closes its descriptors;
 * assign_free(NULL) is a no-op. */
void assign_free(struct childsetup *cs);

#endif
