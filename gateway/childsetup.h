/*
 * The set-up an instance makes on itself before the function's code runs,
 * in this order: no_new_privs and its Landlock domain, its descriptors on
 * 0..4 and nothing else, default signals and an empty mask, its own
 * session, resource limits, the function's uid (and the check that root is
 * gone), PR_SET_PDEATHSIG again after the uid change, its folder, and the
 * seccomp filter last.  One copy of it serves both ways an instance starts:
 * proc.c's vfork child before the execve of a static handler, and a spare
 * process (functions/sdk/fn_spare.c) before it dlopen()s the function's
 * shared object.  Async-signal-safe: no allocation, no stdio.
 */
#ifndef FNGATE_CHILDSETUP_H
#define FNGATE_CHILDSETUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct sock_fprog;

struct childsetup {
    int src[5];  /* what goes to fds 0..4; -1 for DEVNULL */
    int devnull; /* an open /dev/null */
    /* Signals to reset to SIG_DFL (the rest are default already). */
    const int *sigs;
    int nsigs;
    int64_t memory_limit; /* RLIMIT_AS bytes, 0 = unlimited */
    long open_files;      /* RLIMIT_NOFILE, 0 = inherited */
    bool drop_privileges; /* setgroups/setgid/setuid to uid/gid */
    uid_t uid;
    gid_t gid;
    bool sandbox;                 /* no_new_privs, Landlock, seccomp */
    int ruleset_fd;               /* a Landlock ruleset to enter; -1 for none */
    const struct sock_fprog *bpf; /* the seccomp program; NULL for none */
    const char *cwd;              /* NULL: stay */
    pid_t parent;                 /* the gateway: gone means exit 0 */
};

/* Applies CS to the calling process.  Returns 0, or -1 with errno set and
 * *WHAT naming the step that failed; returns -2 when the gateway is gone
 * already (the caller exits 0). */
int childsetup_apply(const struct childsetup *cs, const char **what);

/* The sandbox's two steps on their own: no_new_privs and the Landlock
 * domain from RULESET_FD (-1: none), first; the seccomp program BPF (NULL:
 * none), last.  0, or -1 with errno and *WHAT. */
int childsetup_enter(int ruleset_fd, const char **what);
int childsetup_seal(const struct sock_fprog *bpf, const char **what);

/* Writes "fngate: cannot start instance: WHAT: strerror(errno)" to fd 2 and
 * _exit(CODE)s. */
void childsetup_fail(const char *what, int code) __attribute__((noreturn));

#endif
