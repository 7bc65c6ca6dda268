/*
 * An instance's set-up: the one description of what a handler process is
 * made into before the function's code runs (its program, folder and
 * environment, descriptors, limits, identity and sandbox), and the code
 * that makes it so.  The exec path fills it (inst.c, spare.c) and proc.c's
 * vfork child applies it before the execve of a static handler; assign.c
 * sends it to a waiting spare as a whole, and the spare process
 * (functions/sdk/fnsdk_spare.c) applies what it received with the same
 * function before it dlopen()s the function's shared object.  The order,
 * and why: no_new_privs and the Landlock domain first, while the ruleset's
 * descriptor is still open; its descriptors on 0..4 and nothing else;
 * default signals and an empty mask; its own session; resource limits; the
 * function's uid (and the check that root is gone); PR_SET_PDEATHSIG again
 * after the uid change, which clears it; its folder; the seccomp filter
 * last, so that nothing above needs a system call it denies.
 * Async-signal-safe: no allocation, no stdio.
 */
#ifndef FNGATE_CHILDSETUP_H
#define FNGATE_CHILDSETUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct sock_fprog;

/* Every pointer is borrowed: from the supervisor's function for the exec
 * path, from the assignment (assign_recv) in a spare. */
struct childsetup {
    /* The description: the part a spare receives (assign.c), but for the
     * exec path's program and arguments. */
    const char *path;     /* the handler the exec path execve()s; not sent */
    char *const *argv;    /* its arguments; not sent */
    const char *so_path;  /* its shared object, which a spare dlopen()s */
    const char *cwd;      /* its folder; NULL: stay */
    char *const *envp;    /* its whole environment, NULL-terminated */
    int listen_fd;        /* becomes fd 0; -1: /dev/null */
    int db_fd;            /* becomes fd 3 (the pool channel); -1: /dev/null */
    int scoreboard_fd;    /* becomes fd 4 (the scoreboard); -1: /dev/null */
    int ruleset_fd;       /* a Landlock ruleset to enter; -1 for none */
    int64_t memory_limit; /* RLIMIT_AS bytes, 0 = unlimited */
    long open_files;      /* RLIMIT_NOFILE, 0 = inherited */
    bool drop_privileges; /* setgroups/setgid/setuid to uid/gid */
    uid_t uid;
    gid_t gid;
    bool sandbox;                 /* no_new_privs, Landlock, seccomp */
    const struct sock_fprog *bpf; /* the seccomp program; NULL for none */

    /* The applying process's own, never sent: proc_spawn fills them for
     * its vfork child, the spare for itself. */
    int log_fd;      /* becomes fds 1 and 2; -1: /dev/null */
    int devnull;     /* an open /dev/null */
    const int *sigs; /* signals to reset to SIG_DFL (the rest are default) */
    int nsigs;
    pid_t parent;       /* the gateway: gone means exit 0 */
    int64_t *execve_ns; /* exec path: CLOCK_MONOTONIC just before the
                           execve (the cold-start trace); NULL: none */
};

/* CS with nothing given: every descriptor -1, no limits, no sandbox. */
void childsetup_init(struct childsetup *cs);

/* Applies CS to the calling process.  Returns 0, or -1 with errno set and
 * *WHAT naming the step that failed; returns -2 when the gateway is gone
 * already (the caller exits 0). */
int childsetup_apply(const struct childsetup *cs, const char **what);

/* The sandbox's two steps on their own: no_new_privs and the Landlock
 * domain from RULESET_FD (-1: none), first; the seccomp program BPF (NULL:
 * none), last.  0, or -1 with errno and *WHAT. */
int childsetup_enter(int ruleset_fd, const char **what);
int childsetup_seal(const struct sock_fprog *bpf, const char **what);

/* Placeholders a seccomp program may hold as the K of a BPF_JEQ
 * (sandbox.c's signal rules: a signal only to the instance itself):
 * childsetup_seal loads a copy where they read the caller's own pid and
 * its negation (its own process group).  Neither can be a pid, nor minus
 * one (pid_max is at most 2^22). */
#define CHILDSETUP_BPF_SELF 0x7fff5e1fU
#define CHILDSETUP_BPF_NEG_SELF 0x80005e1fU
/* The longest seccomp program an instance loads: the kernel's BPF_MAXINSNS.
 * childsetup_seal patches a copy of that size on its stack (32 KiB), and an
 * assignment carries no more (assign.h), so what can be sent can be loaded. */
#define CHILDSETUP_BPF_MAX 4096

/* Writes "fngate: cannot start instance: WHAT: strerror(errno)" to fd 2 and
 * _exit(CODE)s. */
void childsetup_fail(const char *what, int code) __attribute__((noreturn));

#endif
