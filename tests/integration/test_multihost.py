"""Issue 10 point 7: past one machine.  Two "hosts", each a network namespace
with its own nginx and fngate, behind a front nginx (an upstream of both)
in the root namespace; one Postgres, reached over TCP through each host's
veth.  What is checked:

- traffic (GETs and POSTs) is served by both hosts;
- SIGTERM to one host's fngate while requests are in flight on it loses no
  request: those in flight finish, new ones get the stopping gateway's 503,
  which the front retries on the other host (they never reached a
  function); every POST is inserted exactly once;
- Postgres never sees more than hosts x pool_size connections.

The front's retry rule is the one README's "Past one machine" section
gives: proxy_next_upstream error http_503 non_idempotent.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from fngate_harness import Gateway, Nginx, free_port, make_dir, wait_for

HOSTS = 2
POOL_SIZE = 2

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="no ip(8): install iproute2"),
]


def ip(*args, ns=None, check=True):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + ["ip", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r


def free_subnet() -> int:
    used = ip("-4", "addr").stdout + ip("-4", "route").stdout
    for _ in range(50):
        b = random.randint(100, 250)
        if f"10.{b}." not in used:
            return b
    pytest.skip("no free 10.x.0.0/16 for the test's namespaces")


class Host:
    """A network namespace with a veth to the root namespace: root side
    10.B.K.1, host side 10.B.K.2."""

    def __init__(self, b, k):
        tag = f"{os.getpid() % 100000}{k}"
        self.ns = f"fngate-mh{tag}"
        self.veth = f"fgm{tag}"
        self.addr = f"10.{b}.{k}.2"
        self.gw_addr = f"10.{b}.{k}.1"
        ip("netns", "add", self.ns)
        ip("link", "set", "lo", "up", ns=self.ns)
        ip("link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        ip("addr", "add", f"{self.gw_addr}/24", "dev", self.veth)
        ip("link", "set", self.veth, "up")
        ip("addr", "add", f"{self.addr}/24", "dev", "eth0", ns=self.ns)
        ip("link", "set", "eth0", "up", ns=self.ns)

    def popen(self, argv, log, **kw):
        return subprocess.Popen(["ip", "netns", "exec", self.ns, *argv], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                **kw)

    def close(self):
        ip("link", "del", self.veth, check=False)
        ip("netns", "del", self.ns, check=False)


def request(port, method, path, body=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers=headers)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


FRONT_CONF = """\
worker_processes 1;
pid front.pid;
error_log stderr notice;
events {{ worker_connections 1024; }}
http {{
    log_format up '$upstream_addr $status $request_method $request_uri';
    access_log {prefix}/access.log up;
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    upstream fngate_hosts {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location = /healthz {{ return 200 'ok'; }}
        location / {{
            proxy_pass http://fngate_hosts;
            # Only what never reached a function: a refused connection, and
            # a stopping gateway's 503.
            proxy_next_upstream error http_503 non_idempotent;
            proxy_next_upstream_tries {hosts};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def test_two_hosts_one_postgres_sigterm_loses_nothing(run_dir, build, postgres_factory):
    b = free_subnet()
    hosts, gws, procs, logs = [], [], [], []
    try:
        for k in range(1, HOSTS + 1):
            hosts.append(Host(b, k))

        # One Postgres, reached over TCP on each host's veth.
        pg = postgres_factory()
        pg.psql("ALTER SYSTEM SET listen_addresses = '"
                + ",".join(h.gw_addr for h in hosts) + "'")
        with open(pg.data / "pg_hba.conf", "a") as f:
            f.write(f"host all all 10.{b}.0.0/16 trust\n")
        pg.stop()
        pg.start()

        port = free_port()
        for k, h in enumerate(hosts, 1):
            gw = Gateway(run_dir / f"h{k}", build,
                         {"users": build.handler("users"), "slow": build.testfn},
                         gateway={"database_url": f"host={h.gw_addr} user=postgres "
                                                  f"dbname=postgres application_name=fngate-h{k}",
                                  "pool_size": str(POOL_SIZE)},
                         start=False)
            gw._logf = open(gw.log_path, "ab", buffering=0)
            gw.proc = h.popen([str(build.fngate), "serve", "-c", str(gw.conf_path)], gw._logf,
                              cwd=gw.run)
            gws.append(gw)
            ngx = Nginx(run_dir / f"h{k}", gw.socket_dir, build=build, start=False)
            text = ngx.conf_path.read_text()
            text, n = re.subn(r"(?m)^(\s*)listen 127\.0\.0\.1:\d+;", rf"\g<1>listen {h.addr}:{port};",
                              text)
            assert n == 1
            ngx.conf_path.write_text(text)
            log = open(ngx.log_path, "ab")
            logs.append(log)
            procs.append(h.popen([shutil.which("nginx") or "/usr/sbin/nginx", "-p",
                                  f"{ngx.prefix}/", "-c", str(ngx.conf_path), "-e", "stderr",
                                  "-g", "daemon off;"], log))

        front = make_dir(run_dir / "front")
        fport = free_port()
        (front / "nginx.conf").write_text(FRONT_CONF.format(
            prefix=front, port=fport, hosts=HOSTS,
            servers="\n".join(f"        server {h.addr}:{port};" for h in hosts)))
        flog = open(front / "error.log", "ab")
        logs.append(flog)
        procs.append(subprocess.Popen(
            [shutil.which("nginx") or "/usr/sbin/nginx", "-p", f"{front}/", "-c",
             str(front / "nginx.conf"), "-e", "stderr", "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=flog, stderr=subprocess.STDOUT,
            start_new_session=True))

        def up():
            for gw in gws:
                assert gw.proc.poll() is None, gw.log_tail()
            return all(request_direct(h.addr, port, "/fn/users/2") == 200 for h in hosts)
        wait_for(up, 20, interval=0.2, what="both hosts serving /fn/users/2")

        # Postgres connections from the gateways, sampled all along.
        peak = {"total": 0, "apps": set()}
        stop_sampling = threading.Event()

        def sample():
            while not stop_sampling.is_set():
                out = pg.psql("SELECT application_name, count(*) FROM pg_stat_activity "
                              "WHERE application_name LIKE 'fngate-h%' GROUP BY 1", check=False)
                rows = [r.split("|") for r in out.splitlines() if "|" in r]
                peak["total"] = max(peak["total"], sum(int(n) for _, n in rows))
                peak["apps"].update(a for a, _ in rows)
                time.sleep(0.05)
        sampler = threading.Thread(target=sample)
        sampler.start()

        results, posted = [], []
        lock = threading.Lock()
        stop_traffic = threading.Event()

        def client(i):
            n = 0
            while not stop_traffic.is_set():
                n += 1
                if n % 3 == 0:
                    email = f"mh{i}-{n}@example.com"
                    r = request(fport, "POST", "/fn/users", {"name": f"mh{i}", "email": email})
                    with lock:
                        posted.append(email)
                elif n % 3 == 1:
                    r = request(fport, "GET", "/fn/users/2")
                else:
                    r = request(fport, "GET", "/fn/slow?sleep=300")
                with lock:
                    results.append(r)
        clients = [threading.Thread(target=client, args=(i,)) for i in range(6)]
        for t in clients:
            t.start()
        time.sleep(2.0)
        # Stop host 1's gateway with requests in flight on it.
        gws[0].proc.send_signal(signal.SIGTERM)
        assert gws[0].proc.wait(30) == 0, gws[0].log_tail()
        time.sleep(2.0)
        stop_traffic.set()
        for t in clients:
            t.join(60)
        stop_sampling.set()
        sampler.join(10)

        bad = [r for r in results if r[0] not in (200, 201)]
        assert bad == [], f"{len(bad)} of {len(results)} requests failed: {bad[:5]}"
        assert len(results) > 30, len(results)
        served = open(front / "access.log").read().splitlines()
        by_host = {h.addr: sum(1 for ln in served if ln.split(" ")[0].rstrip(",")
                               .startswith(h.addr)) for h in hosts}
        assert all(n > 0 for n in by_host.values()), by_host
        retried = [ln for ln in served if "," in ln.split(" 2")[0]]
        # Every POST is in the database exactly once.
        got = pg.psql("SELECT count(*), count(DISTINCT email) FROM users "
                      "WHERE email LIKE 'mh%@example.com'")
        assert got == f"{len(posted)}|{len(posted)}", (got, len(posted))
        assert peak["apps"] == {f"fngate-h{k}" for k in range(1, HOSTS + 1)}, peak
        assert 0 < peak["total"] <= HOSTS * POOL_SIZE, peak
        print(f"\n{len(results)} requests, by host {by_host}, {len(retried)} retried by the "
              f"front, {len(posted)} POSTs, peak Postgres connections {peak['total']}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGQUIT if p.args[0] != "ip" else signal.SIGTERM)
        for gw in gws:
            if gw.proc and gw.proc.poll() is None:
                gw.proc.send_signal(signal.SIGTERM)
                try:
                    gw.proc.wait(15)
                except subprocess.TimeoutExpired:
                    gw.proc.kill()
            if gw._logf:
                gw._logf.close()
                gw._logf = None
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for f in logs:
            f.close()
        for h in hosts:
            h.close()


def request_direct(addr, port, path):
    try:
        c = http.client.HTTPConnection(addr, port, timeout=2)
        c.request("GET", path)
        status = c.getresponse().status
        c.close()
        return status
    except OSError:
        return None
