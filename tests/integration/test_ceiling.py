"""The operator's [limits] are ceilings a function's own function.conf cannot
exceed (issue 6.6).  A function.conf asking more is refused for that
function only, naming its file and line, and the function answers 503 with
that reason; the others serve, capped to the limits.  About 3 s.
"""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def test_function_conf_over_a_limit_disables_only_that_function(gateway_factory, nginx_factory,
                                                                 build):
    gw = gateway_factory({"capped": build.testfn, "greedy": build.testfn,
                          "untimed": build.testfn, "unsandboxed": build.testfn,
                          "reader": build.testfn, "shared": build.testfn},
                         sections={"limits": {"max_instances": 2, "request_timeout": "5s",
                                              "sandbox": "on", "sandbox_read": "/usr/share"}},
                         start=False)
    (gw.functions_dir / "greedy" / "function.conf").write_text("# ours\nmax_instances = 50\n")
    (gw.functions_dir / "untimed" / "function.conf").write_text("request_timeout = 0\n")
    (gw.functions_dir / "unsandboxed" / "function.conf").write_text("sandbox = off\n")
    (gw.functions_dir / "reader" / "function.conf").write_text("sandbox_read = /usr/share/doc /etc\n")
    # Within the limit: allowed.
    (gw.functions_dir / "shared" / "function.conf").write_text("sandbox_read = /usr/share/doc\n")
    gw.start()
    ngx = nginx_factory(gw.socket_dir)
    where = f"in [limits], {gw.conf_path}:"
    reasons = {
        "greedy": f"{gw.functions_dir}/greedy/function.conf:2: max_instances = 50 is more than "
                  f"the operator allows (max_instances = 2 "
                  f"{where}{gw.conf_line('max_instances', 'limits')})",
        "untimed": f"{gw.functions_dir}/untimed/function.conf:1: request_timeout = 0 (none) is "
                   f"more than the operator allows (request_timeout = 5s "
                   f"{where}{gw.conf_line('request_timeout', 'limits')})",
        "unsandboxed": f"{gw.functions_dir}/unsandboxed/function.conf:1: sandbox = off is more "
                       f"than the operator allows (sandbox = on "
                       f"{where}{gw.conf_line('sandbox', 'limits')})",
        "reader": f"{gw.functions_dir}/reader/function.conf:1: sandbox_read = /etc is more than "
                  f"the operator allows (sandbox_read = /usr/share "
                  f"{where}{gw.conf_line('sandbox_read', 'limits')})",
    }
    for name, reason in reasons.items():
        r = ngx.get(f"/fn/{name}")
        assert (r.status, r.json()) == (503, {"error": f"function {name} is disabled: {reason}"})
        assert gw.instances(name) == []
        gw.wait_log(lambda ln, n=name: ln.endswith(f"[fn {n}] disabled, answering 503 until "
                                                     f"fixed: {reasons[n]}"))

    assert ngx.get("/fn/shared").status == 200

    # The function without a function.conf serves, capped by the limits: the
    # built-in 8 instances come down to 2.
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], len(gw.instances("capped")))
            time.sleep(0.005)

    t = threading.Thread(target=sample)
    t.start()
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda _: ngx.get("/fn/capped?sleep=300", timeout=20).status,
                                 range(6)))
    stop.set()
    t.join()
    assert statuses == [200] * 6
    assert peak[0] == 2, f"{peak[0]} instances with max_instances limited to 2"

    # `fngate check` says the same, and fails.
    r = subprocess.run([str(gw.build.fngate), "check", "-c", str(gw.conf_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    for reason in reasons.values():
        assert reason in r.stdout + r.stderr, r.stdout + r.stderr
