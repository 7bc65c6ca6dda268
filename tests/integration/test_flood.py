"""A function that floods its stderr must not starve the supervisor (issue 6.5).

One function writes stderr as fast as it can from two instances while another
function cold-starts 20 times: its cold-start median stays within 3x the
median measured without the flood, its idle instances are still reaped on
time, the log does not grow by the flood, and one log line says how much was
dropped.  Runs in about 15 s.
"""

from __future__ import annotations

import re
import signal
import statistics
import threading
import time

from fngate_harness import wait_for

IDLE = 0.15  # the cold function's idle_timeout, seconds


def cold_starts(gw, ngx, n):
    """N requests to "cold", each from zero instances; returns (latencies,
    reap waits) in seconds."""
    lat, reaps = [], []
    for _ in range(n):
        t0 = time.monotonic()
        wait_for(lambda: gw.instances("cold") == [], 10, interval=0.005,
                 what="the cold function's instance to be reaped")
        reaps.append(time.monotonic() - t0)
        r = ngx.get("/fn/cold", timeout=10)
        assert r.status == 200, r
        lat.append(r.elapsed)
    return lat, reaps


def test_stderr_flood_does_not_slow_another_functions_cold_start(stack, build):
    gw, ngx = stack({"cold": build.handler("hello"), "flood": build.testfn},
                    sections={"cold": {"idle_timeout": f"{int(IDLE * 1000)}ms"},
                              "flood": {"max_instances": 2}})
    # Warm the page cache and nginx first: the first start is not a figure.
    assert ngx.get("/fn/cold").status == 200
    base, base_reaps = cold_starts(gw, ngx, 20)
    base_med = statistics.median(base)

    log_before = gw.log_path.stat().st_size
    results = []

    def flood():
        results.append(ngx.get("/fn/flood?flood=7000", timeout=30))

    flooders = [threading.Thread(target=flood) for _ in range(2)]
    for t in flooders:
        t.start()
    wait_for(lambda: len(gw.instances("flood")) == 2, 5, what="two flooding instances")
    time.sleep(0.3)  # well into the flood
    during, reaps = cold_starts(gw, ngx, 20)
    flooding_all_along = all(t.is_alive() for t in flooders)
    for t in flooders:
        t.join(40)
    med = statistics.median(during)

    assert flooding_all_along, "the flood ended before the 20 cold starts did: not measured"
    assert [r.status for r in results] == [200, 200], results
    written = sum(r.json()["written"] for r in results)
    assert written > 1_000_000, f"the flood wrote only {written} bytes: not a flood"
    assert med <= 3 * base_med + 0.002, (
        f"cold-start median {med * 1000:.2f} ms during the flood vs {base_med * 1000:.2f} ms "
        f"without it: {sorted(round(x * 1000, 2) for x in during)}")
    # Reaped on time: idle_timeout plus a tick or two, generously bounded.
    assert max(reaps) < IDLE + 1.5, f"reaping ran late during the flood: {max(reaps):.3f}s"

    grown = gw.log_path.stat().st_size - log_before
    assert grown < 8 * 1024 * 1024, f"the log grew by {grown} bytes during the flood"
    assert gw.stop(signal.SIGTERM, timeout=20) == 0
    drops = re.findall(r"\[fn flood pid \d+\] output over its budget \(32 KiB/s, burst 256 "
                       r"KiB\): dropped (\d+) bytes in (\d+) lines", gw.log())
    assert drops, "no log line says how much of the flood was dropped:\n" + gw.log_tail()
    dropped = sum(int(b) for b, _ in drops)
    # Every byte is accounted for: logged whole lines plus what was dropped.
    logged = gw.log().count("] flood: this function writes its stderr")
    line_len = len("flood: this function writes its stderr as fast as it can, "
                   "and the gateway must stay on time for everyone else\n")
    assert logged * line_len + dropped == written, (logged, dropped, written)
    # What reached the log is what the budget allows: 2 instances x (burst +
    # rate x 8 s) at 128 bytes a line at least.
    assert logged <= 2 * (256 * 1024 + 32 * 1024 * 8) // 128, f"{logged} flood lines logged"
    print(f"cold start median {base_med * 1000:.2f} ms without the flood, {med * 1000:.2f} ms "
          f"with it; {written} bytes written, {dropped} dropped, {logged} lines logged")
