"""Issue 10 point 1 and 2: what `make install` puts down, the man pages and
the systemd unit.

Run against the build in FNGATE_BUILDDIR (the tree and build-asan alike):
`make install DESTDIR=...` into the test's folder, never into the system.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from fngate_harness import REPO, make_var


def make_install(build, destdir, target="install"):
    r = subprocess.run(["make", "-s", "-C", str(build.dir), target, f"DESTDIR={destdir}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def paths(build):
    return {v: make_var(build, v) for v in
            ("prefix", "bindir", "sysconfdir", "localstatedir", "datadir", "mandir",
             "systemdsystemunitdir", "includedir", "libdir")}


def test_default_config_path_follows_sysconfdir(build, paths):
    r = subprocess.run([str(build.fngate), "help"], capture_output=True, text=True)
    assert r.returncode == 0
    assert f"FILE defaults to {paths['sysconfdir']}/fngate/fngate.conf." in r.stdout
    r = subprocess.run([str(build.fngate), "check"], capture_output=True, text=True)
    if not (REPO / (paths["sysconfdir"] + "/fngate/fngate.conf").lstrip("/")).exists():
        assert r.returncode == 1
        assert f"{paths['sysconfdir']}/fngate/fngate.conf: cannot open: No such file or " \
            "directory" in r.stderr, (r.stdout, r.stderr)


def test_make_install_layout_and_starter_config(build, paths, run_dir):
    dest = run_dir / "dest"
    make_install(build, dest)
    root = lambda p: dest / p.lstrip("/")  # noqa: E731
    conf = root(paths["sysconfdir"] + "/fngate/fngate.conf")
    fdir = root(paths["localstatedir"] + "/lib/fngate/functions")
    for p in [root(paths["bindir"] + "/fngate"), root(paths["bindir"] + "/fngate-pool"),
              conf, root(paths["mandir"] + "/man8/fngate.8"),
              root(paths["mandir"] + "/man5/fngate.conf.5"),
              root(paths["mandir"] + "/man8/fngate-pool.8"),
              root(paths["systemdsystemunitdir"] + "/fngate.service"),
              root(paths["datadir"] + "/fngate/nginx/fngate.inc"),
              root(paths["datadir"] + "/fngate/fngate.conf.example"),
              root(paths["includedir"] + "/fngate.h"),
              root(paths["libdir"] + "/pkgconfig/fngate.pc")]:
        assert p.is_file(), f"make install did not install {p}"
    assert fdir.is_dir(), "make install did not create the functions folder"

    text = conf.read_text()
    assert f"functions_dir = {paths['localstatedir']}/lib/fngate/functions" in text
    unit = root(paths["systemdsystemunitdir"] + "/fngate.service").read_text()
    assert f"ExecStart={paths['bindir']}/fngate serve -c {paths['sysconfdir']}/fngate/fngate.conf" in unit

    # The starter config, pointed at the DESTDIR tree, is one `fngate check` accepts.
    staged = run_dir / "staged.conf"
    staged.write_text(text.replace(f"{paths['localstatedir']}/lib/fngate/functions", str(fdir)))
    r = subprocess.run([str(build.fngate), "check", "-c", str(staged)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{staged}: ok, 0 functions in {fdir}")

    # An administrator's edit survives the next make install ...
    conf.write_text(text + "\n; edited\n")
    out = make_install(build, dest)
    assert "keeping the existing" in out
    assert conf.read_text().endswith("; edited\n")
    # ... and make uninstall removes the config only while it is the starter.
    make_install(build, dest, "uninstall")
    assert conf.exists(), "make uninstall removed an edited fngate.conf"
    conf.write_text(text)
    make_install(build, dest, "install")
    make_install(build, dest, "uninstall")
    left = [p for p in dest.rglob("*") if p.is_file()]
    assert left == [], f"make uninstall left {left}"


def built(build, rel):
    p = build.dir / rel
    assert p.is_file(), f"{p} is not built: run make"
    return p


@pytest.mark.skipif(shutil.which("mandoc") is None, reason="mandoc is not installed")
def test_man_pages_are_mandoc_lint_clean(build):
    pages = [built(build, "gateway/fngate.8"), built(build, "gateway/fngate.conf.5"),
             built(build, "gateway/fngate-pool.8")]
    r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning"] + [str(p) for p in pages],
                       capture_output=True, text=True)
    assert (r.returncode, r.stdout + r.stderr) == (0, "")
    for p in pages:
        assert "@" not in re.sub(r"\.\\\".*", "", p.read_text()).replace("\\(at", ""), \
            f"{p} has an unsubstituted @variable@"


def readme_keys() -> list[str]:
    """Every key in README.md's configuration tables (| `key` | default | ... |)."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    keys = []
    for line in section.splitlines():
        m = re.match(r"\|\s*(`[^|]+`)\s*\|", line)
        if not m:
            continue
        for k in re.findall(r"`([^`]+)`", m.group(1)):
            keys.append(k)
    return keys


def test_man_page_documents_every_readme_key(build):
    """fngate.conf(5) and README's key tables must not drift apart: a key
    added to one goes into the other (gateway/fngate.conf.5.in)."""
    page = built(build, "gateway/fngate.conf.5").read_text()
    keys = readme_keys()
    assert len(keys) >= 20, keys
    missing = []
    for k in keys:
        name = k.split(".")[0] + "." if k.startswith("env.") else k
        if not re.search(r"^\.It\b.*\bCm " + re.escape(name) + r"(\s|\\&|$)", page, re.M):
            missing.append(k)
    assert missing == [], f"README.md documents keys that fngate.conf(5) lacks: {missing}"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_verifies(build, run_dir, paths):
    unit = built(build, "gateway/fngate.service").read_text()
    bindir, sysconf = paths["bindir"], paths["sysconfdir"]
    for line in ["KillMode=mixed", "RuntimeDirectory=fngate", "ExecReload=" + bindir + "/fngate reload -c " + sysconf + "/fngate/fngate.conf",
                 "NoNewPrivileges=yes"]:
        assert line in unit.splitlines(), f"fngate.service lacks {line}"
    caps = re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M).group(1).split()
    for cap in ["CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN"]:
        assert cap in caps, f"instances as other uids need {cap}"
    # verify checks that ExecStart's program exists: point it at the build's.
    local = run_dir / "fngate.service"
    local.write_text(unit.replace(bindir + "/fngate", str(build.fngate)))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(local)],
                       capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr


def test_build_dependencies_agree():
    """debian/control's Build-Depends, README's build-from-source apt line and
    the Dockerfile's build stage name the same libraries (a new dependency
    must reach all three, or a fresh clone stops building)."""
    control = (REPO / "debian/control").read_text()
    deps = re.search(r"^Build-Depends:(.*?)\n(?=\S)", control, re.M | re.S).group(1)
    libs = {d.strip().split()[0] for d in deps.split(",") if d.strip()}
    libs -= {"debhelper-compat", "pkgconf", "autoconf", "automake", "libtool"}
    readme = (REPO / "README.md").read_text().split("### From source", 1)[1].split("```", 2)[1]
    docker = (REPO / "Dockerfile").read_text().split("AS build", 1)[1].split("\nFROM ", 1)[0]
    for where, text in (("README.md (From source)", readme), ("Dockerfile (build stage)", docker)):
        missing = sorted(p for p in libs if not re.search(rf"(?<![\w-]){re.escape(p)}(?![\w-])",
                                                           text))
        assert missing == [], f"{where} lacks {missing} (debian/control Build-Depends has them)"
