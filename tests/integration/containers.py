"""podman for the tests that build images (test_package.py, test_container.py).

podman_ready() prepares podman the way these machines need it
(`eval "$(container-env)"`: a runc that works with this host's cgroups and
a local debian:bookworm base image; see the tool's header), then checks
that a trivial image builds.  Where that is impossible the tests skip with
one line saying why.  The check runs once per pytest session.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from fngate_harness import REPO

_state: dict = {}


def container_env_tool():
    for p in [os.environ.get("FNGATE_CONTAINER_ENV"), REPO.parent / "shared/tools/container-env",
              Path("/work/shared/tools/container-env")]:
        if p and Path(p).is_file() and os.access(p, os.X_OK):
            return Path(p)
    return None


def _prepare():
    if os.geteuid() != 0:
        return "podman image tests need root here (rootless podman is not set up)"
    tool = container_env_tool()
    env = dict(os.environ)
    if tool is not None:
        r = subprocess.run([str(tool)], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            return f"{tool} failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}"
        m = re.search(r"export CONTAINERS_CONF=(\S+)", r.stdout)
        if m:
            env["CONTAINERS_CONF"] = m.group(1)
    if shutil.which("podman") is None:
        return "podman is not installed"
    with tempfile.TemporaryDirectory() as d:
        Path(d, "Containerfile").write_text("FROM debian:bookworm-slim\nRUN true\n")
        r = subprocess.run(["podman", "build", "-q", "--network=host", "-t",
                            "localhost/fngate-probe", d],
                           capture_output=True, text=True, env=env, timeout=300)
    if r.returncode != 0:
        return "podman cannot build an image here: " + \
            ((r.stderr.strip().splitlines() or ["?"])[-1])
    _state["env"] = env
    return None


def podman_env() -> dict:
    """The environment podman runs with; skips the test when podman cannot build."""
    if "why" not in _state:
        _state["why"] = _prepare()
    if _state["why"]:
        pytest.skip(_state["why"])
    return _state["env"]


def podman(*args, check=True, timeout=600, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(["podman", *args], capture_output=True, text=True, env=podman_env(),
                       timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {r.returncode}:\n"
                             f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def only_in_main_build(build):
    """Image tests build from the repository itself: run them in the main build's
    pass only, not again in the ASan pass."""
    if build.dir.resolve() != REPO.resolve():
        pytest.skip("image tests run once, in the main build's pass")
