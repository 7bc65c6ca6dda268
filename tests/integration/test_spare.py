"""Spare processes (issue 11 point 2): a cold start of a function with a
handler.so goes through an already exec'd fngate-spare that takes on the
function's identity and sandbox before it loads the function's code.

Every wait is bounded; no timing is asserted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from fngate_harness import proc_alive, wait_for


def spare_stack(stack, build, name="hello", **kw):
    return stack({name: build.handler("hello")},
                 shared_objects={name: build.handler_so("hello")}, **kw)


def test_cold_start_through_a_spare_serves_the_request(stack, build):
    gw, ngx = spare_stack(stack, build, gateway={"log_level": "debug"})
    wait_for(lambda: len(gw.spares()) == 1, 5, what="one spare process")
    spare = gw.spares()[0]
    assert gw.instances("hello") == []

    assert ngx.get_json("/fn/hello?name=spare") == (200, {"hello": "spare"})
    assert gw.instances("hello") == [spare], "the spare did not become the instance"
    gw.wait_log(lambda log: f"[fn hello pid {spare}] spawned (generation 0, spare process)" in log,
                what="the spawn line naming the spare")
    gw.wait_log(lambda log: f"[fn hello pid {spare}] ready in" in log and "dlopen" in log,
                what="the spare's cold-start trace")
    # A replacement comes, off the cold start's path.
    wait_for(lambda: len(gw.spares()) == 1 and gw.spares()[0] != spare, 5,
             what="a replacement spare")
    assert ngx.get_json("/fn/hello") == (200, {"hello": "world"})
    with open(f"/proc/{spare}/comm") as f:
        assert f.read().strip() == "hello"


def test_a_function_without_handler_so_is_an_exec(stack, build):
    gw, ngx = stack({"hello": build.handler("hello")})
    wait_for(lambda: len(gw.spares()) == 1, 5, what="one spare process")
    spare = gw.spares()[0]
    assert ngx.get_json("/fn/hello") == (200, {"hello": "world"})
    inst = gw.instances("hello")
    assert len(inst) == 1 and inst[0] != spare
    assert os.path.realpath(f"/proc/{inst[0]}/exe") == os.path.realpath(gw.handler_path("hello"))
    assert gw.spares() == [spare], "the spare was used for a function without handler.so"


def test_spare_processes_0_gives_the_exec_path(stack, build):
    gw, ngx = spare_stack(stack, build, gateway={"spare_processes": 0})
    assert gw.spares() == []
    assert ngx.get_json("/fn/hello") == (200, {"hello": "world"})
    inst = gw.instances("hello")
    assert len(inst) == 1
    assert os.path.realpath(f"/proc/{inst[0]}/exe") == os.path.realpath(gw.handler_path("hello"))
    assert gw.spares() == []


def test_a_stale_handler_so_is_not_used(stack, build):
    gw, ngx = spare_stack(stack, build, start=False)
    os.utime(gw.so_path("hello"), (1, 1))
    gw.start()
    gw.wait_log(lambda log: "handler.so is older than the handler: not used" in log,
                what="the stale handler.so warning")
    assert ngx.get_json("/fn/hello") == (200, {"hello": "world"})
    inst = gw.instances("hello")
    assert os.path.realpath(f"/proc/{inst[0]}/exe") == os.path.realpath(gw.handler_path("hello"))


def test_a_spare_killed_while_waiting_is_replaced_and_logged(stack, build):
    gw, ngx = spare_stack(stack, build)
    wait_for(lambda: len(gw.spares()) == 1, 5, what="one spare process")
    spare = gw.spares()[0]
    os.kill(spare, signal.SIGKILL)
    gw.wait_log(lambda log: f"[spare pid {spare}] killed by signal 9 after " in log
                and "while waiting for an assignment" in log, what="the spare's exit line")
    wait_for(lambda: len(gw.spares()) == 1 and gw.spares()[0] != spare, 5,
             what="a replacement spare")
    assert ngx.get_json("/fn/hello") == (200, {"hello": "world"})


def test_status_and_metrics_show_the_spares(stack, build):
    gw, ngx = spare_stack(stack, build, gateway={"spare_processes": 2})
    wait_for(lambda: len(gw.spares()) == 2, 5, what="two spare processes")
    r = ngx.get("/_fngate/status")
    assert r.status == 200, r
    assert json.loads(r.body)["spares"] == {"ready": 2, "wanted": 2, "assigned": 0, "failed": 0}

    assert ngx.get_json("/fn/hello") == (200, {"hello": "world"})
    wait_for(lambda: len(gw.spares()) == 2, 5, what="the spare replaced")
    wait_for(lambda: json.loads(ngx.get("/_fngate/status").body)["spares"]["ready"] == 2, 5,
             what="status counting the replacement")
    assert json.loads(ngx.get("/_fngate/status").body)["spares"] == {
        "ready": 2, "wanted": 2, "assigned": 1, "failed": 0}
    text = ngx.get("/_fngate/metrics").body.decode()
    assert 'fngate_spare_processes{state="ready"} 2\n' in text
    assert 'fngate_spare_processes{state="wanted"} 2\n' in text
    assert 'fngate_spare_assignments_total{result="ok"} 1\n' in text
    r = subprocess.run([str(build.fngate), "status", "-c", str(gw.conf_path)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert "spare processes: 2 ready of 2" in r.stdout.splitlines(), r.stdout


def hostile_lines(gw) -> dict:
    """{attempt: "rc=.. errno=.."} from the hostile.so constructor's lines."""
    out = {}
    for ln in gw.log().splitlines():
        if "hostile-so: " in ln:
            rest = ln.split("hostile-so: ", 1)[1]
            name, _, result = rest.partition(" ")
            out.setdefault(name, []).append(result)
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: functions run as their own uid")
def test_a_hostile_constructor_gains_nothing(stack, build, tmp_path):
    gw, ngx = stack({"evil": build.handler("hello")},
                    shared_objects={"evil": build.dir / "tests/integration/hostile.so"},
                    gateway={"spare_processes": 2})
    wait_for(lambda: len(gw.spares()) == 2, 5, what="two spare processes")
    before = gw.spares()

    assert ngx.get_json("/fn/evil") == (200, {"attacked": True})
    gw.wait_log(lambda log: "hostile-so: spares-found" in log, what="the constructor's report")
    got = hostile_lines(gw)
    assert got["setuid-0"] == ["rc=-1 errno=EPERM"]
    assert got["open-shadow"] == ["rc=-1 errno=EACCES"]
    assert got["unshare-user"] == ["rc=-1 errno=EPERM"]
    assert got["fds-5-20-open"] == ["0"], "a descriptor above 4 reached the function"
    assert got["fd3-is-socket"] == ["rc=-1 errno=ENOTSOCK"], "fd 3 is still the spare's socket"
    state = got["no_new_privs"][0].split()
    assert state[:5] == ["1", "seccomp", "2", "dumpable", "0"], state
    assert state[5] == "uid" and int(state[6]) != 0
    # The other waiting spare: found, and out of reach.
    assert int(got["spares-found"][0]) >= 1
    n = int(got["spares-found"][0])
    assert got["open-spare-environ"] == ["rc=-1 errno=EACCES"] * n
    assert got["open-spare-socket"] == ["rc=-1 errno=EACCES"] * n
    assert got["kill-spare"] == ["rc=-1 errno=EPERM"] * n
    assert got["ptrace-spare"] == ["rc=-1 errno=EPERM"] * n
    inst = gw.instances("evil")
    assert len(inst) == 1 and inst[0] in before
    other = [p for p in before if p != inst[0]]
    assert other and all(proc_alive(p) for p in other), "the hostile function killed a spare"
    assert gw.running()


def test_a_handler_so_that_cannot_load_falls_back_to_exec(stack, build, tmp_path):
    bad = tmp_path / "bad.so"
    bad.write_bytes(b"not an ELF object\n")
    gw, ngx = stack({"bad": build.handler("hello")}, shared_objects={"bad": bad})
    wait_for(lambda: len(gw.spares()) == 1, 5, what="one spare process")
    spare = gw.spares()[0]
    # The spare fails (a failed start, logged like any instance's exit); the
    # start after it is an exec of the handler, which serves.
    assert ngx.get_json("/fn/bad", timeout=10) == (200, {"hello": "world"})
    line = gw.wait_log(lambda ln: f"[fn bad pid {spare}] exited with status 127" in ln,
                       what="the spare's exit as an instance")
    assert "crash 1 in a row" in line, line
    so = os.path.realpath(gw.so_path("bad"))
    assert f"fngate: cannot load {gw.so_path('bad')}: " in gw.log() or \
        f"fngate: cannot load {so}: " in gw.log()
    gw.wait_log(lambda ln: "cannot be loaded by a spare process: cold starts exec the handler"
                in ln, what="the fallback notice")
    inst = gw.instances("bad")
    assert len(inst) == 1
    assert os.path.realpath(f"/proc/{inst[0]}/exe") == os.path.realpath(gw.handler_path("bad"))


def test_a_spare_instance_queries_through_the_pool(stack, build, users_db):
    """The pool channel goes to the spare in its assignment (fd 3), and the
    pool's hand-over names the spare's pid as the instance's."""
    gw, ngx = stack({"users": build.handler("users")},
                    shared_objects={"users": build.handler_so("users")},
                    gateway={"database_url": users_db.dsn()})
    wait_for(lambda: len(gw.spares()) == 1, 5, what="one spare process")
    spare = gw.spares()[0]
    r = ngx.get("/fn/users/2", timeout=10)
    assert r.status == 200, r
    body = json.loads(r.body)
    assert body["id"] == 2 and body["email"] == "user2@example.com"
    assert gw.instances("users") == [spare]
    r = ngx.get("/fn/users", timeout=10)
    assert r.status == 200 and len(json.loads(r.body)) == 500
