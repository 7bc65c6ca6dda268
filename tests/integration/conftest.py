"""pytest fixtures for fngate's integration tests.

    def test_x(stack, build):
        gw, ngx = stack(functions={"hello": build.handler("hello")},
                        defaults={"idle_timeout": "300ms"})
        assert ngx.get_json("/fn/hello") == (200, {"hello": "world"})

Every server a test needs, the test starts (through these factories) and the
fixtures stop, failure or not.  A test fails when fngate's log (its stderr and
its instances', which fngate captures) shows a sanitizer report, or when an
instance outlives fngate.

Database tests get a throwaway Postgres (never a server someone else runs):

    def test_y(stack, build, users_db):
        gw, ngx = stack({"users": build.handler("users")},
                        gateway={"database_url": users_db.dsn()})

users_db is a fresh copy of functions/users/schema.sql's data in the session's
cluster (the `postgres` fixture); a test that stops or breaks its server takes
its own from postgres_factory().

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

from fngate_harness import REPO, Build, Gateway, Nginx, make_dir, new_run_dir, no_core_dumps
from pg_harness import PgDatabase, Postgres, pg_bindir

USERS_SCHEMA = REPO / "functions" / "users" / "schema.sql"


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
        for pg in getattr(item, "_fngate_postgres", []):
            tail = "\n".join(pg.log().splitlines()[-30:])
            rep.sections.append((f"postgres log {pg.dir}", tail))


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


@pytest.fixture(params=["exact", "fallback"])
def route(request):
    """For the tests of a behaviour fngate.inc documents: once through the
    exact location `fngate nginx --locations` writes, once through the
    include's regex fallback (no such file)."""
    return request.param


@pytest.fixture
def stack(gateway_factory, nginx_factory):
    """stack(functions={...}, gateway=..., defaults=..., sections=..., env=...,
    route="exact") -> (Gateway, Nginx), both started; nginx is stopped first at
    teardown.  route "exact": nginx has the exact locations `fngate nginx
    --locations` writes for the functions (what a user following the README
    gets); "fallback": none, every /fn/ request takes the include's regex."""

    def factory(functions, route="exact", **kwargs):
        gw = gateway_factory(functions, **kwargs)
        ngx = nginx_factory(gw.socket_dir,
                            locations_from=gw.conf_path if route == "exact" else None)
        return gw, ngx

    return factory


# --- Postgres -----------------------------------------------------------------


def _need_postgres():
    if pg_bindir() is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql, "
                    "or set PGTMP_BINDIR)")


def _keep_pg_log(pg: Postgres, dest):
    try:
        shutil.copyfile(pg.log_path, dest)
    except OSError:
        pass


def _register_pg(request, pg: Postgres):
    lst = request.node.__dict__.setdefault("_fngate_postgres", [])
    if pg not in lst:
        lst.append(pg)


@pytest.fixture(scope="session")
def postgres(run_base):
    """The session's throwaway Postgres (started once, about a second):
    functions/users/schema.sql loaded into database postgres and into
    users_seed, the template users_db copies.  A test that stops it must
    start it again (users_db restarts it if it finds it down)."""
    _need_postgres()
    pg = Postgres()
    try:
        pg.psql_file(USERS_SCHEMA)
        pg.create_database("users_seed")
        pg.psql_file(USERS_SCHEMA, db="users_seed")
        yield pg
    finally:
        _keep_pg_log(pg, run_base / "postgres-session.log")
        pg.close()


_db_counter = itertools.count(1)


@pytest.fixture
def users_db(request, postgres) -> PgDatabase:
    """A fresh database holding the users seed (1,000 users, 500 active),
    copied from users_seed, dropped after the test."""
    postgres.ensure_running()
    db = PgDatabase(postgres, postgres.create_database(f"t{next(_db_counter):03d}",
                                                       template="users_seed"))
    _register_pg(request, postgres)
    yield db
    if postgres.running():
        postgres.psql(f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)", check=False)


@pytest.fixture
def postgres_factory(request, run_dir):
    """postgres_factory(schema=True) -> a Postgres of this test's own, the
    users schema loaded into database postgres; stopped and removed after
    the test (its log is kept in the run directory)."""
    _need_postgres()
    made: list[Postgres] = []

    def factory(schema=True):
        pg = Postgres()
        made.append(pg)
        _register_pg(request, pg)
        if schema:
            pg.psql_file(USERS_SCHEMA)
        return pg

    yield factory

    for i, pg in enumerate(made):
        _keep_pg_log(pg, run_dir / f"postgres{i}.log")
        pg.close()
