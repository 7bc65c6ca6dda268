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

#define METRICS_CODE_MIN 100
#define METRICS_CODE_MAX 599
#define METRICS_RATE_SAMPLES 8
#define METRICS_COLD_N 17

static const char *const metrics_exit_names[METRICS_EXIT_N] = {
    "", "idle", "timeout", "crash", "recycle", "reload", "stop"};
static const char *const metrics_rej_names[METRICS_REJ_N] = {"queue_timeout", "cannot_start",
                                                             "overload", "shutdown"};
static const char *const metrics_state_names[4] = {"starting", "idle", "busy", "draining"};

/* Cold starts are about a millisecond: fine buckets there. */
static const double metrics_cold_le[METRICS_COLD_N - 1] = {
    0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005,
    0.0075,  0.01,   0.025,   0.05,  0.1,    0.25,  0.5,   1.0};
static double metrics_hist_le[FNSDK_SCOREBOARD_HIST - 1];

/* What a slot claims, as kept: every field only grows. */
struct metrics_counts {
    uint64_t dur[FNSDK_SCOREBOARD_HIST], queue[FNSDK_SCOREBOARD_HIST];
    uint64_t dur_sum, queue_sum;
    uint64_t queue_timeouts;
    uint64_t log_dropped;
    uint32_t code[FNSDK_SCOREBOARD_CODES];
    uint64_t code_n[FNSDK_SCOREBOARD_CODES];
};

struct metrics_hist {
    uint64_t b[METRICS_COLD_N];
    double sum;
};

struct metrics_inst {
    struct metrics_inst *next;
    struct metrics_fn *fn;
    pid_t pid;
    uid_t uid;
    struct scoreboard *scoreboard; /* borrowed */
    int64_t spawned_ns;
    bool ready_seen, first_seen, stopping;
    enum metrics_exit why;
    uint64_t log_tail; /* ours: the slot's copy is only a hint to the instance */
    struct metrics_counts seen;
};

struct metrics_fn {
    struct metrics_fn *next;
    struct metrics *metrics;
    const struct discover_fn *desc; /* borrowed */
    int listen_fd;
    struct metrics_inst *insts;
    /* Folded from exited instances. */
    uint64_t dur[FNSDK_SCOREBOARD_HIST], queue[FNSDK_SCOREBOARD_HIST];
    double dur_sum, queue_sum;
    uint64_t codes[METRICS_CODE_MAX + 1]; /* [0]: codes the table had no room for */
    uint64_t log_dropped;
    /* The supervisor's own. */
    struct reqlog_budget log_budget; /* lines its instances may write */
    uint64_t cold_starts;
    struct metrics_hist cold, first;
    uint64_t exits[METRICS_EXIT_N];
    uint64_t rejected[METRICS_REJ_N];
    int crashes_in_row;
    char last_error[160];
    /* req/s: (time, requests) once a second. */
    int64_t rate_t[METRICS_RATE_SAMPLES];
    uint64_t rate_n[METRICS_RATE_SAMPLES];
    int rate_i, rate_len;
};

struct metrics {
    struct metrics_fn *fns;
    struct reqlog *rl;
    const struct poolstat *pool;
    uint64_t reloads;
    int spares_ready, spares_wanted; /* spare processes (spare.c) */
    uint64_t spares_assigned, spares_failed;
    double start_time; /* wall clock, seconds */
};

/* A function's figures at one moment: folded totals plus live slots. */
struct metrics_view {
    struct metrics_fn *fn;
    uint64_t dur[FNSDK_SCOREBOARD_HIST], queue[FNSDK_SCOREBOARD_HIST];
    double dur_sum, queue_sum;
    uint64_t codes[METRICS_CODE_MAX + 1];
    uint64_t requests, errors, queue_timeouts;
    int states[4];
    int live, queue_len;
    double rate;
};

static int64_t metrics_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t metrics_sat_add(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

static void metrics_hist_observe(struct metrics_hist *h, const double *le, int n, double v)
{
    int i = 0;
    while (i < n - 1 && v > le[i])
        i++;
    h->b[i]++;
    h->sum += v;
}

struct metrics *metrics_new(void)
{
    struct metrics *mx = calloc(1, sizeof(*mx));
    struct timespec ts;

    if (!mx)
        return NULL;
    for (int i = 0; i < FNSDK_SCOREBOARD_HIST - 1; i++)
        metrics_hist_le[i] = (double)fnsdk_scoreboard_hist_le_ns[i] / 1e9;
    clock_gettime(CLOCK_REALTIME, &ts);
    mx->start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    return mx;
}

void metrics_free(struct metrics *mx)
{
    if (!mx)
        return;
    while (mx->fns)
        metrics_fn_free(mx->fns);
    free(mx);
}

void metrics_set_reqlog(struct metrics *mx, struct reqlog *rl)
{
    if (mx)
        mx->rl = rl;
}

void metrics_set_pool(struct metrics *mx, const struct poolstat *ps)
{
    if (mx)
        mx->pool = ps;
}

void metrics_set_spares(struct metrics *mx, int ready, int wanted, uint64_t assigned,
                        uint64_t failed)
{
    if (!mx)
        return;
    mx->spares_ready = ready;
    mx->spares_wanted = wanted;
    mx->spares_assigned = assigned;
    mx->spares_failed = failed;
}

void metrics_reloaded(struct metrics *mx)
{
    if (mx)
        mx->reloads++;
}

struct metrics_fn *metrics_fn_new(struct metrics *mx, const struct discover_fn *desc, int listen_fd)
{
    struct metrics_fn *fm;

    if (!mx || !(fm = calloc(1, sizeof(*fm))))
        return NULL;
    fm->metrics = mx;
    fm->desc = desc;
    fm->listen_fd = listen_fd;
    fm->next = mx->fns;
    mx->fns = fm;
    return fm;
}

void metrics_fn_free(struct metrics_fn *fm)
{
    if (!fm)
        return;
    while (fm->insts)
        metrics_inst_free(fm->insts);
    for (struct metrics_fn **p = &fm->metrics->fns; *p; p = &(*p)->next) {
        if (*p == fm) {
            *p = fm->next;
            break;
        }
    }
    free(fm);
}

void metrics_fn_rejected(struct metrics_fn *fm, enum metrics_rej why, int n)
{
    if (!fm || n <= 0 || why >= METRICS_REJ_N)
        return;
    fm->rejected[why] += (uint64_t)n;
    fm->codes[503] += (uint64_t)n;
}

struct metrics_inst *metrics_inst_new(struct metrics_fn *fm, pid_t pid, uid_t uid,
                                      struct scoreboard *sb, int64_t spawned_ns)
{
    struct metrics_inst *mi;

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

void metrics_inst_stopping(struct metrics_inst *mi, enum metrics_exit why)
{
    if (!mi || mi->stopping)
        return;
    mi->stopping = true;
    mi->why = why;
}

static void metrics_grow(uint64_t *seen, uint64_t v)
{
    if (v > *seen)
        *seen = v;
}

/* Takes the slot's claims into MI->seen, and the cold-start times once. */
static void metrics_inst_sync(struct metrics_inst *mi, int64_t now)
{
    struct fnsdk_scoreboard_slot *sl = mi->scoreboard->slot;
    struct metrics_counts *c = &mi->seen;

    for (int i = 0; i < FNSDK_SCOREBOARD_HIST; i++) {
        metrics_grow(&c->dur[i], FNSDK_SCOREBOARD_LOAD(sl->dur_hist[i]));
        metrics_grow(&c->queue[i], FNSDK_SCOREBOARD_LOAD(sl->queue_hist[i]));
    }
    metrics_grow(&c->dur_sum, FNSDK_SCOREBOARD_LOAD(sl->dur_sum_ns));
    metrics_grow(&c->queue_sum, FNSDK_SCOREBOARD_LOAD(sl->queue_sum_ns));
    metrics_grow(&c->queue_timeouts, FNSDK_SCOREBOARD_LOAD(sl->queue_timeouts));
    metrics_grow(&c->log_dropped, FNSDK_SCOREBOARD_LOAD(sl->log_dropped));
    for (int i = 0; i < FNSDK_SCOREBOARD_CODES; i++) {
        uint32_t code = FNSDK_SCOREBOARD_LOAD(sl->codes[i].code);
        uint64_t n = FNSDK_SCOREBOARD_LOAD(sl->codes[i].n);
        bool valid = (code >= METRICS_CODE_MIN && code <= METRICS_CODE_MAX) ||
                     (code == 0 && i == FNSDK_SCOREBOARD_CODES - 1);
        if (!valid)
            continue;
        if (c->code_n[i] == 0 && c->code[i] == 0)
            c->code[i] = code;
        /* An entry never changes its code: a slot that says otherwise is
         * not believed for that entry again. */
        if (c->code[i] == code)
            metrics_grow(&c->code_n[i], n);
    }
    if (!mi->ready_seen) {
        int64_t r = (int64_t)FNSDK_SCOREBOARD_LOAD(sl->ready_ns);
        if (r) {
            mi->ready_seen = true;
            if (r < mi->spawned_ns || r > now)
                r = now;
            metrics_hist_observe(&mi->fn->cold, metrics_cold_le, METRICS_COLD_N,
                                 (double)(r - mi->spawned_ns) / 1e9);
        }
    }
    if (!mi->first_seen) {
        int64_t r = (int64_t)FNSDK_SCOREBOARD_LOAD(sl->first_resp_ns);
        if (r) {
            mi->first_seen = true;
            if (r < mi->spawned_ns || r > now)
                r = now;
            metrics_hist_observe(&mi->fn->first, metrics_cold_le, METRICS_COLD_N,
                                 (double)(r - mi->spawned_ns) / 1e9);
        }
    }
}

static void metrics_inst_drain(struct metrics_inst *mi)
{
    size_t size;
    char *ring = scoreboard_log_ring(mi->scoreboard, &size);

    if (ring && mi->fn->metrics->rl)
        reqlog_drain(mi->fn->metrics->rl, &mi->fn->log_budget, mi->fn->desc->name, mi->pid,
                     mi->scoreboard->slot, ring, size, &mi->log_tail);
}

static void metrics_inst_unlink(struct metrics_inst *mi)
{
    for (struct metrics_inst **p = &mi->fn->insts; *p; p = &(*p)->next) {
        if (*p == mi) {
            *p = mi->next;
            break;
        }
    }
}

void metrics_inst_free(struct metrics_inst *mi)
{
    if (!mi)
        return;
    metrics_inst_unlink(mi);
    free(mi);
}

static uint64_t metrics_code_slot(uint32_t code)
{
    return code >= METRICS_CODE_MIN && code <= METRICS_CODE_MAX ? code : 0;
}

void metrics_inst_exited(struct metrics_inst *mi, bool crash, const char *how, int64_t now)
{
    struct metrics_fn *fm;
    struct metrics_counts *c;
    uint64_t served = 0;
    enum metrics_exit why;

    if (!mi)
        return;
    fm = mi->fn;
    c = &mi->seen;
    metrics_inst_sync(mi, now);
    metrics_inst_drain(mi);
    for (int i = 0; i < FNSDK_SCOREBOARD_HIST; i++) {
        fm->dur[i] = metrics_sat_add(fm->dur[i], c->dur[i]);
        fm->queue[i] = metrics_sat_add(fm->queue[i], c->queue[i]);
    }
    fm->dur_sum += (double)c->dur_sum / 1e9;
    fm->queue_sum += (double)c->queue_sum / 1e9;
    fm->rejected[METRICS_REJ_QUEUE_TIMEOUT] =
        metrics_sat_add(fm->rejected[METRICS_REJ_QUEUE_TIMEOUT], c->queue_timeouts);
    fm->log_dropped = metrics_sat_add(fm->log_dropped, c->log_dropped);
    for (int i = 0; i < FNSDK_SCOREBOARD_CODES; i++) {
        uint64_t k = metrics_code_slot(c->code[i]);
        fm->codes[k] = metrics_sat_add(fm->codes[k], c->code_n[i]);
        served = metrics_sat_add(served, c->code_n[i]);
    }
    if (mi->stopping && mi->why == METRICS_EXIT_TIMEOUT)
        why = METRICS_EXIT_TIMEOUT; /* killed or exiting for it: not a crash */
    else if (crash)
        why = METRICS_EXIT_CRASH;
    else if (mi->stopping)
        why = mi->why;
    else
        why = METRICS_EXIT_RECYCLE; /* left by itself, cleanly: max_requests */
    if (why <= METRICS_EXIT_NONE || why >= METRICS_EXIT_N)
        why = METRICS_EXIT_STOP;
    fm->exits[why]++;
    if (crash) {
        fm->crashes_in_row = served ? 1 : fm->crashes_in_row + 1;
        snprintf(fm->last_error, sizeof(fm->last_error), "%s", how ? how : "crashed");
    } else if (served) {
        fm->crashes_in_row = 0;
    }
    metrics_inst_free(mi);
}

static void metrics_rate_sample(struct metrics_fn *fm, int64_t now, uint64_t total)
{
    int last = (fm->rate_i + METRICS_RATE_SAMPLES - 1) % METRICS_RATE_SAMPLES;

    if (fm->rate_len && now - fm->rate_t[last] < 1000000000)
        return;
    fm->rate_t[fm->rate_i] = now;
    fm->rate_n[fm->rate_i] = total;
    fm->rate_i = (fm->rate_i + 1) % METRICS_RATE_SAMPLES;
    if (fm->rate_len < METRICS_RATE_SAMPLES)
        fm->rate_len++;
}

/* Requests per second over the samples of the last few seconds. */
static double metrics_rate(const struct metrics_fn *fm, int64_t now, uint64_t total)
{
    int oldest = -1;

    for (int k = 0; k < fm->rate_len; k++) {
        int i = (fm->rate_i + METRICS_RATE_SAMPLES - fm->rate_len + k) % METRICS_RATE_SAMPLES;
        if (now - fm->rate_t[i] <= (int64_t)5 * 1000000000 && now - fm->rate_t[i] >= 500000000) {
            oldest = i;
            break;
        }
    }
    if (oldest < 0 || total < fm->rate_n[oldest])
        return 0;
    return (double)(total - fm->rate_n[oldest]) / ((double)(now - fm->rate_t[oldest]) / 1e9);
}

static void metrics_view(struct metrics_fn *fm, int64_t now, struct metrics_view *v)
{
    memset(v, 0, sizeof(*v));
    v->fn = fm;
    memcpy(v->dur, fm->dur, sizeof(v->dur));
    memcpy(v->queue, fm->queue, sizeof(v->queue));
    memcpy(v->codes, fm->codes, sizeof(v->codes));
    v->dur_sum = fm->dur_sum;
    v->queue_sum = fm->queue_sum;
    v->queue_timeouts = fm->rejected[METRICS_REJ_QUEUE_TIMEOUT];
    for (struct metrics_inst *mi = fm->insts; mi; mi = mi->next) {
        struct metrics_counts *c = &mi->seen;
        uint32_t st;
        metrics_inst_sync(mi, now);
        for (int i = 0; i < FNSDK_SCOREBOARD_HIST; i++) {
            v->dur[i] = metrics_sat_add(v->dur[i], c->dur[i]);
            v->queue[i] = metrics_sat_add(v->queue[i], c->queue[i]);
        }
        v->dur_sum += (double)c->dur_sum / 1e9;
        v->queue_sum += (double)c->queue_sum / 1e9;
        v->queue_timeouts = metrics_sat_add(v->queue_timeouts, c->queue_timeouts);
        for (int i = 0; i < FNSDK_SCOREBOARD_CODES; i++) {
            uint64_t k = metrics_code_slot(c->code[i]);
            v->codes[k] = metrics_sat_add(v->codes[k], c->code_n[i]);
        }
        st = FNSDK_SCOREBOARD_LOAD(mi->scoreboard->slot->state);
        if (mi->stopping || st == FNSDK_SCOREBOARD_STOPPING)
            v->states[3]++;
        else if (st == FNSDK_SCOREBOARD_STARTING)
            v->states[0]++;
        else if (st == FNSDK_SCOREBOARD_IDLE)
            v->states[1]++;
        else
            v->states[2]++;
        v->live++;
    }
    for (int k = 0; k <= METRICS_CODE_MAX; k++) {
        v->requests = metrics_sat_add(v->requests, v->codes[k]);
        if (k >= 500 || k == 0)
            v->errors = metrics_sat_add(v->errors, v->codes[k]);
    }
    v->queue_len = fm->listen_fd >= 0 ? sock_queue_len(fm->listen_fd) : 0;
    metrics_rate_sample(fm, now, v->requests);
    v->rate = metrics_rate(fm, now, v->requests);
}

void metrics_tick(struct metrics *mx, int64_t now)
{
    if (!mx)
        return;
    for (struct metrics_fn *fm = mx->fns; fm; fm = fm->next) {
        uint64_t total = 0;
        for (struct metrics_inst *mi = fm->insts; mi; mi = mi->next) {
            metrics_inst_sync(mi, now);
            metrics_inst_drain(mi);
        }
        if (fm->rate_len &&
            now - fm->rate_t[(fm->rate_i + METRICS_RATE_SAMPLES - 1) % METRICS_RATE_SAMPLES] <
                1000000000)
            continue;
        /* Saturating like metrics_view's total: the two feed the same samples. */
        for (int k = 0; k <= METRICS_CODE_MAX; k++)
            total = metrics_sat_add(total, fm->codes[k]);
        for (struct metrics_inst *mi = fm->insts; mi; mi = mi->next) {
            for (int i = 0; i < FNSDK_SCOREBOARD_CODES; i++)
                total = metrics_sat_add(total, mi->seen.code_n[i]);
        }
        metrics_rate_sample(fm, now, total);
    }
}

double metrics_quantile(const uint64_t *b, const double *le, int n, double q)
{
    uint64_t total = 0, cum = 0;
    double rank;

    /* The counts are instances' claims: saturate, never wrap. */
    for (int i = 0; i < n; i++)
        total = metrics_sat_add(total, b[i]);
    if (!total)
        return -1;
    rank = q * (double)total;
    for (int i = 0; i < n; i++) {
        double lo = i ? le[i - 1] : 0, hi;
        if ((double)metrics_sat_add(cum, b[i]) < rank) {
            cum = metrics_sat_add(cum, b[i]);
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
static struct metrics_view *metrics_views(struct metrics *mx, size_t *n)
{
    int64_t now = metrics_now_ns();
    size_t k = 0, cap = 0;
    struct metrics_view *v;

    for (struct metrics_fn *fm = mx->fns; fm; fm = fm->next)
        cap++;
    v = calloc(cap ? cap : 1, sizeof(*v));
    if (!v) {
        *n = 0;
        return NULL;
    }
    for (struct metrics_fn *fm = mx->fns; fm; fm = fm->next) {
        size_t j = k++;
        metrics_view(fm, now, &v[j]);
        while (j > 0 && strcmp(v[j - 1].fn->desc->name, v[j].fn->desc->name) > 0) {
            struct metrics_view t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
            j--;
        }
    }
    *n = k;
    return v;
}

static void metrics_prom_head(struct evbuffer *o, const char *name, const char *type,
                              const char *help)
{
    evbuffer_add_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics_prom_hist(struct evbuffer *o, const char *name, const char *labels,
                              const uint64_t *b, const double *le, int n, double sum)
{
    uint64_t cum = 0;
    for (int i = 0; i < n; i++) {
        cum = metrics_sat_add(cum, b[i]); /* b[] holds an instance's claims */
        if (i < n - 1)
            evbuffer_add_printf(o, "%s_bucket{%s,le=\"%g\"} %" PRIu64 "\n", name, labels, le[i],
                                cum);
        else
            evbuffer_add_printf(o, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, labels, cum);
    }
    evbuffer_add_printf(o, "%s_sum{%s} %.9g\n%s_count{%s} %" PRIu64 "\n", name, labels, sum, name,
                        labels, cum);
}

void metrics_render_prom(struct metrics *mx, struct evbuffer *o)
{
    size_t n;
    struct metrics_view *v = metrics_views(mx, &n);
    char l[160];

    metrics_prom_head(o, "fngate_build_info", "gauge", "fngate's version (always 1).");
    evbuffer_add_printf(o, "fngate_build_info{version=\"%s\"} 1\n", PACKAGE_VERSION);
    metrics_prom_head(o, "fngate_start_time_seconds", "gauge",
                      "When the gateway started, in seconds since the epoch.");
    evbuffer_add_printf(o, "fngate_start_time_seconds %.3f\n", mx->start_time);
    metrics_prom_head(o, "fngate_reloads_total", "counter", "Configuration reloads applied.");
    evbuffer_add_printf(o, "fngate_reloads_total %" PRIu64 "\n", mx->reloads);
    metrics_prom_head(o, "fngate_spare_processes", "gauge",
                      "Spare processes waiting for a cold start, and how many are kept.");
    evbuffer_add_printf(o, "fngate_spare_processes{state=\"ready\"} %d\n", mx->spares_ready);
    evbuffer_add_printf(o, "fngate_spare_processes{state=\"wanted\"} %d\n", mx->spares_wanted);
    metrics_prom_head(o, "fngate_spare_assignments_total", "counter",
                      "Cold starts handed to a spare process, by whether the hand-over worked.");
    evbuffer_add_printf(o, "fngate_spare_assignments_total{result=\"ok\"} %" PRIu64 "\n",
                        mx->spares_assigned);
    evbuffer_add_printf(o, "fngate_spare_assignments_total{result=\"failed\"} %" PRIu64 "\n",
                        mx->spares_failed);

    metrics_prom_head(o, "fngate_requests_total", "counter",
                      "Requests answered, by function and HTTP status.");
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k <= METRICS_CODE_MAX; k++) {
            if (v[i].codes[k])
                evbuffer_add_printf(
                    o, "fngate_requests_total{function=\"%s\",code=\"%s%.0d\"} %" PRIu64 "\n",
                    v[i].fn->desc->name, k ? "" : "other", k, v[i].codes[k]);
        }
    }
    metrics_prom_head(o, "fngate_request_duration_seconds", "histogram",
                      "Time in the handler, from accept to the end of the response.");
    for (size_t i = 0; i < n; i++) {
        snprintf(l, sizeof(l), "function=\"%s\"", v[i].fn->desc->name);
        metrics_prom_hist(o, "fngate_request_duration_seconds", l, v[i].dur, metrics_hist_le,
                          FNSDK_SCOREBOARD_HIST, v[i].dur_sum);
    }
    metrics_prom_head(o, "fngate_queue_wait_seconds", "histogram",
                      "From nginx handing the request on to the handler starting (nginx's "
                      "millisecond resolution).");
    for (size_t i = 0; i < n; i++) {
        snprintf(l, sizeof(l), "function=\"%s\"", v[i].fn->desc->name);
        metrics_prom_hist(o, "fngate_queue_wait_seconds", l, v[i].queue, metrics_hist_le,
                          FNSDK_SCOREBOARD_HIST, v[i].queue_sum);
    }
    metrics_prom_head(o, "fngate_cold_starts_total", "counter", "Instances started.");
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(o, "fngate_cold_starts_total{function=\"%s\"} %" PRIu64 "\n",
                            v[i].fn->desc->name, v[i].fn->cold_starts);
    metrics_prom_head(o, "fngate_cold_start_duration_seconds", "histogram",
                      "From spawn to the instance ready to accept.");
    for (size_t i = 0; i < n; i++) {
        snprintf(l, sizeof(l), "function=\"%s\"", v[i].fn->desc->name);
        metrics_prom_hist(o, "fngate_cold_start_duration_seconds", l, v[i].fn->cold.b,
                          metrics_cold_le, METRICS_COLD_N, v[i].fn->cold.sum);
    }
    metrics_prom_head(o, "fngate_cold_start_first_response_seconds", "histogram",
                      "From spawn to the end of the instance's first response.");
    for (size_t i = 0; i < n; i++) {
        snprintf(l, sizeof(l), "function=\"%s\"", v[i].fn->desc->name);
        metrics_prom_hist(o, "fngate_cold_start_first_response_seconds", l, v[i].fn->first.b,
                          metrics_cold_le, METRICS_COLD_N, v[i].fn->first.sum);
    }
    metrics_prom_head(o, "fngate_instances", "gauge", "Instances, by state.");
    for (size_t i = 0; i < n; i++) {
        for (int s = 0; s < 4; s++)
            evbuffer_add_printf(o, "fngate_instances{function=\"%s\",state=\"%s\"} %d\n",
                                v[i].fn->desc->name, metrics_state_names[s], v[i].states[s]);
    }
    metrics_prom_head(o, "fngate_instances_max", "gauge", "The function's max_instances.");
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(o, "fngate_instances_max{function=\"%s\"} %d\n", v[i].fn->desc->name,
                            v[i].fn->desc->set.max_instances);
    metrics_prom_head(o, "fngate_queue_length", "gauge",
                      "Connections waiting in the function's socket backlog (sock_diag).");
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(o, "fngate_queue_length{function=\"%s\"} %d\n", v[i].fn->desc->name,
                            v[i].queue_len);
    metrics_prom_head(o, "fngate_instance_exits_total", "counter", "Instances gone, by reason.");
    for (size_t i = 0; i < n; i++) {
        for (int r = 1; r < METRICS_EXIT_N; r++)
            evbuffer_add_printf(
                o, "fngate_instance_exits_total{function=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
                v[i].fn->desc->name, metrics_exit_names[r], v[i].fn->exits[r]);
    }
    metrics_prom_head(o, "fngate_rejected_total", "counter",
                      "Requests answered without running the handler, by reason.");
    for (size_t i = 0; i < n; i++) {
        for (int r = 0; r < METRICS_REJ_N; r++) {
            uint64_t c =
                r == METRICS_REJ_QUEUE_TIMEOUT ? v[i].queue_timeouts : v[i].fn->rejected[r];
            evbuffer_add_printf(
                o, "fngate_rejected_total{function=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
                v[i].fn->desc->name, metrics_rej_names[r], c);
        }
    }
    metrics_prom_head(o, "fngate_request_log_dropped_total", "counter",
                      "Request-log lines dropped because the gateway had not drained the ring.");
    for (size_t i = 0; i < n; i++) {
        uint64_t d = metrics_sat_add(v[i].fn->log_dropped, v[i].fn->log_budget.dropped);
        for (struct metrics_inst *mi = v[i].fn->insts; mi; mi = mi->next)
            d = metrics_sat_add(d, mi->seen.log_dropped);
        evbuffer_add_printf(o, "fngate_request_log_dropped_total{function=\"%s\"} %" PRIu64 "\n",
                            v[i].fn->desc->name, d);
    }
    if (mx->pool)
        poolstat_render_prom(mx->pool, o);
    free(v);
}

static void metrics_json_str(struct evbuffer *o, const char *s)
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

static void metrics_json_num(struct evbuffer *o, double v)
{
    if (v < 0 || isnan(v) || isinf(v))
        evbuffer_add_printf(o, "null");
    else
        evbuffer_add_printf(o, "%.6g", v);
}

static void metrics_json_hist(struct evbuffer *o, const char *key, const uint64_t *b,
                              const double *le, int n, double sum)
{
    uint64_t count = 0;
    evbuffer_add_printf(o, "\"%s\":{\"le\":[", key);
    for (int i = 0; i < n - 1; i++)
        evbuffer_add_printf(o, "%s%g", i ? "," : "", le[i]);
    evbuffer_add_printf(o, "],\"buckets\":[");
    for (int i = 0; i < n; i++) {
        evbuffer_add_printf(o, "%s%" PRIu64, i ? "," : "", b[i]);
        count = metrics_sat_add(count, b[i]);
    }
    evbuffer_add_printf(o, "],\"count\":%" PRIu64 ",\"sum\":%.9g,\"p50\":", count, sum);
    metrics_json_num(o, metrics_quantile(b, le, n, 0.5));
    evbuffer_add_printf(o, ",\"p99\":");
    metrics_json_num(o, metrics_quantile(b, le, n, 0.99));
    evbuffer_add_printf(o, "}");
}

static const char *metrics_state_name(const struct metrics_inst *mi)
{
    uint32_t st = FNSDK_SCOREBOARD_LOAD(mi->scoreboard->slot->state);
    if (mi->stopping || st == FNSDK_SCOREBOARD_STOPPING)
        return "draining";
    if (st == FNSDK_SCOREBOARD_STARTING)
        return "starting";
    return st == FNSDK_SCOREBOARD_IDLE ? "idle" : "busy";
}

static bool metrics_cannot_start(const struct metrics_view *v)
{
    return v->live == 0 && v->fn->crashes_in_row >= 3;
}

static void metrics_json_fn(struct evbuffer *o, const struct metrics_view *v, int64_t now)
{
    const struct metrics_fn *fm = v->fn;
    const struct fn_settings *s = &fm->desc->set;
    bool first = true;

    evbuffer_add_printf(o, "{\"name\":");
    metrics_json_str(o, fm->desc->name);
    evbuffer_add_printf(o, ",\"handler\":");
    metrics_json_str(o, fm->desc->handler);
    evbuffer_add_printf(
        o, ",\"disabled\":%s,\"disabled_reason\":", fm->desc->disabled ? "true" : "false");
    if (fm->desc->disabled)
        metrics_json_str(o, fm->desc->disabled);
    else
        evbuffer_add_printf(o, "null");
    evbuffer_add_printf(
        o, ",\"cannot_start\":%s,\"last_error\":", metrics_cannot_start(v) ? "true" : "false");
    if (fm->last_error[0])
        metrics_json_str(o, fm->last_error);
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
        metrics_json_str(o, s->env[i].key);
    }
    evbuffer_add_printf(o,
                        "]},\"queue\":%d,\"instances\":{\"starting\":%d,\"idle\":%d,\"busy\":%d,"
                        "\"draining\":%d,\"max\":%d},\"requests\":%" PRIu64 ",\"errors\":%" PRIu64
                        ",\"req_per_s\":%.2f,\"codes\":{",
                        v->queue_len, v->states[0], v->states[1], v->states[2], v->states[3],
                        s->max_instances, v->requests, v->errors, v->rate);
    for (int k = 0; k <= METRICS_CODE_MAX; k++) {
        if (!v->codes[k])
            continue;
        if (k)
            evbuffer_add_printf(o, "%s\"%d\":%" PRIu64, first ? "" : ",", k, v->codes[k]);
        else
            evbuffer_add_printf(o, "%s\"other\":%" PRIu64, first ? "" : ",", v->codes[k]);
        first = false;
    }
    evbuffer_add_printf(o, "},\"cold_starts\":%" PRIu64 ",", fm->cold_starts);
    metrics_json_hist(o, "request_seconds", v->dur, metrics_hist_le, FNSDK_SCOREBOARD_HIST,
                      v->dur_sum);
    evbuffer_add(o, ",", 1);
    metrics_json_hist(o, "queue_wait_seconds", v->queue, metrics_hist_le, FNSDK_SCOREBOARD_HIST,
                      v->queue_sum);
    evbuffer_add(o, ",", 1);
    metrics_json_hist(o, "cold_start_seconds", fm->cold.b, metrics_cold_le, METRICS_COLD_N,
                      fm->cold.sum);
    evbuffer_add(o, ",", 1);
    metrics_json_hist(o, "first_response_seconds", fm->first.b, metrics_cold_le, METRICS_COLD_N,
                      fm->first.sum);
    evbuffer_add_printf(o, ",\"exits\":{");
    for (int r = 1; r < METRICS_EXIT_N; r++)
        evbuffer_add_printf(o, "%s\"%s\":%" PRIu64, r > 1 ? "," : "", metrics_exit_names[r],
                            fm->exits[r]);
    evbuffer_add_printf(o, "},\"rejected\":{");
    for (int r = 0; r < METRICS_REJ_N; r++)
        evbuffer_add_printf(o, "%s\"%s\":%" PRIu64, r ? "," : "", metrics_rej_names[r],
                            r == METRICS_REJ_QUEUE_TIMEOUT ? v->queue_timeouts : fm->rejected[r]);
    evbuffer_add_printf(o, "},\"instance_list\":[");
    first = true;
    for (const struct metrics_inst *mi = fm->insts; mi; mi = mi->next) {
        const struct fnsdk_scoreboard_slot *sl = mi->scoreboard->slot;
        const char *st = metrics_state_name(mi);
        uint64_t served = 0;
        for (int i = 0; i < FNSDK_SCOREBOARD_CODES; i++)
            served = metrics_sat_add(served, mi->seen.code_n[i]);
        evbuffer_add_printf(o,
                            "%s{\"pid\":%d,\"uid\":%u,\"state\":\"%s\",\"requests\":%" PRIu64
                            ",\"uptime_s\":%.3f,\"request_age_ms\":",
                            first ? "" : ",", (int)mi->pid, (unsigned)mi->uid, st, served,
                            (double)(now - mi->spawned_ns) / 1e9);
        if (strcmp(st, "busy") == 0 && FNSDK_SCOREBOARD_LOAD(sl->state) == FNSDK_SCOREBOARD_BUSY) {
            /* Written by the instance: garbage must not overflow here. */
            int64_t start = (int64_t)FNSDK_SCOREBOARD_LOAD(sl->req_start_ns);
            metrics_json_num(o, start >= 0 && start <= now ? (double)(now - start) / 1e6 : -1);
        } else {
            evbuffer_add_printf(o, "null");
        }
        evbuffer_add(o, "}", 1);
        first = false;
    }
    evbuffer_add_printf(o, "]}");
}

void metrics_render_json(struct metrics *mx, struct evbuffer *o)
{
    size_t n;
    struct metrics_view *v = metrics_views(mx, &n);
    int64_t now = metrics_now_ns();
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
        metrics_json_fn(o, &v[i], now);
    }
    evbuffer_add_printf(o, "],\"pool\":");
    if (mx->pool)
        poolstat_render_json(mx->pool, o);
    else
        evbuffer_add_printf(o, "null");
    evbuffer_add_printf(o, "}\n");
    free(v);
}

static void metrics_ms(char *buf, size_t len, double s)
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

void metrics_render_table(struct metrics *mx, struct evbuffer *o)
{
    size_t n;
    struct metrics_view *v = metrics_views(mx, &n);

    evbuffer_add_printf(o, "%-20s %5s %5s %5s %6s %9s %9s %9s %7s %9s %7s\n", "function", "idle",
                        "busy", "max", "queue", "req/s", "p50", "p99", "cold", "cold_p50",
                        "errors");
    for (size_t i = 0; i < n; i++) {
        char p50[16], p99[16], c50[16];
        metrics_ms(p50, sizeof(p50),
                   metrics_quantile(v[i].dur, metrics_hist_le, FNSDK_SCOREBOARD_HIST, 0.5));
        metrics_ms(p99, sizeof(p99),
                   metrics_quantile(v[i].dur, metrics_hist_le, FNSDK_SCOREBOARD_HIST, 0.99));
        metrics_ms(c50, sizeof(c50),
                   metrics_quantile(v[i].fn->cold.b, metrics_cold_le, METRICS_COLD_N, 0.5));
        evbuffer_add_printf(
            o, "%-20s %5d %5d %5d %6d %9.1f %9s %9s %7" PRIu64 " %9s %7" PRIu64 "%s\n",
            v[i].fn->desc->name, v[i].states[1], v[i].states[2], v[i].fn->desc->set.max_instances,
            v[i].queue_len, v[i].rate, p50, p99, v[i].fn->cold_starts, c50, v[i].errors,
            metrics_cannot_start(&v[i]) ? "  cannot start" : "");
    }
    evbuffer_add_printf(o, "spare processes: %d ready of %d\n", mx->spares_ready,
                        mx->spares_wanted);
    free(v);
}
