"""Nothing outlives a SIGKILLed gateway (the red-team finding "instances
outlive a SIGKILLed gateway"), as root and without root, with the sandbox
on: warm exec-born and spare-born instances, a waiting spare, fngate-pool
and its Postgres connections, and what a hostile function does to stay:
an instance that ignores SIGTERM and clears its PR_SET_PDEATHSIG, and a
child it forked that keeps the listening socket; and a plain function
whose request hangs.  Then what a user sees:
a new gateway started on the same socket_dir serves every function at once
through nginx, from new instances.

Every wait is bounded; no timing is asserted.
"""

from __future__ import annotations

import grp
import json
import os
import signal
import threading

import pytest

from fngate_harness import _read, proc_alive, wait_for
from test_attack import HOSTING_UID
from test_spare_attack import so, spare_born


def pool_backends(db) -> int:
    """Client connections to DB other than the psql asking."""
    out = db.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                  "AND pid <> pg_backend_pid()")
    return int(out.strip())


def describe(pids) -> str:
    out = []
    for p in pids:
        cmd = (_read(f"/proc/{p}/cmdline", "rb") or b"").replace(b"\0", b" ").decode(
            errors="replace")
        out.append(f"{p} ({cmd.strip() or '?'})")
    return ", ".join(out)


def gateway_killed_then_restarted(stack, build, users_db, run_as):
    gw, ngx = stack(
        {"hello": build.testfn, "spb": build.testfn, "db": build.dbfn, "evil": build.hostile,
         "evils": build.hostile, "hung": build.testfn},
        gateway={"database_url": users_db.dsn(), "spare_processes": 1, "stop_timeout": "1s"},
        defaults={"idle_timeout": "60s", "request_timeout": "60s"},
        shared_objects={"spb": so(build, "testfn"), "evils": so(build, "hostile-exec")},
        run_as=run_as)

    def get(path):
        r = ngx.get(path, timeout=15)
        assert r.status == 200, (path, r.status, r.body)
        return json.loads(r.body)

    # Warm instances of every kind, and what the hostile ones leave.
    procs = {"hello (exec-born)": get("/fn/hello")["pid"],
             "spb (spare-born)": get("/fn/spb")["pid"]}
    assert spare_born(procs["spb (spare-born)"]), "spb did not start through a spare"
    assert get("/fn/db/sql?sql=SELECT%201%20AS%20one") == [{"one": 1}]
    procs["db (exec-born, pool channel)"] = gw.instances("db")[0]
    for name in ("evil", "evils"):
        if name == "evils":
            wait_for(gw.spares, 10, what="a waiting spare for evils' cold start")
        got = get(f"/fn/{name}?attack=noterm")
        assert got["errno"] == 0, got
        procs[f"{name} (ignores SIGTERM, no PDEATHSIG)"] = gw.instances(name)[0]
        got = get(f"/fn/{name}?attack=linger")
        assert got["errno"] == 0 and got["child"] > 0, got
        procs[f"{name}'s lingering child (holds its listening socket)"] = got["child"]
    assert spare_born(procs["evils (ignores SIGTERM, no PDEATHSIG)"])
    # A request that never ends (the nginx side of it ends with the instance).
    threading.Thread(target=lambda: ngx.get("/fn/hung?hang=1", timeout=60), daemon=True).start()
    procs["hung (in a request that never ends)"] = wait_for(
        lambda: (gw.instances("hung") or [None])[0], 10, what="hung's instance")
    procs["the waiting spare"] = wait_for(gw.spares, 10, what="a waiting spare")[0]
    procs["fngate-pool"] = wait_for(gw.pool_pid, 5, what="the pool process")
    assert pool_backends(users_db) > 0
    for what, pid in procs.items():
        assert proc_alive(pid), f"{what} {pid} is not running before the kill"

    os.kill(gw.pid, signal.SIGKILL)
    gw.proc.wait()

    def survivors():
        return [f"{what} {pid}" for what, pid in procs.items() if proc_alive(pid)]

    try:
        wait_for(lambda: not survivors(), 5, interval=0.05,
                 what="every process of the SIGKILLed gateway to be gone")
    except AssertionError:
        left = [p for p in procs.values() if proc_alive(p)]
        raise AssertionError("still running 5 s after the gateway was SIGKILLed: "
                             + "; ".join(survivors()) + " -- " + describe(left)) from None
    wait_for(lambda: pool_backends(users_db) == 0, 5, interval=0.05,
             what="the dead pool's Postgres connections to close")

    # A new gateway on the same socket_dir: every function served at once,
    # from new instances, through the same nginx.
    before = len(gw.log().splitlines())
    gw._logf.close()
    gw.start()
    new = {"hello": get("/fn/hello")["pid"], "spb": get("/fn/spb")["pid"],
           "hung": get("/fn/hung")["pid"], "evil": get("/fn/evil?attack=self")}
    assert get("/fn/db/sql?sql=SELECT%202%20AS%20two") == [{"two": 2}]
    assert get("/fn/evils?attack=self")["dumpable"] == 0
    assert not {new["hello"], new["spb"], new["hung"]} & set(procs.values()), new
    fresh = gw.log().splitlines()[before:]
    assert not [ln for ln in fresh if "not served" in ln or "listening on it" in ln], \
        "\n".join(fresh)
    return gw


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: fngate as root gives functions uids")
def test_nothing_outlives_a_sigkilled_gateway_as_root(stack, build, users_db):
    gateway_killed_then_restarted(stack, build, users_db, None)


def test_nothing_outlives_a_sigkilled_gateway_without_root(stack, build, users_db):
    run_as = None
    if os.geteuid() == 0:
        run_as = (HOSTING_UID, HOSTING_UID, [grp.getgrnam("nogroup").gr_gid])
    gateway_killed_then_restarted(stack, build, users_db, run_as)
