"""Seeing inside fngate (issue 8): /_fngate/status, /_fngate/metrics, the
request log, the dashboard and `fngate status`, through a real nginx.

Prometheus and Chromium are Debian's (prometheus, chromium); a test that
needs one the machine does not have skips with one line saying so.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fngate_harness import REPO, free_port, proc_alive, stop_proc, wait_for

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict:
    """{(name, frozenset of (label, value))): float} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = frozenset(_LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric(samples: dict, name: str, **labels) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no sample {name}{labels}; have: " + ", ".join(
        sorted(f"{n}{dict(l)}" for n, l in samples if n == name))
    return samples[key]


def scrape(ngx) -> dict:
    r = ngx.get("/_fngate/metrics")
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    return parse_metrics(r.body.decode())


def status(ngx) -> dict:
    r = ngx.get("/_fngate/status")
    assert r.status == 200, r
    assert r.headers["content-type"] == "application/json", r.headers
    return json.loads(r.body)


def fn_status(st: dict, name: str) -> dict:
    for f in st["functions"]:
        if f["name"] == name:
            return f
    raise AssertionError(f"no function {name} in {[f['name'] for f in st['functions']]}")


def hammer(ngx, path, n, workers=8, headers=None):
    """N GETs of PATH from WORKERS threads; returns the list of statuses
    (-1 for a connection error)."""

    def one(_):
        try:
            return ngx.get(path, headers=headers, timeout=30).status
        except OSError:
            return -1

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(n)))


# --- exact counts ------------------------------------------------------------


def test_counts_are_exact_across_idle_reaping(stack, build):
    gw, ngx = stack({"hello": build.handler("hello")}, defaults={"idle_timeout": "300ms"})

    first = hammer(ngx, "/fn/hello", 300)
    assert first.count(200) == 300, first
    wait_for(lambda: gw.instances("hello") == [], 10, what="every hello instance idle-reaped")
    # The processes can be gone before the supervisor has handled SIGCHLD
    # and folded their slots (seen under ASan): wait for the exits to count.
    wait_for(lambda: metric(scrape(ngx), "fngate_instance_exits_total", function="hello",
                            reason="idle") >= 1, 10, what="the idle exits counted")
    s = scrape(ngx)
    assert metric(s, "fngate_requests_total", function="hello", code="200") == 300

    second = hammer(ngx, "/fn/hello", 300)
    assert second.count(200) == 300, second
    s = scrape(ngx)
    assert metric(s, "fngate_requests_total", function="hello", code="200") == 600
    assert metric(s, "fngate_request_duration_seconds_count", function="hello") == 600
    assert metric(s, "fngate_queue_wait_seconds_count", function="hello") == 600
    assert metric(s, "fngate_cold_starts_total", function="hello") >= 2
    assert metric(s, "fngate_cold_start_duration_seconds_count", function="hello") >= 2
    assert metric(s, "fngate_instance_exits_total", function="hello", reason="crash") == 0
    st = fn_status(status(ngx), "hello")
    assert st["requests"] == 600 and st["codes"] == {"200": 600}, st


def test_counts_survive_kill_9(stack, build):
    gw, ngx = stack({"t": build.testfn}, sections={"t": {"max_instances": 4}})
    received = []
    killed = 0
    for _ in range(3):
        received += hammer(ngx, "/fn/t?sleep=0", 100, workers=6)
        pids = gw.instances("t")
        assert pids, "no instance after a batch"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        wait_for(lambda: not any(proc_alive(p) and p in gw.instances("t") for p in pids), 10,
                 what="the killed instances reaped")
    received += hammer(ngx, "/fn/t?sleep=0", 50, workers=6)
    assert received.count(200) == 350, [s for s in received if s != 200]

    def settled():
        s = scrape(ngx)
        return metric(s, "fngate_instance_exits_total", function="t", reason="crash") == killed

    wait_for(settled, 10, what=f"{killed} crash exits counted")
    s = scrape(ngx)
    assert metric(s, "fngate_requests_total", function="t", code="200") == received.count(200)
    assert metric(s, "fngate_request_duration_seconds_count", function="t") == 350
    assert metric(s, "fngate_cold_starts_total", function="t") >= 4


# --- Prometheus ----------------------------------------------------------------


def _need(tool, package):
    path = shutil.which(tool)
    if not path:
        pytest.skip(f"{tool} not installed (Debian package {package})")
    return path


def test_promtool_accepts_the_exposition(stack, build):
    promtool = _need("promtool", "prometheus")
    gw, ngx = stack({"hello": build.handler("hello"), "t": build.testfn})
    assert hammer(ngx, "/fn/hello", 20).count(200) == 20
    assert ngx.get("/fn/t?noresponse=1").status == 500
    text = ngx.get("/_fngate/metrics").body
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()
    assert (r.stdout + r.stderr).decode().strip() == "", (r.stdout + r.stderr).decode()
    s = parse_metrics(text.decode())
    assert metric(s, "fngate_requests_total", function="t", code="500") == 1
    assert metric(s, "fngate_instances_max", function="hello") == 8
    assert metric(s, "fngate_build_info", version=metric_version(s)) == 1


def metric_version(s):
    return next(dict(l)["version"] for n, l in s if n == "fngate_build_info")


def test_prometheus_scrapes_and_answers(stack, build, run_dir):
    prometheus = _need("prometheus", "prometheus")
    gw, ngx = stack({"hello": build.handler("hello")})
    assert hammer(ngx, "/fn/hello", 42).count(200) == 42

    port = free_port()
    cfg = run_dir / "prometheus.yml"
    cfg.write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: fngate
    metrics_path: /_fngate/metrics
    static_configs:
      - targets: ["127.0.0.1:{ngx.port}"]
""")
    logf = open(run_dir / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={run_dir / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def query(q):
        url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": q})
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]["result"]

    try:
        def scraped_twice():
            assert proc.poll() is None, (run_dir / "prometheus.log").read_text()
            try:
                res = query('count_over_time(up{job="fngate"}[1m])')
            except OSError:
                return False
            return bool(res) and float(res[0]["value"][1]) >= 2

        wait_for(scraped_twice, 30, interval=0.2, what="two scrapes by Prometheus")
        up = query('up{job="fngate"}')
        assert [float(r["value"][1]) for r in up] == [1.0], up
        res = query('fngate_requests_total{function="hello",code="200"}')
        assert len(res) == 1, res
        assert float(res[0]["value"][1]) == 42.0, res
    finally:
        stop_proc(proc)
        logf.close()


# --- the queue gauge -------------------------------------------------------------


def test_queue_gauge_shows_the_backlog(stack, build):
    gw, ngx = stack({"slow": build.testfn}, sections={"slow": {"max_instances": 2}})
    seen = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        futs = [pool.submit(lambda: ngx.get("/fn/slow?sleep=1500", timeout=30).status)
                for _ in range(8)]

        def backlog():
            s = scrape(ngx)
            q = metric(s, "fngate_queue_length", function="slow")
            seen.append(q)
            busy = metric(s, "fngate_instances", function="slow", state="busy")
            return q == 6 and busy == 2

        # 8 callers, 2 of them served: exactly 6 wait in the backlog.
        wait_for(backlog, 10, interval=0.05,
                 what="fngate_queue_length 6 with 2 instances busy")
        s = scrape(ngx)
        assert metric(s, "fngate_instances", function="slow", state="busy") == 2
        assert metric(s, "fngate_instances_max", function="slow") == 2
        st = fn_status(status(ngx), "slow")
        assert st["queue"] >= 1 and st["instances"]["busy"] == 2, st
        assert all(0 < i["request_age_ms"] < 60000 for i in st["instance_list"]
                   if i["state"] == "busy"), st
        assert [f.result() for f in futs] == [200] * 8
    assert metric(scrape(ngx), "fngate_queue_length", function="slow") == 0
    assert max(seen) <= 8, seen  # 8 callers; under ASan all may wait for the first


# --- access --------------------------------------------------------------------


def _get_from(source_ip, port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source_ip, 0))
    try:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_non_loopback_client_is_refused(stack, build):
    gw, ngx = stack({"hello": build.handler("hello")})
    try:
        socket.create_connection(("127.0.0.1", ngx.port), timeout=2,
                                 source_address=("127.0.0.2", 0)).close()
    except OSError as e:
        pytest.skip(f"cannot connect from 127.0.0.2 on this machine: {e}")
    for path in ("/_fngate/status", "/_fngate/metrics", "/_fngate/", "/_fngate/anything"):
        code, body = _get_from("127.0.0.2", ngx.port, path)
        assert code == 403, (path, code, body)
        assert json.loads(body) == {
            "error": "forbidden: /_fngate/ answers loopback clients only"}, body
        code, body = _get_from("127.0.0.1", ngx.port, path)
        assert code == (404 if path == "/_fngate/anything" else 200), (path, code, body)
    # Functions stay open to everyone.
    code, body = _get_from("127.0.0.2", ngx.port, "/fn/hello")
    assert (code, json.loads(body)) == (200, {"hello": "world"})


# --- the request log -------------------------------------------------------------


def test_request_log_has_a_line_per_request_with_the_trace_id(stack, build, run_dir):
    log = run_dir / "requests.log"
    gw, ngx = stack({"hello": build.handler("hello"), "t": build.testfn},
                    gateway={"request_log": str(log)})
    assert ngx.get("/fn/hello/x%20y?name=a", headers={"traceparent": TRACEPARENT}).status == 200
    assert ngx.get("/fn/t?noresponse=1").status == 500
    assert ngx.get("/fn/hello", headers={"traceparent": "00-zz-bad-01"}).status == 200
    statuses = hammer(ngx, "/fn/hello", 40)
    assert statuses.count(200) == 40

    def lines():
        return [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []

    wait_for(lambda: len(lines()) >= 43, 5, what="43 request-log lines")
    time.sleep(0.1)
    got = lines()
    assert len(got) == 43, got
    fields = {"time", "function", "method", "path", "status", "duration_ms", "queue_ms", "cold",
              "pid", "request_id", "trace_id"}
    for line in got:
        assert set(line) == fields, line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]), line
        assert line["duration_ms"] >= 0 and line["queue_ms"] >= 0, line
        assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"]), line
    # Lines come in per instance, each instance's in order.
    traced = [l for l in got if l["trace_id"] is not None]
    assert len(traced) == 1, traced
    first = traced[0]
    assert first["function"] == "hello" and first["path"] == "/x y" and first["method"] == "GET"
    assert first["status"] == 200 and first["cold"] is True and first["trace_id"] == TRACE
    assert first["pid"] in gw.instances("hello")
    assert [l["status"] for l in got if l["function"] == "t"] == [500]
    assert sum(1 for l in got if l["function"] == "hello") == 42
    assert len({l["request_id"] for l in got}) == 43
    assert sum(1 for l in got if l["cold"]) == len({(l["function"], l["pid"]) for l in got})


def test_a_function_flooding_the_request_log_costs_only_its_own_lines(stack, build, run_dir):
    """Two instances of a function keep their request-log rings full of
    lines no request made, as fast as the gateway drains them.  Another
    function meanwhile is served without delay (a generous bound) and every
    one of its lines is logged; the flooder is held to request_log_rate and
    request_log_burst, and what it lost shows in
    fngate_request_log_dropped_total."""
    log = run_dir / "requests.log"
    gw, ngx = stack({"t": build.testfn, "v": build.testfn},
                    gateway={"request_log": str(log), "request_log_rate": "1000",
                             "request_log_burst": "2000"},
                    sections={"t": {"max_instances": 2, "request_timeout": "4s"}})
    assert ngx.get("/fn/v?sleep=0").status == 200
    ids = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        t0 = time.monotonic()
        floods = [pool.submit(ngx.get, "/fn/t?forge=logflood", None, 30) for _ in range(2)]
        wait_for(lambda: len(gw.instances("t")) == 2, 10, what="two flooding instances")
        time.sleep(0.3)
        for _ in range(20):
            r = ngx.get("/fn/v?sleep=0", timeout=10)
            assert r.status == 200, r
            assert r.elapsed < 1.0, f"v took {r.elapsed:.3f}s during the flood"
            ids.append(r.headers["x-request-id"])
            time.sleep(0.05)
        assert [f.result(timeout=30).status for f in floods] == [504, 504]
        elapsed = time.monotonic() - t0

    def lines():
        return [json.loads(l) for l in log.read_text().splitlines()]

    wait_for(lambda: sum(l["function"] == "v" for l in lines()) >= 21, 5,
             what="v's 21 request-log lines")
    got = lines()
    v = [l for l in got if l["function"] == "v"]
    assert len(v) == 21 and [l["request_id"] for l in v[1:]] == ids, v
    assert all(l["status"] == 200 for l in v), v
    flood = [l for l in got if l["function"] == "t" and l == {"function": "t", "pid": l["pid"],
                                                              "a": 1}]
    # Each instance wrote far more than 10,000 lines; the budget let through
    # its burst and its rate, for both instances together.
    assert 2000 <= len(flood) <= 2000 + 1000 * (elapsed + 1), (len(flood), elapsed)
    s = scrape(ngx)
    assert metric(s, "fngate_request_log_dropped_total", function="t") > 10000
    assert metric(s, "fngate_request_log_dropped_total", function="v") == 0
    gw.wait_log(lambda ln: "[fn t] request log over its budget (request_log_rate 1000 lines/s, "
                "request_log_burst 2000): dropped " in ln, what="the warning about t's budget")


def test_request_log_off_by_default_and_to_stderr(stack, build):
    gw, ngx = stack({"hello": build.handler("hello")})
    assert ngx.get("/fn/hello").status == 200
    time.sleep(0.2)
    assert '"function":"hello"' not in gw.log()
    gw2, ngx2 = stack({"hello": build.handler("hello")}, gateway={"request_log": "stderr"})
    assert ngx2.get("/fn/hello", headers={"traceparent": TRACEPARENT}).status == 200
    line = gw2.wait_log(lambda l: '"trace_id":"' + TRACE in l, what="the request-log line")
    obj = json.loads(line[line.index("{"):])
    assert obj["function"] == "hello" and obj["status"] == 200


# --- fngate status -------------------------------------------------------------


def test_fngate_status_table_and_json(stack, build):
    gw, ngx = stack({"hello": build.handler("hello"), "t": build.testfn})
    assert hammer(ngx, "/fn/hello", 25, workers=1).count(200) == 25
    r = subprocess.run([str(build.fngate), "status", "-c", str(gw.conf_path)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    rows = r.stdout.splitlines()
    assert rows[0].split() == ["function", "idle", "busy", "max", "queue", "req/s", "p50", "p99",
                               "cold", "cold_p50", "errors"], r.stdout
    hello = next(l.split() for l in rows if l.startswith("hello "))
    assert hello[3] == "8" and hello[4] == "0" and hello[10] == "0", hello
    assert any(l.startswith("t ") for l in rows), r.stdout

    r = subprocess.run([str(build.fngate), "status", "--json", "-c", str(gw.conf_path)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    h = fn_status(st, "hello")
    assert h["requests"] == 25 and h["cold_starts"] == int(hello[8]) >= 1
    assert h["settings"]["max_instances"] == 8
    assert sum(i["requests"] for i in h["instance_list"]) == 25
    assert sorted(i["pid"] for i in h["instance_list"]) == sorted(gw.instances("hello"))
    assert fn_status(st, "t")["requests"] == 0

    # --watch prints again every second until interrupted.
    p = subprocess.Popen([str(build.fngate), "status", "--watch", "-c", str(gw.conf_path)],
                         stdout=subprocess.PIPE, text=True)
    time.sleep(2.5)
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=5)
    assert p.returncode == 0
    assert out.count("function ") >= 2, out

    gw.stop()
    r = subprocess.run([str(build.fngate), "status", "-c", str(gw.conf_path)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert r.stderr.startswith(f"fngate status: cannot connect to {gw.socket_dir}/status.sock"), \
        r.stderr


# --- the dashboard ---------------------------------------------------------------


def test_dashboard_in_headless_chromium(stack, build, run_dir):
    chromium = _need("chromium", "chromium")
    gw, ngx = stack({"hello": build.handler("hello"), "t": build.testfn, "echo":
                     build.handler("echo")})
    assert hammer(ngx, "/fn/hello", 17).count(200) == 17
    page = ngx.get("/_fngate/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert b"http://" not in page.body and b"https://" not in page.body, "external asset"

    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--no-first-run", "--disable-dev-shm-usage",
            "--virtual-time-budget=4000"]
    url = f"{ngx.base_url}/_fngate/"
    with tempfile.TemporaryDirectory(dir=run_dir) as prof:
        r = subprocess.run(base + [f"--user-data-dir={prof}", "--dump-dom", url],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    for name in ("hello", "t", "echo"):
        assert f'data-fn="{name}"' in dom, dom[:3000]
    m = re.search(r'data-fn="hello".*?data-requests="(\d+)"', dom, re.S)
    assert m, dom[:3000]
    assert int(m.group(1)) == fn_status(status(ngx), "hello")["requests"] == 17

    shot = run_dir / "dashboard.png"
    with tempfile.TemporaryDirectory(dir=run_dir) as prof:
        r = subprocess.run(base + [f"--user-data-dir={prof}", f"--screenshot={shot}",
                                   "--window-size=1280,800", url],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("FNGATE_DASHBOARD_PNG")
    if keep:
        shutil.copyfile(shot, keep)


# --- the pool --------------------------------------------------------------------


def test_pool_metrics_and_traced_slow_and_failed_queries(stack, build, users_db):
    gw, ngx = stack({"dbfn": build.dbfn},
                    gateway={"database_url": users_db.dsn(), "pool_size": 2,
                             "slow_query": "150ms"})
    q = urllib.parse.quote
    for _ in range(5):
        assert ngx.get("/fn/dbfn/sql?sql=" + q("SELECT 1 AS one")).status == 200
    r = ngx.get("/fn/dbfn/sql?sql=" + q("SELECT * FROM no_such_table"),
                headers={"traceparent": TRACEPARENT})
    assert r.status == 422, r
    r = ngx.get("/fn/dbfn/sleep?s=0.3", headers={
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    assert r.status == 200, r

    failed = gw.wait_log(lambda l: "query failed" in l, what="the failed-query line")
    assert "[fn dbfn pid " in failed and "42P01" in failed, failed
    assert f"trace_id {TRACE}" in failed and "sql: SELECT * FROM no_such_table" in failed, failed
    slow = gw.wait_log(lambda l: "slow query" in l, what="the slow-query line")
    assert "trace_id 0af7651916cd43dd8448eb211c80319c" in slow and "pg_sleep" in slow, slow
    assert "(slow_query 150 ms)" in slow, slow

    # The pool answers, then marks the connection idle: give it that moment.
    wait_for(lambda: metric(scrape(ngx), "fngate_pool_connections", state="active") == 0, 5,
             what="no active pool connection")
    s = scrape(ngx)
    assert metric(s, "fngate_pool_size") == 2
    assert sum(metric(s, "fngate_pool_connections", state=st)
               for st in ("free", "connecting", "idle", "active")) == 2
    assert metric(s, "fngate_pool_connections", state="active") == 0
    assert metric(s, "fngate_pool_waiting") == 0
    assert metric(s, "fngate_pool_query_duration_seconds_count", function="dbfn") == 7
    assert metric(s, "fngate_pool_wait_seconds_count") == 7
    assert metric(s, "fngate_pool_errors_total", function="dbfn", sqlstate_class="42") == 1
    assert metric(s, "fngate_pool_slow_queries_total") == 1
    assert metric(s, "fngate_pool_prepared_hits_total") + metric(
        s, "fngate_pool_prepared_misses_total") == 7
    assert metric(s, "fngate_pool_prepared_hits_total") >= 3
    assert metric(s, "fngate_pool_rendered_bytes_total") > 0
    p = status(ngx)["pool"]
    assert p["pool_size"] == 2 and p["queries"] == 7 and p["errors"] == 1, p
    assert p["functions"]["dbfn"] == {"queries": 7, "errors": 1}, p


def test_readme_alerts_are_valid_prometheus_rules(run_dir):
    promtool = _need("promtool", "prometheus")
    text = (REPO / "README.md").read_text()
    start = text.index("groups:\n  - name: fngate")
    rules = run_dir / "rules.yml"
    rules.write_text(text[start:text.index("```", start)])
    r = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and "SUCCESS: 3 rules found" in r.stdout, r.stdout + r.stderr


def test_request_timeout_counts_its_504_and_a_timeout_exit(stack, build):
    gw, ngx = stack({"t": build.testfn}, sections={"t": {"request_timeout": "300ms"}})
    assert ngx.get("/fn/t?sleep=0").status == 200
    r = ngx.get("/fn/t?hang=1", timeout=30)
    assert r.status == 504, r

    def exited():
        return metric(scrape(ngx), "fngate_instance_exits_total", function="t",
                      reason="timeout") == 1

    wait_for(exited, 10, what="the timed-out instance's exit counted")
    s = scrape(ngx)
    assert metric(s, "fngate_instance_exits_total", function="t", reason="crash") == 0
    assert metric(s, "fngate_requests_total", function="t", code="504") == 1
    assert metric(s, "fngate_requests_total", function="t", code="200") == 1
    assert metric(s, "fngate_request_duration_seconds_count", function="t") == 2


def test_request_timeout_504_carries_the_logged_request_id(stack, build, run_dir):
    """The 504 the SDK's timeout handler writes carries X-Request-Id like
    every other response, and the request log has its line with that id
    (the handler never returns, so the line comes from the signal handler).
    """
    log = run_dir / "requests.log"
    gw, ngx = stack({"t": build.testfn}, gateway={"request_log": str(log)},
                    sections={"t": {"request_timeout": "300ms"}})
    r = ngx.get("/fn/t/slow?hang=1", timeout=30)
    assert r.status == 504, r
    assert r.json() == {"error": "the function exceeded its request_timeout"}
    rid = r.headers.get("x-request-id")
    assert rid and re.fullmatch(r"[0-9a-f]{32}", rid), r.headers

    def lines():
        return [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []

    wait_for(lambda: lines(), 10, what="the timed-out request's log line")
    (line,) = lines()
    assert (line["function"], line["path"], line["status"], line["request_id"]) == (
        "t", "/slow", 504, rid), line
    assert line["duration_ms"] >= 250 and line["cold"] is True, line
    logged = datetime.datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    logged = logged.replace(tzinfo=datetime.timezone.utc).timestamp()
    assert abs(logged - time.time()) < 60, line


def test_status_socket_follows_a_reloaded_socket_mode(stack, build):
    gw, ngx = stack({"hello": build.handler("hello")})
    sock = gw.socket_dir / "status.sock"
    assert sock.stat().st_mode & 0o777 == 0o760  # socket_mode 0660, plus fngate's u+x mark
    gw.gateway_keys["socket_mode"] = "0600"
    gw.write_config()
    gw.hup()
    wait_for(lambda: sock.stat().st_mode & 0o777 == 0o700, 5, what="status.sock mode 0700")
    gw.gateway_keys["socket_mode"] = "0660"
    gw.write_config()
    gw.hup()
    wait_for(lambda: sock.stat().st_mode & 0o777 == 0o760, 5, what="status.sock mode 0760")
    assert ngx.get("/_fngate/status").status == 200
