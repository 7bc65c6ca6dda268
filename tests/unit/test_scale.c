/*
 * Unit tests for the scaling decisions: spawn counts for cold starts,
 * bursts, the max_instances cap, min_instances, backoff and draining, and
 * idle reaping that never goes below min_instances.
 */
#include "config.h"

#include <check.h>

#include "check_main.h"
#include <stdlib.h>

#include "scale.h"

static struct scale_state st(int live, int stopping, int starting, int idle, int queued, int max,
                             int min)
{
    struct scale_state s = {.live = live,
                            .stopping = stopping,
                            .starting = starting,
                            .idle = idle,
                            .queued = queued,
                            .max_instances = max,
                            .min_instances = min,
                            .backoff = false};
    return s;
}

START_TEST(cold_start_spawns_one_per_waiting_connection)
{
    struct scale_state s = st(0, 0, 0, 0, 1, 8, 0);
    ck_assert_int_eq(scale_spawn_count(&s), 1);
    s.queued = 3;
    ck_assert_int_eq(scale_spawn_count(&s), 3);
}
END_TEST

START_TEST(burst_is_capped_by_max_instances)
{
    struct scale_state s = st(0, 0, 0, 0, 32, 4, 0);
    ck_assert_int_eq(scale_spawn_count(&s), 4);
    s = st(3, 0, 0, 0, 32, 4, 0);
    ck_assert_int_eq(scale_spawn_count(&s), 1);
    s = st(4, 0, 0, 0, 32, 4, 0);
    ck_assert_int_eq(scale_spawn_count(&s), 0);
}
END_TEST

START_TEST(stopping_instances_count_against_the_cap)
{
    struct scale_state s = st(2, 2, 0, 0, 10, 4, 0);
    ck_assert_int_eq(scale_spawn_count(&s), 0);
    s = st(1, 2, 0, 0, 10, 4, 0);
    ck_assert_int_eq(scale_spawn_count(&s), 1);
}
END_TEST

START_TEST(idle_and_starting_instances_cover_the_queue)
{
    struct scale_state s = st(2, 0, 0, 2, 2, 8, 0);
    ck_assert_int_eq(scale_spawn_count(&s), 0);
    s = st(3, 0, 1, 2, 5, 8, 0);
    ck_assert_int_eq(scale_spawn_count(&s), 2);
    s = st(1, 0, 1, 0, 1, 8, 0);
    ck_assert_int_eq(scale_spawn_count(&s), 0);
}
END_TEST

START_TEST(unknown_queue_means_at_least_one)
{
    struct scale_state s = st(0, 0, 0, 0, -1, 8, 0);
    ck_assert_int_eq(scale_spawn_count(&s), 1);
    s = st(1, 0, 0, 1, -1, 8, 0);
    ck_assert_int_eq(scale_spawn_count(&s), 0);
}
END_TEST

START_TEST(min_instances_are_kept)
{
    struct scale_state s = st(0, 0, 0, 0, 0, 8, 2);
    ck_assert_int_eq(scale_spawn_count(&s), 2);
    s = st(1, 0, 0, 1, 0, 8, 2);
    ck_assert_int_eq(scale_spawn_count(&s), 1);
    s = st(2, 0, 0, 2, 0, 8, 2);
    ck_assert_int_eq(scale_spawn_count(&s), 0);
    /* The queue wins when it needs more than the minimum. */
    s = st(0, 0, 0, 0, 5, 8, 2);
    ck_assert_int_eq(scale_spawn_count(&s), 5);
}
END_TEST

/* S with the function's mean request time and start-up time known. */
static struct scale_state timed(struct scale_state s, int64_t svc_ns, int64_t start_ns)
{
    s.svc_ns = svc_ns;
    s.start_ns = start_ns;
    return s;
}

START_TEST(cold_burst_of_short_requests_needs_fewer_instances)
{
    /* 10 us requests (40 us of an instance's time), 1 ms starts: one
     * instance serves 25 while another starts, so a burst of 64 needs 3 in
     * all, not 8. */
    struct scale_state s = timed(st(0, 0, 0, 0, 64, 8, 0), 10000, 1000000);
    ck_assert_int_eq(scale_spawn_count(&s), 3);
    /* The first one, already starting, counts; so do the others. */
    s = timed(st(1, 0, 1, 0, 64, 8, 0), 10000, 1000000);
    ck_assert_int_eq(scale_spawn_count(&s), 2);
    s = timed(st(3, 0, 3, 0, 64, 8, 0), 10000, 1000000);
    ck_assert_int_eq(scale_spawn_count(&s), 0);
    /* Once one is ready (steady load), the queue alone decides. */
    s = timed(st(3, 0, 0, 0, 64, 8, 0), 10000, 1000000);
    ck_assert_int_eq(scale_spawn_count(&s), 5);
    /* min_instances still wins. */
    s = timed(st(0, 0, 0, 0, 64, 8, 5), 10000, 1000000);
    ck_assert_int_eq(scale_spawn_count(&s), 5);
}
END_TEST

START_TEST(cold_burst_keeps_its_estimate_once_an_instance_serves)
{
    /* Seen in bench_core.sh (e): the first instance of a cold burst of 64
     * ready and busy, 51 still queued; taken for steady load, that started
     * all 7 others, most of them ready after the burst was served. */
    struct scale_state s = timed(st(1, 0, 0, 0, 51, 8, 0), 10000, 1000000);
    s.burst = true;
    ck_assert_int_eq(scale_spawn_count(&s), 2);
    /* Three serving (busy or idle) drain 51 within a start: none more. */
    s = timed(st(3, 0, 0, 1, 51, 8, 0), 10000, 1000000);
    s.burst = true;
    ck_assert_int_eq(scale_spawn_count(&s), 0);
    /* A queue that outgrows them still gets more, up to max_instances. */
    s = timed(st(3, 0, 0, 0, 500, 8, 0), 10000, 1000000);
    s.burst = true;
    ck_assert_int_eq(scale_spawn_count(&s), 5);
    /* Long requests: the queue decides, burst or not. */
    s = timed(st(1, 0, 0, 0, 51, 8, 0), 50000000, 1000000);
    s.burst = true;
    ck_assert_int_eq(scale_spawn_count(&s), 7);
    /* Once the queue has emptied (no burst), the queue alone decides. */
    s = timed(st(1, 0, 0, 0, 51, 8, 0), 10000, 1000000);
    ck_assert_int_eq(scale_spawn_count(&s), 7);
}
END_TEST

START_TEST(cold_burst_ends_when_served_not_at_a_lull)
{
    /* Every instance busy and the queue empty for a moment between two of
     * nginx's connects: the burst is still arriving. */
    struct scale_state s = st(2, 0, 0, 0, 0, 8, 0);
    ck_assert(!scale_burst_over(&s));
    /* Still queued, even with an instance idle: not over either. */
    s = st(2, 0, 0, 1, 3, 8, 0);
    ck_assert(!scale_burst_over(&s));
    /* An unknown queue length is someone waiting. */
    s = st(2, 0, 0, 1, -1, 8, 0);
    ck_assert(!scale_burst_over(&s));
    /* Nothing queued and an instance with nothing to do: served. */
    s = st(2, 0, 0, 1, 0, 8, 0);
    ck_assert(scale_burst_over(&s));
}
END_TEST

START_TEST(an_instance_holding_kept_connections_is_not_free_for_a_new_one)
{
    /* The one instance idle but holding a front end's kept connection: a
     * new connection gets an instance of its own, not a place behind the
     * requests that may arrive on the kept one. */
    struct scale_state s = st(1, 0, 0, 0, 1, 8, 0);
    s.kept = 1;
    ck_assert_int_eq(scale_spawn_count(&s), 1);
    /* And a cold burst it served is over, or its estimate would keep
     * counting on that instance for the new connection. */
    s.queued = 0;
    s.burst = true;
    ck_assert(scale_burst_over(&s));
    /* Still in a burst (a tick has not ended it yet) with a connection
     * queued: the estimate must not count on the instance holding kept
     * connections either (redteam4: one holding all 32 it may hold takes
     * none, and the queued request waited for its queue_timeout 503 with
     * max_instances not reached). */
    s = timed(st(1, 0, 0, 0, 1, 2, 0), 10000, 1000000);
    s.kept = 1;
    s.burst = true;
    ck_assert_int_eq(scale_spawn_count(&s), 1);
}
END_TEST

START_TEST(long_or_unknown_requests_spawn_for_the_whole_queue)
{
    /* 50 ms requests, 1 ms starts: every queued request wants its own. */
    struct scale_state s = timed(st(0, 0, 0, 0, 64, 8, 0), 50000000, 1000000);
    ck_assert_int_eq(scale_spawn_count(&s), 8);
    /* Requests a quarter of a start or longer: the same. */
    s = timed(s, 250000, 1000000);
    ck_assert_int_eq(scale_spawn_count(&s), 8);
    /* Nothing known yet (never served, never started): one per connection. */
    s = timed(s, 0, 1000000);
    ck_assert_int_eq(scale_spawn_count(&s), 8);
    s = timed(s, 40000, 0);
    ck_assert_int_eq(scale_spawn_count(&s), 8);
    /* Never more than the queue alone asks for. */
    s = timed(st(0, 0, 0, 0, 2, 8, 0), 1000, 1000000);
    ck_assert_int_eq(scale_spawn_count(&s), 1);
}
END_TEST

START_TEST(backoff_holds_every_spawn)
{
    struct scale_state s = st(0, 0, 0, 0, 5, 8, 2);
    s.backoff = true;
    ck_assert_int_eq(scale_spawn_count(&s), 0);
}
END_TEST

START_TEST(backoff_grows_then_caps)
{
    ck_assert_int_eq(scale_backoff_ms(0), 0);
    ck_assert_int_eq(scale_backoff_ms(1), 0);
    ck_assert_int_eq(scale_backoff_ms(2), 50);
    ck_assert_int_eq(scale_backoff_ms(3), 100);
    ck_assert_int_eq(scale_backoff_ms(4), 200);
    ck_assert_int_eq(scale_backoff_ms(9), 6400);
    ck_assert_int_eq(scale_backoff_ms(10), 10000);
    ck_assert_int_eq(scale_backoff_ms(11), 10000);
    ck_assert_int_eq(scale_backoff_ms(1000), 10000);
}
END_TEST

START_TEST(reap_only_past_idle_timeout)
{
    int64_t ages[] = {500, 300, 100};
    ck_assert_int_eq(scale_reap_count(ages, 3, 3, 0, 200), 2);
    ck_assert_int_eq(scale_reap_count(ages, 3, 3, 0, 1000), 0);
    ck_assert_int_eq(scale_reap_count(ages, 3, 3, 0, 100), 3);
}
END_TEST

START_TEST(reap_keeps_min_instances)
{
    int64_t ages[] = {500, 300, 100};
    ck_assert_int_eq(scale_reap_count(ages, 3, 3, 2, 50), 1);
    ck_assert_int_eq(scale_reap_count(ages, 3, 3, 3, 50), 0);
    /* Busy instances count as live: 2 idle of 4 live, min 3. */
    ck_assert_int_eq(scale_reap_count(ages, 2, 4, 3, 50), 1);
    ck_assert_int_eq(scale_reap_count(ages, 0, 0, 0, 50), 0);
}
END_TEST

static Suite *scale_suite(void)
{
    Suite *s = suite_create("scale");
    TCase *spawn = tcase_create("spawn");
    TCase *reap = tcase_create("reap");

    tcase_add_test(spawn, cold_start_spawns_one_per_waiting_connection);
    tcase_add_test(spawn, burst_is_capped_by_max_instances);
    tcase_add_test(spawn, cold_burst_of_short_requests_needs_fewer_instances);
    tcase_add_test(spawn, cold_burst_keeps_its_estimate_once_an_instance_serves);
    tcase_add_test(spawn, cold_burst_ends_when_served_not_at_a_lull);
    tcase_add_test(spawn, an_instance_holding_kept_connections_is_not_free_for_a_new_one);
    tcase_add_test(spawn, long_or_unknown_requests_spawn_for_the_whole_queue);
    tcase_add_test(spawn, stopping_instances_count_against_the_cap);
    tcase_add_test(spawn, idle_and_starting_instances_cover_the_queue);
    tcase_add_test(spawn, unknown_queue_means_at_least_one);
    tcase_add_test(spawn, min_instances_are_kept);
    tcase_add_test(spawn, backoff_holds_every_spawn);
    tcase_add_test(spawn, backoff_grows_then_caps);
    tcase_add_test(reap, reap_only_past_idle_timeout);
    tcase_add_test(reap, reap_keeps_min_instances);
    suite_add_tcase(s, spawn);
    suite_add_tcase(s, reap);
    return s;
}

CHECK_MAIN(scale_suite)
