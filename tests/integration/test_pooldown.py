"""While the gateway's pool process is not running, a function's queries get
a prompt FG005 error, not a wait of request_timeout (issue 7; before the
fix, the hand-over of each new instance's channel stayed queued in the
supervisor and the query waited 30 s for its 504).  The function keeps its
instance while the pool is down, and queries succeed again, without a
restart, as soon as the pool is back.

The pool is made unstartable the way an operator could: fngate starts the
fngate-pool next to its own binary, so fngate runs here from a folder of its
own without one (exec fails), and one is put there later.  Real nginx, real
Postgres.  About 10 s (the supervisor's restart backoff).
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from fngate_harness import Build, make_dir, wait_for
from test_db import get

POOL_DOWN = {"error": "the database pool is not running", "sqlstate": "FG005"}


class LonelyBuild(Build):
    """The build, but fngate is a copy in BINDIR, beside which fngate-pool
    is there only when the test puts it there."""

    def __init__(self, base: Build, bindir):
        super().__init__(base.dir)
        self.bindir = make_dir(bindir)
        self.real = base
        shutil.copy2(base.fngate, self.bindir / "fngate")

    @property
    def fngate(self):
        return self.bindir / "fngate"

    def pool_there(self, there: bool):
        dst = self.bindir / "fngate-pool"
        if there:
            shutil.copy2(self.real.dir / "gateway" / "fngate-pool", self.bindir / ".pool-t")
            os.chmod(self.bindir / ".pool-t", 0o755)
            os.rename(self.bindir / ".pool-t", dst)
        elif dst.exists():
            dst.unlink()


@pytest.fixture
def build(run_dir):  # noqa: F811 (this module's gateways run the lonely fngate)
    return LonelyBuild(Build.locate(), run_dir / "bin")


def assert_pool_down(ngx, what):
    t0 = time.monotonic()
    status, body, r = get(ngx, "/fn/dbfn/sleep?s=0", timeout=40.0)
    took = time.monotonic() - t0
    assert status == 503 and body == POOL_DOWN, f"{what}: {status} {body} {r}"
    # request_timeout is 30 s: the old answer was a 504 after it.
    assert took < 3.0, f"{what}: the error took {took:.1f} s"
    return r


def test_queries_fail_fast_while_the_pool_is_down_and_recover(stack, build, users_db):
    gw, ngx = stack({"dbfn": build.real.dbfn}, gateway={"database_url": users_db.dsn()},
                    defaults={"max_instances": 1})
    wait_for(lambda: "pool: cannot exec" in gw.log() or "cannot exec" in gw.log(), 5.0,
             what="the pool's failed exec in the log")
    assert_pool_down(ngx, "no pool binary")
    pid = gw.instances("dbfn")
    assert len(pid) == 1, pid
    for i in range(3):
        assert_pool_down(ngx, f"no pool binary, query {i + 2}")
    assert gw.instances("dbfn") == pid, "the instance was replaced while the pool was down"

    # The pool binary appears: the next restart (backoff up to 5 s) runs it
    # and the same instance's next query succeeds.
    build.pool_there(True)
    wait_for(lambda: "fngate pool: started:" in gw.log(), 8.0, interval=0.05,
             what="the pool's start line")

    def served():
        status, body, _ = get(ngx, "/fn/dbfn/sleep?s=0")
        assert status in (200, 503), (status, body)
        assert status == 200 or body == POOL_DOWN, body
        return status == 200

    wait_for(served, 3.0, interval=0.05, what="a query served once the pool runs")
    status, body, _ = get(ngx, "/fn/dbfn/sleep?s=0")
    assert status == 200 and body["pid"] == pid[0], (status, body)

    # Killed while its binary is gone again: it cannot come back, and
    # queries get FG005 at once, from a new instance (the old one's channel
    # died with the pool) that then keeps its channel.
    build.pool_there(False)
    os.kill(gw.pool_pid(), signal.SIGKILL)
    wait_for(lambda: gw.log().count("cannot exec") >= 2, 5.0, interval=0.05,
             what="the failed restart")
    # The instance whose channel died with the pool leaves (a query racing
    # with the kill gets 08006: the pool died under it).
    wait_for(lambda: pid[0] not in gw.instances("dbfn"), 3.0, interval=0.02,
             what="the instance whose channel died to leave")
    assert_pool_down(ngx, "pool killed, no binary")
    wait_for(lambda: len(gw.instances("dbfn")) == 1, 3.0, interval=0.02,
             what="the one new instance")
    pid = gw.instances("dbfn")
    for i in range(3):
        assert_pool_down(ngx, f"pool killed, no binary, query {i + 2}")
    assert gw.instances("dbfn") == pid, "the instance was replaced while the pool was down"
    build.pool_there(True)
    wait_for(served, 8.0, interval=0.05, what="a query served once the pool is back")


def test_garbage_on_the_channel_while_the_pool_is_down_costs_only_its_sender(stack, build,
                                                                             users_db):
    # While no pool runs, the supervisor itself reads the instances' frames
    # to answer FG005: a hostile function's garbage (a 2 GiB length) must
    # close that function's channel only, with the supervisor up and every
    # other function still answered FG005 at once.
    gw, ngx = stack({"dbfn": build.real.dbfn, "hostile": build.real.hostile},
                    gateway={"database_url": users_db.dsn()}, defaults={"max_instances": 1})
    wait_for(lambda: "cannot exec" in gw.log(), 5.0, what="the pool's failed exec in the log")
    assert_pool_down(ngx, "before the garbage")
    status, body, _ = get(ngx, "/fn/hostile?attack=garbage", timeout=10.0)
    assert status == 200, (status, body)
    assert body["errno"] == 0 and body["query_ok"] is False, body
    assert body["sqlstate"] == "08006", body  # its channel is closed
    assert gw.running()
    for i in range(3):
        assert_pool_down(ngx, f"after the garbage, query {i + 1}")
