/*
 * The assignment a spare process receives: everything that turns a
 * generic, already exec'd spare (functions/sdk/fn_spare.c) into one
 * function's instance, in one SOCK_SEQPACKET message on the spare's socket
 * to the supervisor.  The descriptors go as SCM_RIGHTS (the listening
 * socket, the scoreboard slot, and the pool channel and Landlock ruleset
 * when there are any); the rest (the shared object's path, its folder, its
 * environment, uid and gid, limits, sandbox on or off and the seccomp
 * program itself, so that both ways of starting load the very same filter)
 * is packed after a fixed header.  Compiled into the gateway and the spare.
 */
#ifndef FNGATE_ASSIGN_H
#define FNGATE_ASSIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sock_fprog;

struct assign {
    const char *so_path; /* the function's shared object */
    const char *cwd;     /* its folder */
    char *const *envp;   /* its whole environment, NULL-terminated */
    int listen_fd;       /* becomes fd 0 */
    int db_fd;           /* becomes fd 3; -1 for none */
    int sb_fd;           /* becomes fd 4 */
    int ruleset_fd;      /* -1 for none */
    int64_t memory_limit;
    long open_files;
    bool drop_privileges;
    uid_t uid;
    gid_t gid;
    bool sandbox;
    const struct sock_fprog *bpf; /* NULL for none */
};

/* The largest assignment: a bigger environment is refused before sending. */
#define ASSIGN_MAX (128 * 1024)

/* The bytes A takes on the wire: more than ASSIGN_MAX cannot be sent. */
size_t assign_size(const struct assign *a);

/* Sends A on SOCK in one sendmsg.  The descriptors stay the caller's.
 * Returns 0, or -1 with errno set (EMSGSIZE: too big). */
int assign_send(int sock, const struct assign *a);

/* Waits for one assignment on SOCK.  Returns it (one allocation that owns
 * every string, the environment array, the program and the received
 * descriptors, which arrive CLOEXEC), or NULL: with *ERR "" when the
 * supervisor closed the socket, else ERR says why. */
struct assign *assign_recv(int sock, char *err, size_t errlen);
/* Frees A and closes its descriptors; assign_free(NULL) is a no-op. */
void assign_free(struct assign *a);

#endif
