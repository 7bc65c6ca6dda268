"""`fngate invoke`: a function called over its socket as FastCGI, no nginx.

What a user sees: the body on stdout (-i: the status line and headers
first), exit 0 for 2xx, 1 for another status, 2 when the function cannot be
called, with one clear line on stderr.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from fngate_harness import Gateway


def invoke(gw: Gateway, *args, stdin=None, timeout=30):
    return subprocess.run([str(gw.build.fngate), "invoke", "-c", str(gw.conf_path), *args],
                          input=stdin, capture_output=True, timeout=timeout)


@pytest.fixture
def gw(gateway_factory, build):
    return gateway_factory({"hello": build.handler("hello"), "testfn": build.testfn})


def test_invoke_prints_the_body_exit_0(gw):
    r = invoke(gw, "hello")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"hello": "world"}
    assert r.stderr == b""
    r = invoke(gw, "hello?name=ada")
    assert (r.returncode, json.loads(r.stdout)) == (0, {"hello": "ada"})


def test_invoke_i_prints_status_and_headers_first(gw):
    r = invoke(gw, "-i", "hello")
    assert r.returncode == 0, r.stderr
    head, body = r.stdout.split(b"\n\n", 1)
    lines = head.decode().split("\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    assert "Content-Type: application/json" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert json.loads(body) == {"hello": "world"}


def test_invoke_sends_what_nginx_would(gw):
    r = invoke(gw, "-X", "PUT", "-H", "X-Trace: abc", "-H", "Content-Type: text/plain",
               "-d", "the body", "testfn/items/a%20b?req=1&tag=x&tag=y")
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout)
    assert seen["method"] == "PUT"
    assert seen["path"] == "/items/a b"
    assert seen["name"] == "testfn"
    assert seen["query"] == "req=1&tag=x&tag=y"
    assert seen["tags"] == ["x", "y"]
    assert seen["body"] == "the body"
    assert seen["headers"]["X-Trace"] == "abc"
    assert seen["headers"]["Content-Type"] == "text/plain"
    assert seen["headers"]["Content-Length"] == "8"
    assert len(seen["request_id"]) == 32
    assert seen["params"]["SCRIPT_NAME"] == "/fn/testfn"
    assert seen["params"]["REQUEST_URI"] == "/fn/testfn/items/a%20b?req=1&tag=x&tag=y"
    assert float(seen["params"]["FNGATE_ARRIVAL"]) > 1.6e9


def test_invoke_d_is_a_post_form_and_reads_files(gw, run_dir):
    r = invoke(gw, "-d", "tag=from+form", "testfn?req=1")
    seen = json.loads(r.stdout)
    assert (r.returncode, seen["method"], seen["tags"]) == (0, "POST", ["from form"])
    f = run_dir / "body.json"
    f.write_text('{"k": 1}')
    r = invoke(gw, "-H", "Content-Type: application/json", "-d", f"@{f}", "testfn?req=1")
    assert json.loads(json.loads(r.stdout)["body"]) == {"k": 1}
    r = invoke(gw, "-d", "@-", "testfn?req=1", stdin=b"tag=stdin")
    assert json.loads(r.stdout)["tags"] == ["stdin"]
    r = invoke(gw, "-d", f"@{run_dir}/missing", "testfn")
    assert r.returncode == 2
    assert r.stderr.decode() == (f"fngate invoke: -d @{run_dir}/missing: "
                                 "No such file or directory\n")


def test_invoke_non_2xx_exits_1_with_the_body(gw):
    r = invoke(gw, "testfn?noresponse=1")
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"error": "the function returned without a response"}
    r = invoke(gw, "-i", "testfn?noresponse=1")
    assert r.stdout.startswith(b"HTTP/1.1 500 Internal Server Error\n")


def test_invoke_unknown_function_exits_2(gw):
    r = invoke(gw, "nope")
    assert r.returncode == 2
    assert r.stdout == b""
    assert r.stderr.decode() == (f"fngate invoke: no function 'nope' in {gw.functions_dir} "
                                 "(2 functions: hello testfn)\n")


def test_invoke_without_a_gateway_exits_2(gw):
    gw.stop()
    r = invoke(gw, "hello")
    assert r.returncode == 2
    err = r.stderr.decode()
    assert err.startswith(f"fngate invoke: cannot reach function 'hello' at {gw.sock_path('hello')}: ")
    assert f"(is `fngate serve -c {gw.conf_path}` running?)" in err


def test_invoke_crash_mid_request_exits_2(gw):
    r = invoke(gw, "testfn?abort=1")
    assert r.returncode == 2
    assert r.stdout == b""
    assert r.stderr.decode().endswith(
        "fngate invoke: function 'testfn' closed the connection without a complete answer "
        "(see the gateway's log)\n")


def test_invoke_bad_usage_exits_2(gw):
    r = invoke(gw, "-H", "no colon", "hello")
    assert (r.returncode, r.stderr.decode()) == (
        2, "fngate invoke: bad header 'no colon': want 'Name: value'\n")
    r = invoke(gw)
    assert r.returncode == 2
    assert r.stderr.decode().startswith("usage: fngate invoke")
    r = invoke(gw, "/hello")
    assert (r.returncode, r.stderr.decode()) == (
        2, "fngate invoke: '/hello' does not start with a function name\n")


def test_fn_log_lines_carry_the_request_id(gw):
    r = invoke(gw, "testfn?log=looked+up+3+rows")
    assert r.returncode == 0, r.stderr
    rid = json.loads(r.stdout)["logged"]
    assert len(rid) == 32
    line = gw.wait_log(lambda ln: "looked up 3 rows" in ln, what="the fn_log line")
    assert line.endswith(f"] [req {rid}] looked up 3 rows"), line
    assert "[fn testfn pid " in line


def test_invoke_disabled_function_exits_1_with_the_reason(gateway_factory, build):
    gw = gateway_factory({"hello": build.handler("hello"), "broken": build.handler("hello")},
                         start=False)
    conf = gw.functions_dir / "broken" / "function.conf"
    conf.write_text("max_instances = lots\n")
    gw.start()
    r = invoke(gw, "broken")
    assert r.returncode == 1
    assert json.loads(r.stdout) == {
        "error": f"function broken is disabled: {conf}:1: max_instances: 'lots' is not an "
                 "integer"}
    assert invoke(gw, "hello").returncode == 0
