/*
 * fn_query: the function side of the database channel.  A query is one frame
 * out and one frame back on fd 3, blocking: an instance serves one request
 * at a time, so there is nothing else it could do meanwhile.  The answer's
 * JSON text is kept as received and sent to the client untouched by
 * fn_send_rows: rendering happened once, in the pool, and nothing here
 * parses it unless the function asks (fn_rows_json).  Instances never link
 * libpq and never see the connection string.
 */
#include "config.h"

#include "fnsdk_frame.h"
#include "fnsdk_loop.h"
#include "fngate.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* The largest answer accepted; the pool enforces max_result first. */
#define FN_DB_MAX_ANSWER ((size_t)1 << 30)

struct fn_rows {
    struct fn_rows *next;      /* the request's list */
    struct fnsdk_dbreq *owner; /* that request's state; NULL once it ended */
    char *payload;             /* owned: the whole 'R' frame payload */
    const char *tag;           /* NUL-terminated copy in tagbuf */
    char tagbuf[64];
    long long count;
    size_t json_off, json_len; /* the JSON text inside payload */
    json_t *json;              /* owned; parsed on demand */
};

struct fnsdk_dbreq {
    struct fn_rows *rows;
    int in_tx; /* inside a transaction block (BEGIN seen, no COMMIT/ROLLBACK yet) */
    fn_db_err err;
    char *errbuf; /* owned: the strings err points into */
};

static const fn_db_err fn_db_noerr = {"", "", "", "", 0};
static int fn_db_fd = -2; /* -2: not checked yet, -1: none, -3: broken */

/* A failure after the query went out leaves the stream mid-frame: every
 * later answer would be misread.  The channel is closed for good and the
 * instance leaves after this request; its replacement gets a new one. */
static void fn_db_break(void)
{
    if (fn_db_fd >= 0)
        close(fn_db_fd);
    fn_db_fd = -3;
    fnsdk_loop_request_stop();
}

static int fn_db_channel(void)
{
    struct stat st;
    const char *v;

    if (fn_db_fd != -2)
        return fn_db_fd;
    fn_db_fd = -1;
    v = getenv("FNGATE_DB_FD");
    if (v && *v && fstat(atoi(v), &st) == 0 && S_ISSOCK(st.st_mode))
        fn_db_fd = atoi(v);
    return fn_db_fd;
}

int fnsdk_db_watch_fd(void)
{
    int fd = fn_db_channel();
    return fd >= 0 ? fd : -1;
}

bool fnsdk_db_channel_ok(void)
{
    int fd = fn_db_channel();
    char c;
    ssize_t n;

    if (fd == -3)
        return false;
    if (fd < 0)
        return true;
    /* Between requests nothing is owed to us: EOF is the pool closing the
     * channel, and bytes it sent unasked mean the stream is out of step. */
    n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return true;
    fn_db_break();
    return false;
}

static struct fnsdk_dbreq *fn_db_state(fn_req *req)
{
    struct fnsdk_dbreq **slot = fnsdk_req_db(req);
    if (!*slot)
        *slot = calloc(1, sizeof(**slot));
    return *slot;
}

static void fn_rows_release(fn_rows *rows)
{
    json_decref(rows->json);
    free(rows->payload);
    free(rows);
}

void fn_rows_free(fn_rows *rows)
{
    if (!rows)
        return;
    /* Unlinked first: the request frees whatever is still on its list. */
    for (struct fn_rows **pp = rows->owner ? &rows->owner->rows : NULL; pp && *pp;
         pp = &(*pp)->next) {
        if (*pp == rows) {
            *pp = rows->next;
            break;
        }
    }
    fn_rows_release(rows);
}

static int fn_db_tx(struct fnsdk_dbreq *db, const char *trace, const char *sql);

void fnsdk_db_request_end(struct fnsdk_dbreq *db)
{
    if (!db)
        return;
    if (db->in_tx) {
        /* Returned without fn_commit: nothing of it may stay. */
        fn_log("request ended inside a transaction: rolled back");
        if (fn_db_tx(db, NULL, "ROLLBACK") < 0)
            fn_db_break(); /* the pool rolls back when the channel goes */
    }
    while (db->rows) {
        struct fn_rows *r = db->rows;
        db->rows = r->next;
        fn_rows_release(r);
    }
    free(db->errbuf);
    free(db);
}

/* Records an error from NFIELDS strings (sqlstate, message, detail, hint,
 * position). */
static void fn_db_set_error(struct fnsdk_dbreq *db, const struct fnsdk_frame_field *f,
                            size_t nfields)
{
    size_t total = 0;
    char *w;
    const char **dst[4];

    free(db->errbuf);
    db->errbuf = NULL;
    db->err = fn_db_noerr;
    for (size_t i = 0; i < nfields; i++)
        total += f[i].len + 1;
    db->errbuf = malloc(total ? total : 1);
    if (!db->errbuf) {
        db->err.sqlstate = "FG003";
        db->err.message = "out of memory";
        return;
    }
    w = db->errbuf;
    dst[0] = &db->err.sqlstate;
    dst[1] = &db->err.message;
    dst[2] = &db->err.detail;
    dst[3] = &db->err.hint;
    for (size_t i = 0; i < nfields; i++) {
        memcpy(w, f[i].p, f[i].len);
        w[f[i].len] = '\0';
        if (i < 4)
            *dst[i] = w;
        else
            db->err.position = atoi(w);
        w += f[i].len + 1;
    }
}

static void fn_db_fail(struct fnsdk_dbreq *db, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fn_db_fail(struct fnsdk_dbreq *db, const char *sqlstate, const char *fmt, ...)
{
    char msg[512];
    struct fnsdk_frame_field f[2];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    f[0].p = sqlstate;
    f[0].len = strlen(sqlstate);
    f[1].p = msg;
    f[1].len = strlen(msg);
    fn_db_set_error(db, f, 2);
}

/* V in decimal, written backwards from END; returns where it starts.  (A
 * pk lookup's one parameter: snprintf cost a tenth of the query's SDK
 * side.) */
static char *fn_db_decimal(char *end, json_int_t v)
{
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    char *p = end;

    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--p = '-';
    return p;
}

/* Adds one parameter to the frame being built. */
static int fn_db_param(struct fnsdk_buf *out, const json_t *v)
{
    char num[64], *start;
    char *text;
    int rc, n;

    switch (json_typeof(v)) {
    case JSON_STRING:
        return fnsdk_frame_add_tagged(out, FNSDK_FRAME_P_STRING, json_string_value(v),
                                      json_string_length(v));
    case JSON_INTEGER:
        start = fn_db_decimal(num + sizeof(num), json_integer_value(v));
        return fnsdk_frame_add_tagged(out, FNSDK_FRAME_P_INT, start,
                                      (size_t)(num + sizeof(num) - start));
    case JSON_REAL:
        n = snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        return fnsdk_frame_add_tagged(out, FNSDK_FRAME_P_REAL, num, (size_t)n);
    case JSON_TRUE:
        return fnsdk_frame_add_tagged(out, FNSDK_FRAME_P_BOOL, "t", 1);
    case JSON_FALSE:
        return fnsdk_frame_add_tagged(out, FNSDK_FRAME_P_BOOL, "f", 1);
    case JSON_NULL:
        return fnsdk_frame_add_tagged(out, FNSDK_FRAME_P_NULL, "", 0);
    default:
        text = json_dumps(v, JSON_COMPACT);
        if (!text)
            return -1;
        rc = fnsdk_frame_add_tagged(out, FNSDK_FRAME_P_JSON, text, strlen(text));
        free(text);
        return rc;
    }
}

/* Tracks whether the request's session is inside a transaction block from
 * the command tags, whoever sent the BEGIN (fn_begin or SQL). */
static void fn_db_track(struct fnsdk_dbreq *db, const char *tag)
{
    if (strcmp(tag, "BEGIN") == 0 || strcmp(tag, "START TRANSACTION") == 0)
        db->in_tx = 1;
    else if (strcmp(tag, "COMMIT") == 0 || strcmp(tag, "ROLLBACK") == 0 ||
             strcmp(tag, "PREPARE TRANSACTION") == 0)
        db->in_tx = 0;
}

/* One query on the channel: the rows, or NULL with db->err set. */
static fn_rows *fn_db_exec(struct fnsdk_dbreq *db, const char *trace, const char *sql,
                           const json_t *params)
{
    struct fnsdk_buf out, in;
    struct fnsdk_frame_view *v = NULL;
    struct fn_rows *rows = NULL;
    char err[160];
    int fd = fn_db_channel();

    if (!db)
        return NULL;
    fnsdk_buf_init(&out, 0);
    fnsdk_buf_init(&in, 0);
    if (fd == -3) {
        fn_db_fail(db, "08006", "the database channel broke earlier in this instance");
        goto out;
    }
    if (fd < 0) {
        fn_db_fail(db, "FG004", "no database configured for this gateway (database_url)");
        goto out;
    }
    if (!sql || !*sql) {
        fn_db_fail(db, "FG003", "empty SQL");
        goto out;
    }
    if (params && !json_is_array(params)) {
        fn_db_fail(db, "FG003", "query parameters must be a JSON array");
        goto out;
    }
    if (params && json_array_size(params) > FNSDK_FRAME_MAX_PARAMS) {
        fn_db_fail(db, "FG003", "more than %d query parameters", FNSDK_FRAME_MAX_PARAMS);
        goto out;
    }
    /* The whole frame's room at once for the usual query (a few short
     * parameters), instead of growing it field by field. */
    fnsdk_buf_reserve(&out, strlen(sql) + 128);
    fnsdk_frame_begin(&out, FNSDK_FRAME_QUERY);
    fnsdk_frame_add(&out, sql, strlen(sql));
    for (size_t i = 0; params && i < json_array_size(params); i++) {
        if (fn_db_param(&out, json_array_get(params, i)) < 0)
            out.failed = 1;
    }
    if (trace)
        fnsdk_frame_add_tagged(&out, FNSDK_FRAME_P_TRACE, trace, 32);
    if (fnsdk_frame_end(&out) < 0) {
        fn_db_fail(db, "FG003", "cannot encode the query (out of memory or too large)");
        goto out;
    }
    if (fnsdk_frame_write_all(fd, out.data, out.len) < 0) {
        fn_db_fail(db, "08006", "database channel: %s", strerror(errno));
        fn_db_break();
        goto out;
    }
    if (fnsdk_frame_read_reply(fd, &in, FN_DB_MAX_ANSWER, err, sizeof(err)) < 0) {
        fn_db_fail(db, "08006", "database channel: %s", err);
        fn_db_break();
        goto out;
    }
    v = malloc(sizeof(*v));
    if (!v || fnsdk_frame_parse(in.data, in.len, v, err, sizeof(err)) < 0) {
        fn_db_fail(db, "FG003", "bad answer from the pool: %s", v ? err : "out of memory");
        goto out;
    }
    if (v->type == FNSDK_FRAME_ERROR) {
        fn_db_set_error(db, v->field, v->n_fields);
        goto out;
    }
    if (v->type != FNSDK_FRAME_RESULT || v->n_fields != 3) {
        fn_db_fail(db, "FG003", "bad answer from the pool");
        goto out;
    }
    rows = calloc(1, sizeof(*rows));
    if (!rows) {
        fn_db_fail(db, "FG003", "out of memory");
        goto out;
    }
    {
        /* As "%.*s" would: up to the first NUL, cut to the buffer. */
        const char *nul = memchr(v->field[0].p, '\0', v->field[0].len);
        size_t tl = nul ? (size_t)(nul - v->field[0].p) : v->field[0].len;
        if (tl > sizeof(rows->tagbuf) - 1)
            tl = sizeof(rows->tagbuf) - 1;
        memcpy(rows->tagbuf, v->field[0].p, tl);
        rows->tagbuf[tl] = '\0';
    }
    rows->tag = rows->tagbuf;
    fn_db_track(db, rows->tag);
    rows->count = v->field[1].len ? strtoll(v->field[1].p, NULL, 10) : 0;
    rows->json_off = (size_t)(v->field[2].p - in.data);
    rows->json_len = v->field[2].len;
    rows->payload = in.data; /* moves: the buffer is now the rows' */
    in.data = NULL;
    rows->owner = db;
    rows->next = db->rows;
    db->rows = rows;
    db->err = fn_db_noerr;
out:
    free(v);
    fnsdk_buf_free(&out);
    fnsdk_buf_free(&in);
    return rows;
}

fn_rows *fn_query_json(fn_req *req, const char *sql, const json_t *params)
{
    struct fnsdk_dbreq *db = fn_db_state(req);

    return db ? fn_db_exec(db, fn_trace_id(req), sql, params) : NULL;
}

/* BEGIN, COMMIT or ROLLBACK as its own query; 0 or -1 (db->err set). */
static int fn_db_tx(struct fnsdk_dbreq *db, const char *trace, const char *sql)
{
    fn_rows *rows = fn_db_exec(db, trace, sql, NULL);
    int rc = rows ? 0 : -1;

    if (rows && strcmp(sql, "COMMIT") == 0 && strcmp(rows->tag, "ROLLBACK") == 0) {
        /* Postgres answers COMMIT of a failed transaction with ROLLBACK. */
        fn_db_fail(db, "25P02", "the transaction was rolled back: a statement in it failed");
        rc = -1;
    }
    fn_rows_free(rows);
    return rc;
}

int fn_begin(fn_req *req)
{
    struct fnsdk_dbreq *db = fn_db_state(req);

    if (!db)
        return -1;
    if (db->in_tx) {
        fn_db_fail(db, "FG003", "a transaction is already open (fn_begin does not nest)");
        return -1;
    }
    return fn_db_tx(db, fn_trace_id(req), "BEGIN");
}

int fn_commit(fn_req *req)
{
    struct fnsdk_dbreq *db = fn_db_state(req);

    if (!db)
        return -1;
    if (!db->in_tx) {
        fn_db_fail(db, "FG003", "no transaction is open (fn_commit without fn_begin)");
        return -1;
    }
    if (fn_db_tx(db, fn_trace_id(req), "COMMIT") < 0) {
        db->in_tx = 0; /* whatever happened, it is over; the pool makes sure */
        return -1;
    }
    return 0;
}

int fn_rollback(fn_req *req)
{
    struct fnsdk_dbreq *db = fn_db_state(req);

    if (!db)
        return -1;
    if (!db->in_tx) {
        fn_db_fail(db, "FG003", "no transaction is open (fn_rollback without fn_begin)");
        return -1;
    }
    db->in_tx = 0;
    return fn_db_tx(db, fn_trace_id(req), "ROLLBACK");
}

fn_rows *fn_query(fn_req *req, const char *sql, const char *fmt, ...)
{
    json_t *params = NULL;
    json_error_t e;
    fn_rows *rows;
    va_list ap;

    if (fmt && *fmt) {
        va_start(ap, fmt);
        params = json_vpack_ex(&e, 0, fmt, ap);
        va_end(ap);
        if (!params) {
            struct fnsdk_dbreq *db = fn_db_state(req);
            if (db)
                fn_db_fail(db, "FG003", "query parameters: %s", e.text);
            return NULL;
        }
    }
    rows = fn_query_json(req, sql, params);
    json_decref(params);
    return rows;
}

const fn_db_err *fn_db_error(const fn_req *req)
{
    struct fnsdk_dbreq *db = *fnsdk_req_db((fn_req *)req);
    return db ? &db->err : &fn_db_noerr;
}

long long fn_rows_count(const fn_rows *rows)
{
    return rows ? rows->count : 0;
}

const char *fn_rows_tag(const fn_rows *rows)
{
    return rows ? rows->tag : "";
}

const char *fn_rows_text(const fn_rows *rows, size_t *len)
{
    if (!rows || !rows->payload) {
        if (len)
            *len = 0;
        return "";
    }
    if (len)
        *len = rows->json_len;
    return rows->payload + rows->json_off;
}

json_t *fn_rows_json(fn_rows *rows)
{
    size_t len;
    const char *text;

    if (!rows)
        return NULL;
    if (!rows->json) {
        text = fn_rows_text(rows, &len);
        rows->json = json_loadb(text, len, 0, NULL);
    }
    return rows->json;
}

int fn_send_rows(fn_res *res, int status, fn_rows *rows)
{
    char *payload;

    if (!rows || !rows->payload)
        return fn_error(res, 500, "no rows to send");
    payload = rows->payload;
    rows->payload = NULL;
    return fnsdk_res_take(res, status, "application/json", payload, rows->json_off, rows->json_len);
}

int fn_send_row(fn_res *res, int status, fn_rows *rows)
{
    json_t *all, *first;
    size_t len;
    const char *text = fn_rows_text(rows, &len);

    if (!rows || rows->count == 0 || len < 3)
        return fn_error(res, 404, "not found");
    if (rows->count == 1 && text[0] == '[' && text[len - 1] == ']') {
        /* One row: the object is the array without its brackets. */
        char *payload = rows->payload;
        size_t off = rows->json_off + 1;
        rows->payload = NULL;
        return fnsdk_res_take(res, status, "application/json", payload, off, len - 2);
    }
    all = fn_rows_json(rows);
    first = all ? json_array_get(all, 0) : NULL;
    if (!first)
        return fn_error(res, 500, "cannot read the rows");
    return fn_send_json(res, status, first);
}

/* What an HTTP client is told for an error that is not its function's SQL:
 * the connection class (08) and fngate's own (FG).  libpq's text for these
 * names the database's host and port, so it goes to the gateway log only. */
static const char *fn_db_generic(const char *sqlstate)
{
    static const struct {
        const char *state, *msg;
    } known[] = {
        {"08001", "the database is unavailable"},
        {"08006", "the database connection was lost"},
        {"FG001", "the database is busy: no connection was free in time"},
        {"FG002", "the result is too large"},
        {"FG003", "bad database request"},
        {"FG004", "no database is configured"},
        {"FG005", "the database pool is not running"},
    };

    if (strncmp(sqlstate, "08", 2) != 0 && strncmp(sqlstate, "FG", 2) != 0)
        return NULL;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(sqlstate, known[i].state) == 0)
            return known[i].msg;
    }
    return sqlstate[0] == '0' ? "database connection error" : "database error";
}

int fn_send_db_error(fn_res *res, int status, const fn_req *req)
{
    const fn_db_err *e = fn_db_error(req);
    const char *generic = fn_db_generic(e->sqlstate);
    json_t *j;

    if (generic) {
        if (*e->hint)
            fn_log("database error %s: %s (hint: %s)", e->sqlstate, e->message, e->hint);
        else
            fn_log("database error %s: %s", e->sqlstate, e->message);
        j = json_pack("{s:s, s:s}", "error", generic, "sqlstate", e->sqlstate);
        return j ? fn_send_json_new(res, status, j) : fn_error(res, status, "%s", generic);
    }
    j = json_pack("{s:s, s:s}", "error", *e->message ? e->message : "database error", "sqlstate",
                  e->sqlstate);
    if (!j)
        return fn_error(res, status, "database error");
    if (*e->detail)
        json_object_set_new(j, "detail", json_string(e->detail));
    if (*e->hint)
        json_object_set_new(j, "hint", json_string(e->hint));
    return fn_send_json_new(res, status, j);
}
