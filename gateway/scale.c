/*
 * Scaling arithmetic.  Kept free of I/O and clocks so that every rule about
 * when to spawn or stop an instance is a unit test away.
 */
#include "config.h"

#include "scale.h"

/* What an instance is busy with per request, as a multiple of the request
 * time its slot reports: that covers the handler only, not the FastCGI
 * exchange around it nor the wait for the front end to close (about as long
 * again for a short handler), and a burst keeps arriving while its queue
 * drains, so the instances must serve faster than it comes. */
#define SCALE_BUSY_FACTOR 4

int scale_spawn_count(const struct scale_state *s)
{
    int room, want, uncovered, queued;

    if (s->backoff)
        return 0;
    room = s->max_instances - (s->live + s->stopping);
    if (room <= 0)
        return 0;
    want = s->min_instances - s->live;
    /* An unknown queue length still means someone is waiting. */
    queued = s->queued < 0 ? 1 : s->queued;
    uncovered = queued - s->idle - s->starting;
    if ((s->burst || (s->idle == 0 && s->live == s->starting)) && s->svc_ns > 0 &&
        s->start_ns / (s->svc_ns * SCALE_BUSY_FACTOR) > 1) {
        /* Each instance there now, even a busy or starting one, serves
         * about this many of the queued requests before a new one could.
         * That holds for the whole cold burst, not only until its first
         * instance is ready: a busy first instance and a long queue are
         * what a burst looks like the moment that one starts serving, and
         * taking that for steady load started all of max_instances, most
         * of them ready after the burst was served (bench_core.sh (e)). */
        int64_t per = s->start_ns / (s->svc_ns * SCALE_BUSY_FACTOR);
        int64_t need = ((int64_t)queued + per - 1) / per;
        /* Not one holding kept connections: it leaves new connections to
         * others (and takes none once it holds all it may). */
        int serving = s->live - s->kept;
        if (need - serving < uncovered)
            uncovered = (int)(need - serving);
    }
    if (uncovered > want)
        want = uncovered;
    if (want <= 0)
        return 0;
    return want < room ? want : room;
}

bool scale_burst_over(const struct scale_state *s)
{
    return s->queued == 0 && (s->idle > 0 || s->kept > 0);
}

int64_t scale_backoff_ms(int crashes)
{
    int64_t ms = 50;

    if (crashes <= 1)
        return 0;
    for (int i = 2; i < crashes && ms < 10000; i++)
        ms *= 2;
    return ms < 10000 ? ms : 10000;
}

int scale_reap_count(const int64_t *idle_ms_oldest_first, int n_idle, int live, int min_instances,
                     int64_t idle_timeout_ms)
{
    int n = 0;

    while (n < n_idle && live - n > min_instances && idle_ms_oldest_first[n] >= idle_timeout_ms)
        n++;
    return n;
}
