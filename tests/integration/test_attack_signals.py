"""Signals without root where Landlock cannot scope them (ABI < 6, as on
Debian 12's 6.1 kernel): every function runs as the gateway's uid, so only
the seccomp filter stands between one function's instance and another's.
The test knob FNGATE_TEST_LANDLOCK_ABI=5 (test-only, never raises the ABI)
makes the sandbox behave as on such a kernel.

A hostile function tries every way to signal another process: kill,
tkill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo, pidfd_open +
pidfd_send_signal, and pidfd_send_signal on a /proc/<pid> folder, aimed at
another function's instances (exec-born and spare-born), the waiting
spare, the supervisor, the warden and the pool, at another instance's
process group and at -1 (everything of the uid).  Each attempt gets EPERM
and its target lives on; signals to itself and its own process group
still work (pidfd_send_signal excepted), and abort() still dies of
SIGABRT.
"""

from __future__ import annotations

import errno
import grp
import os
import signal

from fngate_harness import _read, proc_alive, proc_children, proc_state, wait_for
from test_attack import HOSTING_UID, Victims, attack
from test_spare_attack import so

WAYS = ("kill", "tkill", "tgkill", "sigqueue", "tgsigqueue", "pidfd", "procfd")


def warden_pid(gw):
    kids = [p for p in proc_children(gw.pid)
            if (_read(f"/proc/{p}/comm") or "").strip() == "fngate-warden"]
    return kids[0] if len(kids) == 1 else None


def signal_suite(stack, build, users_db, spare_born):
    run_as = None
    if os.geteuid() == 0:
        run_as = (HOSTING_UID, HOSTING_UID, [grp.getgrnam("nogroup").gr_gid])
    objects = None
    if spare_born:
        objects = {"v1": so(build, "testfn"), "v2": so(build, "dbfn"),
                   "evil": so(build, "hostile-exec"), "crashy": so(build, "testfn")}
    gw, ngx = stack(
        {"v1": build.testfn, "v2": build.dbfn, "evil": build.hostile, "crashy": build.testfn},
        gateway={"database_url": users_db.dsn(), "spare_processes": 4 if spare_born else 1},
        defaults={"idle_timeout": "60s"},
        env=dict(os.environ, FNGATE_TEST_LANDLOCK_ABI="5"),
        run_as=run_as, shared_objects=objects)
    assert "Landlock used as ABI 5" in gw.log(), gw.log_tail()
    # abort() raises SIGABRT at itself through tgkill: still the signal it
    # dies of (first: its cold start may take a spare).
    r = ngx.get("/fn/crashy?abort=1")
    assert 500 <= r.status <= 599, (r.status, r.body)
    gw.wait_log(lambda ln: "[fn crashy" in ln and "killed by signal 6 (SIGABRT)" in ln, 10,
                what="crashy's exit by SIGABRT")
    v = Victims(gw, ngx)
    me = attack(ngx, attack="self")["tmpdir"]  # evil's instance is up
    assert me, "evil has no TMPDIR"
    spare = wait_for(gw.spares, 10, what="a waiting spare")[0]
    targets = {"another function's instance": v.v1,
               "another function's instance (database)": v.v2,
               "the waiting spare": spare,
               "the supervisor": gw.pid,
               "the warden": wait_for(lambda: warden_pid(gw), 5, what="the warden"),
               "the pool": wait_for(gw.pool_pid, 5, what="the pool process")}
    evil = gw.instances("evil")
    assert evil, "evil has no instance"

    def still_there(after):
        # Both victims answer (not necessarily from the same instance: a
        # function may scale out between two requests); every target lives
        # and is not stopped.
        r1 = ngx.get("/fn/v1")
        r2 = ngx.get("/fn/v2/sql?sql=SELECT%201%20AS%20one")
        assert r1.status == 200, f"v1 after {after}: {r1.status} {r1.body}"
        assert r2.status == 200 and r2.json() == [{"one": 1}], f"v2 after {after}: {r2.body}"
        for what, pid in targets.items():
            assert proc_alive(pid) and proc_state(pid) != "T", \
                f"{what} ({pid}) is {proc_state(pid)} after {after}"
        assert spare in gw.spares(), f"the waiting spare was taken or lost after {after}"

    def expect(want, way, pid, sig, what):
        got = attack(ngx, attack="signal", how=way, pid=pid, sig=sig)
        assert got["errno"] == want, (
            f"{way}({pid}, {sig}) at {what}: errno {got['errno']} "
            f"({got['error'] or 'succeeded'}, step {got['step']}), "
            f"want {errno.errorcode.get(want, want)}")
        assert evil[0] in gw.instances("evil"), f"evil's instance died after {way} at {what}"

    for what, pid in targets.items():
        for way in WAYS:
            expect(errno.EPERM, way, pid, int(signal.SIGKILL), what)
            still_there(f"{way}(SIGKILL) at {what}")
    # Another instance's process group, and every process of the uid.
    for way in ("kill", "sigqueue"):
        expect(errno.EPERM, way, -v.v1, int(signal.SIGKILL), "v1's process group")
        expect(errno.EPERM, way, -1, int(signal.SIGCONT), "-1 (every process of the uid)")
    expect(errno.EPERM, "kill", -gw.pid, int(signal.SIGKILL), "the gateway's process group")
    still_there("the group attempts")

    # Itself and its own process group still work; pidfd_send_signal does
    # not (seccomp cannot tell where a descriptor points).
    for way in ("kill", "tkill", "tgkill", "sigqueue", "tgsigqueue"):
        expect(0, way, "self", int(signal.SIGCONT), "itself")
    expect(0, "kill", 0, int(signal.SIGCONT), "its own process group (0)")
    expect(0, "kill", "-self", int(signal.SIGCONT), "its own process group (-pid)")
    expect(errno.EPERM, "pidfd", "self", int(signal.SIGCONT), "itself through a pidfd")
    still_there("the attempts at itself")


def test_no_signal_reaches_another_process_without_root_below_landlock_6(stack, build, users_db):
    signal_suite(stack, build, users_db, spare_born=False)


def test_no_signal_reaches_another_process_without_root_below_landlock_6_spare_born(
        stack, build, users_db):
    signal_suite(stack, build, users_db, spare_born=True)
