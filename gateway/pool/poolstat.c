/*
 * Both sides of the pool's statistics memfd.  The layout is fixed-size (a
 * table of POOLSTAT_FNS functions), so the supervisor reads it without a
 * lock: a torn read shows a figure one query old.  Names are copied out and
 * checked before they become label values: the supervisor trusts the pool
 * program, but not that a memory image stays consistent mid-write.
 */
#include "config.h"

#include "poolstat.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct poolstat {
    int fd;
    struct poolstat_shm *sh;
};

static const char *const poolstat_state_names[4] = {"free", "connecting", "idle", "active"};

struct poolstat *poolstat_new(void)
{
    struct poolstat *ps = calloc(1, sizeof(*ps));

    if (!ps)
        return NULL;
    ps->fd = memfd_create("fngate-poolstat", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (ps->fd < 0 || ftruncate(ps->fd, (off_t)sizeof(struct poolstat_shm)) < 0 ||
        fcntl(ps->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        log_warn("pool statistics: memfd");
        goto fail;
    }
    ps->sh = mmap(NULL, sizeof(*ps->sh), PROT_READ | PROT_WRITE, MAP_SHARED, ps->fd, 0);
    if (ps->sh == MAP_FAILED) {
        ps->sh = NULL;
        log_warn("pool statistics: mmap");
        goto fail;
    }
    ps->sh->magic = POOLSTAT_MAGIC;
    return ps;
fail:
    poolstat_free(ps);
    return NULL;
}

void poolstat_free(struct poolstat *ps)
{
    if (!ps)
        return;
    if (ps->sh)
        munmap(ps->sh, sizeof(*ps->sh));
    if (ps->fd >= 0)
        close(ps->fd);
    free(ps);
}

int poolstat_fd(const struct poolstat *ps)
{
    return ps ? ps->fd : -1;
}

void poolstat_set_slow(struct poolstat *ps, int64_t ms)
{
    if (ps)
        FNSDK_SCOREBOARD_STORE(ps->sh->slow_query_ms, ms);
}

/* Copies a name out if it is a valid function name, else "". */
static void poolstat_name(const char *src, char *dst, size_t len)
{
    size_t i;

    for (i = 0; i + 1 < len && i < 64 && src[i]; i++) {
        char c = src[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            dst[0] = '\0';
            return;
        }
        dst[i] = c;
    }
    dst[i] = '\0';
}

static void poolstat_hist(struct evbuffer *o, const char *name, const char *labels,
                          const uint64_t *b, uint64_t sum_ns)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";

    for (int i = 0; i < FNSDK_SCOREBOARD_HIST; i++) {
        cum += FNSDK_SCOREBOARD_LOAD(b[i]);
        if (i < FNSDK_SCOREBOARD_HIST - 1)
            evbuffer_add_printf(o, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep,
                                (double)fnsdk_scoreboard_hist_le_ns[i] / 1e9, cum);
        else
            evbuffer_add_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep,
                                cum);
    }
    evbuffer_add_printf(o, "%s_sum%s%s%s %.9g\n%s_count%s%s%s %" PRIu64 "\n", name,
                        labels[0] ? "{" : "", labels, labels[0] ? "}" : "", (double)sum_ns / 1e9,
                        name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "", cum);
}

static void poolstat_head(struct evbuffer *o, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A counter with no labels: its HELP and TYPE lines, and its value. */
static void poolstat_counter(struct evbuffer *o, const char *name, const char *help, uint64_t value)
{
    poolstat_head(o, name, "counter", help);
    evbuffer_add_printf(o, "%s %" PRIu64 "\n", name, value);
}

void poolstat_render_prom(const struct poolstat *ps, struct evbuffer *o)
{
    const struct poolstat_shm *sh = ps->sh;
    char name[72], labels[128], cls[4];
    uint64_t errors = 0;

    poolstat_head(o, "fngate_pool_connections", "gauge", "Database connections, by state.");
    for (int s = 0; s < 4; s++)
        evbuffer_add_printf(o, "fngate_pool_connections{state=\"%s\"} %u\n",
                            poolstat_state_names[s], FNSDK_SCOREBOARD_LOAD(sh->conns[s]));
    poolstat_head(o, "fngate_pool_size", "gauge", "The pool_size setting.");
    evbuffer_add_printf(o, "fngate_pool_size %d\n", FNSDK_SCOREBOARD_LOAD(sh->pool_size));
    poolstat_head(o, "fngate_pool_waiting", "gauge", "Queries waiting for a connection.");
    evbuffer_add_printf(o, "fngate_pool_waiting %u\n", FNSDK_SCOREBOARD_LOAD(sh->waiting));
    poolstat_head(o, "fngate_pool_wait_seconds", "histogram",
                  "Time a query waited for a free connection.");
    poolstat_hist(o, "fngate_pool_wait_seconds", "", sh->wait_hist,
                  FNSDK_SCOREBOARD_LOAD(sh->wait_sum_ns));
    poolstat_head(o, "fngate_pool_query_duration_seconds", "histogram",
                  "From a connection taking the query to its answer, by function.");
    for (int i = 0; i < POOLSTAT_FNS; i++) {
        poolstat_name(sh->fns[i].fn, name, sizeof(name));
        if (!name[0])
            continue;
        snprintf(labels, sizeof(labels), "function=\"%s\"", name);
        poolstat_hist(o, "fngate_pool_query_duration_seconds", labels, sh->fns[i].q_hist,
                      FNSDK_SCOREBOARD_LOAD(sh->fns[i].q_sum_ns));
    }
    poolstat_head(o, "fngate_pool_errors_total", "counter",
                  "Queries answered with an error, by function and SQLSTATE class.");
    for (int i = 0; i < POOLSTAT_FNS; i++) {
        const struct poolstat_fn *f = &sh->fns[i];
        poolstat_name(f->fn, name, sizeof(name));
        if (!name[0])
            continue;
        for (int k = 0; k < POOLSTAT_CLASSES; k++) {
            uint64_t n = FNSDK_SCOREBOARD_LOAD(f->err[k].n);
            memcpy(cls, f->err[k].cls, 3);
            cls[2] = '\0';
            if (!n || strspn(cls, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 2)
                continue;
            evbuffer_add_printf(o,
                                "fngate_pool_errors_total{function=\"%s\",sqlstate_class=\"%s\"} "
                                "%" PRIu64 "\n",
                                name, cls, n);
            errors += n;
        }
        if (FNSDK_SCOREBOARD_LOAD(f->err_other))
            evbuffer_add_printf(o,
                                "fngate_pool_errors_total{function=\"%s\",sqlstate_class=\"other\"}"
                                " %" PRIu64 "\n",
                                name, FNSDK_SCOREBOARD_LOAD(f->err_other));
    }
    (void)errors;
    poolstat_counter(o, "fngate_pool_prepared_hits_total",
                     "Queries run from a statement already prepared on their connection.",
                     FNSDK_SCOREBOARD_LOAD(sh->prepared_hits));
    poolstat_counter(o, "fngate_pool_prepared_misses_total",
                     "Queries that had to be prepared first.",
                     FNSDK_SCOREBOARD_LOAD(sh->prepared_misses));
    poolstat_counter(o, "fngate_pool_whole_reads_total",
                     "Results read whole, their statement's results having stayed small.",
                     FNSDK_SCOREBOARD_LOAD(sh->whole_reads));
    poolstat_counter(o, "fngate_pool_whole_cutoffs_total",
                     "Whole reads cut off at the guard: the query got FG002, its statement is "
                     "read row by row since.",
                     FNSDK_SCOREBOARD_LOAD(sh->whole_cutoffs));
    poolstat_counter(o, "fngate_pool_session_resets_total",
                     "Server sessions reset (DISCARD ALL) to pass from one function to another.",
                     FNSDK_SCOREBOARD_LOAD(sh->resets));
    poolstat_counter(o, "fngate_pool_rendered_bytes_total",
                     "Bytes of JSON the pool rendered from results.",
                     FNSDK_SCOREBOARD_LOAD(sh->bytes_rendered));
    poolstat_counter(o, "fngate_pool_slow_queries_total", "Queries slower than slow_query.",
                     FNSDK_SCOREBOARD_LOAD(sh->slow_queries));
}

void poolstat_render_json(const struct poolstat *ps, struct evbuffer *o)
{
    const struct poolstat_shm *sh = ps->sh;
    uint64_t queries = 0, errors = 0, cum = 0, b[FNSDK_SCOREBOARD_HIST];
    char name[72];
    bool first = true;

    evbuffer_add_printf(o, "{\"pid\":%u,\"pool_size\":%d,\"connections\":{",
                        FNSDK_SCOREBOARD_LOAD(sh->pool_pid), FNSDK_SCOREBOARD_LOAD(sh->pool_size));
    for (int s = 0; s < 4; s++)
        evbuffer_add_printf(o, "%s\"%s\":%u", s ? "," : "", poolstat_state_names[s],
                            FNSDK_SCOREBOARD_LOAD(sh->conns[s]));
    evbuffer_add_printf(o, "},\"waiting\":%u,\"wait_seconds\":{\"le\":[",
                        FNSDK_SCOREBOARD_LOAD(sh->waiting));
    for (int i = 0; i < FNSDK_SCOREBOARD_HIST - 1; i++)
        evbuffer_add_printf(o, "%s%g", i ? "," : "", (double)fnsdk_scoreboard_hist_le_ns[i] / 1e9);
    evbuffer_add_printf(o, "],\"buckets\":[");
    for (int i = 0; i < FNSDK_SCOREBOARD_HIST; i++) {
        b[i] = FNSDK_SCOREBOARD_LOAD(sh->wait_hist[i]);
        cum += b[i];
        evbuffer_add_printf(o, "%s%" PRIu64, i ? "," : "", b[i]);
    }
    evbuffer_add_printf(o, "],\"count\":%" PRIu64 ",\"sum\":%.9g},\"functions\":{", cum,
                        (double)FNSDK_SCOREBOARD_LOAD(sh->wait_sum_ns) / 1e9);
    for (int i = 0; i < POOLSTAT_FNS; i++) {
        const struct poolstat_fn *f = &sh->fns[i];
        uint64_t e = FNSDK_SCOREBOARD_LOAD(f->err_other);
        poolstat_name(f->fn, name, sizeof(name));
        if (!name[0])
            continue;
        for (int k = 0; k < POOLSTAT_CLASSES; k++)
            e += FNSDK_SCOREBOARD_LOAD(f->err[k].n);
        evbuffer_add_printf(o, "%s\"%s\":{\"queries\":%" PRIu64 ",\"errors\":%" PRIu64 "}",
                            first ? "" : ",", name, FNSDK_SCOREBOARD_LOAD(f->queries), e);
        first = false;
        queries += FNSDK_SCOREBOARD_LOAD(f->queries);
        errors += e;
    }
    evbuffer_add_printf(
        o,
        "},\"queries\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"prepared_hits\":%" PRIu64
        ",\"prepared_misses\":%" PRIu64 ",\"whole_reads\":%" PRIu64 ",\"whole_cutoffs\":%" PRIu64
        ",\"rendered_bytes\":%" PRIu64 ",\"slow_queries\":%" PRIu64 ",\"slow_query_ms\":%" PRId64
        "}",
        queries, errors, FNSDK_SCOREBOARD_LOAD(sh->prepared_hits),
        FNSDK_SCOREBOARD_LOAD(sh->prepared_misses), FNSDK_SCOREBOARD_LOAD(sh->whole_reads),
        FNSDK_SCOREBOARD_LOAD(sh->whole_cutoffs), FNSDK_SCOREBOARD_LOAD(sh->bytes_rendered),
        FNSDK_SCOREBOARD_LOAD(sh->slow_queries), FNSDK_SCOREBOARD_LOAD(sh->slow_query_ms));
}

/* --- the pool's side ---------------------------------------------------- */

struct poolstat_shm *poolstat_attach(int fd, int pool_size)
{
    static struct poolstat_shm local;
    struct poolstat_shm *sh = &local;
    struct stat st;

    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        (size_t)st.st_size == sizeof(struct poolstat_shm)) {
        void *m = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED)
            sh = m;
        close(fd);
    }
    FNSDK_SCOREBOARD_STORE(sh->pool_pid, (uint32_t)getpid());
    FNSDK_SCOREBOARD_STORE(sh->pool_size, pool_size);
    FNSDK_SCOREBOARD_STORE(sh->waiting, 0u);
    for (int s = 0; s < 4; s++)
        FNSDK_SCOREBOARD_STORE(sh->conns[s], 0u);
    return sh;
}

int poolstat_fn_index(struct poolstat_shm *sh, const char *fn)
{
    for (int i = 0; i < POOLSTAT_FNS; i++) {
        if (strncmp(sh->fns[i].fn, fn, sizeof(sh->fns[i].fn)) == 0)
            return i;
        if (!sh->fns[i].fn[0]) {
            snprintf(sh->fns[i].fn, sizeof(sh->fns[i].fn), "%s", fn);
            return i;
        }
    }
    return -1;
}

#define POOLSTAT_BUMP(field, by) FNSDK_SCOREBOARD_STORE(field, FNSDK_SCOREBOARD_LOAD(field) + (by))

void poolstat_wait(struct poolstat_shm *sh, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    POOLSTAT_BUMP(sh->wait_hist[fnsdk_scoreboard_hist_bucket(ns)], 1);
    POOLSTAT_BUMP(sh->wait_sum_ns, (uint64_t)ns);
    POOLSTAT_BUMP(sh->waits, 1);
}

void poolstat_query(struct poolstat_shm *sh, int idx, int64_t ns, const char *sqlstate)
{
    struct poolstat_fn *f;

    if (idx < 0) {
        POOLSTAT_BUMP(sh->fns_full, 1);
        return;
    }
    f = &sh->fns[idx];
    POOLSTAT_BUMP(f->queries, 1);
    if (ns >= 0) {
        POOLSTAT_BUMP(f->q_hist[fnsdk_scoreboard_hist_bucket(ns)], 1);
        POOLSTAT_BUMP(f->q_sum_ns, (uint64_t)ns);
    }
    if (sqlstate && strlen(sqlstate) >= 2) {
        for (int k = 0; k < POOLSTAT_CLASSES; k++) {
            if (!f->err[k].cls[0]) {
                f->err[k].cls[0] = sqlstate[0];
                f->err[k].cls[1] = sqlstate[1];
                f->err[k].cls[2] = '\0';
            }
            if (memcmp(f->err[k].cls, sqlstate, 2) == 0) {
                POOLSTAT_BUMP(f->err[k].n, 1);
                return;
            }
        }
        POOLSTAT_BUMP(f->err_other, 1);
    }
}
