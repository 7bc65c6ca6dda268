"""An instance whose database channel the pool closed is replaced before it
takes another request (issue 7 point 8), through a real nginx and a real
Postgres.  The pool closes a channel for a protocol error (here a second
query before the first one's answer was read, and garbage), for unread
answers and when it restarts; each time, the instance holding that channel
must leave instead of answering its next request 503 with SQLSTATE 08006.
One instance at most, so the request after the close reaches the same
instance unless it left.  About 3 s for the four tests.
"""

from __future__ import annotations

import os
import signal

import pytest

from fngate_harness import wait_for
from test_db import db_stack, get

SELECT_1 = "0000000d510000000853454c4543542031"
CLOSERS = {
    "a second query before the answer": SELECT_1 * 2,
    "unknown frame type": "0000000158",
}


def close_own_channel(gw, ngx, hexdata):
    """Has dbfn's one instance write HEXDATA to its channel and wait until
    the pool closed it; returns that instance's pid."""
    status, body, r = get(ngx, f"/fn/dbfn/raw?hex={hexdata}")
    assert status == 200 and body["eof"], f"the pool did not close the channel: {r}"
    pid = body["pid"]
    gw.wait_log(lambda ln: f"pid {pid}] database channel closed" in ln, timeout=3.0,
                what="the pool's line for the closed channel")
    return pid


@pytest.mark.parametrize("what", CLOSERS)
def test_request_after_the_pool_closed_the_channel_succeeds(stack, build, users_db, what):
    gw, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",),
                       defaults={"max_instances": 1})
    status, body, _ = get(ngx, "/fn/dbfn/sleep?s=0")
    assert status == 200, body
    pid = close_own_channel(gw, ngx, CLOSERS[what])
    # At once, while the instance may still be between requests.
    status, body, _ = get(ngx, "/fn/dbfn/sleep?s=0")
    assert status == 200, f"the first request after the close: {status} {body}"
    assert body["pid"] != pid, "served by the instance whose channel was closed"
    gw.wait_log(lambda ln: f"[fn dbfn pid {pid}]" in ln and "database channel was closed: "
                "leaving" in ln, what="the instance's line saying why it left")
    gw.wait_log(lambda ln: f"[fn dbfn pid {pid}] exited with status 0" in ln,
                what="its exit, clean and not counted as a crash")


def test_idle_instance_leaves_when_the_pool_closes_its_channel(stack, build, users_db):
    """Without any further request: waiting in epoll, the instance sees the
    close and leaves (nothing is ever accepted with a dead channel)."""
    gw, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",),
                       defaults={"max_instances": 1})
    pid = get(ngx, "/fn/dbfn/sleep?s=0")[1]["pid"]
    # Written without waiting for the pool: it closes the channel while
    # the instance has answered and waits for the next request.
    status, body, r = get(ngx, "/fn/dbfn/noread?s=0&hex=" + SELECT_1 * 2)
    assert status == 200 and body["wrote"] == len(SELECT_1), r
    gw.wait_log(lambda ln: f"pid {pid}] database channel closed" in ln, timeout=3.0,
                what="the pool's line for the closed channel")
    wait_for(lambda: pid not in gw.instances("dbfn"), 3.0, interval=0.02,
             what="the instance to leave by itself")
    status, body, _ = get(ngx, "/fn/dbfn/sleep?s=0")
    assert status == 200 and body["pid"] != pid, (status, body)


def test_unserved_instances_leaving_with_the_pool_are_not_crashes(stack, build, users_db):
    """min_instances keeps instances that never served: when the pool dies
    their channels close and they leave at once, maybe before the supervisor
    has reaped the pool.  That is no crash (no backoff, no "cannot start"
    503): the first requests after the pool is back are served."""
    gw, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",),
                       defaults={"min_instances": 3, "max_instances": 3})
    def pools_started():
        return gw.log().count("fngate pool: started:")

    for round_ in range(3):
        wait_for(lambda: len(gw.instances("dbfn")) == 3, 5.0, interval=0.02,
                 what="three warm instances")
        started = pools_started()
        os.kill(gw.pool_pid(), signal.SIGKILL)
        wait_for(lambda: pools_started() > started, 5.0, interval=0.02,
                 what="the new pool's start line")
        for _ in range(3):
            status, body, _ = get(ngx, "/fn/dbfn/sleep?s=0")
            assert status == 200, f"round {round_}: {status} {body}"
    crashes = [ln for ln in gw.log().splitlines() if "[fn dbfn pid" in ln and "crash" in ln]
    assert not crashes, crashes
