#!/usr/bin/env python3
"""burstrace.py: where a cold burst's time goes (issue 11 point 3).

    burstrace.py TIMELINE LOGFILE FUNCTION

TIMELINE is burst's (burst.c) --timeline of one cold burst, LOGFILE the debug log
of the fngate that served it (log_level = debug), FUNCTION the function.
Both use CLOCK_MONOTONIC, so every event is printed in ms after the burst's
first write:

  wake     the supervisor's callback for the first connection
  scale    each scaling step: what it saw (queue, idle, starting, the mean
           request and the last start-up time, whether in a cold burst)
           and how many it spawned
  spawn    each instance: proc_spawn called -> returned (the supervisor is
           blocked in between), the child's execve, main(), ready in accept();
           or, for one handed to a spare process, the assignment sent ->
           returned, the spare's receipt, the handler's entry, ready
  answers  the requests' ends: first, median, last (the slowest)

and one summary line "trace first_ready_ms last_ready_ms instances
spawn_blocked_ms slowest_ms" for bench_core.sh.
"""

import re
import statistics
import sys

READY = re.compile(r"\[fn (\S+) pid (\d+)\] ready in [0-9.]+ ms \(trace ns: woke (\d+) "
                   r"spawn (\d+) (\d+) execve (\d+) main (\d+) ready (\d+)\)")
SPARE = re.compile(r"\[fn (\S+) pid (\d+)\] ready in [0-9.]+ ms \(trace ns: woke (\d+) "
                   r"assign (\d+) (\d+) received (\d+) setup (\d+) dlopen (\d+) main (\d+) "
                   r"ready (\d+)\)")
SCALE = re.compile(r"\[fn (\S+)\] queue (-?\d+), idle (\d+), starting (\d+): spawned (\d+) "
                   r"\(at (\d+) ns; request (\d+) ns, start (\d+) ns, burst (\d)\)")


def main():
    timeline, logfile, fn = sys.argv[1], sys.argv[2], sys.argv[3]
    reqs = []
    with open(timeline) as f:
        for ln in f:
            t0, t1, st = ln.split()
            reqs.append((int(t0), int(t1), st))
    first = min(t0 for t0, _, _ in reqs)
    last = max(t1 for _, t1, _ in reqs)
    ms = lambda ns: (ns - first) / 1e6  # noqa: E731
    insts, steps = [], []
    with open(logfile, errors="replace") as f:
        for ln in f:
            m = READY.search(ln)
            if m and m.group(1) == fn:
                v = [int(x) for x in m.groups()[2:]]
                if first - 10**9 < v[0] <= last:
                    insts.append((int(m.group(2)), *v, "exec"))
            m = SPARE.search(ln)
            if m and m.group(1) == fn:
                # woke, assign called/returned, received (as "execve"), main, ready
                v = [int(x) for x in m.groups()[2:]]
                if first - 10**9 < v[0] <= last:
                    insts.append((int(m.group(2)), v[0], v[1], v[2], v[3], v[6], v[7], "spare"))
            m = SCALE.search(ln)
            if m and m.group(1) == fn and first - 10**9 < int(m.group(6)) <= last:
                steps.append([int(x) for x in m.groups()[1:]])
    insts.sort(key=lambda i: i[2])
    if insts:
        print(f"wake      {ms(min(i[1] for i in insts)):8.3f}")
    for q, idle, starting, n, at, svc, start, burst in steps:
        print(f"scale     {ms(at):8.3f}  queue {q}, idle {idle}, starting {starting}: spawned {n}"
              f" (request {svc / 1e3:.0f} us, start {start / 1e3:.0f} us{', burst' if burst else ''})")
    print("          pid      how    spawn called  returned  execve/received  main     ready")
    blocked = 0
    for pid, woke, s0, s1, ex, mn, rd, how in insts:
        blocked += s1 - s0
        print(f"spawn     {pid:<8d} {how:5s} {ms(s0):8.3f}  {ms(s1):8.3f}  {ms(ex):8.3f}  {ms(mn):8.3f}"
              f"  {ms(rd):8.3f}")
    ends = sorted(ms(t1) for _, t1, _ in reqs)
    print(f"answers   first {ends[0]:.3f}, median {statistics.median(ends):.3f}, last {ends[-1]:.3f}"
          f" (writes from 0 to {ms(max(t0 for t0, _, _ in reqs)):.3f})")
    if insts:
        print(f"trace {ms(insts[0][6]):.3f} {ms(max(i[6] for i in insts)):.3f} {len(insts)} "
              f"{blocked / 1e6:.3f} {ends[-1]:.3f}")
    else:
        print("trace nan nan 0 nan nan")


main()
