/*
 * The spare pool (spare.h).  A spare is spawned like an instance (proc.c:
 * its own session, only fds 0..4, default signals) with its end of a
 * SOCK_SEQPACKET socketpair on fd 3, no privileges dropped yet and an
 * empty environment: it runs no function's code until assigned, and then
 * only after taking on the function's identity and sandbox.  Replacements
 * are spawned from a timer SPARE_REFILL_MS after a take, so the exec's CPU
 * (about 1 ms on two cores) does not compete with the cold start that took
 * the spare, and held while the supervisor says a cold burst is in service;
 * a spare that dies before its assignment is replaced under a backoff, so a
 * broken fngate-spare cannot spawn in a loop.
 */
#include "config.h"

#include "spare.h"

#include "assign.h"
#include "childsetup.h"
#include "instio.h"
#include "log.h"
#include "metrics.h"
#include "proc.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#define SPARE_REFILL_MS 10
#define SPARE_BACKOFF_MAX_MS 5000
#define SPARE_HOLD_STEP_MS 5
#define SPARE_HOLD_MAX_MS 200

struct spare_pool {
    struct event_base *base;
    struct metrics *metrics;
    int want;
    bool stopped;
    struct spare *ready; /* waiting for an assignment */
    int n_ready;
    struct spare *dying; /* killed or let go, not yet reaped */
    struct event *refill_ev;
    bool (*hold)(void *arg);
    void *hold_arg;
    int64_t held_since_ns; /* 0: not held */
    int64_t backoff_ms;    /* 0: none */
    uint64_t assigned, failed;
    char path[PATH_MAX]; /* fngate-spare; "" when there is none */
    bool fixed;          /* PATH given by the caller */
};

static int64_t spare_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void spare_pool_figures(struct spare_pool *sp)
{
    metrics_set_spares(sp->metrics, sp->n_ready, sp->stopped ? 0 : sp->want, sp->assigned,
                       sp->failed);
}

/* fngate-spare next to the fngate binary (the build tree), else in the
 * installed libexec folder. */
static void spare_find(struct spare_pool *sp)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;

    sp->path[0] = '\0';
    if (n > 0) {
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            if ((size_t)snprintf(sp->path, sizeof(sp->path), "%s/fngate-spare", exe) <
                    sizeof(sp->path) &&
                access(sp->path, X_OK) == 0)
                return;
        }
    }
    snprintf(sp->path, sizeof(sp->path), "%s/fngate-spare", FNGATE_PKGLIBEXECDIR);
    if (access(sp->path, X_OK) == 0)
        return;
    log_warn("spare_processes = %d but %s cannot be run: every cold start is an exec", sp->want,
             sp->path);
    sp->path[0] = '\0';
}

static void spare_list_free(struct spare *s)
{
    while (s) {
        struct spare *next = s->next;
        if (s->sock >= 0)
            close(s->sock);
        if (s->log_fd >= 0)
            close(s->log_fd);
        free(s);
        s = next;
    }
}

/* Moves S to the dying list, SIGKILLed when KILL, else its socket closed
 * (it exits 0 on its own). */
static void spare_let_go(struct spare_pool *sp, struct spare *s, bool kill_it)
{
    s->gone = kill_it ? "killed: its assignment failed" : "let go";
    if (kill_it && kill(s->pid, SIGKILL) < 0 && errno != ESRCH)
        log_warn("spare pid %d: kill", (int)s->pid);
    if (s->sock >= 0)
        close(s->sock);
    s->sock = -1;
    s->next = sp->dying;
    sp->dying = s;
}

static int spare_spawn(struct spare_pool *sp)
{
    char *argv[] = {"fngate-spare", NULL}, *envp[] = {NULL};
    struct childsetup cs;
    struct spare *s;
    int pair[2];

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        log_warn("spare: socketpair");
        return -1;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        log_warn("spare: spawn");
        close(pair[0]);
        close(pair[1]);
        return -1;
    }
    childsetup_init(&cs);
    cs.path = sp->path;
    cs.argv = argv;
    cs.cwd = "/";
    cs.envp = envp;
    cs.db_fd = pair[1]; /* its fd 3 */
    s->sock = pair[0];
    s->log_fd = -1;
    s->pid = proc_spawn(&cs, &s->log_fd);
    close(pair[1]);
    if (s->pid < 0) {
        close(s->sock);
        free(s);
        return -1;
    }
    s->spawned_ns = spare_now_ns();
    s->next = sp->ready;
    sp->ready = s;
    sp->n_ready++;
    log_debug("spare pid %d spawned", (int)s->pid);
    return 0;
}

void spare_pool_fill(struct spare_pool *sp)
{
    if (!sp || sp->stopped || !sp->path[0])
        return;
    while (sp->n_ready < sp->want) {
        if (spare_spawn(sp) < 0)
            break;
    }
    spare_pool_figures(sp);
}

static void spare_refill_cb(evutil_socket_t fd, short what, void *arg)
{
    struct spare_pool *sp = arg;
    (void)fd;
    (void)what;
    /* Held at most SPARE_HOLD_MAX_MS: a function under steady load may keep
     * its burst flag, and other functions' cold starts want a spare. */
    if (sp->hold && sp->hold(sp->hold_arg)) {
        int64_t now = spare_now_ns();
        if (!sp->held_since_ns)
            sp->held_since_ns = now;
        if (now - sp->held_since_ns < (int64_t)SPARE_HOLD_MAX_MS * 1000000) {
            struct timeval tv = {0, SPARE_HOLD_STEP_MS * 1000};
            evtimer_add(sp->refill_ev, &tv);
            return;
        }
    }
    sp->held_since_ns = 0;
    spare_pool_fill(sp);
}

void spare_pool_set_hold(struct spare_pool *sp, bool (*hold)(void *arg), void *arg)
{
    if (!sp)
        return;
    sp->hold = hold;
    sp->hold_arg = arg;
}

/* Spawns the missing spares after DELAY_MS unless a refill is due already. */
static void spare_refill_later(struct spare_pool *sp, int64_t delay_ms)
{
    struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};

    if (sp->stopped || !sp->path[0] || sp->n_ready >= sp->want ||
        evtimer_pending(sp->refill_ev, NULL))
        return;
    evtimer_add(sp->refill_ev, &tv);
}

struct spare_pool *spare_pool_new(struct event_base *base, struct metrics *mx, int want,
                                  const char *path)
{
    struct spare_pool *sp = calloc(1, sizeof(*sp));

    if (!sp) {
        log_warn("spare pool");
        return NULL;
    }
    sp->base = base;
    sp->metrics = mx;
    sp->want = want;
    sp->refill_ev = evtimer_new(base, spare_refill_cb, sp);
    if (!sp->refill_ev) {
        log_warnx("spare pool: evtimer_new failed");
        free(sp);
        return NULL;
    }
    if (path) {
        snprintf(sp->path, sizeof(sp->path), "%s", path);
        sp->fixed = true;
    } else if (want > 0) {
        spare_find(sp);
    }
    spare_pool_figures(sp);
    return sp;
}

void spare_pool_stop(struct spare_pool *sp)
{
    if (!sp)
        return;
    sp->stopped = true;
    evtimer_del(sp->refill_ev);
    while (sp->ready) {
        struct spare *s = sp->ready;
        sp->ready = s->next;
        spare_let_go(sp, s, false);
    }
    sp->n_ready = 0;
    spare_pool_figures(sp);
}

void spare_pool_free(struct spare_pool *sp)
{
    if (!sp)
        return;
    spare_list_free(sp->ready);
    spare_list_free(sp->dying);
    event_free(sp->refill_ev);
    free(sp);
}

void spare_pool_set(struct spare_pool *sp, int want)
{
    if (!sp || want == sp->want)
        return;
    if (want > 0 && sp->want == 0 && !sp->fixed)
        spare_find(sp);
    sp->want = want;
    while (sp->n_ready > want) {
        struct spare *s = sp->ready;
        sp->ready = s->next;
        sp->n_ready--;
        spare_let_go(sp, s, false);
    }
    spare_pool_fill(sp);
}

struct spare *spare_pool_take(struct spare_pool *sp)
{
    struct spare *s;

    if (!sp || !sp->ready)
        return NULL;
    s = sp->ready;
    sp->ready = s->next;
    s->next = NULL;
    sp->n_ready--;
    spare_refill_later(sp, sp->backoff_ms > SPARE_REFILL_MS ? sp->backoff_ms : SPARE_REFILL_MS);
    spare_pool_figures(sp);
    return s;
}

int spare_assign(struct spare_pool *sp, struct spare *s, const struct childsetup *cs)
{
    int rc = assign_send(s->sock, cs);
    if (rc == 0) {
        sp->assigned++;
        sp->backoff_ms = 0;
    } else {
        sp->failed++;
    }
    spare_pool_figures(sp);
    return rc;
}

void spare_free(struct spare_pool *sp, struct spare *s, bool assigned)
{
    if (!s)
        return;
    if (!assigned) {
        spare_let_go(sp, s, true);
        return;
    }
    if (s->sock >= 0)
        close(s->sock);
    free(s);
}

static struct spare **spare_find_pid(struct spare **list, pid_t pid)
{
    for (struct spare **ps = list; *ps; ps = &(*ps)->next) {
        if ((*ps)->pid == pid)
            return ps;
    }
    return NULL;
}

bool spare_pool_has(const struct spare_pool *sp, pid_t pid)
{
    struct spare_pool *m = (struct spare_pool *)sp;
    return sp && (spare_find_pid(&m->ready, pid) || spare_find_pid(&m->dying, pid));
}

bool spare_pool_reaped(struct spare_pool *sp, pid_t pid, int status, int64_t now)
{
    struct spare **ps, *s;
    bool waiting = false;
    char what[96];

    if (!sp)
        return false;
    ps = spare_find_pid(&sp->ready, pid);
    if (ps) {
        waiting = true;
        sp->n_ready--;
    } else {
        ps = spare_find_pid(&sp->dying, pid);
    }
    if (!ps)
        return false;
    s = *ps;
    *ps = s->next;
    if (WIFSIGNALED(status))
        snprintf(what, sizeof(what), "killed by signal %d", WTERMSIG(status));
    else
        snprintf(what, sizeof(what), "exited with status %d", WEXITSTATUS(status));
    /* What it wrote first (fngate-spare says why it failed), then its exit
     * line, as for an instance. */
    if (s->log_fd >= 0) {
        instio_free(instio_new(sp->base, s->log_fd, "(spare)", s->pid, NULL));
        s->log_fd = -1;
    }
    if (waiting) {
        log_warnx("[spare pid %d] %s after %.3fs while waiting for an assignment", (int)pid, what,
                  (double)(now - s->spawned_ns) / 1e9);
        /* Dying before any assignment is a fault of the spare: back off. */
        sp->backoff_ms = sp->backoff_ms ? sp->backoff_ms * 2 : SPARE_REFILL_MS;
        if (sp->backoff_ms > SPARE_BACKOFF_MAX_MS)
            sp->backoff_ms = SPARE_BACKOFF_MAX_MS;
    } else {
        log_info("[spare pid %d] %s after %.3fs (%s)", (int)pid, what,
                 (double)(now - s->spawned_ns) / 1e9, s->gone ? s->gone : "let go");
    }
    s->next = NULL;
    spare_list_free(s);
    spare_refill_later(sp, sp->backoff_ms ? sp->backoff_ms : SPARE_REFILL_MS);
    spare_pool_figures(sp);
    return true;
}

int spare_pool_ready(const struct spare_pool *sp)
{
    return sp ? sp->n_ready : 0;
}

int spare_pool_wanted(const struct spare_pool *sp)
{
    return sp && !sp->stopped ? sp->want : 0;
}
