"""The operator's commands (issue 9): `fngate reload` and `fngate stop` reach
only the gateway that owns the config's socket_dir.

    python3 -m pytest tests/integration/test_ops.py
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import time

import pytest

from pathlib import Path

from fngate_harness import Nginx, free_port, make_dir, make_var, proc_alive, wait_for
from pg_harness import pg_bindir


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
    # reload waits for the gateway's verdict and prints it.
    assert r.stdout == (f"fngate (pid {a.pid}, socket_dir {a.socket_dir}): "
                        "reloaded: 0 added, 0 changed, 0 removed\n")
    assert reloads(a) == 1
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


def test_stop_works_with_a_broken_file(gateway_factory, build):
    a = gateway_factory({"hello": build.handler("hello")})
    good = a.conf_path.read_text()
    n = len(good.splitlines())
    a.conf_path.write_text(good + "pool_size = lots\nnonsense\n")
    r = fngate(build, "stop", "-c", str(a.conf_path))
    assert r.returncode == 0, r.stderr
    assert r.stderr == (f"fngate stop: {a.conf_path}:{n + 1}: pool_size: 'lots' is not an "
                        f"integer (2 errors in all; its socket_dir is {a.socket_dir})\n")
    assert r.stdout == f"fngate (pid {a.pid}, socket_dir {a.socket_dir}): stopped\n"
    assert a.proc.poll() == 0


def test_reload_refused_by_the_gateway_says_why(gateway_factory, build):
    if os.geteuid() != 0:
        pytest.skip("needs root to run a gateway as another user")
    gw = gateway_factory({"hello": build.handler("hello")}, start=False)
    nobody = pwd.getpwnam("nobody").pw_uid
    for d in (gw.run, gw.socket_dir):
        os.chown(d, nobody, -1)
    with open(gw.log_path, "ab") as log:
        proc = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup",
                                 "--clear-groups", "--", str(build.fngate), "serve", "-c",
                                 str(gw.conf_path)], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: (gw.socket_dir / "fngate.pid").exists(), 10, what="the pid file")
        # Fine for root, who runs the command; not for the gateway, which is
        # nobody: only the gateway can tell, and its answer is printed.
        gw.gateway_keys["socket_group"] = "root"
        gw.write_config()
        r = fngate(build, "reload", "-c", str(gw.conf_path))
        assert r.returncode == 1
        assert r.stderr == (
            f"fngate reload: refused by the gateway (pid {proc.pid}), which keeps its running "
            f"configuration: {gw.conf_path}:{gw.conf_line('socket_group')}: socket_group "
            "'root': nobody is not a member, so the sockets cannot be given that group (chown: "
            "Operation not permitted)\n")
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(15)


def test_reload_with_a_bad_file_says_why_and_signals_nothing(gateway_factory, build):
    a = gateway_factory({"hello": build.handler("hello")})
    good = a.conf_path.read_text()
    a.conf_path.write_text(good + "bogus_key = 1\n")
    r = fngate(build, "reload", "-c", str(a.conf_path))
    assert r.returncode == 1
    nlines = len(good.splitlines()) + 1
    assert r.stderr == (f"{a.conf_path}:{nlines}: unknown key 'bogus_key' in [gateway]\n"
                        "fngate reload: not sent: the gateway would refuse this\n")
    assert reloads(a) == 0
    os.kill(a.pid, 0)
    # A gateway-level problem is caught before any signal, every one listed.
    a.gateway_keys.update({"socket_group": "no-such-group-fngate",
                           "database_url": "host=/tmp dbnme=x"})
    a.write_config()
    r = fngate(build, "reload", "-c", str(a.conf_path))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"{a.conf_path}:{a.conf_line('socket_group')}: socket_group 'no-such-group-fngate' "
        "does not exist",
        f"{a.conf_path}:{a.conf_line('database_url')}: database_url: invalid connection "
        "option \"dbnme\"",
        "fngate reload: not sent: the gateway would refuse these"]
    assert reloads(a) == 0


# --- check and disabled functions --------------------------------------------


def check_lines(build, conf, as_nobody=False):
    """(exit code, problem lines, stdout) of `fngate check -c CONF`."""
    pre = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] \
        if as_nobody else []
    r = subprocess.run(pre + [str(build.fngate), "check", "-c", str(conf)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stderr.splitlines(), r.stdout


def test_check_reports_every_serve_time_failure_with_its_location(gateway_factory, build):
    if os.geteuid() != 0:
        pytest.skip("needs root: the user, group and instance-access checks apply only then")
    gw = gateway_factory({"hello": build.handler("hello"), "locked": build.handler("hello"),
                          "badconf": build.handler("hello")},
                         gateway={"user": "no-such-user-fngate", "group": "no-such-group-fngate",
                                  "socket_group": "no-such-sockgroup-fngate",
                                  "database_url": "host=/tmp dbnme=app"},
                         start=False)
    os.chmod(gw.functions_dir / "locked", 0o700)
    (gw.functions_dir / "badconf" / "function.conf").write_text("# ok\nidle_timeout = soon\n")
    p = str(gw.conf_path)
    rc, problems, out = check_lines(build, gw.conf_path)
    assert rc == 1
    assert problems == [
        f"{p}:{gw.conf_line('user')}: user 'no-such-user-fngate' does not exist",
        f"{p}:{gw.conf_line('group')}: group 'no-such-group-fngate' does not exist",
        f"{p}:{gw.conf_line('socket_group')}: socket_group 'no-such-sockgroup-fngate' "
        "does not exist",
        f"{p}:{gw.conf_line('database_url')}: database_url: invalid connection option \"dbnme\"",
        f"{gw.functions_dir}/badconf/function.conf:2: idle_timeout: 'soon' is not a duration "
        "(use 500ms, 30s, 5m)",
    ]
    assert out.startswith(f"{p}: 5 problems: serve would refuse to start\n  hello ")


    # serve refuses the gateway-level ones, each in its log, and exits 1.
    r = subprocess.run([str(build.fngate), "serve", "-c", p], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    errors = [ln.split(" fngate: ", 1)[1] for ln in r.stderr.splitlines() if " error " in ln]
    assert errors == problems[:4]

    # With the users fixed, the unreachable folder is the instance user's
    # problem: reported, not "exited with status 126" at the first request.
    gw.gateway_keys.update({"user": "nobody", "group": "nogroup", "socket_group": None,
                            "database_url": None})
    gw.sections["locked"] = {"user": "daemon"}
    gw.write_config()
    rc, problems, out = check_lines(build, gw.conf_path)
    # serve would start: 3, not 1, so that a start-up script can tell.
    assert rc == 3
    assert problems == [
        f"{gw.functions_dir}/badconf/function.conf:2: idle_timeout: 'soon' is not a duration "
        "(use 500ms, 30s, 5m)",
        f"{gw.functions_dir}/locked: instances (user daemon) cannot enter this folder: "
        "Permission denied",
    ]
    assert out.startswith(f"{p}: 2 functions disabled (serve starts; they answer 503 with the "
                          f"reason), 1 ready in {gw.functions_dir}\n  hello ")
    # Errors in fngate.conf itself: every one, each with its line.
    good = gw.conf_path.read_text()
    n = len(good.splitlines())
    gw.conf_path.write_text(good + "max_instances = 0\nnot a key line\n[UPPER]\nx = 1\n")
    rc, problems, out = check_lines(build, gw.conf_path)
    assert rc == 1
    assert problems == [
        f"{p}:{n + 1}: max_instances: '0' is out of range (1..4096)",
        f"{p}:{n + 2}: syntax error (expected 'key = value', '[section]' or a comment)",
        f"{p}:{n + 3}: invalid section name '[UPPER]' (function names are "
        "[a-z0-9][a-z0-9_-]{0,63})",
    ]
    assert out == f"{p}: 3 problems: serve would refuse to start\n"
    gw.write_config()
    os.chmod(gw.functions_dir / "locked", 0o755)
    (gw.functions_dir / "badconf" / "function.conf").write_text("idle_timeout = 5s\n")
    rc, problems, out = check_lines(build, gw.conf_path)
    assert (rc, problems) == (0, [])
    assert out.startswith(f"{p}: ok, 3 functions in {gw.functions_dir}\n")


def test_check_socket_group_membership_and_socket_dir_when_not_root(gateway_factory, build):
    if os.geteuid() != 0:
        pytest.skip("needs root to run check as nobody")
    gw = gateway_factory({"hello": build.handler("hello")},
                         gateway={"socket_group": "root"}, start=False)
    shutil.rmtree(gw.functions_dir)
    p = str(gw.conf_path)
    rc, problems, _ = check_lines(build, gw.conf_path, as_nobody=True)
    assert rc == 1
    assert problems == [
        f"{p}:{gw.conf_line('socket_group')}: socket_group 'root': nobody is not a member, so "
        "the sockets cannot be given that group (chown: Operation not permitted)",
        f"{p}:{gw.conf_line('socket_dir')}: socket_dir {gw.socket_dir}: nobody cannot write "
        "there: Permission denied",
        f"{p}:{gw.conf_line('functions_dir')}: functions_dir {gw.functions_dir}: "
        "No such file or directory",
    ]


def test_broken_function_conf_disables_only_that_function(gateway_factory, nginx_factory,
                                                         build):
    gw = gateway_factory({"hello": build.handler("hello"), "broken": build.handler("hello")},
                         start=False)
    conf = gw.functions_dir / "broken" / "function.conf"
    conf.write_text("[function]\nmax_instances = many\n")
    gw.start()
    ngx = nginx_factory(gw.socket_dir)
    reason = f"{conf}:2: max_instances: 'many' is not an integer"
    assert ngx.get_json("/fn/hello") == (200, {"hello": "world"})
    for _ in range(3):
        r = ngx.get("/fn/broken/x?y=1")
        assert r.status == 503
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"error": f"function broken is disabled: {reason}"}
    r = ngx.post("/fn/broken", {"a": 1})
    assert (r.status, r.json()) == (503, {"error": f"function broken is disabled: {reason}"})
    assert gw.instances("broken") == []
    lines = [ln for ln in gw.log().splitlines() if "[fn broken]" in ln]
    assert len(lines) == 1 and lines[0].endswith(
        f"[fn broken] disabled, answering 503 until fixed: {reason}")

    # Fixed and reloaded: it serves; broken again: 503 again, hello untouched.
    conf.write_text("[function]\nmax_instances = 2\n")
    gw.hup()
    gw.wait_log(lambda ln: "[fn broken] fixed, enabled again" in ln)
    assert ngx.get_json("/fn/broken") == (200, {"hello": "world"})
    hello_pids = gw.instances("hello")
    conf.write_text("queue_size = 0\n")
    gw.hup()
    gw.wait_log(lambda ln: "[fn broken] disabled, answering 503" in ln)
    # The instance it had retires between requests, as on any reload.
    gw.wait_log(lambda ln: "[fn broken pid" in ln and "(retired)" in ln)
    r = ngx.get("/fn/broken")
    assert (r.status, r.json()) == (503, {"error": f"function broken is disabled: {conf}:1: "
                                                   "queue_size: '0' is out of range (1..65535)"})
    assert ngx.get_json("/fn/hello") == (200, {"hello": "world"})
    assert gw.instances("hello") == hello_pids
    assert gw.instances("broken") == []


def test_unreachable_folder_is_disabled_not_126(stack, build):
    if os.geteuid() != 0:
        pytest.skip("needs root: instances run as another user only then")
    gw, ngx = stack({"hello": build.handler("hello"), "locked": build.handler("hello")})
    os.chmod(gw.functions_dir / "locked", 0o700)
    gw.hup()
    gw.wait_log(lambda ln: "[fn locked] disabled" in ln)
    r = ngx.get("/fn/locked")
    assert r.status == 503
    # Its own dynamic uid, the one its instances would run as.
    assert re.fullmatch(f"function locked is disabled: {re.escape(str(gw.functions_dir))}/locked: "
                        r"instances \(dynamic uid \d+\) cannot enter this folder: "
                        "Permission denied", r.json()["error"]), r.json()
    assert ngx.get_json("/fn/hello") == (200, {"hello": "world"})


# --- the watched functions folder --------------------------------------------


def deploy_by_rename(gw, name, binary):
    """The recommended deploy: copy next to it, then rename over."""
    d = gw.functions_dir / name
    d.mkdir(exist_ok=True)
    os.chmod(d, 0o755)
    tmp = d / ".handler.new"
    shutil.copyfile(binary, tmp)
    os.chmod(tmp, 0o755)
    os.rename(tmp, d / "handler")


def served(ngx, path, want_status, want_json=None):
    def ok():
        r = ngx.get(path)
        if r.status != want_status:
            return False
        return want_json is None or r.json() == want_json
    return ok


def test_watched_folder_picks_up_added_replaced_removed_without_a_signal(stack, build):
    gw, ngx = stack({"hello": build.handler("hello")})
    gw.wait_log(lambda ln: f"watching {gw.functions_dir}" in ln)

    # Added by rename.
    deploy_by_rename(gw, "fresh", build.handler("hello"))
    wait_for(served(ngx, "/fn/fresh", 200, {"hello": "world"}), 5, what="fresh served")
    gw.wait_log(lambda ln: "[fn fresh] added" in ln)

    # Replaced by rename over: the echo binary answers differently.
    deploy_by_rename(gw, "fresh", build.handler("echo"))
    wait_for(lambda: ngx.get("/fn/fresh?x=1").json() != {"hello": "world"}, 5,
             what="the new binary serving")
    gw.wait_log(lambda ln: "[fn fresh] new handler binary" in ln)

    # Added by copy, then chmod: not a function until it is executable.
    d = gw.functions_dir / "copied"
    d.mkdir()
    os.chmod(d, 0o755)
    shutil.copyfile(build.handler("hello"), d / "handler")
    os.chmod(d / "handler", 0o644)
    gw.wait_log(lambda ln: "skipping 'copied'" in ln and "not an executable file" in ln)
    assert ngx.get("/fn/copied").status == 404
    os.chmod(d / "handler", 0o755)
    wait_for(served(ngx, "/fn/copied", 200, {"hello": "world"}), 5, what="copied served")

    # function.conf: broken disables it, fixed enables it.
    (d / "function.conf").write_text("max_instances = lots\n")
    wait_for(served(ngx, "/fn/copied", 503), 5, what="copied disabled")
    assert "function copied is disabled: " in ngx.get("/fn/copied").json()["error"]
    (d / "function.conf").write_text("max_instances = 2\n")
    wait_for(served(ngx, "/fn/copied", 200, {"hello": "world"}), 5, what="copied fixed")

    # Removed.
    shutil.rmtree(gw.functions_dir / "fresh")
    wait_for(served(ngx, "/fn/fresh", 404), 5, what="fresh gone")
    gw.wait_log(lambda ln: "[fn fresh] removed" in ln, timeout=10)

    assert ngx.get_json("/fn/hello") == (200, {"hello": "world"})
    assert reloads(gw) == 0
    assert gw.log().count("functions folder changed: reloading") >= 5


def test_scratch_files_in_a_function_folder_do_not_reload(stack, build):
    gw, ngx = stack({"hello": build.handler("hello")})
    gw.wait_log(lambda ln: f"watching {gw.functions_dir}" in ln)
    d = gw.functions_dir / "hello"
    for i in range(20):
        (d / f"scratch{i}").write_text("x" * 100)
        os.unlink(d / f"scratch{i}")
    (gw.functions_dir / ".hidden").write_text("x")
    # A relevant change after them is the first thing to cause a reload.
    (d / "function.conf").write_text("max_instances = 3\n")
    gw.wait_log(lambda ln: "functions folder changed: reloading" in ln)
    gw.wait_log(lambda ln: "[fn hello] settings changed" in ln)
    assert gw.log().count("functions folder changed: reloading") == 1


def test_watch_off(stack, build):
    gw, ngx = stack({"hello": build.handler("hello")}, gateway={"watch": "off"})
    deploy_by_rename(gw, "fresh", build.handler("hello"))
    time.sleep(1.5)
    assert ngx.get("/fn/fresh").status == 404
    assert "watching" not in gw.log()
    r = fngate(build, "reload", "-c", str(gw.conf_path))
    assert r.returncode == 0, r.stderr
    wait_for(served(ngx, "/fn/fresh", 200, {"hello": "world"}), 5, what="fresh after reload")


# --- fngate dev ----------------------------------------------------------------

DEV_HANDLER = """#include <fngate.h>
static int greet(fn_req *req, fn_res *res)
{
    (void)req;
    return fn_send_jsonf(res, 200, "{s:s}", "greeting", %s);
}
FN_MAIN(greet)
"""

DEV_MAKEFILE = """handler: handler.c
\t$(CC) $(CFLAGS) -I$(FNGATE_SDK) handler.c $(FNGATE_LIB) -ljansson -lfcgi -o handler
"""


def dev_function(root, name, answer):
    d = make_dir(root / name)
    (d / "handler.c").write_text(DEV_HANDLER % answer)
    (d / "Makefile").write_text(DEV_MAKEFILE)
    return d


class Dev:
    """`fngate dev --port P [ARGS] SRC`, handlers built against this build's SDK."""

    def __init__(self, build, run_dir, src, *args):
        self.port = free_port()
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)
        env.update(FNGATE_SDK=str(build.srcdir / "functions" / "sdk"),
                   FNGATE_LIB=str(build.dir / "functions" / "sdk" / "export" / "libfngate.a"),
                   CFLAGS=make_var(build, "SAN_CFLAGS"), TMPDIR=str(run_dir))
        self.out_path = run_dir / "dev.out"
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(
                [str(build.fngate), "dev", "--port", str(self.port), *args, str(src)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)
        self.http = Nginx.__new__(Nginx)  # its client only: fngate dev runs the nginx
        self.http.port = self.port

    def answer(self, path="/fn/greet"):
        try:
            r = self.http.get(path, timeout=5)
        except OSError:
            return None
        return r.status, r.json() if r.body.startswith(b"{") else r.body

    def output(self):
        return self.out_path.read_text(errors="replace")

    def interrupt(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def test_dev_builds_serves_rebuilds_and_stops(build, run_dir):
    src = make_dir(run_dir / "functions")
    greet = dev_function(src, "greet", '"v1"')
    d = Dev(build, run_dir, src)
    port, answer, output = d.port, d.answer, d.output
    try:
        wait_for(lambda: answer() == (200, {"greeting": "v1"}), 60,
                 what="the first build served")
        assert f"fngate dev: greet: serving at http://127.0.0.1:{port}/fn/greet" in output()
        wait_for(lambda: "GET /fn/greet -> 200 in " in output(), 10,
                 what="the request printed")

        # An edit: rebuilt and served, without a signal or a restart.
        (greet / "handler.c").write_text(DEV_HANDLER % '"v2"')
        wait_for(lambda: answer() == (200, {"greeting": "v2"}), 30, what="the edit served")
        assert "fngate dev: greet: new build, serving it at" in output()

        # A broken edit: the error is printed and v2 keeps serving.
        (greet / "handler.c").write_text(DEV_HANDLER % "v3 oops")
        wait_for(lambda: "greet: build failed (make exited with 2): the previous build keeps "
                 "serving" in output(), 30, what="the build error reported")
        assert "error: " in output()
        assert answer() == (200, {"greeting": "v2"})

        # A new function folder is built and served too.
        dev_function(src, "other", '"o1"')
        wait_for(lambda: answer("/fn/other") == (200, {"greeting": "o1"}), 30,
                 what="a new function served")
        # A folder removed is no longer served.
        shutil.rmtree(src / "other")
        wait_for(lambda: answer("/fn/other") == (404, {"error": "no such function: other"}), 30,
                 what="a removed function gone")
        assert "fngate dev: other: folder removed, no longer served" in output()
        gw_pid, ngx_pid = map(int, re.search(r"gateway pid (\d+), nginx pid (\d+)",
                                             output()).groups())
        run = re.search(r"request_log: (\S+)/requests.log", output()).group(1)
        assert os.path.isdir(run)
    finally:
        rc = d.interrupt()
    assert rc == 0, output()
    assert "fngate dev: Ctrl-C: stopping" in output()
    assert f"fngate dev: stopped; removed {run}" in output()
    assert not os.path.exists(run)
    assert not proc_alive(gw_pid) and not proc_alive(ngx_pid)
    assert answer() is None  # nothing listens on the port any more


DEV_DB_HANDLER = """#include <fngate.h>
static int answer(fn_req *req, fn_res *res)
{
    fn_rows *rows = fn_query(req, "SELECT 40 + 2 AS answer", NULL);
    if (!rows)
        return fn_send_db_error(res, 503, req);
    return fn_send_row(res, 200, rows);
}
FN_MAIN(answer)
"""


def proc_cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None


def test_dev_db_starts_a_throwaway_postgres(build, run_dir):
    if pg_bindir() is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    src = make_dir(run_dir / "functions")
    d = make_dir(src / "answer")
    (d / "handler.c").write_text(DEV_DB_HANDLER)
    (d / "Makefile").write_text(DEV_MAKEFILE)
    dev = Dev(build, run_dir, src, "--db")
    pgdir = None
    try:
        wait_for(lambda: dev.answer("/fn/answer") == (200, {"answer": 42}), 60,
                 what="the query answered through the throwaway Postgres")
        pgdir = re.search(r"--db: psql -h (\S+) -U postgres postgres", dev.output()).group(1)
        assert os.path.isdir(pgdir)
    finally:
        rc = dev.interrupt()
    assert rc == 0, dev.output()
    assert not os.path.exists(pgdir)
    assert not [p for p in Path("/proc").iterdir()
                if p.name.isdigit() and pgdir in (proc_cmdline(int(p.name)) or "")]
