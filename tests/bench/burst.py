#!/usr/bin/env python3
"""burst.py: N requests sent at the same moment through nginx (issue 11).

    burst.py PORT PATH N            -> "ok SLOWEST_MS MEDIAN_MS CODES"

Opens N keep-alive connections to 127.0.0.1:PORT first, then writes the N
requests back to back and times each from its own write to the end of its
response.  One thread (asyncio): the N writes take a few microseconds each,
so the requests really arrive together.  CODES counts the statuses, e.g.
200:64.  Also used for the overload figure (many callers, few instances).
"""

import asyncio
import collections
import statistics
import sys
import time


async def one(reader, writer, req, out, start):
    await start.wait()
    t0 = time.monotonic()
    writer.write(req)
    status = -1
    try:
        line = await reader.readline()
        status = int(line.split()[1])
        length = 0
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b""):
                break
            k, _, v = h.decode("latin-1").partition(":")
            if k.lower() == "content-length":
                length = int(v)
        if length:
            await reader.readexactly(length)
    except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
        pass
    out.append((time.monotonic() - t0, status))
    writer.close()


async def main():
    port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    req = f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(n)]
    start = asyncio.Event()
    out = []
    tasks = [asyncio.create_task(one(r, w, req, out, start)) for r, w in conns]
    await asyncio.sleep(0.05)
    start.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    codes = collections.Counter(s for _, s in out)
    times = [t * 1000 for t, _ in out]
    print(f"ok {max(times):.2f} {statistics.median(times):.2f} "
          + ",".join(f"{c}:{k}" for c, k in sorted(codes.items())))


asyncio.run(main())
