"""The operator's commands (issue 9): `fngate reload` and `fngate stop` reach
only the gateway that owns the config's socket_dir.

    python3 -m pytest tests/integration/test_ops.py
"""

from __future__ import annotations

import os
import signal
import subprocess

from fngate_harness import wait_for


def fngate(build, *args, timeout=30):
    """Runs the fngate command line; returns the CompletedProcess."""
    return subprocess.run([str(build.fngate), *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def reloads(gw) -> int:
    return gw.log().count("SIGHUP: reloading")


# --- reload / stop ---------------------------------------------------------


def test_reload_and_stop_reach_only_their_own_gateway(gateway_factory, build):
    a = gateway_factory({"hello": build.handler("hello")})
    b = gateway_factory({"hello": build.handler("hello")})
    assert (a.socket_dir / "fngate.pid").read_text() == f"{a.pid}\n"
    assert (b.socket_dir / "fngate.pid").read_text() == f"{b.pid}\n"

    r = fngate(build, "reload", "-c", str(a.conf_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout == (f"fngate (pid {a.pid}, socket_dir {a.socket_dir}): reload requested; "
                        "its log says what changed\n")
    wait_for(lambda: reloads(a) == 1, 5, what="gateway a reloading")
    a.wait_log(lambda ln: "reloaded: 0 added, 0 changed, 0 removed" in ln)
    assert reloads(b) == 0

    r = fngate(build, "stop", "-c", str(b.conf_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"fngate (pid {b.pid}, socket_dir {b.socket_dir}): stopped\n"
    # stop returns once the gateway has exited: nothing to wait for.
    assert b.proc.poll() == 0
    assert "SIGTERM: stopping" in b.log()
    assert not (b.socket_dir / "fngate.pid").exists()
    assert a.running() and "SIGTERM" not in a.log()

    # With its gateway gone, the commands say so and signal nobody.
    for cmd in ("reload", "stop"):
        r = fngate(build, cmd, "-c", str(b.conf_path))
        assert r.returncode == 1
        assert r.stderr == f"fngate {cmd}: no fngate is running with socket_dir {b.socket_dir}\n"
    assert reloads(a) == 1 and a.running()


def test_stale_or_forged_pid_file_signals_nobody_else(gateway_factory, build):
    a = gateway_factory({"hello": build.handler("hello")})
    # A process that is not the gateway: the pid file must not be trusted
    # over the kernel's record of who holds the lock.
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (a.socket_dir / "fngate.pid").write_text(f"{bystander.pid}\n")
        r = fngate(build, "reload", "-c", str(a.conf_path))
        assert r.returncode == 0, r.stderr
        assert f"pid {a.pid}," in r.stdout
        wait_for(lambda: reloads(a) == 1, 5, what="the real gateway reloading")
        assert bystander.poll() is None

        # A gateway killed outright leaves its pid file: still nobody to signal.
        a.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        (a.socket_dir / "fngate.pid").write_text(f"{bystander.pid}\n")
        r = fngate(build, "stop", "-c", str(a.conf_path))
        assert r.returncode == 1
        assert r.stderr == f"fngate stop: no fngate is running with socket_dir {a.socket_dir}\n"
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_reload_with_a_bad_file_says_why_and_signals_nothing(gateway_factory, build):
    a = gateway_factory({"hello": build.handler("hello")})
    good = a.conf_path.read_text()
    a.conf_path.write_text(good + "bogus_key = 1\n")
    r = fngate(build, "reload", "-c", str(a.conf_path))
    assert r.returncode == 1
    nlines = len(good.splitlines()) + 1
    assert r.stderr == (f"fngate reload: {a.conf_path}:{nlines}: "
                        "unknown key 'bogus_key' in [gateway]\n")
    assert reloads(a) == 0
    os.kill(a.pid, 0)
