"""The queue police (gateway/backlog.c, issue 11 points 4 and 5): a request
that has waited queue_timeout is answered 503 at the deadline, not when an
instance frees up, and a queue beyond queue_size is answered 503 by the
gateway, never nginx's 502.  Both carry Retry-After and a JSON body, and
the function is not run for them.  Time bounds are generous: the figures
(within 50 ms of the deadline) are bench_core.sh's.
"""

from __future__ import annotations

import collections
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from fngate_harness import wait_for


def test_queue_timeout_answered_at_the_deadline(stack, build):
    gw, ngx = stack({"t": build.testfn},
                    sections={"t": {"max_instances": 1, "queue_timeout": "500ms"}})
    assert ngx.get("/fn/t").status == 200  # warm: one instance
    pool = ThreadPoolExecutor(max_workers=2)
    busy = pool.submit(ngx.get, "/fn/t?sleep=3000", timeout=30)
    time.sleep(0.3)  # the one instance is busy for 3 s
    r = ngx.get("/fn/t?stderr=queued-request-ran", timeout=30)
    assert r.status == 503, r
    assert r.headers.get("retry-after") == "1", r.headers
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    assert "no instance free: waited" in r.json()["error"], r.json()
    assert "(queue_timeout 500 ms)" in r.json()["error"], r.json()
    # At the deadline, long before the instance is free (2.7 s from now).
    assert 0.45 <= r.elapsed < 1.8, f"503 after {r.elapsed:.3f}s"
    assert busy.result(timeout=30).status == 200
    # The function never ran for it, not even once the instance was free.
    assert ngx.get("/fn/t").status == 200
    assert "queued-request-ran" not in gw.log()
    assert gw.wait_log(lambda ln: "[fn t]" in ln and "past queue_timeout" in ln,
                       what="the police's log line")
    metrics = ngx.get("/_fngate/metrics").body.decode()
    assert 'fngate_rejected_total{function="t",reason="queue_timeout"} 1\n' in metrics, metrics


def test_overload_is_503_never_502(stack, build):
    gw, ngx = stack({"t": build.testfn},
                    sections={"t": {"max_instances": 1, "queue_size": 4}})
    n = 24
    start = threading.Barrier(n)

    def call(i):
        start.wait()
        return ngx.get("/fn/t?sleep=300", timeout=30)

    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(call, range(n)))
    codes = collections.Counter(r.status for r in results)
    assert set(codes) <= {200, 503}, codes
    assert codes[503] >= n // 2, codes
    assert codes[200] >= 1, codes
    for r in results:
        if r.status == 503:
            # The gateway's answer, not the handler's: it never ran for them.
            assert r.headers.get("retry-after") == "1", r.headers
            assert r.json() == {"error": "function t is overloaded: its queue is full "
                                         "(queue_size 4)"}, r.json()
        else:
            assert r.json()["slept"] == 300, r.json()
    assert gw.wait_log(lambda ln: "[fn t]" in ln and "beyond queue_size" in ln,
                       what="the police's log line")
    metrics = ngx.get("/_fngate/metrics").body.decode()
    line = f'fngate_rejected_total{{function="t",reason="overload"}} {codes[503]}\n'
    assert line in metrics, metrics
