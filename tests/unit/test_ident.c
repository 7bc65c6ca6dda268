/*
 * Unit tests for gateway/ident.c: dynamic uids are in the range, stable for
 * a name, distinct between names and from the pool's; an explicit user
 * replaces them; root is refused; a full range says so.  Without root,
 * everything runs as the caller.
 */
#include "config.h"

#include "conf.h"
#include "ident.h"

#include <check.h>

#include "check_main.h"
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char errbuf[CONF_ERR_MAX];

static struct conf *conf_text(const char *text)
{
    char path[] = "/tmp/test_ident.XXXXXX";
    int fd = mkstemp(path);
    struct conf *c;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    c = conf_load(path, errbuf, sizeof(errbuf));
    unlink(path);
    ck_assert_msg(c != NULL, "%s", errbuf);
    free(c->path);
    c->path = strdup("fngate.conf");
    return c;
}

static struct fn_settings no_settings(void)
{
    struct fn_settings s;
    memset(&s, 0, sizeof(s));
    return s;
}

START_TEST(without_root_everything_is_the_caller)
{
    struct conf *c = conf_text("[gateway]\n");
    struct fn_settings s = no_settings();
    struct ident id;

    if (geteuid() == 0) {
        conf_free(c);
        return; /* the root tests cover it */
    }
    ck_assert_int_eq(ident_function(c, "hello", &s, &id, errbuf, sizeof(errbuf)), 0);
    ck_assert(!id.drop);
    ck_assert_uint_eq(id.uid, getuid());
    ck_assert_int_eq(ident_pool(c, &id, errbuf, sizeof(errbuf)), 0);
    ck_assert_uint_eq(id.uid, getuid());
    conf_free(c);
}
END_TEST

START_TEST(dynamic_uids_stable_and_distinct)
{
    struct conf *c = conf_text("[gateway]\n");
    struct fn_settings s = no_settings();
    struct ident a, b, again, pool;

    if (geteuid() != 0) {
        conf_free(c);
        return;
    }
    ck_assert_int_eq(ident_function(c, "hello", &s, &a, errbuf, sizeof(errbuf)), 0);
    ck_assert_int_eq(ident_function(c, "users", &s, &b, errbuf, sizeof(errbuf)), 0);
    ck_assert_int_eq(ident_function(c, "hello", &s, &again, errbuf, sizeof(errbuf)), 0);
    ck_assert_int_eq(ident_pool(c, &pool, errbuf, sizeof(errbuf)), 0);
    ck_assert(a.drop && a.dynamic);
    ck_assert_uint_ge(a.uid, 61184);
    ck_assert_uint_le(a.uid, 65519);
    ck_assert_uint_eq(a.gid, a.uid);
    ck_assert_uint_ne(a.uid, b.uid);
    ck_assert_uint_eq(a.uid, again.uid);
    ck_assert_uint_ne(pool.uid, a.uid);
    ck_assert_uint_ne(pool.uid, b.uid);
    ck_assert_ptr_null(getpwuid(a.uid));
    conf_free(c);
}
END_TEST

START_TEST(same_name_same_uid_in_another_process)
{
    /* Stability across restarts: a fresh process (this test's fork) places
     * "hello" where the hash puts it, as the previous test did. */
    struct conf *c = conf_text("[gateway]\n");
    struct fn_settings s = no_settings();
    struct ident a, b;

    if (geteuid() != 0) {
        conf_free(c);
        return;
    }
    ck_assert_int_eq(ident_function(c, "users", &s, &b, errbuf, sizeof(errbuf)), 0);
    ck_assert_int_eq(ident_function(c, "hello", &s, &a, errbuf, sizeof(errbuf)), 0);
    /* FNV-1a of "hello" is 0x4f9f2cab; 4336 uids in the default range. */
    ck_assert_uint_eq(a.uid, 61184 + 0x4f9f2cabu % 4336);
    conf_free(c);
}
END_TEST

START_TEST(explicit_user_and_refusals)
{
    struct conf *c = conf_text("[gateway]\n");
    struct fn_settings s = no_settings();
    struct ident id;

    if (geteuid() != 0) {
        conf_free(c);
        return;
    }
    s.user = "nobody";
    ck_assert_int_eq(ident_function(c, "hello", &s, &id, errbuf, sizeof(errbuf)), 0);
    ck_assert(id.drop && !id.dynamic);
    ck_assert_uint_eq(id.uid, getpwnam("nobody")->pw_uid);
    s.user = "root";
    ck_assert_int_eq(ident_function(c, "hello", &s, &id, errbuf, sizeof(errbuf)), -1);
    ck_assert_str_eq(errbuf, "fngate.conf: [hello] user 'root' is root: instances never run as "
                             "root");
    s.user = "no-such-user-here";
    ck_assert_int_eq(ident_function(c, "hello", &s, &id, errbuf, sizeof(errbuf)), -1);
    ck_assert_str_eq(errbuf, "fngate.conf: [hello] user 'no-such-user-here' does not exist");
    conf_free(c);
}
END_TEST

START_TEST(full_range)
{
    struct conf *c = conf_text("[gateway]\ndynamic_uid_min = 61300\ndynamic_uid_max = 61301\n");
    struct fn_settings s = no_settings();
    struct ident a, b, x;

    if (geteuid() != 0) {
        conf_free(c);
        return;
    }
    ck_assert_int_eq(ident_function(c, "a", &s, &a, errbuf, sizeof(errbuf)), 0);
    ck_assert_int_eq(ident_function(c, "b", &s, &b, errbuf, sizeof(errbuf)), 0);
    ck_assert_uint_ne(a.uid, b.uid);
    ck_assert_int_eq(ident_function(c, "c", &s, &x, errbuf, sizeof(errbuf)), -1);
    ck_assert_str_eq(errbuf, "fngate.conf: no free uid left in dynamic_uid_min..dynamic_uid_max "
                             "(61300..61301)");
    conf_free(c);

    c = conf_text("[gateway]\ndynamic_uid_min = 9\ndynamic_uid_max = 8\n");
    ck_assert_int_eq(ident_check(c, errbuf, sizeof(errbuf)), -1);
    ck_assert_str_eq(errbuf,
                     "fngate.conf: dynamic_uid_min (9) is greater than dynamic_uid_max (8)");
    conf_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ident");
    TCase *tc = tcase_create("ident");

    tcase_add_test(tc, without_root_everything_is_the_caller);
    tcase_add_test(tc, dynamic_uids_stable_and_distinct);
    tcase_add_test(tc, same_name_same_uid_in_another_process);
    tcase_add_test(tc, explicit_user_and_refusals);
    tcase_add_test(tc, full_range);
    suite_add_tcase(s, tc);
    return check_main_run(s);
}
