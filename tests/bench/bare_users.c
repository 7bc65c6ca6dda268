/*
 * bare_users: the "(a)" baseline of the fngate database benchmark
 * (tests/bench/bench_db.sh): users written the way most C code would be.
 *
 * A plain libfcgi program, no SDK: it accepts on fd 0 (the socket spawn-fcgi
 * hands it), holds its own persistent libpq connection (one per process,
 * opened at start, reopened when it breaks), runs the same SQL as
 * functions/users/users.c with PQexecParams (text parameters, one round trip),
 * builds a jansson tree from the PGresult with typed values and renders it
 * with json_dumps:
 *
 *     GET .../users        the active users, a JSON array of row objects
 *     GET .../users/<id>   one user as an object, or 404
 *
 * The path after ".../users" comes in PATH_INFO.  The libpq conninfo is argv[1]
 * (bench_db.sh gives it application_name=bare so that pg_stat_activity can
 * tell these connections apart).
 *
 * Built by bench_db.sh:
 *     cc -O2 bare_users.c -o bare_users -I/usr/include/postgresql -lfcgi -lpq -ljansson
 */
#include <fcgiapp.h>
#include <jansson.h>
#include <libpq-fe.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USER_COLUMNS "id, name, email, active, created_at"
#define SQL_LIST "SELECT " USER_COLUMNS " FROM users WHERE active = $1 ORDER BY id"
#define SQL_GET "SELECT " USER_COLUMNS " FROM users WHERE id = $1"

/* type oids (pg_type.h is not part of libpq-dev's public headers) */
#define BOOLOID 16
#define INT8OID 20
#define INT2OID 21
#define INT4OID 23
#define OIDOID 26
#define FLOAT4OID 700
#define FLOAT8OID 701
#define JSONOID 114
#define JSONBOID 3802

static const char *conninfo;
static PGconn *conn;

static PGconn *db(void)
{
    if (conn && PQstatus(conn) == CONNECTION_OK)
        return conn;
    if (conn) {
        PQreset(conn);
        if (PQstatus(conn) == CONNECTION_OK)
            return conn;
        PQfinish(conn);
    }
    conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "bare_users: connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        conn = NULL;
    }
    return conn;
}

/* One field as a typed JSON value. */
static json_t *field(const PGresult *r, int row, int col)
{
    const char *v;

    if (PQgetisnull(r, row, col))
        return json_null();
    v = PQgetvalue(r, row, col);
    switch (PQftype(r, col)) {
    case INT2OID:
    case INT4OID:
    case INT8OID:
    case OIDOID:
        return json_integer(strtoll(v, NULL, 10));
    case FLOAT4OID:
    case FLOAT8OID:
        return json_real(strtod(v, NULL));
    case BOOLOID:
        return json_boolean(v[0] == 't');
    case JSONOID:
    case JSONBOID: {
        json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
        return j ? j : json_string(v);
    }
    default:
        return json_string(v);
    }
}

static json_t *row_object(const PGresult *r, int row)
{
    json_t *obj = json_object();
    int ncols = PQnfields(r);

    for (int c = 0; c < ncols; c++)
        json_object_set_new(obj, PQfname(r, c), field(r, row, c));
    return obj;
}

static void send_json(FCGX_Request *req, int status, const char *reason, json_t *doc)
{
    char *body = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t len = body ? strlen(body) : 0;

    FCGX_FPrintF(req->out,
                 "Status: %d %s\r\nContent-Type: application/json\r\nContent-Length: %lu\r\n\r\n",
                 status, reason, (unsigned long)len);
    if (len)
        FCGX_PutStr(body, (int)len, req->out);
    free(body);
}

static void send_error(FCGX_Request *req, int status, const char *reason, const char *msg)
{
    json_t *doc = json_pack("{ss}", "error", msg);
    send_json(req, status, reason, doc);
    json_decref(doc);
}

static void handle(FCGX_Request *req)
{
    const char *method = FCGX_GetParam("REQUEST_METHOD", req->envp);
    const char *path = FCGX_GetParam("PATH_INFO", req->envp);
    PGconn *c;
    PGresult *r;
    json_t *doc;

    if (!path)
        path = "";
    if (!method || strcmp(method, "GET") != 0) {
        send_error(req, 405, "Method Not Allowed", "only GET");
        return;
    }
    c = db();
    if (!c) {
        send_error(req, 503, "Service Unavailable", "database unavailable");
        return;
    }
    if (path[0] == '\0' || strcmp(path, "/") == 0) {
        const char *params[1] = {"t"};
        r = PQexecParams(c, SQL_LIST, 1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            send_error(req, 503, "Service Unavailable", PQresultErrorMessage(r));
            PQclear(r);
            return;
        }
        doc = json_array();
        for (int i = 0, n = PQntuples(r); i < n; i++)
            json_array_append_new(doc, row_object(r, i));
        PQclear(r);
        send_json(req, 200, "OK", doc);
        json_decref(doc);
        return;
    }

    /* /<id>: a positive int4, as users.c accepts it */
    {
        const char *id_text = path + 1;
        char *end;
        long long id = strtoll(id_text, &end, 10);
        const char *params[1] = {id_text};

        if (*id_text == '\0' || *end != '\0' || id <= 0 || id > 2147483647) {
            send_error(req, 404, "Not Found", "no such user");
            return;
        }
        r = PQexecParams(c, SQL_GET, 1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            send_error(req, 503, "Service Unavailable", PQresultErrorMessage(r));
            PQclear(r);
            return;
        }
        if (PQntuples(r) == 0) {
            PQclear(r);
            send_error(req, 404, "Not Found", "no such user");
            return;
        }
        doc = row_object(r, 0);
        PQclear(r);
        send_json(req, 200, "OK", doc);
        json_decref(doc);
    }
}

int main(int argc, char **argv)
{
    FCGX_Request req;

    if (argc < 2) {
        fprintf(stderr, "usage: bare_users CONNINFO (run under spawn-fcgi)\n");
        return 2;
    }
    conninfo = argv[1];
    if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
        return 1;
    db(); /* connect at start, as a long-running worker would */
    while (FCGX_Accept_r(&req) >= 0) {
        handle(&req);
        FCGX_Finish_r(&req);
    }
    if (conn)
        PQfinish(conn);
    return 0;
}
