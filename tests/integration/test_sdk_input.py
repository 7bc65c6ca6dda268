"""The SDK refuses request input it would otherwise mangle (issue 6.7).

A NUL byte (%00) in an argument would reach the handler cut short, so the
request gets a 400 with a JSON body before the handler runs; fn_set_header
takes only HTTP tokens for names and never Status or Content-Length; a
Content-Length past 2 GiB is read as the number it is.  About 3 s.
"""

from __future__ import annotations

import errno
import socket
import struct

from fngate_harness import Gateway

NUL_QUERY = {"error": "the query string has an argument with a NUL byte (%00), which the "
                      "function cannot read"}


def test_nul_in_an_argument_is_400(stack, build):
    gw, ngx = stack({"t": build.testfn})
    for query in ("a=x%00y", "%00=1", "req=1&b=%00"):
        r = ngx.get(f"/fn/t?req=1&{query}")
        assert r.status == 400, (query, r)
        assert r.headers["content-type"].startswith("application/json")
        assert r.json() == NUL_QUERY, query
    # %25 is a percent sign: "%2500" is the three characters "%00".
    r = ngx.get("/fn/t?req=1&a=%2500")
    assert r.status == 200 and ["a", "%00"] in r.json()["args"], r


def test_nul_in_a_form_body_is_400(stack, build):
    gw, ngx = stack({"t": build.testfn})
    r = ngx.post("/fn/t?req=1", "a=x%00y",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 400, r
    assert r.json() == {"error": "the form body has an argument with a NUL byte (%00), which "
                                 "the function cannot read"}
    # Another body type is the handler's to read as it is.
    r = ngx.post("/fn/t?req=1", "a=x%00y", headers={"Content-Type": "text/plain"})
    assert r.status == 200, r


def test_set_header_takes_tokens_only(stack, build):
    gw, ngx = stack({"t": build.testfn})
    for name in ("Status", "status", "Content-Length", "X%20Bad", "X(A)", "X%3AA", "%C3%84"):
        r = ngx.get(f"/fn/t?header={name}&value=1")
        assert r.status == 200, (name, r)
        assert r.json() == {"rc": -1, "errno": errno.EINVAL}, name
        assert r.headers.get("content-length") == str(len(r.body)), name
    r = ngx.get("/fn/t?header=Status&value=302%20Found")
    assert r.status == 200, "a Status header replaced the response's status"
    r = ngx.get("/fn/t?header=X-Good&value=yes")
    assert r.json() == {"rc": 0, "errno": 0} and r.headers.get("x-good") == "yes", r
    assert "fn_set_header: Status is set by the SDK from the response: not set" in gw.log()


# --- a raw FastCGI client: nginx itself caps bodies (client_max_body_size) ----


def _rec(rtype, content=b"", rid=1):
    return struct.pack(">BBHHBB", 1, rtype, rid, len(content), 0, 0) + content


def _pair(name: bytes, value: bytes) -> bytes:
    def ln(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    return ln(len(name)) + ln(len(value)) + name + value


def fcgi(path, params: dict, body: bytes, timeout=10.0):
    """One request straight to a function's socket; returns (status, body)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(str(path))
    out = _rec(1, struct.pack(">HB5x", 1, 0))  # BEGIN_REQUEST, responder
    out += _rec(4, b"".join(_pair(k.encode(), v.encode()) for k, v in params.items())) + _rec(4)
    if body:
        out += _rec(5, body)
    out += _rec(5)
    s.sendall(out)
    try:
        return _response(s)
    finally:
        s.close()


def _response(s):
    """(status, body) of the response read from S up to END_REQUEST."""
    status, _, payload = _response_head(s)
    return status, payload


def _response_head(s):
    """(status, header block, body) of the response read from S up to
    END_REQUEST."""
    data = b""
    stdout = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        while len(data) >= 8:
            _, rtype, _, clen, plen, _ = struct.unpack(">BBHHBB", data[:8])
            if len(data) < 8 + clen + plen:
                break
            if rtype == 6:
                stdout += data[8:8 + clen]
            data = data[8 + clen + plen:]
            if rtype == 3:
                head, _, payload = stdout.partition(b"\r\n\r\n")
                status = int(head.split(b"\r\n")[0].split()[1])
                return status, head.decode(), payload
    raise AssertionError(f"no END_REQUEST; got {stdout!r}")


def test_content_length_over_2gib_read_in_full(gateway_factory, build):
    gw: Gateway = gateway_factory({"t": build.testfn, "big": build.testfn},
                                  sections={"big": {"max_body": "0"}})
    params = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "3000000000", "QUERY_STRING": "req=1"}
    status, body = fcgi(gw.sock_path("t"), params, b"12345")
    assert status == 413
    assert body == (b'{"error":"request body of 3000000000 bytes exceeds max_body '
                    b'(1048576 bytes)"}')
    # Without a max_body the claim is not allocated up front, and the short
    # body is told with the length in full (2^32 + 5 is not 5).
    status, body = fcgi(gw.sock_path("big"), params, b"12345")
    assert (status, body) == (400, b'{"error":"request body ended after 5 of 3000000000 bytes"}')
    params["CONTENT_LENGTH"] = str(2 ** 32 + 5)
    status, body = fcgi(gw.sock_path("big"), params, b"12345")
    assert (status, body) == (400, b'{"error":"request body ended after 5 of 4294967301 bytes"}')
