#!/usr/bin/env python3
"""burst.py: N requests sent at the same moment through nginx (issue 11).

    burst.py PORT PATH N            -> "ok SLOWEST_MS MEDIAN_MS CODES"
    burst.py --warm K [--settle M] [--gap MS] [--children PID[:EXE[:NAME]]]
             [--timeline FILE] PORT PATH N
        -> "cold SLOWEST_MS MEDIAN_MS CODES [PROCS]", up to M lines
           "settle ...", then K lines "warm ..."

Opens N keep-alive connections to 127.0.0.1:PORT first, then writes the N
requests back to back and times each from its own write to the last byte
of its body (Content-Length, or the last chunk: php-fpm's answers are
chunked).  One thread (asyncio): the writes follow each other as fast as
Python goes (2 to 3 ms for 64 on the 2-core bench VM, while nginx already
reads them).  CODES counts the statuses, e.g. 200:64 (-1: no whole
answer).  Also used for the overload figure (many callers, few instances).

With --warm K the same N connections send the same burst again, GAP ms
(default 200) after the previous one was answered: the first burst is the
cold one (the caller made sure no process serves PATH), the K last are the
warm reference.  With --settle M (needs --children) up to M bursts go
before those, until one leaves the back end with as many processes as the
burst before it: both back ends start more processes when a burst finds
every one busy, and a reference that pays for starts is not warm.  One
process and the same connections throughout, so no burst is timed across
a Python start or a connection set-up, and GAP stays well inside both back
ends' idle timeouts (1 s in bench_core.sh), so nothing is reaped between.
--children PID[:EXE[:NAME]] appends to each line how many children PID has
once that burst is answered (only those running EXE, if given, and fngate's
spare processes serving function NAME).
--timeline FILE writes each request of the cold burst as "start_ns end_ns
status" (CLOCK_MONOTONIC, the supervisor's trace clock), for burstrace.py.
"""

import argparse
import asyncio
import collections
import os
import statistics
import time


async def one(reader, writer, req, out, start):
    await start.wait()
    t0 = time.monotonic_ns()
    writer.write(req)
    status = -1
    try:
        line = await reader.readline()
        code = int(line.split()[1])
        length, chunked = 0, False
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b""):
                break
            k, _, v = h.decode("latin-1").partition(":")
            if k.lower() == "content-length":
                length = int(v)
            elif k.lower() == "transfer-encoding" and "chunked" in v.lower():
                chunked = True
        if chunked:  # php-fpm's answers: the response ends with its last chunk
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await reader.readexactly(length)
        status = code
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
        pass
    out.append((t0, time.monotonic_ns(), status))


async def burst(conns, req):
    """One burst over CONNS; returns [(t0, t1, status)] in completion order."""
    start = asyncio.Event()
    out = []
    tasks = [asyncio.create_task(one(r, w, req, out, start)) for r, w in conns]
    await asyncio.sleep(0)  # every task waits on START before the first write
    start.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    return out


def children(spec):
    """How many children the process of SPEC ("PID", "PID:EXE" or
    "PID:EXE:NAME") has: all, those running EXE, or those plus the fngate
    spare processes that took function NAME on (comm = the name)."""
    pid, _, rest = spec.partition(":")
    exe, _, name = rest.partition(":")
    n = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = f.read().rpartition(")")[2].split()[1]
            if ppid != pid:
                continue
            if exe:
                e = os.readlink(f"/proc/{d}/exe")
                if e != exe:
                    with open(f"/proc/{d}/comm") as f:
                        comm = f.read().strip()
                    if not name or os.path.basename(e) != "fngate-spare" or comm != name[:15]:
                        continue
        except OSError:
            continue
        n += 1
    return n


def line(tag, out, spec):
    codes = collections.Counter(s for _, _, s in out)
    times = [(t1 - t0) / 1e6 for t0, t1, _ in out]
    text = (f"{tag} {max(times):.2f} {statistics.median(times):.2f} "
            + ",".join(f"{c}:{k}" for c, k in sorted(codes.items())))
    return text + (f" {children(spec)}" if spec else "")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warm", type=int, default=0)
    ap.add_argument("--gap", type=float, default=200.0)
    ap.add_argument("--timeline")
    ap.add_argument("--children")
    ap.add_argument("--settle", type=int, default=0)
    ap.add_argument("port", type=int)
    ap.add_argument("path")
    ap.add_argument("n", type=int)
    a = ap.parse_args()
    req = f"GET {a.path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    conns = [await asyncio.open_connection("127.0.0.1", a.port) for _ in range(a.n)]
    await asyncio.sleep(0.05)
    out = await burst(conns, req)
    if a.warm == 0:
        print(line("ok", out, a.children))
    else:
        print(line("cold", out, a.children))
        if a.timeline:
            with open(a.timeline, "w") as f:
                for t0, t1, s in sorted(out):
                    f.write(f"{t0} {t1} {s}\n")
        # Settle: a back end may start more processes on the first warm
        # bursts (both do, when every process is busy); the reference is
        # the burst once their number holds, not one that pays for starts.
        procs = children(a.children) if a.children else None
        for _ in range(a.settle):
            await asyncio.sleep(a.gap / 1000)
            out = await burst(conns, req)
            now = children(a.children) if a.children else None
            print(line("settle", out, a.children))
            if now == procs:
                break
            procs = now
        for _ in range(a.warm):
            await asyncio.sleep(a.gap / 1000)
            print(line("warm", await burst(conns, req), a.children))
    for _, w in conns:
        w.close()


asyncio.run(main())
