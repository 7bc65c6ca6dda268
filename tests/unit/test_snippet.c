/*
 * Unit tests for snippet.c's exact locations (`fngate nginx --locations`):
 * the generator refuses any name outside [a-z0-9][a-z0-9_-]{0,63} and any
 * socket folder nginx cannot take, writing nothing then; it quotes a folder
 * nginx would cut; and each location's body is the include's regex
 * location's body with the name's constants written in.
 */
#include "config.h"

#include "snippet.h"

#include <check.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"

/* What snippet_write_locations writes for NAMES (N of them): RC, the text
 * (caller frees) and ERR. */
static char *locations(const char *dir, const char *const *names, size_t n, int *rc, char *err,
                       size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);

    ck_assert_ptr_nonnull(m);
    err[0] = '\0';
    *rc = snippet_write_locations(m, dir, names, n, "/etc/fngate/fngate.conf", err, errlen);
    fclose(m);
    return buf;
}

START_TEST(names_outside_the_pattern_are_refused_and_nothing_written)
{
    static const char *const bad[] = {"",    "Hello",  "-x",  "_x", "a.b", "a/b",    "a b", "a;b",
                                      "a{b", "../etc", "x\n", "é",  "a$b", "hello/", "a\"b"};
    char long_name[66], err[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        const char *names[] = {"ok", bad[i]};
        char want[512];
        int rc;
        char *out = locations("/run/fngate", names, 2, &rc, err, sizeof(err));

        snprintf(want, sizeof(want),
                 "function name '%s': not a function name ([a-z0-9][a-z0-9_-]{0,63}); no location "
                 "written",
                 bad[i]);
        ck_assert_int_eq(rc, -1);
        ck_assert_str_eq(err, want);
        ck_assert_str_eq(out, "");
        free(out);
    }
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    const char *names[] = {long_name};
    int rc;
    char *out = locations("/run/fngate", names, 1, &rc, err, sizeof(err));
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(out, "");
    free(out);
    long_name[64] = '\0'; /* 64 characters: the longest name there is */
    out = locations("/run/fngate", names, 1, &rc, err, sizeof(err));
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(strstr(out, long_name));
    free(out);
}
END_TEST

START_TEST(a_location_is_the_regex_body_with_the_name_written_in)
{
    const char *names[] = {"0a_b-c", "hello"};
    char err[512];
    int rc;
    char *out = locations("/run/fngate", names, 2, &rc, err, sizeof(err));
    const char *h;

    ck_assert_int_eq(rc, 0);
    h = strstr(out, "location = /fn/hello {\n");
    ck_assert_ptr_nonnull(strstr(out, "location = /fn/0a_b-c {\n"));
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_nonnull(strstr(h, "    fastcgi_pass unix:/run/fngate/fn/hello.sock;\n"));
    ck_assert_ptr_nonnull(strstr(h, "    fastcgi_param SCRIPT_NAME /fn/hello;\n"));
    ck_assert_ptr_nonnull(strstr(h, "    fastcgi_param FNGATE_PATH \"\";\n"));
    ck_assert_ptr_nonnull(strstr(h, "    error_page 502 = @fngate_502;\n"));
    ck_assert_ptr_nonnull(strstr(h, "    fastcgi_param HTTP_PROXY \"\";\n"));
    ck_assert_ptr_nonnull(strstr(h, "    fastcgi_param FNGATE_ARRIVAL $msec;\n"));
    /* nothing the regex captured, no variable socket, no comment */
    ck_assert_ptr_null(strstr(out, "$fngate_fn"));
    ck_assert_ptr_null(strstr(out, "$fngate_path"));
    ck_assert_ptr_null(strstr(out, "$fngate_socket_dir"));
    ck_assert_ptr_null(strstr(h, "#"));
    /* every directive of the regex location, in its order */
    const char *inc = strstr(snippet_fngate_inc, "location ~ \"^/fn/(?<fngate_fn>");
    ck_assert_ptr_nonnull(inc);
    size_t body_lines = 0, exact_lines = 0;
    for (const char *p = strchr(inc, '\n') + 1; strncmp(p, "    }\n", 6) != 0;
         p = strchr(p, '\n') + 1) {
        const char *q = p + strspn(p, " ");
        if (*q != '#' && *q != '\n')
            body_lines++;
    }
    for (const char *p = strchr(h, '\n') + 1; strncmp(p, "}\n", 2) != 0; p = strchr(p, '\n') + 1)
        exact_lines++;
    ck_assert_uint_eq(exact_lines, body_lines);
    free(out);
}
END_TEST

START_TEST(a_socket_dir_nginx_would_cut_is_quoted)
{
    const char *names[] = {"x"};
    char err[512];
    int rc;
    char *out = locations("/srv/my \"fn\" {1};#\\", names, 1, &rc, err, sizeof(err));

    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(
        strstr(out, "\n    fastcgi_pass \"unix:/srv/my \\\"fn\\\" {1};#\\\\/fn/x.sock\";\n"));
    free(out);
}
END_TEST

START_TEST(a_socket_dir_nginx_cannot_take_is_refused)
{
    static const char *const bad[] = {"/run/$fngate", "/run/a\nb", "/run/a\tb"};
    const char *names[] = {"x"};
    char err[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char want[512];
        int rc;
        char *out = locations(bad[i], names, 1, &rc, err, sizeof(err));

        snprintf(want, sizeof(want),
                 "/etc/fngate/fngate.conf: socket_dir '%s' has characters nginx's configuration "
                 "cannot take ($ or a control character); the include's regex location still "
                 "serves every function",
                 bad[i]);
        ck_assert_int_eq(rc, -1);
        ck_assert_str_eq(err, want);
        ck_assert_str_eq(out, "");
        free(out);
    }
}
END_TEST

START_TEST(a_prefix_snippet_has_its_exact_locations_inline)
{
    const char *names[] = {"hello"};
    char *buf = NULL, err[512];
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);

    ck_assert_int_eq(snippet_write(m, "/home/a/sock", "/alice/fn", names, 1, "/home/a/fngate.conf",
                                   err, sizeof(err)),
                     0);
    fclose(m);
    ck_assert_ptr_nonnull(strstr(buf, "\n    location = /alice/fn/hello {\n"
                                      "        fastcgi_pass unix:/home/a/sock/fn/hello.sock;\n"));
    ck_assert_ptr_nonnull(strstr(buf, "        fastcgi_param SCRIPT_NAME /alice/fn/hello;\n"));
    ck_assert_ptr_nonnull(strstr(buf, "        error_page 502 = @fngate_alice_fn_502;\n"));
    /* the error path takes the name back from the prefix's own URIs */
    ck_assert_ptr_nonnull(strstr(buf, "if ($uri ~ \"^/alice/fn/(?<fngate_fn>"));
    ck_assert_ptr_null(strstr(buf, "\"^/fn/"));
    /* no include of the /fn/ file, whose locations would be outside this prefix */
    ck_assert_ptr_null(strstr(buf, "include fngate-functions"));
    free(buf);
}
END_TEST

static Suite *snippet_suite(void)
{
    Suite *s = suite_create("snippet");
    TCase *tc = tcase_create("locations");

    tcase_add_test(tc, names_outside_the_pattern_are_refused_and_nothing_written);
    tcase_add_test(tc, a_location_is_the_regex_body_with_the_name_written_in);
    tcase_add_test(tc, a_socket_dir_nginx_would_cut_is_quoted);
    tcase_add_test(tc, a_socket_dir_nginx_cannot_take_is_refused);
    tcase_add_test(tc, a_prefix_snippet_has_its_exact_locations_inline);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(snippet_suite)
