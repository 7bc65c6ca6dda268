/*
 * Unit tests for gateway/metrics.c and gateway/reqlog.c: folding slots into
 * totals (exact across exits, never backwards, hostile slots harmless), the
 * Prometheus and JSON renderings, quantiles, and the request-log drain.
 * Slots are real scoreboard memfds (scoreboard_new_log), written here the way an
 * instance (or a hostile one) would.
 */
#include "config.h"

#include "fcgirec.h"
#include "metrics.h"
#include "reqlog.h"
#include "scoreboard.h"

#include <check.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct discover_fn test_desc(const char *name)
{
    struct discover_fn d;
    memset(&d, 0, sizeof(d));
    d.name = (char *)name;
    d.handler = (char *)"/x/handler";
    d.set.max_instances = 4;
    return d;
}

/* What an instance does after a request with STATUS taking NS. */
static void slot_count(struct fnsdk_scoreboard_slot *sl, int status, int64_t ns)
{
    int i;
    for (i = 0; i < FNSDK_SCOREBOARD_CODES - 1; i++) {
        if (sl->codes[i].code == (uint32_t)status)
            break;
        if (sl->codes[i].code == 0) {
            sl->codes[i].code = (uint32_t)status;
            break;
        }
    }
    sl->codes[i].n++;
    sl->dur_hist[fnsdk_scoreboard_hist_bucket(ns)]++;
    sl->dur_sum_ns += (uint64_t)ns;
}

static char *render(struct metrics *mx, int which)
{
    struct evbuffer *b = evbuffer_new();
    size_t n;
    char *s;

    if (which == 0)
        metrics_render_prom(mx, b);
    else if (which == 1)
        metrics_render_json(mx, b);
    else
        metrics_render_table(mx, b);
    n = evbuffer_get_length(b);
    s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

static bool has(struct metrics *mx, const char *line)
{
    char *s = render(mx, 0);
    bool r = strstr(s, line) != NULL;
    if (!r)
        fprintf(stderr, "missing: %s\n%s\n", line, s);
    free(s);
    return r;
}

START_TEST(counts_survive_exits)
{
    struct discover_fn d = test_desc("hello");
    struct metrics *mx = metrics_new();
    struct metrics_fn *fm = metrics_fn_new(mx, &d, -1);
    struct scoreboard *a = scoreboard_new("hello"), *b = scoreboard_new("hello");
    struct metrics_inst *ia = metrics_inst_new(fm, 100, 1000, a, 1),
                        *ib = metrics_inst_new(fm, 101, 1000, b, 1);

    for (int i = 0; i < 300; i++)
        slot_count(a->slot, 200, 30000);
    for (int i = 0; i < 7; i++)
        slot_count(b->slot, 404, 2000000);
    ck_assert(has(mx, "fngate_requests_total{function=\"hello\",code=\"200\"} 300\n"));
    metrics_inst_stopping(ia, METRICS_EXIT_IDLE);
    metrics_inst_exited(ia, false, "exited with status 0", 2);
    scoreboard_free(a);
    /* kill -9: a crash, and what it counted stays. */
    metrics_inst_exited(ib, true, "killed by signal 9 (SIGKILL)", 3);
    scoreboard_free(b);
    ck_assert(has(mx, "fngate_requests_total{function=\"hello\",code=\"200\"} 300\n"));
    ck_assert(has(mx, "fngate_requests_total{function=\"hello\",code=\"404\"} 7\n"));
    ck_assert(has(mx, "fngate_request_duration_seconds_count{function=\"hello\"} 307\n"));
    ck_assert(has(mx, "fngate_request_duration_seconds_bucket{function=\"hello\",le=\"2.5e-05\"} "
                      "0\n"));
    ck_assert(has(mx, "fngate_request_duration_seconds_bucket{function=\"hello\",le=\"5e-05\"} "
                      "300\n"));
    ck_assert(has(mx, "fngate_instance_exits_total{function=\"hello\",reason=\"idle\"} 1\n"));
    ck_assert(has(mx, "fngate_instance_exits_total{function=\"hello\",reason=\"crash\"} 1\n"));
    ck_assert(has(mx, "fngate_cold_starts_total{function=\"hello\"} 2\n"));
    ck_assert(has(mx, "fngate_instances{function=\"hello\",state=\"idle\"} 0\n"));
    metrics_free(mx);
}
END_TEST

/* Per-bucket counts are the instance's claims: summing them into the
 * cumulative buckets must saturate, or a slot claiming UINT64_MAX in one
 * bucket makes every later bucket (and _count) wrap below the one before,
 * which Prometheus reads as a reset. */
START_TEST(hostile_buckets_never_make_a_cumulative_bucket_smaller)
{
    struct discover_fn d = test_desc("evil");
    struct metrics *mx = metrics_new();
    struct metrics_fn *fm = metrics_fn_new(mx, &d, -1);
    struct scoreboard *a = scoreboard_new("evil");

    metrics_inst_new(fm, 100, 1000, a, 1);
    a->slot->dur_hist[0] = UINT64_MAX;
    a->slot->dur_hist[1] = 2;
    ck_assert(has(mx, "fngate_request_duration_seconds_bucket{function=\"evil\",le=\"2.5e-05\"} "
                      "18446744073709551615\n"));
    ck_assert(has(mx, "fngate_request_duration_seconds_bucket{function=\"evil\",le=\"5e-05\"} "
                      "18446744073709551615\n"));
    ck_assert(has(mx, "fngate_request_duration_seconds_count{function=\"evil\"} "
                      "18446744073709551615\n"));
    metrics_free(mx);
    scoreboard_free(a);
}
END_TEST

START_TEST(hostile_slot_cannot_go_backwards_or_lie_about_codes)
{
    struct discover_fn d = test_desc("evil");
    struct metrics *mx = metrics_new();
    struct metrics_fn *fm = metrics_fn_new(mx, &d, -1);
    struct scoreboard *a = scoreboard_new("evil");
    struct metrics_inst *ia = metrics_inst_new(fm, 100, 1000, a, 1);

    for (int i = 0; i < 50; i++)
        slot_count(a->slot, 200, 30000);
    ck_assert(has(mx, "code=\"200\"} 50\n"));
    /* It rewinds its counters, renames its entry, claims impossible codes. */
    a->slot->codes[0].n = 3;
    ck_assert(has(mx, "code=\"200\"} 50\n"));
    a->slot->codes[0].code = 500;
    a->slot->codes[0].n = 1000000;
    a->slot->codes[1].code = 999;
    a->slot->codes[1].n = 5;
    a->slot->codes[2].code = 1;
    a->slot->codes[2].n = 5;
    ck_assert(has(mx, "code=\"200\"} 50\n"));
    {
        char *s = render(mx, 0);
        ck_assert_ptr_null(strstr(s, "code=\"500\""));
        ck_assert_ptr_null(strstr(s, "code=\"999\""));
        ck_assert_ptr_null(strstr(s, "code=\"1\""));
        free(s);
    }
    /* A ready time before the spawn or in the future is not believed. */
    a->slot->ready_ns = -5;
    metrics_tick(mx, 10);
    ck_assert(has(mx, "fngate_cold_start_duration_seconds_count{function=\"evil\"} 1\n"));
    ck_assert(has(mx, "fngate_cold_start_duration_seconds_bucket{function=\"evil\",le=\"0.00025\"}"
                      " 1\n"));
    metrics_inst_exited(ia, false, NULL, 20);
    scoreboard_free(a);
    ck_assert(has(mx, "code=\"200\"} 50\n"));
    ck_assert(has(mx, "fngate_instance_exits_total{function=\"evil\",reason=\"recycle\"} 1\n"));
    metrics_free(mx);
}
END_TEST

START_TEST(one_function_cannot_touch_another)
{
    struct discover_fn d1 = test_desc("good"), d2 = test_desc("evil");
    struct metrics *mx = metrics_new();
    struct metrics_fn *f1 = metrics_fn_new(mx, &d1, -1), *f2 = metrics_fn_new(mx, &d2, -1);
    struct scoreboard *a = scoreboard_new("good"), *b = scoreboard_new("evil");

    metrics_inst_new(f1, 100, 1000, a, 1);
    metrics_inst_new(f2, 101, 1000, b, 1);
    slot_count(a->slot, 200, 1000);
    for (int i = 0; i < FNSDK_SCOREBOARD_HIST; i++)
        b->slot->dur_hist[i] = UINT64_MAX;
    b->slot->codes[0].code = 200;
    b->slot->codes[0].n = UINT64_MAX;
    ck_assert(has(mx, "fngate_requests_total{function=\"good\",code=\"200\"} 1\n"));
    ck_assert(has(mx, "fngate_request_duration_seconds_count{function=\"good\"} 1\n"));
    metrics_fn_free(f1);
    metrics_fn_free(f2);
    scoreboard_free(a);
    scoreboard_free(b);
    metrics_free(mx);
}
END_TEST

START_TEST(rejections_and_json)
{
    struct discover_fn d = test_desc("t");
    struct metrics *mx = metrics_new();
    struct metrics_fn *fm = metrics_fn_new(mx, &d, -1);
    char *js, *tab;

    metrics_fn_rejected(fm, METRICS_REJ_CANNOT_START, 3);
    metrics_fn_rejected(fm, METRICS_REJ_OVERLOAD, 2);
    ck_assert(has(mx, "fngate_rejected_total{function=\"t\",reason=\"cannot_start\"} 3\n"));
    ck_assert(has(mx, "fngate_rejected_total{function=\"t\",reason=\"overload\"} 2\n"));
    ck_assert(has(mx, "fngate_requests_total{function=\"t\",code=\"503\"} 5\n"));
    js = render(mx, 1);
    ck_assert_ptr_nonnull(strstr(js, "\"name\":\"t\""));
    ck_assert_ptr_nonnull(strstr(js, "\"requests\":5,\"errors\":5"));
    ck_assert_ptr_nonnull(strstr(js, "\"codes\":{\"503\":5}"));
    ck_assert_ptr_nonnull(strstr(js, "\"pool\":null"));
    tab = render(mx, 2);
    ck_assert_ptr_nonnull(strstr(tab, "function "));
    ck_assert_ptr_nonnull(strstr(tab, "\nt "));
    free(js);
    free(tab);
    metrics_free(mx);
}
END_TEST

START_TEST(quantiles)
{
    static const double le[3] = {1, 2, 4};
    uint64_t b[4] = {0, 10, 0, 0};
    ck_assert_double_eq_tol(metrics_quantile(b, le, 4, 0.5), 1.5, 1e-9);
    b[1] = 0;
    ck_assert_double_eq(metrics_quantile(b, le, 4, 0.5), -1);
    b[3] = 1; /* all in +Inf: its lower bound */
    ck_assert_double_eq(metrics_quantile(b, le, 4, 0.99), 4);
}
END_TEST

/* Bucket counts are an instance's claims: the quantile's total and running
 * sum saturate, or UINT64_MAX in one bucket wraps the total to 0 ("no
 * data") or to a handful, which puts the median in the wrong bucket. */
START_TEST(quantile_hostile_buckets)
{
    static const double le[3] = {1, 2, 4};
    uint64_t b[4] = {UINT64_MAX, 1, 0, 0};
    ck_assert_double_eq_tol(metrics_quantile(b, le, 4, 0.5), 0.5, 1e-6);
    b[0] = 1;
    b[1] = UINT64_MAX;
    ck_assert_double_eq_tol(metrics_quantile(b, le, 4, 0.5), 1.5, 1e-6);
    /* Almost all in +Inf: its lower bound, not a point in bucket 2. */
    b[0] = b[1] = 0;
    b[2] = 5;
    b[3] = UINT64_MAX;
    ck_assert_double_eq(metrics_quantile(b, le, 4, 0.5), 4);
}
END_TEST

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* metrics_tick's request total for the rate saturates like every other sum: a
 * wrapped sample a second ago made req_per_s about 1.8e19 against the
 * saturated total now.  So do an instance's requests and the JSON
 * histogram's count. */
START_TEST(tick_total_saturates)
{
    struct discover_fn d = test_desc("evil");
    struct metrics *mx = metrics_new();
    struct metrics_fn *fm = metrics_fn_new(mx, &d, -1);
    struct scoreboard *a = scoreboard_new("evil");
    char *js;

    metrics_inst_new(fm, 100, 1000, a, 1);
    a->slot->codes[0].code = 200;
    a->slot->codes[0].n = UINT64_MAX;
    a->slot->codes[1].code = 201;
    a->slot->codes[1].n = 2;
    a->slot->dur_hist[0] = UINT64_MAX;
    a->slot->dur_hist[1] = 2;
    metrics_tick(mx, mono_ns() - 1000000000);
    js = render(mx, 1);
    ck_assert_msg(strstr(js, "\"requests\":18446744073709551615,") != NULL, "%s", js);
    ck_assert_msg(strstr(js, "\"req_per_s\":0.00,") != NULL, "%s", js);
    /* The JSON histogram's count too (the Prometheus one already did). */
    ck_assert_msg(strstr(js, "\"count\":18446744073709551615,") != NULL, "%s", js);
    free(js);
    metrics_free(mx);
    scoreboard_free(a);
}
END_TEST

/* --- the request log --------------------------------------------------- */

static void ring_put(struct fnsdk_scoreboard_slot *sl, char *ring, size_t size, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++)
        ring[(sl->log_head + i) % size] = s[i];
    sl->log_head += n;
}

static char *slurp(const char *path)
{
    static char buf[65536];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* TEXT put into a fresh 4 KB ring of function "evil" as its instance
 * would, drained once as pid 42: what the request log file then holds. */
static const char *drain_text(const char *text)
{
    char path[] = "/tmp/test_metrics_XXXXXX", err[256];
    int fd = mkstemp(path);
    struct reqlog *rl;
    struct scoreboard *s = scoreboard_new_log("evil", 4096);
    size_t size;
    char *ring = scoreboard_log_ring(s, &size);
    uint64_t tail = 0;
    const char *out;
    struct reqlog_budget budget = {0};

    ck_assert_int_ge(fd, 0);
    close(fd);
    rl = reqlog_open(path, err, sizeof(err));
    ck_assert_ptr_nonnull(rl);
    ring_put(s->slot, ring, size, text);
    reqlog_drain(rl, &budget, "evil", 42, s->slot, ring, size, &tail);
    ck_assert_uint_eq(tail, s->slot->log_head);
    out = slurp(path);
    reqlog_free(rl);
    scoreboard_free(s);
    unlink(path);
    return out;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Two instances of one function keep their rings full of the smallest line
 * the gateway keeps: the function's lines are held to its budget, shared by
 * its instances, and every line over it is counted as dropped. */
START_TEST(reqlog_holds_a_flooding_function_to_its_budget)
{
    char path[] = "/tmp/test_metrics_XXXXXX", err[256];
    int fd = mkstemp(path);
    struct reqlog *rl;
    struct scoreboard *s[2] = {scoreboard_new_log("evil", 65536),
                               scoreboard_new_log("evil", 65536)};
    uint64_t tail[2] = {0, 0}, put = 0, kept = 0;
    struct reqlog_budget budget = {0};
    double t0, t1;
    char buf[65536];
    ssize_t n;

    ck_assert_int_ge(fd, 0);
    close(fd);
    rl = reqlog_open(path, err, sizeof(err));
    ck_assert_ptr_nonnull(rl);
    t0 = now_s();
    for (int round = 0; round < 12; round++) {
        for (int i = 0; i < 2; i++) {
            size_t size;
            char *ring = scoreboard_log_ring(s[i], &size);
            while (s[i]->slot->log_head - tail[i] + 8 <= size) {
                ring_put(s[i]->slot, ring, size, "{\"a\":1}\n");
                put++;
            }
            reqlog_drain(rl, &budget, "evil", 42 + i, s[i]->slot, ring, size, &tail[i]);
            ck_assert_uint_eq(tail[i], s[i]->slot->log_head);
        }
    }
    t1 = now_s();
    fd = open(path, O_RDONLY);
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++)
            kept += buf[i] == '\n';
    }
    close(fd);
    ck_assert_uint_eq(put, 12 * 2 * 8192);
    ck_assert_uint_ge(kept, REQLOG_LINES_BURST);
    ck_assert_uint_le(kept, REQLOG_LINES_BURST + (uint64_t)((t1 - t0) * REQLOG_LINES_PER_S) + 1);
    ck_assert_uint_eq(budget.dropped, put - kept);
    ck_assert_uint_gt(budget.dropped, 0);
    reqlog_free(rl);
    scoreboard_free(s[0]);
    scoreboard_free(s[1]);
    unlink(path);
}
END_TEST

START_TEST(reqlog_drains_whole_lines_with_trusted_fields_first)
{
    char path[] = "/tmp/test_metrics_XXXXXX", err[256];
    int fd = mkstemp(path);
    struct reqlog *rl;
    struct scoreboard *s = scoreboard_new_log("hello", 64);
    size_t size;
    char *ring = scoreboard_log_ring(s, &size);
    uint64_t tail = 0;
    struct reqlog_budget budget = {0};

    ck_assert_int_ge(fd, 0);
    close(fd);
    rl = reqlog_open(path, err, sizeof(err));
    ck_assert_ptr_nonnull(rl);
    ck_assert_uint_eq(size, 64);
    ring_put(s->slot, ring, size, "{\"status\":200}\n{\"status\":201}\n");
    reqlog_drain(rl, &budget, "hello", 42, s->slot, ring, size, &tail);
    ck_assert_uint_eq(tail, s->slot->log_head);
    ck_assert_uint_eq(s->slot->log_tail, tail);
    /* Wraps around the ring end; forged and malformed lines are dropped. */
    ring_put(s->slot, ring, size, "not json\n{\"status\":202}\n{}\n");
    reqlog_drain(rl, &budget, "hello", 42, s->slot, ring, size, &tail);
    ring_put(s->slot, ring, size, "{\"status\":203}\n"); /* across the ring's end */
    reqlog_drain(rl, &budget, "hello", 42, s->slot, ring, size, &tail);
    /* A head that claims more than the ring holds is not believed. */
    s->slot->log_head += 1000;
    reqlog_drain(rl, &budget, "hello", 42, s->slot, ring, size, &tail);
    ck_assert_uint_eq(tail, s->slot->log_head);
    ck_assert_str_eq(slurp(path), "{\"function\":\"hello\",\"pid\":42,\"status\":200}\n"
                                  "{\"function\":\"hello\",\"pid\":42,\"status\":201}\n"
                                  "{\"function\":\"hello\",\"pid\":42,\"status\":202}\n"
                                  "{\"function\":\"hello\",\"pid\":42,\"status\":203}\n");
    reqlog_free(rl);
    scoreboard_free(s);
    unlink(path);
}
END_TEST

/* A hostile instance writes its ring directly: a line that repeats the
 * gateway's own keys (most JSON readers keep the last of two), closes the
 * object early to append fields after it, or carries raw control bytes
 * (terminal escapes, a carriage return) must not reach the log. */
START_TEST(reqlog_drops_lines_forging_the_trusted_fields)
{
    const char *out = drain_text("{\"function\":\"billing\",\"status\":200}\n"
                                 "{\"status\":200,\"pid\":1}\n"
                                 "{\"status\":200, \"function\" :\"billing\"}\n"
                                 "{\"status\":200,\"\\u0066unction\":\"billing\"}\n"
                                 "{\"a\":1},\"function\":\"billing\",\"b\":{\"c\":2}\n"
                                 "{\"a\":\"x\x1b[2K\rfake\"}\n"
                                 "{\"a\":\"}\n"
                                 "{\"a\":1,}\n"
                                 "{\"note\":\"function\",\"x\":{\"pid\":3},\"s\":\"a\\\"b\"}\n");

    /* Only the last line is the instance's own fields; nested and quoted
     * look-alikes are fine. */
    ck_assert_str_eq(out, "{\"function\":\"evil\",\"pid\":42,\"note\":\"function\","
                          "\"x\":{\"pid\":3},\"s\":\"a\\\"b\"}\n");
}
END_TEST

/* Lines the old scanner let through although no JSON reader takes them (or
 * takes them as the instance's own fields): every line written is valid
 * JSON, an object whose only "function" and "pid" are the gateway's. */
START_TEST(reqlog_writes_only_valid_json)
{
    static const char *const bad[] = {
        "{\"a\":1 2}",                      /* two values */
        "{\"a\":tru}",                      /* not a literal */
        "{\"a\":\"x\" \"b\":1}",            /* no comma */
        "{\"a\"}",                          /* no value */
        "{\"a\":1:2}",                      /* two colons */
        "{\"a\":\"\xff\xfe\"}",             /* not UTF-8 */
        "{\"a\":\"\\u00\"}",                /* a short escape */
        "{\"a\":\"\\q\"}",                  /* no such escape */
        "{\"a\":\"\\ud800\"}",              /* a lone surrogate */
        "{\"a\":01}",                       /* a leading zero */
        "{\"a\":[1,2}",                     /* unbalanced */
        "{\"a\":1,\"a\":2}",                /* a key twice */
        "{\"functio\\u006e\":\"billing\"}", /* an escaped gateway key */
        "{\"pi\\u0064\":7}",
        "{\"a\":1}{\"b\":2}",  /* two objects */
        "{\"x\":\"\\u0000\"}", /* a NUL */
    };
    static const char *const good[] = {
        "{\"status\":200,\"path\":\"/a\\\"b\\\\c\\u00e9\\ud83d\\ude00\",\"cold\":false}",
        "{\"p\\u0061th\":\"/x\",\"n\":-1.5e3,\"z\":null,\"l\":[true,{\"function\":1}]}",
    };
    char in[2048] = "", want[1024] = "";

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        strcat(in, bad[i]);
        strcat(in, "\n");
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        strcat(in, good[i]);
        strcat(in, "\n");
        strcat(want, "{\"function\":\"evil\",\"pid\":42,");
        strcat(want, good[i] + 1);
        strcat(want, "\n");
    }
    ck_assert_str_eq(drain_text(in), want);
}
END_TEST

START_TEST(reqlog_apply_reports_the_path)
{
    struct reqlog *rl = NULL;
    ck_assert_int_eq(reqlog_apply(&rl, "/nonexistent-dir/x.log"), -1);
    ck_assert_ptr_null(rl);
    ck_assert_int_eq(reqlog_apply(&rl, "stderr"), 0);
    ck_assert_str_eq(reqlog_path(rl), "stderr");
    ck_assert_int_eq(reqlog_apply(&rl, NULL), 0);
    ck_assert_ptr_null(rl);
    reqlog_free(NULL);
    metrics_free(NULL);
    metrics_fn_free(NULL);
    metrics_inst_free(NULL);
}
END_TEST

/* --- FastCGI records (fcgirec.c) ----------------------------------------- */

START_TEST(fcgirec_records)
{
    struct evbuffer *b = evbuffer_new();
    static char big[70000];
    unsigned char h[8], *p;
    struct fcgirec r;

    fcgirec_header(h, FCGIREC_PARAMS, 258, 5);
    evbuffer_add(b, h, 7);
    ck_assert_int_eq(fcgirec_peek(b, &r), 0); /* no whole header */
    evbuffer_add(b, h + 7, 1);
    evbuffer_add(b, "abcd", 4);
    ck_assert_int_eq(fcgirec_peek(b, &r), 0); /* content short by one */
    evbuffer_add(b, "e", 1);
    ck_assert_int_eq(fcgirec_peek(b, &r), 1);
    ck_assert_int_eq(r.type, FCGIREC_PARAMS);
    ck_assert_uint_eq(r.reqid, 258);
    ck_assert_uint_eq(r.len, 5);
    ck_assert_uint_eq(r.total, 13);
    evbuffer_drain(b, r.total);
    ck_assert_uint_eq(evbuffer_get_length(b), 0);

    /* 70000 bytes: three STDOUT records, then the empty one and the end. */
    memset(big, 'x', sizeof(big));
    fcgirec_stdout(b, 7, big, sizeof(big));
    fcgirec_end(b, 7);
    ck_assert_uint_eq(evbuffer_get_length(b), sizeof(big) + 3 * 8 + 8 + 16);
    p = evbuffer_pullup(b, -1);
    ck_assert_int_eq(p[1], FCGIREC_STDOUT);
    ck_assert_int_eq((p[4] << 8) | p[5], 32768);
    ck_assert_int_eq(fcgirec_peek(b, &r), 1);
    evbuffer_drain(b, r.total);
    evbuffer_drain(b, 32768 + 8);
    ck_assert_int_eq(fcgirec_peek(b, &r), 1);
    ck_assert_uint_eq(r.len, sizeof(big) - 65536);
    evbuffer_drain(b, r.total);
    ck_assert_int_eq(fcgirec_peek(b, &r), 1);
    ck_assert_uint_eq(r.len, 0);
    ck_assert_int_eq(r.type, FCGIREC_STDOUT);
    evbuffer_drain(b, r.total);
    ck_assert_int_eq(fcgirec_peek(b, &r), 1);
    ck_assert_int_eq(r.type, FCGIREC_END_REQUEST);
    ck_assert_uint_eq(r.len, 8);
    evbuffer_free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, counts_survive_exits);
    tcase_add_test(tc, hostile_slot_cannot_go_backwards_or_lie_about_codes);
    tcase_add_test(tc, hostile_buckets_never_make_a_cumulative_bucket_smaller);
    tcase_add_test(tc, quantile_hostile_buckets);
    tcase_add_test(tc, tick_total_saturates);
    tcase_add_test(tc, one_function_cannot_touch_another);
    tcase_add_test(tc, rejections_and_json);
    tcase_add_test(tc, quantiles);
    tcase_add_test(tc, reqlog_drains_whole_lines_with_trusted_fields_first);
    tcase_add_test(tc, reqlog_holds_a_flooding_function_to_its_budget);
    tcase_add_test(tc, reqlog_drops_lines_forging_the_trusted_fields);
    tcase_add_test(tc, reqlog_writes_only_valid_json);
    tcase_add_test(tc, reqlog_apply_reports_the_path);
    tcase_add_test(tc, fcgirec_records);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
