/*
 * Spare processes: up to spare_processes generic instances, each exec'd
 * fresh from fngate-spare (functions/sdk/fnsdk_spare.c) before any function
 * needs it, waiting on a socket for an assignment (assign.h).  A cold start
 * of a function with a handler.so takes one and sends it the function's
 * descriptors, identity, limits and sandbox instead of paying a vfork+exec;
 * a replacement is exec'd a little later, off the cold start's path.  Unlike
 * a zygote's forks, every spare is its own exec: no address-space layout,
 * stack canary or memory is shared between instances or functions.  The
 * spares are the supervisor's own children (proc_spawn), so reaping, the
 * parent-death signal and the exit log work as for any instance; a taken
 * spare's pid becomes its instance's.
 */
#ifndef FNGATE_SPARE_H
#define FNGATE_SPARE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct childsetup;
struct event_base;
struct metrics;

struct spare_pool;

/* One spare taken out of the pool, owned by the caller until spare_free. */
struct spare {
    struct spare *next;
    pid_t pid;
    int sock;   /* our end of its socket; the caller may take it before spare_free */
    int log_fd; /* its stdout and stderr: the instance's log once assigned */
    int64_t spawned_ns;
    const char *gone; /* why it was let go, for its exit line */
};

/* A pool keeping WANT spares (0: none; nothing is spawned until
 * spare_pool_fill) of the program PATH (NULL: fngate-spare next to the
 * running fngate, else the installed one).  Figures go to MX (may be
 * NULL).  Returns NULL when out of memory (logged). */
struct spare_pool *spare_pool_new(struct event_base *base, struct metrics *mx, int want,
                                  const char *path);
/* Closes every waiting spare's socket (each exits 0 and is reaped as
 * usual); spare_pool_free(NULL) is a no-op. */
void spare_pool_free(struct spare_pool *sp);
/* Changes how many are kept (a reload); extra ones are let go. */
void spare_pool_set(struct spare_pool *sp, int want);
/* Spawns what is missing, now.  For start-up and tests. */
void spare_pool_fill(struct spare_pool *sp);
/* While HOLD(ARG) is true a due replacement waits (looked at again every
 * few milliseconds): the supervisor holds it during a cold burst, whose
 * instances need the CPU a spare's exec would take. */
void spare_pool_set_hold(struct spare_pool *sp, bool (*hold)(void *arg), void *arg);
/* Lets every waiting spare go and spawns no more (the gateway stops). */
void spare_pool_stop(struct spare_pool *sp);

/* A ready spare, or NULL when none waits.  A replacement is spawned
 * later, not now: the caller is in a cold start. */
struct spare *spare_pool_take(struct spare_pool *sp);
/* Sends the instance's set-up CS to S in one sendmsg (assign_send).  0, or -1 with errno (the spare
 * is then useless: spare_free kills it, and its exit is logged when reaped). */
int spare_assign(struct spare_pool *sp, struct spare *s, const struct childsetup *cs);
/* After a successful spare_assign: the instance has the pid and the log
 * pipe, this forgets them.  After a failed one: SIGKILLs it and keeps its
 * pid to log its exit.  spare_free(sp, NULL) is a no-op. */
void spare_free(struct spare_pool *sp, struct spare *s, bool assigned);

/* Whether PID is a spare (waiting, or killed and not yet reaped). */
bool spare_pool_has(const struct spare_pool *sp, pid_t pid);
/* If PID was a spare: logs its exit (pid, status, uptime, what it wrote),
 * forgets it, schedules a replacement and returns true. */
bool spare_pool_reaped(struct spare_pool *sp, pid_t pid, int status, int64_t now);
/* How many wait now, and how many are wanted. */
int spare_pool_ready(const struct spare_pool *sp);
int spare_pool_wanted(const struct spare_pool *sp);

#endif
