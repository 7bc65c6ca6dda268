/*
 * Functions in the running gateway.  Each has its own listening socket
 * under a level-triggered watch: a waiting connection with no idle instance
 * means spawn.  The watch fires once per burst and is paused until the
 * maintenance timer sees the queue empty, so under load the supervisor runs
 * at the timer's pace.  Identity, sandbox and environment are rebuilt on a
 * new generation; instances of an older generation retire between requests.
 */
#include "config.h"

#include "sup.h"
#include "inst.h"
#include "supfn.h"

#include "backlog.h"
#include "conf.h"
#include "ctl.h"
#include "discover.h"
#include "ident.h"
#include "instio.h"
#include "log.h"
#include "metrics.h"
#include "police.h"
#include "pool/poolstat.h"
#include "poolctl.h"
#include "probe.h"
#include "preflight.h"
#include "proc.h"
#include "refuse.h"
#include "reqlog.h"
#include "sandbox.h"
#include "scoreboard.h"
#include "scale.h"
#include "sock.h"
#include "watch.h"
#include "status.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

/* After SIGUSR1 (request timeout) an SDK instance answers 504 and exits at
 * once; this is how long it gets before SIGKILL. */
#define SUPFN_TIMEOUT_KILL_MS 1000
/* An instance still STARTING after this long is taken for a program that
 * does not use libfngate (it never writes its slot): counted as busy. */
#define SUPFN_STARTING_MAX_MS 2000
/* A spare-born instance not ready after this long is killed (police.c):
 * a cold start is about a millisecond; Lambda allows an init 10 s. */
#define SUPFN_START_TIMEOUT_MS 10000
/* After this many crashes in a row without serving a request, what is
 * queued for a function with no live instance is answered 503 by the
 * supervisor instead of waiting for nginx's read timeout. */
#define SUPFN_REFUSE_AFTER 3

/* Who F runs as and its sandbox, from its (new) settings; on failure F
 * keeps what it had. */
static int supfn_ident(struct sup_fn *f, char *err, size_t errlen)
{
    struct ident id;
    struct sandbox_fn *box;
    char tmp_base[4096];

    if (ident_function(f->sup->conf, f->desc.name, &f->desc.set, &id, err, errlen) < 0)
        return -1;
    snprintf(tmp_base, sizeof(tmp_base), "%s/tmp", f->sup->conf->gw.socket_dir);
    box = sandbox_fn_new(&f->desc, &id, tmp_base, err, errlen);
    if (!box)
        return -1;
    sandbox_fn_free(f->sandbox);
    f->sandbox = box;
    f->id = id;
    return 0;
}

static void supfn_env_free(char **envp)
{
    if (!envp)
        return;
    for (char **e = envp; *e; e++)
        free(*e);
    free(envp);
}

/* The whole environment of an instance: nothing of the gateway's leaks in
 * (DATABASE_URL above all), only PATH, the FNGATE_ settings the SDK reads,
 * and the function's env.KEY entries. */
static char **supfn_env_build(const struct sup_fn *f)
{
    const struct fn_settings *s = &f->desc.set;
    size_t n = 0, cap = s->n_env + 16;
    char **envp = calloc(cap, sizeof(*envp));

    if (!envp)
        return NULL;
#define ENV_ADD(...)                                                                               \
    do {                                                                                           \
        if (asprintf(&envp[n], __VA_ARGS__) < 0) {                                                 \
            envp[n] = NULL;                                                                        \
            goto fail;                                                                             \
        }                                                                                          \
        n++;                                                                                       \
    } while (0)
    ENV_ADD("PATH=/usr/local/bin:/usr/bin:/bin");
    ENV_ADD("FNGATE_FUNCTION=%s", f->desc.name);
    ENV_ADD("FNGATE_SB_FD=%d", FNSDK_SCOREBOARD_FD);
    ENV_ADD("FNGATE_DB_FD=%d", FNSDK_DB_FD);
    ENV_ADD("FNGATE_MAX_BODY=%lld", (long long)s->max_body);
    ENV_ADD("FNGATE_MAX_REQUESTS=%ld", s->max_requests);
    ENV_ADD("FNGATE_QUEUE_TIMEOUT_MS=%lld", (long long)s->queue_timeout_ms);
    ENV_ADD("FNGATE_REQUEST_TIMEOUT_MS=%lld", (long long)s->request_timeout_ms);
    if (sandbox_fn_tmpdir(f->sandbox))
        ENV_ADD("TMPDIR=%s", sandbox_fn_tmpdir(f->sandbox));
    for (size_t i = 0; i < s->n_env; i++)
        ENV_ADD("%s=%s", s->env[i].key, s->env[i].value);
#undef ENV_ADD
    envp[n] = NULL;
    return envp;
fail:
    supfn_env_free(envp);
    return NULL;
}

static void supfn_snapshot(struct sup_fn *f, int64_t now, struct scale_state *st)
{
    memset(st, 0, sizeof(*st));
    st->max_instances = f->desc.set.max_instances;
    st->min_instances =
        (f->removed || f->sup->state == SUP_STOPPING) ? 0 : f->desc.set.min_instances;
    st->backoff = now < f->spawn_after_ns;
    double served_ns = f->served_ns;
    uint64_t served_n = f->served_n;
    for (struct inst *in = f->insts; in; in = in->next) {
        uint32_t state;
        inst_served(in, &served_ns, &served_n);
        if (in->term_ns || in->timeout_ns || in->gen != f->gen) {
            st->stopping++;
            continue;
        }
        st->live++;
        state = FNSDK_SCOREBOARD_LOAD(in->scoreboard->slot->state);
        /* One holding kept connections takes a new one only when nobody
         * else has for a while (fnsdk_loop.c): it is not free for it. */
        if (state == FNSDK_SCOREBOARD_IDLE && FNSDK_SCOREBOARD_LOAD(in->scoreboard->slot->kept))
            st->kept++;
        else if (state == FNSDK_SCOREBOARD_IDLE)
            st->idle++;
        else if (state == FNSDK_SCOREBOARD_STARTING &&
                 now - in->spawned_ns < (int64_t)SUPFN_STARTING_MAX_MS * 1000000)
            st->starting++;
    }
    st->svc_ns = served_n ? (int64_t)(served_ns / (double)served_n) : 0;
    /* A cold burst's later instances are exec'd (one spare at most is
     * waiting, and its replacement waits for the burst to end). */
    st->start_ns = f->exec_start_ns ? f->exec_start_ns : f->start_ns;
    st->burst = f->burst;
}

/* Spawns what the queue and min_instances call for.  Returns the queue
 * length it saw (-1: unknown). */
int supfn_scale_q(struct sup_fn *f, int64_t now)
{
    struct scale_state st;
    int n, q;

    if (f->listen_fd < 0)
        return 0;
    if (f->desc.disabled)
        return refuse_disabled(f->sup->base, f->listen_fd, f->desc.name, f->desc.disabled), 0;
    supfn_snapshot(f, now, &st);
    q = sock_queue_len(f->listen_fd);
    if (q > 0 && st.live == 0 && f->crashes >= SUPFN_REFUSE_AFTER) {
        char msg[400];
        int refused;
        snprintf(msg, sizeof(msg),
                 "{\"error\":\"function %s cannot start: %s\",\"function\":\"%s\"}", f->desc.name,
                 f->last_exit, f->desc.name);
        refused = refuse_queued(f->sup->base, f->listen_fd, f->desc.name, msg);
        metrics_fn_rejected(f->metrics, METRICS_REJ_CANNOT_START, refused);
        if (refused > 0)
            log_warnx("[fn %s] %d crashes in a row without serving (last: %s): answered 503 to "
                      "%d queued request%s",
                      f->desc.name, f->crashes, f->last_exit, refused, refused == 1 ? "" : "s");
        q = sock_queue_len(f->listen_fd);
    }
    st.queued = q;
    if (scale_burst_over(&st))
        f->burst = st.burst = false;
    /* Idle instances take a waiting connection within microseconds.  A
     * queue that outlives a tick with idle instances around means a wakeup
     * was lost: do not count on them. */
    if (q > 0 && st.idle > 0) {
        if (!f->stuck_since_ns)
            f->stuck_since_ns = now;
        else if (now - f->stuck_since_ns > (int64_t)SUP_TICK_MS * 2 * 1000000)
            st.idle = 0;
    } else {
        f->stuck_since_ns = 0;
    }
    n = scale_spawn_count(&st);
    int64_t at = n > 0 ? sup_now_ns() : 0; /* the burst trace's clock, not NOW */
    for (int i = 0; i < n; i++) {
        if (inst_spawn(f, now) < 0)
            break;
    }
    if (n > 0)
        log_debug(
            "[fn %s] queue %d, idle %d, starting %d: spawned %d (at %lld ns; request %lld ns, "
            "start %lld ns, burst %d)",
            f->desc.name, q, st.idle, st.starting, n, (long long)at, (long long)st.svc_ns,
            (long long)st.start_ns, (int)st.burst);
    return q;
}

void supfn_scale(struct sup_fn *f, int64_t now)
{
    (void)supfn_scale_q(f, now);
}

/* Timeouts, stop escalation (police.c decides), idle reaping. */
void supfn_police(struct sup_fn *f, int64_t now)
{
    const struct fn_settings *set = &f->desc.set;
    struct police_limits lim = {set->request_timeout_ms, f->sup->conf->gw.stop_timeout_ms,
                                SUPFN_TIMEOUT_KILL_MS, SUPFN_START_TIMEOUT_MS};
    struct police_view *views[4096];
    int64_t ages[4096];
    struct inst *idle[4096];
    size_t n = 0;
    int n_idle = 0, live = 0;

    for (struct inst *in = f->insts; in && n < 4096; in = in->next) {
        in->pv = (struct police_view){.pid = in->pid,
                                      .slot = in->scoreboard->slot,
                                      .pi = &in->pi,
                                      .spawned_ns = in->spawned_ns,
                                      .term_ns = in->term_ns,
                                      .timeout_ns = in->timeout_ns,
                                      .kill_ns = in->kill_ns,
                                      .reports_ready = in->spare};
        views[n++] = &in->pv;
    }
    police_fn_judge(f->pol, views, n, &lim, now);
    for (struct inst *in = f->insts; in; in = in->next) {
        struct fnsdk_scoreboard_slot *sl = in->scoreboard->slot;
        int64_t ready =
            police_ns_between(in->spawned_ns, (int64_t)FNSDK_SCOREBOARD_LOAD(sl->ready_ns));

        if (!in->ready_logged && FNSDK_SCOREBOARD_LOAD(sl->ready_ns)) {
            in->ready_logged = true;
            inst_spare_done(in);
            if (ready > 0 && ready < (int64_t)10 * 1000000000) {
                f->start_ns = ready;
                if (!in->spare)
                    f->exec_start_ns = ready;
            }
            if (in->spare)
                log_debug("[fn %s pid %d] ready in %.3f ms (trace ns: woke %lld assign %lld %lld "
                          "received %lld setup %lld dlopen %lld main %lld ready %lld)",
                          f->desc.name, (int)in->pid, (double)ready / 1e6,
                          (long long)in->spawned_ns, (long long)in->exec_ns[0],
                          (long long)in->exec_ns[2],
                          (long long)FNSDK_SCOREBOARD_LOAD(sl->spare_ns[0]),
                          (long long)FNSDK_SCOREBOARD_LOAD(sl->spare_ns[1]),
                          (long long)FNSDK_SCOREBOARD_LOAD(sl->spare_ns[2]),
                          (long long)FNSDK_SCOREBOARD_LOAD(sl->main_ns),
                          (long long)FNSDK_SCOREBOARD_LOAD(sl->ready_ns));
            else
                log_debug("[fn %s pid %d] ready in %.3f ms (trace ns: woke %lld spawn %lld %lld "
                          "execve %lld main %lld ready %lld)",
                          f->desc.name, (int)in->pid, (double)ready / 1e6,
                          (long long)in->spawned_ns, (long long)in->exec_ns[0],
                          (long long)in->exec_ns[2], (long long)in->exec_ns[1],
                          (long long)FNSDK_SCOREBOARD_LOAD(sl->main_ns),
                          (long long)FNSDK_SCOREBOARD_LOAD(sl->ready_ns));
        }
        if (FNSDK_SCOREBOARD_LOAD(sl->requests) > 0)
            f->crashes = 0;
        switch (in->pv.verdict) {
        case POLICE_NONE:
            break;
        case POLICE_TIMEOUT:
        case POLICE_CHECK_HOLDER:
        case POLICE_CHECK:
            log_warnx("[fn %s pid %d] %s (%lld ms)", f->desc.name, (int)in->pid,
                      police_verdict_text(in->pv.verdict), (long long)set->request_timeout_ms);
            in->why = WHY_TIMEOUT;
            if (in->pv.verdict == POLICE_TIMEOUT) {
                in->timeout_ns = now;
                metrics_inst_stopping(in->metrics, METRICS_EXIT_TIMEOUT);
            }
            inst_signal(in, in->pv.verdict == POLICE_TIMEOUT ? SIGUSR1 : SIGUSR2);
            continue;
        case POLICE_KILL_START:
            log_warnx("[fn %s pid %d] not ready %lld ms after its start: SIGKILL", f->desc.name,
                      (int)in->pid, (long long)((now - in->spawned_ns) / 1000000));
            in->why = WHY_START;
            in->kill_ns = now;
            inst_signal(in, SIGKILL);
            continue;
        case POLICE_KILL_TIMEOUT:
        case POLICE_KILL_STUCK:
            if (in->pv.verdict == POLICE_KILL_STUCK)
                log_warnx("[fn %s pid %d] still running %lld ms after SIGTERM: SIGKILL",
                          f->desc.name, (int)in->pid, (long long)((now - in->term_ns) / 1000000));
            in->why = in->pv.verdict == POLICE_KILL_STUCK ? WHY_STUCK : WHY_TIMEOUT;
            in->kill_ns = now;
            inst_signal(in, SIGKILL);
            continue;
        }
        if (in->kill_ns || in->term_ns || in->timeout_ns)
            continue;
        if (in->gen != f->gen) {
            inst_stop(in, WHY_RETIRED, now);
            continue;
        }
        live++;
        if (in->pv.idle_ms >= 0 && n_idle < 4096) {
            /* Insertion sort, oldest first: a handful of entries. */
            int j = n_idle++;
            while (j > 0 && ages[j - 1] < in->pv.idle_ms) {
                ages[j] = ages[j - 1];
                idle[j] = idle[j - 1];
                j--;
            }
            ages[j] = in->pv.idle_ms;
            idle[j] = in;
        }
    }
    if (f->removed || f->sup->state == SUP_STOPPING)
        return;
    int reap = scale_reap_count(ages, n_idle, live, set->min_instances, set->idle_timeout_ms);
    for (int i = 0; i < reap; i++)
        inst_stop(idle[i], WHY_IDLE, now);
}

/* ------------------------------------------------------------------------
 * Functions
 */

/* Every SUPFN_BURST_US of a cold start, until an instance is ready, the queue
 * is looked at again: the rest of a burst arrives after the first connection
 * woke us, and with the socket not watched meanwhile the maintenance tick
 * (SUP_TICK_MS) would be the next look, 10 ms of a slow function's burst
 * waiting for instances never started.  Once one serves, the tick decides. */
#define SUPFN_BURST_US 1000

static void supfn_burst_again(struct sup_fn *f)
{
    struct timeval tv = {0, SUPFN_BURST_US};
    if (f->ev_burst && !f->removed && !evtimer_pending(f->ev_burst, NULL))
        evtimer_add(f->ev_burst, &tv);
}

static void supfn_burst(evutil_socket_t fd, short what, void *arg)
{
    struct sup_fn *f = arg;
    int64_t now = sup_now_ns();
    struct scale_state st;
    (void)fd;
    (void)what;

    if (f->removed || f->desc.disabled)
        return;
    supfn_snapshot(f, now, &st);
    if (st.starting == 0 || st.live > st.starting)
        return;
    if (supfn_scale_q(f, now) > 0)
        supfn_burst_again(f);
}

static void supfn_readable(evutil_socket_t fd, short what, void *arg)
{
    struct sup_fn *f = arg;
    int64_t now = sup_now_ns();
    struct scale_state st;
    (void)fd;
    (void)what;

    if (f->desc.disabled) {
        refuse_disabled(f->sup->base, f->listen_fd, f->desc.name, f->desc.disabled);
        return;
    }
    /* A cold start: someone is certainly waiting, so start the first
     * instance before asking the kernel how many wait (the sock_diag round
     * trip is then off the critical path); the scale step below adds what
     * the rest of a burst needs. */
    supfn_snapshot(f, now, &st);
    if (st.live == 0)
        f->burst = true;
    if (st.live == 0 && !st.backoff && st.stopping < st.max_instances)
        inst_spawn(f, now);
    /* Stamps the arrivals now, not a tick later: queue_timeout counts from here. */
    backlog_police(f->backlog, f->metrics, f->sup->base, f->listen_fd, f->desc.set.queue_size,
                   f->desc.set.queue_timeout_ms, now);
    supfn_scale(f, now);
    /* The connection is (or will be) taken by an instance; until the tick
     * sees the queue empty, more arrivals must not wake us one by one. */
    event_del(f->ev_listen);
    f->armed = false;
    sup_tick_ensure(f->sup);
    supfn_burst_again(f);
}

void supfn_arm(struct sup_fn *f)
{
    if (!f->armed && f->ev_listen && !f->removed && event_add(f->ev_listen, NULL) == 0)
        f->armed = true;
}

/* Unlinks the socket so no new connection can arrive; what is queued is
 * still served. */
void supfn_remove(struct sup_fn *f)
{
    if (f->removed)
        return;
    f->removed = true;
    if (f->ev_listen)
        event_del(f->ev_listen);
    f->armed = false;
    if (f->sock_path)
        unlink(f->sock_path);
    sup_tick_ensure(f->sup);
}

void supfn_free(struct sup_fn *f)
{
    if (!f)
        return;
    while (f->insts) {
        struct inst *in = f->insts;
        f->insts = in->next;
        inst_free(in);
    }
    metrics_fn_free(f->metrics);
    if (f->ev_listen)
        event_free(f->ev_listen);
    if (f->ev_burst)
        event_free(f->ev_burst);
    police_fn_free(f->pol);
    if (f->listen_fd >= 0)
        close(f->listen_fd);
    if (f->sock_path && !f->removed)
        unlink(f->sock_path);
    free(f->sock_path);
    backlog_free(f->backlog);
    supfn_env_free(f->envp);
    sandbox_fn_free(f->sandbox);
    discover_fn_clear(&f->desc);
    free(f);
}

/* Takes ownership of *D (zeroing it) and opens the function's socket. */
struct sup_fn *supfn_new(struct sup *s, struct discover_fn *d, char *err, size_t errlen)
{
    struct sup_fn *f = calloc(1, sizeof(*f));

    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->sup = s;
    f->listen_fd = -1;
    f->desc = *d;
    memset(d, 0, sizeof(*d));
    f->argv[0] = f->desc.handler;
    if (!f->desc.disabled && supfn_ident(f, err, errlen) < 0)
        goto fail;
    f->envp = supfn_env_build(f);
    f->backlog = backlog_new(f->desc.name);
    if (!f->envp || !f->backlog ||
        asprintf(&f->sock_path, "%s/fn/%s.sock", s->conf->gw.socket_dir, f->desc.name) < 0) {
        f->sock_path = NULL;
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    f->listen_fd = sock_listen(f->sock_path, backlog_listen_size(f->desc.set.queue_size),
                               s->conf->gw.socket_mode, s->sock_gid, err, errlen);
    if (f->listen_fd < 0)
        goto fail;
    f->ev_listen = event_new(s->base, f->listen_fd, EV_READ | EV_PERSIST, supfn_readable, f);
    f->ev_burst = evtimer_new(s->base, supfn_burst, f);
    if (!f->ev_listen || !f->ev_burst) {
        snprintf(err, errlen, "event_new failed");
        goto fail;
    }
    f->metrics = metrics_fn_new(s->metrics, &f->desc, f->listen_fd);
    f->pol = police_fn_new(f->sock_path);
    supfn_arm(f);
    if (f->desc.disabled)
        log_warnx("[fn %s] disabled, answering 503 until fixed: %s", f->desc.name,
                  f->desc.disabled);
    return f;
fail:
    f->removed = true; /* do not unlink a path some other process may own */
    supfn_free(f);
    return NULL;
}

struct sup_fn *supfn_find(struct sup *s, const char *name)
{
    for (struct sup_fn *f = s->fns; f; f = f->next) {
        if (!f->removed && strcmp(f->desc.name, name) == 0)
            return f;
    }
    return NULL;
}

/* A new binary or new settings: later spawns use them, and the current
 * instances retire between requests. */
void supfn_regenerate(struct sup_fn *f, struct discover_fn *d, const char *why, int64_t now)
{
    char **envp;
    char err[CONF_ERR_MAX];
    int retired = 0;

    discover_fn_clear(&f->desc);
    f->desc = *d;
    memset(d, 0, sizeof(*d));
    f->so_broken = false;
    f->argv[0] = f->desc.handler;
    if (!f->desc.disabled && supfn_ident(f, err, sizeof(err)) < 0)
        log_warnx("[fn %s] %s: keeping its previous identity and sandbox", f->desc.name, err);
    envp = supfn_env_build(f);
    if (envp) {
        supfn_env_free(f->envp);
        f->envp = envp;
    } else {
        log_warnx("[fn %s] out of memory building the environment: keeping the old one",
                  f->desc.name);
    }
    f->gen++;
    f->crashes = 0;
    f->spawn_after_ns = 0;
    for (struct inst *in = f->insts; in; in = in->next) {
        if (!in->term_ns) {
            inst_stop(in, WHY_RETIRED, now);
            retired++;
        }
    }
    log_info("[fn %s] %s: generation %u, retiring %d instance%s", f->desc.name, why, f->gen,
             retired, retired == 1 ? "" : "s");
    supfn_scale(f, now);
}
