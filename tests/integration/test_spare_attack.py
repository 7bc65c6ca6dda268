"""Red team on spare processes (issue 11 point 2): every function of the
attack suite spare-born, the waiting spare attacked from a function, limits
and credentials of a spare-born instance against an exec-born one of the
same function, the request timeout, max_requests, idle stop and exit lines
of a spare-born instance, handler.so files that are not what they seem, and
a spare that dies around its assignment.  Each attempt asserts what the
kernel or the user sees.

Every wait is bounded; no timing is asserted.
"""

from __future__ import annotations

import errno
import grp
import json
import os
import re
import signal
import threading

import pytest

from fngate_harness import make_var, proc_alive, wait_for
from test_attack import HOSTING_UID, attack, landlock_abi, run_suite


def _skip_memory_limit_under_sanitizers(build):
    # AddressSanitizer reserves terabytes of shadow address space at start,
    # so any RLIMIT_AS (memory_limit) makes a sanitized handler abort before
    # main(); the plain build runs these tests.
    if make_var(build, "SAN_CFLAGS"):
        pytest.skip("sanitizer build: memory_limit (RLIMIT_AS) cannot hold an ASan handler "
                    "(the plain build runs this test)")


def so(build, name: str):
    p = build.dir / f"tests/integration/{name}.so"
    if not p.is_file():
        raise AssertionError(f"{p} is not built: run make check")
    return p


def spare_born(pid: int) -> bool:
    return os.path.basename(os.path.realpath(f"/proc/{pid}/exe")) == "fngate-spare"


def suite_objects(build) -> dict:
    return {"v1": so(build, "testfn"), "v2": so(build, "dbfn"),
            "evil": so(build, "hostile-exec"), "evil2": so(build, "hostile-exec")}


def run_spare_suite(stack, build, users_db, run_as=None):
    front = []

    def started(gw, ngx):
        front.append(ngx)
        wait_for(lambda: len(gw.spares()) == 4, 10, what="four spare processes")

    gw = run_suite(stack, build, users_db, run_as=run_as, shared_objects=suite_objects(build),
                   gateway={"spare_processes": 4}, started=started)
    for name in ("v1", "v2"):
        inst = gw.instances(name)
        assert inst and all(spare_born(p) for p in inst), (name, inst)
    # evil and evil2 too (each cold start of the four took a spare).
    spares = json.loads(front[0].get("/_fngate/status").body)["spares"]
    assert spares["assigned"] >= 4 and spares["failed"] == 0, spares
    return gw


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: fngate as root gives functions uids")
def test_attacks_fail_as_root_spare_born(stack, build, users_db):
    run_spare_suite(stack, build, users_db)


def test_attacks_fail_without_root_spare_born(stack, build, users_db):
    if os.geteuid() == 0:
        run_as = (HOSTING_UID, HOSTING_UID, [grp.getgrnam("nogroup").gr_gid])
    else:
        run_as = None
    run_spare_suite(stack, build, users_db, run_as=run_as)


def waiting_spare_attacks(stack, build, run_as):
    """A spare-born hostile function against the spare waiting next to it."""
    # One evil instance for the whole test: under load a second one would
    # take a listed spare (a spare counts as waiting until its handler.so is
    # mapped), and the attack could then land on that very process.
    gw, ngx = stack({"evil": build.hostile}, shared_objects={"evil": so(build, "hostile-exec")},
                    gateway={"spare_processes": 2}, run_as=run_as,
                    sections={"evil": {"max_instances": 1, "idle_timeout": "60s"}})
    wait_for(lambda: len(gw.spares()) == 2, 10, what="two spare processes")
    me = attack(ngx, attack="self")
    assert me["dumpable"] == 0, me
    evil = gw.instances("evil")
    assert len(evil) == 1 and spare_born(evil[0]), evil
    wait_for(lambda: len(gw.spares()) == 2, 10, what="the taken spare replaced")
    for pid in gw.spares():
        for name, want, args in (("kill", errno.EPERM, {}),
                                 ("ptrace", errno.EPERM, {}),
                                 ("vmread", errno.EPERM, {}),
                                 ("environ", errno.EACCES, {}),
                                 ("fd", errno.EACCES, {"fd": 3}),
                                 ("getfd", errno.EPERM, {"fd": 3})):
            if name == "kill" and run_as and landlock_abi() < 6:
                continue  # one uid and no Landlock signal scope: nothing to stop a signal
            got = attack(ngx, attack=name, pid=pid, **args)
            assert got["errno"] == want, (name, pid, got)
            assert proc_alive(pid), f"the waiting spare {pid} died of {name}"
    # The spares are still there, still waiting, and still serve.
    spares = gw.spares()
    assert len(spares) == 2 and all(proc_alive(p) for p in spares)
    assert "while waiting for an assignment" not in gw.log()
    assert gw.running()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: functions run as their own uid")
def test_a_function_cannot_touch_the_waiting_spare_as_root(stack, build):
    waiting_spare_attacks(stack, build, None)


def test_a_function_cannot_touch_the_waiting_spare_without_root(stack, build):
    if os.geteuid() == 0:
        run_as = (HOSTING_UID, HOSTING_UID, [grp.getgrnam("nogroup").gr_gid])
    else:
        run_as = None
    waiting_spare_attacks(stack, build, run_as)


def both_ways(stack, build, section, **kw):
    """The same hostile function twice: "ex" always exec'd, "sp" spare-born."""
    gw, ngx = stack({"ex": build.hostile, "sp": build.hostile},
                    shared_objects={"sp": so(build, "hostile-exec")},
                    sections={"ex": dict(section), "sp": dict(section)}, **kw)
    wait_for(lambda: len(gw.spares()) == 1, 10, what="one spare process")
    return gw, ngx


def ask(ngx, name, **args):
    q = "&".join(f"{k}={v}" for k, v in args.items())
    r = ngx.get(f"/fn/{name}?{q}", timeout=15)
    assert r.status == 200, (name, args, r.status, r.body)
    return json.loads(r.body)


def test_limits_hold_in_a_spare_born_instance_as_in_an_exec_born_one(stack, build):
    _skip_memory_limit_under_sanitizers(build)
    gw, ngx = both_ways(stack, build, {"memory_limit": "96M", "open_files": "32"})
    for name in ("ex", "sp"):
        assert ask(ngx, name, attack="alloc", mb=16)["errno"] == 0, name
        got = ask(ngx, name, attack="alloc", mb=200)
        assert got["errno"] == errno.ENOMEM, (name, got)
        got = ask(ngx, name, attack="nofile")
        assert got["errno"] == errno.EMFILE, (name, got)
        # 32 minus fds 0..4 and what the SDK holds open between requests.
        assert 20 <= got["opened"] <= 27, (name, got)
    ex, sp = gw.instances("ex"), gw.instances("sp")
    assert len(ex) == 1 and not spare_born(ex[0]), ex
    assert len(sp) == 1 and spare_born(sp[0]), sp
    assert ask(ngx, "ex", attack="nofile")["opened"] == ask(ngx, "sp", attack="nofile")["opened"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: functions run as their own uid")
def test_credentials_of_a_spare_born_instance_are_an_exec_born_ones(stack, build):
    gw, ngx = both_ways(stack, build, {"user": "nobody"})
    ex, sp = ask(ngx, "ex", attack="creds"), ask(ngx, "sp", attack="creds")
    assert spare_born(gw.instances("sp")[0]) and not spare_born(gw.instances("ex")[0])
    assert ex == sp, (ex, sp)
    nobody = "65534"
    assert sp["Uid:"].split() == [nobody] * 4, sp
    assert sp["Groups:"].split() == [nobody] or sp["Groups:"].split() == \
        [str(os.getgrouplist("nobody", 65534)[0])], sp
    for cap in ("CapInh:", "CapPrm:", "CapEff:", "CapAmb:"):
        assert int(sp[cap], 16) == 0, (cap, sp)
    assert sp["NoNewPrivs:"] == "1" and sp["Seccomp:"] == "2", sp


# --- a spare-born instance's life: timeout, max_requests, idle, exit lines --


def tf_stack(stack, build, **sections):
    gw, ngx = stack({"tf": build.testfn}, shared_objects={"tf": so(build, "testfn")},
                    sections={"tf": sections}, gateway={"spare_processes": 1})
    wait_for(lambda: len(gw.spares()) == 1, 10, what="one spare process")
    return gw, ngx


def test_request_timeout_in_a_spare_born_instance(stack, build):
    gw, ngx = tf_stack(stack, build, request_timeout="300ms")
    pid = ask(ngx, "tf", sleep=0)["pid"]
    assert spare_born(pid)
    r = ngx.get("/fn/tf?hang=1", timeout=30)
    assert r.status == 504, (r.status, r.body)
    assert r.json() == {"error": "the function exceeded its request_timeout"}
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers.get("x-request-id") or ""), r.headers
    gw.wait_log(lambda ln: f"[fn tf pid {pid}] exited with status 3 after " in ln
                and ", 1 requests" in ln, what="the timed-out instance's exit line")
    assert not proc_alive(pid)
    assert ask(ngx, "tf", sleep=0)["pid"] != pid


def test_max_requests_recycles_a_spare_born_instance(stack, build):
    gw, ngx = tf_stack(stack, build, max_requests="2")
    pids = [ask(ngx, "tf", sleep=0)["pid"] for _ in range(2)]
    wait_for(lambda: len(gw.spares()) == 1, 10, what="the taken spare replaced")
    pids.append(ask(ngx, "tf", sleep=0)["pid"])
    assert pids[0] == pids[1] != pids[2], pids
    assert spare_born(pids[2]), "the recycled instance's successor was not spare-born"
    gw.wait_log(lambda ln: f"[fn tf pid {pids[0]}] exited with status 0" in ln,
                what="the recycled instance's exit line")


def test_idle_stop_of_a_spare_born_instance(stack, build):
    gw, ngx = tf_stack(stack, build, idle_timeout="1s")
    pid = ask(ngx, "tf", sleep=0)["pid"]
    assert spare_born(pid)
    wait_for(lambda: gw.instances("tf") == [], 10, what="the idle stop")
    gw.wait_log(lambda ln: f"[fn tf pid {pid}] " in ln and "exited with status 0" in ln,
                what="the idle instance's exit line")
    st = json.loads(ngx.get("/_fngate/status").body)
    assert st["spares"]["assigned"] == 1, st


def test_a_spare_born_instance_that_aborts_costs_its_request_only(stack, build):
    gw, ngx = tf_stack(stack, build)
    pid = ask(ngx, "tf", sleep=0)["pid"]
    assert spare_born(pid)
    r = ngx.get("/fn/tf?abort=1", timeout=15)
    assert r.status == 502, (r.status, r.body)
    assert "error" in json.loads(r.body)
    gw.wait_log(lambda ln: f"[fn tf pid {pid}] killed by signal 6" in ln,
                what="the aborted instance's exit line")
    assert ask(ngx, "tf", sleep=0)["pid"] != pid


# --- handler.so files that are not what they seem ---------------------------


def test_a_handler_so_that_is_a_fifo_or_directory_is_not_used(stack, build):
    gw, ngx = stack({"ff": build.handler("hello"), "dd": build.handler("hello")}, start=False)
    os.mkfifo(gw.so_path("ff"))
    os.mkdir(gw.so_path("dd"))
    gw.start()
    for name in ("ff", "dd"):
        gw.wait_log(lambda log, n=name: f"functions/{n}/handler.so is not a regular file" in log,
                    what=f"{name}'s warning")
        assert ngx.get_json(f"/fn/{name}", timeout=10) == (200, {"hello": "world"})
        inst = gw.instances(name)
        assert len(inst) == 1 and not spare_born(inst[0]), (name, inst)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a file only root can read")
def test_a_handler_so_symlink_to_what_only_root_reads_gets_nothing(stack, build, tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir(mode=0o700)
    target = secret / "root-only.so"
    target.write_bytes(build.handler_so("hello").read_bytes())
    os.chmod(target, 0o600)
    gw, ngx = stack({"ln": build.handler("hello")}, start=False)
    os.symlink(target, gw.so_path("ln"))
    os.utime(target)  # newer than the handler: used
    gw.start()
    wait_for(lambda: len(gw.spares()) == 1, 10, what="one spare process")
    spare = gw.spares()[0]
    # The spare opens it as the function's uid: refused, a failed start, and
    # the handler's exec serves.
    assert ngx.get_json("/fn/ln", timeout=15) == (200, {"hello": "world"})
    gw.wait_log(lambda ln: f"[fn ln pid {spare}] exited with status 127" in ln,
                what="the spare's failed start")
    assert "Permission denied" in gw.log(), gw.log()[-2000:]
    inst = gw.instances("ln")
    assert len(inst) == 1 and not spare_born(inst[0])


# --- a spare that dies around its assignment --------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: stops the root spare")
def test_a_spare_killed_after_its_assignment_was_sent_costs_nothing(stack, build):
    gw, ngx = stack({"hello": build.handler("hello")},
                    shared_objects={"hello": build.handler_so("hello")},
                    gateway={"log_level": "debug"})
    # Ready as the supervisor sees it: a spare stopped before it said so is
    # never handed a cold start.
    wait_for(lambda: json.loads(ngx.get("/_fngate/status").body)["spares"]["ready"] == 1, 10,
             what="one ready spare process")
    spare = gw.spares()[0]
    os.kill(spare, signal.SIGSTOP)
    got = {}

    def get():
        got["r"] = ngx.get_json("/fn/hello", timeout=20)

    t = threading.Thread(target=get)
    t.start()
    try:
        gw.wait_log(lambda ln: f"[fn hello pid {spare}] spawned (generation 0, spare process)"
                    in ln, timeout=10, what="the stopped spare taken")
    finally:
        os.kill(spare, signal.SIGKILL)
    t.join(25)
    assert got.get("r") == (200, {"hello": "world"}), got
    gw.wait_log(lambda ln: f"pid {spare}] killed by signal 9" in ln,
                what="the killed spare's exit line")
    assert gw.running()


# --- an assignment too big to send -------------------------------------------


def test_an_environment_too_big_for_an_assignment_costs_no_spare(stack, build):
    """A function whose environment exceeds an assignment (128 KiB) execs,
    and leaves the waiting spare to the next function: it used to take the
    spare, fail to send (EMSGSIZE), and kill it."""
    env = {f"env.K{i:04d}": "v" * 150 for i in range(1000)}  # ~160 KiB
    gw, ngx = stack({"big": build.testfn, "hello": build.handler("hello")},
                    shared_objects={"big": so(build, "testfn"),
                                    "hello": build.handler_so("hello")},
                    sections={"big": env})
    wait_for(lambda: len(gw.spares()) == 1, 10, what="one spare process")
    spare = gw.spares()[0]
    r = ngx.get("/fn/big", timeout=15)
    assert r.status == 200, (r.status, r.body)
    assert r.json()["env"]["K0999"] == "v" * 150
    big = gw.instances("big")
    assert len(big) == 1 and not spare_born(big[0]), big
    assert gw.spares() == [spare] and proc_alive(spare), "the spare was spent on an exec"
    assert "cannot hand the cold start to the spare" not in gw.log()
    st = json.loads(ngx.get("/_fngate/status").body)["spares"]
    assert st["failed"] == 0 and st["assigned"] == 0, st
    # The next function's cold start still has it.
    assert ngx.get_json("/fn/hello") == (200, {"hello": "world"})
    assert gw.instances("hello") == [spare]


def test_a_small_memory_limit_is_no_failed_start_through_a_spare(stack, build):
    _skip_memory_limit_under_sanitizers(build)
    gw, ngx = stack({"ex": build.handler("hello"), "sp": build.handler("hello")},
                    shared_objects={"sp": build.handler_so("hello")},
                    sections={"ex": {"memory_limit": "2M"}, "sp": {"memory_limit": "2M"}})
    wait_for(lambda: len(gw.spares()) == 1, 10, what="one spare process")
    assert ngx.get_json("/fn/ex", timeout=10) == (200, {"hello": "world"})
    assert ngx.get_json("/fn/sp", timeout=10) == (200, {"hello": "world"})
    assert "exited with status 127" not in gw.log(), gw.log()[-1500:]
    assert "cannot be loaded by a spare process" not in gw.log()
    # The tight limit sent sp to the exec path: the spare is still waiting.
    assert gw.instances("sp") and len(gw.spares()) == 1
    assert json.loads(ngx.get("/_fngate/status").body)["spares"]["assigned"] == 0


def test_a_stopped_spare_costs_one_slow_cold_start_not_a_hang(stack, build):
    # Without root on a kernel whose Landlock cannot scope signals, any
    # process of the gateway's uid can SIGSTOP the waiting spare; the start
    # handed to it must not hold the function for ever: it is killed, logged
    # as a failed start, and the function's cold starts exec from then on.
    gw, ngx = stack({"hello": build.handler("hello")},
                    shared_objects={"hello": build.handler_so("hello")})
    # Ready as the supervisor sees it: a spare stopped before it said so is
    # never handed a cold start.
    wait_for(lambda: json.loads(ngx.get("/_fngate/status").body)["spares"]["ready"] == 1, 10,
             what="one ready spare process")
    spare = gw.spares()[0]
    os.kill(spare, signal.SIGSTOP)
    assert ngx.get_json("/fn/hello", timeout=30) == (200, {"hello": "world"})
    # The request is served by another instance meanwhile; the stopped one
    # holds a place under max_instances until the start timeout (10 s).
    wait_for(lambda: "(did not start)" in gw.log(), 20, what="the stopped start's exit line")
    log = gw.log()
    assert re.search(rf"\[fn hello pid {spare}\] not ready 1\d{{4}} ms after its start: SIGKILL",
                     log), log[-2000:]
    assert re.search(rf"\[fn hello pid {spare}\] killed by signal 9 \(SIGKILL\) after "
                     rf"1\d\.\d{{3}}s, 0 requests \(did not start\)", log), log[-2000:]
    assert "cannot be loaded by a spare process: cold starts exec the handler" in log
    assert not proc_alive(spare)
    # The function now execs; a new spare waits for the next function.
    assert ngx.get_json("/fn/hello", timeout=30) == (200, {"hello": "world"})
    wait_for(lambda: len(gw.spares()) == 1, 10, what="a replacement spare")
