"""pytest fixtures for fngate's integration tests.

    def test_x(stack, build):
        gw, ngx = stack(functions={"hello": build.handler("hello")},
                        defaults={"idle_timeout": "300ms"})
        assert ngx.get_json("/fn/hello") == (200, {"hello": "world"})

Every server a test needs, the test starts (through these factories) and the
fixtures stop, failure or not.  A test fails when fngate's log (its stderr and
its instances', which fngate captures) shows a sanitizer report, or when an
instance outlives fngate.

Environment:
  FNGATE_BUILDDIR   where the binaries are built (default: the repository)
  FNGATE_KEEP_RUNS  1: keep the run directories (logs, configs) even on success
"""

from __future__ import annotations

import itertools
import os
import re
import shutil

import pytest

from fngate_harness import Build, Gateway, Nginx, make_dir, new_run_dir, no_core_dumps


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running (deselect with -m 'not slow')")
    no_core_dumps()


@pytest.fixture(scope="session")
def build() -> Build:
    return Build.locate()


@pytest.fixture(scope="session")
def run_base(request):
    base = new_run_dir()
    yield base
    keep = os.environ.get("FNGATE_KEEP_RUNS") == "1" or request.session.testsfailed
    if keep:
        print(f"\nfngate integration run directories kept in {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)


_counter = itertools.count(1)


@pytest.fixture
def run_dir(run_base, request) -> "os.PathLike":
    """A fresh 0755 directory for this test (short: unix socket paths are
    limited to 107 bytes)."""
    short = re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)[:24]
    return make_dir(run_base / f"t{next(_counter):03d}-{short}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for gw in getattr(item, "_fngate_gateways", []):
            rep.sections.append((f"fngate log {gw.run}", gw.log_tail(80)))
        for ngx in getattr(item, "_fngate_nginxes", []):
            tail = "\n".join(ngx.log().splitlines()[-30:])
            rep.sections.append((f"nginx log {ngx.prefix}", tail))


@pytest.fixture
def gateway_factory(request, build, run_dir):
    """gateway_factory(functions={...}, gateway={...}, defaults={...},
    sections={...}, env=None, start=True) -> a started Gateway."""
    made: list[Gateway] = []
    request.node._fngate_gateways = made

    def factory(functions, **kwargs):
        gw_dir = run_dir / (f"gw{len(made)}" if made else "gw")
        gw = Gateway.__new__(Gateway)
        made.append(gw)  # registered first: a failed start is still cleaned up
        Gateway.__init__(gw, gw_dir, build, functions, **kwargs)
        return gw

    yield factory

    problems = []
    for gw in made:
        if not hasattr(gw, "run"):
            continue
        problems += gw.cleanup() if hasattr(gw, "proc") else []
        reports = gw.sanitizer_reports()
        if reports:
            problems.append("sanitizer report in fngate's log:\n  " + "\n  ".join(reports[:20])
                            + f"\n(full log: {gw.log_path})")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def nginx_factory(request, build, run_dir):
    """nginx_factory(socket_dir) -> a started Nginx in front of SOCKET_DIR."""
    made: list[Nginx] = []
    request.node._fngate_nginxes = made

    def factory(socket_dir, **kwargs):
        ngx = Nginx.__new__(Nginx)
        made.append(ngx)
        Nginx.__init__(ngx, run_dir / f"ngx{len(made)}", socket_dir, build, **kwargs)
        return ngx

    yield factory

    for ngx in made:
        if hasattr(ngx, "proc"):
            ngx.stop()


@pytest.fixture
def stack(gateway_factory, nginx_factory):
    """stack(functions={...}, gateway=..., defaults=..., sections=..., env=...)
    -> (Gateway, Nginx), both started; nginx is stopped first at teardown."""

    def factory(functions, **kwargs):
        gw = gateway_factory(functions, **kwargs)
        ngx = nginx_factory(gw.socket_dir)
        return gw, ngx

    return factory
