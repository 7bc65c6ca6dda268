/*
 * The supervisor's scheduling slice.  A cold start waits on the supervisor's
 * wake-up: under a burst every CPU runs the web server's workers, and a
 * woken supervisor with the default slice often waited a millisecond for
 * one of them to finish its own (bench_core.sh (e)'s trace: 1.4 ms from the
 * first connection to the supervisor's callback, against 0.3 to 0.5 ms
 * otherwise).  EEVDF (Linux 6.12 and later) lets any process ask for a
 * shorter slice, which gives it an earlier deadline and so the CPU on
 * wake-up; it grants no more CPU time, so the supervisor and its helpers ask
 * for the shortest (they run for microseconds at a time) and every instance
 * goes back to the default before it runs a function's code.
 */
#include "config.h"

#include "schedslice.h"

#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/sched.h>
#include <linux/sched/types.h>

static int schedslice_set(uint64_t ns)
{
    struct sched_attr a;

    memset(&a, 0, sizeof(a));
    if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) < 0)
        return -1;
    if (a.sched_policy != SCHED_NORMAL && a.sched_policy != SCHED_BATCH)
        return -1; /* the operator chose another class: leave it */
    if (a.sched_runtime == ns)
        return 0;
    a.size = sizeof(a);
    a.sched_runtime = ns;
    a.sched_flags = 0;
    return syscall(SYS_sched_setattr, 0, &a, 0) < 0 ? -1 : 0;
}

int schedslice_shorten(void)
{
    return schedslice_set(SCHEDSLICE_SHORT_NS);
}

int schedslice_reset(void)
{
    return schedslice_set(0);
}
