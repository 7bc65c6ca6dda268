/*
 * The supervisor.  One libevent loop holds everything: a level-triggered
 * watch on each function's listening socket (a waiting connection with no
 * idle instance means spawn), libevent's self-pipe signal events (SIGCHLD,
 * SIGHUP, SIGTERM, SIGINT), one pipe per instance carrying its stderr into
 * the log under a budget (instio.c), and a single maintenance timer.  The timer runs only while
 * something needs watching (instances exist, a watch is paused, a drain is
 * under way): with every function at zero instances the gateway sleeps.
 *
 * A watch fires once per burst: the handler reads the exact queue length,
 * spawns what the queue needs, and pauses the watch so that connections the
 * instances are about to accept do not wake the supervisor again; the timer
 * re-arms it once the queue is empty.  Under load the supervisor therefore
 * runs at the timer's pace, not the request rate.
 *
 * States: RUNNING, then STOPPING after SIGTERM/SIGINT (sockets unlinked, queues
 * served, instances stopped between requests), then exit.  A reload is a step
 * inside RUNNING that either fully applies a new configuration or keeps the
 * running one.
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
#include "spare.h"
#include "warden.h"
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

int64_t sup_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------------
 * Users and environment
 */

/* Resolves the sockets' group and checks the identity settings; who each
 * function runs as is gateway/ident.c's (per function, in supfn_ident). */
static int sup_resolve_ids(const struct conf *c, bool *drop, uid_t *uid, gid_t *gid,
                           gid_t *sock_gid, char *err, size_t errlen)
{
    *drop = geteuid() == 0;
    *uid = getuid();
    *gid = getgid();
    *sock_gid = (gid_t)-1;
    if (ident_check(c, err, errlen) < 0)
        return -1;
    if (c->gw.socket_group) {
        struct group *gr = getgrnam(c->gw.socket_group);
        if (!gr) {
            snprintf(err, errlen, "%s: socket_group '%s' does not exist", c->path,
                     c->gw.socket_group);
            return -1;
        }
        *sock_gid = gr->gr_gid;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The maintenance timer
 */

void sup_tick_ensure(struct sup *s)
{
    struct timeval tv = {0, SUP_TICK_MS * 1000};
    if (s->ev_tick && !evtimer_pending(s->ev_tick, NULL))
        evtimer_add(s->ev_tick, &tv);
}

/* Whether a stopping gateway has served a function long enough: a request
 * may run request_timeout (30 s when unlimited), plus stop_timeout. */
static bool sup_drain_over(const struct sup_fn *f, int64_t now)
{
    int64_t rt = f->desc.set.request_timeout_ms ? f->desc.set.request_timeout_ms : 30000;
    int64_t elapsed_ms = (now - f->sup->stop_ns) / 1000000;
    /* Compared without adding the two: either may be huge. */
    return elapsed_ms > rt && elapsed_ms - rt > f->sup->conf->gw.stop_timeout_ms;
}

static void sup_tick(evutil_socket_t fd, short what, void *arg)
{
    struct sup *s = arg;
    int64_t now = sup_now_ns();
    bool busy = false;
    (void)fd;
    (void)what;

    metrics_tick(s->metrics, now);
    police_scan(now);
    for (struct sup_fn **pf = &s->fns; *pf;) {
        struct sup_fn *f = *pf;
        supfn_police(f, now);
        if (!f->armed || f->removed || f->n_insts < f->desc.set.min_instances) {
            backlog_police(f->backlog, f->metrics, s->base, f->listen_fd, f->desc.set.queue_size,
                           f->desc.set.queue_timeout_ms, now);
            int q = supfn_scale_q(f, now);
            if (q == 0 && !f->removed && s->state == SUP_RUNNING)
                supfn_arm(f);
            if (s->state == SUP_STOPPING && q > 0 && !f->drained && sup_drain_over(f, now)) {
                /* Served long enough: answer what is still queued. */
                int n = refuse_queued(s->base, f->listen_fd, f->desc.name,
                                      "{\"error\":\"the gateway is shutting down\"}");
                metrics_fn_rejected(f->metrics, METRICS_REJ_SHUTDOWN, n);
                log_warnx("[fn %s] still %d queued after the drain limit: answered 503 to %d",
                          f->desc.name, q, n);
                q = sock_queue_len(f->listen_fd);
            }
            if ((f->removed || s->state == SUP_STOPPING) && q == 0 && !f->drained) {
                /* Nothing queued and nothing new can arrive: stop every
                 * instance between requests. */
                f->drained = true;
                for (struct inst *in = f->insts; in; in = in->next)
                    inst_stop(in, WHY_DRAIN, now);
            }
        }
        if (s->state == SUP_STOPPING && sup_drain_over(f, now)) {
            /* Past the limit a request still running is timed out like any
             * other (504 from the SDK, SIGKILL after that), so the stop ends
             * even with request_timeout = 0. */
            for (struct inst *in = f->insts; in; in = in->next) {
                if (!in->timeout_ns && !in->kill_ns) {
                    in->timeout_ns = now;
                    in->why = WHY_TIMEOUT;
                    metrics_inst_stopping(in->metrics, METRICS_EXIT_TIMEOUT);
                    inst_signal(in, SIGUSR1);
                }
            }
        }
        if ((f->removed || s->state == SUP_STOPPING) && f->drained && f->n_insts == 0) {
            if (f->removed && s->state == SUP_RUNNING)
                log_info("[fn %s] removed", f->desc.name);
            *pf = f->next;
            supfn_free(f);
            continue;
        }
        /* Also keep ticking while a crash backoff runs or min_instances
         * is short: nothing else would bring the missing instances back. */
        busy = busy || f->n_insts || !f->armed || f->removed || f->spawn_after_ns > now ||
               f->n_insts < f->desc.set.min_instances;
        pf = &f->next;
    }
    if (s->state == SUP_STOPPING && !s->fns) {
        event_base_loopexit(s->base, NULL);
        return;
    }
    if (busy || s->state == SUP_STOPPING)
        sup_tick_ensure(s);
}

/* ------------------------------------------------------------------------
 * Signals: reap, reload, stop
 */

static struct inst *sup_find_pid(struct sup *s, pid_t pid)
{
    for (struct sup_fn *f = s->fns; f; f = f->next) {
        for (struct inst *in = f->insts; in; in = in->next) {
            if (in->pid == pid)
                return in;
        }
    }
    return NULL;
}

/* Stops every instance between requests; replacements come on demand. */
static void sup_retire_all(struct sup *s, const char *why)
{
    int64_t now = sup_now_ns();
    int n = 0;

    for (struct sup_fn *f = s->fns; f; f = f->next) {
        for (struct inst *in = f->insts; in; in = in->next) {
            if (!in->term_ns && !in->timeout_ns) {
                inst_stop(in, WHY_RETIRED, now);
                n++;
            }
        }
    }
    if (n)
        log_info("%s: retiring %d instance%s", why, n, n == 1 ? "" : "s");
}

/* Whether PID is one of the gateway's own children. */
/* A replacement spare waits while a cold burst is served: its exec would
 * take CPU from the burst's instances. */
static bool sup_spares_hold(void *arg)
{
    struct sup *s = arg;
    for (struct sup_fn *f = s->fns; f; f = f->next) {
        if (f->burst)
            return true;
    }
    return false;
}

static bool sup_pid_known(pid_t pid, void *arg)
{
    struct sup *s = arg;
    return sup_find_pid(s, pid) || poolctl_is(s->pool, pid) || spare_pool_has(s->spares, pid) ||
           warden_is(pid);
}

static void sup_reap(struct sup *s)
{
    int status;
    pid_t pid;
    bool orphans = false, lost = false;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct inst *in = sup_find_pid(s, pid);
        /* Its group is killed below if need be; the warden has nothing of
         * it to kill any more. */
        warden_forget(pid);
        if (warden_reaped(pid, status))
            continue;
        if (!in && spare_pool_reaped(s->spares, pid, status, sup_now_ns()))
            continue;
        if (poolctl_reaped(s->pool, pid, status)) {
            /* Every channel died with the pool: new instances get new ones. */
            sup_retire_all(s, "the pool process was replaced");
            continue;
        }
        /* An instance leaves as soon as its channel closes, which can be
         * before the dying pool is reaped: retired now, it is no crash
         * (one that never served would count as one). */
        if (in && !lost && poolctl_lost(s->pool)) {
            lost = true;
            sup_retire_all(s, "the pool process is gone");
        }
        if (in) {
            /* What it started dies with it (the sandbox kept them in its
             * group); what left the group came back to us as an orphan. */
            proc_group_kill(pid);
            inst_exited(in, status, sup_now_ns());
            orphans = true;
        } else {
            log_debug("reaped process %d (not an instance)", (int)pid);
        }
    }
    if (orphans) {
        int n = proc_orphans_kill(sup_pid_known, s);
        if (n)
            log_warnx("killed %d process%s an instance left behind", n, n == 1 ? "" : "es");
    }
}

static void sup_watch_cb(void *arg);

/* WHY: what asked for it, for the log ("SIGHUP", "functions folder changed"). */
static void sup_reload(struct sup *s, const char *why)
{
    char err[sizeof(struct preflight_joined)];
    struct preflight_joined problems = {""};
    struct conf *c;
    struct discover_list *l = NULL;
    bool drop;
    uid_t uid;
    gid_t gid, sock_gid;
    int64_t now = sup_now_ns();
    size_t added = 0, changed = 0, removed = 0;

    if (s->state != SUP_RUNNING)
        return;
    log_info("%s: reloading %s", why, s->conf_path);
    c = conf_load(s->conf_path, err, sizeof(err));
    if (!c)
        goto refuse;
    if (strcmp(c->gw.socket_dir, s->conf->gw.socket_dir) != 0) {
        snprintf(err, sizeof(err), "%s: socket_dir cannot change on reload (restart fngate)",
                 c->path);
        goto refuse;
    }
    if (preflight_gateway(c, preflight_report_join, &problems) > 0) {
        snprintf(err, sizeof(err), "%s", problems.text);
        goto refuse;
    }
    if (sup_resolve_ids(c, &drop, &uid, &gid, &sock_gid, err, sizeof(err)) < 0)
        goto refuse;
    l = discover_functions(c, err, sizeof(err));
    if (!l || preflight_functions(c, l) < 0)
        goto refuse;

    /* From here the new configuration is accepted. */
    conf_free(s->conf);
    s->conf = c;
    spare_pool_set(s->spares, c->gw.spare_processes);
    s->drop = drop;
    s->uid = uid;
    s->gid = gid;
    s->sock_gid = sock_gid;
    status_set_perms(s->status, c->gw.socket_mode, sock_gid);
    if (probe_write(c->gw.socket_dir, c->gw.socket_mode, sock_gid, err, sizeof(err)) < 0)
        log_warnx("%s", err);
    log_set_level(c->gw.log_level);
    reqlog_apply(&s->reqlog, c->gw.request_log);
    reqlog_set_budget(s->reqlog, c->gw.request_log_rate, c->gw.request_log_burst);
    metrics_set_reqlog(s->metrics, s->reqlog);
    metrics_reloaded(s->metrics);
    poolstat_set_slow(s->poolstat, c->gw.slow_query_ms);
    if (poolctl_differs(s->pool, c)) {
        poolctl_free(s->pool);
        s->pool = poolctl_new(s->base, c, poolstat_fd(s->poolstat));
        metrics_set_pool(s->metrics, s->pool ? s->poolstat : NULL);
        log_info("database settings changed: pool %s", s->pool ? "restarted" : "stopped");
        sup_retire_all(s, "database settings changed");
    }
    for (struct sup_fn *f = s->fns; f; f = f->next) {
        if (!f->removed && !discover_list_find(l, f->desc.name)) {
            log_info("[fn %s] no longer configured: draining", f->desc.name);
            supfn_remove(f);
            removed++;
        }
    }
    for (size_t i = 0; i < l->n; i++) {
        struct discover_fn *d = &l->fns[i];
        struct sup_fn *f = supfn_find(s, d->name);
        if (f) {
            bool same_bin = discover_fn_same_binary(&f->desc, d);
            bool same_set = fnconf_equal(&f->desc.set, &d->set) &&
                            !f->desc.disabled == !d->disabled &&
                            (!d->disabled || strcmp(f->desc.disabled, d->disabled) == 0);
            char what[4096 + CONF_ERR_MAX + 64];
            if (f->sock_path) {
                /* S_IXUSR: sock_listen's mark that nginx/fngate.inc tests. */
                if (chmod(f->sock_path, c->gw.socket_mode | S_IXUSR) < 0 ||
                    (sock_gid != (gid_t)-1 && chown(f->sock_path, (uid_t)-1, sock_gid) < 0))
                    log_warn("[fn %s] %s", f->desc.name, f->sock_path);
            }
            if (d->disabled)
                snprintf(what, sizeof(what), "disabled, answering 503 until fixed: %s",
                         d->disabled);
            else
                snprintf(what, sizeof(what), "%s",
                         f->desc.disabled ? "fixed, enabled again"
                         : !same_bin      ? "new handler binary"
                                          : "settings changed");
            if (!same_bin || !same_set) {
                supfn_regenerate(f, d, what, now);
                changed++;
            }
            continue;
        }
        f = supfn_new(s, d, err, sizeof(err));
        if (!f) {
            log_warnx("[fn %s] cannot add: %s", l->fns[i].name ? l->fns[i].name : "?", err);
            continue;
        }
        f->next = s->fns;
        s->fns = f;
        added++;
        log_info("[fn %s] added: %s", f->desc.name, f->sock_path);
        supfn_scale(f, now);
    }
    discover_list_free(l);
    s->watch = watch_update(s->watch, s->base, c, sup_watch_cb, s);
    snprintf(err, sizeof(err), "reloaded: %zu added, %zu changed, %zu removed", added, changed,
             removed);
    log_info("%s", err);
    ctl_reload_done(c->gw.socket_dir, true, err);
    sup_tick_ensure(s);
    return;
refuse:
    log_warnx("reload refused, keeping the running configuration: %s", err);
    ctl_reload_done(s->conf->gw.socket_dir, false, err);
    conf_free(c == s->conf ? NULL : c);
    discover_list_free(l);
}

const char *sup_sig_name(int sig)
{
    const char *n = sigabbrev_np(sig);
    return n ? n : "?";
}

static void sup_watch_cb(void *arg)
{
    sup_reload(arg, "functions folder changed");
}

static void sup_stop(struct sup *s, int sig)
{
    if (s->state == SUP_STOPPING) {
        log_info("SIG%s: already stopping", sup_sig_name(sig));
        return;
    }
    log_info("SIG%s: stopping: no new connections, finishing queued and running requests",
             sup_sig_name(sig));
    s->state = SUP_STOPPING;
    spare_pool_stop(s->spares);
    s->stop_ns = sup_now_ns();
    probe_draining(s->conf->gw.socket_dir);
    watch_free(s->watch);
    s->watch = NULL;
    for (struct sup_fn *f = s->fns; f; f = f->next)
        supfn_remove(f);
    sup_tick_ensure(s);
}

static void sup_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct sup *s = arg;
    (void)what;
    switch (sig) {
    case SIGCHLD:
        sup_reap(s);
        break;
    case SIGHUP:
        sup_reload(s, "SIGHUP");
        break;
    case SIGTERM:
    case SIGINT:
        sup_stop(s, (int)sig);
        break;
    }
}

/* ------------------------------------------------------------------------
 * Start and finish
 */

static void sup_free(struct sup *s)
{
    warden_stop();
    watch_free(s->watch);
    status_free(s->status);
    poolctl_free(s->pool);
    s->pool = NULL;
    while (s->fns) {
        struct sup_fn *f = s->fns;
        s->fns = f->next;
        supfn_free(f);
    }
    spare_pool_free(s->spares);
    s->spares = NULL;
    metrics_free(s->metrics);
    reqlog_free(s->reqlog);
    poolstat_free(s->poolstat);
    for (size_t i = 0; i < sizeof(s->ev_sig) / sizeof(s->ev_sig[0]); i++) {
        if (s->ev_sig[i])
            event_free(s->ev_sig[i]);
    }
    if (s->ev_tick)
        event_free(s->ev_tick);
    if (s->base)
        event_base_free(s->base);
    if (s->lock_fd >= 0) {
        probe_remove(s->conf->gw.socket_dir);
        ctl_pid_remove(s->conf->gw.socket_dir);
        close(s->lock_fd);
    }
    conf_free(s->conf);
    sock_diag_close();
    police_close();
}

int sup_run(const char *conf_path)
{
    static const int sigs[4] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT};
    struct sup s;
    char err[CONF_ERR_MAX];
    struct discover_list *l = NULL;
    size_t n_fns;
    int rc = 1;

    memset(&s, 0, sizeof(s));
    s.lock_fd = -1;
    s.conf_path = conf_path;
    s.conf = conf_load(conf_path, err, sizeof(err));
    if (!s.conf) {
        log_error("%s", err);
        goto out;
    }
    log_set_level(s.conf->gw.log_level);
    /* Non-dumpable: no instance sharing our uid reads our environment
     * (DATABASE_URL) or memory. */
    sandbox_self("fngate");
    proc_reaper_init();
    if (sandbox_init() < 0)
        goto out;
    if (preflight_gateway(s.conf, preflight_report_error, NULL) > 0)
        goto out;
    if (sup_resolve_ids(s.conf, &s.drop, &s.uid, &s.gid, &s.sock_gid, err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto out;
    }
    l = discover_functions(s.conf, err, sizeof(err));
    if (!l || preflight_functions(s.conf, l) < 0) {
        log_error("%s", err);
        goto out;
    }
    s.lock_fd = sock_dir_lock(s.conf->gw.socket_dir, err, sizeof(err));
    if (s.lock_fd < 0 || ctl_pid_write(s.conf->gw.socket_dir, err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto out;
    }
    if (probe_write(s.conf->gw.socket_dir, s.conf->gw.socket_mode, s.sock_gid, err, sizeof(err)) <
        0)
        log_warnx("%s", err);
    /* Before any child: every instance and spare from now on dies with us,
     * however we die. */
    (void)warden_start();
    signal(SIGPIPE, SIG_IGN);
    s.base = event_base_new();
    if (!s.base) {
        log_error("event_base_new failed");
        goto out;
    }
    s.ev_tick = evtimer_new(s.base, sup_tick, &s);
    s.metrics = metrics_new();
    if (!s.metrics || reqlog_apply(&s.reqlog, s.conf->gw.request_log) < 0)
        goto out;
    reqlog_set_budget(s.reqlog, s.conf->gw.request_log_rate, s.conf->gw.request_log_burst);
    metrics_set_reqlog(s.metrics, s.reqlog);
    s.spares = spare_pool_new(s.base, s.metrics, s.conf->gw.spare_processes, NULL);
    spare_pool_set_hold(s.spares, sup_spares_hold, &s);
    s.poolstat = poolstat_new();
    poolstat_set_slow(s.poolstat, s.conf->gw.slow_query_ms);
    s.status = status_new(s.base, s.conf->gw.socket_dir, s.conf->gw.socket_mode, s.sock_gid,
                          s.metrics, err, sizeof(err));
    if (!s.status) {
        log_error("%s", err);
        goto out;
    }
    if (s.conf->gw.database_url) {
        s.pool = poolctl_new(s.base, s.conf, poolstat_fd(s.poolstat));
        if (!s.pool) {
            log_error("cannot start the pool process");
            goto out;
        }
        metrics_set_pool(s.metrics, s.poolstat);
    }
    for (size_t i = 0; i < 4; i++) {
        s.ev_sig[i] = evsignal_new(s.base, sigs[i], sup_signal_cb, &s);
        if (!s.ev_sig[i] || evsignal_add(s.ev_sig[i], NULL) < 0) {
            log_error("cannot install signal handlers");
            goto out;
        }
    }
    s.watch = watch_new(s.base, s.conf, sup_watch_cb, &s);
    for (size_t i = 0; i < l->n; i++) {
        char name[CONF_NAME_MAX + 1];
        struct sup_fn *f;
        snprintf(name, sizeof(name), "%s", l->fns[i].name);
        f = supfn_new(&s, &l->fns[i], err, sizeof(err));
        if (!f) {
            /* Only this function is lost: the others serve. */
            log_warnx("[fn %s] not served: %s", name, err);
            continue;
        }
        f->next = s.fns;
        s.fns = f;
    }
    n_fns = l->n;
    discover_list_free(l);
    l = NULL;
    log_info("fngate %s: %zu function%s from %s, sockets in %s/fn%s", PACKAGE_VERSION, n_fns,
             n_fns == 1 ? "" : "s", s.conf->gw.functions_dir, s.conf->gw.socket_dir,
             s.drop ? ", each function its own uid" : "");
    for (struct sup_fn *f = s.fns; f; f = f->next)
        supfn_scale(f, sup_now_ns());
    /* After the functions' own first instances (min_instances): those are
     * execs, not a reason to wait for a spare. */
    spare_pool_fill(s.spares);
    sup_tick_ensure(&s);
    if (event_base_dispatch(s.base) < 0) {
        log_error("event loop failed");
        goto out;
    }
    warden_stop();
    /* Nothing a function started outlives the gateway; then reap anything
     * still reported (pid 1 duty, and no zombies left). */
    if (proc_orphans_kill(sup_pid_known, &s) > 0)
        usleep(10000);
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    log_info("stopped");
    rc = 0;
out:
    discover_list_free(l);
    sup_free(&s);
    return rc;
}
