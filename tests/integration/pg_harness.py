"""fngate integration tests' Postgres: a throwaway server and a sampler.

Python 3.11 standard library only.  A throwaway Postgres (as nobody when
root, unix socket only) and a pg_stat_activity sampler:

    pg = Postgres()
    gw = Gateway(run_dir, build, functions={"users": build.handler("users")},
                 gateway={"database_url": pg.dsn(application_name="fngate")})
    watch = PsqlWatch(pg, "SELECT count(*) FROM pg_stat_activity"); watch.start()
"""

from __future__ import annotations

import glob
import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from fngate_harness import HarnessError, wait_for


# --- Postgres ----------------------------------------------------------------
#
# The database tests run against a throwaway cluster of their own, the same
# way tests/unit/pgtmp.c does for the unit tests: initdb into a fresh
# directory (as user nobody when we are root: Postgres refuses to run as
# root), a unix socket in that directory and no TCP, so neither parallel runs
# nor a developer's own server ever see it; and a watchdog process, in its own
# session, that stops the server and removes the directory when the test
# process goes away, however it ends.

PG_DEFAULT_BINDIR = "/usr/lib/postgresql/15/bin"


def pg_bindir():
    """Where initdb and pg_ctl are: $PGTMP_BINDIR, else Debian 12's
    /usr/lib/postgresql/15/bin, else the newest /usr/lib/postgresql/N/bin;
    None when no server is installed."""
    env = os.environ.get("PGTMP_BINDIR")
    if env:
        candidates = [env]
    else:
        others = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                        key=lambda p: int(re.sub(r"\D", "", p) or 0), reverse=True)
        candidates = [PG_DEFAULT_BINDIR] + others
    for c in candidates:
        if os.access(os.path.join(c, "initdb"), os.X_OK):
            return Path(c)
    return None


# Run by `python3 -c` in its own session: waits for EOF on stdin (the test
# process's end of the pipe closes when it exits or calls close()), then stops
# the server and removes its directory.
_PG_WATCHDOG = r"""
import os, shutil, signal, subprocess, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
pgdir, pg_ctl, drop = sys.argv[1], sys.argv[2], sys.argv[3:]
try:
    while sys.stdin.buffer.read(4096):
        pass
except OSError:
    pass
data = os.path.join(pgdir, "data")
if os.path.exists(os.path.join(data, "postmaster.pid")):
    subprocess.run(drop + [pg_ctl, "-D", data, "-m", "immediate", "-w", "-t", "30", "stop"],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, cwd="/")
shutil.rmtree(pgdir, ignore_errors=True)
"""

# Appended to the cluster's postgresql.conf: the socket in the cluster's own
# directory, no TCP, no durability (a test cluster), UTC so that timestamptz
# renders the same everywhere.
_PG_CONF = """
# --- fngate tests
unix_socket_directories = '{dir}'
listen_addresses = ''
fsync = off
full_page_writes = off
synchronous_commit = off
max_connections = 60
shared_buffers = 16MB
timezone = 'UTC'
log_timezone = 'UTC'
"""


class Postgres:
    """A private PostgreSQL cluster in a fresh directory under /tmp.

        pg = Postgres()                  # initdb + start (about 1 s)
        pg.conninfo                      # "host=DIR user=postgres dbname=postgres"
        pg.dsn("mydb", application_name="fngate")
        pg.psql("SELECT 1")              # "1"
        pg.stop("fast"); pg.start()
        pg.close()                       # stop and remove everything

    Superuser "postgres", trust authentication, unix socket only.
    """

    def __init__(self, bindir=None, start=True):
        self.bindir = Path(bindir) if bindir else pg_bindir()
        if self.bindir is None:
            raise HarnessError("no PostgreSQL server binaries (install postgresql, "
                               "or set PGTMP_BINDIR)")
        self.as_nobody = os.geteuid() == 0
        # The socket path must fit in sun_path (107 bytes) and every directory
        # above it must be traversable by the server's user: /tmp is.
        tmp = tempfile.gettempdir()
        base = "/tmp" if self.as_nobody or len(tmp) > 60 else tmp
        self.dir = Path(tempfile.mkdtemp(prefix="fngate-pg-", dir=base))
        os.chmod(self.dir, 0o755)
        self._drop: list[str] = []
        if self.as_nobody:
            pw = pwd.getpwnam("nobody")
            gid = grp.getgrnam("nogroup").gr_gid
            os.chown(self.dir, pw.pw_uid, gid)
            self._drop = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
        self.data = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self.setup_log = self.dir / "setup.log"
        # Client tools must not pick up a developer's PGHOST, PGDATABASE, ...
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _PG_WATCHDOG, str(self.dir), str(self.bindir / "pg_ctl")]
            + self._drop,
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd="/", start_new_session=True)
        try:
            self._server("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                         "-E", "UTF8", "--locale=C", "--no-sync")
            with open(self.data / "postgresql.conf", "a") as f:
                f.write(_PG_CONF.format(dir=self.dir))
            if start:
                self.start()
        except BaseException:
            self.close()
            raise

    # -- server

    def _server(self, prog, *args, timeout=60):
        """Runs BINDIR/PROG as the server's user, output to setup.log."""
        cmd = self._drop + [str(self.bindir / prog), *args]
        with open(self.setup_log, "ab") as log:
            rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=self.dir, env=self._env, timeout=timeout,
                                start_new_session=True).returncode
        if rc != 0:
            raise HarnessError(f"{prog} {' '.join(args)} failed with {rc} in {self.dir}:\n"
                               + self.tail(self.setup_log) + "\n" + self.tail(self.log_path))
        return rc

    def start(self, timeout=30):
        """pg_ctl start, waiting until it accepts connections."""
        self._server("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w",
                     "-t", str(timeout), "start", timeout=timeout + 10)

    def stop(self, mode="fast", timeout=30):
        """pg_ctl stop -m MODE (smart, fast, immediate), waiting for the end."""
        self._server("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", str(timeout),
                     "stop", timeout=timeout + 10)

    def running(self) -> bool:
        cmd = self._drop + [str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"]
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, cwd=self.dir, env=self._env,
                              timeout=30).returncode == 0

    def ensure_running(self):
        if not self.running():
            self.start()

    def close(self):
        """Stops the server and removes its directory (the watchdog does
        both when its pipe closes); waits for it.  Safe to call twice."""
        wd = getattr(self, "_watchdog", None)
        if wd is None:
            return
        self._watchdog = None
        try:
            wd.stdin.close()
        except OSError:
            pass
        try:
            wd.wait(60)
        except subprocess.TimeoutExpired:
            wd.kill()
            wd.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- clients

    @property
    def host(self) -> str:
        return str(self.dir)

    @property
    def conninfo(self) -> str:
        return f"host={self.dir} user=postgres dbname=postgres"

    def dsn(self, dbname="postgres", **params) -> str:
        """A libpq conninfo string for DBNAME with extra keywords."""
        parts = [f"host={self.dir}", "user=postgres", f"dbname={dbname}"]
        parts += [f"{k}={v}" for k, v in params.items()]
        return " ".join(parts)

    def psql_cmd(self, db="postgres") -> list[str]:
        psql = self.bindir / "psql"
        if not os.access(psql, os.X_OK):
            psql = Path(shutil.which("psql") or "psql")
        return [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.dir),
                "-U", "postgres", "-d", db, "-tA"]

    def psql(self, sql, db="postgres", timeout=30, check=True) -> str:
        """`psql -tA -c SQL`: the output, stripped.  Raises HarnessError on
        failure when CHECK."""
        r = subprocess.run(self.psql_cmd(db) + ["-c", sql], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, env=self._env, timeout=timeout)
        if check and r.returncode != 0:
            raise HarnessError(f"psql -c {sql!r} failed ({r.returncode}): {r.stderr.strip()}")
        return r.stdout.strip()

    def psql_file(self, path, db="postgres", timeout=60):
        r = subprocess.run(self.psql_cmd(db) + ["-f", str(path)], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, env=self._env, timeout=timeout)
        if r.returncode != 0:
            raise HarnessError(f"psql -f {path} failed ({r.returncode}): {r.stderr.strip()}")
        return r.stdout.strip()

    def create_database(self, name, template=None):
        tpl = f" TEMPLATE {template}" if template else ""
        self.psql(f"CREATE DATABASE {name}{tpl}")
        return name

    # -- logs

    @staticmethod
    def tail(path, lines=30) -> str:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class PsqlWatch(threading.Thread):
    """Runs one single-row query every INTERVAL seconds on one psql
    connection (psql's \\watch) and keeps the rows as (monotonic time,
    [field, ...]).  Its own backend is pg_backend_pid() to the query."""

    def __init__(self, pg: Postgres, sql, interval=0.02, db="postgres"):
        super().__init__(daemon=True)
        self.samples: list[tuple[float, list[str]]] = []
        self.proc = subprocess.Popen(
            pg.psql_cmd(db), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=pg._env, start_new_session=True)
        self.proc.stdin.write(sql.strip().rstrip(";") + f"\n\\watch {interval}\n")
        self.proc.stdin.flush()

    def run(self):
        for line in self.proc.stdout:
            line = line.strip()
            if line:
                self.samples.append((time.monotonic(), line.split("|")))

    def wait_first(self, timeout=5.0):
        def first():
            if self.proc.poll() is not None:
                raise HarnessError("psql \\watch exited: " + self.proc.stderr.read())
            return self.samples
        wait_for(first, timeout, what="the first pg_stat_activity sample")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.join(10)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        return self.samples


class PgDatabase:
    """One database of a Postgres cluster: its name, conninfo and psql."""

    def __init__(self, pg: Postgres, name: str):
        self.pg = pg
        self.name = name

    def dsn(self, **params) -> str:
        return self.pg.dsn(self.name, **params)

    def psql(self, sql, **kw) -> str:
        return self.pg.psql(sql, db=self.name, **kw)
