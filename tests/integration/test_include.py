"""nginx/fngate.inc's own answers: what nginx says when a function's socket
cannot be reached (issue 11 point 1).  The include does no filesystem check
per request; it tells an unknown function (404) from a full queue (503) from
a crash (502) only on the error path.

Each behaviour is asserted twice (the `route` fixture): through the exact
location `fngate nginx --locations` writes for a function (constant socket,
no regex: what the README has users run) and through the include's regex
fallback (no such file, or a function added since it was written).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import stat
import subprocess
import time

import pytest

from fngate_harness import wait_for


def exact_for(ngx, names, socket_dir):
    """Gives nginx exact locations for NAMES in SOCKET_DIR, sockets a test
    makes itself (no gateway serves them): the real generator run on an
    fngate.conf whose functions_dir holds NAMES, then a reload."""
    fns = ngx.prefix / "stub-functions"
    for name in names:
        (fns / name).mkdir(parents=True, exist_ok=True)
        (fns / name / "handler").write_text("#!/bin/sh\n")
        os.chmod(fns / name / "handler", 0o755)
    conf = ngx.prefix / "stub-fngate.conf"
    conf.write_text(f"[gateway]\nfunctions_dir = {fns}\nsocket_dir = {socket_dir}\n")
    ngx.locations_from = conf
    ngx.write_locations()
    ngx.reload()
    for name in names:
        assert f"location = /fn/{name} {{" in ngx.locations_path.read_text()


def test_connect_refused_on_a_live_socket_is_503_with_retry_after(stack, build, route):
    """A socket that refuses connections (its kernel backlog is full) is an
    overload: 503, JSON, Retry-After, never nginx's 502."""
    gw, ngx = stack({"hello": build.handler("hello")}, route=route)
    if route == "exact":
        exact_for(ngx, ["full"], gw.socket_dir)
    path = os.path.join(gw.socket_dir, "fn", "full.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fillers = []
    try:
        srv.bind(path)
        os.chmod(path, 0o766)  # as fngate makes them: owner-execute set
        srv.listen(0)
        while True:  # fill the accept queue until the kernel refuses
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(path)
            except BlockingIOError:
                c.close()
                break
            fillers.append(c)
        r = ngx.get("/fn/full")
        assert r.status == 503, r
        assert r.headers.get("retry-after") == "1", r.headers
        assert r.headers.get("content-type", "").startswith("application/json"), r.headers
        assert r.json() == {"error": "function full is overloaded: its queue is full"}
    finally:
        for c in fillers:
            c.close()
        srv.close()
        os.unlink(path)


def test_unknown_function_404_has_no_retry_after(stack, build, route):
    _, ngx = stack({"hello": build.handler("hello")}, route=route)
    r = ngx.get("/fn/nosuch/x?y=1")
    assert r.status == 404, r
    assert r.json() == {"error": "no such function: nosuch"}
    assert "retry-after" not in r.headers


def test_crash_is_502_without_retry_after(stack, build, route):
    _, ngx = stack({"t": build.testfn}, route=route)
    r = ngx.get("/fn/t?abort=1")
    assert r.status == 502, r
    assert r.json() == {"error": "bad gateway: function t is not answering"}
    assert "retry-after" not in r.headers


def test_gateway_sockets_carry_the_include_mark(stack, build):
    gw, ngx = stack({"hello": build.handler("hello")})
    st = os.stat(os.path.join(gw.socket_dir, "fn", "hello.sock"))
    assert stat.S_ISSOCK(st.st_mode) and st.st_mode & stat.S_IXUSR, oct(st.st_mode)
    assert ngx.get("/fn/hello").status == 200


def test_request_id_is_the_sdk_s_unless_the_server_block_asks_for_nginx_s(
        gateway_factory, nginx_factory, build, route):
    """fngate.inc sends no FNGATE_REQUEST_ID by default (nginx's $request_id
    is a RAND_bytes on every request): each request still gets a fresh id of
    32 hex digits, made by the SDK.  A server block with `set
    $fngate_request_id $request_id;` hands nginx's own id through, so that
    nginx's access log can carry the same id."""
    gw = gateway_factory({"t": build.testfn})
    loc = gw.conf_path if route == "exact" else None
    ngx = nginx_factory(gw.socket_dir, locations_from=loc)
    ids = set()
    for _ in range(5):
        r = ngx.get("/fn/t?req=1")
        assert r.status == 200, r
        j = r.json()
        assert re.fullmatch(r"[0-9a-f]{32}", j["request_id"]), j["request_id"]
        assert j["params"]["FNGATE_REQUEST_ID"] is None
        ids.add(j["request_id"])
        assert r.headers.get("x-request-id") == j["request_id"], r.headers
    assert len(ids) == 5
    assert "uninitialized" not in ngx.log()

    asked = nginx_factory(gw.socket_dir, start=False, locations_from=loc)
    conf = asked.conf_path.read_text()
    assert conf.count("include fngate.inc;") == 1
    asked.conf_path.write_text(conf.replace(
        "include fngate.inc;", "set $fngate_request_id $request_id;\n        include fngate.inc;"))
    asked.start()
    seen = set()
    for _ in range(3):
        j = asked.get("/fn/t?req=1").json()
        assert re.fullmatch(r"[0-9a-f]{32}", j["request_id"]), j["request_id"]
        assert j["params"].get("FNGATE_REQUEST_ID") == j["request_id"], j["params"]
        seen.add(j["request_id"])
    assert len(seen) == 3


def test_every_response_names_its_request_id(stack, build, run_dir, route):
    """X-Request-Id on every response the SDK writes (its own 4xx included):
    the id in the request log's line for it, so a client (and nginx's access
    log, with $upstream_http_x_request_id) can name the request."""
    log = run_dir / "requests.log"
    _, ngx = stack({"hello": build.handler("hello"), "t": build.testfn},
                   gateway={"request_log": str(log)}, route=route)
    got = []
    for path, status in (("/fn/hello", 200), ("/fn/hello?name=x", 200), ("/fn/t?noresponse=1", 500),
                         ("/fn/t?q=%00", 400)):
        r = ngx.get(path)
        assert r.status == status, (path, r)
        rid = r.headers.get("x-request-id", "")
        assert re.fullmatch(r"[0-9a-f]{32}", rid), (path, r.headers)
        got.append(rid)
    assert len(set(got)) == 4

    def logged():
        return [json.loads(l)["request_id"] for l in log.read_text().splitlines()] \
            if log.exists() else []

    wait_for(lambda: len(logged()) >= 4, 5, what="4 request-log lines")
    assert sorted(logged()) == sorted(got)


def test_parameters_are_the_same_through_either_location(stack, build, route):
    """SCRIPT_NAME, an empty FNGATE_PATH, FNGATE_ARRIVAL, httpoxy: the exact
    location sends what the regex location sends.  /fn/<name>/<rest> always
    takes the regex, exact location or not."""
    _, ngx = stack({"t": build.testfn}, route=route)
    before = time.time()
    r = ngx.get("/fn/t?req=1&a=%C3%A9", headers={"Proxy": "http://evil.example:1", "X-T": "y"})
    assert r.status == 200, r
    j = r.json()
    p = j["params"]
    assert j["name"] == "t" and j["path"] == "" and j["query"] == "req=1&a=%C3%A9"
    assert p["SCRIPT_NAME"] == "/fn/t"
    assert p["FNGATE_PATH"] == ""
    assert p["REQUEST_URI"] == "/fn/t?req=1&a=%C3%A9"
    assert not p.get("HTTP_PROXY"), p
    assert p["FNGATE_REQUEST_ID"] is None
    assert abs(float(p["FNGATE_ARRIVAL"]) - before) < 5
    assert p["REQUEST_METHOD"] == "GET" and p["SERVER_PORT"] == str(ngx.port)
    assert {k.lower(): v for k, v in j["headers"].items()}.get("x-t") == "y"
    for gone in ("PATH_INFO", "DOCUMENT_URI", "FNGATE_FUNCTION"):
        assert p.get(gone) is None, gone
    r = ngx.get("/fn/t/x/y%20z?req=1")
    assert r.status == 200, r
    assert r.json()["path"] == "/x/y z" and r.json()["params"]["SCRIPT_NAME"] == "/fn/t"
    if route == "exact":
        assert "location = /fn/t {" in ngx.locations_path.read_text()
    else:
        assert not ngx.locations_path.exists()


def test_a_stale_exact_location_is_404_no_such_function(stack, build, route):
    """A function removed after its exact location was written: the connect
    fails with ENOENT, and the error path answers as for any unknown name,
    the name taken back from the URI."""
    gw, ngx = stack({"hello": build.handler("hello"), "gone": build.handler("hello")},
                    route=route)
    assert ngx.get("/fn/gone").status == 200
    (gw.functions_dir / "gone" / "handler").unlink()
    (gw.functions_dir / "gone").rmdir()
    gw.hup()
    wait_for(lambda: not gw.sock_path("gone").exists(), 10, what="gone.sock removed on reload")
    if route == "exact":
        assert "location = /fn/gone {" in ngx.locations_path.read_text()
    r = ngx.get("/fn/gone?x=1")
    assert r.status == 404, r
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    assert r.json() == {"error": "no such function: gone"}
    assert "retry-after" not in r.headers
    assert ngx.get("/fn/hello").status == 200


def test_a_function_added_later_is_served_at_once_then_gets_its_location(stack, build, route):
    """The regex fallback serves a function the file does not name yet, with
    no reload of nginx; the file made again names it."""
    gw, ngx = stack({"hello": build.handler("hello")}, route=route)
    gw.stage("late", build.handler("hello"))
    gw.hup()
    wait_for(lambda: gw.sock_path("late").exists(), 10, what="late.sock after the reload")
    assert ngx.get_json("/fn/late") == (200, {"hello": "world"})
    if route == "exact":
        assert "/fn/late" not in ngx.locations_path.read_text()
        ngx.write_locations()
        ngx.reload()
        assert "location = /fn/late {" in ngx.locations_path.read_text()
        assert ngx.get_json("/fn/late") == (200, {"hello": "world"})


def test_nginx_s_own_413_is_json(stack, build, route):
    """A body over the include's client_max_body_size (64m): nginx answers
    before any of it is read, and its answer is the include's JSON."""
    _, ngx = stack({"t": build.testfn}, route=route)
    conn = http.client.HTTPConnection("127.0.0.1", ngx.port, timeout=10)
    try:
        conn.putrequest("POST", "/fn/t")
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(65 * 1024 * 1024))
        conn.endheaders()
        r = conn.getresponse()
        assert r.status == 413
        assert r.getheader("content-type", "").startswith("application/json")
        assert json.loads(r.read()) == {"error": "request body too large"}
    finally:
        conn.close()


def test_nginx_s_own_504_names_the_function(stack, build, route):
    """nginx's read timeout (300 s in the include, 1 s here) answers 504 with
    the function's name, which an exact location never captured."""
    gw, ngx = stack({"t": build.testfn}, route=route)
    ngx.stop()
    for f in [ngx.prefix / "fngate.inc"] + ([ngx.locations_path] if route == "exact" else []):
        text = f.read_text()
        assert "fastcgi_read_timeout 300s;" in text, f
        f.write_text(text.replace("fastcgi_read_timeout 300s;", "fastcgi_read_timeout 1s;"))
    ngx.start()
    r = ngx.get("/fn/t?sleep=4000", timeout=20)
    assert r.status == 504, r
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    assert r.json() == {"error": "gateway timeout: function t did not answer in time"}


def test_a_stopping_gateway_is_503_then_no_gateway_is_502(stack, build, route):
    gw, ngx = stack({"hello": build.handler("hello")}, route=route)
    assert ngx.get("/fn/hello").status == 200
    assert gw.stop() == 0
    r = ngx.get("/fn/hello")
    assert (r.status, r.json()) == (503, {"error": "service unavailable: the gateway is stopping"})
    assert r.headers.get("retry-after") == "1", r.headers
    (gw.socket_dir / "fn" / ".draining").unlink()
    r = ngx.get("/fn/hello")
    assert r.status == 502, r
    assert r.json() == {"error": f"bad gateway: no fngate serves {gw.socket_dir} (not running, "
                                 "or nginx may not search a folder on the way: permission denied)"}
    assert "retry-after" not in r.headers


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: nginx's workers must be another user")
def test_a_socket_nginx_may_not_connect_to_is_502_permission_denied(stack, build, route):
    """Sockets root:root 0660 (no socket_group): nginx's workers (nobody) get
    EACCES, and the body says what to set."""
    gw, ngx = stack({"hello": build.handler("hello")}, gateway={"socket_group": None},
                    route=route)
    r = ngx.get("/fn/hello")
    assert r.status == 502, r
    assert r.json() == {"error": (
        f"bad gateway: permission denied: nginx may not connect to {gw.socket_dir}/fn/hello.sock; "
        "set socket_mode and socket_group in fngate.conf so that the user nginx runs as may "
        "connect (e.g. socket_group = its group, socket_mode = 0660)")}


# --- the generator: `fngate nginx --locations -o PATH` -------------------------


def locations(build, conf, *extra, check=True):
    r = subprocess.run([str(build.fngate), "nginx", "--locations", "-c", str(conf), *extra],
                       capture_output=True, text=True, timeout=30)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_locations_are_written_atomically_and_a_failed_run_keeps_the_old_file(
        gateway_factory, build, run_dir):
    """-o writes a temporary file next to PATH (a dot name no
    `fngate-functions*.conf` glob matches) and renames it over PATH: a
    reload reads the old file or the new one.  A run that fails leaves PATH
    as it was and no temporary file behind."""
    gw = gateway_factory({"hello": build.handler("hello"), "b-2": build.handler("hello")},
                         start=False)
    out_dir = run_dir / "etc-nginx"
    out_dir.mkdir()
    path = out_dir / "fngate-functions.conf"
    path.write_text("# the old file\n")
    old_ino = path.stat().st_ino
    printed = locations(build, gw.conf_path).stdout
    assert locations(build, gw.conf_path, "-o", str(path)).stdout == ""
    st = path.stat()
    assert st.st_ino != old_ino, "PATH was rewritten in place, not renamed over"
    assert stat.S_IMODE(st.st_mode) == 0o644
    assert path.read_text() == printed
    assert [l for l in printed.splitlines() if l.startswith("location")] == [
        "location = /fn/b-2 {", "location = /fn/hello {"]
    assert f"fastcgi_pass unix:{gw.socket_dir}/fn/hello.sock;" in printed
    assert sorted(os.listdir(out_dir)) == ["fngate-functions.conf"]

    # A run that cannot list the functions: refused, the old file kept.
    bad = run_dir / "bad.conf"
    bad.write_text(f"[gateway]\nfunctions_dir = {run_dir}/nope\nsocket_dir = {gw.socket_dir}\n")
    r = locations(build, bad, "-o", str(path), check=False)
    assert r.returncode == 1
    assert r.stderr == (f"fngate nginx: {bad}:2: functions_dir {run_dir}/nope: "
                        "No such file or directory\n")
    assert path.read_text() == printed and path.stat().st_ino == st.st_ino
    assert sorted(os.listdir(out_dir)) == ["fngate-functions.conf"]
    r = locations(build, gw.conf_path, "-o", str(run_dir / "no-such-dir" / "f.conf"), check=False)
    assert r.returncode == 1
    assert r.stderr.startswith(f"fngate nginx: -o {run_dir}/no-such-dir/f.conf: cannot create a "
                               "file next to it: No such file or directory"), r.stderr
    r = subprocess.run([str(build.fngate), "nginx", "--locations", "--prefix", "/a/fn", "-c",
                        str(gw.conf_path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--locations is for nginx/fngate.inc at /fn" in r.stderr


def test_a_socket_dir_with_braces_and_quotes_is_quoted_for_nginx(gateway_factory, nginx_factory,
                                                                   build, run_dir):
    """A socket folder nginx would cut at a brace or a quote: the constant
    fastcgi_pass is written in double quotes (escaped), and nginx serves
    through it.  (No space: the harness reads /proc/net/unix.)"""
    sock = run_dir / 'so\'ck{x}"'
    escaped = str(sock).replace('"', '\\"')
    sock.mkdir()
    os.chmod(sock, 0o755)
    gw = gateway_factory({"hello": build.handler("hello")}, gateway={"socket_dir": str(sock)},
                         start=False)
    gw.socket_dir = sock  # the harness's own folder is not the one it serves
    gw.start()
    text = locations(build, gw.conf_path).stdout
    assert f'fastcgi_pass "unix:{escaped}/fn/hello.sock";' in text
    ngx = nginx_factory(run_dir / "elsewhere", start=False, locations_from=gw.conf_path)
    conf = ngx.conf_path.read_text()
    ngx.conf_path.write_text(re.sub(r"set \$fngate_socket_dir [^;]*;",
                                    lambda m: f'set $fngate_socket_dir "{escaped}";', conf))
    ngx.start()
    assert ngx.get_json("/fn/hello") == (200, {"hello": "world"})
    assert ngx.get_json("/fn/nope") == (404, {"error": "no such function: nope"})
