"""How an instance ends a FastCGI connection it will not keep (issue 11.1).

An instance sends its whole response before it waits for anything, reads
the request's stdin to its end record, and then closes the connection at
once: a front end that keeps its end open after the response does not
hold the instance.  Only when stdin was not read to its end does it close
the slow way (shut down its side, then read what is left), so that unread
bytes never turn the close into a reset.  About 2 s.
"""

from __future__ import annotations

import socket
import time

import pytest

from test_frontends import _fcgi_head, _fcgi_response
from test_sdk_input import _rec


def _head(path, body=b""):
    """BEGIN_REQUEST without FCGI_KEEP_CONN and the parameters of a request
    to testfn for PATH: test_frontends' head with the flags byte (the
    eleventh: 8 bytes of record header, then the role's two) cleared."""
    head = _fcgi_head(path, body)
    return head[:10] + b"\0" + head[11:]


def _connect(gw):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(str(gw.sock_path("testfn")))
    return s


def _closed_by_instance(s):
    """The instance closed its end for good: EOF, then a write gets EPIPE (a
    socket only shut down for writing would still take the bytes).  The SDK
    shuts its side down, then closes, two system calls: the EOF can arrive
    before the close, and a loaded machine may run the test between them.
    So the writes go on for up to a second, well below the 2 s libfcgi's
    lingering close held the connection."""
    assert s.recv(65536) == b""
    deadline = time.monotonic() + 1.0
    with pytest.raises(BrokenPipeError):
        while time.monotonic() < deadline:
            s.send(b"x")
            time.sleep(0.01)


@pytest.mark.parametrize("body", [b"", b"abc"])
def test_a_finished_connection_is_closed_at_once(gateway_factory, build, body):
    """The front end keeps its end open after the response: the instance has
    closed the connection (EPIPE on a write), and the next request to the
    function (max_instances 1) is served while that first connection is
    still open.  The bug: libfcgi's close shut down the instance's side,
    then waited for the front end to close (up to 2 s) before the instance
    could take another connection."""
    gw = gateway_factory({"testfn": build.testfn}, defaults={"max_instances": 1})
    first = _connect(gw)
    try:
        first.sendall(_head("/first", body) + (_rec(5, body) if body else b"") + _rec(5))
        status, seen = _fcgi_response(first)
        assert (status, seen["path"], seen["body"]) == (200, "/first", body.decode())
        _closed_by_instance(first)
        second = _connect(gw)
        try:
            second.sendall(_head("/second") + _rec(5))
            status, seen = _fcgi_response(second)
            assert (status, seen["path"]) == (200, "/second")
        finally:
            second.close()
    finally:
        first.close()


def test_the_response_goes_out_before_the_end_of_stdin_arrives(gateway_factory, build):
    """A front end that sends the record ending stdin only after it has the
    response (no body, so the handler answered from the parameters) gets
    that response, then the connection closed once the record came."""
    gw = gateway_factory({"testfn": build.testfn})
    s = _connect(gw)
    try:
        s.sendall(_head("/late"))
        status, seen = _fcgi_response(s)
        assert (status, seen["path"]) == (200, "/late")
        s.sendall(_rec(5))
        _closed_by_instance(s)
    finally:
        s.close()


def test_unread_stdin_past_the_drain_still_gets_the_answer(gateway_factory, build):
    """More stdin than the request claimed (no Content-Length, 200 KB, past
    the 64 KiB the instance reads): the answer arrives whole, and the
    connection ends without a reset while the front end still sends."""
    gw = gateway_factory({"testfn": build.testfn})
    s = _connect(gw)
    try:
        junk = b"".join(_rec(5, b"x" * 50000) for _ in range(4))
        s.sendall(_head("/long") + junk + _rec(5))
        status, seen = _fcgi_response(s)
        assert (status, seen["path"], seen["body"]) == (200, "/long", "")
        assert s.recv(65536) == b""
    finally:
        s.close()
