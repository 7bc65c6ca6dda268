/*
 * Unit tests for the channel's byte buffer and frame codec.  The pool parses
 * frames written by untrusted function code, so beyond round trips these tests
 * attack the parser and the stream reader with truncations at every byte,
 * oversized and overrunning lengths, random garbage and awkward delivery
 * (one byte at a time, many frames at once, EOF mid-frame, interrupted and
 * partial reads and writes over real socketpairs); run under ASan, any
 * out-of-bounds read is a failure even when the result looks right.
 */
#include "config.h"

#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fnsdk_buf.h"
#include "fnsdk_frame.h"

/* --- helpers ------------------------------------------------------------------ */

static struct fnsdk_frame_view view; /* 16 KB: keep it off the test stack */

static void put32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static char *last_copy; /* what view points into, kept until the next parse */

/* Parses the LEN bytes at P from an exact-size heap copy, so ASan sees any
 * read past the end. */
static int parse_copy(const char *p, size_t len, char *err, size_t errlen)
{
    char *copy = malloc(len ? len : 1);
    int rc;

    ck_assert_ptr_nonnull(copy);
    if (len > 0)
        memcpy(copy, p, len);
    rc = fnsdk_frame_parse(copy, len, &view, err, errlen);
    if (rc == 0) {
        size_t i;
        for (i = 0; i < view.n_fields; i++) {
            ck_assert(view.field[i].p >= copy + 1);
            ck_assert(view.field[i].p + view.field[i].len <= copy + len);
        }
    }
    free(last_copy);
    last_copy = copy;
    return rc;
}

static void free_copy(void)
{
    free(last_copy);
    last_copy = NULL;
}

/* A complete 'Q' frame with one parameter of every tag. */
static void build_query(struct fnsdk_buf *b)
{
    static const char sql[] = "SELECT $1, $2, $3, $4, $5, $6";

    ck_assert_int_eq(fnsdk_frame_begin(b, FNSDK_FRAME_QUERY), 0);
    fnsdk_frame_add(b, sql, strlen(sql));
    fnsdk_frame_add_tagged(b, FNSDK_FRAME_P_STRING, "héllo", strlen("héllo"));
    fnsdk_frame_add_tagged(b, FNSDK_FRAME_P_INT, "-42", 3);
    fnsdk_frame_add_tagged(b, FNSDK_FRAME_P_REAL, "1.5", 3);
    fnsdk_frame_add_tagged(b, FNSDK_FRAME_P_BOOL, "t", 1);
    fnsdk_frame_add_tagged(b, FNSDK_FRAME_P_NULL, NULL, 0);
    fnsdk_frame_add_tagged(b, FNSDK_FRAME_P_JSON, "{\"a\":[1]}", 9);
    ck_assert_int_eq(fnsdk_frame_end(b), 0);
}

static void build_result(struct fnsdk_buf *b)
{
    ck_assert_int_eq(fnsdk_frame_begin(b, FNSDK_FRAME_RESULT), 0);
    fnsdk_frame_add(b, "SELECT 2", 8);
    fnsdk_frame_add(b, "2", 1);
    fnsdk_frame_add(b, "[{\"a\":1},{\"a\":2}]", 17);
    ck_assert_int_eq(fnsdk_frame_end(b), 0);
}

static void build_error(struct fnsdk_buf *b)
{
    ck_assert_int_eq(fnsdk_frame_begin(b, FNSDK_FRAME_ERROR), 0);
    fnsdk_frame_add(b, "42P01", 5);
    fnsdk_frame_add(b, "relation \"nope\" does not exist", 30);
    fnsdk_frame_add(b, "", 0);
    fnsdk_frame_add(b, "", 0);
    fnsdk_frame_add(b, "15", 2);
    ck_assert_int_eq(fnsdk_frame_end(b), 0);
}

static int field_is(size_t i, const char *s)
{
    return view.field[i].len == strlen(s) && memcmp(view.field[i].p, s, view.field[i].len) == 0;
}

/* A payload built by hand: TYPE then the given fields. */
static size_t raw_payload(char *out, char type, int nfields, const char *const *fields)
{
    size_t off = 0;
    int i;

    out[off++] = type;
    for (i = 0; i < nfields; i++) {
        size_t n = strlen(fields[i]);
        put32(out + off, (uint32_t)n);
        memcpy(out + off + 4, fields[i], n);
        off += 4 + n;
    }
    return off;
}

static int raw_parse(char type, int nfields, const char *const *fields, char *err, size_t errlen)
{
    char buf[1024];
    size_t n = raw_payload(buf, type, nfields, fields);

    return parse_copy(buf, n, err, errlen);
}

static void make_pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    ck_assert_int_ge(fl, 0);
    ck_assert_int_eq(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* --- fnsdk_buf ----------------------------------------------------------------------- */

START_TEST(test_buf_basics)
{
    struct fnsdk_buf b;

    fnsdk_buf_init(&b, 0);
    ck_assert_ptr_null(b.data);
    ck_assert_int_eq(fnsdk_buf_append(&b, "abc", 3), 0);
    ck_assert_int_eq(fnsdk_buf_putc(&b, 'd'), 0);
    ck_assert_int_eq(fnsdk_buf_puts(&b, "ef"), 0);
    ck_assert_int_eq(fnsdk_buf_printf(&b, "-%d-%s", 42, "x"), 0);
    ck_assert_str_eq(b.data, "abcdef-42-x");
    ck_assert_uint_eq(b.len, 11);
    ck_assert_int_eq(fnsdk_buf_append(&b, "", 0), 0);
    ck_assert_uint_eq(b.len, 11);
    fnsdk_buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    ck_assert_int_eq(fnsdk_buf_reserve(&b, 5000), 0);
    ck_assert_uint_ge(b.cap, 5001);
    fnsdk_buf_free(&b);
    ck_assert_ptr_null(b.data);
    fnsdk_buf_free(NULL);
    /* usable again after free */
    ck_assert_int_eq(fnsdk_buf_puts(&b, "again"), 0);
    ck_assert_str_eq(b.data, "again");
    fnsdk_buf_free(&b);
}
END_TEST

START_TEST(test_buf_growth)
{
    struct fnsdk_buf b;
    size_t i;
    char big[3000];

    fnsdk_buf_init(&b, 0);
    for (i = 0; i < 100000; i++)
        ck_assert_int_eq(fnsdk_buf_putc(&b, (int)('a' + i % 26)), 0);
    ck_assert_uint_eq(b.len, 100000);
    for (i = 0; i < 100000; i++)
        ck_assert_int_eq(b.data[i], 'a' + (int)(i % 26));
    ck_assert_int_eq(b.data[b.len], '\0');
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    fnsdk_buf_reset(&b);
    /* a printf larger than the spare room takes the second pass */
    ck_assert_int_eq(fnsdk_buf_printf(&b, "<%s>", big), 0);
    ck_assert_uint_eq(b.len, sizeof(big) + 1);
    ck_assert_int_eq(b.data[0], '<');
    ck_assert_int_eq(b.data[b.len - 1], '>');
    fnsdk_buf_free(&b);
}
END_TEST

START_TEST(test_buf_max)
{
    struct fnsdk_buf b;

    fnsdk_buf_init(&b, 10);
    ck_assert_int_eq(fnsdk_buf_append(&b, "0123456789", 10), 0);
    ck_assert_int_eq(b.failed, 0);
    ck_assert_int_eq(fnsdk_buf_putc(&b, 'x'), -1);
    ck_assert_int_eq(b.failed, 1);
    ck_assert_str_eq(b.data, "0123456789");
    /* sticky: even an empty append fails now */
    ck_assert_int_eq(fnsdk_buf_append(&b, "", 0), -1);
    ck_assert_int_eq(fnsdk_buf_reserve(&b, 1), -1);
    fnsdk_buf_reset(&b);
    ck_assert_int_eq(b.failed, 0);
    /* reserve is a hint clamped at max: it does not fail */
    ck_assert_int_eq(fnsdk_buf_reserve(&b, 1000000), 0);
    ck_assert_uint_le(b.cap, 11);
    ck_assert_int_eq(fnsdk_buf_puts(&b, "12345"), 0);
    ck_assert_int_eq(fnsdk_buf_printf(&b, "%s", "678901"), -1);
    ck_assert_str_eq(b.data, "12345");
    ck_assert_int_eq(b.failed, 1);
    fnsdk_buf_reset(&b);
    ck_assert_int_eq(fnsdk_buf_printf(&b, "%05d", 7), 0);
    ck_assert_int_eq(fnsdk_buf_printf(&b, "%05d", 8), 0);
    ck_assert_str_eq(b.data, "0000700008");
    ck_assert_int_eq(fnsdk_buf_printf(&b, "%s", ""), 0);
    ck_assert_int_eq(fnsdk_buf_printf(&b, "%d", 9), -1);
    ck_assert_str_eq(b.data, "0000700008");
    fnsdk_buf_free(&b);
}
END_TEST

/* max may be lowered on a buffer that has already grown (the pool sets a
 * per-result limit on a reused buffer): every append must still honour it. */
START_TEST(test_buf_max_lowered)
{
    struct fnsdk_buf b;
    char big[4096];

    memset(big, 'q', sizeof(big));
    fnsdk_buf_init(&b, 0);
    ck_assert_int_eq(fnsdk_buf_append(&b, big, sizeof(big)), 0);
    fnsdk_buf_reset(&b);
    b.max = 10;
    ck_assert_int_eq(fnsdk_buf_append(&b, big, 10), 0);
    ck_assert_int_eq(fnsdk_buf_putc(&b, 'x'), -1);
    ck_assert_uint_eq(b.len, 10);
    fnsdk_buf_reset(&b);
    ck_assert_int_eq(fnsdk_buf_printf(&b, "%s", "0123456789A"), -1);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.data, "");
    fnsdk_buf_reset(&b);
    ck_assert_int_eq(fnsdk_buf_printf(&b, "%s", "0123456789"), 0);
    /* lowered below the current length: nothing more fits */
    b.max = 5;
    ck_assert_int_eq(fnsdk_buf_append(&b, "", 0), -1);
    fnsdk_buf_reset(&b);
    ck_assert_int_eq(fnsdk_buf_puts(&b, "abcde"), 0);
    b.max = 3;
    ck_assert_int_eq(fnsdk_buf_printf(&b, "%s", ""), -1);
    ck_assert_str_eq(b.data, "abcde");
    fnsdk_buf_free(&b);
}
END_TEST

/* --- building and parsing ------------------------------------------------------- */

START_TEST(test_roundtrip_query)
{
    struct fnsdk_buf b;
    char err[128];

    fnsdk_buf_init(&b, 0);
    build_query(&b);
    ck_assert_int_eq(b.failed, 0);
    ck_assert_uint_eq(((unsigned char)b.data[0] << 24 | (unsigned char)b.data[1] << 16 |
                       (unsigned char)b.data[2] << 8 | (unsigned char)b.data[3]),
                      b.len - 4);
    ck_assert_int_eq(parse_copy(b.data + 4, b.len - 4, err, sizeof(err)), 0);
    ck_assert_int_eq(view.type, 'Q');
    ck_assert_uint_eq(view.n_fields, 7);
    ck_assert(field_is(0, "SELECT $1, $2, $3, $4, $5, $6"));
    ck_assert(field_is(1, "shéllo"));
    ck_assert(field_is(2, "i-42"));
    ck_assert(field_is(3, "r1.5"));
    ck_assert(field_is(4, "bt"));
    ck_assert(field_is(5, "n"));
    ck_assert(field_is(6, "j{\"a\":[1]}"));
    fnsdk_buf_free(&b);
}
END_TEST

START_TEST(test_roundtrip_result_error)
{
    struct fnsdk_buf b;
    char err[128];
    size_t first;

    fnsdk_buf_init(&b, 0);
    build_result(&b);
    first = b.len;
    build_error(&b); /* a second frame in the same buffer */
    ck_assert_int_eq(parse_copy(b.data + 4, first - 4, err, sizeof(err)), 0);
    ck_assert_int_eq(view.type, 'R');
    ck_assert_uint_eq(view.n_fields, 3);
    ck_assert(field_is(0, "SELECT 2"));
    ck_assert(field_is(1, "2"));
    ck_assert(field_is(2, "[{\"a\":1},{\"a\":2}]"));
    ck_assert_int_eq(parse_copy(b.data + first + 4, b.len - first - 4, err, sizeof(err)), 0);
    ck_assert_int_eq(view.type, 'E');
    ck_assert_uint_eq(view.n_fields, 5);
    ck_assert(field_is(0, "42P01"));
    ck_assert(field_is(1, "relation \"nope\" does not exist"));
    ck_assert(field_is(2, ""));
    ck_assert(field_is(3, ""));
    ck_assert(field_is(4, "15"));
    fnsdk_buf_free(&b);
}
END_TEST

START_TEST(test_field_in_place)
{
    struct fnsdk_buf b;
    size_t mark;
    char err[128];

    fnsdk_buf_init(&b, 0);
    fnsdk_frame_begin(&b, FNSDK_FRAME_RESULT);
    fnsdk_frame_add(&b, "SELECT 1", 8);
    fnsdk_frame_add(&b, "1", 1);
    mark = fnsdk_frame_field_begin(&b);
    fnsdk_buf_puts(&b, "[{\"x\":");
    fnsdk_buf_printf(&b, "%d}]", 7);
    ck_assert_int_eq(fnsdk_frame_field_end(&b, mark), 0);
    ck_assert_int_eq(fnsdk_frame_end(&b), 0);
    ck_assert_int_eq(parse_copy(b.data + 4, b.len - 4, err, sizeof(err)), 0);
    ck_assert(field_is(2, "[{\"x\":7}]"));
    /* an empty in-place field */
    fnsdk_buf_reset(&b);
    fnsdk_frame_begin(&b, FNSDK_FRAME_RESULT);
    fnsdk_frame_add(&b, "", 0);
    fnsdk_frame_add(&b, "", 0);
    mark = fnsdk_frame_field_begin(&b);
    ck_assert_int_eq(fnsdk_frame_field_end(&b, mark), 0);
    ck_assert_int_eq(fnsdk_frame_end(&b), 0);
    ck_assert_int_eq(parse_copy(b.data + 4, b.len - 4, err, sizeof(err)), 0);
    ck_assert(field_is(2, ""));
    fnsdk_buf_free(&b);
}
END_TEST

START_TEST(test_end_misuse)
{
    struct fnsdk_buf b;
    size_t start;
    char err[128];

    /* end without begin */
    fnsdk_buf_init(&b, 0);
    ck_assert_int_eq(fnsdk_frame_end(&b), -1);
    ck_assert_int_eq(b.failed, 1);
    fnsdk_buf_reset(&b);
    build_result(&b);
    ck_assert_int_eq(fnsdk_frame_end(&b), -1); /* already closed */
    fnsdk_buf_reset(&b);
    /* a buffer with other bytes first needs fnsdk_frame_end_at */
    fnsdk_buf_puts(&b, "junk");
    start = b.len;
    fnsdk_frame_begin(&b, FNSDK_FRAME_RESULT);
    fnsdk_frame_add(&b, "", 0);
    fnsdk_frame_add(&b, "", 0);
    fnsdk_frame_add(&b, "[]", 2);
    ck_assert_int_eq(fnsdk_frame_end_at(&b, start), 0);
    ck_assert_int_eq(parse_copy(b.data + start + 4, b.len - start - 4, err, sizeof(err)), 0);
    ck_assert_int_eq(fnsdk_frame_end_at(&b, start), -1); /* no longer open */
    fnsdk_buf_reset(&b);
    ck_assert_int_eq(fnsdk_frame_end_at(&b, 100), -1); /* start past the end */
    fnsdk_buf_reset(&b);
    ck_assert_int_eq(fnsdk_frame_field_end(&b, 3), -1);
    fnsdk_buf_free(&b);
}
END_TEST

START_TEST(test_build_over_max)
{
    struct fnsdk_buf b;
    char big[200];

    memset(big, 'x', sizeof(big));
    fnsdk_buf_init(&b, 100);
    fnsdk_frame_begin(&b, FNSDK_FRAME_RESULT);
    fnsdk_frame_add(&b, "SELECT 1", 8);
    fnsdk_frame_add(&b, "1", 1);
    ck_assert_int_eq(fnsdk_frame_add(&b, big, sizeof(big)), -1);
    fnsdk_frame_add(&b, "more", 4); /* ignored: sticky */
    ck_assert_int_eq(fnsdk_frame_end(&b), -1);
    ck_assert_int_eq(b.failed, 1);
    fnsdk_buf_free(&b);
}
END_TEST

START_TEST(test_parse_errors)
{
    char err[128], buf[64];
    const char *const q_ok[] = {"SELECT 1"};
    const char *const q_badtag[] = {"SELECT $1", "x1"};
    const char *const q_notag[] = {"SELECT $1", ""};
    const char *const q_nullval[] = {"SELECT $1", "nx"};
    const char *const q_bool[] = {"SELECT $1", "btrue"};
    const char *const q_bool_empty[] = {"SELECT $1", "b"};
    const char *const q_int[] = {"SELECT $1", "i12a"};
    const char *const q_int_empty[] = {"SELECT $1", "i"};
    const char *const q_int_sign[] = {"SELECT $1", "i-"};
    const char *const q_real[] = {"SELECT $1", "r"};
    const char *const q_empty_sql[] = {""};
    const char *const q_all[] = {"SELECT", "s", "sx", "i+7", "i-0", "r-1e5", "bf", "n", "j", "j[]"};
    const char *const r3[] = {"SELECT 1", "1", "[]"};
    const char *const r2[] = {"SELECT 1", "1"};
    const char *const r4[] = {"SELECT 1", "1", "[]", "x"};
    const char *const r_badrows[] = {"SELECT 1", "1x", "[]"};
    const char *const r_norows[] = {"CREATE TABLE", "", "[]"};
    const char *const e5[] = {"57014", "canceled", "", "", ""};
    const char *const e_nostate[] = {"", "pool: timeout", "", "", ""};
    const char *const e4[] = {"57014", "m", "", ""};
    const char *const e6[] = {"57014", "m", "", "", "", ""};
    const char *const e_badstate[] = {"5701", "m", "", "", ""};

    ck_assert_int_eq(raw_parse('Q', 1, q_ok, err, sizeof(err)), 0);
    ck_assert_int_eq(raw_parse('Q', 10, q_all, err, sizeof(err)), 0);
    ck_assert_int_eq(raw_parse('R', 3, r3, err, sizeof(err)), 0);
    ck_assert_int_eq(raw_parse('R', 3, r_norows, err, sizeof(err)), 0);
    ck_assert_int_eq(raw_parse('E', 5, e5, err, sizeof(err)), 0);
    ck_assert_int_eq(raw_parse('E', 5, e_nostate, err, sizeof(err)), 0);

    ck_assert_int_eq(parse_copy("", 0, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "empty frame");
    ck_assert_int_eq(parse_copy("X", 1, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "unknown frame type"));
    ck_assert_int_eq(parse_copy("q", 1, err, sizeof(err)), -1);
    ck_assert_int_eq(parse_copy("Q", 1, err, sizeof(err)), -1); /* zero fields */
    ck_assert_ptr_nonnull(strstr(err, "without sql"));
    ck_assert_int_eq(raw_parse('Q', 1, q_empty_sql, err, sizeof(err)), -1);
    ck_assert_int_eq(raw_parse('Q', 2, q_badtag, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "unknown type tag"));
    ck_assert_int_eq(raw_parse('Q', 2, q_notag, err, sizeof(err)), -1);
    ck_assert_int_eq(raw_parse('Q', 2, q_nullval, err, sizeof(err)), -1);
    ck_assert_int_eq(raw_parse('Q', 2, q_bool, err, sizeof(err)), -1);
    ck_assert_int_eq(raw_parse('Q', 2, q_bool_empty, err, sizeof(err)), -1);
    ck_assert_int_eq(raw_parse('Q', 2, q_int, err, sizeof(err)), -1);
    ck_assert_int_eq(raw_parse('Q', 2, q_int_empty, err, sizeof(err)), -1);
    ck_assert_int_eq(raw_parse('Q', 2, q_int_sign, err, sizeof(err)), -1);
    ck_assert_int_eq(raw_parse('Q', 2, q_real, err, sizeof(err)), -1);
    ck_assert_int_eq(raw_parse('R', 2, r2, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "not 3"));
    ck_assert_int_eq(raw_parse('R', 4, r4, err, sizeof(err)), -1);
    ck_assert_int_eq(raw_parse('R', 0, r4, err, sizeof(err)), -1);
    ck_assert_int_eq(raw_parse('R', 3, r_badrows, err, sizeof(err)), -1);
    ck_assert_int_eq(raw_parse('E', 4, e4, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "not 5"));
    ck_assert_int_eq(raw_parse('E', 6, e6, err, sizeof(err)), -1);
    ck_assert_int_eq(raw_parse('E', 5, e_badstate, err, sizeof(err)), -1);

    /* field overrun: declares 10 bytes, has 3 */
    buf[0] = 'Q';
    put32(buf + 1, 10);
    memcpy(buf + 5, "SEL", 3);
    ck_assert_int_eq(parse_copy(buf, 8, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "overruns"));
    /* a huge length must not wrap around */
    put32(buf + 1, 0xffffffffu);
    ck_assert_int_eq(parse_copy(buf, 8, err, sizeof(err)), -1);
    put32(buf + 1, 0xfffffffcu);
    ck_assert_int_eq(parse_copy(buf, 8, err, sizeof(err)), -1);
    /* truncated field length: 2 of 4 bytes */
    ck_assert_int_eq(parse_copy(buf, 3, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "truncated"));
    /* a NULL or tiny err buffer is fine */
    ck_assert_int_eq(parse_copy(buf, 3, NULL, 0), -1);
    ck_assert_int_eq(parse_copy(buf, 3, err, 1), -1);
    ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(test_parse_nul_bytes)
{
    char err[128], buf[64];
    size_t n;

    /* NUL inside sql */
    buf[0] = 'Q';
    put32(buf + 1, 5);
    memcpy(buf + 5, "SE\0LX", 5);
    ck_assert_int_eq(parse_copy(buf, 10, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "NUL"));
    /* NUL inside a string parameter */
    memcpy(buf + 5, "SELCT", 5);
    put32(buf + 10, 4);
    memcpy(buf + 14, "sa\0b", 4);
    n = 18;
    ck_assert_int_eq(parse_copy(buf, n, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "NUL"));
    /* NUL in a JSON parameter, too */
    buf[14] = 'j';
    ck_assert_int_eq(parse_copy(buf, n, err, sizeof(err)), -1);
    /* but fine in a result body (not passed to libpq) */
    buf[0] = 'R';
    put32(buf + 1, 0);
    put32(buf + 5, 0);
    put32(buf + 9, 3);
    memcpy(buf + 13, "a\0b", 3);
    ck_assert_int_eq(parse_copy(buf, 16, err, sizeof(err)), 0);
}
END_TEST

/* The trace id is the last field, so its 32 digits can end a frame: the
 * check must read those 32 bytes and no more.  A page the process may not
 * read follows the frame, so a scan past the field crashes this test even
 * without ASan. */
START_TEST(test_parse_trace_at_the_end_of_memory)
{
    static const char sql[] = "SELECT 1";
    static const char trace[] = "0123456789abcdef0123456789abcdef";
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = 1 + FNSDK_FRAME_HDR + (sizeof(sql) - 1) + FNSDK_FRAME_HDR + 1 + 32;
    char *map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *p, *w, err[256];

    ck_assert_ptr_ne(map, MAP_FAILED);
    ck_assert_int_eq(mprotect(map + page, page, PROT_NONE), 0);
    p = w = map + page - len;
    *w++ = FNSDK_FRAME_QUERY;
    put32(w, sizeof(sql) - 1);
    memcpy(w + FNSDK_FRAME_HDR, sql, sizeof(sql) - 1);
    w += FNSDK_FRAME_HDR + sizeof(sql) - 1;
    put32(w, 33);
    w[FNSDK_FRAME_HDR] = FNSDK_FRAME_P_TRACE;
    memcpy(w + FNSDK_FRAME_HDR + 1, trace, 32);
    ck_assert_int_eq(fnsdk_frame_parse(p, len, &view, err, sizeof(err)), 0);
    ck_assert_uint_eq(view.n_fields, 2);
    /* One digit wrong is still refused. */
    p[len - 1] = 'g';
    ck_assert_int_eq(fnsdk_frame_parse(p, len, &view, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "trace id is not 32 lowercase hex digits");
    munmap(map, 2 * page);
}
END_TEST

START_TEST(test_parse_field_limit)
{
    size_t cap = 1 + (FNSDK_FRAME_MAX_FIELDS + 1) * 5 + 16, n = 0;
    char *buf = malloc(cap), err[128];
    int i;

    ck_assert_ptr_nonnull(buf);
    buf[n++] = 'Q';
    put32(buf + n, 1);
    buf[n + 4] = 'X';
    n += 5;
    for (i = 0; i < FNSDK_FRAME_MAX_PARAMS; i++) {
        put32(buf + n, 1);
        buf[n + 4] = 'n';
        n += 5;
    }
    ck_assert_int_eq(parse_copy(buf, n, err, sizeof(err)), 0);
    ck_assert_uint_eq(view.n_fields, FNSDK_FRAME_MAX_FIELDS);
    put32(buf + n, 1);
    buf[n + 4] = 'n';
    n += 5;
    ck_assert_int_eq(parse_copy(buf, n, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "too many fields"));
    /* many zero-length fields in an 'E' frame: also capped */
    n = 0;
    buf[n++] = 'E';
    for (i = 0; i < FNSDK_FRAME_MAX_FIELDS + 1; i++) {
        put32(buf + n, 0);
        n += 4;
    }
    ck_assert_int_eq(parse_copy(buf, n, err, sizeof(err)), -1);
    free(buf);
}
END_TEST

/* Every strict prefix of a frame whose field count is fixed must fail; for a
 * query frame, exactly the prefixes ending on a field boundary parse. */
START_TEST(test_parse_truncated)
{
    struct fnsdk_buf b;
    char err[128];
    size_t k, len, off;
    const char *p;
    int is_boundary, which;

    for (which = 0; which < 3; which++) {
        fnsdk_buf_init(&b, 0);
        if (which == 0)
            build_query(&b);
        else if (which == 1)
            build_result(&b);
        else
            build_error(&b);
        p = b.data + 4;
        len = b.len - 4;
        ck_assert_int_eq(parse_copy(p, len, err, sizeof(err)), 0);
        for (k = 0; k < len; k++) {
            int rc = parse_copy(p, k, err, sizeof(err));
            if (which != 0) {
                ck_assert_msg(rc == -1, "prefix %zu of %zu parsed", k, len);
                continue;
            }
            /* boundaries of the query frame: after each whole field */
            is_boundary = 0;
            for (off = 1; off <= k;) {
                uint32_t n = (uint32_t)(unsigned char)p[off] << 24 |
                             (uint32_t)(unsigned char)p[off + 1] << 16 |
                             (uint32_t)(unsigned char)p[off + 2] << 8 | (unsigned char)p[off + 3];
                off += 4 + n;
                if (off == k)
                    is_boundary = 1;
            }
            ck_assert_msg(rc == (is_boundary ? 0 : -1), "prefix %zu: rc %d (%s)", k, rc, err);
        }
        fnsdk_buf_free(&b);
    }
}
END_TEST

START_TEST(test_parse_fuzz)
{
    char buf[300], err[128];
    struct fnsdk_buf b;
    unsigned seed = 12345;
    int iter, ok = 0;
    size_t n, i;

    for (iter = 0; iter < 20000; iter++) {
        n = (size_t)rand_r(&seed) % sizeof(buf);
        for (i = 0; i < n; i++)
            buf[i] = (char)rand_r(&seed);
        /* bias towards plausible frames: valid types, small lengths */
        if (n > 0 && iter % 2 == 0)
            buf[0] = "QRE"[rand_r(&seed) % 3];
        if (n > 5 && iter % 4 == 0)
            put32(buf + 1, (uint32_t)rand_r(&seed) % 16);
        if (parse_copy(buf, n, err, sizeof(err)) == 0)
            ok++;
    }
    /* mutations of valid frames */
    fnsdk_buf_init(&b, 0);
    for (iter = 0; iter < 6000; iter++) {
        char *copy;
        int flips = 1 + rand_r(&seed) % 3, f;

        fnsdk_buf_reset(&b);
        if (iter % 3 == 0)
            build_query(&b);
        else if (iter % 3 == 1)
            build_result(&b);
        else
            build_error(&b);
        copy = b.data + 4;
        n = b.len - 4;
        for (f = 0; f < flips; f++)
            copy[(size_t)rand_r(&seed) % n] = (char)rand_r(&seed);
        if (iter % 5 == 0)
            n = (size_t)rand_r(&seed) % n;
        if (parse_copy(copy, n, err, sizeof(err)) == 0)
            ok++;
    }
    fnsdk_buf_free(&b);
    ck_assert_int_gt(ok, 0); /* some mutations stay valid; the point is no crash */
}
END_TEST

/* --- the stream reader ----------------------------------------------------------- */

/* Three frames back to back: query, result, error. */
static void build_stream(struct fnsdk_buf *b)
{
    fnsdk_buf_init(b, 0);
    build_query(b);
    build_result(b);
    build_error(b);
}

static void check_popped_three(struct fnsdk_frame_reader *r)
{
    const char *p;
    size_t n;
    char err[128];
    const char types[] = "QRE";
    int i;

    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(fnsdk_frame_reader_next(r, &p, &n), 1);
        ck_assert_int_eq(parse_copy(p, n, err, sizeof(err)), 0);
        ck_assert_int_eq(view.type, types[i]);
    }
    ck_assert_int_eq(fnsdk_frame_reader_next(r, &p, &n), 0);
}

START_TEST(test_reader_one_feed)
{
    struct fnsdk_buf s;
    struct fnsdk_frame_reader r;

    build_stream(&s);
    fnsdk_frame_reader_init(&r, 4096);
    ck_assert_int_eq(fnsdk_frame_reader_feed(&r, s.data, s.len), 1);
    check_popped_three(&r);
    /* and again, reusing the reader */
    ck_assert_int_eq(fnsdk_frame_reader_feed(&r, s.data, s.len), 1);
    check_popped_three(&r);
    ck_assert_int_eq(fnsdk_frame_reader_feed(&r, "", 0), 0);
    fnsdk_frame_reader_free(&r);
    fnsdk_frame_reader_free(NULL);
    fnsdk_buf_free(&s);
}
END_TEST

START_TEST(test_reader_byte_at_a_time)
{
    struct fnsdk_buf s;
    struct fnsdk_frame_reader r;
    const char *p;
    size_t i, n;
    int frames = 0, rc;
    char err[128];

    build_stream(&s);
    fnsdk_frame_reader_init(&r, 4096);
    for (i = 0; i < s.len; i++) {
        rc = fnsdk_frame_reader_feed(&r, s.data + i, 1);
        ck_assert_int_ge(rc, 0);
        while (fnsdk_frame_reader_next(&r, &p, &n) == 1) {
            ck_assert_int_eq(parse_copy(p, n, err, sizeof(err)), 0);
            ck_assert_int_eq(view.type, "QRE"[frames]);
            frames++;
        }
    }
    ck_assert_int_eq(frames, 3);
    fnsdk_frame_reader_free(&r);
    fnsdk_buf_free(&s);
}
END_TEST

/* The stream split in two at every byte. */
START_TEST(test_reader_every_split)
{
    struct fnsdk_buf s;
    struct fnsdk_frame_reader r;
    size_t k;

    build_stream(&s);
    for (k = 0; k <= s.len; k++) {
        char *a = malloc(k + 1), *b = malloc(s.len - k + 1);
        const char *p;
        size_t n;
        int popped = 0;

        memcpy(a, s.data, k);
        memcpy(b, s.data + k, s.len - k);
        fnsdk_frame_reader_init(&r, 4096);
        ck_assert_int_ge(fnsdk_frame_reader_feed(&r, a, k), 0);
        while (fnsdk_frame_reader_next(&r, &p, &n) == 1)
            popped++;
        ck_assert_int_ge(fnsdk_frame_reader_feed(&r, b, s.len - k), 0);
        while (fnsdk_frame_reader_next(&r, &p, &n) == 1)
            popped++;
        ck_assert_int_eq(popped, 3);
        ck_assert_uint_eq(r.len - r.pos, 0);
        fnsdk_frame_reader_free(&r);
        free(a);
        free(b);
    }
    fnsdk_buf_free(&s);
}
END_TEST

START_TEST(test_reader_oversize_before_body)
{
    struct fnsdk_frame_reader r;
    char hdr[4];
    char *body;

    fnsdk_frame_reader_init(&r, 1000);
    put32(hdr, 1001);
    ck_assert_int_eq(fnsdk_frame_reader_feed(&r, hdr, 3), 0);
    ck_assert_int_eq(fnsdk_frame_reader_feed(&r, hdr + 3, 1), -1);
    ck_assert_ptr_nonnull(strstr(r.err, "exceeds"));
    ck_assert_uint_le(r.cap, 256);
    /* sticky */
    ck_assert_int_eq(fnsdk_frame_reader_feed(&r, "x", 1), -1);
    fnsdk_frame_reader_free(&r);

    /* header and a huge body in one feed: nothing of the body is buffered */
    body = calloc(1, 1 << 20);
    ck_assert_ptr_nonnull(body);
    put32(body, (1 << 20) - 4);
    fnsdk_frame_reader_init(&r, 1000);
    ck_assert_int_eq(fnsdk_frame_reader_feed(&r, body, 1 << 20), -1);
    ck_assert_uint_le(r.cap, 256);
    fnsdk_frame_reader_free(&r);

    /* a frame of exactly max_payload is fine */
    put32(body, 1000);
    fnsdk_frame_reader_init(&r, 1000);
    ck_assert_int_eq(fnsdk_frame_reader_feed(&r, body, 1004), 1);
    fnsdk_frame_reader_free(&r);

    /* 0xffffffff is refused whatever the limit */
    put32(hdr, 0xffffffffu);
    fnsdk_frame_reader_init(&r, SIZE_MAX);
    ck_assert_int_eq(fnsdk_frame_reader_feed(&r, hdr, 4), -1);
    fnsdk_frame_reader_free(&r);
    free(body);
}
END_TEST

START_TEST(test_reader_good_then_bad)
{
    struct fnsdk_buf s;
    struct fnsdk_frame_reader r;
    char hdr[4];
    const char *p;
    size_t n;

    fnsdk_buf_init(&s, 0);
    build_result(&s);
    put32(hdr, 999999);
    fnsdk_buf_append(&s, hdr, 4);
    fnsdk_frame_reader_init(&r, 4096);
    /* the complete frame before the bad header still comes out */
    ck_assert_int_eq(fnsdk_frame_reader_feed(&r, s.data, s.len), 1);
    ck_assert_int_eq(fnsdk_frame_reader_next(&r, &p, &n), 1);
    ck_assert_int_eq(fnsdk_frame_reader_next(&r, &p, &n), 0);
    ck_assert_int_eq(fnsdk_frame_reader_feed(&r, "", 0), -1);
    ck_assert_int_eq(r.state, -1);
    fnsdk_frame_reader_free(&r);
    fnsdk_buf_free(&s);
}
END_TEST

START_TEST(test_reader_zero_length)
{
    struct fnsdk_frame_reader r;
    char frames[9] = {0, 0, 0, 0, 0, 0, 0, 1, 'R'};
    const char *p;
    size_t n;
    char err[128];

    fnsdk_frame_reader_init(&r, 100);
    ck_assert_int_eq(fnsdk_frame_reader_feed(&r, frames, sizeof(frames)), 1);
    ck_assert_int_eq(fnsdk_frame_reader_next(&r, &p, &n), 1);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(fnsdk_frame_parse(p, n, &view, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "empty frame");
    ck_assert_int_eq(fnsdk_frame_reader_next(&r, &p, &n), 1);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(p[0], 'R');
    ck_assert_int_eq(fnsdk_frame_reader_next(&r, &p, &n), 0);
    fnsdk_frame_reader_free(&r);
}
END_TEST

START_TEST(test_reader_fuzz)
{
    struct fnsdk_frame_reader r;
    unsigned seed = 777;
    char buf[64], err[128];
    const char *p;
    size_t n, i;
    int iter, rc, chunk;

    for (iter = 0; iter < 3000; iter++) {
        fnsdk_frame_reader_init(&r, (size_t)(rand_r(&seed) % 128));
        for (chunk = 0; chunk < 8; chunk++) {
            n = (size_t)rand_r(&seed) % sizeof(buf);
            for (i = 0; i < n; i++)
                buf[i] = (char)(rand_r(&seed) % 4 == 0 ? 0 : rand_r(&seed));
            rc = fnsdk_frame_reader_feed(&r, buf, n);
            while (fnsdk_frame_reader_next(&r, &p, &n) == 1) {
                ck_assert_uint_le(n, r.max_payload);
                fnsdk_frame_parse(p, n, &view, err, sizeof(err));
            }
            if (rc < 0)
                break;
        }
        fnsdk_frame_reader_free(&r);
    }
}
END_TEST

/* --- over real sockets ---------------------------------------------------------------- */

START_TEST(test_reader_socket)
{
    struct fnsdk_buf s;
    struct fnsdk_frame_reader r;
    int sv[2];

    build_stream(&s);
    make_pair(sv);
    set_nonblock(sv[0]);
    fnsdk_frame_reader_init(&r, 4096);
    ck_assert_int_eq(fnsdk_frame_reader_read(&r, sv[0]), 0); /* nothing yet: EAGAIN */
    ck_assert_int_eq(fnsdk_frame_write_all(sv[1], s.data, 7), 0);
    ck_assert_int_eq(fnsdk_frame_reader_read(&r, sv[0]), 0);
    ck_assert_int_eq(fnsdk_frame_write_all(sv[1], s.data + 7, s.len - 7), 0);
    ck_assert_int_eq(fnsdk_frame_reader_read(&r, sv[0]), 1);
    check_popped_three(&r);
    /* a clean EOF */
    close(sv[1]);
    ck_assert_int_eq(fnsdk_frame_reader_read(&r, sv[0]), -1);
    ck_assert_str_eq(r.err, "channel closed");
    ck_assert_int_eq(fnsdk_frame_reader_read(&r, sv[0]), -1);
    fnsdk_frame_reader_free(&r);
    close(sv[0]);
    fnsdk_buf_free(&s);
}
END_TEST

START_TEST(test_reader_socket_eof_mid_frame)
{
    struct fnsdk_buf s;
    struct fnsdk_frame_reader r;
    const char *p;
    size_t n;
    int sv[2];

    build_stream(&s);
    make_pair(sv);
    set_nonblock(sv[0]);
    fnsdk_frame_reader_init(&r, 4096);
    /* the first frame whole, then half of the second, then EOF */
    ck_assert_int_eq(fnsdk_frame_write_all(sv[1], s.data, s.len - 40), 0);
    close(sv[1]);
    ck_assert_int_eq(fnsdk_frame_reader_read(&r, sv[0]), 1);
    ck_assert_int_eq(fnsdk_frame_reader_next(&r, &p, &n), 1);
    ck_assert_int_eq(fnsdk_frame_reader_next(&r, &p, &n), 1);
    ck_assert_int_eq(fnsdk_frame_reader_next(&r, &p, &n), 0);
    ck_assert_int_eq(fnsdk_frame_reader_read(&r, sv[0]), -1);
    ck_assert_str_eq(r.err, "channel closed mid-frame");
    fnsdk_frame_reader_free(&r);
    close(sv[0]);
    fnsdk_buf_free(&s);
}
END_TEST

START_TEST(test_reader_socket_oversize)
{
    struct fnsdk_frame_reader r;
    char hdr[4];
    int sv[2];

    make_pair(sv);
    set_nonblock(sv[0]);
    fnsdk_frame_reader_init(&r, 1 << 16);
    put32(hdr, (1u << 16) + 1);
    /* only the header is sent: the reader must not wait for the body */
    ck_assert_int_eq(fnsdk_frame_write_all(sv[1], hdr, 4), 0);
    ck_assert_int_eq(fnsdk_frame_reader_read(&r, sv[0]), -1);
    ck_assert_ptr_nonnull(strstr(r.err, "exceeds"));
    fnsdk_frame_reader_free(&r);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(test_reader_socket_large_and_many)
{
    struct fnsdk_frame_reader r;
    struct fnsdk_buf s;
    size_t big = 3u << 20, i, n;
    const char *p;
    int sv[2], got = 0, rc;
    pid_t pid;
    char *payload = malloc(big);

    ck_assert_ptr_nonnull(payload);
    for (i = 0; i < big; i++)
        payload[i] = (char)(i * 7);
    make_pair(sv);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* the writer: one big frame, then 500 small ones */
        close(sv[0]);
        fnsdk_buf_init(&s, 0);
        fnsdk_frame_begin(&s, FNSDK_FRAME_RESULT);
        fnsdk_frame_add(&s, payload, big - 13);
        fnsdk_frame_end(&s);
        for (i = 0; i < 500; i++) {
            fnsdk_frame_begin(&s, FNSDK_FRAME_RESULT);
            fnsdk_frame_add(&s, &i, sizeof(i));
            fnsdk_frame_end(&s);
        }
        _exit(fnsdk_frame_write_all(sv[1], s.data, s.len) == 0 ? 0 : 1);
    }
    close(sv[1]);
    set_nonblock(sv[0]);
    fnsdk_frame_reader_init(&r, big);
    for (;;) {
        struct timeval tv = {0, 2000};
        select(0, NULL, NULL, NULL, &tv);
        rc = fnsdk_frame_reader_read(&r, sv[0]);
        while (fnsdk_frame_reader_next(&r, &p, &n) == 1) {
            if (got == 0) {
                ck_assert_uint_eq(n, big - 13 + 4 + 1);
                ck_assert_int_eq(memcmp(p + 5, payload, big - 13), 0);
            } else {
                size_t v;
                ck_assert_uint_eq(n, 1 + 4 + sizeof(v));
                memcpy(&v, p + 5, sizeof(v));
                ck_assert_uint_eq(v, (size_t)got - 1);
            }
            got++;
        }
        if (rc < 0)
            break;
        /* the buffer stays bounded by about two frames' worth */
        ck_assert_uint_le(r.cap, 2 * big + 65536);
    }
    ck_assert_str_eq(r.err, "channel closed");
    ck_assert_int_eq(got, 501);
    waitpid(pid, &rc, 0);
    ck_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
    fnsdk_frame_reader_free(&r);
    close(sv[0]);
    free(payload);
}
END_TEST

START_TEST(test_reader_flood_guard)
{
    struct fnsdk_frame_reader r;
    struct fnsdk_buf s;
    const char *p;
    size_t n, i;
    int sv[2], got = 0, reads = 0;

    fnsdk_buf_init(&s, 0);
    for (i = 0; i < 100; i++) {
        fnsdk_frame_begin(&s, FNSDK_FRAME_RESULT);
        fnsdk_frame_add(&s, &i, sizeof(i));
        fnsdk_frame_end(&s);
    }
    make_pair(sv);
    set_nonblock(sv[0]);
    ck_assert_int_eq(fnsdk_frame_write_all(sv[1], s.data, s.len), 0);
    fnsdk_frame_reader_init(&r, 64);
    while (got < 100) {
        ck_assert_int_eq(fnsdk_frame_reader_read(&r, sv[0]), 1);
        reads++;
        while (fnsdk_frame_reader_next(&r, &p, &n) == 1) {
            memcpy(&i, p + 5, sizeof(i));
            ck_assert_uint_eq(i, (size_t)got);
            got++;
        }
    }
    ck_assert_int_eq(fnsdk_frame_reader_read(&r, sv[0]), 0);
    fnsdk_frame_reader_free(&r);
    close(sv[0]);
    close(sv[1]);
    fnsdk_buf_free(&s);
}
END_TEST

START_TEST(test_read_one_basic)
{
    struct fnsdk_buf s, in;
    char err[128];
    int sv[2];

    build_stream(&s);
    make_pair(sv);
    fnsdk_buf_init(&in, 0);
    ck_assert_int_eq(fnsdk_frame_write_all(sv[1], s.data, s.len), 0);
    /* three frames already waiting: read_one takes exactly one each time */
    ck_assert_int_eq(fnsdk_frame_read_one(sv[0], &in, 4096, err, sizeof(err)), 0);
    ck_assert_int_eq(parse_copy(in.data, in.len, err, sizeof(err)), 0);
    ck_assert_int_eq(view.type, 'Q');
    ck_assert_int_eq(fnsdk_frame_read_one(sv[0], &in, 4096, err, sizeof(err)), 0);
    ck_assert_int_eq(parse_copy(in.data, in.len, err, sizeof(err)), 0);
    ck_assert_int_eq(view.type, 'R');
    ck_assert_int_eq(fnsdk_frame_read_one(sv[0], &in, 4096, err, sizeof(err)), 0);
    ck_assert_int_eq(parse_copy(in.data, in.len, err, sizeof(err)), 0);
    ck_assert_int_eq(view.type, 'E');
    close(sv[1]);
    ck_assert_int_eq(fnsdk_frame_read_one(sv[0], &in, 4096, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "channel closed");
    close(sv[0]);
    fnsdk_buf_free(&in);
    fnsdk_buf_free(&s);
}
END_TEST

/* One frame of LEN payload bytes (type 'R' then a pattern) into B. */
static void reply_frame(struct fnsdk_buf *b, size_t len)
{
    char hdr[4];

    put32(hdr, (uint32_t)len);
    fnsdk_buf_append(b, hdr, 4);
    for (size_t i = 0; i < len; i++)
        fnsdk_buf_putc(b, i == 0 ? 'R' : (char)('a' + i % 26));
}

START_TEST(test_read_reply)
{
    struct fnsdk_buf s, in;
    char err[128];
    int sv[2];

    fnsdk_buf_init(&in, 0);
    /* small and large answers, one at a time, come out whole */
    for (size_t len = 1; len <= 150000; len = len * 7 + 3) {
        fnsdk_buf_init(&s, 0);
        reply_frame(&s, len);
        make_pair(sv);
        ck_assert_int_eq(fnsdk_frame_write_all(sv[1], s.data, s.len), 0);
        ck_assert_msg(fnsdk_frame_read_reply(sv[0], &in, 1 << 20, err, sizeof(err)) == 0, "%zu: %s",
                      len, err);
        ck_assert_uint_eq(in.len, len);
        ck_assert_int_eq(memcmp(in.data, s.data + 4, len), 0);
        ck_assert_int_eq(in.data[len], '\0');
        close(sv[0]);
        close(sv[1]);
        fnsdk_buf_free(&s);
    }
    /* two answers for one question: the second is not silently dropped */
    fnsdk_buf_init(&s, 0);
    reply_frame(&s, 10);
    reply_frame(&s, 10);
    make_pair(sv);
    ck_assert_int_eq(fnsdk_frame_write_all(sv[1], s.data, s.len), 0);
    ck_assert_int_eq(fnsdk_frame_read_reply(sv[0], &in, 4096, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "14 bytes after a 10-byte frame: one answer expected");
    close(sv[0]);
    close(sv[1]);
    fnsdk_buf_free(&s);
    /* EOF before, inside the header and inside the body; oversized */
    make_pair(sv);
    close(sv[1]);
    ck_assert_int_eq(fnsdk_frame_read_reply(sv[0], &in, 4096, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "channel closed");
    close(sv[0]);
    make_pair(sv);
    fnsdk_frame_write_all(sv[1], "\0\0", 2);
    close(sv[1]);
    ck_assert_int_eq(fnsdk_frame_read_reply(sv[0], &in, 4096, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "channel closed mid-frame");
    close(sv[0]);
    fnsdk_buf_init(&s, 0);
    reply_frame(&s, 30000);
    make_pair(sv);
    fnsdk_frame_write_all(sv[1], s.data, s.len - 1);
    close(sv[1]);
    ck_assert_int_eq(fnsdk_frame_read_reply(sv[0], &in, 1 << 20, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "channel closed mid-frame");
    close(sv[0]);
    make_pair(sv);
    fnsdk_frame_write_all(sv[1], s.data, 4);
    ck_assert_int_eq(fnsdk_frame_read_reply(sv[0], &in, 4096, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "exceeds"));
    close(sv[0]);
    close(sv[1]);
    fnsdk_buf_free(&s);
    fnsdk_buf_free(&in);
}
END_TEST

/* The pool's side of one query: reads it, waits, then answers with a
 * 20-byte frame (or closes without answering if ANSWER is 0). */
static pid_t late_peer(int fd, int answer)
{
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct fnsdk_buf b;
        char q[64];
        struct timespec t = {0, 50 * 1000 * 1000};
        if (read(fd, q, sizeof(q)) <= 0)
            _exit(1);
        nanosleep(&t, NULL);
        fnsdk_buf_init(&b, 0);
        reply_frame(&b, 20);
        if (answer && fnsdk_frame_write_all(fd, b.data, b.len) < 0)
            _exit(1);
        _exit(0);
    }
    return pid;
}

/* The reader waits in poll for the answer, not in read: the peer's read of
 * the query wakes a read() waiter for nothing.  Whatever it waits in, a
 * late answer comes out whole and a peer that leaves unanswered is "channel
 * closed", never a hang. */
START_TEST(test_read_reply_late)
{
    struct fnsdk_buf in;
    char err[128];
    int sv[2], st;
    pid_t pid;

    fnsdk_buf_init(&in, 0);
    for (int answer = 1; answer >= 0; answer--) {
        make_pair(sv);
        pid = late_peer(sv[1], answer);
        close(sv[1]);
        ck_assert_int_eq(fnsdk_frame_write_all(sv[0], "\0\0\0\1Q", 5), 0);
        if (answer) {
            ck_assert_msg(fnsdk_frame_read_reply(sv[0], &in, 4096, err, sizeof(err)) == 0, "%s",
                          err);
            ck_assert_uint_eq(in.len, 20);
            ck_assert_int_eq(in.data[0], 'R');
        } else {
            ck_assert_int_eq(fnsdk_frame_read_reply(sv[0], &in, 4096, err, sizeof(err)), -1);
            ck_assert_str_eq(err, "channel closed");
        }
        ck_assert_int_eq(waitpid(pid, &st, 0), pid);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        close(sv[0]);
    }
    /* no channel at all: an error at once (poll would wait for ever on -1) */
    ck_assert_int_eq(fnsdk_frame_read_reply(-1, &in, 4096, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "channel read: Bad file descriptor");
    fnsdk_buf_free(&in);
}
END_TEST

START_TEST(test_read_one_errors)
{
    struct fnsdk_buf in;
    char err[128], hdr[8];
    int sv[2];

    fnsdk_buf_init(&in, 0);
    /* EOF inside the header */
    make_pair(sv);
    fnsdk_frame_write_all(sv[1], "\0\0", 2);
    close(sv[1]);
    ck_assert_int_eq(fnsdk_frame_read_one(sv[0], &in, 4096, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "channel closed mid-frame");
    close(sv[0]);
    /* EOF inside the body */
    make_pair(sv);
    put32(hdr, 10);
    memcpy(hdr + 4, "Rabc", 4);
    fnsdk_frame_write_all(sv[1], hdr, 8);
    close(sv[1]);
    ck_assert_int_eq(fnsdk_frame_read_one(sv[0], &in, 4096, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "channel closed mid-frame");
    close(sv[0]);
    /* oversized: refused from the header alone, the writer never sends a body */
    make_pair(sv);
    put32(hdr, 5000);
    fnsdk_frame_write_all(sv[1], hdr, 4);
    ck_assert_int_eq(fnsdk_frame_read_one(sv[0], &in, 4096, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "exceeds"));
    close(sv[0]);
    close(sv[1]);
    /* over INTO's own max */
    fnsdk_buf_free(&in);
    fnsdk_buf_init(&in, 3);
    make_pair(sv);
    put32(hdr, 4);
    memcpy(hdr + 4, "Rxyz", 4);
    fnsdk_frame_write_all(sv[1], hdr, 8);
    ck_assert_int_eq(fnsdk_frame_read_one(sv[0], &in, 4096, err, sizeof(err)), -1);
    close(sv[0]);
    close(sv[1]);
    /* an empty payload is delivered as such */
    fnsdk_buf_free(&in);
    fnsdk_buf_init(&in, 0);
    make_pair(sv);
    put32(hdr, 0);
    fnsdk_frame_write_all(sv[1], hdr, 4);
    ck_assert_int_eq(fnsdk_frame_read_one(sv[0], &in, 4096, err, sizeof(err)), 0);
    ck_assert_uint_eq(in.len, 0);
    ck_assert_ptr_nonnull(in.data);
    close(sv[0]);
    close(sv[1]);
    /* a bad fd */
    ck_assert_int_eq(fnsdk_frame_read_one(-1, &in, 4096, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "channel read"));
    fnsdk_buf_free(&in);
}
END_TEST

/* The writer dribbles a frame one byte at a time. */
START_TEST(test_read_one_partial)
{
    struct fnsdk_buf s, in;
    char err[128];
    int sv[2], status;
    pid_t pid;
    size_t i;

    fnsdk_buf_init(&s, 0);
    build_result(&s);
    make_pair(sv);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(sv[0]);
        for (i = 0; i < s.len; i++) {
            if (fnsdk_frame_write_all(sv[1], s.data + i, 1) < 0)
                _exit(1);
            usleep(200);
        }
        _exit(0);
    }
    close(sv[1]);
    fnsdk_buf_init(&in, 0);
    ck_assert_int_eq(fnsdk_frame_read_one(sv[0], &in, 4096, err, sizeof(err)), 0);
    ck_assert_uint_eq(in.len, s.len - 4);
    ck_assert_int_eq(memcmp(in.data, s.data + 4, in.len), 0);
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(sv[0]);
    fnsdk_buf_free(&in);
    fnsdk_buf_free(&s);
}
END_TEST

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* Signals without SA_RESTART interrupt the blocking read and write; both
 * must carry on. */
START_TEST(test_blocking_eintr)
{
    struct sigaction sa;
    struct itimerval it = {{0, 2000}, {0, 2000}};
    struct fnsdk_buf s, in;
    char err[128];
    int sv[2], status;
    pid_t pid;
    size_t big = 1u << 20;
    char *payload = malloc(big);

    ck_assert_ptr_nonnull(payload);
    memset(payload, 'p', big);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
    fnsdk_buf_init(&s, 0);
    fnsdk_frame_begin(&s, FNSDK_FRAME_RESULT);
    fnsdk_frame_add(&s, "", 0);
    fnsdk_frame_add(&s, "", 0);
    fnsdk_frame_add(&s, payload, big);
    ck_assert_int_eq(fnsdk_frame_end(&s), 0);
    make_pair(sv);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* a slow echo: read the frame and send it back, pausing first */
        close(sv[0]);
        fnsdk_buf_init(&in, 0);
        if (fnsdk_frame_read_one(sv[1], &in, big + 64, err, sizeof(err)) < 0)
            _exit(1);
        usleep(50000);
        fnsdk_buf_free(&s);
        fnsdk_buf_init(&s, 0);
        fnsdk_buf_append(&s, "\0\0\0\0", 4);
        fnsdk_buf_append(&s, in.data, in.len);
        s.data[0] = (char)(in.len >> 24);
        s.data[1] = (char)(in.len >> 16);
        s.data[2] = (char)(in.len >> 8);
        s.data[3] = (char)in.len;
        _exit(fnsdk_frame_write_all(sv[1], s.data, s.len) == 0 ? 0 : 2);
    }
    close(sv[1]);
    setitimer(ITIMER_REAL, &it, NULL);
    ck_assert_int_eq(fnsdk_frame_write_all(sv[0], s.data, s.len), 0);
    fnsdk_buf_init(&in, 0);
    ck_assert_int_eq(fnsdk_frame_read_one(sv[0], &in, big + 64, err, sizeof(err)), 0);
    memset(&it, 0, sizeof(it));
    setitimer(ITIMER_REAL, &it, NULL);
    ck_assert_uint_eq(in.len, s.len - 4);
    ck_assert_int_eq(memcmp(in.data, s.data + 4, in.len), 0);
    ck_assert_int_gt(alarms, 0);
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(sv[0]);
    fnsdk_buf_free(&in);
    fnsdk_buf_free(&s);
    free(payload);
}
END_TEST

/* write_all on a non-blocking socket waits in poll() instead of failing. */
START_TEST(test_write_all_nonblocking)
{
    struct fnsdk_buf in;
    char err[128];
    size_t big = 2u << 20, i;
    char *frame = malloc(big + 4);
    int sv[2], status;
    pid_t pid;

    ck_assert_ptr_nonnull(frame);
    put32(frame, (uint32_t)big);
    for (i = 0; i < big; i++)
        frame[4 + i] = (char)i;
    make_pair(sv);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(sv[0]);
        usleep(20000); /* let the writer fill the socket buffer first */
        fnsdk_buf_init(&in, 0);
        if (fnsdk_frame_read_one(sv[1], &in, big, err, sizeof(err)) < 0)
            _exit(1);
        _exit(in.len == big && memcmp(in.data, frame + 4, big) == 0 ? 0 : 2);
    }
    close(sv[1]);
    set_nonblock(sv[0]);
    ck_assert_int_eq(fnsdk_frame_write_all(sv[0], frame, big + 4), 0);
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(sv[0]);
    free(frame);
}
END_TEST

START_TEST(test_write_all_closed_peer)
{
    char buf[70000];
    int sv[2];

    memset(buf, 'x', sizeof(buf));
    make_pair(sv);
    close(sv[1]);
    /* EPIPE, not a SIGPIPE that kills the process */
    ck_assert_int_eq(fnsdk_frame_write_all(sv[0], buf, sizeof(buf)), -1);
    ck_assert_int_eq(errno, EPIPE);
    close(sv[0]);
    ck_assert_int_eq(fnsdk_frame_write_all(-1, buf, 1), -1);
    ck_assert_int_eq(errno, EBADF);
}
END_TEST

/* write_all also works on something that is not a socket. */
START_TEST(test_write_all_pipe)
{
    struct fnsdk_buf in;
    char err[128], frame[9];
    int p[2];

    ck_assert_int_eq(pipe(p), 0);
    put32(frame, 5);
    memcpy(frame + 4, "Rabcd", 5);
    ck_assert_int_eq(fnsdk_frame_write_all(p[1], frame, sizeof(frame)), 0);
    fnsdk_buf_init(&in, 0);
    ck_assert_int_eq(fnsdk_frame_read_one(p[0], &in, 100, err, sizeof(err)), 0);
    ck_assert_str_eq(in.data, "Rabcd");
    close(p[0]);
    close(p[1]);
    fnsdk_buf_free(&in);
}
END_TEST

static Suite *frame_suite(void)
{
    Suite *s = suite_create("frame");
    TCase *tc;

    tc = tcase_create("buf");
    tcase_add_test(tc, test_buf_basics);
    tcase_add_test(tc, test_buf_growth);
    tcase_add_test(tc, test_buf_max);
    tcase_add_test(tc, test_buf_max_lowered);
    suite_add_tcase(s, tc);

    tc = tcase_create("codec");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, free_copy);
    tcase_add_test(tc, test_roundtrip_query);
    tcase_add_test(tc, test_roundtrip_result_error);
    tcase_add_test(tc, test_field_in_place);
    tcase_add_test(tc, test_end_misuse);
    tcase_add_test(tc, test_build_over_max);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_parse_nul_bytes);
    tcase_add_test(tc, test_parse_trace_at_the_end_of_memory);
    tcase_add_test(tc, test_parse_field_limit);
    tcase_add_test(tc, test_parse_truncated);
    tcase_add_test(tc, test_parse_fuzz);
    suite_add_tcase(s, tc);

    tc = tcase_create("reader");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, free_copy);
    tcase_add_test(tc, test_reader_one_feed);
    tcase_add_test(tc, test_reader_byte_at_a_time);
    tcase_add_test(tc, test_reader_every_split);
    tcase_add_test(tc, test_reader_oversize_before_body);
    tcase_add_test(tc, test_reader_good_then_bad);
    tcase_add_test(tc, test_reader_zero_length);
    tcase_add_test(tc, test_reader_fuzz);
    suite_add_tcase(s, tc);

    tc = tcase_create("socket");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, free_copy);
    tcase_add_test(tc, test_reader_socket);
    tcase_add_test(tc, test_reader_socket_eof_mid_frame);
    tcase_add_test(tc, test_reader_socket_oversize);
    tcase_add_test(tc, test_reader_socket_large_and_many);
    tcase_add_test(tc, test_reader_flood_guard);
    tcase_add_test(tc, test_read_one_basic);
    tcase_add_test(tc, test_read_one_errors);
    tcase_add_test(tc, test_read_one_partial);
    tcase_add_test(tc, test_read_reply);
    tcase_add_test(tc, test_read_reply_late);
    tcase_add_test(tc, test_blocking_eintr);
    tcase_add_test(tc, test_write_all_nonblocking);
    tcase_add_test(tc, test_write_all_closed_peer);
    tcase_add_test(tc, test_write_all_pipe);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(frame_suite)
