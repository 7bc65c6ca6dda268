"""Issue 10 point 5: shared hosting, as README.md's "Shared hosting" section
says, step by step: two hosting users (alice and bob, plain uids without
root, members of www-data) each run a gateway from their home with ~ and
$HOME in their fngate.conf, print their snippet with `fngate nginx --prefix`,
and one root nginx (workers as www-data) includes both in one server block.
Also: the 502 bodies that say why a socket cannot be reached (EACCES names
socket_mode and socket_group; a stopped gateway says no fngate serves it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from fngate_harness import Nginx, wait_for

WWW = 33  # www-data on Debian

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="shared hosting tests need root (a root nginx, other uids)")


class HostingUser:
    """A hosting user: a uid of its own (no passwd entry needed), a home under
    the test's folder, and membership in www-data when MEMBER."""

    def __init__(self, run_dir, name, uid, build, member=True):
        self.name, self.uid, self.build = name, uid, build
        self.home = run_dir / "home" / name
        self.home.mkdir(parents=True)
        os.chown(self.home, uid, uid)
        os.chmod(self.home, 0o700)
        self.groups = [WWW] if member else []
        self.proc = None
        self.log = run_dir / f"{name}.log"

    def env(self):
        return {"HOME": str(self.home), "PATH": "/usr/bin:/bin"}

    def run(self, *argv, check=True, **kw):
        """ARGV as this user (setpriv: uid, gid, supplementary groups)."""
        groups = ",".join(str(g) for g in self.groups) if self.groups else None
        cmd = ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}"]
        cmd += [f"--groups={groups}"] if groups else ["--clear-groups"]
        r = subprocess.run(cmd + ["--", *argv], env=self.env(), cwd=self.home,
                           capture_output=True, text=True, timeout=30, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"{argv} as {self.name}: {r.returncode}\n{r.stdout}{r.stderr}")
        return r

    def sh(self, script, **kw):
        return self.run("sh", "-ec", script, **kw)

    # README step 1-3: the folders, the function, the configuration.
    def set_up(self, handler, fn="hello", conf_extra=""):
        self.sh("mkdir -p ~/fngate/functions/" + fn + " ~/fngate/sock")
        shutil.copy(handler, self.home / "fngate/functions" / fn / "handler")
        os.chown(self.home / "fngate/functions" / fn / "handler", self.uid, self.uid)
        self.write_conf(conf_extra)
        # Step 4: nginx (www-data) may search, not list, the way to the sockets.
        self.sh("chmod 711 ~ ~/fngate ~/fngate/sock")

    def write_conf(self, extra):
        self.sh("cat > ~/fngate/fngate.conf <<'EOF'\n"
                "[gateway]\n"
                "functions_dir = ~/fngate/functions\n"
                "socket_dir = $HOME/fngate/sock\n"
                f"{extra}"
                "EOF")

    def serve(self):
        groups = ",".join(str(g) for g in self.groups) if self.groups else None
        cmd = ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}"]
        cmd += [f"--groups={groups}"] if groups else ["--clear-groups"]
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            cmd + ["--", str(self.build.fngate), "serve", "-c", f"{self.home}/fngate/fngate.conf"],
            env=self.env(), cwd=self.home, stdin=subprocess.DEVNULL, stdout=logf,
            stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        sock = self.home / "fngate/sock/fn"
        wait_for(lambda: self.proc.poll() is None and any(sock.glob("*.sock")), 10,
                 what=f"{self.name}'s gateway listening\n{self.log.read_text()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        return self.proc.returncode if self.proc else None


@pytest.fixture
def users(run_dir, build):
    made = []

    def factory(name, uid, member=True):
        u = HostingUser(run_dir, name, uid, build, member)
        made.append(u)
        return u
    yield factory
    for u in made:
        if u.proc and u.proc.poll() is None:
            u.proc.kill()
            u.proc.wait()


def root_nginx(run_dir, build, includes):
    """The host's nginx: master as root, workers as www-data, one server block
    including every user's snippet."""
    ngx = Nginx(run_dir, run_dir / "unused-sock", build=build, start=False)
    text = ngx.conf_path.read_text()
    text, n1 = re.subn(r"(?m)^user .*;$", "user www-data www-data;", text)
    lines = "\n".join(f"        include {p};" for p in includes)
    text, n2 = re.subn(r"(?m)^\s*set \$fngate_socket_dir .*;\n\s*include fngate.inc;$", lines,
                       text)
    assert (n1, n2) == (1, 1), "nginx/nginx.conf changed shape"
    ngx.conf_path.write_text(text)
    ngx.start()
    return ngx


def test_two_hosting_users_share_one_server_block(run_dir, build, users):
    alice = users("alice", 52001)
    bob = users("bob", 52002)
    alice.set_up(build.handler("hello"), "hello",
                 "socket_group = www-data ; the group nginx's workers run as\n"
                 "socket_mode = 0660\n")
    bob.set_up(build.handler("echo"), "echo", "socket_group = www-data\nsocket_mode = 0660\n")
    for u in (alice, bob):
        out = u.run(str(build.fngate), "check", "-c", f"{u.home}/fngate/fngate.conf").stdout
        assert f"ok, 1 function in {u.home}/fngate/functions" in out, out
        u.serve()
        # Step 6: the snippet, for the host to include.
        snip = u.run(str(build.fngate), "nginx", "-c", f"{u.home}/fngate/fngate.conf",
                     "--prefix", f"/{u.name}/fn").stdout
        assert f"unix:{u.home}/fngate/sock/fn/$fngate_fn.sock" in snip
        (u.home / "fngate/nginx.inc").write_text(snip)
    ngx = root_nginx(run_dir, build, [alice.home / "fngate/nginx.inc",
                                      bob.home / "fngate/nginx.inc"])

    assert ngx.get_json("/alice/fn/hello") == (200, {"hello": "world"})
    r = ngx.get("/bob/fn/echo/x?y=1")
    assert r.status == 200, r
    assert r.json()["path"] == "/x", r.json()
    # Each prefix reaches only its own gateway.
    assert ngx.get_json("/alice/fn/echo") == (404, {"error": "no such function: echo"})
    assert ngx.get_json("/bob/fn/hello") == (404, {"error": "no such function: hello"})
    # Instances run as their user, sockets belong to www-data.
    sock = alice.home / "fngate/sock/fn/hello.sock"
    st = os.stat(sock)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (alice.uid, WWW, 0o760), oct(st.st_mode)

    # Alice stops: her prefix says so (503: a front may retry elsewhere), bob's
    # keeps serving.
    assert alice.stop() == 0
    r = ngx.get("/alice/fn/hello")
    assert (r.status, r.json()) == (503, {"error": "service unavailable: the gateway is stopping"})
    assert r.headers.get("retry-after") == "1", r.headers
    assert ngx.get("/bob/fn/echo").status == 200
    # A folder no gateway ever served (or one nginx cannot search) says so.
    (alice.home / "fngate/sock/fn/.draining").unlink()
    status, _, body = ngx.get("/alice/fn/hello")
    assert status == 502
    assert json.loads(body) == {"error": f"bad gateway: no fngate serves {alice.home}/fngate/sock "
                                         "(not running, or nginx may not search a folder on the "
                                         "way: permission denied)"}
    ngx.stop()
    bob.stop()


def test_eacces_on_a_socket_is_a_502_naming_socket_mode_and_group(run_dir, build, users):
    """Without socket_group the sockets are the user's own group's, 0660:
    nginx's worker (www-data) gets EACCES, and the body says what to fix."""
    carol = users("carol", 52003, member=False)
    carol.set_up(build.handler("hello"), "hello", "socket_mode = 0660\n")
    carol.serve()
    snip = carol.run(str(build.fngate), "nginx", "-c", f"{carol.home}/fngate/fngate.conf",
                     "--prefix", "/carol/fn").stdout
    (run_dir / "carol.inc").write_text(snip)
    ngx = root_nginx(run_dir, build, [run_dir / "carol.inc"])
    status, _, body = ngx.get("/carol/fn/hello")
    assert status == 502
    assert json.loads(body) == {"error": (
        f"bad gateway: permission denied: nginx may not connect to {carol.home}/fngate/sock/fn/"
        "hello.sock; set socket_mode and socket_group in fngate.conf so that the user nginx runs "
        "as may connect (e.g. socket_group = its group, socket_mode = 0660)")}
    assert "Permission denied" in ngx.log()
    # An unknown function is still a 404, a full queue still a 503 (not this).
    assert ngx.get_json("/carol/fn/nope") == (404, {"error": "no such function: nope"})

    # The fix, as the README says: membership in www-data and socket_group.
    carol.groups = [WWW]
    carol.stop()
    carol.write_conf("socket_group = www-data\nsocket_mode = 0660\n")
    carol.serve()
    assert ngx.get_json("/carol/fn/hello") == (200, {"hello": "world"})
    ngx.stop()
    carol.stop()


def test_fngate_nginx_refuses_a_bad_prefix(run_dir, build, users):
    dave = users("dave", 52004)
    dave.set_up(build.handler("hello"))
    r = dave.run(str(build.fngate), "nginx", "-c", f"{dave.home}/fngate/fngate.conf", "--prefix",
                 "/dave/fn/", check=False)
    assert r.returncode == 1
    assert r.stderr == ("fngate nginx: --prefix '/dave/fn/': must be a path like /fn or /alice/fn "
                        "(letters, digits, ._~-, no trailing slash)\n")
    r = dave.run(str(build.fngate), "nginx", "-c", f"{dave.home}/fngate/fngate.conf")
    assert "location ^~ /fn/ {" in r.stdout and "@fngate_fn_502" in r.stdout
    assert "_fngate/" not in r.stdout.replace("# ", "")
