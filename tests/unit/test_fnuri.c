/*
 * Unit tests for functions/sdk/fnsdk_uri.c, the percent-decoding the SDK's
 * request parsing and `fngate invoke` share: a query decodes '+' and every
 * %XX; a path decodes %XX as nginx's $uri does but keeps '+' and %00; a '%'
 * without two hex digits after it stays as it is; only N bytes are read.
 */
#include "config.h"

#include "fnsdk_uri.h"

#include <check.h>

#include "check_main.h"
#include <stdlib.h>
#include <string.h>

static void is(char *got, const char *want)
{
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    free(got);
}

#define Q(s) fnsdk_uri_decode_query((s), strlen(s))
#define P(s) fnsdk_uri_decode_path((s), strlen(s))

START_TEST(a_query_decodes_plus_and_every_escape)
{
    is(Q("a+b%20c"), "a b c");
    is(Q("%41%62%7e%7E"), "Ab~~");
    is(Q("%2B+%26"), "+ &");
    is(Q(""), "");
    /* %00 ends the C string the handler sees. */
    is(Q("x%00y"), "x");
}
END_TEST

START_TEST(a_path_decodes_as_nginx_uri_does)
{
    is(P("/fn/users/%C3%A9t%C3%A9"), "/fn/users/\xc3\xa9t\xc3\xa9");
    is(P("/a+b"), "/a+b");
    is(P("/a%2Fb"), "/a/b");
    is(P("/x%00y"), "/x%00y");
}
END_TEST

START_TEST(a_bad_escape_stays_as_it_is)
{
    is(Q("%"), "%");
    is(Q("%4"), "%4");
    is(Q("%4g%g4%%41"), "%4g%g4%A");
    is(P("/100%"), "/100%");
    is(P("/%zz"), "/%zz");
}
END_TEST

START_TEST(only_n_bytes_are_read)
{
    /* An escape cut by N is not completed from what follows. */
    is(fnsdk_uri_decode_path("/a%41?q", 3), "/a%");
    is(fnsdk_uri_decode_path("/a%41?q", 5), "/aA");
    is(fnsdk_uri_decode_query("x%4", 3), "x%4");
    is(fnsdk_uri_decode_query("x%41", 0), "");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fnuri");
    TCase *tc = tcase_create("fnuri");

    tcase_add_test(tc, a_query_decodes_plus_and_every_escape);
    tcase_add_test(tc, a_path_decodes_as_nginx_uri_does);
    tcase_add_test(tc, a_bad_escape_stays_as_it_is);
    tcase_add_test(tc, only_n_bytes_are_read);
    suite_add_tcase(s, tc);
    return check_main_run(s);
}
