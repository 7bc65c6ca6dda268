/*
 * One running instance of a function: spawning it with its scoreboard slot,
 * stdio and pool channel, signalling it, asking it to stop between requests,
 * and logging and classifying its exit (a crash feeds the function's
 * backoff).  Owned by its sup_fn's list (supfn.c); the supervisor (sup.c)
 * reaps and hands the exit status here.
 */
#ifndef FNGATE_INST_H
#define FNGATE_INST_H

#include "police.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Why an instance was asked to stop; shown in its exit log line. */
enum inst_why { WHY_NONE, WHY_IDLE, WHY_RETIRED, WHY_DRAIN, WHY_TIMEOUT, WHY_STUCK, WHY_START };

struct sup_fn;

/* One running instance.  Owned by its sup_fn's list. */
struct inst {
    struct inst *next;
    struct sup_fn *fn; /* owner */
    pid_t pid;
    unsigned gen;
    struct scoreboard *scoreboard; /* owned */
    struct instio *io;             /* owned: its stdout and stderr */
    struct metrics_inst *metrics;  /* owned: its figures */
    struct police_inst pi;         /* the supervisor's own observations */
    struct police_view pv;
    int64_t spawned_ns;
    int64_t exec_ns[3]; /* proc_spawn called, the child's execve, proc_spawn returned:
                           the cold-start trace */
    int64_t term_ns;    /* SIGTERM sent (0: not asked to stop) */
    int64_t timeout_ns; /* SIGUSR1 sent for a request timeout */
    int64_t kill_ns;    /* SIGKILL sent */
    enum inst_why why;
    bool ready_logged;
    bool spare; /* started through a spare process, not an exec */
    /* Our end of the spare's socket (-1: none), closed once the instance is
     * ready: closed while the assignment's descriptors are still in flight,
     * it sets the kernel's unix garbage collector going (a kworker woken,
     * about 40 us of the cold start's CPU on the 2-vCPU VM, ftrace). */
    int spare_sock;
};

/* Starts one instance of F.  Returns 0, or -1 (logged). */
int inst_spawn(struct sup_fn *f, int64_t now);
/* Closes IN's end of its spare's socket, once the spare has read it. */
void inst_spare_done(struct inst *in);
/* Frees IN without touching the process; inst_free(NULL) is a no-op. */
void inst_free(struct inst *in);
/* kill(2), logging anything but ESRCH. */
void inst_signal(struct inst *in, int sig);
/* Asks an instance to stop between requests. */
void inst_stop(struct inst *in, enum inst_why why, int64_t now);
/* Adds what IN's slot claims it served (requests and their total
 * duration, clamped) to *NS and *N. */
void inst_served(const struct inst *in, double *ns, uint64_t *n);
/* Logs the exit, classifies it, frees the instance and scales its function. */
void inst_exited(struct inst *in, int status, int64_t now);

#endif
