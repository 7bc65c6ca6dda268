"""Cold bursts (issue 11 point 3): 64 requests at once to a function with no
instance and max_instances = 8, through a real nginx.  What a user sees:
every request answered 200, never more than max_instances processes, and
every instance that served the burst leaving a line in the log with its
status, uptime and requests.  The second burst comes after the first one's
instances were reaped, when the supervisor knows the function's request and
start-up times (the estimate of gateway/scale.c); the first knows nothing.

Once with instances exec'd, once with a handler.so (the first instance is
the gateway's spare process).  Timing is never asserted
(tests/bench/bench_core.sh (e) measures it).  About 2 s.
"""

from __future__ import annotations

import collections
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from fngate_harness import Sampler, wait_for

N = 64
CAP = 8
EXIT = re.compile(r"\[fn hello pid (\d+)\] exited with status (\d+) after ([0-9.]+)s, "
                  r"(\d+) requests \(idle\)")


def cold_burst(ngx):
    """N GETs released together by a barrier; returns their statuses and bodies."""
    gate = threading.Barrier(N)

    def one(_):
        gate.wait(10)
        try:
            r = ngx.get("/fn/hello", timeout=30)
        except OSError as e:
            return -1, repr(e)
        return r.status, r.body

    with ThreadPoolExecutor(max_workers=N) as pool:
        return list(pool.map(one, range(N)))


@pytest.mark.parametrize("start", ["exec", "spare"])
def test_cold_burst_of_64_with_max_instances_8(stack, build, start):
    # spare: hello has a handler.so, so the burst's first instance is the
    # gateway's waiting spare process and the others are exec'd
    so = {"shared_objects": {"hello": build.handler_so("hello")}} if start == "spare" else {}
    gw, ngx = stack({"hello": build.handler("hello")},
                    sections={"hello": {"max_instances": CAP, "idle_timeout": "300ms"}}, **so)
    seen = set()
    for burst in (1, 2):
        wait_for(lambda: gw.instances("hello") == [], 5.0, interval=0.02,
                 what=f"no instance of hello before burst {burst}")
        sampler = Sampler(lambda: gw.instances("hello"), interval=0.002)
        sampler.start()
        try:
            results = cold_burst(ngx)
        finally:
            samples = sampler.stop()

        statuses = collections.Counter(s for s, _ in results)
        assert statuses == {200: N}, f"burst {burst}: {statuses}; {results[:2]}\n{gw.log_tail()}"
        assert all(json.loads(b) == {"hello": "world"} for _, b in results)
        peak = max(len(s) for s in samples)
        assert 1 <= peak <= CAP, f"burst {burst}: {peak} instances at once, max_instances {CAP}"
        seen.update(p for s in samples for p in s)

    # Every instance goes after idle_timeout, and says so (the line comes
    # once the supervisor has reaped it, just after it left /proc).
    wait_for(lambda: gw.instances("hello") == [], 5.0, interval=0.02,
             what="the instances to be reaped after the bursts")

    def logged():
        exits = {int(m.group(1)): m for m in EXIT.finditer(gw.log())}
        return exits if seen <= set(exits) else None
    try:
        exits = wait_for(logged, 5.0, interval=0.05, what="an exit line for every instance")
    except AssertionError:
        raise AssertionError(f"instances seen: {sorted(seen)}\n{gw.log_tail()}") from None
    assert all(m.group(2) == "0" and float(m.group(3)) > 0 for m in exits.values())
    assert sum(int(m.group(4)) for m in exits.values()) == 2 * N, gw.log_tail()
    assert gw.running()
