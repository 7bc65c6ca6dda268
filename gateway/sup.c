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

#include "backlog.h"
#include "conf.h"
#include "ctl.h"
#include "fn.h"
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
#include "sb.h"
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

#define SUP_TICK_MS 10
/* After SIGUSR1 (request timeout) an SDK instance answers 504 and exits at
 * once; this is how long it gets before SIGKILL. */
#define SUP_TIMEOUT_KILL_MS 1000
/* An instance still STARTING after this long is taken for a program that
 * does not use libfngate (it never writes its slot): counted as busy. */
#define SUP_STARTING_MAX_MS 2000
/* After this many crashes in a row without serving a request, what is
 * queued for a function with no live instance is answered 503 by the
 * supervisor instead of waiting for nginx's read timeout. */
#define SUP_REFUSE_AFTER 3

enum sup_state { SUP_RUNNING, SUP_STOPPING };

/* Why an instance was asked to stop; shown in its exit log line. */
enum inst_why { WHY_NONE, WHY_IDLE, WHY_RETIRED, WHY_DRAIN, WHY_TIMEOUT, WHY_STUCK };

static const char *const inst_why_names[] = {
    "", "idle", "retired", "drain", "request timeout", "did not stop"};
static const enum mx_exit inst_why_exit[] = {MX_EXIT_NONE, MX_EXIT_IDLE,    MX_EXIT_RELOAD,
                                             MX_EXIT_STOP, MX_EXIT_TIMEOUT, MX_EXIT_STOP};

struct sup;
struct sup_fn;

/* One running instance.  Owned by its sup_fn's list. */
struct inst {
    struct inst *next;
    struct sup_fn *fn; /* owner */
    pid_t pid;
    unsigned gen;
    struct sb *sb;         /* owned */
    struct instio *io;     /* owned: its stdout and stderr */
    struct mx_inst *mx;    /* owned: its figures */
    struct police_inst pi; /* the supervisor's own observations */
    struct police_view pv;
    int64_t spawned_ns;
    int64_t exec_ns[2]; /* proc_spawn called and returned: the cold-start trace */
    int64_t term_ns;    /* SIGTERM sent (0: not asked to stop) */
    int64_t timeout_ns; /* SIGUSR1 sent for a request timeout */
    int64_t kill_ns;    /* SIGKILL sent */
    enum inst_why why;
    bool ready_logged;
};

/* One function as the running gateway knows it. */
struct sup_fn {
    struct sup_fn *next;
    struct sup *sup;
    struct fn_desc desc; /* owned: name, folder, handler, settings, identity */
    unsigned gen;
    char **envp; /* owned, NULL-terminated */
    char *argv[2];
    char *sock_path; /* owned */
    int listen_fd;
    struct event *ev_listen; /* owned */
    struct police_fn *pol;   /* owned: its connections in service */
    bool armed;
    bool removed; /* socket unlinked; serving what is queued, then gone */
    bool drained; /* queue seen empty after removal: instances told to stop */
    struct inst *insts;
    struct mx_fn *mx; /* owned: its figures */
    int n_insts;
    int crashes;
    int64_t spawn_after_ns;
    struct ident id;         /* who its instances run as */
    struct sandbox_fn *sbx;  /* owned */
    char last_exit[160];     /* how the last crash ended, for the 503 */
    int64_t stuck_since_ns;  /* queue non-empty with idle instances since */
    struct backlog *backlog; /* owned: the queue police */
};

struct sup {
    struct event_base *base;
    struct conf *conf; /* owned */
    const char *conf_path;
    enum sup_state state;
    int64_t stop_ns; /* when SIGTERM/SIGINT arrived */
    int lock_fd;
    struct sup_fn *fns;
    struct poolctl *pool;      /* NULL without a database */
    struct mx *mx;             /* owned: the figures */
    struct status *status;     /* owned: /_fngate/ */
    struct reqlog *reqlog;     /* owned: NULL when request_log is off */
    struct watch *watch;       /* owned: NULL when watch = off */
    struct poolstat *poolstat; /* owned: the pool's statistics memfd */
    struct event *ev_tick;
    struct event *ev_sig[4];
    bool drop;
    uid_t uid;
    gid_t gid;
    gid_t sock_gid;
};

static int64_t sup_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------------
 * Users and environment
 */

/* Resolves the sockets' group and checks the identity settings; who each
 * function runs as is gateway/ident.c's (per function, in sup_fn_ident). */
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

/* Who F runs as and its sandbox, from its (new) settings; on failure F
 * keeps what it had. */
static int sup_fn_ident(struct sup_fn *f, char *err, size_t errlen)
{
    struct ident id;
    struct sandbox_fn *sbx;
    char tmp_base[4096];

    if (ident_function(f->sup->conf, f->desc.name, &f->desc.set, &id, err, errlen) < 0)
        return -1;
    snprintf(tmp_base, sizeof(tmp_base), "%s/tmp", f->sup->conf->gw.socket_dir);
    sbx = sandbox_fn_new(&f->desc, &id, tmp_base, err, errlen);
    if (!sbx)
        return -1;
    sandbox_fn_free(f->sbx);
    f->sbx = sbx;
    f->id = id;
    return 0;
}

static void sup_env_free(char **envp)
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
static char **sup_env_build(const struct sup_fn *f)
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
    ENV_ADD("FNGATE_SB_FD=%d", FN_SB_FD);
    ENV_ADD("FNGATE_DB_FD=%d", FN_DB_FD);
    ENV_ADD("FNGATE_MAX_BODY=%lld", (long long)s->max_body);
    ENV_ADD("FNGATE_MAX_REQUESTS=%ld", s->max_requests);
    ENV_ADD("FNGATE_QUEUE_TIMEOUT_MS=%lld", (long long)s->queue_timeout_ms);
    ENV_ADD("FNGATE_REQUEST_TIMEOUT_MS=%lld", (long long)s->request_timeout_ms);
    if (sandbox_fn_tmpdir(f->sbx))
        ENV_ADD("TMPDIR=%s", sandbox_fn_tmpdir(f->sbx));
    for (size_t i = 0; i < s->n_env; i++)
        ENV_ADD("%s=%s", s->env[i].key, s->env[i].value);
#undef ENV_ADD
    envp[n] = NULL;
    return envp;
fail:
    sup_env_free(envp);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Instances
 */

static void sup_tick_ensure(struct sup *s);
static void sup_fn_scale(struct sup_fn *f, int64_t now);

static void sup_inst_free(struct inst *in)
{
    if (!in)
        return;
    instio_free(in->io);
    mx_inst_free(in->mx);
    sb_free(in->sb);
    free(in);
}

static void sup_inst_signal(struct inst *in, int sig)
{
    if (kill(in->pid, sig) < 0 && errno != ESRCH)
        log_warn("[fn %s pid %d] kill(%d)", in->fn->desc.name, (int)in->pid, sig);
}

/* Asks an instance to stop between requests. */
static void sup_inst_stop(struct inst *in, enum inst_why why, int64_t now)
{
    if (in->term_ns)
        return;
    in->term_ns = now;
    in->why = why;
    mx_inst_stopping(in->mx, inst_why_exit[why]);
    /* The flag is seen between requests even under continuous load, when
     * the instance never waits long enough to take the signal. */
    FN_SB_STORE(in->sb->slot->stop_req, 1u);
    sup_inst_signal(in, SIGTERM);
}

static int sup_spawn(struct sup_fn *f, int64_t now)
{
    struct sup *s = f->sup;
    struct inst *in = calloc(1, sizeof(*in));
    struct proc_spec spec;
    int log_fd = -1, db_fd = -1, pool_fd = -1;

    if (!in) {
        log_warn("[fn %s] spawn", f->desc.name);
        return -1;
    }
    in->fn = f;
    in->gen = f->gen;
    in->sb = sb_new_log(f->desc.name, s->reqlog ? REQLOG_RING_BYTES : 0);
    if (!in->sb)
        goto fail;
    memset(&spec, 0, sizeof(spec));
    spec.path = f->desc.handler;
    spec.cwd = f->desc.dir;
    spec.argv = f->argv;
    spec.envp = f->envp;
    spec.listen_fd = f->listen_fd;
    if (s->pool && poolctl_channel(s->pool, &db_fd, &pool_fd) < 0)
        goto fail;
    spec.db_fd = db_fd;
    spec.sb_fd = in->sb->fd;
    spec.memory_limit = f->desc.set.memory_limit;
    spec.open_files = f->desc.set.open_files;
    spec.drop_privileges = f->id.drop;
    spec.uid = f->id.uid;
    spec.gid = f->id.gid;
    spec.sandbox = sandbox_fn_on(f->sbx);
    spec.ruleset_fd = sandbox_fn_ruleset(f->sbx);
    in->exec_ns[0] = sup_now_ns();
    in->pid = proc_spawn(&spec, &log_fd);
    in->exec_ns[1] = sup_now_ns();
    sb_close_fd(in->sb);
    if (db_fd >= 0)
        close(db_fd);
    if (in->pid < 0) {
        if (pool_fd >= 0)
            close(pool_fd);
        goto fail;
    }
    if (pool_fd >= 0)
        poolctl_handoff(s->pool, pool_fd, f->desc.name, in->pid, &f->desc.set);
    in->spawned_ns = now;
    in->io = instio_new(s->base, log_fd, f->desc.name, in->pid, NULL);
    in->mx = mx_inst_new(f->mx, in->pid, spec.drop_privileges ? spec.uid : getuid(), in->sb, now);
    in->next = f->insts;
    f->insts = in;
    f->n_insts++;
    log_debug("[fn %s pid %d] spawned (generation %u)", f->desc.name, (int)in->pid, f->gen);
    sup_tick_ensure(s);
    return 0;
fail:
    sup_inst_free(in);
    return -1;
}

static void sup_fn_snapshot(struct sup_fn *f, int64_t now, struct scale_state *st)
{
    memset(st, 0, sizeof(*st));
    st->max_instances = f->desc.set.max_instances;
    st->min_instances =
        (f->removed || f->sup->state == SUP_STOPPING) ? 0 : f->desc.set.min_instances;
    st->backoff = now < f->spawn_after_ns;
    for (struct inst *in = f->insts; in; in = in->next) {
        uint32_t state;
        if (in->term_ns || in->timeout_ns || in->gen != f->gen) {
            st->stopping++;
            continue;
        }
        st->live++;
        state = FN_SB_LOAD(in->sb->slot->state);
        if (state == FN_SB_IDLE)
            st->idle++;
        else if (state == FN_SB_STARTING &&
                 now - in->spawned_ns < (int64_t)SUP_STARTING_MAX_MS * 1000000)
            st->starting++;
    }
}

/* Spawns what the queue and min_instances call for.  Returns the queue
 * length it saw (-1: unknown). */
static int sup_fn_scale_q(struct sup_fn *f, int64_t now)
{
    struct scale_state st;
    int n, q;

    if (f->listen_fd < 0)
        return 0;
    if (f->desc.disabled)
        return refuse_disabled(f->sup->base, f->listen_fd, f->desc.name, f->desc.disabled), 0;
    sup_fn_snapshot(f, now, &st);
    q = sock_queue_len(f->listen_fd);
    if (q > 0 && st.live == 0 && f->crashes >= SUP_REFUSE_AFTER) {
        char msg[400];
        int refused;
        snprintf(msg, sizeof(msg),
                 "{\"error\":\"function %s cannot start: %s\",\"function\":\"%s\"}", f->desc.name,
                 f->last_exit, f->desc.name);
        refused = refuse_queued(f->sup->base, f->listen_fd, msg);
        mx_fn_rejected(f->mx, MX_REJ_CANNOT_START, refused);
        if (refused > 0)
            log_warnx("[fn %s] %d crashes in a row without serving (last: %s): answered 503 to "
                      "%d queued request%s",
                      f->desc.name, f->crashes, f->last_exit, refused, refused == 1 ? "" : "s");
        q = sock_queue_len(f->listen_fd);
    }
    st.queued = q;
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
    for (int i = 0; i < n; i++) {
        if (sup_spawn(f, now) < 0)
            break;
    }
    if (n > 0)
        log_debug("[fn %s] queue %d, idle %d, starting %d: spawned %d", f->desc.name, q, st.idle,
                  st.starting, n);
    return q;
}

static void sup_fn_scale(struct sup_fn *f, int64_t now)
{
    (void)sup_fn_scale_q(f, now);
}

static const char *sup_sig_name(int sig)
{
    const char *n = sigabbrev_np(sig);
    return n ? n : "?";
}

/* Logs the exit, classifies it, and frees the instance. */
static void sup_inst_exited(struct inst *in, int status, int64_t now)
{
    struct sup_fn *f = in->fn;
    char what[96], extra[160];
    double up = (double)(now - in->spawned_ns) / 1e9;
    uint64_t served = FN_SB_LOAD(in->sb->slot->requests);
    bool asked = in->term_ns || in->timeout_ns || in->kill_ns || in->pi.check_ns;
    /* Leaving unasked counts as a crash when it was abnormal, or when the
     * instance served nothing at all (a program that exits at once would
     * otherwise be respawned in a tight loop). */
    bool crash = !asked &&
                 (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status)) || served == 0);

    /* Take the last lines it wrote (an abort message, say) before its exit
     * line so the log reads in order. */
    instio_free(in->io);
    in->io = NULL;

    if (WIFSIGNALED(status))
        snprintf(what, sizeof(what), "killed by signal %d (SIG%s)", WTERMSIG(status),
                 sup_sig_name(WTERMSIG(status)));
    else
        snprintf(what, sizeof(what), "exited with status %d", WEXITSTATUS(status));
    extra[0] = '\0';
    if (crash) {
        f->crashes = served ? 1 : f->crashes + 1;
        int64_t delay = scale_backoff_ms(f->crashes);
        f->spawn_after_ns = now + delay * 1000000;
        snprintf(extra, sizeof(extra), "; crash %d in a row, next spawn in %lld ms", f->crashes,
                 (long long)delay);
        snprintf(f->last_exit, sizeof(f->last_exit), "%s after %.3fs", what, up);
    } else if (served) {
        f->crashes = 0;
    }
    if (in->why)
        snprintf(extra, sizeof(extra), " (%s)", inst_why_names[in->why]);
    if (crash)
        log_warnx("[fn %s pid %d] %s after %.3fs, %llu requests%s", f->desc.name, (int)in->pid,
                  what, up, (unsigned long long)served, extra);
    else
        log_info("[fn %s pid %d] %s after %.3fs, %llu requests%s", f->desc.name, (int)in->pid, what,
                 up, (unsigned long long)served, extra);

    if (in->why == WHY_TIMEOUT) /* also after SIGUSR2, when the SDK timed itself out */
        mx_inst_stopping(in->mx, MX_EXIT_TIMEOUT);
    mx_inst_exited(in->mx, crash, crash ? f->last_exit : what, now);
    in->mx = NULL;
    for (struct inst **p = &f->insts; *p; p = &(*p)->next) {
        if (*p == in) {
            *p = in->next;
            f->n_insts--;
            break;
        }
    }
    sup_inst_free(in);
    /* A replacement for whoever is waiting, without waiting for the tick. */
    sup_fn_scale(f, now);
}

/* Timeouts, stop escalation (police.c decides), idle reaping. */
static void sup_fn_police(struct sup_fn *f, int64_t now)
{
    const struct fn_settings *set = &f->desc.set;
    struct police_limits lim = {set->request_timeout_ms, f->sup->conf->gw.stop_timeout_ms,
                                SUP_TIMEOUT_KILL_MS};
    struct police_view *views[4096];
    int64_t ages[4096];
    struct inst *idle[4096];
    size_t n = 0;
    int n_idle = 0, live = 0;

    for (struct inst *in = f->insts; in && n < 4096; in = in->next) {
        in->pv = (struct police_view){.pid = in->pid,
                                      .slot = in->sb->slot,
                                      .pi = &in->pi,
                                      .spawned_ns = in->spawned_ns,
                                      .term_ns = in->term_ns,
                                      .timeout_ns = in->timeout_ns,
                                      .kill_ns = in->kill_ns};
        views[n++] = &in->pv;
    }
    police_fn_judge(f->pol, views, n, &lim, now);
    for (struct inst *in = f->insts; in; in = in->next) {
        struct fn_sb_slot *sl = in->sb->slot;
        int64_t ready = police_ns_between(in->spawned_ns, (int64_t)FN_SB_LOAD(sl->ready_ns));

        if (!in->ready_logged && FN_SB_LOAD(sl->ready_ns)) {
            in->ready_logged = true;
            log_debug("[fn %s pid %d] ready in %.3f ms (trace ns: woke %lld spawn %lld %lld "
                      "ready %lld)",
                      f->desc.name, (int)in->pid, (double)ready / 1e6, (long long)in->spawned_ns,
                      (long long)in->exec_ns[0], (long long)in->exec_ns[1],
                      (long long)FN_SB_LOAD(sl->ready_ns));
        }
        if (FN_SB_LOAD(sl->requests) > 0)
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
                mx_inst_stopping(in->mx, MX_EXIT_TIMEOUT);
            }
            sup_inst_signal(in, in->pv.verdict == POLICE_TIMEOUT ? SIGUSR1 : SIGUSR2);
            continue;
        case POLICE_KILL_TIMEOUT:
        case POLICE_KILL_STUCK:
            if (in->pv.verdict == POLICE_KILL_STUCK)
                log_warnx("[fn %s pid %d] still running %lld ms after SIGTERM: SIGKILL",
                          f->desc.name, (int)in->pid, (long long)((now - in->term_ns) / 1000000));
            in->why = in->pv.verdict == POLICE_KILL_STUCK ? WHY_STUCK : WHY_TIMEOUT;
            in->kill_ns = now;
            sup_inst_signal(in, SIGKILL);
            continue;
        }
        if (in->kill_ns || in->term_ns || in->timeout_ns)
            continue;
        if (in->gen != f->gen) {
            sup_inst_stop(in, WHY_RETIRED, now);
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
        sup_inst_stop(idle[i], WHY_IDLE, now);
}

/* ------------------------------------------------------------------------
 * Functions
 */

static void sup_fn_readable(evutil_socket_t fd, short what, void *arg)
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
    sup_fn_snapshot(f, now, &st);
    if (st.live == 0 && !st.backoff && st.stopping < st.max_instances)
        sup_spawn(f, now);
    /* Stamps the arrivals now, not a tick later: queue_timeout counts from here. */
    backlog_police(f->backlog, f->mx, f->sup->base, f->listen_fd, f->desc.set.queue_size,
                   f->desc.set.queue_timeout_ms, now);
    sup_fn_scale(f, now);
    /* The connection is (or will be) taken by an instance; until the tick
     * sees the queue empty, more arrivals must not wake us one by one. */
    event_del(f->ev_listen);
    f->armed = false;
    sup_tick_ensure(f->sup);
}

static void sup_fn_arm(struct sup_fn *f)
{
    if (!f->armed && f->ev_listen && !f->removed && event_add(f->ev_listen, NULL) == 0)
        f->armed = true;
}

/* Unlinks the socket so no new connection can arrive; what is queued is
 * still served. */
static void sup_fn_remove(struct sup_fn *f)
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

static void sup_fn_free(struct sup_fn *f)
{
    if (!f)
        return;
    while (f->insts) {
        struct inst *in = f->insts;
        f->insts = in->next;
        sup_inst_free(in);
    }
    mx_fn_free(f->mx);
    if (f->ev_listen)
        event_free(f->ev_listen);
    police_fn_free(f->pol);
    if (f->listen_fd >= 0)
        close(f->listen_fd);
    if (f->sock_path && !f->removed)
        unlink(f->sock_path);
    free(f->sock_path);
    backlog_free(f->backlog);
    sup_env_free(f->envp);
    sandbox_fn_free(f->sbx);
    fn_desc_clear(&f->desc);
    free(f);
}

/* Takes ownership of *D (zeroing it) and opens the function's socket. */
static struct sup_fn *sup_fn_new(struct sup *s, struct fn_desc *d, char *err, size_t errlen)
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
    if (!f->desc.disabled && sup_fn_ident(f, err, errlen) < 0)
        goto fail;
    f->envp = sup_env_build(f);
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
    f->ev_listen = event_new(s->base, f->listen_fd, EV_READ | EV_PERSIST, sup_fn_readable, f);
    if (!f->ev_listen) {
        snprintf(err, errlen, "event_new failed");
        goto fail;
    }
    f->mx = mx_fn_new(s->mx, &f->desc, f->listen_fd);
    f->pol = police_fn_new(f->sock_path);
    sup_fn_arm(f);
    if (f->desc.disabled)
        log_warnx("[fn %s] disabled, answering 503 until fixed: %s", f->desc.name,
                  f->desc.disabled);
    return f;
fail:
    f->removed = true; /* do not unlink a path some other process may own */
    sup_fn_free(f);
    return NULL;
}

static struct sup_fn *sup_fn_find(struct sup *s, const char *name)
{
    for (struct sup_fn *f = s->fns; f; f = f->next) {
        if (!f->removed && strcmp(f->desc.name, name) == 0)
            return f;
    }
    return NULL;
}

/* A new binary or new settings: later spawns use them, and the current
 * instances retire between requests. */
static void sup_fn_regenerate(struct sup_fn *f, struct fn_desc *d, const char *why, int64_t now)
{
    char **envp;
    char err[CONF_ERR_MAX];
    int retired = 0;

    fn_desc_clear(&f->desc);
    f->desc = *d;
    memset(d, 0, sizeof(*d));
    f->argv[0] = f->desc.handler;
    if (!f->desc.disabled && sup_fn_ident(f, err, sizeof(err)) < 0)
        log_warnx("[fn %s] %s: keeping its previous identity and sandbox", f->desc.name, err);
    envp = sup_env_build(f);
    if (envp) {
        sup_env_free(f->envp);
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
            sup_inst_stop(in, WHY_RETIRED, now);
            retired++;
        }
    }
    log_info("[fn %s] %s: generation %u, retiring %d instance%s", f->desc.name, why, f->gen,
             retired, retired == 1 ? "" : "s");
    sup_fn_scale(f, now);
}

/* ------------------------------------------------------------------------
 * The maintenance timer
 */

static void sup_tick_ensure(struct sup *s)
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

    mx_tick(s->mx, now);
    police_scan(now);
    for (struct sup_fn **pf = &s->fns; *pf;) {
        struct sup_fn *f = *pf;
        sup_fn_police(f, now);
        if (!f->armed || f->removed || f->n_insts < f->desc.set.min_instances) {
            backlog_police(f->backlog, f->mx, s->base, f->listen_fd, f->desc.set.queue_size,
                           f->desc.set.queue_timeout_ms, now);
            int q = sup_fn_scale_q(f, now);
            if (q == 0 && !f->removed && s->state == SUP_RUNNING)
                sup_fn_arm(f);
            if (s->state == SUP_STOPPING && q > 0 && !f->drained && sup_drain_over(f, now)) {
                /* Served long enough: answer what is still queued. */
                int n = refuse_queued(s->base, f->listen_fd,
                                      "{\"error\":\"the gateway is shutting down\"}");
                mx_fn_rejected(f->mx, MX_REJ_SHUTDOWN, n);
                log_warnx("[fn %s] still %d queued after the drain limit: answered 503 to %d",
                          f->desc.name, q, n);
                q = sock_queue_len(f->listen_fd);
            }
            if ((f->removed || s->state == SUP_STOPPING) && q == 0 && !f->drained) {
                /* Nothing queued and nothing new can arrive: stop every
                 * instance between requests. */
                f->drained = true;
                for (struct inst *in = f->insts; in; in = in->next)
                    sup_inst_stop(in, WHY_DRAIN, now);
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
                    mx_inst_stopping(in->mx, MX_EXIT_TIMEOUT);
                    sup_inst_signal(in, SIGUSR1);
                }
            }
        }
        if ((f->removed || s->state == SUP_STOPPING) && f->drained && f->n_insts == 0) {
            if (f->removed && s->state == SUP_RUNNING)
                log_info("[fn %s] removed", f->desc.name);
            *pf = f->next;
            sup_fn_free(f);
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
                sup_inst_stop(in, WHY_RETIRED, now);
                n++;
            }
        }
    }
    if (n)
        log_info("%s: retiring %d instance%s", why, n, n == 1 ? "" : "s");
}

/* Whether PID is one of the gateway's own children. */
static bool sup_pid_known(pid_t pid, void *arg)
{
    struct sup *s = arg;
    return sup_find_pid(s, pid) || poolctl_is(s->pool, pid);
}

static void sup_reap(struct sup *s)
{
    int status;
    pid_t pid;
    bool orphans = false;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct inst *in = sup_find_pid(s, pid);
        if (poolctl_reaped(s->pool, pid, status)) {
            /* Every channel died with the pool: new instances get new ones. */
            sup_retire_all(s, "the pool process was replaced");
            continue;
        }
        if (in) {
            /* What it started dies with it (the sandbox kept them in its
             * group); what left the group came back to us as an orphan. */
            proc_group_kill(pid);
            sup_inst_exited(in, status, sup_now_ns());
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
    struct fn_list *l = NULL;
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
    l = fn_discover(c, err, sizeof(err));
    if (!l || preflight_functions(c, l) < 0)
        goto refuse;

    /* From here the new configuration is accepted. */
    conf_free(s->conf);
    s->conf = c;
    s->drop = drop;
    s->uid = uid;
    s->gid = gid;
    s->sock_gid = sock_gid;
    status_set_perms(s->status, c->gw.socket_mode, sock_gid);
    if (probe_write(c->gw.socket_dir, c->gw.socket_mode, sock_gid, err, sizeof(err)) < 0)
        log_warnx("%s", err);
    log_set_level(c->gw.log_level);
    reqlog_apply(&s->reqlog, c->gw.request_log);
    mx_set_reqlog(s->mx, s->reqlog);
    mx_reloaded(s->mx);
    poolstat_set_slow(s->poolstat, c->gw.slow_query_ms);
    if (poolctl_differs(s->pool, c)) {
        poolctl_free(s->pool);
        s->pool = poolctl_new(s->base, c, poolstat_fd(s->poolstat));
        mx_set_pool(s->mx, s->pool ? s->poolstat : NULL);
        log_info("database settings changed: pool %s", s->pool ? "restarted" : "stopped");
        sup_retire_all(s, "database settings changed");
    }
    for (struct sup_fn *f = s->fns; f; f = f->next) {
        if (!f->removed && !fn_list_find(l, f->desc.name)) {
            log_info("[fn %s] no longer configured: draining", f->desc.name);
            sup_fn_remove(f);
            removed++;
        }
    }
    for (size_t i = 0; i < l->n; i++) {
        struct fn_desc *d = &l->fns[i];
        struct sup_fn *f = sup_fn_find(s, d->name);
        if (f) {
            bool same_bin = fn_desc_same_binary(&f->desc, d);
            bool same_set = fn_settings_equal(&f->desc.set, &d->set) &&
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
                sup_fn_regenerate(f, d, what, now);
                changed++;
            }
            continue;
        }
        f = sup_fn_new(s, d, err, sizeof(err));
        if (!f) {
            log_warnx("[fn %s] cannot add: %s", l->fns[i].name ? l->fns[i].name : "?", err);
            continue;
        }
        f->next = s->fns;
        s->fns = f;
        added++;
        log_info("[fn %s] added: %s", f->desc.name, f->sock_path);
        sup_fn_scale(f, now);
    }
    fn_list_free(l);
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
    fn_list_free(l);
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
    s->stop_ns = sup_now_ns();
    probe_draining(s->conf->gw.socket_dir);
    watch_free(s->watch);
    s->watch = NULL;
    for (struct sup_fn *f = s->fns; f; f = f->next) {
        if (!f->removed) {
            f->removed = true;
            if (f->ev_listen)
                event_del(f->ev_listen);
            f->armed = false;
            if (f->sock_path)
                unlink(f->sock_path);
        }
    }
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
    watch_free(s->watch);
    status_free(s->status);
    poolctl_free(s->pool);
    s->pool = NULL;
    while (s->fns) {
        struct sup_fn *f = s->fns;
        s->fns = f->next;
        sup_fn_free(f);
    }
    mx_free(s->mx);
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
    struct fn_list *l = NULL;
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
    l = fn_discover(s.conf, err, sizeof(err));
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
    signal(SIGPIPE, SIG_IGN);
    s.base = event_base_new();
    if (!s.base) {
        log_error("event_base_new failed");
        goto out;
    }
    s.ev_tick = evtimer_new(s.base, sup_tick, &s);
    s.mx = mx_new();
    if (!s.mx || reqlog_apply(&s.reqlog, s.conf->gw.request_log) < 0)
        goto out;
    mx_set_reqlog(s.mx, s.reqlog);
    s.poolstat = poolstat_new();
    poolstat_set_slow(s.poolstat, s.conf->gw.slow_query_ms);
    s.status = status_new(s.base, s.conf->gw.socket_dir, s.conf->gw.socket_mode, s.sock_gid, s.mx,
                          err, sizeof(err));
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
        mx_set_pool(s.mx, s.poolstat);
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
        f = sup_fn_new(&s, &l->fns[i], err, sizeof(err));
        if (!f) {
            /* Only this function is lost: the others serve. */
            log_warnx("[fn %s] not served: %s", name, err);
            continue;
        }
        f->next = s.fns;
        s.fns = f;
    }
    n_fns = l->n;
    fn_list_free(l);
    l = NULL;
    log_info("fngate %s: %zu function%s from %s, sockets in %s/fn%s", PACKAGE_VERSION, n_fns,
             n_fns == 1 ? "" : "s", s.conf->gw.functions_dir, s.conf->gw.socket_dir,
             s.drop ? ", each function its own uid" : "");
    for (struct sup_fn *f = s.fns; f; f = f->next)
        sup_fn_scale(f, sup_now_ns());
    sup_tick_ensure(&s);
    if (event_base_dispatch(s.base) < 0) {
        log_error("event loop failed");
        goto out;
    }
    /* Nothing a function started outlives the gateway; then reap anything
     * still reported (pid 1 duty, and no zombies left). */
    if (proc_orphans_kill(sup_pid_known, &s) > 0)
        usleep(10000);
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    log_info("stopped");
    rc = 0;
out:
    fn_list_free(l);
    sup_free(&s);
    return rc;
}
