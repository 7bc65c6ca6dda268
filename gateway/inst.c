/*
 * Instances.  An instance is one handler process with its scoreboard slot,
 * its stdio pipe (instio.c) and, with a database, its pool channel.  It is
 * asked to stop between requests (flag in its slot, then SIGTERM); police.c
 * in supfn.c decides the escalation.  Its exit is logged with function,
 * pid, status and uptime, and an unasked exit that served nothing counts as
 * a crash so a program that dies at once is respawned under backoff, not
 * in a tight loop.
 */
#include "config.h"

#include "sup.h"
#include "inst.h"
#include "supfn.h"

#include "assign.h"
#include "backlog.h"
#include "childsetup.h"
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

static const char *const inst_why_names[] = {
    "", "idle", "retired", "drain", "request timeout", "did not stop", "did not start"};
static const enum metrics_exit inst_why_exit[] = {
    METRICS_EXIT_NONE,    METRICS_EXIT_IDLE, METRICS_EXIT_RELOAD, METRICS_EXIT_STOP,
    METRICS_EXIT_TIMEOUT, METRICS_EXIT_STOP, METRICS_EXIT_CRASH};

void inst_spare_done(struct inst *in)
{
    if (in->spare_sock >= 0)
        close(in->spare_sock);
    in->spare_sock = -1;
}

void inst_free(struct inst *in)
{
    if (!in)
        return;
    inst_spare_done(in);
    instio_free(in->io);
    metrics_inst_free(in->metrics);
    scoreboard_free(in->scoreboard);
    free(in);
}

void inst_signal(struct inst *in, int sig)
{
    if (kill(in->pid, sig) < 0 && errno != ESRCH)
        log_warn("[fn %s pid %d] kill(%d)", in->fn->desc.name, (int)in->pid, sig);
}

/* Asks an instance to stop between requests. */
void inst_stop(struct inst *in, enum inst_why why, int64_t now)
{
    if (in->term_ns)
        return;
    in->term_ns = now;
    in->why = why;
    metrics_inst_stopping(in->metrics, inst_why_exit[why]);
    /* The flag is seen between requests even under continuous load, when
     * the instance never waits long enough to take the signal. */
    FNSDK_SCOREBOARD_STORE(in->scoreboard->slot->stop_req, 1u);
    inst_signal(in, SIGTERM);
}

/* A cold start through a spare process, when F has a handler.so and a
 * spare waits: the set-up CS describes (its descriptors, identity, limits
 * and sandbox) goes to it in one message.  Returns its pid with *LOG_FD its
 * log pipe, or -1 for the exec path (nothing to take, or the hand-over
 * failed: logged, and the spare is killed and its exit logged when
 * reaped). */
#define INST_SPARE_MIN_MEMORY ((int64_t)16 << 20)

static pid_t inst_from_spare(struct sup_fn *f, const struct childsetup *cs, int *log_fd, int *sock)
{
    struct spare_pool *pool = f->sup->spares;
    struct spare *sp;
    pid_t pid;

    if (!cs->so_path || f->so_broken || !spare_pool_ready(pool))
        return -1;
    /* A waiting spare already maps about 3 MB (the SDK and the C library,
     * dynamically linked), and the .so's own libraries come on top: a tight
     * memory_limit is for the static handler (about 1.2 MB), not a spare. */
    if (cs->memory_limit > 0 && cs->memory_limit < INST_SPARE_MIN_MEMORY)
        return -1;
    /* Checked before the take: an environment too big to send must not
     * cost the spare another function's cold start would use. */
    if (assign_size(cs) > ASSIGN_MAX) {
        log_debug("[fn %s] environment too big for a spare's assignment: exec", f->desc.name);
        return -1;
    }
    if (!(sp = spare_pool_take(pool)))
        return -1;
    if (spare_assign(pool, sp, cs) < 0) {
        log_warn("[fn %s pid %d] cannot hand the cold start to the spare: exec instead",
                 f->desc.name, (int)sp->pid);
        spare_free(pool, sp, false);
        return -1;
    }
    pid = sp->pid;
    *log_fd = sp->log_fd;
    *sock = sp->sock;
    sp->sock = -1;
    spare_free(pool, sp, true);
    return pid;
}

int inst_spawn(struct sup_fn *f, int64_t now)
{
    struct sup *s = f->sup;
    struct inst *in = calloc(1, sizeof(*in));
    struct childsetup cs;
    int log_fd = -1, db_fd = -1, pool_fd = -1;

    if (!in) {
        log_warn("[fn %s] spawn", f->desc.name);
        return -1;
    }
    in->fn = f;
    in->gen = f->gen;
    in->spare_sock = -1;
    in->scoreboard = scoreboard_new_log(f->desc.name, s->reqlog ? REQLOG_RING_BYTES : 0);
    if (!in->scoreboard)
        goto fail;
    if (s->pool && poolctl_channel(s->pool, &db_fd, &pool_fd) < 0)
        goto fail;
    /* The one description of the instance, for both ways of starting it. */
    childsetup_init(&cs);
    cs.path = f->desc.handler;
    cs.argv = f->argv;
    cs.so_path = f->desc.handler_so;
    cs.cwd = f->desc.dir;
    cs.envp = f->envp;
    cs.listen_fd = f->listen_fd;
    cs.db_fd = db_fd;
    cs.scoreboard_fd = in->scoreboard->fd;
    cs.memory_limit = f->desc.set.memory_limit;
    cs.open_files = f->desc.set.open_files;
    cs.drop_privileges = f->id.drop;
    cs.uid = f->id.uid;
    cs.gid = f->id.gid;
    cs.sandbox = sandbox_fn_on(f->sandbox);
    cs.ruleset_fd = sandbox_fn_ruleset(f->sandbox);
    cs.bpf = cs.sandbox ? sandbox_filter() : NULL;
    cs.execve_ns = &in->exec_ns[1];
    in->exec_ns[0] = sup_now_ns();
    in->pid = inst_from_spare(f, &cs, &log_fd, &in->spare_sock);
    if (in->pid > 0)
        in->spare = true;
    else
        in->pid = proc_spawn(&cs, &log_fd);
    in->exec_ns[2] = sup_now_ns();
    scoreboard_close_fd(in->scoreboard);
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
    in->metrics = metrics_inst_new(f->metrics, in->pid, cs.drop_privileges ? cs.uid : getuid(),
                                   in->scoreboard, now);
    in->next = f->insts;
    f->insts = in;
    f->n_insts++;
    log_debug("[fn %s pid %d] spawned (generation %u%s)", f->desc.name, (int)in->pid, f->gen,
              in->spare ? ", spare process" : "");
    sup_tick_ensure(s);
    return 0;
fail:
    inst_free(in);
    return -1;
}

void inst_served(const struct inst *in, double *ns, uint64_t *n)
{
    uint64_t reqs = FNSDK_SCOREBOARD_LOAD(in->scoreboard->slot->requests);
    double dur = (double)FNSDK_SCOREBOARD_LOAD(in->scoreboard->slot->dur_sum_ns);

    /* Claims: at most a minute a request, and no more requests than a
     * process could serve in a day, so one lying slot cannot swamp the
     * figure of the rest. */
    if (reqs == 0 || reqs > UINT64_C(100000000000))
        return;
    if (dur > (double)reqs * 60e9)
        dur = (double)reqs * 60e9;
    *ns += dur;
    *n += reqs;
}

/* Logs the exit, classifies it, and frees the instance. */
void inst_exited(struct inst *in, int status, int64_t now)
{
    struct sup_fn *f = in->fn;
    char what[96], extra[160];
    double up = (double)(now - in->spawned_ns) / 1e9;
    uint64_t served = FNSDK_SCOREBOARD_LOAD(in->scoreboard->slot->requests);
    /* A start the police killed was not asked to leave: it failed. */
    bool asked =
        (in->term_ns || in->timeout_ns || in->kill_ns || in->pi.check_ns) && in->why != WHY_START;
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
    /* A spare that could not load the function's handler.so (it said why
     * on its stderr, just logged) or never got ready: its other cold starts
     * exec the handler until a reload brings a new one. */
    if (in->spare && !asked && served == 0 && !f->so_broken &&
        ((WIFEXITED(status) && WEXITSTATUS(status) == 127) || in->why == WHY_START)) {
        f->so_broken = true;
        log_warnx("[fn %s] %s cannot be loaded by a spare process: cold starts exec the handler "
                  "until it changes",
                  f->desc.name, f->desc.handler_so);
    }
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

    inst_served(in, &f->served_ns, &f->served_n);
    if (in->why == WHY_TIMEOUT) /* also after SIGUSR2, when the SDK timed itself out */
        metrics_inst_stopping(in->metrics, METRICS_EXIT_TIMEOUT);
    metrics_inst_exited(in->metrics, crash, crash ? f->last_exit : what, now);
    in->metrics = NULL;
    for (struct inst **p = &f->insts; *p; p = &(*p)->next) {
        if (*p == in) {
            *p = in->next;
            f->n_insts--;
            break;
        }
    }
    inst_free(in);
    /* A replacement for whoever is waiting, without waiting for the tick. */
    supfn_scale(f, now);
}
