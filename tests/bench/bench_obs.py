#!/usr/bin/env python3
"""What seeing inside costs (issue 8): warm hello throughput through nginx
with the request log off (the yardstick), with request_log on (a file), and
with a real Prometheus scraping /_fngate/metrics every second, in the same
run, interleaved round by round so that the machine's noise hits every
variant alike.  With --base BUILDDIR (a build of the commit before the
counters existed) it also runs that build, for the cost of the counters
themselves.

    python3 tests/bench/bench_obs.py [--rounds 3] [--seconds 5] [--base DIR]

Needs wrk; the Prometheus variant needs prometheus (skipped with a line if
missing).  Prints req/s per round, the median, and each variant's ratio to
the log-off median.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from fngate_harness import Build, Gateway, Nginx, free_port, make_dir, new_run_dir  # noqa: E402


def wrk(url, seconds, threads=1, conns=8):
    """(req/s, requests)"""
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", url],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not m or not n or bad:
        raise SystemExit(f"wrk failed or saw errors:\n{out}")
    return float(m.group(1)), int(n.group(1))


def cpu_s(pids):
    """utime + stime of PIDS, in seconds (clock ticks of 10 ms)."""
    total = 0
    for pid in pids:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(f[11]) + int(f[12])
    return total / os.sysconf("SC_CLK_TCK")


def prometheus(run, port):
    exe = shutil.which("prometheus")
    if not exe:
        return None
    cfg = run / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: fngate\n"
                   "    metrics_path: /_fngate/metrics\n    static_configs:\n"
                   f"      - targets: ['127.0.0.1:{port}']\n")
    return subprocess.Popen([exe, f"--config.file={cfg}", f"--storage.tsdb.path={run}/tsdb",
                             f"--web.listen-address=127.0.0.1:{free_port()}", "--log.level=error"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def one(variant, build, base_run, seconds):
    one.n = getattr(one, "n", 0) + 1
    run = make_dir(base_run / f"{variant[0]}{one.n}")
    keys = {"log_level": "warn"}
    if variant == "log":
        keys["request_log"] = str(run / "requests.log")
    gw = Gateway(run / "gw", build, {"hello": build.handler("hello")}, gateway=keys,
                 defaults={"idle_timeout": "60s"})
    ngx = Nginx(run / "ngx", gw.socket_dir, build)
    prom = prometheus(run, ngx.port) if variant == "scrape" else None
    try:
        url = f"{ngx.base_url}/fn/hello"
        r = ngx.get("/fn/hello")
        if r.status != 200:
            raise SystemExit(f"{variant}: /fn/hello answered {r.status} {r.body!r}\n{gw.log_tail()}")
        wrk(url, 1)  # warm: every instance the load needs is up
        if prom:
            time.sleep(2)  # a couple of scrapes before the measurement
        pids = gw.instances("hello")
        inst0, sup0 = cpu_s(pids), cpu_s([gw.pid])
        rps, n = wrk(url, seconds)
        if gw.instances("hello") != pids:
            print("    (instances changed during the run)", flush=True)
        # CPU per request is far less sensitive to a shared machine's noise
        # than throughput is.
        return rps, (cpu_s(pids) - inst0) / n * 1e6, (cpu_s([gw.pid]) - sup0) / n * 1e6
    finally:
        if prom:
            prom.send_signal(signal.SIGTERM)
            prom.wait(10)
        ngx.stop()
        gw.stop()
        if variant == "log":
            lines = sum(1 for _ in open(run / "requests.log"))
            print(f"    (request log: {lines} lines)", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--base", help="build directory of the commit before the counters")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("bench_obs: wrk not installed (Debian package wrk): skipped")
        return 0
    build = Build.locate()
    variants = {"off": build, "log": build}
    if shutil.which("prometheus"):
        variants["scrape"] = build
    else:
        print("bench_obs: prometheus not installed: the scrape variant is skipped")
    if args.base:
        os.environ["FNGATE_BUILDDIR"] = args.base
        variants["base"] = Build.locate()
    base_run = new_run_dir("fgbo-")
    res = {v: [] for v in variants}
    cpu = {v: [] for v in variants}
    print(f"bench_obs: {os.uname().nodename}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} cores, wrk -t1 -c8 -d{args.seconds}s on /fn/hello", flush=True)
    try:
        for r in range(args.rounds):
            for v, b in variants.items():
                rps, inst_us, sup_us = one(v, b, base_run, args.seconds)
                res[v].append(rps)
                cpu[v].append((inst_us, sup_us))
                print(f"  round {r + 1} {v:6s} {rps:10.0f} req/s   CPU/request: instances "
                      f"{inst_us:5.1f} us, supervisor {sup_us:5.2f} us", flush=True)
    finally:
        shutil.rmtree(base_run, ignore_errors=True)
    ref = statistics.median(res["off"])
    print("\nvariant   median req/s   range            ratio to log off   CPU us/request "
          "(instances, supervisor; medians)")
    for v, xs in res.items():
        med = statistics.median(xs)
        ci = statistics.median(c[0] for c in cpu[v])
        cs = statistics.median(c[1] for c in cpu[v])
        print(f"{v:8s} {med:12.0f}   {min(xs):7.0f}-{max(xs):<7.0f}   {med / ref:6.3f}"
              f"             {ci:5.1f}, {cs:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
