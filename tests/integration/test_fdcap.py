"""A hostile client cannot run the supervisor out of descriptors through the
connections it answers itself (refuse.c: a disabled function, a function
that cannot start, the queue police).  Each such connection costs the
supervisor a descriptor until it is answered or its deadline passes; a
client that connects and never sends a request could otherwise hold
RLIMIT_NOFILE of them, and then the supervisor can start no instance and
answer nothing.  The supervisor holds at most a quarter of its
RLIMIT_NOFILE: past that it closes the oldest unanswered.  Under a second.
"""

from __future__ import annotations

import errno
import os
import resource
import socket

from fngate_harness import wait_for

ATTACKERS = 600
LIMIT = 256  # the supervisor's RLIMIT_NOFILE for the test: a cap of 64


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def peer_state(s):
    """What an attacker's connection looks like from its end: "held" (open,
    nothing to read), "closed" (EOF without an answer), or the error."""
    try:
        data = s.recv(1)
    except BlockingIOError:
        return "held"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return "closed" if data == b"" else f"data {data!r}"


def test_idle_connections_cannot_exhaust_the_supervisors_descriptors(gateway_factory,
                                                                     nginx_factory, build):
    gw = gateway_factory({"broken": build.handler("hello"), "hello": build.handler("hello")},
                         start=False)
    conf = gw.functions_dir / "broken" / "function.conf"
    conf.write_text("max_instances = lots\n")
    gw.start()
    ngx = nginx_factory(gw.socket_dir)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.prlimit(gw.pid, resource.RLIMIT_NOFILE, (LIMIT, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < ATTACKERS + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    base = fd_count(gw.pid)
    attackers, peak = [], 0
    try:
        for _ in range(ATTACKERS):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            attackers.append((s, s.connect_ex(str(gw.sock_path("broken")))))
            peak = max(peak, fd_count(gw.pid))
        # Every connect got through (the kernel's queue is far larger).
        assert [e for _, e in attackers] == [0] * ATTACKERS

        def settled():
            nonlocal peak
            peak = max(peak, fd_count(gw.pid))
            return sum(peer_state(s) == "closed" for s, _ in attackers) >= ATTACKERS - 64
        wait_for(settled, 5.0, interval=0.05, what="the oldest idle connections to be closed")
        states = [peer_state(s) for s, _ in attackers]
        assert set(states) <= {"held", "closed"}, sorted(set(states))
        held = states.count("held")
        assert 0 < held <= 64, f"{held} held"
        # The newest are the ones kept.
        assert states[-held:] == ["held"] * held, states[-held - 3:]
        assert peak <= base + 64 + 8, f"the supervisor held {peak} descriptors (base {base})"

        # The supervisor still does its work meanwhile: a cold start for
        # another function, and the disabled one's own answer.
        r = ngx.get("/fn/hello")
        assert r.status == 200, r
        r = ngx.get("/fn/broken")
        assert r.status == 503 and r.json()["error"].startswith("function broken is disabled: "), r
        gw.wait_log(lambda ln: "refused connections: holding 64, the cap" in ln,
                    what="the line about the cap")
        assert gw.running()
    finally:
        for s, _ in attackers:
            s.close()
    # What the clients closed is let go (the new instance has a few).
    wait_for(lambda: fd_count(gw.pid) <= base + 8, 3.0, interval=0.05,
             what="the held connections to be let go")
