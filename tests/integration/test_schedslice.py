"""The supervisor's short scheduling slice (schedslice.c): it and the spare
waiting for an assignment wake promptly under a burst (bench_core.sh (e)'s
trace: without it the supervisor's callback for a cold burst's first
connection came 1.2 to 1.5 ms after the first write in 9 of 30 bursts, and
0.25 to 0.64 ms in all 30 with it), while a function's code runs with the
kernel's default slice whichever way its instance started.

Needs a kernel that shows slices in /proc/PID/sched (Linux 6.12 or later
with CONFIG_SCHED_DEBUG); otherwise it skips with one line.
"""

from __future__ import annotations

import os

import pytest

from fngate_harness import wait_for

SHORT_NS = 100000


def slice_ns(pid) -> int | None:
    try:
        with open(f"/proc/{pid}/sched") as f:
            for line in f:
                if line.startswith("se.slice"):
                    return int(line.split(":")[1])
    except OSError:
        return None
    return None


def kernel_at_least(major, minor) -> bool:
    v = os.uname().release.split("-")[0].split(".")
    return (int(v[0]), int(v[1])) >= (major, minor)


def test_supervisor_and_spare_short_instances_default(stack, build):
    default = slice_ns("self")
    if default is None or not kernel_at_least(6, 12):
        pytest.skip(f"kernel {os.uname().release} shows no custom slices in /proc/PID/sched "
                    "(needs Linux 6.12 or later with CONFIG_SCHED_DEBUG)")
    assert default != SHORT_NS, "the test runner itself has the short slice"
    hello = build.handler("hello")
    gw, ngx = stack({"hello": hello, "helloso": hello},
                    shared_objects={"helloso": build.handler_so("hello")})
    wait_for(lambda: len(gw.spares()) == 1, 5, what="one spare process")
    spare = gw.spares()[0]
    assert slice_ns(gw.pid) == SHORT_NS, "the supervisor"
    assert slice_ns(spare) == SHORT_NS, "the spare waiting for an assignment"

    r = ngx.get("/fn/hello")
    assert r.status == 200, r
    (inst,) = gw.instances("hello")
    assert slice_ns(inst) == default, "an exec'd instance"

    r = ngx.get("/fn/helloso")
    assert r.status == 200, r
    assert gw.instances("helloso") == [spare], "the spare did not become the instance"
    assert slice_ns(spare) == default, "a spare-born instance"
    # and the spare's replacement waits with the short one again
    wait_for(lambda: len(gw.spares()) == 1, 5, what="a replacement spare")
    assert slice_ns(gw.spares()[0]) == SHORT_NS, "the replacement spare"
