/*
 * A short scheduling slice for the supervisor and its helpers, the default
 * for instances (see schedslice.c).  Both return 0, or -1 where the kernel
 * has no custom slices (before 6.12: it then ignores sched_runtime) or the
 * process is not in the normal class.
 */
#ifndef FNGATE_SCHEDSLICE_H
#define FNGATE_SCHEDSLICE_H

/* The shortest slice the kernel grants (0.1 ms). */
#define SCHEDSLICE_SHORT_NS 100000ULL

/* Ask for the short slice for the calling thread (children inherit it). */
int schedslice_shorten(void);

/* Back to the kernel's default slice; async-signal-safe (a vfork child). */
int schedslice_reset(void);

#endif
