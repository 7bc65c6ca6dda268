/*
 * Unit tests for the PGresult-to-JSON writer, against a real PostgreSQL
 * server started for the run (pgtmp), because the interesting inputs are
 * exactly what the server prints: float and numeric spellings, array
 * literals with their quoting rules, jsonb's normalised text.  Hand-made
 * PGresults (PQmakeEmptyPGresult) cover what a server never sends but the
 * writer must still survive.  Every output is also parsed with jansson, so
 * "valid JSON" is checked by an independent parser, not by eye.
 */
#include "config.h"

#include <check.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fnsdk_buf.h"
#include "fnsdk_frame.h"
#include "pool/pgjson.h"
#include "pgtmp.h"

static struct pgtmp pg;
static PGconn *conn;

static void setup(void)
{
    PGresult *res;

    conn = PQconnectdb(pgtmp_conninfo(&pg));
    ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "connect: %s", PQerrorMessage(conn));
    res = PQexec(conn, "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
                       "SET extra_float_digits = 1; SET bytea_output = 'hex'");
    ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
}

static void teardown(void)
{
    PQfinish(conn);
    conn = NULL;
}

/* Parses TEXT with jansson; fails the test if it is not valid JSON. */
static json_t *must_parse(const char *text, size_t len)
{
    json_error_t e;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);

    ck_assert_msg(j != NULL, "invalid JSON (%s at %d): %.*s", e.text, e.position,
                  (int)(len > 400 ? 400 : len), text);
    return j;
}

/* Renders RES, checks the output with jansson, returns a malloc'd copy. */
static char *render_res(const PGresult *res)
{
    struct fnsdk_buf b;
    char *out;

    fnsdk_buf_init(&b, 0);
    ck_assert_int_eq(pgjson_render(res, &b), 0);
    ck_assert_int_eq(b.failed, 0);
    ck_assert_uint_eq(strlen(b.data), b.len);
    json_decref(must_parse(b.data, b.len));
    out = strdup(b.data);
    fnsdk_buf_free(&b);
    return out;
}

static PGresult *exec_ok(const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);

    ck_assert_msg(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK, "%s: %s", sql,
                  PQerrorMessage(conn));
    return res;
}

static char *render_sql(const char *sql)
{
    PGresult *res = exec_ok(sql);
    char *out = render_res(res);

    PQclear(res);
    return out;
}

#define ck_render(sql, expected)                                                                   \
    do {                                                                                           \
        char *got_ = render_sql(sql);                                                              \
        ck_assert_str_eq(got_, expected);                                                          \
        free(got_);                                                                                \
    } while (0)

/* A hand-made result: one column "v" of type OID in FORMAT, one row per
 * value (NULL pointer = SQL NULL). */
static PGresult *craft(Oid oid, int format, const char *const *values, int n)
{
    PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    PGresAttDesc att = {.name = "v", .format = format, .typid = oid, .typlen = -1};
    int i;

    ck_assert_ptr_nonnull(res);
    ck_assert_int_eq(PQsetResultAttrs(res, 1, &att), 1);
    for (i = 0; i < n; i++)
        ck_assert_int_eq(
            PQsetvalue(res, i, 0, (char *)values[i], values[i] ? (int)strlen(values[i]) : -1), 1);
    return res;
}

/* Renders one crafted value of type OID and returns the JSON of the value. */
static char *render_one(Oid oid, const char *value)
{
    PGresult *res = craft(oid, 0, &value, 1);
    char *all = render_res(res), *v;
    size_t n = strlen(all);

    PQclear(res);
    ck_assert_msg(n > 9 && strncmp(all, "[{\"v\":", 6) == 0 && strcmp(all + n - 2, "}]") == 0, "%s",
                  all);
    v = strndup(all + 6, n - 8);
    free(all);
    return v;
}

#define ck_one(oid, value, expected)                                                               \
    do {                                                                                           \
        char *got_ = render_one(oid, value);                                                       \
        ck_assert_str_eq(got_, expected);                                                          \
        free(got_);                                                                                \
    } while (0)

/* --- type mapping ----------------------------------------------------------------- */

START_TEST(test_scalars)
{
    ck_render(
        "SELECT 1::int2 a, 2::int4 b, 9223372036854775807::int8 c, 1.5::float8 d, "
        "'NaN'::float8 e, 'Infinity'::float4 f, '-Infinity'::float8 g, "
        "123456789012345678901234567890.123::numeric h, 'NaN'::numeric i, true j, "
        "false k, '{\"x\":[1,2]}'::json l, '{\"y\":null}'::jsonb m, NULL::int4 n, "
        "'he said \"hi\"\\n\\t\\\\'::text o, E'he said \"hi\"\\n\\t\\\\'::text o2, "
        "42::oid p, '-32768'::int2 q, '-2147483648'::int4 r, "
        "'-9223372036854775808'::int8 s, 'Infinity'::numeric t, 0.000001::numeric u, "
        "2.5::float4 v, NULL::text w, NULL::json x, NULL::bool y, ''::text z",
        "[{\"a\":1,\"b\":2,\"c\":\"9223372036854775807\",\"d\":1.5,\"e\":\"NaN\","
        "\"f\":\"Infinity\",\"g\":\"-Infinity\","
        "\"h\":\"123456789012345678901234567890.123\",\"i\":\"NaN\",\"j\":true,"
        "\"k\":false,\"l\":{\"x\":[1,2]},\"m\":{\"y\": null},\"n\":null,"
        "\"o\":\"he said \\\"hi\\\"\\\\n\\\\t\\\\\\\\\",\"o2\":\"he said \\\"hi\\\"\\n\\t\\\\\","
        "\"p\":42,\"q\":-32768,\"r\":-2147483648,\"s\":\"-9223372036854775808\","
        "\"t\":\"Infinity\",\"u\":\"0.000001\",\"v\":2.5,\"w\":null,\"x\":null,"
        "\"y\":null,\"z\":\"\"}]");
}
END_TEST

START_TEST(test_float_spellings)
{
    ck_render("SELECT 0.1::float8 a, 1e300::float8 b, 1e-7::float8 c, '-0'::float8 d, "
              "3.4e38::float4 e, 1e-45::float4 f, 123456789.125::float8 g, 100::float8 h, "
              "'-Infinity'::float4 i, 'NaN'::float4 j",
              "[{\"a\":0.1,\"b\":1e+300,\"c\":1e-07,\"d\":-0,\"e\":3.4e+38,\"f\":1e-45,"
              "\"g\":123456789.125,\"h\":100,\"i\":\"-Infinity\",\"j\":\"NaN\"}]");
}
END_TEST

START_TEST(test_json_verbatim)
{
    ck_render("SELECT '  [1, {\"a\": \"\\u00e9\"}, null, \"x\\\"y\"]  '::json a, "
              "'{\"b\":2,\"a\":1,\"a\":3}'::jsonb b, '\"str\"'::json c, '42'::jsonb d, "
              "'null'::json e, 'true'::jsonb f, '{\"k\": \"日本\"}'::jsonb g",
              "[{\"a\":  [1, {\"a\": \"\\u00e9\"}, null, \"x\\\"y\"]  ,"
              "\"b\":{\"a\": 3, \"b\": 2},\"c\":\"str\",\"d\":42,\"e\":null,\"f\":true,"
              "\"g\":{\"k\": \"日本\"}}]");
}
END_TEST

START_TEST(test_text_types)
{
    ck_render("SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid a, '2024-02-29'::date b, "
              "'2024-01-02 03:04:05.678+00'::timestamptz c, '2024-01-02 03:04:05'::timestamp d, "
              "'\\xdeadbeef'::bytea e, '1 day 02:00:00'::interval f, point(1,2) g, "
              "int4range(1,5) h, 'abc'::varchar(5) i, 'ab'::char(4) j, 'pg_class'::name k, "
              "'192.168.0.1/24'::inet l, ROW(1,'a b') m, '12:34:56'::time n, "
              "'$1.50'::money o, B'101' p, 'a & b'::tsquery q, 'pg_class'::regclass r",
              "[{\"a\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\",\"b\":\"2024-02-29\","
              "\"c\":\"2024-01-02 03:04:05.678+00\",\"d\":\"2024-01-02 03:04:05\","
              "\"e\":\"\\\\xdeadbeef\",\"f\":\"1 day 02:00:00\",\"g\":\"(1,2)\","
              "\"h\":\"[1,5)\",\"i\":\"abc\",\"j\":\"ab  \",\"k\":\"pg_class\","
              "\"l\":\"192.168.0.1/24\",\"m\":\"(1,\\\"a b\\\")\",\"n\":\"12:34:56\","
              "\"o\":\"$1.50\",\"p\":\"101\",\"q\":\"'a' & 'b'\",\"r\":\"pg_class\"}]");
}
END_TEST

START_TEST(test_user_types)
{
    PGresult *res;

    res = exec_ok("CREATE TYPE pgjson_mood AS ENUM ('happy', 'so \"so\"'); "
                  "CREATE DOMAIN pgjson_posint AS int4 CHECK (VALUE > 0); "
                  "CREATE TYPE pgjson_pair AS (a int, b text)");
    PQclear(res);
    /* enums and composites are text; the server describes a domain column
     * by its base type, so a domain over int4 is a number */
    ck_render("SELECT 'happy'::pgjson_mood a, 'so \"so\"'::pgjson_mood b, 5::pgjson_posint c, "
              "ROW(1, 'x')::pgjson_pair d, ARRAY['happy']::pgjson_mood[] e",
              "[{\"a\":\"happy\",\"b\":\"so \\\"so\\\"\",\"c\":5,\"d\":\"(1,x)\","
              "\"e\":\"{happy}\"}]");
}
END_TEST

START_TEST(test_arrays)
{
    ck_render("SELECT ARRAY[1,NULL,3]::int4[] p, ARRAY[['a','b'],['c',NULL]]::text[] q, "
              "ARRAY['NULL',NULL]::text[] r, '{}'::int4[] s, ARRAY[1.5,'NaN']::float8[] t, "
              "ARRAY[true,false] u, ARRAY[1,-2]::int2[] v, "
              "ARRAY[9223372036854775807,-1]::int8[] w, "
              "ARRAY[1.5,'Infinity','-Infinity']::float4[] x, ARRAY[1.50,'NaN']::numeric[] y, "
              "ARRAY['{\"a\":1}','[1, \"x\"]']::json[] z, ARRAY['{\"a\":1}']::jsonb[] z1, "
              "ARRAY['x y','c\"d']::varchar[] z2, ARRAY['ab']::char(3)[] z3, "
              "ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']::uuid[] z4, "
              "ARRAY['2024-01-01'::date, NULL] z5, "
              "ARRAY['2024-01-01 00:00:00'::timestamp] z6, "
              "ARRAY['2024-01-01 10:00:00+00'::timestamptz] z7, ARRAY['pg'::name] z8, "
              "ARRAY[1,2]::oid[] z9, NULL::int4[] z10, ARRAY[NULL]::bool[] z11",
              "[{\"p\":[1,null,3],\"q\":[[\"a\",\"b\"],[\"c\",null]],\"r\":[\"NULL\",null],"
              "\"s\":[],\"t\":[1.5,\"NaN\"],\"u\":[true,false],\"v\":[1,-2],"
              "\"w\":[\"9223372036854775807\",\"-1\"],\"x\":[1.5,\"Infinity\",\"-Infinity\"],"
              "\"y\":[\"1.50\",\"NaN\"],\"z\":[{\"a\":1},[1, \"x\"]],\"z1\":[{\"a\": 1}],"
              "\"z2\":[\"x y\",\"c\\\"d\"],\"z3\":[\"ab \"],"
              "\"z4\":[\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"],\"z5\":[\"2024-01-01\",null],"
              "\"z6\":[\"2024-01-01 00:00:00\"],\"z7\":[\"2024-01-01 10:00:00+00\"],"
              "\"z8\":[\"pg\"],\"z9\":[1,2],\"z10\":null,\"z11\":[null]}]");
}
END_TEST

START_TEST(test_array_literals)
{
    /* quoting: backslashes, quotes, empty, spaces, delimiters, braces, case of null */
    ck_render("SELECT ARRAY[E'back\\\\slash', 'quo\"te', '', ' lead', 'trail ', 'a,b', '{x}', "
              "'null', 'Null', E'tab\\there', E'nl\\nx', 'é日😀']::text[] a",
              "[{\"a\":[\"back\\\\slash\",\"quo\\\"te\",\"\",\" lead\",\"trail \",\"a,b\","
              "\"{x}\",\"null\",\"Null\",\"tab\\there\",\"nl\\nx\",\"é日😀\"]}]");
    /* dimension decorations are dropped */
    ck_render("SELECT '[0:1]={1,2}'::int4[] a, '[0:1][1:2]={{1,2},{3,4}}'::int4[] b, "
              "'[-2:-2]={x}'::text[] c",
              "[{\"a\":[1,2],\"b\":[[1,2],[3,4]],\"c\":[\"x\"]}]");
    /* nesting, up to Postgres' 6 dimensions */
    ck_render("SELECT '{{{1}},{{2}}}'::int4[] a, '{{{{{{1,2}}}}}}'::int8[] b, "
              "'{{t,f},{NULL,t}}'::bool[] c, ARRAY[[1.5,2],[3,NULL]]::float8[] d",
              "[{\"a\":[[[1]],[[2]]],\"b\":[[[[[[\"1\",\"2\"]]]]]],"
              "\"c\":[[true,false],[null,true]],\"d\":[[1.5,2],[3,null]]}]");
    /* json elements containing every kind of quoting */
    ck_render("SELECT ARRAY['{\"k\":\"v,\\\"w\\\"\"}', 'null', '\"s\"', '[]']::json[] a, "
              "ARRAY[NULL, '{\"a\":[1,{}]}']::jsonb[] b",
              "[{\"a\":[{\"k\":\"v,\\\"w\\\"\"},null,\"s\",[]],\"b\":[null,{\"a\": [1, {}]}]}]");
}
END_TEST

START_TEST(test_strings)
{
    char sql[2048], expected[4096];
    size_t i, o;

    /* every control character, via chr() */
    o = (size_t)snprintf(sql, sizeof(sql), "SELECT ''");
    for (i = 1; i < 32; i++)
        o += (size_t)snprintf(sql + o, sizeof(sql) - o, " || chr(%zu)", i);
    snprintf(sql + o, sizeof(sql) - o, " || chr(127) || '\"\\/' AS c");
    ck_render(sql,
              "[{\"c\":\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n"
              "\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016"
              "\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\x7f\\\"\\\\/\"}]");
    /* unicode passes through untouched: 2-, 3- and 4-byte sequences, U+2028, U+FFFF */
    ck_render("SELECT 'héllo wörld ñ 日本語 😀 \u2028 \uffff 𐍈' AS u",
              "[{\"u\":\"héllo wörld ñ 日本語 😀 \u2028 \uffff 𐍈\"}]");
    /* long strings with an escape at every alignment */
    for (i = 0; i < 20; i++) {
        size_t j;
        o = (size_t)snprintf(sql, sizeof(sql), "SELECT '");
        for (j = 0; j < 40; j++)
            sql[o++] = j == i ? '"' : (char)('a' + j % 26);
        o += (size_t)snprintf(sql + o, sizeof(sql) - o, "' AS s");
        o = (size_t)snprintf(expected, sizeof(expected), "[{\"s\":\"");
        for (j = 0; j < 40; j++) {
            if (j == i)
                expected[o++] = '\\';
            expected[o++] = j == i ? '"' : (char)('a' + j % 26);
        }
        snprintf(expected + o, sizeof(expected) - o, "\"}]");
        ck_render(sql, expected);
    }
}
END_TEST

START_TEST(test_column_names)
{
    ck_render(
        "SELECT 1 AS \"we\"\"ird\\name\", 2 AS \"日本\", 3 AS \"tab\there\", 4, 5 AS a, 6 AS a",
        "[{\"we\\\"ird\\\\name\":1,\"日本\":2,\"tab\\there\":3,\"?column?\":4,\"a\":5,"
        "\"a\":6}]");
}
END_TEST

/* --- shapes of results ---------------------------------------------------------------- */

START_TEST(test_multirow)
{
    ck_render("SELECT i, 'r' || i AS s, i % 2 = 0 AS even, NULLIF(i, 2) AS n "
              "FROM generate_series(1, 3) i",
              "[{\"i\":1,\"s\":\"r1\",\"even\":false,\"n\":1},"
              "{\"i\":2,\"s\":\"r2\",\"even\":true,\"n\":null},"
              "{\"i\":3,\"s\":\"r3\",\"even\":false,\"n\":3}]");
}
END_TEST

START_TEST(test_empty_results)
{
    ck_render("SELECT 1 AS a WHERE false", "[]");
    ck_render("CREATE TEMP TABLE pgjson_t (a int)", "[]");
    ck_render("INSERT INTO pgjson_t VALUES (1), (2)", "[]");
    ck_render("INSERT INTO pgjson_t VALUES (3) RETURNING a, 'x' AS b", "[{\"a\":3,\"b\":\"x\"}]");
    /* zero columns, two rows */
    ck_render("SELECT FROM generate_series(1, 2)", "[{},{}]");
    ck_render("SELECT FROM generate_series(1, 0)", "[]");
}
END_TEST

START_TEST(test_large_result)
{
    PGresult *res = exec_ok("SELECT i AS id, 'user ' || i AS name, i % 3 = 0 AS active, "
                            "i * 1.25::float8 AS score, i::int8 * 1000000007 AS big, "
                            "md5(i::text) AS hash, ARRAY[i, i + 1] AS pair, "
                            "json_build_object('i', i) AS j "
                            "FROM generate_series(1, 20000) i");
    struct fnsdk_buf b;
    json_t *root, *row;
    size_t i;

    fnsdk_buf_init(&b, 0);
    ck_assert_int_eq(pgjson_render(res, &b), 0);
    root = must_parse(b.data, b.len);
    ck_assert(json_is_array(root));
    ck_assert_uint_eq(json_array_size(root), 20000);
    for (i = 0; i < 20000; i += 997) {
        row = json_array_get(root, i);
        ck_assert_int_eq(json_integer_value(json_object_get(row, "id")), (json_int_t)i + 1);
        ck_assert_str_eq(json_string_value(json_object_get(row, "name")),
                         PQgetvalue(res, (int)i, 1));
        ck_assert(json_is_boolean(json_object_get(row, "active")));
        ck_assert_str_eq(json_string_value(json_object_get(row, "big")),
                         PQgetvalue(res, (int)i, 4));
        ck_assert_str_eq(json_string_value(json_object_get(row, "hash")),
                         PQgetvalue(res, (int)i, 5));
        ck_assert_uint_eq(json_array_size(json_object_get(row, "pair")), 2);
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(row, "j"), "i")),
                         (json_int_t)i + 1);
    }
    json_decref(root);
    fnsdk_buf_free(&b);
    PQclear(res);
}
END_TEST

/* --- limits and failures ------------------------------------------------------------------ */

START_TEST(test_max_exact)
{
    PGresult *res = exec_ok("SELECT i, 'v\"' || i AS s, ARRAY[i, NULL] AS a, i > 2 AS b "
                            "FROM generate_series(1, 5) i");
    struct fnsdk_buf b;
    size_t full, m;
    char *want;

    fnsdk_buf_init(&b, 0);
    ck_assert_int_eq(pgjson_render(res, &b), 0);
    full = b.len;
    want = strdup(b.data);
    fnsdk_buf_free(&b);
    /* every limit below the size fails cleanly; the size itself fits */
    for (m = 1; m <= full + 3; m++) {
        fnsdk_buf_init(&b, m);
        if (m < full) {
            ck_assert_int_eq(pgjson_render(res, &b), -1);
            ck_assert_int_eq(b.failed, 1);
            ck_assert_uint_eq(b.len, 0);
            ck_assert(b.data == NULL || b.data[0] == '\0');
        } else {
            ck_assert_int_eq(pgjson_render(res, &b), 0);
            ck_assert_str_eq(b.data, want);
        }
        fnsdk_buf_free(&b);
    }
    free(want);
    PQclear(res);
}
END_TEST

START_TEST(test_max_big_result)
{
    PGresult *res = exec_ok("SELECT repeat('x', 1000) AS s FROM generate_series(1, 1000)");
    struct fnsdk_buf b;

    fnsdk_buf_init(&b, 64 * 1024);
    fnsdk_buf_puts(&b, "prefix");
    ck_assert_int_eq(pgjson_render(res, &b), -1);
    ck_assert_int_eq(b.failed, 1);
    /* what the buffer held before is intact */
    ck_assert_uint_eq(b.len, 6);
    ck_assert_str_eq(b.data, "prefix");
    ck_assert_uint_le(b.cap, 64 * 1024 + 1);
    /* a failed buffer stays failed */
    ck_assert_int_eq(pgjson_render(res, &b), -1);
    fnsdk_buf_reset(&b);
    fnsdk_buf_free(&b);
    fnsdk_buf_init(&b, 2 * 1024 * 1024);
    ck_assert_int_eq(pgjson_render(res, &b), 0);
    json_decref(must_parse(b.data, b.len));
    fnsdk_buf_free(&b);
    PQclear(res);
}
END_TEST

/* The pool's pattern: a reused buffer that grew large earlier gets a
 * per-result max; the render must honour it, not the allocation's size. */
START_TEST(test_max_on_grown_buffer)
{
    PGresult *small = exec_ok("SELECT i, repeat('y', 50) AS s FROM generate_series(1, 20) i");
    PGresult *big = exec_ok("SELECT repeat('z', 500) AS s FROM generate_series(1, 500)");
    struct fnsdk_buf b;
    size_t full, start;

    fnsdk_buf_init(&b, 0);
    ck_assert_int_eq(pgjson_render(small, &b), 0);
    full = b.len;
    fnsdk_buf_reset(&b);
    ck_assert_int_eq(pgjson_render(big, &b), 0);
    ck_assert_uint_gt(b.cap, 10 * full);
    fnsdk_buf_reset(&b);
    fnsdk_buf_puts(&b, "head");
    start = b.len;
    b.max = start + full - 1;
    ck_assert_int_eq(pgjson_render(small, &b), -1);
    ck_assert_uint_eq(b.len, start);
    ck_assert_str_eq(b.data, "head");
    b.failed = 0;
    b.max = start + full;
    ck_assert_int_eq(pgjson_render(small, &b), 0);
    ck_assert_uint_eq(b.len, start + full);
    /* pgjson_string too */
    b.max = b.len + 3;
    ck_assert_int_eq(pgjson_string(&b, "ab", 2), -1);
    b.failed = 0;
    ck_assert_int_eq(pgjson_string(&b, "a", 1), 0);
    fnsdk_buf_free(&b);
    PQclear(small);
    PQclear(big);
}
END_TEST

START_TEST(test_appends_and_frames)
{
    PGresult *res = exec_ok("SELECT 1 AS a");
    struct fnsdk_buf b;
    struct fnsdk_frame_view *v = malloc(sizeof(*v));
    char err[128];
    size_t mark;

    ck_assert_ptr_nonnull(v);
    fnsdk_buf_init(&b, 0);
    fnsdk_buf_puts(&b, "xyz");
    ck_assert_int_eq(pgjson_render(res, &b), 0);
    ck_assert_str_eq(b.data, "xyz[{\"a\":1}]");
    /* the intended use: the body rendered straight into a result frame */
    fnsdk_buf_reset(&b);
    fnsdk_frame_begin(&b, FNSDK_FRAME_RESULT);
    fnsdk_frame_add(&b, PQcmdStatus(res), strlen(PQcmdStatus(res)));
    fnsdk_frame_add(&b, PQcmdTuples(res), strlen(PQcmdTuples(res)));
    mark = fnsdk_frame_field_begin(&b);
    ck_assert_int_eq(pgjson_render(res, &b), 0);
    ck_assert_int_eq(fnsdk_frame_field_end(&b, mark), 0);
    ck_assert_int_eq(fnsdk_frame_end(&b), 0);
    ck_assert_int_eq(fnsdk_frame_parse(b.data + 4, b.len - 4, v, err, sizeof(err)), 0);
    ck_assert_uint_eq(v->field[0].len, 8);
    ck_assert_int_eq(memcmp(v->field[0].p, "SELECT 1", 8), 0);
    ck_assert_int_eq(memcmp(v->field[1].p, "1", 1), 0);
    ck_assert_uint_eq(v->field[2].len, 9);
    ck_assert_int_eq(memcmp(v->field[2].p, "[{\"a\":1}]", 9), 0);
    fnsdk_buf_free(&b);
    free(v);
    PQclear(res);
}
END_TEST

START_TEST(test_bad_inputs)
{
    struct fnsdk_buf b;
    const char *one = "\x01\x02";
    PGresult *res;

    fnsdk_buf_init(&b, 0);
    ck_assert_int_eq(pgjson_render(NULL, &b), -1);
    ck_assert_int_eq(b.failed, 1);
    fnsdk_buf_reset(&b);
    /* binary-format columns cannot be rendered from their bytes */
    res = craft(23, 1, &one, 1);
    ck_assert_int_eq(pgjson_render(res, &b), -1);
    ck_assert_uint_eq(b.len, 0);
    PQclear(res);
    /* an error result has no rows: "[]" (the caller checks the status) */
    fnsdk_buf_reset(&b);
    res = PQexec(conn, "SELECT 1/0");
    ck_assert_int_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
    ck_assert_int_eq(pgjson_render(res, &b), 0);
    ck_assert_str_eq(b.data, "[]");
    PQclear(res);
    fnsdk_buf_free(&b);
}
END_TEST

/* What a server never sends but a hand-made or corrupted result might:
 * every case must still give valid JSON, falling back to a string. */
START_TEST(test_crafted_values)
{
    char deep[200];
    size_t i;

    ck_one(23, "12", "12");
    ck_one(23, "abc", "\"abc\"");
    ck_one(23, "", "\"\"");
    ck_one(23, "01", "\"01\"");
    ck_one(23, "+1", "\"+1\"");
    ck_one(701, "1.", "\"1.\"");
    ck_one(701, ".5", "\".5\"");
    ck_one(701, "1e", "\"1e\"");
    ck_one(701, "1e+", "\"1e+\"");
    ck_one(701, "-", "\"-\"");
    ck_one(701, "1E5", "1E5");
    ck_one(701, "-0.0e-0", "-0.0e-0");
    ck_one(701, "inf", "\"inf\"");
    ck_one(16, "x", "\"x\"");
    ck_one(16, "true", "\"true\"");
    ck_one(16, "", "\"\"");
    ck_one(114, "", "null");
    ck_one(20, "1\"2", "\"1\\\"2\"");
    /* malformed array literals come out as their text */
    ck_one(1007, "{1,", "\"{1,\"");
    ck_one(1007, "{1,}", "\"{1,}\"");
    ck_one(1007, "{,1}", "\"{,1}\"");
    ck_one(1007, "{1}}", "\"{1}}\"");
    ck_one(1007, "{{1}", "\"{{1}\"");
    ck_one(1007, "{1} x", "\"{1} x\"");
    ck_one(1007, "1,2", "\"1,2\"");
    ck_one(1007, "", "\"\"");
    ck_one(1007, "{", "\"{\"");
    ck_one(1007, "[0:1]{1}", "\"[0:1]{1}\"");
    ck_one(1007, "[0:1]=", "\"[0:1]=\"");
    ck_one(1009, "{\"abc}", "\"{\\\"abc}\"");
    ck_one(1009, "{\"a\\", "\"{\\\"a\\\\\"");
    ck_one(1009, "{a\\", "\"{a\\\\\"");
    ck_one(1009, "{a\"b}", "\"{a\\\"b}\"");
    ck_one(1009, "{a{b}", "\"{a{b}\"");
    ck_one(1009, "{\"a\"b}", "\"{\\\"a\\\"b}\"");
    /* but oddities array_in accepts are handled */
    ck_one(1009, "{ a , b }", "[\"a\",\"b\"]");
    ck_one(1009, "{a\\,b,c\\\"d}", "[\"a,b\",\"c\\\"d\"]");
    ck_one(1009, "{nUlL,\"NULL\",\\NULL}", "[null,\"NULL\",\"NULL\"]");
    ck_one(1007, "{{},{}}", "[[],[]]");
    ck_one(1007, "{1,abc,2.5}", "[1,\"abc\",2.5]");
    ck_one(1000, "{t,x}", "[true,\"x\"]");
    /* nesting deeper than any real array */
    memset(deep, '{', 40);
    deep[40] = '1';
    memset(deep + 41, '}', 40);
    deep[81] = '\0';
    {
        char *got = render_one(1007, deep);
        ck_assert_int_eq(got[0], '"');
        free(got);
    }
    deep[0] = '\0';
    for (i = 0; i < 6; i++)
        strcat(deep, "{");
    strcat(deep, "7");
    for (i = 0; i < 6; i++)
        strcat(deep, "}");
    ck_one(1007, deep, "[[[[[[7]]]]]]");
}
END_TEST

START_TEST(test_invalid_utf8)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"\xff", "\"\\ufffd\""},
        {"a\xc0\x80z", "\"a\\ufffd\\ufffdz\""},                   /* overlong NUL */
        {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},            /* surrogate */
        {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""}, /* past U+10FFFF */
        {"\xe6\x97", "\"\\ufffd\\ufffd\""},                       /* truncated */
        {"\xe6\x97\xa5\xe6", "\"\xe6\x97\xa5\\ufffd\""},
        {"\x80\xbf", "\"\\ufffd\\ufffd\""},           /* lone continuations */
        {"\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""}, /* valid 4-byte */
        {"\xef\xbf\xbf", "\"\xef\xbf\xbf\""},         /* U+FFFF is valid */
        {"\xf8\x88\x80\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\""},
    };
    struct fnsdk_buf b;
    size_t i;

    fnsdk_buf_init(&b, 0);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fnsdk_buf_reset(&b);
        ck_assert_int_eq(pgjson_string(&b, cases[i].in, strlen(cases[i].in)), 0);
        ck_assert_str_eq(b.data, cases[i].out);
        json_decref(must_parse(b.data, b.len));
    }
    /* an embedded NUL is escaped too */
    fnsdk_buf_reset(&b);
    ck_assert_int_eq(pgjson_string(&b, "a\0b", 3), 0);
    ck_assert_str_eq(b.data, "\"a\\u0000b\"");
    /* and over max fails, leaving the buffer as it was */
    fnsdk_buf_free(&b);
    fnsdk_buf_init(&b, 8);
    fnsdk_buf_puts(&b, "ab");
    ck_assert_int_eq(pgjson_string(&b, "cdef", 4), 0);
    ck_assert_int_eq(pgjson_string(&b, "\n", 1), -1);
    ck_assert_str_eq(b.data, "ab\"cdef\"");
    fnsdk_buf_free(&b);
}
END_TEST

/* Random bytes through the escaper: always valid JSON, and valid UTF-8
 * comes back from jansson byte for byte. */
START_TEST(test_string_fuzz)
{
    unsigned seed = 4242;
    struct fnsdk_buf b;
    char in[128];
    int iter;
    size_t n, i;

    fnsdk_buf_init(&b, 0);
    for (iter = 0; iter < 20000; iter++) {
        json_t *j;
        int mode = iter % 3;

        n = (size_t)rand_r(&seed) % sizeof(in);
        for (i = 0; i < n; i++) {
            int r = rand_r(&seed);
            if (mode == 0)
                in[i] = (char)r; /* anything */
            else if (mode == 1)
                in[i] = "a\"\\\n\x01\x7f /\t"[r % 10]; /* ASCII specials */
            else
                in[i] = (char)(0x80 | (r & 0x7f)); /* mostly broken UTF-8 */
        }
        if (mode == 2 && n >= 3) {
            memcpy(in, "\xe2\x82\xac", 3); /* and some valid */
        }
        fnsdk_buf_reset(&b);
        ck_assert_int_eq(pgjson_string(&b, in, n), 0);
        j = must_parse(b.data, b.len);
        ck_assert(json_is_string(j));
        if (mode == 1) {
            ck_assert_uint_eq(json_string_length(j), n);
            ck_assert_int_eq(memcmp(json_string_value(j), in, n), 0);
        }
        json_decref(j);
    }
    fnsdk_buf_free(&b);
}
END_TEST

/* Random array literals over the mapped element kinds: the output is
 * always valid JSON, whether the literal parses or falls back. */
START_TEST(test_array_fuzz)
{
    static const Oid oids[] = {1007, 1009, 1000, 1016, 1022};
    static const char alphabet[] = "{}{},,\"\\ NULLnul1-.5e+tfx[]:=";
    unsigned seed = 99;
    char lit[48];
    const char *vals[1];
    int iter;
    size_t n, i;

    for (iter = 0; iter < 8000; iter++) {
        PGresult *res;
        char *out;

        n = (size_t)rand_r(&seed) % (sizeof(lit) - 1);
        lit[0] = '{';
        for (i = 1; i < n; i++)
            lit[i] = alphabet[(size_t)rand_r(&seed) % (sizeof(alphabet) - 1)];
        if (n > 1 && iter % 2)
            lit[n - 1] = '}';
        lit[n] = '\0';
        vals[0] = lit;
        res = craft(oids[iter % 5], 0, vals, 1);
        out = render_res(res); /* asserts valid JSON */
        free(out);
        PQclear(res);
    }
}
END_TEST

/* Random strings of code points round-trip through the server, as text and
 * inside a text array, byte for byte. */
START_TEST(test_roundtrip_params)
{
    static const uint32_t pool[] = {'a',      'Z',   '"',    '\\',   '{',    '}',     ',',
                                    ' ',      '\n',  '\t',   0x01,   0x1f,   0x7f,    0xe9,
                                    0x7ff,    0x800, 0x2028, 0xfeff, 0xffff, 0x10000, 0x1f600,
                                    0x10ffff, 'N',   'U',    'L'};
    unsigned seed = 2024;
    char s[512];
    const char *params[1];
    int iter;

    for (iter = 0; iter < 300; iter++) {
        size_t n = 0, k = (size_t)rand_r(&seed) % 40, i;
        PGresult *res;
        char *out;
        json_t *root, *row;

        for (i = 0; i < k; i++) {
            uint32_t c = pool[(size_t)rand_r(&seed) % (sizeof(pool) / sizeof(pool[0]))];
            if (c < 0x80) {
                s[n++] = (char)c;
            } else if (c < 0x800) {
                s[n++] = (char)(0xc0 | c >> 6);
                s[n++] = (char)(0x80 | (c & 0x3f));
            } else if (c < 0x10000) {
                s[n++] = (char)(0xe0 | c >> 12);
                s[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
                s[n++] = (char)(0x80 | (c & 0x3f));
            } else {
                s[n++] = (char)(0xf0 | c >> 18);
                s[n++] = (char)(0x80 | ((c >> 12) & 0x3f));
                s[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
                s[n++] = (char)(0x80 | (c & 0x3f));
            }
        }
        if (iter == 0)
            n = (size_t)snprintf(s, sizeof(s), "NULL");
        s[n] = '\0';
        params[0] = s;
        res = PQexecParams(conn,
                           "SELECT $1::text AS t, ARRAY[$1, NULL, $1]::text[] AS a, "
                           "ARRAY[[$1]]::varchar[] AS v, to_json($1::text) AS j",
                           1, NULL, params, NULL, NULL, 0);
        ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
        out = render_res(res);
        root = must_parse(out, strlen(out));
        row = json_array_get(root, 0);
        ck_assert_str_eq(json_string_value(json_object_get(row, "t")), s);
        ck_assert_str_eq(json_string_value(json_array_get(json_object_get(row, "a"), 0)), s);
        ck_assert(json_is_null(json_array_get(json_object_get(row, "a"), 1)));
        ck_assert_str_eq(json_string_value(json_array_get(json_object_get(row, "a"), 2)), s);
        ck_assert_str_eq(
            json_string_value(json_array_get(json_array_get(json_object_get(row, "v"), 0), 0)), s);
        ck_assert_str_eq(json_string_value(json_object_get(row, "j")), s);
        json_decref(root);
        free(out);
        PQclear(res);
    }
}
END_TEST

/* Runs SQL in single-row mode and renders it through the row API the way the
 * pool does, into a buffer capped at MAX (0: none).  Returns the JSON
 * (malloc'd) or NULL if the render failed; *ROWS_SEEN counts the rows the
 * server sent, *ROWS_KEPT the rows rendered before any failure. */
static char *render_single(struct pgjson_rows *st, const char *sql, size_t max, long *rows_seen,
                           long *rows_kept)
{
    struct fnsdk_buf b;
    PGresult *res;
    char *out = NULL;
    int singles = 0;

    fnsdk_buf_init(&b, max);
    pgjson_rows_reset(st);
    *rows_seen = 0;
    ck_assert_int_eq(PQsendQuery(conn, sql), 1);
    ck_assert_int_eq(PQsetSingleRowMode(conn), 1);
    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType rs = PQresultStatus(res);
        ck_assert_msg(rs == PGRES_SINGLE_TUPLE || rs == PGRES_TUPLES_OK || rs == PGRES_COMMAND_OK,
                      "%s: %s", sql, PQresultErrorMessage(res));
        if (rs == PGRES_SINGLE_TUPLE) {
            ck_assert_int_eq(PQntuples(res), 1);
            singles++;
        } else
            ck_assert_int_eq(PQntuples(res), 0);
        *rows_seen += PQntuples(res);
        if (!b.failed)
            pgjson_rows_add(st, res, &b);
        PQclear(res);
    }
    *rows_kept = pgjson_rows_count(st);
    ck_assert_int_eq(singles, *rows_seen);
    if (!b.failed && pgjson_rows_end(st, &b) == 0) {
        ck_assert_uint_eq(strlen(b.data), b.len);
        json_decref(must_parse(b.data, b.len));
        out = strdup(b.data);
    }
    fnsdk_buf_free(&b);
    return out;
}

/* Row by row gives the same bytes as the whole result, one state reused
 * across results of different shapes (the keys are redone per result). */
START_TEST(test_rows_match_render)
{
    static const char *const sqls[] = {
        "SELECT i, 'r' || i AS s, i % 2 = 0 AS even, NULLIF(i, 2) AS n "
        "FROM generate_series(1, 3) i",
        "SELECT 1 AS \"a\"\"b\", 'x' AS \"\\n\\u00e9\", ARRAY[1,NULL,3] AS arr, "
        "'{\"k\":[1]}'::jsonb AS j, 'NaN'::float8 AS f",
        "SELECT i AS id, 'user ' || i AS name, i % 3 = 0 AS active, "
        "(i * 1.5)::numeric AS score FROM generate_series(1, 500) i",
        "SELECT 1 AS a WHERE false",
        "SELECT FROM generate_series(1, 2)",
        "SELECT FROM generate_series(1, 0)",
        "SET TimeZone = 'UTC'",
    };
    struct pgjson_rows *st = pgjson_rows_new();
    long seen, kept;

    ck_assert_ptr_nonnull(st);
    for (size_t i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
        char *whole = render_sql(sqls[i]);
        char *rows = render_single(st, sqls[i], 0, &seen, &kept);
        ck_assert_ptr_nonnull(rows);
        ck_assert_str_eq(rows, whole);
        ck_assert_int_eq(seen, kept);
        free(whole);
        free(rows);
    }
    pgjson_rows_free(st);
    pgjson_rows_free(NULL);
}
END_TEST

START_TEST(test_rows_empty_and_commands)
{
    struct pgjson_rows *st = pgjson_rows_new();
    long seen, kept;
    char *j;

    j = render_single(st, "SELECT 1 AS a WHERE false", 0, &seen, &kept);
    ck_assert_str_eq(j, "[]");
    ck_assert_int_eq(seen, 0);
    free(j);
    j = render_single(st, "CREATE TEMP TABLE pgjson_rows_t (a int)", 0, &seen, &kept);
    ck_assert_str_eq(j, "[]");
    free(j);
    j = render_single(st, "INSERT INTO pgjson_rows_t VALUES (7), (8) RETURNING a", 0, &seen, &kept);
    ck_assert_str_eq(j, "[{\"a\":7},{\"a\":8}]");
    ck_assert_int_eq(seen, 2);
    free(j);
    pgjson_rows_free(st);
}
END_TEST

/* Past max the render fails at the row that crosses it, not at the end:
 * the rows after it are only counted, and the buffer never passes max. */
START_TEST(test_rows_max_while_reading)
{
    struct pgjson_rows *st = pgjson_rows_new();
    long seen, kept;
    char *j;

    j = render_single(st, "SELECT repeat('x', 1000) AS x FROM generate_series(1, 1000)", 10000,
                      &seen, &kept);
    ck_assert_ptr_null(j);
    ck_assert_int_eq(seen, 1000);
    /* each row is 1010 bytes: the tenth does not fit in 10000 */
    ck_assert_int_eq(kept, 9);
    /* exactly at max passes: 2 rows of 1000 x's: [{"x":"..."},{"x":"..."}] */
    j = render_single(st, "SELECT repeat('x', 1000) AS x FROM generate_series(1, 2)",
                      2 + 2 * 1008 + 1, &seen, &kept);
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(strlen(j), 2 + 2 * 1008 + 1);
    free(j);
    j = render_single(st, "SELECT repeat('x', 1000) AS x FROM generate_series(1, 2)", 2 + 2 * 1008,
                      &seen, &kept);
    ck_assert_ptr_null(j);
    ck_assert_int_eq(kept, 2); /* the closing bracket is what does not fit */
    /* the state is reusable after a failure */
    j = render_single(st, "SELECT 1 AS a", 100, &seen, &kept);
    ck_assert_str_eq(j, "[{\"a\":1}]");
    free(j);
    pgjson_rows_free(st);
}
END_TEST

static Suite *pgjson_suite(void)
{
    Suite *s = suite_create("pgjson");
    TCase *tc = tcase_create("render");

    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_scalars);
    tcase_add_test(tc, test_float_spellings);
    tcase_add_test(tc, test_json_verbatim);
    tcase_add_test(tc, test_text_types);
    tcase_add_test(tc, test_user_types);
    tcase_add_test(tc, test_arrays);
    tcase_add_test(tc, test_array_literals);
    tcase_add_test(tc, test_strings);
    tcase_add_test(tc, test_column_names);
    tcase_add_test(tc, test_multirow);
    tcase_add_test(tc, test_empty_results);
    tcase_add_test(tc, test_large_result);
    tcase_add_test(tc, test_max_exact);
    tcase_add_test(tc, test_max_big_result);
    tcase_add_test(tc, test_max_on_grown_buffer);
    tcase_add_test(tc, test_appends_and_frames);
    tcase_add_test(tc, test_bad_inputs);
    tcase_add_test(tc, test_crafted_values);
    tcase_add_test(tc, test_invalid_utf8);
    tcase_add_test(tc, test_string_fuzz);
    tcase_add_test(tc, test_array_fuzz);
    tcase_add_test(tc, test_roundtrip_params);
    tcase_add_test(tc, test_rows_match_render);
    tcase_add_test(tc, test_rows_empty_and_commands);
    tcase_add_test(tc, test_rows_max_while_reading);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    if (pgtmp_start(&pg) < 0) {
        fprintf(stderr, "test_pgjson: %s\n", pg.err);
        return pg.unavailable ? 77 : EXIT_FAILURE; /* 77: automake's SKIP */
    }
    sr = srunner_create(pgjson_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    pgtmp_stop(&pg);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
