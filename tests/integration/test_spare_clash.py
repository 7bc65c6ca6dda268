"""A function's own names are its own however it starts (sdk5): a function
defining a global named like an SDK internal (clashfn.c defines
fn_uri_decode_path) gets its own definition from an exec'd handler, whose
SDK internals are local symbols of the export archive, and must get the same
from a spare-born instance, where fngate-spare's dynamic symbol table comes
first in the lookup of every name handler.so calls.  Once fngate-spare
exported all 107 fn_ names of the SDK, so the spare-born instance ran the
SDK's decoder instead ("A").

Every wait is bounded; no timing is asserted.
"""

from __future__ import annotations

import os

from fngate_harness import wait_for

OWN = b'{"fn_uri_decode_path":"clashfn\'s own"}'


def clash_build(build):
    exe = build.dir / "tests/integration/clashfn"
    so = build.dir / "tests/integration/clashfn.so"
    for p in (exe, so):
        if not p.is_file():
            raise AssertionError(f"{p} is not built: run make check")
    return exe, so


def test_an_sdk_internal_name_is_the_functions_own_exec_and_spare_born(stack, build):
    exe, so = clash_build(build)
    gw, ngx = stack({"clash": exe, "clashso": exe}, shared_objects={"clashso": so})
    wait_for(lambda: len(gw.spares()) == 1, 5, what="one spare process")
    spare = gw.spares()[0]

    r = ngx.get("/fn/clash")
    assert (r.status, r.body) == (200, OWN), r
    inst = gw.instances("clash")
    assert len(inst) == 1 and inst[0] != spare
    assert os.path.realpath(f"/proc/{inst[0]}/exe") == os.path.realpath(gw.handler_path("clash"))

    r = ngx.get("/fn/clashso")
    assert (r.status, r.body) == (200, OWN), r
    assert gw.instances("clashso") == [spare], "the spare did not become the instance"
    assert os.path.basename(os.path.realpath(f"/proc/{spare}/exe")) == "fngate-spare"
