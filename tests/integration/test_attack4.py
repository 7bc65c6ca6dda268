"""Day 4's red team (redteam4): attacks on what landed on 2026-12-02.

- The generated exact locations (`fngate nginx --locations`): hostile
  function folder names and symlinks in functions_dir, URI tricks against
  an exact location, nginx reloads while the file is rewritten.
- Kept connections (up to 32 per instance): a local client that holds as
  many as it can, one that half-sends a record on a kept connection, one
  that never reads its answers.  Each time: the function stays bounded
  (max_instances, its queue_timeout and request_timeout answer), its idle
  instances still stop, and another function answers 200 throughout.

Each attempt asserts what the attacker got (status, exact error, EOF) and
that the target is unharmed.  Every wait is bounded; no timing is asserted
beyond generous bounds.
"""

from __future__ import annotations

import ctypes
import errno
import grp
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from fngate_harness import _read, make_var, proc_alive, proc_children, wait_for
from test_attack import HOSTING_UID, landlock_abi
from test_sdk_input import _pair, _rec, _response_head
from test_spare_attack import both_ways, spare_born


def locations(build, conf, *args, check=True):
    r = subprocess.run([str(build.fngate), "nginx", "--locations", "-c", str(conf), *args],
                       capture_output=True, text=True, timeout=30)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def blocks(text: str) -> dict[str, list[str]]:
    """The exact locations of a --locations file: {name: body lines}.
    Fails on any line outside a location that is not a comment."""
    out: dict[str, list[str]] = {}
    cur = None
    for line in text.splitlines():
        m = re.fullmatch(r"location = /fn/([a-z0-9][a-z0-9_-]{0,63}) \{", line)
        if cur is None and m:
            cur = m.group(1)
            assert cur not in out, f"two locations for {cur}"
            out[cur] = []
        elif cur is not None and line == "}":
            cur = None
        elif cur is not None:
            out[cur].append(line)
        else:
            assert line.startswith("#"), f"a line outside any location: {line!r}"
    assert cur is None, "the file ends inside a location"
    return out


# --- generated locations: what a function author controls ------------------


def test_hostile_function_folder_names_write_no_nginx_configuration(gateway_factory, nginx_factory,
                                                                    build, run_dir):
    """A function author names folders to inject nginx configuration (a
    brace, a semicolon, a newline, a quote, a $), or to confuse discovery
    (upper case, too long, a leading dash, a symlink out of functions_dir,
    a dangling or looping symlink).  Only real function names get a
    location, each one exactly the include's body with its name written
    in, and nginx takes the file and serves them; the rest are 404."""
    gw = gateway_factory({"hello": build.handler("hello")}, start=False)
    hostile = ['x;}location = {return 200 "pwned";}#', "a\nlocation = pwned {", "UP",
               "a" * 65, "-dash", "a b", "a$b", 'a"b', "a{b", "a/../b".replace("/", "_") + "\t"]
    for name in hostile:
        d = gw.functions_dir / name
        d.mkdir()
        shutil.copy(build.handler("hello"), d / "handler")
    # A folder outside functions_dir, linked in: a function like any other
    # (the link is the author's own folder); broken links are skipped.
    outside = run_dir / "outside"
    outside.mkdir()
    shutil.copy(build.handler("hello"), outside / "handler")
    os.symlink(outside, gw.functions_dir / "linked")
    os.symlink(run_dir / "nowhere", gw.functions_dir / "dangling")
    os.symlink(gw.functions_dir / "loop", gw.functions_dir / "loop")
    gw.start()

    text = locations(build, gw.conf_path).stdout
    got = blocks(text)
    # A looping link is a function that answers why (disabled), as for any
    # handler the gateway cannot stat.
    assert sorted(got) == ["hello", "linked", "loop"], text
    # The body is the name-independent include body: the two differ only
    # by the name.
    assert [ln.replace("linked", "hello") for ln in got["linked"]] == got["hello"]
    assert "pwned" not in text and "$" not in "".join(
        ln for ln in got["hello"] if "fastcgi_pass" in ln)
    assert f"    fastcgi_pass unix:{gw.socket_dir}/fn/hello.sock;" in got["hello"]

    ngx = nginx_factory(gw.socket_dir, locations_from=gw.conf_path)
    assert ngx.get_json("/fn/hello") == (200, {"hello": "world"})
    assert ngx.get_json("/fn/linked") == (200, {"hello": "world"})
    assert ngx.get("/pwned").status != 200
    for uri in ("/fn/UP", "/fn/-dash", "/fn/a%20b", "/fn/a%24b", "/fn/" + "a" * 65):
        assert ngx.get_json(uri) == (404, {"error": "not found"}), uri
    assert ngx.get_json("/fn/dangling") == (404, {"error": "no such function: dangling"})
    status, body = ngx.get_json("/fn/loop")
    assert status == 503 and body["error"].startswith("function loop is disabled: "), body


@pytest.mark.parametrize("uri,want", [
    ("/fn/hello?x=1", "hello"),
    ("/fn//hello", "hello"),
    ("/fn/./hello", "hello"),
    ("/fn/nope/../hello", "hello"),
    ("/fn/hel%6Co", "hello"),
    ("/fn/hello/../t", "t"),
    ("/fn/t/..%2Fhello", "hello"),
    ("/fn/HELLO", 404),
    ("/fn/hello;x", 404),
    ("/fn/hello%3Bx", 404),
    ("/fn/hello.sock", 404),
    ("/fn/hello%2Esock", 404),
])
def test_a_uri_reaches_the_function_its_normal_form_names_or_a_404(stack, build, route, uri,
                                                                   want):
    """Through an exact location and through the regex fallback alike, a
    URI with dot segments, doubled or encoded slashes and escaped letters
    reaches the one function nginx's normalized URI names, with that
    function's SCRIPT_NAME; anything else is the include's 404."""
    _, ngx = stack({"hello": build.testfn, "t": build.testfn}, route=route)
    sep = "&" if "?" in uri else "?"
    r = ngx.get(f"{uri}{sep}req=1")
    if want == 404:
        assert (r.status, r.json()) == (404, {"error": "not found"}), (uri, r.body)
        return
    assert r.status == 200, (uri, r.status, r.body)
    seen = r.json()
    assert seen["params"]["SCRIPT_NAME"] == f"/fn/{want}", (uri, seen["params"])
    assert seen["name"] == want, (uri, seen)


def test_nginx_reloads_while_the_locations_are_rewritten_read_a_whole_file(
        gateway_factory, nginx_factory, build, run_dir):
    """An operator's cron rewrites fngate-functions.conf (for two function
    sets in turn) while nginx is reloaded again and again: every reload
    reads a whole file (no [emerg], new workers every time), requests keep
    answering 200, and no temporary file is left for the glob."""
    names = [f"f{i}" for i in range(12)]
    gw = gateway_factory({n: build.handler("hello") for n in names})
    # A second configuration naming a different set: the file changes
    # size and content on every write.
    other = run_dir / "other"
    (other / "functions").mkdir(parents=True)
    for n in names[:3]:
        (other / "functions" / n).mkdir()
        shutil.copy(build.handler("hello"), other / "functions" / n / "handler")
    other_conf = other / "fngate.conf"
    other_conf.write_text(f"[gateway]\nfunctions_dir = {other}/functions\n"
                          f"socket_dir = {gw.socket_dir}\n")
    ngx = nginx_factory(gw.socket_dir, locations_from=gw.conf_path)
    stop = threading.Event()
    errors: list[str] = []
    writes = [0]

    def writer():
        while not stop.is_set():
            conf = gw.conf_path if writes[0] % 2 == 0 else other_conf
            r = locations(build, conf, "-o", str(ngx.locations_path), check=False)
            if r.returncode != 0:
                errors.append(r.stderr)
            writes[0] += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(12):
            ngx.reload(timeout=10)
            assert ngx.get_json("/fn/f1") == (200, {"hello": "world"})
    finally:
        stop.set()
        t.join(30)
    assert not errors, errors
    assert writes[0] >= 4, writes
    assert "[emerg]" not in ngx.log(), ngx.log()[-2000:]
    assert [f for f in os.listdir(ngx.prefix) if "fngate-functions" in f] == \
        ["fngate-functions.conf"]


# --- kept connections: a hostile local client ------------------------------


def _head(path, rid=1, keep=True):
    params = {"REQUEST_METHOD": "GET", "QUERY_STRING": "req=1", "SCRIPT_NAME": "/fn/tf",
              "REQUEST_URI": f"/fn/tf{path}?req=1", "FNGATE_PATH": path}
    pairs = b"".join(_pair(k.encode(), v.encode()) for k, v in params.items())
    return (_rec(1, struct.pack(">HB5x", 1, 1 if keep else 0), rid) + _rec(4, pairs, rid)
            + _rec(4, b"", rid) + _rec(5, b"", rid))


def _kept(path, n, timeout=10):
    """N connections to the socket at PATH, each after one request asking
    to keep it (answered 200), held open and idle."""
    held = []
    try:
        for i in range(n):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(timeout)
            s.connect(str(path))
            held.append(s)
            s.sendall(_head(f"/k{i}"))
            status, _, _ = _response_head(s)
            assert status == 200, (i, status)
    except BaseException:
        for s in held:
            s.close()
        raise
    return held


def _eof(s, timeout=10) -> bool:
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except (socket.timeout, TimeoutError):
        return False


def _sockets(pid) -> int:
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return n


def test_a_client_holding_every_kept_connection_gets_the_function_503_and_no_more(
        stack, build):
    """A local client keeps 32 connections on each of a function's
    max_instances = 2 instances (all they hold), then asks for more: the
    instances stay 2 with at most 32 kept each, nginx's request for that
    function gets the gateway's queue_timeout 503 at its deadline (not a
    hang), another function answers 200 all along, and once idle_timeout
    passes the instances stop, closing the held connections; the function
    then serves nginx again."""
    gw, ngx = stack({"tf": build.testfn, "other": build.testfn},
                    sections={"tf": {"max_instances": "2", "queue_timeout": "500ms",
                                     "idle_timeout": "3s"}})
    held = _kept(gw.sock_path("tf"), 64)
    try:
        pids = gw.instances("tf")
        assert len(pids) == 2, pids
        for p in pids:
            # 32 kept, the listening socket, the log/db descriptors: bounded.
            assert _sockets(p) <= 32 + 4, (p, _sockets(p))
        r = ngx.get("/fn/tf?sleep=0", timeout=20)
        assert r.status == 503, (r.status, r.body)
        assert r.headers.get("retry-after") == "1", r.headers
        assert "queue_timeout" in r.json()["error"], r.body
        assert ngx.get("/fn/other?sleep=0").status == 200
        assert sorted(gw.instances("tf")) == sorted(pids)
        # idle_timeout stops them, held connections and all.
        wait_for(lambda: not any(proc_alive(p) for p in pids), 15,
                 what="the instances holding kept connections to stop when idle")
        assert all(_eof(s, 5) for s in held)
        assert ngx.get("/fn/tf?sleep=0").status == 200
    finally:
        for s in held:
            s.close()


def test_half_a_record_on_a_kept_connection_costs_one_request_timeout(stack, build):
    """A local client keeps a connection, then sends 5 bytes of the next
    record's header and nothing more.  The instance that took it is busy
    with it at most request_timeout: it answers that connection 504 (or
    closes it) and exits with status 3, logged; nginx's requests for the
    function, and another function's, answer 200 meanwhile."""
    gw, ngx = stack({"tf": build.testfn, "other": build.testfn},
                    sections={"tf": {"max_instances": "2", "request_timeout": "500ms"}})
    (s,) = _kept(gw.sock_path("tf"), 1)
    try:
        (pid,) = gw.instances("tf")
        s.sendall(_head("/half")[:5])
        assert ngx.get("/fn/tf?sleep=0", timeout=15).status == 200
        assert ngx.get("/fn/other?sleep=0").status == 200
        gw.wait_log(lambda ln: f"[fn tf pid {pid}] exited with status 3 after " in ln,
                    timeout=15, what="the wedged instance's timeout exit")
        assert not proc_alive(pid)
        assert _eof(s, 5)
        assert ngx.get("/fn/tf?sleep=0").status == 200
    finally:
        s.close()


def test_a_kept_connection_that_never_reads_costs_one_request_timeout(stack, build):
    """A local client sends request after request on a kept connection,
    each for 2 MB, and never reads: the instance blocks writing, is timed
    out after request_timeout (exit status 3), and the function serves
    nginx meanwhile and after; memory stays bounded by the socket buffer."""
    gw, ngx = stack({"tf": build.testfn, "other": build.testfn},
                    sections={"tf": {"max_instances": "2", "request_timeout": "500ms"}})
    (s,) = _kept(gw.sock_path("tf"), 1)
    try:
        (pid,) = gw.instances("tf")
        s.setblocking(False)
        params = {"REQUEST_METHOD": "GET", "QUERY_STRING": "big=2097152", "SCRIPT_NAME": "/fn/tf"}
        pairs = b"".join(_pair(k.encode(), v.encode()) for k, v in params.items())
        one = (_rec(1, struct.pack(">HB5x", 1, 1)) + _rec(4, pairs) + _rec(4) + _rec(5))
        sent = 0
        for _ in range(64):
            try:
                sent += s.send(one)
            except BlockingIOError:
                break
        assert sent >= len(one)
        assert ngx.get("/fn/tf?sleep=0", timeout=15).status == 200
        assert ngx.get("/fn/other?sleep=0").status == 200
        gw.wait_log(lambda ln: f"[fn tf pid {pid}] exited with status 3 after " in ln,
                    timeout=15, what="the blocked instance's timeout exit")
        assert not proc_alive(pid)
        assert ngx.get("/fn/tf?sleep=0").status == 200
    finally:
        s.close()


# --- setup4's one set-up struct: spare-born = exec-born --------------------


def _state(ngx, name):
    r = ngx.get(f"/fn/{name}?attack=state", timeout=15)
    assert r.status == 200, (name, r.status, r.body)
    return r.json()


# What differs between any two processes, or (as root) two functions: the
# pid, and each function's own uid and gid.
_OWN = ("NSpid:", "NSpgid:", "NSsid:", "Uid:", "Gid:", "Groups:")


def _normal(state, name):
    """STATE with what must differ between two functions (their names, in
    paths and FNGATE_FUNCTION, their pids and uids) left out or written as
    NAME."""
    state = dict(state, status={k: v for k, v in state["status"].items() if k not in _OWN})
    text = json.dumps({k: v for k, v in state.items() if k != "pid"}, sort_keys=True)
    text = re.sub(r"\b(ex|sp)\b", "NAME", text)
    return json.loads(text)


@pytest.mark.parametrize("user", [None, "nobody"])
def test_a_spare_born_instance_inherits_exactly_what_an_exec_born_one_does(stack, build, user):
    """Descriptors (targets, flags, CLOEXEC), environment, cwd, umask,
    every rlimit, signal mask and dispositions, credentials, seccomp
    filters, no_new_privs, dumpable, pdeathsig, nice, oom_score_adj,
    cgroup, session and group: the same for the hostile function spare-born
    ("sp") as exec-born ("ex"), with the fgs2 assignment's optional
    descriptors and the one set-up struct."""
    if user and os.geteuid() != 0:
        pytest.skip("needs root: functions run as their own uid")
    if make_var(build, "SAN_CFLAGS"):
        pytest.skip("sanitizer build: memory_limit (RLIMIT_AS) cannot hold an ASan handler "
                    "(the plain build runs this test)")
    section = {"memory_limit": "96M", "open_files": "64"}
    if user:
        section["user"] = user
    gw, ngx = both_ways(stack, build, section)
    ex, sp = _state(ngx, "ex"), _state(ngx, "sp")
    assert spare_born(sp["pid"]) and not spare_born(ex["pid"]), (ex["pid"], sp["pid"])
    a, b = _normal(ex, "ex"), _normal(sp, "sp")
    for key in sorted(set(a) | set(b)):
        assert a.get(key) == b.get(key), (key, a.get(key), b.get(key))
    assert ex["status"]["NoNewPrivs:"] == "1" and ex["status"]["Seccomp:"] == "2", ex["status"]
    assert ex["dumpable"] == 0, ex
    for k in ("Uid:", "Gid:"):
        if user:
            assert ex["status"][k].split() == sp["status"][k].split() == ["65534"] * 4, (k, ex)
        else:
            assert len(set(ex["status"][k].split())) == 1, (k, ex)


# --- a function author's function.conf against the supervisor -------------


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "huge"])
def test_a_function_conf_that_never_ends_disables_only_that_function(stack, build, kind):
    """A function author makes its function.conf a FIFO (an open() that
    blocks until someone writes), a symlink to /dev/zero (one endless line
    of NULs) or a sparse 1 TiB file.  The supervisor reads function.conf at
    start and on every reload: it must not block or eat memory.  That
    function alone is disabled, answering 503 with the reason; the other
    function, status and `fngate nginx --locations` answer at once, at
    start and after a SIGHUP that finds the file."""
    gw, ngx = stack({"evil": build.testfn, "good": build.testfn})
    assert ngx.get("/fn/evil?sleep=0").status == 200
    conf = gw.functions_dir / "evil" / "function.conf"
    if kind == "fifo":
        os.mkfifo(conf)
    elif kind == "dev-zero":
        os.symlink("/dev/zero", conf)
    else:
        with open(conf, "wb") as f:
            f.truncate(1 << 40)
    gw.hup()
    want = {"fifo": "not a regular file", "dev-zero": "not a regular file",
            "huge": "larger than 65536 bytes"}[kind]
    # The reload ends (the good function answers) and disables evil alone.
    wait_for(lambda: ngx.get("/fn/evil?sleep=0", timeout=5).status == 503, 10,
             what="evil disabled by the reload")
    r = ngx.get("/fn/evil?sleep=0", timeout=5)
    assert r.json() == {"error": f"function evil is disabled: {conf}: cannot open: {want}"}, r.body
    assert ngx.get("/fn/good?sleep=0", timeout=5).status == 200
    assert ngx.get("/_fngate/status", timeout=5).status == 200
    r = locations(build, gw.conf_path)
    assert sorted(blocks(r.stdout)) == ["evil", "good"]
    # A gateway started with the file there starts and serves good.
    gw.stop()
    gw.start(timeout=10)
    assert ngx.get("/fn/good?sleep=0", timeout=5).status == 200
    assert ngx.get("/fn/evil?sleep=0", timeout=5).status == 503


# --- one uid for everything (no root): reaching other processes without a
# signal: limits, priority, scheduling, affinity, I/O priority, SIGIO ------


def _warden(gw):
    for p in proc_children(gw.pid):
        if (_read(f"/proc/{p}/comm") or "").strip() == "fngate-warden":
            return p
    raise AssertionError("no fngate-warden child")


def _ioprio(pid) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(252, 1, pid)  # ioprio_get(IOPRIO_WHO_PROCESS, pid), x86-64


def _look(pid) -> dict:
    """What the attacks would change in PID, as root sees it."""
    limits = [ln for ln in (_read(f"/proc/{pid}/limits") or "").splitlines() if "msgqueue" in ln]
    state = [ln for ln in (_read(f"/proc/{pid}/status") or "").splitlines()
             if ln.startswith("State:")]
    return {"limits": limits, "nice": os.getpriority(os.PRIO_PROCESS, pid),
            "sched": os.sched_getscheduler(pid), "affinity": sorted(os.sched_getaffinity(pid)),
            "ioprio": _ioprio(pid), "stopped": bool(state) and "T" in state[0].split()[1]}


def _restore(pid, before):
    """Undoes whatever a successful attack did (as root), so the victims
    can be checked and stopped."""
    try:
        os.kill(pid, signal.SIGCONT)
        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
        os.setpriority(os.PRIO_PROCESS, pid, before["nice"])
        os.sched_setaffinity(pid, before["affinity"])
        subprocess.run(["prlimit", f"--pid={pid}", "--msgqueue=819200:819200"],
                       capture_output=True, timeout=10)
    except OSError:
        pass


OWNER_ATTACKS = [
    pytest.param("prlimit", {}, id="prlimit"),
    pytest.param("nice", {}, id="nice"),
    pytest.param("nice", {"who": "user", "pid0": True}, id="nice-user"),
    pytest.param("sched", {}, id="sched"),
    pytest.param("affinity", {}, id="affinity"),
    pytest.param("ioprio", {}, id="ioprio"),
    pytest.param("setown", {"signal_only": True}, id="setown"),
    # The same on this kernel with the sandbox told to act as ABI 5's
    # (orphan4's test knob): the seccomp signal rules alone.
    pytest.param("setown", {"signal_only": True, "abi": "5"}, id="setown-abi5"),
]


@pytest.mark.parametrize("attack,extra", OWNER_ATTACKS)
def test_without_root_a_function_cannot_reach_another_process_s_limits_or_scheduling(
        stack, build, users_db, attack, extra):
    """fngate without root: every function, the spare, the warden, the
    supervisor and the pool share one uid, and the kernel lets a process
    change another of its uid's rlimits (prlimit64: RLIMIT_CPU kills it,
    RLIMIT_NOFILE cripples it), nice value (setpriority, also PRIO_USER:
    every process of the uid), scheduling class (SCHED_IDLE starves it),
    CPU affinity and I/O priority, and send it any signal through
    F_SETOWN/F_SETSIG on a descriptor of its own; Landlock scopes none of
    these but the last (ABI 6).  Each attempt on each other process must
    answer EPERM and leave the target as it was (setown: the signal must
    not arrive)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to look at and restore the targets")
    _owner_attack(stack, build, users_db, attack, extra,
                  (HOSTING_UID, HOSTING_UID, [grp.getgrnam("nogroup").gr_gid]))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: fngate as root gives functions uids")
@pytest.mark.parametrize("attack", ["prlimit", "nice", "sched", "affinity", "ioprio", "setown"])
def test_as_root_no_function_reaches_another_process_s_limits_or_scheduling(
        stack, build, users_db, attack):
    """fngate as root: every function its own uid, the spare, warden and
    supervisor root, the pool its own: the kernel's uid checks refuse the
    same attempts (EPERM) and nothing changes."""
    _owner_attack(stack, build, users_db, attack, {"signal_only": attack == "setown"}, None)


def _owner_attack(stack, build, users_db, attack, extra, run_as):
    env = dict(os.environ, FNGATE_TEST_LANDLOCK_ABI=extra["abi"]) if "abi" in extra else None
    gw, ngx = stack({"v1": build.testfn, "evil": build.hostile},
                    gateway={"database_url": users_db.dsn(), "spare_processes": 1},
                    defaults={"idle_timeout": "60s"}, run_as=run_as, env=env)
    v1 = ngx.get_json("/fn/v1?sleep=0")[1]["pid"]
    wait_for(lambda: len(gw.spares()) == 1, 10, what="one spare")
    targets = {"another function's instance": v1, "the spare": gw.spares()[0],
               "the supervisor": gw.pid, "the warden": _warden(gw),
               "the pool": wait_for(gw.pool_pid, 5, what="the pool")}
    failures = []
    for what, pid in targets.items():
        before = _look(pid)
        args = {"attack": attack, "pid": 0 if extra.get("pid0") else pid}
        if "who" in extra:
            args["who"] = extra["who"]
        if attack == "setown":
            args["sig"] = int(signal.SIGSTOP)
        q = "&".join(f"{k}={v}" for k, v in args.items())
        r = ngx.get(f"/fn/evil?{q}", timeout=15)
        assert r.status == 200, (r.status, r.body)
        got = r.json()
        time.sleep(0.05)  # a SIGIO is sent at the write; let it land
        after = _look(pid)
        if after != before:
            failures.append(f"{attack} on {what} (pid {pid}): errno {got['errno']}, "
                            f"changed {before} -> {after}")
            _restore(pid, before)
        elif not extra.get("pid0") and not extra.get("signal_only") and \
                got["errno"] != errno.EPERM:
            # (F_SETOWN itself succeeds where Landlock scopes the signal it
            # would send: the signal is what must not arrive.)
            failures.append(f"{attack} on {what}: errno {got['errno']} ({got['error']}), "
                            "want EPERM")
    assert ngx.get("/fn/v1?sleep=0").status == 200
    assert not failures, "\n".join(failures)


# --- the SDK's connection end (inst4's cuts): an answer before the body ----


def test_an_answer_before_a_big_body_is_read_reaches_the_client_not_a_502(stack, build):
    """A client posts 3 MB to a function that answers without reading it:
    once refused by max_body (the SDK's 413, sent before the body is
    read), once answered by a handler that never reads its body.  The
    instance closes with most of stdin unread while nginx may still be
    sending it: every client gets the function's answer, never nginx's
    502, ten times over, and the instance goes on serving."""
    gw, ngx = stack({"small": build.testfn, "any": build.testfn},
                    sections={"small": {"max_body": "1M"}, "any": {"max_body": "0"}})
    body = b"x" * (3 << 20)
    for i in range(10):
        r = ngx.post("/fn/small?sleep=0", body, timeout=30)
        assert (r.status, r.json()) == (413, {
            "error": f"request body of {len(body)} bytes exceeds max_body (1048576 bytes)"}), \
            (i, r.status, r.body)
        r = ngx.post("/fn/any?sleep=0", body, timeout=30)
        assert r.status == 200, (i, r.status, r.body)
    assert ngx.get("/fn/small?sleep=0").status == 200
    assert len(gw.instances("small")) == 1


def test_idle_kept_connections_older_than_request_timeout_are_no_overdue_requests(stack, build):
    """A front end's kept connections idle for many request_timeouts: the
    police asks who holds them, finds the instance waiting for a next
    request and spares it; each connection then serves its next request
    from the same instance (no 504, no kill), and the function's
    request_timeout still ends a real overdue request on one of them."""
    gw, ngx = stack({"tf": build.testfn},
                    sections={"tf": {"max_instances": "1", "request_timeout": "300ms",
                                     "idle_timeout": "60s"}})
    held = _kept(gw.sock_path("tf"), 4)
    try:
        (pid,) = gw.instances("tf")
        time.sleep(2.0)  # more than 6 request_timeouts, idle
        for i, s in enumerate(held):
            s.sendall(_head(f"/again{i}"))
            status, _, payload = _response_head(s)
            assert status == 200 and json.loads(payload)["path"] == f"/again{i}", (i, payload)
        assert gw.instances("tf") == [pid] and "exceeded its request_timeout" not in gw.log()
        params = {"REQUEST_METHOD": "GET", "QUERY_STRING": "hang=1", "SCRIPT_NAME": "/fn/tf"}
        pairs = b"".join(_pair(k.encode(), v.encode()) for k, v in params.items())
        held[0].sendall(_rec(1, struct.pack(">HB5x", 1, 1)) + _rec(4, pairs) + _rec(4) + _rec(5))
        status, _, payload = _response_head(held[0])
        assert (status, json.loads(payload)) == (
            504, {"error": "the function exceeded its request_timeout"})
        gw.wait_log(lambda ln: f"[fn tf pid {pid}] exited with status 3 after " in ln,
                    timeout=10, what="the timed-out instance's exit line")
    finally:
        for s in held:
            s.close()


def test_a_client_that_hangs_up_mid_answer_costs_the_instance_nothing(stack, build):
    """Ten HTTP clients ask for 8 MB and hang up after the first bytes:
    the instance notices a closed connection, not a crash; the same
    instance answers the next request, and another function throughout."""
    gw, ngx = stack({"tf": build.testfn, "other": build.testfn},
                    sections={"tf": {"max_instances": "1"}})
    pid = ngx.get_json("/fn/tf?sleep=0")[1]["pid"]
    for _ in range(10):
        c = socket.create_connection(("127.0.0.1", ngx.port), timeout=10)
        c.sendall(b"GET /fn/tf?big=8388608 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.recv(100).startswith(b"HTTP/1.1 200")
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()  # a reset, mid-body
        assert ngx.get("/fn/other?sleep=0").status == 200
    wait_for(lambda: ngx.get_json("/fn/tf?sleep=0", timeout=10)[1].get("pid") == pid, 10,
             what="the same instance answering after the hang-ups")
    assert gw.instances("tf") == [pid]
    assert f"[fn tf pid {pid}] exited" not in gw.log()
