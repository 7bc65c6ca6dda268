#!/usr/bin/env python3
"""coldtrace.py: where a cold start's time goes (issue 11 point 2).

    coldtrace.py SOCKET LOGFILE ROUNDS [IDLE_S]
    coldtrace.py --table LABEL=OUTPUT [LABEL=OUTPUT ...]

Run by bench_core.sh against a function with idle_timeout = 100ms on an
fngate started with log_level = debug.  Each round waits until the function
has no instance (its log says it exited), then sends one FastCGI request
straight to SOCKET (no nginx: nginx's own part is the same warm or cold) and
pairs the client's CLOCK_MONOTONIC timestamps with the supervisor's trace
line for that instance:

    [fn F pid P] ready in X ms (trace ns: woke W spawn A B execve E main M ready R)

or, for an instance that was a spare process (a function with a handler.so):

    [fn F pid P] ready in X ms (trace ns: woke W assign A B received C setup S
        dlopen D main M ready R)

Prints one line per round and the medians, in microseconds:
  wake     connect -> supervisor's callback (epoll wake-up, libevent)
  prep     callback -> proc_spawn called (snapshot, scoreboard memfd,
           database channel, sandbox ruleset)
  spawn    proc_spawn called -> the instance waits in accept() (ready):
           vfork, the child's set-up (descriptors, signals, session,
           rlimits, uid, Landlock + seccomp), execve, the static binary's
           start and the SDK's initialisation
  vfork    of which the supervisor sat in proc_spawn (vfork returns when the
           child has exec'ed; on a loaded machine the parent is often
           resumed after the child is already ready, so it is no split)
  child    of spawn, proc_spawn called -> the child calls execve: vfork and
           the child's set-up (descriptors, signals, session, rlimits, uid,
           Landlock + seccomp)
  exec     of spawn, execve -> the handler's main(): the kernel's exec and
           the C library's start (static glibc: CPU feature probing)
  sdk      of spawn, main() -> ready: the SDK's start
  serve    ready -> the whole response back at the client (accept, the
           request, the handler, the answer)
  total    connect -> response
and, through a spare process, instead of vfork, child and exec:
  assign   of spawn, the supervisor starts the hand-over -> the spare's
           recvmsg returns (the sendmsg, and the spare's wake-up)
  setup    of spawn, the spare's set-up: Landlock + no_new_privs, fds,
           signals, limits, uid, chdir, seccomp (gateway/childsetup.c, the
           same code as the exec path's child)
  dlopen   of spawn, loading and relocating the function's handler.so
  sdk      of spawn, the handler.so loaded -> ready: the SDK's start

With --table it turns such outputs (the same function started several ways)
into the Markdown table the README carries, one column each.
"""

import os
import re
import socket
import statistics
import struct
import sys
import time

READY = re.compile(r"\[fn (\S+) pid (\d+)\] ready in [0-9.]+ ms \(trace ns: woke (\d+) "
                   r"spawn (\d+) (\d+) execve (\d+) main (\d+) ready (\d+)\)")
READY_SPARE = re.compile(r"\[fn (\S+) pid (\d+)\] ready in [0-9.]+ ms \(trace ns: woke (\d+) "
                         r"assign (\d+) (\d+) received (\d+) setup (\d+) dlopen (\d+) "
                         r"main (\d+) ready (\d+)\)")


def record(rtype, content, rid=1):
    pad = (8 - len(content) % 8) % 8
    return struct.pack("!BBHHBx", 1, rtype, rid, len(content), pad) + content + b"\0" * pad


def nv(name, value):
    def ln(n):
        return bytes([n]) if n < 128 else struct.pack("!I", n | 0x80000000)
    return ln(len(name)) + ln(len(value)) + name + value


def request():
    params = b"".join(nv(k, v) for k, v in [
        (b"REQUEST_METHOD", b"GET"), (b"SCRIPT_NAME", b"/fn/x"), (b"FNGATE_PATH", b""),
        (b"QUERY_STRING", b""), (b"REQUEST_URI", b"/fn/x"), (b"SERVER_PROTOCOL", b"HTTP/1.1")])
    return (record(1, struct.pack("!HB5x", 1, 0)) + record(4, params) + record(4, b"") +
            record(5, b""))


def one(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    t0 = time.monotonic_ns()
    s.connect(path)
    s.sendall(request())
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        # FCGI_END_REQUEST (type 3) ends it
        i = 0
        done = False
        while i + 8 <= len(buf):
            _, t, _, clen, plen = struct.unpack("!BBHHB", buf[i:i + 7])
            if i + 8 + clen + plen > len(buf):
                break
            if t == 3:
                done = True
            i += 8 + clen + plen
        if done:
            break
    t2 = time.monotonic_ns()
    s.close()
    return t0, t2, b"200" in buf or b"hello" in buf


STAGES = [
    ("wake", "the connection arrives -> the supervisor's callback runs (epoll, libevent)"),
    ("prep", "the supervisor prepares the start (scoreboard slot, pipes, pool channel)"),
    ("child", "exec: vfork and the child's set-up: descriptors, signals, session, limits, uid, "
              "sandbox"),
    ("exec", "exec: execve -> main(): the kernel loads the static handler, the C library starts"),
    ("assign", "spare: the assignment's sendmsg -> the waiting spare's recvmsg returns"),
    ("setup", "spare: the same set-up as the exec's child (descriptors, limits, uid, sandbox)"),
    ("dlopen", "spare: dlopen() of the function's handler.so"),
    ("sdk", "main() -> ready in accept(): the SDK's start (slot, signals, epoll; a spare did "
            "FastCGI and the seeds ahead)"),
    ("serve", "ready -> the whole response back (accept, request, handler, answer)"),
    ("total", "the connection arrives -> the response is back"),
]


def medians(path):
    """The 'median' row of a coldtrace output file, by column name."""
    head, med = None, None
    for line in open(path, errors="replace"):
        if line.startswith("round "):
            head = line.split()[1:-1]
        elif line.startswith("median"):
            med = line.split()[1:]
    if not head or not med:
        return {}
    return dict(zip(head, med))


def table(columns):
    """Markdown table of several runs' medians: COLUMNS is [(label, path)]."""
    meds = [medians(path) for _, path in columns]
    print("| stage | what happens | " + " | ".join(f"{label}, us" for label, _ in columns) + " |")
    print("|---|---|" + "---:|" * len(columns))
    for key, what in STAGES:
        name = f"**{key}**" if key == "total" else key
        print(f"| {name} | {what} | " + " | ".join(m.get(key, "-") for m in meds) + " |")


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--table":
        table([tuple(a.split("=", 1)) for a in sys.argv[2:]])
        return
    path, logf, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    idle_s = float(sys.argv[4]) if len(sys.argv) > 4 else 0.1
    fn = os.path.basename(path)[:-5]
    rows = []
    seen = 0
    for r in range(rounds + 1):
        time.sleep(idle_s + 0.25)  # idle_timeout plus the reaping
        # no instance left: every "ready" has a matching exit
        for _ in range(100):
            text = open(logf, errors="replace").read()
            ready = len(re.findall(rf"\[fn {fn} pid \d+\] ready in", text))
            exits = len(re.findall(rf"\[fn {fn} pid \d+\] (?:exited|stopped|killed)", text))
            if ready <= exits:
                break
            time.sleep(0.05)
        t0, t2, ok = one(path)
        line = None
        for _ in range(100):
            text = open(logf, errors="replace").read()
            ms = sorted([m for m in READY.finditer(text) if m.group(1) == fn] +
                        [m for m in READY_SPARE.finditer(text) if m.group(1) == fn],
                        key=lambda m: m.start())
            if len(ms) > seen:
                line = ms[seen]
                seen = len(ms)
                break
            time.sleep(0.02)
        if line is None or not ok:
            print(f"round {r}: no trace line or no answer", file=sys.stderr)
            continue
        if line.re is READY_SPARE:
            w, a, b, rc, su, dl, mn, rd = (int(line.group(i)) for i in range(3, 11))
            row = dict(wake=w - t0, prep=a - w, spawn=rd - a, serve=t2 - rd, total=t2 - t0,
                       assign=rc - a, setup=su - rc, dlopen=dl - su, sdk=rd - dl)
        else:
            w, a, b, ex, mn, rd = (int(line.group(i)) for i in (3, 4, 5, 6, 7, 8))
            row = dict(wake=w - t0, prep=a - w, spawn=rd - a, serve=t2 - rd, total=t2 - t0,
                       vfork=b - a, child=ex - a, exec=mn - ex, sdk=rd - mn)
        if r == 0:
            continue  # warm-up round
        rows.append(row)
    # A run is one way of starting (the function has a handler.so or not);
    # should both show up, the columns are those of the first round.
    if rows and "assign" in rows[0]:
        keys = ["wake", "prep", "spawn", "serve", "total", "assign", "setup", "dlopen", "sdk"]
    else:
        keys = ["wake", "prep", "spawn", "serve", "total", "vfork", "child", "exec", "sdk"]
    rows = [r for r in rows if all(k in r for k in keys)]
    print("round " + " ".join(f"{k:>7}" for k in keys) + "   (microseconds)")
    for i, row in enumerate(rows, 1):
        print(f"{i:5d} " + " ".join(f"{row[k] / 1000:7.0f}" for k in keys))
    if rows:
        print(f"{'median':>5} " + " ".join(f"{statistics.median(r[k] for r in rows) / 1000:7.0f}"
                                           for k in keys))


if __name__ == "__main__":
    main()
