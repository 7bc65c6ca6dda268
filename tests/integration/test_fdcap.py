"""A hostile client cannot run the supervisor out of descriptors through the
connections it answers itself (refuse.c: a disabled function, a function
that cannot start, the queue police).  Each such connection costs the
supervisor a descriptor until it is answered or its deadline passes; a
client that connects and never sends a request could otherwise hold
RLIMIT_NOFILE of them, and then the supervisor can start no instance and
answer nothing.  The supervisor holds at most a quarter of its
RLIMIT_NOFILE, a function at most half of that: past its cap a function's
oldest unanswered are closed, so one function's flood cannot close another
function's answers.  A few seconds.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from fngate_harness import wait_for
from test_sdk_input import _pair, _rec, _response_head

ATTACKERS = 600
LIMIT = 256  # the supervisor's RLIMIT_NOFILE for the test: a cap of 64, 32 a function
FN_CAP = 32


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
            return sum(peer_state(s) == "closed" for s, _ in attackers) >= ATTACKERS - FN_CAP
        wait_for(settled, 5.0, interval=0.05, what="the oldest idle connections to be closed")
        states = [peer_state(s) for s, _ in attackers]
        assert set(states) <= {"held", "closed"}, sorted(set(states))
        held = states.count("held")
        assert 0 < held <= FN_CAP, f"{held} held"
        # The newest are the ones kept.
        assert states[-held:] == ["held"] * held, states[-held - 3:]
        assert peak <= base + FN_CAP + 8, f"the supervisor held {peak} descriptors (base {base})"

        # The supervisor still does its work meanwhile: a cold start for
        # another function, and the disabled one's own answer.
        r = ngx.get("/fn/hello")
        assert r.status == 200, r
        r = ngx.get("/fn/broken")
        assert r.status == 503 and r.json()["error"].startswith("function broken is disabled: "), r
        gw.wait_log(lambda ln: "[fn broken] refused connections: holding 32, a function's cap "
                    "(half of the gateway's 64): closed " in ln, what="the line about the cap")
        assert gw.running()
    finally:
        for s, _ in attackers:
            s.close()
    # What the clients closed is let go (the new instance has a few).
    wait_for(lambda: fd_count(gw.pid) <= base + 8, 3.0, interval=0.05,
             what="the held connections to be let go")


def test_one_functions_flood_leaves_another_its_overload_answers(gateway_factory, nginx_factory,
                                                                 build):
    """Function A (disabled: the supervisor answers its connections) is
    flooded with connections that never send a request, far past its cap,
    while function B is overloaded: B's refused connection, whose front end
    is slow to send its request, still gets its 503 with Retry-After and a
    JSON body.  (With one cap for the whole gateway, A's flood closed B's
    connection unanswered.)"""
    gw = gateway_factory({"broken": build.handler("hello"), "busy": build.testfn},
                         sections={"busy": {"max_instances": 1, "queue_size": 1}}, start=False)
    (gw.functions_dir / "broken" / "function.conf").write_text("max_instances = lots\n")
    gw.start()
    ngx = nginx_factory(gw.socket_dir)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.prlimit(gw.pid, resource.RLIMIT_NOFILE, (LIMIT, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1024:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    stop = threading.Event()
    flooded = [0]

    def flood():
        held = []
        while not stop.is_set():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            if s.connect_ex(str(gw.sock_path("broken"))) == 0:
                flooded[0] += 1
            held.append(s)
            if len(held) > 300:
                held.pop(0).close()
            time.sleep(0.0005)
        for s in held:
            s.close()

    def connect_busy():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(str(gw.sock_path("busy")))
        return s

    with ThreadPoolExecutor(max_workers=2) as pool:
        # B's one instance is busy for 3 s.
        occupied = pool.submit(ngx.get, "/fn/busy?sleep=3000", None, 30)
        wait_for(lambda: gw.instances("busy"), 5, what="busy's instance")
        time.sleep(0.2)
        attack = pool.submit(flood)
        slow = second = None
        try:
            # Two wait in B's queue of 1: the police answers the head, the
            # slow one, as overload, and waits for its request.
            slow = connect_busy()
            second = connect_busy()
            wait_for(lambda: flooded[0] >= 4 * LIMIT, 10, what="the flood")
            params = {"REQUEST_METHOD": "GET", "QUERY_STRING": "", "SCRIPT_NAME": "/fn/busy"}
            try:
                slow.sendall(_rec(1, struct.pack(">HB5x", 1, 0))
                             + _rec(4, b"".join(_pair(k.encode(), v.encode())
                                                for k, v in params.items()))
                             + _rec(4) + _rec(5))
                status, head, body = _response_head(slow)
            except (AssertionError, ConnectionError) as e:
                raise AssertionError(f"busy's refused connection was closed unanswered: {e}\n"
                                     + gw.log()[-2000:])
            assert status == 503, (head, body)
            assert "\r\nRetry-After: 1\r\n" in head + "\r\n", head
            assert "\r\nContent-Type: application/json\r\n" in head + "\r\n", head
            assert json.loads(body) == {"error": "function busy is overloaded: its queue is full "
                                                 "(queue_size 1)"}
        finally:
            stop.set()
            attack.result(timeout=30)
            for s in (slow, second):
                if s:
                    s.close()
        assert occupied.result(timeout=30).status == 200
    # A was held to its own cap meanwhile.
    gw.wait_log(lambda ln: "[fn broken] refused connections: holding 32, a function's cap" in ln,
                what="broken's line about its cap")
    assert gw.running()
