/*
 * The warden: a small process forked from the supervisor at start that
 * does nothing until the supervisor dies, however it dies (SIGKILL, the OOM
 * killer, a crash), and then SIGKILLs the process group of every instance
 * and spare the supervisor had: the instances, whatever they forked, and
 * those that ignore SIGTERM, cleared their PR_SET_PDEATHSIG or hang in a
 * request.  PR_SET_PDEATHSIG alone cannot promise that: a function may
 * clear it, a forked child never has it, and SIGTERM waits for the end of
 * the request in hand.  The table of groups is shared memory the
 * supervisor writes with plain stores at each spawn and reap (no system
 * call); the warden learns of the death from the end of a pipe only the
 * supervisor holds.
 */
#ifndef FNGATE_WARDEN_H
#define FNGATE_WARDEN_H

#include <stdbool.h>
#include <sys/types.h>

/* Forks the warden (again, after warden_reaped).  0, or -1 logged: the
 * gateway then runs without one (PR_SET_PDEATHSIG still applies). */
int warden_start(void);
/* PGID (an instance or spare, leader of its own group) is to die with the
 * supervisor; warden_forget when it is reaped.  No system call. */
void warden_add(pid_t pgid);
void warden_forget(pid_t pgid);
/* Whether PID is the warden (not an orphan to kill). */
bool warden_is(pid_t pid);
/* Called for every reaped child: true when PID was the warden, which is
 * logged and started again. */
bool warden_reaped(pid_t pid, int status);
/* A normal stop: the warden leaves without killing anything; reaped. */
void warden_stop(void);

#endif
