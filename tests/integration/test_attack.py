"""Issue 6's attack suite: a hostile function (tests/integration/hostile.c,
against the SDK) next to two victims, one with a database channel, behind a
real nginx and a real Postgres.  Run twice: fngate as root (each function
its own uid) and fngate as an unprivileged user (the shared-hosting case,
everything one uid).  Each attack asserts the errno the kernel gave it, and
both victims answer 200, from the same instances, after every attack.

Where the running kernel lacks a feature an attack's defence needs (Landlock,
or its ABI 6 signal scoping), that line is skipped with a printed reason and
the rest is still checked.
"""

from __future__ import annotations

import ctypes
import errno
import grp
import json
import os
import signal
import time

import pytest

from fngate_harness import proc_alive, proc_state, wait_for

# A uid no system account uses, for the unprivileged run: a shared-hosting
# user in the web server's group (nogroup here), as hosting panels set up.
HOSTING_UID = 60999


def landlock_abi() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    r = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return r if r > 0 else 0


def proc_uid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def attack(ngx, **args):
    q = "&".join(f"{k}={v}" for k, v in args.items())
    r = ngx.get(f"/fn/evil?{q}", timeout=15)
    assert r.status == 200, (args, r.status, r.body)
    return json.loads(r.body)


class Victims:
    """The two victims: their pids, and a check that both still answer
    from those same instances."""

    def __init__(self, gw, ngx):
        self.gw, self.ngx = gw, ngx
        r1 = ngx.get("/fn/v1")
        r2 = ngx.get("/fn/v2/env")
        assert r1.status == 200 and r2.status == 200, (r1.body, r2.body)
        self.v1 = json.loads(r1.body)["pid"]
        self.v2 = json.loads(r2.body)["pid"]
        assert self.v1 in gw.instances("v1") and self.v2 in gw.instances("v2")

    def check(self, after):
        r1 = self.ngx.get("/fn/v1")
        r2 = self.ngx.get("/fn/v2/sql?sql=SELECT%201%20AS%20one")
        assert r1.status == 200, f"victim v1 after {after}: {r1.status} {r1.body}"
        assert r2.status == 200 and json.loads(r2.body) == [{"one": 1}], \
            f"victim v2 (database) after {after}: {r2.status} {r2.body}"
        assert json.loads(r1.body)["pid"] == self.v1, f"v1 was replaced after {after}"
        assert proc_alive(self.v2), f"v2 died after {after}"


def run_suite(stack, build, users_db, run_as=None, shared_objects=None, gateway=None,
              started=None):
    """SHARED_OBJECTS, GATEWAY: more for the stack (test_spare_attack.py
    runs every function spare-born); STARTED(gw, ngx) runs before the
    first request."""
    abi = landlock_abi()
    root = run_as is None and os.geteuid() == 0
    gw, ngx = stack(
        {"v1": build.testfn, "v2": build.dbfn, "evil": build.hostile,
         "evil2": build.hostile},
        gateway={"database_url": users_db.dsn(), "stop_timeout": "1s", **(gateway or {})},
        sections={"evil": {"idle_timeout": "1s"},
                  "evil2": {"idle_timeout": "1s", "sandbox": "off"},
                  "v1": {"idle_timeout": "60s"}, "v2": {"idle_timeout": "60s"}},
        run_as=run_as, shared_objects=shared_objects)
    if started:
        started(gw, ngx)
    skipped = []
    # What the gateway found in force (its start-up line).
    seccomp = "seccomp filter" in gw.log()
    v = Victims(gw, ngx)
    pool = wait_for(gw.pool_pid, 5.0, what="the pool process")

    # Identities: as root two functions never share a uid and none is root;
    # the pool is not root either way.
    uids = {n: proc_uid(p) for n, p in (("v1", v.v1), ("v2", v.v2))}
    assert proc_uid(pool) != 0, "the pool runs as root"
    if root:
        assert uids["v1"] != uids["v2"] and 0 not in uids.values(), uids
        assert proc_uid(pool) not in uids.values(), "the pool shares a function's uid"
    else:
        assert set(uids.values()) == {proc_uid(gw.pid)}, uids

    # Its own state: non-dumpable, fds 0 and 3 close-on-exec, a private tmp.
    me = attack(ngx, attack="self")
    assert me["dumpable"] == 0 and me["cloexec0"] and me["cloexec3"], me
    assert me["tmpdir"] == str(gw.socket_dir / "tmp" / "evil"), me

    def expect(name, want, **args):
        got = attack(ngx, attack=name, **args)
        assert got["errno"] == want, (
            f"{name} {args}: errno {got['errno']} ({got['error'] or 'succeeded'}), "
            f"want {errno.errorcode.get(want, want)}")
        v.check(f"{name} {args}")
        return got

    # Signals: another uid as root; without root a Landlock signal scope,
    # or below ABI 6 the seccomp filter's signal rules (test_attack_signals.py
    # tries every way).
    if root or abi >= 6 or seccomp:
        expect("kill", errno.EPERM, pid=v.v1)
        expect("kill", errno.EPERM, pid=gw.pid)
    else:
        skipped.append(f"kill/SIGCONT (kernel Landlock ABI {abi} < 6 and no seccomp)")
    # Reaching into a process: the seccomp filter answers EPERM.
    expect("ptrace", errno.EPERM, pid=v.v1)
    expect("vmread", errno.EPERM, pid=v.v2)
    expect("getfd", errno.EPERM, pid=v.v2, fd=3)
    # /proc of others: non-dumpable (and another uid as root, another
    # Landlock domain where there is one).
    for pid in (v.v1, v.v2, gw.pid, pool):
        expect("environ", errno.EACCES, pid=pid)
    expect("fd", errno.EACCES, pid=v.v2, fd=4)
    expect("fd", errno.EACCES, pid=v.v2, fd=3)
    # A victim's socket with forged FastCGI parameters: no AF_UNIX socket.
    if seccomp:
        expect("connect", errno.EPERM, path=gw.sock_path("v1"))
    else:
        skipped.append("connect to a victim's socket (no seccomp filter in this kernel)")
    # The filesystem.
    expect("write", 0, path=f"{me['tmpdir']}/scratch")
    expect("read", 0, path="/etc/hostname" if os.path.exists("/etc/hostname") else "/etc/passwd")
    if abi >= 1:
        expect("write", errno.EACCES, path=f"/tmp/fngate-evil-{os.getpid()}")
        expect("read", errno.EACCES, path=gw.conf_path)
        expect("read", errno.EACCES, path=gw.handler_path("v1"))
    else:
        skipped.append("filesystem confinement (kernel has no Landlock)")
    if abi >= 4:
        expect("bind", errno.EACCES)
    else:
        skipped.append(f"TCP bind (kernel Landlock ABI {abi} < 4)")

    # Garbage on the database channel costs the hostile function its
    # channel, nobody else anything.
    got = attack(ngx, attack="garbage")
    assert got["errno"] == 0 and got["query_ok"] is False, got
    v.check("garbage on fd 3")
    # That instance leaves once it has answered, but a request nginx already
    # sent on its kept connection is still served first, and the escape below
    # must not be that request: its grandchild would die with that instance.
    # Reaped, too: evil2's grandchild below has left every instance's group,
    # so the sweep after any instance's exit kills it.
    wait_for(lambda: proc_state(got["pid"]) is None, 10, interval=0.02,
             what=f"instance {got['pid']}, whose channel broke, to be reaped")

    # Escapes: setsid is refused; a double-forked grandchild, sandboxed or
    # not (evil2 runs with sandbox = off, so its setsid works), is gone once
    # its instance is reaped (idle_timeout 1s + stop grace 1s).
    got = attack(ngx, attack="escape")
    assert got["errno"] == (errno.EPERM if seccomp else 0), got
    assert got["grandchild"] > 0 and proc_alive(got["grandchild"]), got
    r = ngx.get("/fn/evil2?attack=escape")
    assert r.status == 200, r.body
    got2 = json.loads(r.body)
    assert got2["errno"] == 0, got2
    assert got2["grandchild"] > 0 and proc_alive(got2["grandchild"]), got2
    kids = [got["grandchild"], got2["grandchild"]]
    deadline = 1.0 + 1.0 + 3.0  # idle_timeout + stop grace + a loaded machine
    wait_for(lambda: not any(proc_alive(k) for k in kids), deadline, interval=0.05,
             what=f"the escaped grandchildren {kids} to be killed")
    v.check("the escapes")
    if skipped:
        print("\nattack suite: not checked here: " + "; ".join(skipped))
    return gw


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: fngate as root gives functions uids")
def test_attacks_fail_as_root(stack, build, users_db):
    run_suite(stack, build, users_db)


def test_attacks_fail_without_root(stack, build, users_db):
    if os.geteuid() == 0:
        run_as = (HOSTING_UID, HOSTING_UID, [grp.getgrnam("nogroup").gr_gid])
    else:
        run_as = None  # already the unprivileged case
    run_suite(stack, build, users_db, run_as=run_as)


def test_a_double_fork_lives_as_long_as_its_instance_not_as_long_as_its_neighbours(stack, build):
    """The grandchild a sandboxed instance double-forks is orphaned to the
    gateway but stays in its instance's process group: another function's
    instance exiting (three times over) leaves it running, and it dies with
    its own instance."""
    gw, ngx = stack({"evil": build.hostile, "brief": build.testfn},
                    gateway={"stop_timeout": "1s"},
                    sections={"evil": {"idle_timeout": "60s"}, "brief": {"max_requests": 1}})
    if "seccomp filter" not in gw.log():
        pytest.skip("no seccomp filter in this kernel: setsid is allowed, so the grandchild "
                    "leaves its instance's group and any sweep may kill it")
    got = attack(ngx, attack="escape")
    assert got["errno"] == errno.EPERM, got
    kid, inst = got["grandchild"], got["pid"]
    assert inst in gw.instances("evil"), (inst, gw.instances("evil"))
    assert os.getpgid(kid) == inst, (kid, os.getpgid(kid), inst)
    for i in range(3):
        r = ngx.get("/fn/brief")
        assert r.status == 200, r
        brief = json.loads(r.body)["pid"]
        wait_for(lambda: proc_state(brief) is None, 10, interval=0.02,
                 what=f"brief's instance {brief} (max_requests = 1) to be reaped")
        # Answered by the gateway's loop, so after the reap's sweep.
        assert ngx.get("/_fngate/status").status == 200
        assert proc_alive(kid), f"evil's grandchild {kid} was killed when brief {brief} exited"
    assert proc_alive(inst)
    os.kill(inst, signal.SIGKILL)
    wait_for(lambda: not proc_alive(kid), 10, interval=0.05,
             what=f"evil's grandchild {kid} to die with its instance {inst}")
