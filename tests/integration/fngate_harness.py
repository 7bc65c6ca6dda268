"""fngate integration-test harness: start fngate and nginx for real, talk HTTP.

Python 3.11 standard library only (pytest lives in conftest.py).

    build = Build.locate()
    gw = Gateway(run_dir, build, functions={"hello": build.handler("hello")},
                 defaults={"idle_timeout": "300ms"})
    ngx = Nginx(run_dir, gw.socket_dir, build)
    status, headers, body = ngx.get("/fn/hello")

Every directory made here is mode 0755 and every staged binary 0755: when the
tests run as root, fngate runs each function's instances as a uid of its own
and nginx runs its workers as nobody:nogroup, the sockets' group (socket_mode
0660), and both must reach the handlers and the sockets.

The database tests' throwaway Postgres is pg_harness.py's.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# What a sanitizer prints when it finds something; any of these in fngate's
# log (its own stderr and its instances', captured by fngate) fails the test.
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error")


class HarnessError(AssertionError):
    """A server did not start or stop as it should: the test fails."""


def wait_for(predicate, timeout, interval=0.02, what="condition"):
    """Polls PREDICATE until it returns a true value (returned) or TIMEOUT
    seconds pass (raises HarnessError naming WHAT)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise HarnessError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def make_dir(path: Path) -> Path:
    """mkdir -p PATH with mode 0755 on every directory it creates or finds
    below the existing top."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        os.chmod(d, 0o755)
    os.chmod(path, 0o755)
    return path


def new_run_dir(prefix="fngate-it-") -> Path:
    """A fresh directory under the system temp dir, mode 0755, so that nobody
    can traverse it (pytest's own tmp_path lives under a 0700 directory)."""
    base = Path(tempfile.gettempdir())
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    os.chmod(d, 0o755)
    return d


def no_core_dumps():
    """Sets this process's core size limit to 0; fngate and its instances
    inherit it, so the abort() test leaves no core files behind."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (0, hard))


def is_libtool_wrapper(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.startswith(b"#!") and b"libtool" in head


def make_var(build, name: str) -> str:
    """The value of make variable NAME in the build's Makefile, expanded."""
    out = subprocess.run(["make", "-s", "-C", str(build.dir), "-f", "Makefile", "-f", "-",
                          "fngate-print-var"],
                         input=f"fngate-print-var:\n\t@echo $({name})\n", text=True,
                         capture_output=True, check=True)
    return out.stdout.strip()


class Build:
    """Where the built binaries are: $FNGATE_BUILDDIR or the repository root."""

    def __init__(self, builddir: Path):
        self.dir = Path(builddir).resolve()
        self.srcdir = REPO

    @classmethod
    def locate(cls) -> "Build":
        return cls(Path(os.environ.get("FNGATE_BUILDDIR") or REPO))

    def _binary(self, rel: str, hint: str) -> Path:
        p = self.dir / rel
        if not p.is_file() or not os.access(p, os.X_OK):
            raise HarnessError(f"{p} is not built: {hint} (build dir {self.dir}, "
                               "set FNGATE_BUILDDIR for an out-of-tree build)")
        if is_libtool_wrapper(p):
            raise HarnessError(f"{p} is a libtool wrapper script, not the program: "
                               "build with shared libraries disabled")
        return p

    @property
    def fngate(self) -> Path:
        return self._binary("gateway/fngate", "run make")

    def handler(self, name: str) -> Path:
        return self._binary(f"functions/{name}/handler", "run make")

    def handler_so(self, name: str) -> Path:
        """functions/NAME/handler.so, the shared-object build spares load."""
        p = self.dir / f"functions/{name}/handler.so"
        if not p.is_file():
            raise HarnessError(f"{p} is not built: run make")
        return p

    @property
    def spare(self) -> Path:
        return self._binary("gateway/fngate-spare", "run make")

    @property
    def testfn(self) -> Path:
        return self._binary("tests/integration/testfn", "run make check (it is a check program)")

    @property
    def hostile(self) -> Path:
        return self._binary("tests/integration/hostile", "run make check (it is a check program)")

    @property
    def dbfn(self) -> Path:
        return self._binary("tests/integration/dbfn", "run make check (it is a check program)")

    @property
    def nginx_conf(self) -> Path:
        return self.srcdir / "nginx" / "nginx.conf"

    @property
    def nginx_inc(self) -> Path:
        return self.srcdir / "nginx" / "fngate.inc"


# --- /proc helpers ---------------------------------------------------------


def _read(path, mode="r"):
    try:
        with open(path, mode) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    except OSError:
        return None


def proc_state(pid: int):
    """The state letter of PID (R, S, Z, ...) or None when it is gone."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    # comm may hold spaces and parentheses: the state follows the last ')'.
    return stat[stat.rfind(")") + 2:].split(" ", 1)[0]


def _maps(pid: int) -> list[str]:
    """/proc/PID/maps lines ([] when unreadable or gone)."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return [line.rstrip("\n") for line in f]
    except OSError:
        return []


def proc_alive(pid: int) -> bool:
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


def stop_proc(proc: subprocess.Popen, sig=signal.SIGTERM, timeout=10.0, group=False):
    """Sends SIG to PROC (to its whole process group when GROUP) if it still
    runs, waits TIMEOUT seconds, then SIGKILLs its process group (PROC was
    started with start_new_session) and reaps it; returns its exit status."""
    if proc.poll() is None:
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()


def proc_children(pid: int) -> list[int]:
    """Direct children of PID, from /proc/PID/task/*/children (or a scan of
    /proc/*/stat where the kernel lacks that file)."""
    kids: list[int] = []
    tasks = Path(f"/proc/{pid}/task")
    found_file = False
    try:
        for task in tasks.iterdir():
            text = _read(task / "children")
            if text is None:
                continue
            found_file = True
            kids.extend(int(x) for x in text.split())
    except (FileNotFoundError, ProcessLookupError):
        return []
    if found_file:
        return kids
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read(entry / "stat")
        if not stat:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            kids.append(int(entry.name))
    return kids


def proc_exe(pid: int):
    """The executable path of PID (without a ' (deleted)' suffix), falling
    back to argv[0] when /proc/PID/exe cannot be read."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        if exe.endswith(" (deleted)"):
            exe = exe[: -len(" (deleted)")]
        return exe
    except OSError:
        pass
    cmdline = _read(f"/proc/{pid}/cmdline", "rb")
    if cmdline:
        return cmdline.split(b"\0", 1)[0].decode(errors="replace")
    return None


def unix_listening(paths) -> bool:
    """True when every one of PATHS is a unix socket in the listening state
    (from /proc/net/unix, so without connecting to it: a connection would
    make fngate spawn an instance).  Falls back to "the file exists" where
    /proc/net/unix cannot be read."""
    want = {str(p) for p in paths}
    text = _read("/proc/net/unix")
    if text is None:
        return all(os.path.exists(p) for p in want)
    listening = set()
    for line in text.splitlines()[1:]:
        # Num RefCount Protocol Flags Type St Inode Path; Flags has
        # __SO_ACCEPTCON (0x10000) once listen() was called.
        f = line.split()
        if len(f) >= 8 and f[7] in want and int(f[3], 16) & 0x10000:
            listening.add(f[7])
    return listening == want


def ini_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- fngate ------------------------------------------------------------------


class Gateway:
    """`fngate serve -c <run>/fngate.conf`, with its functions staged under
    <run>/functions/<name>/handler and its log in <run>/fngate.log.

    functions: {name: path of a handler binary to copy in}
    gateway, defaults: extra keys for [gateway] and [defaults]
    sections: {name: {key: value}} per-function sections ("env.KEY" included)
    env: the environment fngate starts with (default: this process's)
    run_as: (uid, gid, [supplementary gids]) to start fngate as that user
        instead of as this process (root only): the shared-hosting case; the
        socket folder is handed to it
    shared_objects: {name: path of a handler.so to copy in next to the
        handler}: cold starts of that function go through a spare process
    """

    def __init__(self, run_dir, build: Build, functions: dict, gateway=None, defaults=None,
                 sections=None, env=None, start=True, start_timeout=5.0, run_as=None,
                 shared_objects=None):
        self.build = build
        self.run = make_dir(Path(run_dir))
        self.functions_dir = make_dir(self.run / "functions")
        self.socket_dir = make_dir(self.run / "sock")
        self.conf_path = self.run / "fngate.conf"
        self.log_path = self.run / "fngate.log"
        self.functions = dict(functions)
        self.gateway_keys = dict(gateway or {})
        self.defaults = dict(defaults or {})
        self.sections = {k: dict(v) for k, v in (sections or {}).items()}
        self.env = dict(os.environ if env is None else env)
        self.run_as = run_as
        if run_as:
            os.chown(self.socket_dir, run_as[0], run_as[1])
        self.proc: subprocess.Popen | None = None
        self.exit_code = None
        self._logf = None
        for name, binary in self.functions.items():
            self.stage(name, binary)
        for name, so in (shared_objects or {}).items():
            self.stage_so(name, so)
        self.write_config()
        if start:
            self.start(timeout=start_timeout)

    # -- files

    def handler_path(self, name: str) -> Path:
        return self.functions_dir / name / "handler"

    def sock_path(self, name: str) -> Path:
        return self.socket_dir / "fn" / f"{name}.sock"

    def stage(self, name: str, binary) -> Path:
        """Copies BINARY to <run>/functions/<name>/handler, mode 0755."""
        d = make_dir(self.functions_dir / name)
        dst = d / "handler"
        shutil.copyfile(binary, dst)
        os.chmod(dst, 0o755)
        return dst

    def so_path(self, name: str) -> Path:
        return self.functions_dir / name / "handler.so"

    def stage_so(self, name: str, so) -> Path:
        """Copies SO to <run>/functions/<name>/handler.so (after the handler:
        fngate ignores a handler.so older than its handler)."""
        dst = self.so_path(name)
        shutil.copyfile(so, dst)
        os.chmod(dst, 0o644)
        return dst

    def spares(self) -> list[int]:
        """Pids of fngate's children running fngate-spare that have not
        loaded any function's handler.so: the waiting spare processes."""
        if not self.running():
            return []
        prefix = os.path.realpath(self.functions_dir) + os.sep
        found = []
        for pid in proc_children(self.pid):
            exe = proc_exe(pid)
            if not exe or os.path.basename(exe) != "fngate-spare" or not proc_alive(pid):
                continue
            if not any(prefix in m for m in _maps(pid)):
                found.append(pid)
        return sorted(found)

    def replace_handler(self, name: str, new_binary) -> Path:
        """Atomically replaces a function's handler: copy next to it, rename over."""
        dst = self.handler_path(name)
        fd, tmp = tempfile.mkstemp(prefix=".handler.", dir=dst.parent)
        os.close(fd)
        shutil.copyfile(new_binary, tmp)
        os.chmod(tmp, 0o755)
        os.rename(tmp, dst)
        return dst

    def config_text(self) -> str:
        gw = {
            "functions_dir": str(self.functions_dir),
            "socket_dir": str(self.socket_dir),
            # As a deployment does: only nginx's group reaches the sockets
            # (its workers run as nobody:nogroup when it starts as root).
            "socket_mode": "0660",
            "log_level": "info",
        }
        if os.geteuid() == 0:
            gw["socket_group"] = "nogroup"
        gw.update(self.gateway_keys)
        lines = ["; written by tests/integration/fngate_harness.py", "[gateway]"]
        lines += [f"{k} = {ini_value(v)}" for k, v in gw.items() if v is not None]
        if self.defaults:
            lines += ["", "[defaults]"]
            lines += [f"{k} = {ini_value(v)}" for k, v in self.defaults.items()]
        for name, keys in self.sections.items():
            lines += ["", f"[{name}]"]
            lines += [f"{k} = {ini_value(v)}" for k, v in keys.items()]
        return "\n".join(lines) + "\n"

    def write_config(self):
        self.conf_path.write_text(self.config_text())
        os.chmod(self.conf_path, 0o644)

    def conf_line(self, key: str, section: str = "gateway") -> int:
        """The line of KEY in [SECTION] of fngate.conf: the line an error
        about it must name."""
        current = None
        for i, line in enumerate(self.conf_path.read_text().splitlines(), 1):
            if line.startswith("["):
                current = line.strip("[]")
            elif current == section and line.split("=")[0].strip() == key:
                return i
        raise AssertionError(f"{key} not in [{section}] of {self.conf_path}")

    # -- process

    @property
    def pid(self) -> int:
        assert self.proc is not None, "fngate is not started"
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=5.0):
        """Starts fngate and waits until every function's socket listens."""
        self._logf = open(self.log_path, "ab", buffering=0)
        self.proc = subprocess.Popen(
            [str(self.build.fngate), "serve", "-c", str(self.conf_path)],
            stdin=subprocess.DEVNULL, stdout=self._logf, stderr=subprocess.STDOUT,
            cwd=self.run, env=self.env, start_new_session=True,
            **({"user": self.run_as[0], "group": self.run_as[1],
                "extra_groups": list(self.run_as[2])} if self.run_as else {}))

        def ready():
            if self.proc.poll() is not None:
                raise HarnessError(f"fngate exited with {self.proc.returncode} at start:\n"
                                   + self.log_tail())
            # Listening, not only there: fngate binds, chmods, then listens,
            # and a request in between would fail with EACCES or ECONNREFUSED.
            return unix_listening([self.sock_path(n) for n in self.functions])

        try:
            wait_for(ready, timeout, what="fngate listening on "
                     + ", ".join(str(self.sock_path(n)) for n in self.functions))
        except HarnessError as e:
            raise HarnessError(f"{e}\n--- fngate log ---\n{self.log_tail()}") from None

    def hup(self):
        os.kill(self.pid, signal.SIGHUP)

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Sends SIG and waits up to TIMEOUT for fngate to exit; returns its
        exit code (negative: killed by that signal).  Past TIMEOUT it is killed
        and HarnessError raised."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.exit_code = self.proc.returncode
                raise HarnessError(f"fngate did not exit within {timeout}s of signal {sig}; "
                                   "killed\n" + self.log_tail())
        self.exit_code = self.proc.returncode
        return self.exit_code

    def cleanup(self):
        """Teardown: stops fngate if it still runs, kills any instance left
        behind, closes the log.  Returns a list of problems (strings)."""
        problems = []
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.stop(timeout=15.0)
            except HarnessError as e:
                problems.append(str(e))
        leftovers = self.orphans()
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if leftovers:
            problems.append(f"instances still alive after fngate exited: {leftovers}")
        if self._logf:
            self._logf.close()
            self._logf = None
        return problems

    # -- instances

    def _handler_exe(self, name: str) -> str:
        return os.path.realpath(self.handler_path(name))

    def instances(self, name: str) -> list[int]:
        """Pids of the live instances of function NAME: direct children of
        fngate whose executable is <run>/functions/<name>/handler."""
        if not self.running():
            return []
        want = self._handler_exe(name)
        so = os.path.realpath(self.so_path(name))
        pids = []
        for pid in proc_children(self.pid):
            if not proc_alive(pid):
                continue
            exe = proc_exe(pid)
            if exe == want:
                pids.append(pid)
            elif exe and os.path.basename(exe) == "fngate-spare" and any(
                    m.endswith(" " + so) for m in _maps(pid)):
                pids.append(pid)  # a spare process that took on NAME
        return sorted(pids)

    def all_instances(self) -> dict[str, list[int]]:
        return {name: self.instances(name) for name in self.functions}

    def orphans(self) -> list[int]:
        """Processes anywhere on the machine still running one of this run's
        handlers (used after fngate has exited)."""
        prefix = os.path.realpath(self.functions_dir) + os.sep
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            exe = proc_exe(pid)
            if exe and exe.startswith(prefix) and proc_alive(pid):
                found.append(pid)
        return found

    def pool_pid(self):
        """The pid of the pool process, or None: a live child of fngate that
        runs fngate-pool (installed next to fngate), the one the latest
        "pool process N started" log line names when several qualify."""
        if not self.running():
            return None
        exe = os.path.join(os.path.dirname(os.path.realpath(self.build.fngate)), "fngate-pool")
        kids = [p for p in proc_children(self.pid) if proc_alive(p) and proc_exe(p) == exe]
        named = re.findall(r"pool process (\d+) started", self.log())
        if named and int(named[-1]) in kids:
            return int(named[-1])
        return kids[0] if len(kids) == 1 else None

    # -- log

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def sanitizer_reports(self) -> list[str]:
        return [ln for ln in self.log().splitlines()
                if any(m in ln for m in SANITIZER_MARKERS)]

    def wait_log(self, predicate, timeout=3.0, what="a log line"):
        """Waits until some log line satisfies PREDICATE(line); returns it."""
        def find():
            for ln in self.log().splitlines():
                if predicate(ln):
                    return ln
            return None
        try:
            return wait_for(find, timeout, interval=0.05, what=what)
        except HarnessError as e:
            raise HarnessError(f"{e}\n--- fngate log ---\n{self.log_tail()}") from None


# --- nginx -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render_nginx_conf(template: str, port: int, socket_dir) -> str:
    """The same two substitutions ./bootstrap makes with sed: the port of
    `listen 127.0.0.1:8080;` and the directory of `set $fngate_socket_dir`."""
    text, n1 = re.subn(r"(?m)^(\s*listen\s+127\.0\.0\.1:)8080;", rf"\g<1>{port};", template)
    text, n2 = re.subn(r"(?m)^(\s*set \$fngate_socket_dir ).*;",
                       lambda m: f"{m.group(1)}{socket_dir};", text)
    if n1 != 1 or n2 != 1:
        raise HarnessError("nginx/nginx.conf no longer has exactly one "
                           "'listen 127.0.0.1:8080;' and one 'set $fngate_socket_dir ...;'")
    return text


class Response:
    __slots__ = ("status", "headers", "body", "elapsed")

    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    def __iter__(self):  # status, headers, body = ngx.get(...)
        return iter((self.status, self.headers, self.body))

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.body[:200]!r}>"


class Nginx:
    """nginx on a free 127.0.0.1 port in front of SOCKET_DIR, run from
    <run>/nginx with the repository's nginx.conf and fngate.inc.

    locations_from: a gateway's fngate.conf: fngate-functions.conf, the
        include's exact locations, is made from it with the real command
        (`fngate nginx --locations -c FILE -o ...`) as the README says;
        None leaves it out, so that every /fn/ request takes the include's
        regex fallback."""

    def __init__(self, run_dir, socket_dir, build: Build | None = None, port=None,
                 start=True, start_timeout=5.0, locations_from=None):
        self.build = build or Build.locate()
        self.prefix = make_dir(Path(run_dir) / "nginx")
        self.socket_dir = Path(socket_dir)
        self.port = port or free_port()
        self.conf_path = self.prefix / "nginx.conf"
        self.log_path = self.prefix / "error.log"
        self.proc: subprocess.Popen | None = None
        self._logf = None
        template = self.build.nginx_conf.read_text()
        self.conf_path.write_text(render_nginx_conf(template, self.port, self.socket_dir))
        shutil.copyfile(self.build.nginx_inc, self.prefix / "fngate.inc")
        for f in (self.conf_path, self.prefix / "fngate.inc"):
            os.chmod(f, 0o644)
        self.locations_from = locations_from
        self.locations_path = self.prefix / "fngate-functions.conf"
        if locations_from is not None:
            self.write_locations()
        if start:
            self.start(start_timeout)

    def write_locations(self):
        """(Re)makes fngate-functions.conf from the gateway's functions now."""
        r = subprocess.run([str(self.build.fngate), "nginx", "--locations", "-c",
                            str(self.locations_from), "-o", str(self.locations_path)],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise HarnessError(f"fngate nginx --locations: {r.returncode}\n{r.stderr}")

    def reload(self, timeout=5.0):
        """SIGHUP, then waits until a new generation of workers answers."""
        old = set(proc_children(self.proc.pid))
        self.proc.send_signal(signal.SIGHUP)

        def renewed():
            kids = set(proc_children(self.proc.pid))
            return bool(kids) and not kids & old
        wait_for(renewed, timeout, interval=0.05, what="nginx's new workers after SIGHUP")

    def start(self, timeout=5.0):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self._logf = open(self.log_path, "ab", buffering=0)
        self.proc = subprocess.Popen(
            [nginx, "-p", f"{self.prefix}/", "-c", str(self.conf_path), "-e", "stderr",
             "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=self._logf, stderr=subprocess.STDOUT,
            start_new_session=True)

        def healthy():
            if self.proc.poll() is not None:
                raise HarnessError(f"nginx exited with {self.proc.returncode}:\n{self.log()}")
            try:
                return self.get("/healthz", timeout=1).status == 200
            except OSError:
                return False

        wait_for(healthy, timeout, interval=0.05, what=f"nginx on port {self.port}")

    def stop(self, timeout=10.0):
        if self.proc is None or self.proc.poll() is not None:
            return
        stop_proc(self.proc, timeout=timeout)
        if self._logf:
            self._logf.close()
            self._logf = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, headers=None, timeout=10.0) -> Response:
        """One request on a fresh connection.  Returns a Response, which also
        unpacks as (status, headers, body); header names are lower-case."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        t0 = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
            data = resp.read()
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            return Response(resp.status, hdrs, data, time.monotonic() - t0)
        finally:
            conn.close()

    def get(self, path, headers=None, timeout=10.0) -> Response:
        return self.request("GET", path, headers=headers, timeout=timeout)

    def post(self, path, body, headers=None, timeout=10.0) -> Response:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        elif isinstance(body, str):
            body = body.encode()
        return self.request("POST", path, body=body, headers=headers, timeout=timeout)

    def get_json(self, path, headers=None, timeout=10.0):
        """(status, parsed JSON body or None when it is not JSON)."""
        r = self.get(path, headers=headers, timeout=timeout)
        try:
            return r.status, json.loads(r.body)
        except ValueError:
            return r.status, None


# --- load helpers ----------------------------------------------------------


class Sampler(threading.Thread):
    """Calls FN every INTERVAL seconds in a thread until stop(); keeps the
    results.  Used to watch instance counts during a burst."""

    def __init__(self, fn, interval=0.003):
        super().__init__(daemon=True)
        self.fn = fn
        self.interval = interval
        self.samples = []
        self.error = None
        self._stop_event = threading.Event()

    def run(self):
        try:
            while not self._stop_event.is_set():
                self.samples.append(self.fn())
                self._stop_event.wait(self.interval)
        except Exception as e:  # noqa: BLE001 - reported by stop()
            self.error = e

    def stop(self):
        self._stop_event.set()
        self.join(10)
        if self.error:
            raise self.error
        return self.samples
