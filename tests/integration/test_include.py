"""nginx/fngate.inc's own answers: what nginx says when a function's socket
cannot be reached (issue 11 point 1).  The include does no filesystem check
per request; it tells an unknown function (404) from a full queue (503) from
a crash (502) only on the error path.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat

from fngate_harness import wait_for


def test_connect_refused_on_a_live_socket_is_503_with_retry_after(stack, build):
    """A socket that refuses connections (its kernel backlog is full) is an
    overload: 503, JSON, Retry-After, never nginx's 502."""
    gw, ngx = stack({"hello": build.handler("hello")})
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


def test_unknown_function_404_has_no_retry_after(stack, build):
    _, ngx = stack({"hello": build.handler("hello")})
    r = ngx.get("/fn/nosuch/x?y=1")
    assert r.status == 404, r
    assert r.json() == {"error": "no such function: nosuch"}
    assert "retry-after" not in r.headers


def test_crash_is_502_without_retry_after(stack, build):
    _, ngx = stack({"t": build.testfn})
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
        gateway_factory, nginx_factory, build):
    """fngate.inc sends no FNGATE_REQUEST_ID by default (nginx's $request_id
    is a RAND_bytes on every request): each request still gets a fresh id of
    32 hex digits, made by the SDK.  A server block with `set
    $fngate_request_id $request_id;` hands nginx's own id through, so that
    nginx's access log can carry the same id."""
    gw = gateway_factory({"t": build.testfn})
    ngx = nginx_factory(gw.socket_dir)
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

    asked = nginx_factory(gw.socket_dir, start=False)
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


def test_every_response_names_its_request_id(stack, build, run_dir):
    """X-Request-Id on every response the SDK writes (its own 4xx included):
    the id in the request log's line for it, so a client (and nginx's access
    log, with $upstream_http_x_request_id) can name the request."""
    log = run_dir / "requests.log"
    _, ngx = stack({"hello": build.handler("hello"), "t": build.testfn},
                   gateway={"request_log": str(log)})
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
