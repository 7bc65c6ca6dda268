/*
 * Figures without the supervisor on the request path.  Each instance counts
 * its own requests in its scoreboard slot (status codes, duration and
 * queue-wait buckets); this module reads the slots when someone asks, and
 * when an instance exits folds what it counted into its function's totals,
 * so a counter keeps what a crashed, killed or recycled instance served.
 *
 * A slot is written by an untrusted program.  Its claims are taken through a
 * private copy per instance that only ever grows (a field read lower than
 * before keeps the old value), codes outside 100..599 are not counted, and
 * sums saturate: a hostile function can make its own figures wrong, never
 * another function's, and never make a counter go backwards.
 */
#include "config.h"

#include "metrics.h"

#include "log.h"
#include "pool/poolstat.h"
#include "reqlog.h"
#include "sock.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MX_CODE_MIN 100
#define MX_CODE_MAX 599
#define MX_RATE_SAMPLES 8
#define MX_COLD_N 17

static const char *const mx_exit_names[MX_EXIT_N] = {"",        "idle",   "timeout", "crash",
                                                     "recycle", "reload", "stop"};
static const char *const mx_rej_names[MX_REJ_N] = {"queue_timeout", "cannot_start", "overload",
                                                   "shutdown"};
static const char *const mx_state_names[4] = {"starting", "idle", "busy", "draining"};

/* Cold starts are about a millisecond: fine buckets there. */
static const double mx_cold_le[MX_COLD_N - 1] = {0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002,
                                                 0.003,   0.005,  0.0075,  0.01,  0.025,  0.05,
                                                 0.1,     0.25,   0.5,     1.0};
static double mx_hist_le[FN_SB_HIST - 1];

/* What a slot claims, as kept: every field only grows. */
struct mx_counts {
    uint64_t dur[FN_SB_HIST], queue[FN_SB_HIST];
    uint64_t dur_sum, queue_sum;
    uint64_t queue_timeouts;
    uint64_t log_dropped;
    uint32_t code[FN_SB_CODES];
    uint64_t code_n[FN_SB_CODES];
};

struct mx_hist {
    uint64_t b[MX_COLD_N];
    double sum;
};

struct mx_inst {
    struct mx_inst *next;
    struct mx_fn *fn;
    pid_t pid;
    uid_t uid;
    struct scoreboard *scoreboard; /* borrowed */
    int64_t spawned_ns;
    bool ready_seen, first_seen, stopping;
    enum mx_exit why;
    uint64_t log_tail; /* ours: the slot's copy is only a hint to the instance */
    struct mx_counts seen;
};

struct mx_fn {
    struct mx_fn *next;
    struct mx *mx;
    const struct discover_fn *desc; /* borrowed */
    int listen_fd;
    struct mx_inst *insts;
    /* Folded from exited instances. */
    uint64_t dur[FN_SB_HIST], queue[FN_SB_HIST];
    double dur_sum, queue_sum;
    uint64_t codes[MX_CODE_MAX + 1]; /* [0]: codes the table had no room for */
    uint64_t log_dropped;
    /* The supervisor's own. */
    struct reqlog_budget log_budget; /* lines its instances may write */
    uint64_t cold_starts;
    struct mx_hist cold, first;
    uint64_t exits[MX_EXIT_N];
    uint64_t rejected[MX_REJ_N];
    int crashes_in_row;
    char last_error[160];
    /* req/s: (time, requests) once a second. */
    int64_t rate_t[MX_RATE_SAMPLES];
    uint64_t rate_n[MX_RATE_SAMPLES];
    int rate_i, rate_len;
};

struct mx {
    struct mx_fn *fns;
    struct reqlog *rl;
    const struct poolstat *pool;
    uint64_t reloads;
    int spares_ready, spares_wanted; /* spare processes (spare.c) */
    uint64_t spares_assigned, spares_failed;
    double start_time; /* wall clock, seconds */
};

/* A function's figures at one moment: folded totals plus live slots. */
struct mx_view {
    struct mx_fn *fn;
    uint64_t dur[FN_SB_HIST], queue[FN_SB_HIST];
    double dur_sum, queue_sum;
    uint64_t codes[MX_CODE_MAX + 1];
    uint64_t requests, errors, queue_timeouts;
    int states[4];
    int live, queue_len;
    double rate;
};

static int64_t mx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t mx_sat_add(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

static void mx_hist_observe(struct mx_hist *h, const double *le, int n, double v)
{
    int i = 0;
    while (i < n - 1 && v > le[i])
        i++;
    h->b[i]++;
    h->sum += v;
}

struct mx *mx_new(void)
{
    struct mx *mx = calloc(1, sizeof(*mx));
    struct timespec ts;

    if (!mx)
        return NULL;
    for (int i = 0; i < FN_SB_HIST - 1; i++)
        mx_hist_le[i] = (double)fn_sb_hist_le_ns[i] / 1e9;
    clock_gettime(CLOCK_REALTIME, &ts);
    mx->start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    return mx;
}

void mx_free(struct mx *mx)
{
    if (!mx)
        return;
    while (mx->fns)
        mx_fn_free(mx->fns);
    free(mx);
}

void mx_set_reqlog(struct mx *mx, struct reqlog *rl)
{
    if (mx)
        mx->rl = rl;
}

void mx_set_pool(struct mx *mx, const struct poolstat *ps)
{
    if (mx)
        mx->pool = ps;
}

void mx_set_spares(struct mx *mx, int ready, int wanted, uint64_t assigned, uint64_t failed)
{
    if (!mx)
        return;
    mx->spares_ready = ready;
    mx->spares_wanted = wanted;
    mx->spares_assigned = assigned;
    mx->spares_failed = failed;
}

void mx_reloaded(struct mx *mx)
{
    if (mx)
        mx->reloads++;
}

struct mx_fn *mx_fn_new(struct mx *mx, const struct discover_fn *desc, int listen_fd)
{
    struct mx_fn *fm;

    if (!mx || !(fm = calloc(1, sizeof(*fm))))
        return NULL;
    fm->mx = mx;
    fm->desc = desc;
    fm->listen_fd = listen_fd;
    fm->next = mx->fns;
    mx->fns = fm;
    return fm;
}

void mx_fn_free(struct mx_fn *fm)
{
    if (!fm)
        return;
    while (fm->insts)
        mx_inst_free(fm->insts);
    for (struct mx_fn **p = &fm->mx->fns; *p; p = &(*p)->next) {
        if (*p == fm) {
            *p = fm->next;
            break;
        }
    }
    free(fm);
}

void mx_fn_rejected(struct mx_fn *fm, enum mx_rej why, int n)
{
    if (!fm || n <= 0 || why >= MX_REJ_N)
        return;
    fm->rejected[why] += (uint64_t)n;
    fm->codes[503] += (uint64_t)n;
}

struct mx_inst *mx_inst_new(struct mx_fn *fm, pid_t pid, uid_t uid, struct scoreboard *sb,
                            int64_t spawned_ns)
{
    struct mx_inst *mi;

    if (!fm || !(mi = calloc(1, sizeof(*mi))))
        return NULL;
    mi->fn = fm;
    mi->pid = pid;
    mi->uid = uid;
    mi->scoreboard = sb;
    mi->spawned_ns = spawned_ns;
    mi->next = fm->insts;
    fm->insts = mi;
    fm->cold_starts++;
    return mi;
}

void mx_inst_stopping(struct mx_inst *mi, enum mx_exit why)
{
    if (!mi || mi->stopping)
        return;
    mi->stopping = true;
    mi->why = why;
}

static void mx_grow(uint64_t *seen, uint64_t v)
{
    if (v > *seen)
        *seen = v;
}

/* Takes the slot's claims into MI->seen, and the cold-start times once. */
static void mx_inst_sync(struct mx_inst *mi, int64_t now)
{
    struct fn_sb_slot *sl = mi->scoreboard->slot;
    struct mx_counts *c = &mi->seen;

    for (int i = 0; i < FN_SB_HIST; i++) {
        mx_grow(&c->dur[i], FN_SB_LOAD(sl->dur_hist[i]));
        mx_grow(&c->queue[i], FN_SB_LOAD(sl->queue_hist[i]));
    }
    mx_grow(&c->dur_sum, FN_SB_LOAD(sl->dur_sum_ns));
    mx_grow(&c->queue_sum, FN_SB_LOAD(sl->queue_sum_ns));
    mx_grow(&c->queue_timeouts, FN_SB_LOAD(sl->queue_timeouts));
    mx_grow(&c->log_dropped, FN_SB_LOAD(sl->log_dropped));
    for (int i = 0; i < FN_SB_CODES; i++) {
        uint32_t code = FN_SB_LOAD(sl->codes[i].code);
        uint64_t n = FN_SB_LOAD(sl->codes[i].n);
        bool valid =
            (code >= MX_CODE_MIN && code <= MX_CODE_MAX) || (code == 0 && i == FN_SB_CODES - 1);
        if (!valid)
            continue;
        if (c->code_n[i] == 0 && c->code[i] == 0)
            c->code[i] = code;
        /* An entry never changes its code: a slot that says otherwise is
         * not believed for that entry again. */
        if (c->code[i] == code)
            mx_grow(&c->code_n[i], n);
    }
    if (!mi->ready_seen) {
        int64_t r = (int64_t)FN_SB_LOAD(sl->ready_ns);
        if (r) {
            mi->ready_seen = true;
            if (r < mi->spawned_ns || r > now)
                r = now;
            mx_hist_observe(&mi->fn->cold, mx_cold_le, MX_COLD_N,
                            (double)(r - mi->spawned_ns) / 1e9);
        }
    }
    if (!mi->first_seen) {
        int64_t r = (int64_t)FN_SB_LOAD(sl->first_resp_ns);
        if (r) {
            mi->first_seen = true;
            if (r < mi->spawned_ns || r > now)
                r = now;
            mx_hist_observe(&mi->fn->first, mx_cold_le, MX_COLD_N,
                            (double)(r - mi->spawned_ns) / 1e9);
        }
    }
}

static void mx_inst_drain(struct mx_inst *mi)
{
    size_t size;
    char *ring = scoreboard_log_ring(mi->scoreboard, &size);

    if (ring && mi->fn->mx->rl)
        reqlog_drain(mi->fn->mx->rl, &mi->fn->log_budget, mi->fn->desc->name, mi->pid,
                     mi->scoreboard->slot, ring, size, &mi->log_tail);
}

static void mx_inst_unlink(struct mx_inst *mi)
{
    for (struct mx_inst **p = &mi->fn->insts; *p; p = &(*p)->next) {
        if (*p == mi) {
            *p = mi->next;
            break;
        }
    }
}

void mx_inst_free(struct mx_inst *mi)
{
    if (!mi)
        return;
    mx_inst_unlink(mi);
    free(mi);
}

static uint64_t mx_code_slot(uint32_t code)
{
    return code >= MX_CODE_MIN && code <= MX_CODE_MAX ? code : 0;
}

void mx_inst_exited(struct mx_inst *mi, bool crash, const char *how, int64_t now)
{
    struct mx_fn *fm;
    struct mx_counts *c;
    uint64_t served = 0;
    enum mx_exit why;

    if (!mi)
        return;
    fm = mi->fn;
    c = &mi->seen;
    mx_inst_sync(mi, now);
    mx_inst_drain(mi);
    for (int i = 0; i < FN_SB_HIST; i++) {
        fm->dur[i] = mx_sat_add(fm->dur[i], c->dur[i]);
        fm->queue[i] = mx_sat_add(fm->queue[i], c->queue[i]);
    }
    fm->dur_sum += (double)c->dur_sum / 1e9;
    fm->queue_sum += (double)c->queue_sum / 1e9;
    fm->rejected[MX_REJ_QUEUE_TIMEOUT] =
        mx_sat_add(fm->rejected[MX_REJ_QUEUE_TIMEOUT], c->queue_timeouts);
    fm->log_dropped = mx_sat_add(fm->log_dropped, c->log_dropped);
    for (int i = 0; i < FN_SB_CODES; i++) {
        uint64_t k = mx_code_slot(c->code[i]);
        fm->codes[k] = mx_sat_add(fm->codes[k], c->code_n[i]);
        served = mx_sat_add(served, c->code_n[i]);
    }
    if (mi->stopping && mi->why == MX_EXIT_TIMEOUT)
        why = MX_EXIT_TIMEOUT; /* killed or exiting for it: not a crash */
    else if (crash)
        why = MX_EXIT_CRASH;
    else if (mi->stopping)
        why = mi->why;
    else
        why = MX_EXIT_RECYCLE; /* left by itself, cleanly: max_requests */
    if (why <= MX_EXIT_NONE || why >= MX_EXIT_N)
        why = MX_EXIT_STOP;
    fm->exits[why]++;
    if (crash) {
        fm->crashes_in_row = served ? 1 : fm->crashes_in_row + 1;
        snprintf(fm->last_error, sizeof(fm->last_error), "%s", how ? how : "crashed");
    } else if (served) {
        fm->crashes_in_row = 0;
    }
    mx_inst_free(mi);
}

static void mx_rate_sample(struct mx_fn *fm, int64_t now, uint64_t total)
{
    int last = (fm->rate_i + MX_RATE_SAMPLES - 1) % MX_RATE_SAMPLES;

    if (fm->rate_len && now - fm->rate_t[last] < 1000000000)
        return;
    fm->rate_t[fm->rate_i] = now;
    fm->rate_n[fm->rate_i] = total;
    fm->rate_i = (fm->rate_i + 1) % MX_RATE_SAMPLES;
    if (fm->rate_len < MX_RATE_SAMPLES)
        fm->rate_len++;
}

/* Requests per second over the samples of the last few seconds. */
static double mx_rate(const struct mx_fn *fm, int64_t now, uint64_t total)
{
    int oldest = -1;

    for (int k = 0; k < fm->rate_len; k++) {
        int i = (fm->rate_i + MX_RATE_SAMPLES - fm->rate_len + k) % MX_RATE_SAMPLES;
        if (now - fm->rate_t[i] <= (int64_t)5 * 1000000000 && now - fm->rate_t[i] >= 500000000) {
            oldest = i;
            break;
        }
    }
    if (oldest < 0 || total < fm->rate_n[oldest])
        return 0;
    return (double)(total - fm->rate_n[oldest]) / ((double)(now - fm->rate_t[oldest]) / 1e9);
}

static void mx_view(struct mx_fn *fm, int64_t now, struct mx_view *v)
{
    memset(v, 0, sizeof(*v));
    v->fn = fm;
    memcpy(v->dur, fm->dur, sizeof(v->dur));
    memcpy(v->queue, fm->queue, sizeof(v->queue));
    memcpy(v->codes, fm->codes, sizeof(v->codes));
    v->dur_sum = fm->dur_sum;
    v->queue_sum = fm->queue_sum;
    v->queue_timeouts = fm->rejected[MX_REJ_QUEUE_TIMEOUT];
    for (struct mx_inst *mi = fm->insts; mi; mi = mi->next) {
        struct mx_counts *c = &mi->seen;
        uint32_t st;
        mx_inst_sync(mi, now);
        for (int i = 0; i < FN_SB_HIST; i++) {
            v->dur[i] = mx_sat_add(v->dur[i], c->dur[i]);
            v->queue[i] = mx_sat_add(v->queue[i], c->queue[i]);
        }
        v->dur_sum += (double)c->dur_sum / 1e9;
        v->queue_sum += (double)c->queue_sum / 1e9;
        v->queue_timeouts = mx_sat_add(v->queue_timeouts, c->queue_timeouts);
        for (int i = 0; i < FN_SB_CODES; i++) {
            uint64_t k = mx_code_slot(c->code[i]);
            v->codes[k] = mx_sat_add(v->codes[k], c->code_n[i]);
        }
        st = FN_SB_LOAD(mi->scoreboard->slot->state);
        if (mi->stopping || st == FN_SB_STOPPING)
            v->states[3]++;
        else if (st == FN_SB_STARTING)
            v->states[0]++;
        else if (st == FN_SB_IDLE)
            v->states[1]++;
        else
            v->states[2]++;
        v->live++;
    }
    for (int k = 0; k <= MX_CODE_MAX; k++) {
        v->requests = mx_sat_add(v->requests, v->codes[k]);
        if (k >= 500 || k == 0)
            v->errors = mx_sat_add(v->errors, v->codes[k]);
    }
    v->queue_len = fm->listen_fd >= 0 ? sock_queue_len(fm->listen_fd) : 0;
    mx_rate_sample(fm, now, v->requests);
    v->rate = mx_rate(fm, now, v->requests);
}

void mx_tick(struct mx *mx, int64_t now)
{
    if (!mx)
        return;
    for (struct mx_fn *fm = mx->fns; fm; fm = fm->next) {
        uint64_t total = 0;
        for (struct mx_inst *mi = fm->insts; mi; mi = mi->next) {
            mx_inst_sync(mi, now);
            mx_inst_drain(mi);
        }
        if (fm->rate_len &&
            now - fm->rate_t[(fm->rate_i + MX_RATE_SAMPLES - 1) % MX_RATE_SAMPLES] < 1000000000)
            continue;
        /* Saturating like mx_view's total: the two feed the same samples. */
        for (int k = 0; k <= MX_CODE_MAX; k++)
            total = mx_sat_add(total, fm->codes[k]);
        for (struct mx_inst *mi = fm->insts; mi; mi = mi->next) {
            for (int i = 0; i < FN_SB_CODES; i++)
                total = mx_sat_add(total, mi->seen.code_n[i]);
        }
        mx_rate_sample(fm, now, total);
    }
}

double mx_quantile(const uint64_t *b, const double *le, int n, double q)
{
    uint64_t total = 0, cum = 0;
    double rank;

    /* The counts are instances' claims: saturate, never wrap. */
    for (int i = 0; i < n; i++)
        total = mx_sat_add(total, b[i]);
    if (!total)
        return -1;
    rank = q * (double)total;
    for (int i = 0; i < n; i++) {
        double lo = i ? le[i - 1] : 0, hi;
        if ((double)mx_sat_add(cum, b[i]) < rank) {
            cum = mx_sat_add(cum, b[i]);
            continue;
        }
        if (i == n - 1)
            return lo; /* the +Inf bucket: its lower bound is all we know */
        hi = le[i];
        return lo + (hi - lo) * ((rank - (double)cum) / (double)(b[i] ? b[i] : 1));
    }
    return le[n - 2];
}

/* ------------------------------------------------------------------------
 * Renderings
 */

/* Views of every function, sorted by name.  Caller frees. */
static struct mx_view *mx_views(struct mx *mx, size_t *n)
{
    int64_t now = mx_now_ns();
    size_t k = 0, cap = 0;
    struct mx_view *v;

    for (struct mx_fn *fm = mx->fns; fm; fm = fm->next)
        cap++;
    v = calloc(cap ? cap : 1, sizeof(*v));
    if (!v) {
        *n = 0;
        return NULL;
    }
    for (struct mx_fn *fm = mx->fns; fm; fm = fm->next) {
        size_t j = k++;
        mx_view(fm, now, &v[j]);
        while (j > 0 && strcmp(v[j - 1].fn->desc->name, v[j].fn->desc->name) > 0) {
            struct mx_view t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
            j--;
        }
    }
    *n = k;
    return v;
}

static void mx_prom_head(struct evbuffer *o, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void mx_prom_hist(struct evbuffer *o, const char *name, const char *labels,
                         const uint64_t *b, const double *le, int n, double sum)
{
    uint64_t cum = 0;
    for (int i = 0; i < n; i++) {
        cum = mx_sat_add(cum, b[i]); /* b[] holds an instance's claims */
        if (i < n - 1)
            evbuffer_add_printf(o, "%s_bucket{%s,le=\"%g\"} %" PRIu64 "\n", name, labels, le[i],
                                cum);
        else
            evbuffer_add_printf(o, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, labels, cum);
    }
    evbuffer_add_printf(o, "%s_sum{%s} %.9g\n%s_count{%s} %" PRIu64 "\n", name, labels, sum, name,
                        labels, cum);
}

void mx_render_prom(struct mx *mx, struct evbuffer *o)
{
    size_t n;
    struct mx_view *v = mx_views(mx, &n);
    char l[160];

    mx_prom_head(o, "fngate_build_info", "gauge", "fngate's version (always 1).");
    evbuffer_add_printf(o, "fngate_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
    mx_prom_head(o, "fngate_start_time_seconds", "gauge",
                 "When the gateway started, in seconds since the epoch.");
    evbuffer_add_printf(o, "fngate_start_time_seconds %.3f\n", mx->start_time);
    mx_prom_head(o, "fngate_reloads_total", "counter", "Configuration reloads applied.");
    evbuffer_add_printf(o, "fngate_reloads_total %" PRIu64 "\n", mx->reloads);
    mx_prom_head(o, "fngate_spare_processes", "gauge",
                 "Spare processes waiting for a cold start, and how many are kept.");
    evbuffer_add_printf(o, "fngate_spare_processes{state=\"ready\"} %d\n", mx->spares_ready);
    evbuffer_add_printf(o, "fngate_spare_processes{state=\"wanted\"} %d\n", mx->spares_wanted);
    mx_prom_head(o, "fngate_spare_assignments_total", "counter",
                 "Cold starts handed to a spare process, by whether the hand-over worked.");
    evbuffer_add_printf(o, "fngate_spare_assignments_total{result=\"ok\"} %" PRIu64 "\n",
                        mx->spares_assigned);
    evbuffer_add_printf(o, "fngate_spare_assignments_total{result=\"failed\"} %" PRIu64 "\n",
                        mx->spares_failed);

    mx_prom_head(o, "fngate_requests_total", "counter",
                 "Requests answered, by function and HTTP status.");
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k <= MX_CODE_MAX; k++) {
            if (v[i].codes[k])
                evbuffer_add_printf(
                    o, "fngate_requests_total{function=\"%s\",code=\"%s%.0d\"} %" PRIu64 "\n",
                    v[i].fn->desc->name, k ? "" : "other", k, v[i].codes[k]);
        }
    }
    mx_prom_head(o, "fngate_request_duration_seconds", "histogram",
                 "Time in the handler, from accept to the end of the response.");
    for (size_t i = 0; i < n; i++) {
        snprintf(l, sizeof(l), "function=\"%s\"", v[i].fn->desc->name);
        mx_prom_hist(o, "fngate_request_duration_seconds", l, v[i].dur, mx_hist_le, FN_SB_HIST,
                     v[i].dur_sum);
    }
    mx_prom_head(o, "fngate_queue_wait_seconds", "histogram",
                 "From nginx handing the request on to the handler starting (nginx's "
                 "millisecond resolution).");
    for (size_t i = 0; i < n; i++) {
        snprintf(l, sizeof(l), "function=\"%s\"", v[i].fn->desc->name);
        mx_prom_hist(o, "fngate_queue_wait_seconds", l, v[i].queue, mx_hist_le, FN_SB_HIST,
                     v[i].queue_sum);
    }
    mx_prom_head(o, "fngate_cold_starts_total", "counter", "Instances started.");
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(o, "fngate_cold_starts_total{function=\"%s\"} %" PRIu64 "\n",
                            v[i].fn->desc->name, v[i].fn->cold_starts);
    mx_prom_head(o, "fngate_cold_start_duration_seconds", "histogram",
                 "From spawn to the instance ready to accept.");
    for (size_t i = 0; i < n; i++) {
        snprintf(l, sizeof(l), "function=\"%s\"", v[i].fn->desc->name);
        mx_prom_hist(o, "fngate_cold_start_duration_seconds", l, v[i].fn->cold.b, mx_cold_le,
                     MX_COLD_N, v[i].fn->cold.sum);
    }
    mx_prom_head(o, "fngate_cold_start_first_response_seconds", "histogram",
                 "From spawn to the end of the instance's first response.");
    for (size_t i = 0; i < n; i++) {
        snprintf(l, sizeof(l), "function=\"%s\"", v[i].fn->desc->name);
        mx_prom_hist(o, "fngate_cold_start_first_response_seconds", l, v[i].fn->first.b, mx_cold_le,
                     MX_COLD_N, v[i].fn->first.sum);
    }
    mx_prom_head(o, "fngate_instances", "gauge", "Instances, by state.");
    for (size_t i = 0; i < n; i++) {
        for (int s = 0; s < 4; s++)
            evbuffer_add_printf(o, "fngate_instances{function=\"%s\",state=\"%s\"} %d\n",
                                v[i].fn->desc->name, mx_state_names[s], v[i].states[s]);
    }
    mx_prom_head(o, "fngate_instances_max", "gauge", "The function's max_instances.");
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(o, "fngate_instances_max{function=\"%s\"} %d\n", v[i].fn->desc->name,
                            v[i].fn->desc->set.max_instances);
    mx_prom_head(o, "fngate_queue_length", "gauge",
                 "Connections waiting in the function's socket backlog (sock_diag).");
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(o, "fngate_queue_length{function=\"%s\"} %d\n", v[i].fn->desc->name,
                            v[i].queue_len);
    mx_prom_head(o, "fngate_instance_exits_total", "counter", "Instances gone, by reason.");
    for (size_t i = 0; i < n; i++) {
        for (int r = 1; r < MX_EXIT_N; r++)
            evbuffer_add_printf(
                o, "fngate_instance_exits_total{function=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
                v[i].fn->desc->name, mx_exit_names[r], v[i].fn->exits[r]);
    }
    mx_prom_head(o, "fngate_rejected_total", "counter",
                 "Requests answered without running the handler, by reason.");
    for (size_t i = 0; i < n; i++) {
        for (int r = 0; r < MX_REJ_N; r++) {
            uint64_t c = r == MX_REJ_QUEUE_TIMEOUT ? v[i].queue_timeouts : v[i].fn->rejected[r];
            evbuffer_add_printf(
                o, "fngate_rejected_total{function=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
                v[i].fn->desc->name, mx_rej_names[r], c);
        }
    }
    mx_prom_head(o, "fngate_request_log_dropped_total", "counter",
                 "Request-log lines dropped because the gateway had not drained the ring.");
    for (size_t i = 0; i < n; i++) {
        uint64_t d = mx_sat_add(v[i].fn->log_dropped, v[i].fn->log_budget.dropped);
        for (struct mx_inst *mi = v[i].fn->insts; mi; mi = mi->next)
            d = mx_sat_add(d, mi->seen.log_dropped);
        evbuffer_add_printf(o, "fngate_request_log_dropped_total{function=\"%s\"} %" PRIu64 "\n",
                            v[i].fn->desc->name, d);
    }
    if (mx->pool)
        poolstat_render_prom(mx->pool, o);
    free(v);
}

static void mx_json_str(struct evbuffer *o, const char *s)
{
    evbuffer_add(o, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            evbuffer_add_printf(o, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            evbuffer_add_printf(o, "\\u%04x", *p);
        else
            evbuffer_add(o, p, 1);
    }
    evbuffer_add(o, "\"", 1);
}

static void mx_json_num(struct evbuffer *o, double v)
{
    if (v < 0 || isnan(v) || isinf(v))
        evbuffer_add_printf(o, "null");
    else
        evbuffer_add_printf(o, "%.6g", v);
}

static void mx_json_hist(struct evbuffer *o, const char *key, const uint64_t *b, const double *le,
                         int n, double sum)
{
    uint64_t count = 0;
    evbuffer_add_printf(o, "\"%s\":{\"le\":[", key);
    for (int i = 0; i < n - 1; i++)
        evbuffer_add_printf(o, "%s%g", i ? "," : "", le[i]);
    evbuffer_add_printf(o, "],\"buckets\":[");
    for (int i = 0; i < n; i++) {
        evbuffer_add_printf(o, "%s%" PRIu64, i ? "," : "", b[i]);
        count = mx_sat_add(count, b[i]);
    }
    evbuffer_add_printf(o, "],\"count\":%" PRIu64 ",\"sum\":%.9g,\"p50\":", count, sum);
    mx_json_num(o, mx_quantile(b, le, n, 0.5));
    evbuffer_add_printf(o, ",\"p99\":");
    mx_json_num(o, mx_quantile(b, le, n, 0.99));
    evbuffer_add_printf(o, "}");
}

static const char *mx_state_name(const struct mx_inst *mi)
{
    uint32_t st = FN_SB_LOAD(mi->scoreboard->slot->state);
    if (mi->stopping || st == FN_SB_STOPPING)
        return "draining";
    if (st == FN_SB_STARTING)
        return "starting";
    return st == FN_SB_IDLE ? "idle" : "busy";
}

static bool mx_cannot_start(const struct mx_view *v)
{
    return v->live == 0 && v->fn->crashes_in_row >= 3;
}

static void mx_json_fn(struct evbuffer *o, const struct mx_view *v, int64_t now)
{
    const struct mx_fn *fm = v->fn;
    const struct fn_settings *s = &fm->desc->set;
    bool first = true;

    evbuffer_add_printf(o, "{\"name\":");
    mx_json_str(o, fm->desc->name);
    evbuffer_add_printf(o, ",\"handler\":");
    mx_json_str(o, fm->desc->handler);
    evbuffer_add_printf(
        o, ",\"disabled\":%s,\"disabled_reason\":", fm->desc->disabled ? "true" : "false");
    if (fm->desc->disabled)
        mx_json_str(o, fm->desc->disabled);
    else
        evbuffer_add_printf(o, "null");
    evbuffer_add_printf(
        o, ",\"cannot_start\":%s,\"last_error\":", mx_cannot_start(v) ? "true" : "false");
    if (fm->last_error[0])
        mx_json_str(o, fm->last_error);
    else
        evbuffer_add_printf(o, "null");
    evbuffer_add_printf(
        o,
        ",\"settings\":{\"max_instances\":%d,\"min_instances\":%d,\"idle_timeout_ms\":%" PRId64
        ",\"request_timeout_ms\":%" PRId64 ",\"queue_timeout_ms\":%" PRId64
        ",\"statement_timeout_ms\":%" PRId64 ",\"max_requests\":%ld,\"memory_limit\":%" PRId64
        ",\"open_files\":%ld,\"max_body\":%" PRId64 ",\"queue_size\":%d,\"env\":[",
        s->max_instances, s->min_instances, s->idle_timeout_ms, s->request_timeout_ms,
        s->queue_timeout_ms, s->statement_timeout_ms, s->max_requests, s->memory_limit,
        s->open_files, s->max_body, s->queue_size);
    /* Names only: values may be secrets. */
    for (size_t i = 0; i < s->n_env; i++) {
        if (i)
            evbuffer_add(o, ",", 1);
        mx_json_str(o, s->env[i].key);
    }
    evbuffer_add_printf(o,
                        "]},\"queue\":%d,\"instances\":{\"starting\":%d,\"idle\":%d,\"busy\":%d,"
                        "\"draining\":%d,\"max\":%d},\"requests\":%" PRIu64 ",\"errors\":%" PRIu64
                        ",\"req_per_s\":%.2f,\"codes\":{",
                        v->queue_len, v->states[0], v->states[1], v->states[2], v->states[3],
                        s->max_instances, v->requests, v->errors, v->rate);
    for (int k = 0; k <= MX_CODE_MAX; k++) {
        if (!v->codes[k])
            continue;
        if (k)
            evbuffer_add_printf(o, "%s\"%d\":%" PRIu64, first ? "" : ",", k, v->codes[k]);
        else
            evbuffer_add_printf(o, "%s\"other\":%" PRIu64, first ? "" : ",", v->codes[k]);
        first = false;
    }
    evbuffer_add_printf(o, "},\"cold_starts\":%" PRIu64 ",", fm->cold_starts);
    mx_json_hist(o, "request_seconds", v->dur, mx_hist_le, FN_SB_HIST, v->dur_sum);
    evbuffer_add(o, ",", 1);
    mx_json_hist(o, "queue_wait_seconds", v->queue, mx_hist_le, FN_SB_HIST, v->queue_sum);
    evbuffer_add(o, ",", 1);
    mx_json_hist(o, "cold_start_seconds", fm->cold.b, mx_cold_le, MX_COLD_N, fm->cold.sum);
    evbuffer_add(o, ",", 1);
    mx_json_hist(o, "first_response_seconds", fm->first.b, mx_cold_le, MX_COLD_N, fm->first.sum);
    evbuffer_add_printf(o, ",\"exits\":{");
    for (int r = 1; r < MX_EXIT_N; r++)
        evbuffer_add_printf(o, "%s\"%s\":%" PRIu64, r > 1 ? "," : "", mx_exit_names[r],
                            fm->exits[r]);
    evbuffer_add_printf(o, "},\"rejected\":{");
    for (int r = 0; r < MX_REJ_N; r++)
        evbuffer_add_printf(o, "%s\"%s\":%" PRIu64, r ? "," : "", mx_rej_names[r],
                            r == MX_REJ_QUEUE_TIMEOUT ? v->queue_timeouts : fm->rejected[r]);
    evbuffer_add_printf(o, "},\"instance_list\":[");
    first = true;
    for (const struct mx_inst *mi = fm->insts; mi; mi = mi->next) {
        const struct fn_sb_slot *sl = mi->scoreboard->slot;
        const char *st = mx_state_name(mi);
        uint64_t served = 0;
        for (int i = 0; i < FN_SB_CODES; i++)
            served = mx_sat_add(served, mi->seen.code_n[i]);
        evbuffer_add_printf(o,
                            "%s{\"pid\":%d,\"uid\":%u,\"state\":\"%s\",\"requests\":%" PRIu64
                            ",\"uptime_s\":%.3f,\"request_age_ms\":",
                            first ? "" : ",", (int)mi->pid, (unsigned)mi->uid, st, served,
                            (double)(now - mi->spawned_ns) / 1e9);
        if (strcmp(st, "busy") == 0 && FN_SB_LOAD(sl->state) == FN_SB_BUSY) {
            /* Written by the instance: garbage must not overflow here. */
            int64_t start = (int64_t)FN_SB_LOAD(sl->req_start_ns);
            mx_json_num(o, start >= 0 && start <= now ? (double)(now - start) / 1e6 : -1);
        } else {
            evbuffer_add_printf(o, "null");
        }
        evbuffer_add(o, "}", 1);
        first = false;
    }
    evbuffer_add_printf(o, "]}");
}

void mx_render_json(struct mx *mx, struct evbuffer *o)
{
    size_t n;
    struct mx_view *v = mx_views(mx, &n);
    int64_t now = mx_now_ns();
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    evbuffer_add_printf(o,
                        "{\"version\":\"%s\",\"pid\":%d,\"start_time\":%.3f,\"time\":%.3f,"
                        "\"reloads\":%" PRIu64 ",\"spares\":{\"ready\":%d,\"wanted\":%d,"
                        "\"assigned\":%" PRIu64 ",\"failed\":%" PRIu64 "},\"functions\":[",
                        PACKAGE_VERSION, (int)getpid(), mx->start_time,
                        (double)ts.tv_sec + (double)ts.tv_nsec / 1e9, mx->reloads, mx->spares_ready,
                        mx->spares_wanted, mx->spares_assigned, mx->spares_failed);
    for (size_t i = 0; i < n; i++) {
        if (i)
            evbuffer_add(o, ",", 1);
        mx_json_fn(o, &v[i], now);
    }
    evbuffer_add_printf(o, "],\"pool\":");
    if (mx->pool)
        poolstat_render_json(mx->pool, o);
    else
        evbuffer_add_printf(o, "null");
    evbuffer_add_printf(o, "}\n");
    free(v);
}

static void mx_ms(char *buf, size_t len, double s)
{
    if (s < 0)
        snprintf(buf, len, "-");
    else if (s < 0.01)
        snprintf(buf, len, "%.2fms", s * 1e3);
    else if (s < 10)
        snprintf(buf, len, "%.1fms", s * 1e3);
    else
        snprintf(buf, len, "%.1fs", s);
}

void mx_render_table(struct mx *mx, struct evbuffer *o)
{
    size_t n;
    struct mx_view *v = mx_views(mx, &n);

    evbuffer_add_printf(o, "%-20s %5s %5s %5s %6s %9s %9s %9s %7s %9s %7s\n", "function", "idle",
                        "busy", "max", "queue", "req/s", "p50", "p99", "cold", "cold_p50",
                        "errors");
    for (size_t i = 0; i < n; i++) {
        char p50[16], p99[16], c50[16];
        mx_ms(p50, sizeof(p50), mx_quantile(v[i].dur, mx_hist_le, FN_SB_HIST, 0.5));
        mx_ms(p99, sizeof(p99), mx_quantile(v[i].dur, mx_hist_le, FN_SB_HIST, 0.99));
        mx_ms(c50, sizeof(c50), mx_quantile(v[i].fn->cold.b, mx_cold_le, MX_COLD_N, 0.5));
        evbuffer_add_printf(
            o, "%-20s %5d %5d %5d %6d %9.1f %9s %9s %7" PRIu64 " %9s %7" PRIu64 "%s\n",
            v[i].fn->desc->name, v[i].states[1], v[i].states[2], v[i].fn->desc->set.max_instances,
            v[i].queue_len, v[i].rate, p50, p99, v[i].fn->cold_starts, c50, v[i].errors,
            mx_cannot_start(&v[i]) ? "  cannot start" : "");
    }
    evbuffer_add_printf(o, "spare processes: %d ready of %d\n", mx->spares_ready,
                        mx->spares_wanted);
    free(v);
}
