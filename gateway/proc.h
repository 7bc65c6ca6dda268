/*
 * Starting one instance: the fork+exec with its descriptors in place (0 the
 * listening socket, 1 and 2 a pipe into the gateway's log, 3 the database
 * channel, 4 the scoreboard), a clean environment, resource limits, its own
 * session, and an unprivileged user when the gateway runs as root.
 */
#ifndef FNGATE_PROC_H
#define FNGATE_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct proc_spec {
    const char *path;     /* the handler */
    const char *cwd;      /* its folder */
    char *const *argv;    /* borrowed */
    char *const *envp;    /* borrowed */
    int listen_fd;        /* becomes fd 0 */
    int db_fd;            /* becomes fd 3; -1 for none */
    int sb_fd;            /* becomes fd 4 */
    int64_t memory_limit; /* RLIMIT_AS bytes, 0 = unlimited */
    long open_files;      /* RLIMIT_NOFILE */
    bool drop_privileges; /* setgroups/setgid/setuid to uid/gid */
    uid_t uid;
    gid_t gid;
    bool sandbox;   /* no_new_privs and the seccomp filter (gateway/sandbox.c) */
    int ruleset_fd; /* a Landlock ruleset to enter; -1 for none */
    /* Where the child stores CLOCK_MONOTONIC just before its execve (the
     * vfork child shares our memory): the cold-start trace.  May be NULL. */
    int64_t *execve_ns;
};

/* Starts the instance.  On success returns its pid and stores in *LOG_FD the
 * non-blocking read end of its stdout/stderr pipe (owned by the caller).
 * Returns -1 on failure (logged); failures after the fork (exec, setuid)
 * show up as an exit status of 126/127 with the reason on the log pipe.
 * The first call records which signals the gateway handles or ignores (the
 * child resets those): install signal handlers before it. */
pid_t proc_spawn(const struct proc_spec *spec, int *log_fd);

/* Descendants.  An instance is its process group's leader and the sandbox
 * keeps its descendants in that group (setsid/setpgid are denied), so
 * proc_group_kill(pid) after the instance exits kills every one of them;
 * the gateway is also a child subreaper, so a process that did leave the
 * group (an unsandboxed function's daemon) comes back to it as an orphan,
 * and proc_orphans_kill SIGKILLs every child KNOWN does not claim, but for
 * those the gateway had when proc_reaper_init ran and, as root, those
 * running as root (a container's PID 1 adopts everyone's orphans). */
void proc_reaper_init(void);
void proc_group_kill(pid_t pgid);
int proc_orphans_kill(bool (*known)(pid_t pid, void *arg), void *arg);

#endif
