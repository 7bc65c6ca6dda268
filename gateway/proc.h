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

struct childsetup;

/* Starts the instance CS describes (childsetup.h): CS->path with CS->argv,
 * after CS's set-up; its own part (log_fd, devnull, sigs, parent) is
 * proc_spawn's to fill, whatever CS holds there.  On success returns its pid
 * and stores in *LOG_FD the non-blocking read end of its stdout/stderr pipe
 * (owned by the caller).
 * Returns -1 on failure (logged); failures after the fork (exec, setuid)
 * show up as an exit status of 126/127 with the reason on the log pipe.
 * The first call records which signals the gateway handles or ignores (the
 * child resets those): install signal handlers before it. */
pid_t proc_spawn(const struct childsetup *cs, int *log_fd);

/* Descendants.  An instance is its process group's leader and the sandbox
 * keeps its descendants in that group (setsid/setpgid are denied), so
 * proc_group_kill(pid) after the instance exits kills every one of them;
 * the gateway is also a child subreaper, so a process that did leave the
 * group (an unsandboxed function's daemon) comes back to it as an orphan,
 * and proc_orphans_kill SIGKILLs every child KNOWN claims neither by its
 * pid nor by its process group (a known group is killed whole), but for
 * those the gateway had when proc_reaper_init ran and, as root, those
 * running as root (a container's PID 1 adopts everyone's orphans). */
void proc_reaper_init(void);
void proc_group_kill(pid_t pgid);
int proc_orphans_kill(bool (*known)(pid_t pid, void *arg), void *arg);

#endif
