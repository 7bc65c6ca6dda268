"""Issue 10 point 6: the demo and the terminal's signals.

- The pool is in a session of its own: a Ctrl-C at fngate's terminal (SIGINT
  to the whole foreground process group) is fngate's to handle, and must not
  kill the pool ("pool process ... exited ... restarting").
- `./bootstrap demo` stopped by two SIGINTs (as `timeout` or an impatient
  Ctrl-C does) still stops Postgres and removes its folders.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import time

import pytest

from fngate_harness import REPO, free_port, proc_alive, stop_proc, wait_for


def test_terminal_sigint_does_not_reach_the_pool(stack, build, users_db):
    gw, ngx = stack({"users": build.handler("users")}, gateway={"database_url": users_db.dsn()})
    assert ngx.get("/fn/users/2").status == 200
    pool = wait_for(gw.pool_pid, 5, what="the pool process")
    assert os.getsid(pool) != os.getsid(gw.pid), "the pool shares fngate's session"
    assert os.getpgid(pool) != os.getpgid(gw.pid), "the pool shares fngate's process group"
    # What a terminal's Ctrl-C does: SIGINT to fngate's whole process group.
    os.killpg(os.getpgid(gw.pid), signal.SIGINT)
    assert gw.stop(timeout=15) == 0
    log = gw.log()
    assert "restarting" not in log, log
    assert f"pool process {pool} stopped" in log, log


def read_or_empty(path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:  # the process exited meanwhile
        return b""


def demo_leftovers():
    return sorted(glob.glob("/tmp/fngate-demo-pg.*") + glob.glob("/tmp/fngate-demo.*"))


@pytest.mark.skipif(os.environ.get("FNGATE_BUILDDIR", str(REPO)) not in (str(REPO), ""),
                    reason="the demo builds and runs the repository's own tree: tested once, "
                           "in the main build's run")
def test_demo_two_sigints_leave_nothing_behind(run_dir):
    before = demo_leftovers()
    port = free_port()
    log = open(run_dir / "demo.log", "wb")
    # A process group of its own, as a terminal's foreground job has, and
    # SIGINT/SIGQUIT at their defaults as a terminal gives them: when the
    # suite itself runs as a background job of a script (`cmd &`), both are
    # ignored, and a shell cannot trap a signal ignored when it started.
    def as_a_terminal_job():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)

    demo = subprocess.Popen([str(REPO / "bootstrap"), "demo"], cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, "PORT": str(port)}, start_new_session=True,
                            preexec_fn=as_a_terminal_job)
    try:
        def up():
            if demo.poll() is not None:
                raise AssertionError("demo exited: " + (run_dir / "demo.log").read_text())
            return "fngate demo is up" in (run_dir / "demo.log").read_text()
        wait_for(up, 120, interval=0.2, what="the demo banner")
        text = (run_dir / "demo.log").read_text()
        assert "skipping 'sdk'" not in text, text
        new = [d for d in demo_leftovers() if d not in before]
        assert any("fngate-demo-pg." in d for d in new), new
        pg_pids = [int(p.split("/")[2]) for p in glob.glob("/proc/[0-9]*/cmdline")
                   if any(d.encode() in read_or_empty(p) for d in new)]
        # The terminal's Ctrl-C reaches the whole group; `timeout` sends a second one.
        os.killpg(demo.pid, signal.SIGINT)
        time.sleep(0.3)
        os.killpg(demo.pid, signal.SIGINT)
        assert demo.wait(60) == 0, (run_dir / "demo.log").read_text()
    finally:
        stop_proc(demo, timeout=60, group=True)  # after a failed assertion: still clean up
        log.close()
    text = (run_dir / "demo.log").read_text()
    assert [d for d in demo_leftovers() if d not in before] == [], text
    assert [p for p in pg_pids if proc_alive(p)] == [], "Postgres outlived the demo"
    assert "restarting" not in text, text
    assert "==> stopped" in text, text
