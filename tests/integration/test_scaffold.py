"""`fngate new`: scaffold -> make -> make test -> deploy -> served, against an
installed fngate.

The build is installed once per module (`make install DESTDIR=...`, never into
the system) and found the way an author's machine finds it: pkg-config through
PKG_CONFIG_PATH (with PKG_CONFIG_SYSROOT_DIR for the staged tree), fngate and
fngate-pool on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from fngate_harness import make_dir, make_var, new_run_dir, wait_for


class Installed:
    def __init__(self, build, dest):
        self.dest = dest
        r = subprocess.run(["make", "-s", "-C", str(build.dir), "install", f"DESTDIR={dest}"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        self.bindir = dest / make_var(build, "bindir").lstrip("/")
        self.pcdir = dest / make_var(build, "libdir").lstrip("/") / "pkgconfig"
        self.san = make_var(build, "SAN_CFLAGS")
        self.env = dict(os.environ)
        self.env.pop("DATABASE_URL", None)
        self.env.update(PKG_CONFIG_PATH=str(self.pcdir), PKG_CONFIG_SYSROOT_DIR=str(dest),
                        PATH=f"{self.bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}")
        if self.san:
            # A sanitizer build's libfngate needs the sanitizer runtimes.
            self.env["CFLAGS"] = f"-O1 -g {self.san}"

    def run(self, *args, cwd=None, env=None, timeout=120):
        e = dict(self.env)
        e.update(env or {})
        return subprocess.run(list(args), cwd=cwd, env=e, capture_output=True, text=True,
                              timeout=timeout)


@pytest.fixture(scope="module")
def installed(build):
    d = new_run_dir("fngate-sdk-install-")
    try:
        yield Installed(build, d / "dest")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_new_make_make_test(installed, run_dir):
    r = installed.run("fngate", "new", "hello2", "--dir", str(run_dir))
    fdir = run_dir / "hello2"
    assert r.returncode == 0, r.stderr
    assert r.stdout == (f"created {fdir}: handler.c test_handler.c Makefile README.md\n"
                        f"  cd {fdir} && make && make test\n")
    assert sorted(p.name for p in fdir.iterdir()) == ["Makefile", "README.md", "handler.c",
                                                       "test_handler.c"]
    r = installed.run("make", "test", cwd=fdir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == "hello2: 4 checks, 0 failed"


def test_own_names_like_sdk_internals_link(installed, run_dir):
    """libfngate exports only its fn_ API: a function may define fn_buf_new
    (and others named like the SDK's internals) and still link, statically
    and for its test, against the installed library."""
    r = installed.run("fngate", "new", "clash", "--dir", str(run_dir))
    assert r.returncode == 0, r.stderr
    fdir = run_dir / "clash"
    handler = (fdir / "handler.c").read_text()
    own = ("\nstruct my_buf { int n; };\n"
           "struct my_buf *fn_buf_new(void);\n"
           "struct my_buf *fn_buf_new(void) { static struct my_buf b = {42}; return &b; }\n"
           "int fn_frame_parse(int x);\n"
           "int fn_frame_parse(int x) { return x + 1; }\n")
    (fdir / "handler.c").write_text(
        handler.replace("static int handle(", own + "\nstatic int handle(", 1).replace(
            'name ? name : "world"', '(fn_buf_new()->n == 42 && fn_frame_parse(1) == 2) ? '
            '(name ? name : "world") : "clash"'))
    r = installed.run("make", "test", cwd=fdir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == "clash: 4 checks, 0 failed"
    if not installed.san:
        r = installed.run("make", "handler", cwd=fdir)
        assert r.returncode == 0, r.stdout + r.stderr


def test_new_refuses_bad_names_and_existing_folders(installed, run_dir):
    r = installed.run("fngate", "new", "Hello", "--dir", str(run_dir))
    assert (r.returncode, r.stderr) == (
        2, "fngate new: 'Hello' is not a function name: use [a-z0-9][a-z0-9_-]{0,63} "
           "(the /fn/<name> the gateway serves)\n")
    (run_dir / "taken").mkdir()
    (run_dir / "taken" / "handler.c").write_text("mine\n")
    r = installed.run("fngate", "new", "taken", "--dir", str(run_dir))
    assert (r.returncode, r.stderr) == (
        1, f"fngate new: {run_dir}/taken: File exists (nothing was changed)\n")
    assert (run_dir / "taken" / "handler.c").read_text() == "mine\n"
    r = installed.run("fngate", "new")
    assert r.returncode == 2 and r.stderr.startswith("usage: fngate new NAME")


def test_new_default_dir_is_cwd(installed, run_dir):
    r = installed.run("fngate", "new", "--db", "here", cwd=run_dir)
    assert r.returncode == 0, r.stderr
    assert "fn_query" in (run_dir / "here" / "handler.c").read_text()


def deploy(gw, fdir, name):
    """Copies the built function into the gateway's watched functions folder,
    the way a user would (cp, then chmod): no signal, no reload."""
    dst = make_dir(gw.functions_dir / name)
    shutil.copyfile(fdir / "handler", dst / "handler")
    os.chmod(dst / "handler", 0o755)
    if (fdir / "handler.so").exists():
        shutil.copyfile(fdir / "handler.so", dst / "handler.so")


def test_new_built_function_deploys_and_serves(installed, run_dir, stack, build):
    if installed.san:
        pytest.skip("sanitizer build: its libfngate cannot link a static handler "
                    "(the plain build runs this test)")
    r = installed.run("fngate", "new", "fresh", "--dir", str(run_dir / "src"))
    assert r.returncode == 0, r.stderr
    fdir = run_dir / "src" / "fresh"
    r = installed.run("make", cwd=fdir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (fdir / "handler").read_bytes()[:4] == b"\x7fELF"
    ldd = subprocess.run(["ldd", str(fdir / "handler")], capture_output=True, text=True)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr
    assert (fdir / "handler.so").read_bytes()[:4] == b"\x7fELF", "make built no handler.so"

    gw, ngx = stack(functions={"hello": build.handler("hello")})
    assert ngx.get("/fn/fresh").status == 404
    deploy(gw, fdir, "fresh")
    # The folder is watched: served within a second or two, without a signal.
    wait_for(lambda: ngx.get("/fn/fresh?name=ada").status == 200, 5, 0.1,
             "the copied function to be served without a reload")
    assert ngx.get_json("/fn/fresh?name=ada") == (200, {"hello": "ada"})
    # Its cold start went through a spare process that loaded the handler.so.
    inst = gw.instances("fresh")
    assert len(inst) == 1 and os.path.basename(os.readlink(f"/proc/{inst[0]}/exe")) == \
        "fngate-spare", inst
    r = subprocess.run([str(build.fngate), "invoke", "-c", str(gw.conf_path), "fresh"],
                       capture_output=True, text=True)
    assert (r.returncode, json.loads(r.stdout)) == (0, {"hello": "world"})


def test_new_db_make_test_queries_through_a_real_pool(installed, run_dir, users_db):
    r = installed.run("fngate", "new", "dbf", "--db", "--dir", str(run_dir))
    assert r.returncode == 0, r.stderr
    fdir = run_dir / "dbf"
    # Without DATABASE_URL the test still passes, on the no-database answer.
    r = installed.run("make", "test", cwd=fdir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "note: DATABASE_URL is not set" in r.stdout
    # With it, fn_test starts the installed fngate-pool (found on PATH).
    r = installed.run("./test_handler", cwd=fdir, env={"DATABASE_URL": users_db.dsn()})
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == ["dbf: 2 checks, 0 failed"]
