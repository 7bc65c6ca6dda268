/*
 * dbfn: the integration tests' database function, and a tour of the SDK's
 * query helper.  Routes (by the path after /fn/dbfn):
 *
 *   GET  /params?s=&i=&r=&b=&j=   one typed bind parameter of each kind,
 *                                 packed by fn_query's json_pack format
 *   POST /params  [s, i, r, b, n, j]   the same six values as a JSON array
 *                                 body, through fn_query_json
 *   GET  /types                   one row holding every mapped type
 *   GET  /sql?sql=...&status=N    runs SQL as given (TEST ONLY: never ship a
 *                                 function like this) and sends its rows; on
 *                                 error answers status N (default 422) with
 *                                 fn_send_db_error
 *   GET  /exec?sql=...            the same for a statement without RETURNING:
 *                                 {"tag": "INSERT 0 1", "count": 1}
 *   GET  /sleep?s=SECONDS         SELECT pg_sleep($1): {"slept", "pid", "backend"}
 *   GET  /big?n=N                 N generated rows of about 60 bytes each
 *   GET  /count?n=N               the same rows looked into with fn_rows_json:
 *                                 {"rows", "count", "sum"}
 *   GET  /env                     {"pid", "env": {this instance's environ}}
 *   GET  /tx?key=K&mode=M         fn_begin, INSERT (K,'a') and (K,'b') into
 *                                 table tx, then by M: commit, rollback,
 *                                 return (without commit), abort (crash),
 *                                 conflict (the second row duplicates the
 *                                 first, then fn_commit), nested (fn_begin
 *                                 again), sleep (past request_timeout):
 *                                 {"committed"} or the database error
 *   GET  /noread?hex=HEX&s=S      TEST ONLY: writes HEX to fd 3 like /raw, then
 *                                 sleeps S seconds without reading the answer
 *                                 (an instance that leaves its answers
 *                                 unread): {"wrote"}
 *   GET  /hold                    TEST ONLY: a setsid + double-fork grandchild
 *                                 that keeps fd 3 (the database channel)
 *                                 open for 30 s after this instance is gone,
 *                                 as a hostile function could: {"grandchild"}
 *   GET  /raw?hex=HEX             TEST ONLY, not SDK use: writes the bytes HEX
 *                                 straight to the database channel (fd
 *                                 $FNGATE_DB_FD), as a broken or hostile
 *                                 function could, then waits up to 1 s for
 *                                 an answer: {"wrote", "answer_bytes", "eof",
 *                                 "pid"}
 *
 * A database error on any route but /sql answers 503 with the error as JSON
 * ({"error", "sqlstate", "detail"?, "hint"?}).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fngate.h>

extern char **environ;

/* The one query every /params variant runs: six bind parameters, each cast
 * to the SQL type its JSON type maps to.  $5 is always NULL. */
#define PARAMS_SQL                                                                                 \
    "SELECT $1::text AS s, $2::int8 AS i, $3::float8 AS r, $4::bool AS b, $5::int4 AS n, "         \
    "$6::jsonb AS j"

/* Every type the pool maps, with the JSON each one must become (asserted by
 * test_db.py's test_type_mapping). */
#define TYPES_SQL                                                                                  \
    "SELECT 32767::int2 AS i2, '-2147483648'::int4 AS i4, 9223372036854775807::int8 AS i8, "       \
    "12345678901234567890.000000000001::numeric AS num, 'NaN'::numeric AS num_nan, "               \
    "1.5::float4 AS f4, 0.1::float8 AS f8, 'NaN'::float8 AS nan, 'Infinity'::float8 AS inf, "      \
    "'-Infinity'::float8 AS ninf, true AS t, false AS f, "                                         \
    "'{\"a\": [1, 2.5, \"x\"], \"b\": null}'::json AS js, '{\"b\": null, \"a\": [1]}'::jsonb AS "  \
    "jb, "                                                                                         \
    "ARRAY[1, NULL, 3]::int4[] AS ai, ARRAY[[1, 2], [3, 4]]::int2[] AS a2, "                       \
    "ARRAY[1, 9223372036854775807]::int8[] AS a8, ARRAY['a,b', 'c\"d', NULL, 'NULL']::text[] AS "  \
    "at, "                                                                                         \
    "ARRAY[true, false]::bool[] AS ab, ARRAY['1.50']::numeric[] AS an, "                           \
    "ARRAY['NaN', 'Infinity', '2.5']::float8[] AS af, "                                            \
    "ARRAY['{\"k\": 1}', '[]']::jsonb[] AS aj, '{}'::int4[] AS empty, "                            \
    "NULL::int4 AS null_int, NULL::text AS null_text, NULL::jsonb AS null_json, "                  \
    "E'quote\" backslash\\\\ tab\\t nl\\n \\u00e9 \\U0001F600 ctl\\x01' AS txt, "                  \
    "'2026-01-02 03:04:05.5+00'::timestamptz AS ts, '2026-01-02'::date AS d, "                     \
    "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS id, '1 day 02:00:00'::interval AS iv, "       \
    "'\\x0102ff'::bytea AS bin"

static const char *arg_or(fn_req *req, const char *name, const char *dflt)
{
    const char *v = fn_arg(req, name);
    return v ? v : dflt;
}

/* Parses a whole decimal integer; 0 on success. */
static int parse_ll(const char *s, long long *out)
{
    char *end;

    errno = 0;
    *out = strtoll(s, &end, 10);
    return (errno || !*s || *end) ? -1 : 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;

    errno = 0;
    *out = strtod(s, &end);
    return (errno || !*s || *end) ? -1 : 0;
}

/* GET /params: each URL argument becomes one typed parameter, packed with
 * json_pack's format letters: s string, I integer, f real, b bool, n null,
 * O a json_t (sent as JSON text). */
static int params_get(fn_req *req, fn_res *res)
{
    const char *s = arg_or(req, "s", "");
    const char *b = arg_or(req, "b", "false");
    long long i;
    double r;
    json_error_t jerr;
    json_t *j;
    fn_rows *rows;

    if (parse_ll(arg_or(req, "i", "0"), &i) < 0)
        return fn_error(res, 400, "i must be an integer");
    if (parse_double(arg_or(req, "r", "0"), &r) < 0)
        return fn_error(res, 400, "r must be a number");
    j = json_loads(arg_or(req, "j", "null"), JSON_DECODE_ANY, &jerr);
    if (!j)
        return fn_error(res, 400, "j must be JSON: %s", jerr.text);
    rows = fn_query(req, PARAMS_SQL, "[sIfbnO]", s, (json_int_t)i, r, strcmp(b, "true") == 0, j);
    json_decref(j); /* "O" took its own reference */
    if (!rows)
        return fn_send_db_error(res, 503, req);
    return fn_send_row(res, 200, rows);
}

/* POST /params: the body is already a JSON array of parameters. */
static int params_post(fn_req *req, fn_res *res)
{
    json_t *body = fn_body_json(req, res);
    fn_rows *rows;

    if (!body)
        return 0; /* the SDK answered 400 */
    rows = fn_query_json(req, PARAMS_SQL, body);
    if (!rows)
        return fn_send_db_error(res, 503, req);
    return fn_send_row(res, 200, rows);
}

/* GET /sql: the rows as the pool rendered them, or the error with the status
 * the caller asked for. */
static int run_sql(fn_req *req, fn_res *res)
{
    const char *sql = fn_arg(req, "sql");
    long long status = 422;
    fn_rows *rows;

    if (!sql)
        return fn_error(res, 400, "sql is required");
    if (fn_arg(req, "status") &&
        (parse_ll(fn_arg(req, "status"), &status) < 0 || status < 200 || status > 599))
        return fn_error(res, 400, "bad status");
    rows = fn_query(req, sql, NULL);
    if (!rows)
        return fn_send_db_error(res, (int)status, req);
    return fn_send_rows(res, 200, rows);
}

/* GET /exec: the command tag and the affected-row count. */
static int run_exec(fn_req *req, fn_res *res)
{
    const char *sql = fn_arg(req, "sql");
    fn_rows *rows;

    if (!sql)
        return fn_error(res, 400, "sql is required");
    rows = fn_query(req, sql, "");
    if (!rows)
        return fn_send_db_error(res, 422, req);
    return fn_send_jsonf(res, 200, "{s:s,s:I}", "tag", fn_rows_tag(rows), "count",
                         (json_int_t)fn_rows_count(rows));
}

static int sleep_query(fn_req *req, fn_res *res)
{
    double s;
    fn_rows *rows;
    json_t *row;

    if (parse_double(arg_or(req, "s", "0"), &s) < 0)
        return fn_error(res, 400, "s must be a number of seconds");
    rows = fn_query(req, "SELECT pg_sleep($1) AS slept, pg_backend_pid() AS backend", "[f]", s);
    if (!rows)
        return fn_send_db_error(res, 503, req);
    row = json_array_get(fn_rows_json(rows), 0);
    return fn_send_jsonf(res, 200, "{s:f,s:I,s:O?}", "slept", s, "pid", (json_int_t)getpid(),
                         "backend", json_object_get(row, "backend"));
}

#define BIG_SQL "SELECT g, repeat('x', 50) AS pad FROM generate_series(1, $1::int4) AS g"

static int big(fn_req *req, fn_res *res)
{
    long long n;
    fn_rows *rows;

    if (parse_ll(arg_or(req, "n", "1000"), &n) < 0)
        return fn_error(res, 400, "n must be an integer");
    rows = fn_query(req, BIG_SQL, "[I]", (json_int_t)n);
    if (!rows)
        return fn_send_db_error(res, 503, req);
    return fn_send_rows(res, 200, rows);
}

/* fn_rows_json parses the pool's text on demand for a function that needs to
 * look inside; here it adds up column g. */
static int count(fn_req *req, fn_res *res)
{
    long long n;
    fn_rows *rows;
    json_t *all, *row;
    json_int_t sum = 0;
    size_t i;

    if (parse_ll(arg_or(req, "n", "1000"), &n) < 0)
        return fn_error(res, 400, "n must be an integer");
    rows = fn_query(req, BIG_SQL, "[I]", (json_int_t)n);
    if (!rows)
        return fn_send_db_error(res, 503, req);
    all = fn_rows_json(rows); /* owned by rows */
    if (!json_is_array(all))
        return fn_error(res, 500, "the rows are not a JSON array");
    json_array_foreach(all, i, row) sum += json_integer_value(json_object_get(row, "g"));
    return fn_send_jsonf(res, 200, "{s:I,s:I,s:I}", "rows", (json_int_t)json_array_size(all),
                         "count", (json_int_t)fn_rows_count(rows), "sum", sum);
}

static int env_dump(fn_req *req, fn_res *res)
{
    json_t *env = json_object();

    (void)req;
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        json_t *val;
        char *key;

        if (!eq)
            continue;
        key = strndup(*e, (size_t)(eq - *e));
        val = json_string(eq + 1);
        if (key)
            json_object_set_new(env, key, val ? val : json_string("<not utf-8>"));
        else
            json_decref(val);
        free(key);
    }
    return fn_send_jsonf(res, 200, "{s:I,s:o}", "pid", (json_int_t)getpid(), "env", env);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Bypasses the SDK to show what the pool does with bytes that are not a
 * well-formed query: it must close this one channel and nothing else. */
static int raw_frame(fn_req *req, fn_res *res)
{
    const char *hex = arg_or(req, "hex", "");
    const char *fdv = getenv("FNGATE_DB_FD");
    size_t n = strlen(hex) / 2, got = 0;
    unsigned char *bytes;
    struct pollfd pfd;
    int fd, eof = 0;
    ssize_t w;

    if (!fdv || strlen(hex) % 2)
        return fn_error(res, 400, "no channel, or odd hex");
    fd = atoi(fdv);
    bytes = malloc(n + 1);
    if (!bytes)
        return fn_error(res, 500, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(bytes);
            return fn_error(res, 400, "bad hex");
        }
        bytes[i] = (unsigned char)(hi << 4 | lo);
    }
    w = write(fd, bytes, n);
    free(bytes);
    pfd.fd = fd;
    pfd.events = POLLIN;
    while (!eof && poll(&pfd, 1, 1000) > 0) {
        char buf[4096];
        ssize_t k = read(fd, buf, sizeof(buf));
        if (k <= 0)
            eof = 1;
        else
            got += (size_t)k;
    }
    return fn_send_jsonf(res, 200, "{s:I,s:I,s:b,s:I}", "wrote", (json_int_t)w, "answer_bytes",
                         (json_int_t)got, "eof", eof, "pid", (json_int_t)getpid());
}

static int tx_route(fn_req *req, fn_res *res)
{
    const char *key = arg_or(req, "key", "k");
    const char *mode = arg_or(req, "mode", "commit");
    const char *second = strcmp(mode, "conflict") == 0 ? "a" : "b";
    fn_rows *rows;

    if (fn_begin(req) < 0)
        return fn_send_db_error(res, 503, req);
    if (strcmp(mode, "nested") == 0) {
        /* The request's end rolls the outer one back. */
        if (fn_begin(req) == 0)
            return fn_error(res, 500, "nested fn_begin succeeded");
        return fn_send_db_error(res, 400, req);
    }
    rows = fn_query(req, "INSERT INTO tx (k, v) VALUES ($1, 'a')", "[s]", key);
    if (!rows)
        return fn_send_db_error(res, 503, req);
    rows = fn_query(req, "INSERT INTO tx (k, v) VALUES ($1, $2)", "[ss]", key, second);
    if (strcmp(mode, "return") == 0)
        return fn_send_jsonf(res, 200, "{s:b}", "committed", 0);
    if (strcmp(mode, "abort") == 0)
        abort();
    if (strcmp(mode, "sleep") == 0) {
        sleep(30);
        return fn_send_jsonf(res, 200, "{s:b}", "committed", 0);
    }
    if (strcmp(mode, "rollback") == 0) {
        if (fn_rollback(req) < 0)
            return fn_send_db_error(res, 503, req);
        return fn_send_jsonf(res, 200, "{s:b}", "committed", 0);
    }
    if (!rows && strcmp(mode, "conflict") != 0)
        return fn_send_db_error(res, 503, req);
    if (fn_commit(req) < 0)
        return fn_send_db_error(res, 409, req);
    return fn_send_jsonf(res, 200, "{s:b}", "committed", 1);
}

static int hold_channel(fn_req *req, fn_res *res)
{
    int pfd[2];
    pid_t child, grandchild = -1;
    (void)req;

    if (pipe(pfd) < 0)
        return fn_error(res, 500, "pipe");
    child = fork();
    if (child == 0) {
        setsid();
        grandchild = fork();
        if (grandchild == 0) {
            close(pfd[0]);
            close(pfd[1]);
            for (int fd = 0; fd < 1024; fd++) {
                if (fd != 3)
                    close(fd);
            }
            sleep(30);
            _exit(0);
        }
        if (write(pfd[1], &grandchild, sizeof(grandchild)) < 0)
            _exit(1);
        _exit(0);
    }
    close(pfd[1]);
    if (child < 0 || read(pfd[0], &grandchild, sizeof(grandchild)) != sizeof(grandchild))
        grandchild = -1;
    close(pfd[0]);
    if (child > 0)
        waitpid(child, NULL, 0);
    return fn_send_jsonf(res, 200, "{s:I}", "grandchild", (json_int_t)grandchild);
}

static int noread(fn_req *req, fn_res *res)
{
    const char *hex = arg_or(req, "hex", "");
    const char *fdv = getenv("FNGATE_DB_FD");
    size_t n = strlen(hex) / 2;
    unsigned char *bytes;
    ssize_t w;

    if (!fdv || strlen(hex) % 2)
        return fn_error(res, 400, "no channel, or odd hex");
    bytes = malloc(n + 1);
    if (!bytes)
        return fn_error(res, 500, "out of memory");
    for (size_t i = 0; i < n; i++)
        bytes[i] = (unsigned char)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
    w = write(atoi(fdv), bytes, n);
    free(bytes);
    sleep((unsigned)atoi(arg_or(req, "s", "1")));
    return fn_send_jsonf(res, 200, "{s:I}", "wrote", (json_int_t)w);
}

static int dbfn(fn_req *req, fn_res *res)
{
    const char *path = fn_path(req);
    int get = strcmp(fn_method(req), "GET") == 0;

    if (strcmp(path, "/params") == 0)
        return get ? params_get(req, res) : params_post(req, res);
    if (!get)
        return fn_error(res, 405, "%s %s is not supported", fn_method(req), path);
    if (strcmp(path, "/types") == 0) {
        fn_rows *rows = fn_query(req, TYPES_SQL, NULL);
        return rows ? fn_send_rows(res, 200, rows) : fn_send_db_error(res, 503, req);
    }
    if (strcmp(path, "/sql") == 0)
        return run_sql(req, res);
    if (strcmp(path, "/exec") == 0)
        return run_exec(req, res);
    if (strcmp(path, "/sleep") == 0)
        return sleep_query(req, res);
    if (strcmp(path, "/big") == 0)
        return big(req, res);
    if (strcmp(path, "/count") == 0)
        return count(req, res);
    if (strcmp(path, "/env") == 0)
        return env_dump(req, res);
    if (strcmp(path, "/raw") == 0)
        return raw_frame(req, res);
    if (strcmp(path, "/tx") == 0)
        return tx_route(req, res);
    if (strcmp(path, "/noread") == 0)
        return noread(req, res);
    if (strcmp(path, "/hold") == 0)
        return hold_channel(req, res);
    return fn_error(res, 404, "no route %s", path);
}

FN_MAIN(dbfn)
