/*
 * Unit tests for gateway/scoreboard.c: the per-instance scoreboard slot.  The
 * instance's side is simulated by a second mapping of the same memfd, made
 * the way the SDK makes it (mmap of the fd it inherits as FNSDK_SCOREBOARD_FD).
 */
#include "config.h"

#include "scoreboard.h"

#include <check.h>

#include "check_main.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

START_TEST(new_is_zeroed_and_starting)
{
    struct scoreboard *sb = scoreboard_new("hello");
    static const struct fnsdk_scoreboard_slot zero;
    struct stat st;

    ck_assert_ptr_nonnull(sb);
    ck_assert_ptr_nonnull(sb->slot);
    ck_assert_int_ge(sb->fd, 0);
    ck_assert_uint_eq(FNSDK_SCOREBOARD_LOAD(sb->slot->state), FNSDK_SCOREBOARD_STARTING);
    ck_assert_uint_eq(FNSDK_SCOREBOARD_LOAD(sb->slot->magic), 0);
    ck_assert_uint_eq(FNSDK_SCOREBOARD_LOAD(sb->slot->stop_req), 0);
    ck_assert_int_eq(memcmp(sb->slot, &zero, sizeof(zero)), 0);
    /* Exactly one slot, and kept out of every other child. */
    ck_assert_int_eq(fstat(sb->fd, &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)sizeof(struct fnsdk_scoreboard_slot));
    ck_assert_int_eq(fcntl(sb->fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    scoreboard_free(sb);
}
END_TEST

START_TEST(each_instance_own_slot)
{
    struct scoreboard *a = scoreboard_new("hello"), *b = scoreboard_new("hello");

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_ne(a->fd, b->fd);
    FNSDK_SCOREBOARD_STORE(a->slot->state, (uint32_t)FNSDK_SCOREBOARD_BUSY);
    ck_assert_uint_eq(FNSDK_SCOREBOARD_LOAD(b->slot->state), FNSDK_SCOREBOARD_STARTING);
    scoreboard_free(a);
    scoreboard_free(b);
}
END_TEST

/* Maps FD as the instance does. */
static struct fnsdk_scoreboard_slot *map_as_instance(int fd)
{
    void *m =
        mmap(NULL, sizeof(struct fnsdk_scoreboard_slot), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

    ck_assert_msg(m != MAP_FAILED, "mmap: %s", strerror(errno));
    return m;
}

START_TEST(instance_writes_are_seen)
{
    struct scoreboard *sb = scoreboard_new("hello");
    struct fnsdk_scoreboard_slot *inst;

    ck_assert_ptr_nonnull(sb);
    inst = map_as_instance(sb->fd);
    ck_assert_ptr_ne(inst, sb->slot);

    inst->version = FNSDK_SCOREBOARD_VERSION;
    FNSDK_SCOREBOARD_STORE(inst->magic, FNSDK_SCOREBOARD_MAGIC);
    FNSDK_SCOREBOARD_STORE(inst->ready_ns, INT64_C(123456789));
    FNSDK_SCOREBOARD_STORE(inst->idle_since_ns, INT64_C(123456789));
    FNSDK_SCOREBOARD_STORE(inst->state, (uint32_t)FNSDK_SCOREBOARD_IDLE);
    ck_assert_uint_eq(FNSDK_SCOREBOARD_LOAD(sb->slot->magic), FNSDK_SCOREBOARD_MAGIC);
    ck_assert_uint_eq(sb->slot->version, FNSDK_SCOREBOARD_VERSION);
    ck_assert_uint_eq(FNSDK_SCOREBOARD_LOAD(sb->slot->state), FNSDK_SCOREBOARD_IDLE);
    ck_assert_int_eq(FNSDK_SCOREBOARD_LOAD(sb->slot->ready_ns), 123456789);

    FNSDK_SCOREBOARD_STORE(inst->req_start_ns, INT64_C(987654321012));
    FNSDK_SCOREBOARD_STORE(inst->state, (uint32_t)FNSDK_SCOREBOARD_BUSY);
    ck_assert_uint_eq(FNSDK_SCOREBOARD_LOAD(sb->slot->state), FNSDK_SCOREBOARD_BUSY);
    ck_assert_int_eq(FNSDK_SCOREBOARD_LOAD(sb->slot->req_start_ns), INT64_C(987654321012));
    __atomic_add_fetch(&inst->requests, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&inst->busy_ns, UINT64_C(5000000000), __ATOMIC_RELAXED);
    ck_assert_uint_eq(FNSDK_SCOREBOARD_LOAD(sb->slot->requests), 1);
    ck_assert_uint_eq(FNSDK_SCOREBOARD_LOAD(sb->slot->busy_ns), UINT64_C(5000000000));

    /* And the one word the gateway writes reaches the instance. */
    FNSDK_SCOREBOARD_STORE(sb->slot->stop_req, 1u);
    ck_assert_uint_eq(FNSDK_SCOREBOARD_LOAD(inst->stop_req), 1);

    ck_assert_int_eq(munmap(inst, sizeof(*inst)), 0);
    scoreboard_free(sb);
}
END_TEST

START_TEST(mapping_survives_close_fd)
{
    /* The supervisor closes its fd after the spawn and keeps reading. */
    struct scoreboard *sb = scoreboard_new("hello");
    struct fnsdk_scoreboard_slot *inst;

    ck_assert_ptr_nonnull(sb);
    inst = map_as_instance(sb->fd);
    scoreboard_close_fd(sb);
    ck_assert_int_eq(sb->fd, -1);
    scoreboard_close_fd(sb); /* twice is harmless */
    ck_assert_int_eq(sb->fd, -1);
    FNSDK_SCOREBOARD_STORE(inst->state, (uint32_t)FNSDK_SCOREBOARD_STOPPING);
    ck_assert_uint_eq(FNSDK_SCOREBOARD_LOAD(sb->slot->state), FNSDK_SCOREBOARD_STOPPING);
    ck_assert_int_eq(munmap(inst, sizeof(*inst)), 0);
    scoreboard_free(sb);
    scoreboard_close_fd(NULL);
}
END_TEST

START_TEST(sealed_against_resize)
{
    struct scoreboard *sb = scoreboard_new("hello");
    struct stat st;
    int seals;

    ck_assert_ptr_nonnull(sb);
    seals = fcntl(sb->fd, F_GET_SEALS);
    ck_assert_int_ge(seals, 0);
    ck_assert_int_eq(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
                     F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);

    /* An instance cannot shrink it under the supervisor's mapping ... */
    errno = 0;
    ck_assert_int_eq(ftruncate(sb->fd, 0), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(ftruncate(sb->fd, (off_t)sizeof(struct fnsdk_scoreboard_slot) - 8), -1);
    ck_assert_int_eq(errno, EPERM);
    /* ... nor grow it, nor lift the seals. */
    ck_assert_int_eq(ftruncate(sb->fd, (off_t)sizeof(struct fnsdk_scoreboard_slot) * 2), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(fcntl(sb->fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
    ck_assert_int_eq(errno, EPERM);
    ck_assert_int_eq(fstat(sb->fd, &st), 0);
    ck_assert_int_eq(st.st_size, (off_t)sizeof(struct fnsdk_scoreboard_slot));
    /* The slot is still readable (no SIGBUS). */
    ck_assert_uint_eq(FNSDK_SCOREBOARD_LOAD(sb->slot->state), FNSDK_SCOREBOARD_STARTING);

    /* The same through a descriptor the instance would hold. */
    {
        int dup_fd = dup(sb->fd);
        ck_assert_int_ge(dup_fd, 0);
        ck_assert_int_eq(ftruncate(dup_fd, 0), -1);
        ck_assert_int_eq(errno, EPERM);
        close(dup_fd);
    }
    scoreboard_free(sb);
}
END_TEST

START_TEST(free_null)
{
    scoreboard_free(NULL);
    scoreboard_close_fd(NULL);
}
END_TEST

static Suite *scoreboard_suite(void)
{
    Suite *s = suite_create("scoreboard");
    TCase *tc;

    tc = tcase_create("slot");
    tcase_add_test(tc, new_is_zeroed_and_starting);
    tcase_add_test(tc, each_instance_own_slot);
    tcase_add_test(tc, instance_writes_are_seen);
    tcase_add_test(tc, mapping_survives_close_fd);
    suite_add_tcase(s, tc);

    tc = tcase_create("seal");
    tcase_add_test(tc, sealed_against_resize);
    suite_add_tcase(s, tc);

    tc = tcase_create("free");
    tcase_add_test(tc, free_null);
    suite_add_tcase(s, tc);

    return s;
}

CHECK_MAIN(scoreboard_suite)
