"""The pool keeps functions apart (issue 7), through a real nginx and a real
Postgres: session resets that SQL cannot bypass, a statement_timeout SQL
cannot escape, and the rest of the issue's points as they land.

Every attack runs with pool_size = 1, so attacker and victim share the one
server connection, and builds its SQL inside a DO block, which no keyword
classifier sees.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time

from fngate_harness import wait_for
from test_db import assert_db_error, db_stack, get, sql_arg

COUNT_USERS = "/fn/victim/sql?sql=" + sql_arg("SELECT count(*) AS n FROM users")


def do_block(body):
    return "DO $$BEGIN " + body + " END$$"


def exec_ok(ngx, fn, sql):
    status, body, _ = get(ngx, f"/fn/{fn}/exec?sql=" + sql_arg(sql))
    assert status == 200, f"{fn}: {sql} answered {status} {body}"


def test_do_block_search_path_does_not_reach_another_function(stack, build, users_db):
    users_db.psql("CREATE SCHEMA evil; CREATE TABLE evil.users (id int);"
                  "INSERT INTO evil.users VALUES (1); GRANT USAGE ON SCHEMA evil TO PUBLIC;"
                  "GRANT SELECT ON evil.users TO PUBLIC")
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("attacker", "victim"),
                      gateway={"pool_size": 1})
    wrong = []
    for i in range(20):
        exec_ok(ngx, "attacker", do_block("EXECUTE 'SE'||'T search_path = evil';"))
        # The attacker itself does see its own setting (its session is its own).
        status, body, _ = get(ngx, "/fn/attacker/sql?sql=" + sql_arg("SHOW search_path"))
        assert (status, body) == (200, [{"search_path": "evil"}]), (status, body)
        status, body, _ = get(ngx, COUNT_USERS)
        if (status, body) != (200, [{"n": "1000"}]):
            wrong.append((i, status, body))
    assert not wrong, f"{len(wrong)} of 20 victim answers came from the decoy: {wrong[:3]}"


def test_do_block_temp_table_does_not_shadow_another_functions_table(stack, build, users_db):
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("attacker", "victim"),
                      gateway={"pool_size": 1})
    assert get(ngx, COUNT_USERS)[:2] == (200, [{"n": "1000"}])
    exec_ok(ngx, "attacker", do_block(
        "EXECUTE 'CREATE TEMP TABLE users AS SELECT 1 AS id'; "
        "PERFORM pg_advisory_lock(4242); EXECUTE 'LIST'||'EN fngate_attack';"))
    status, body, _ = get(ngx, "/fn/attacker/sql?sql=" + sql_arg(
        "SELECT count(*) AS attacker_n FROM users"))
    assert (status, body) == (200, [{"attacker_n": "1"}]), "the attacker's own temp table went early"
    status, body, _ = get(ngx, COUNT_USERS)
    assert (status, body) == (200, [{"n": "1000"}]), f"the victim read the temp table: {body}"
    # Nothing else of the attacker's session is left on the shared connection.
    status, body, _ = get(ngx, "/fn/victim/sql?sql=" + sql_arg(
        "SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory') AS locks, "
        "(SELECT count(*) FROM pg_listening_channels()) AS listens, "
        "(SELECT count(*) FROM pg_prepared_statements "
        " WHERE statement LIKE '%attacker' || '_n%') AS foreign_statements"))
    assert (status, body) == (200, [{"locks": "0", "listens": "0", "foreign_statements": "0"}]), \
        body


def test_do_block_cannot_escape_statement_timeout(stack, build, users_db):
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",),
                      gateway={"pool_size": 1}, sections={"dbfn": {"statement_timeout": "300ms"}})
    # Across statements: the setting persists in the session, the limit does not move.
    exec_ok(ngx, "dbfn", do_block("EXECUTE 'SE'||'T statement_timeout = 0';"))
    t0 = time.monotonic()
    status, body, _ = get(ngx, "/fn/dbfn/sleep?s=1.5")
    took = time.monotonic() - t0
    assert_db_error(status, body, 503, "57014")
    assert took < 1.3, f"pg_sleep(1.5) under statement_timeout = 300ms took {took:.2f}s"
    # Within one statement.
    t0 = time.monotonic()
    status, body, _ = get(ngx, "/fn/dbfn/exec?sql=" + sql_arg(do_block(
        "PERFORM set_config('statement_timeout', '0', false); PERFORM pg_sleep(1.5);")))
    took = time.monotonic() - t0
    assert_db_error(status, body, 422, "57014")  # /exec's status for an error
    assert took < 1.3, f"the DO block ran {took:.2f}s under statement_timeout = 300ms"
    # And the function keeps working afterwards.
    wait_for(lambda: get(ngx, "/fn/dbfn/sleep?s=0")[0] == 200, 5.0, interval=0.05,
             what="dbfn to answer again after its timeouts")


def test_statement_timeout_holds_on_the_first_query_after_a_switch(stack, build, users_db):
    """The reset, the function's statement_timeout and its query go to the
    server in one round trip when the session switches functions: the
    timeout is in force for that very query, and gone for the next
    function's, whose own setting is the server's."""
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("slow", "dbfn"),
                      gateway={"pool_size": 1}, sections={"dbfn": {"statement_timeout": "300ms"}})
    for round_ in range(2):
        status, body, _ = get(ngx, "/fn/slow/sleep?s=0.6")
        assert status == 200, f"round {round_}: slow's pg_sleep(0.6) after dbfn's: {status} {body}"
        t0 = time.monotonic()
        status, body, _ = get(ngx, "/fn/dbfn/sleep?s=1.5")
        took = time.monotonic() - t0
        assert_db_error(status, body, 503, "57014")
        assert took < 1.3, f"round {round_}: pg_sleep(1.5) under 300ms took {took:.2f}s"


def test_errors_after_a_switch_leave_the_session_usable(stack, build, users_db):
    """A query that fails on the server, as the first after a switch (in the
    same round trip as the reset), gets its own error, and the session
    serves the next function's query."""
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("fa", "fb"),
                      gateway={"pool_size": 1})
    bad = "/fn/fb/sql?sql=" + sql_arg("SELECT * FROM no_such_table")
    for round_ in range(3):
        status, body, _ = get(ngx, "/fn/fa/count?n=3")
        assert (status, body) == (200, {"rows": 3, "count": 3, "sum": 6}), (round_, status, body)
        status, body, _ = get(ngx, bad)
        assert status == 422 and body["sqlstate"] == "42P01", (round_, status, body)
        assert 'relation "no_such_table" does not exist' in body["error"], body


# --- errors and recovery -----------------------------------------------------------


def test_postgres_down_body_names_no_host_or_port(stack, build, postgres_factory):
    pg = postgres_factory()
    gw, ngx = db_stack(stack, build, pg.dsn(), functions=("users", "dbfn"),
                       gateway={"pool_size": 2})
    assert get(ngx, "/fn/users/2")[0] == 200
    # An error of the function's own SQL reaches the client unchanged ...
    status, body, _ = get(ngx, "/fn/dbfn/sql?sql=" + sql_arg(
        "INSERT INTO users (name, email) SELECT name, email FROM users WHERE id = 2"))
    assert_db_error(status, body, 422, "23505")
    assert "duplicate key" in body["error"] and "detail" in body, body
    pg.stop("fast")
    status, body, r = get(ngx, "/fn/users/2")
    # ... one of the connection class gets a generic message.
    assert (status, body) == (503, {"error": "the database is unavailable", "sqlstate": "08001"}) \
        or (status, body) == (503, {"error": "the database connection was lost",
                                    "sqlstate": "08006"}), (status, r.body)
    for secret in (str(pg.dir), ".s.PGSQL", "port", "socket", "connection to server"):
        assert secret not in r.body.decode(), f"{secret!r} in the HTTP body {r.body!r}"
    status, body, r = get(ngx, "/fn/users/3")
    assert (status, body) == (503, {"error": "the database is unavailable", "sqlstate": "08001"}), \
        r.body
    # The full libpq text is in the gateway log, and no line of it carries
    # the text of an earlier, unrelated error.
    gw.wait_log(lambda ln: "08001" in ln and "connection to server" in ln, timeout=3.0,
                what="the libpq reason in the gateway log")
    stale = [ln for ln in gw.log().splitlines()
             if "duplicate key" in ln and ("lost" in ln or "closed" in ln)]
    assert not stale, f"stale error text in later log lines: {stale}"
    pg.start()
    wait_for(lambda: get(ngx, "/fn/users/2")[0] == 200, 10.0, interval=0.1,
             what="users to answer once Postgres is back")


def test_first_request_after_the_pool_restarts_succeeds(stack, build, users_db):
    gw, ngx = db_stack(stack, build, users_db.dsn(), functions=("users", "dbfn"),
                       defaults={"max_instances": 4})
    # Several warm instances with channels to the pool about to die.
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(8) as ex:
        got = list(ex.map(lambda i: get(ngx, "/fn/dbfn/sleep?s=0.2")[0], range(8)))
    assert got == [200] * 8
    assert get(ngx, "/fn/users/2")[0] == 200
    victim = gw.pool_pid()
    os.kill(victim, signal.SIGKILL)
    gw.wait_log(lambda ln: "pool process" in ln and "started" in ln and str(victim) not in ln
                and ln.split("pool process ")[1].split()[0] != str(victim)
                and "started" in ln.split("pool process ")[1], timeout=5.0,
                what="the new pool's start line")
    # The first requests after that are answered by instances with live
    # channels, not by survivors whose channel died with the old pool.
    answers = [get(ngx, "/fn/dbfn/sleep?s=0")[:2] for _ in range(6)]
    answers += [get(ngx, "/fn/users/2")[:2] for _ in range(3)]
    bad = [a for a in answers if a[0] != 200]
    assert not bad, f"after the pool came back: {bad}"


def test_reaped_instance_loses_its_channel_even_if_a_descendant_holds_it(stack, build, users_db):
    gw, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",),
                       defaults={"idle_timeout": "300ms"})
    assert get(ngx, "/fn/dbfn/sleep?s=0")[0] == 200
    pool = gw.pool_pid()

    def sockets():
        n = 0
        for fd in os.listdir(f"/proc/{pool}/fd"):
            try:
                n += os.readlink(f"/proc/{pool}/fd/{fd}").startswith("socket:")
            except OSError:
                pass
        return n

    wait_for(lambda: gw.instances("dbfn") == [], 5.0, interval=0.05,
             what="dbfn's instance to be idle-reaped")
    base = sockets()  # server connections and the control socket
    status, body, _ = get(ngx, "/fn/dbfn/hold")
    assert status == 200 and body["grandchild"] > 0, body
    grandchild = body["grandchild"]
    try:
        # The supervisor hands the channel to the pool on its own time: the
        # answer can come back before the pool has received it.
        wait_for(lambda: sockets() == base + 1, 3.0, interval=0.02,
                 what="the new instance's channel to reach the pool")
        wait_for(lambda: gw.instances("dbfn") == [], 5.0, interval=0.05,
                 what="dbfn's instance to be idle-reaped")
        wait_for(lambda: sockets() == base, 3.0, interval=0.05,
                 what="the pool to close the reaped instance's channel")
    finally:
        try:
            os.kill(grandchild, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- fair shares -------------------------------------------------------------------


def _victim_delays(ngx, n=5):
    base = []
    for _ in range(n):
        t0 = time.monotonic()
        assert get(ngx, "/fn/victim/sleep?s=0")[0] == 200
        base.append(time.monotonic() - t0)
    return sorted(base)[n // 2]


def test_a_function_holding_its_share_does_not_delay_another(stack, build, users_db):
    """pool_size 2, the hog's max_db_connections 1: six of its pg_sleep(1.5)
    queries wait or run while the victim's queries go through the other
    connection without waiting behind them."""
    from concurrent.futures import ThreadPoolExecutor
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("hog", "victim"),
                      gateway={"pool_size": 2},
                      sections={"hog": {"max_db_connections": "1", "max_instances": "6"}})
    assert get(ngx, "/fn/hog/sleep?s=0")[0] == 200
    base = _victim_delays(ngx)
    with ThreadPoolExecutor(6) as ex:
        hogs = [ex.submit(get, ngx, "/fn/hog/sleep?s=1.5", timeout=30) for _ in range(6)]
        time.sleep(0.5)  # the hog's queries are queued and one runs
        assert users_db.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                             "'%pg_sleep%' AND state = 'active' AND pid <> pg_backend_pid()") \
            == "1", "the hog holds more than its share"
        delays = []
        for _ in range(5):
            t0 = time.monotonic()
            status, body, _ = get(ngx, "/fn/victim/sleep?s=0")
            delays.append(time.monotonic() - t0 - base)
            assert status == 200, body
        statuses = [h.result()[0] for h in hogs]
    assert max(delays) < 0.1, f"the victim's queries were delayed {delays} (baseline {base:.3f}s)"
    # The hog's own queries all ran (one at a time), none was refused.
    assert statuses == [200] * 6 or all(s in (200, 503) for s in statuses), statuses


def test_round_robin_between_functions_on_one_connection(stack, build, users_db):
    """pool_size 1 and no shares: a function with many queries queued does
    not make another's single query wait behind all of them, only behind
    the one running."""
    from concurrent.futures import ThreadPoolExecutor
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("hog", "victim"),
                      gateway={"pool_size": 1, "db_wait_timeout": "20s"},
                      sections={"hog": {"max_instances": "6"}})
    assert get(ngx, "/fn/hog/sleep?s=0")[0] == 200
    assert get(ngx, "/fn/victim/sleep?s=0")[0] == 200
    with ThreadPoolExecutor(6) as ex:
        hogs = [ex.submit(get, ngx, "/fn/hog/sleep?s=0.4", timeout=30) for _ in range(6)]
        time.sleep(0.2)
        t0 = time.monotonic()
        status, body, _ = get(ngx, "/fn/victim/sleep?s=0", timeout=30)
        took = time.monotonic() - t0
        assert status == 200, body
        assert all(h.result()[0] == 200 for h in hogs)
    # FIFO would have been ~2 s (five hog queries ahead); round-robin is at
    # most the one running (0.4 s) plus a reset.
    assert took < 0.9, f"the victim's query waited {took:.2f}s behind the hog's queue"


def _cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_notifications_after_a_whole_read_do_not_wedge_the_session(stack, build, users_db):
    """A session that LISTENs, reads a result whole, then gets 420 KB of
    notifications while idle: the guard of the whole read must not outlive
    it (it would refuse every later read of that socket and spin the pool),
    and the next queries are answered."""
    gw, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",),
                       gateway={"pool_size": 1})
    ok = (200, {"rows": 3, "count": 3, "sum": 6})
    exec_ok(ngx, "dbfn", "LISTEN fngate_flood")
    for _ in range(4):
        assert get(ngx, "/fn/dbfn/count?n=3")[:2] == ok
    assert _pool_counter(ngx, "fngate_pool_whole_reads_total") >= 1
    users_db.psql("SELECT pg_notify('fngate_flood', g || repeat('x', 7000)) "
                  "FROM generate_series(1, 60) AS g")
    pool = gw.pool_pid()
    time.sleep(0.3)
    cpu0 = _cpu_s(pool)
    time.sleep(1.0)
    spent = _cpu_s(pool) - cpu0
    assert spent < 0.3, f"the idle pool used {spent:.2f} s of CPU in 1 s"
    for _ in range(3):
        assert get(ngx, "/fn/dbfn/count?n=3")[:2] == ok


def test_session_resets_are_counted(stack, build, users_db):
    """fngate_pool_session_resets_total counts every DISCARD ALL: on
    pool_size 1, each switch between two functions resets the session, and
    a run of one function's queries resets nothing."""
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("fa", "fb"),
                      gateway={"pool_size": 1})
    ok = (200, {"rows": 3, "count": 3, "sum": 6})
    assert get(ngx, "/fn/fa/count?n=3")[:2] == ok
    before = _pool_counter(ngx, "fngate_pool_session_resets_total")
    for fn in ("fb", "fa") * 5:
        assert get(ngx, f"/fn/{fn}/count?n=3")[:2] == ok
    assert _pool_counter(ngx, "fngate_pool_session_resets_total") - before == 10
    for _ in range(5):
        assert get(ngx, "/fn/fa/count?n=3")[:2] == ok
    assert _pool_counter(ngx, "fngate_pool_session_resets_total") - before == 10


# --- bounded memory ------------------------------------------------------------------


def test_query_frame_over_max_query_closes_only_that_channel(stack, build, users_db):
    gw, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",),
                       gateway={"max_query": "4K"})
    small = "SELECT '" + "x" * 3000 + "' AS x"
    status, body, _ = get(ngx, "/fn/dbfn/sql?sql=" + sql_arg(small))
    assert status == 200 and len(body[0]["x"]) == 3000, (status, body)
    big = "SELECT '" + "x" * 8000 + "' AS x"
    status, body, _ = get(ngx, "/fn/dbfn/sql?sql=" + sql_arg(big))
    assert_db_error(status, body, 422, "08006")
    gw.wait_log(lambda ln: "database channel closed" in ln and "exceeds" in ln, timeout=3.0,
                what="the pool's line about the oversized frame")
    wait_for(lambda: get(ngx, "/fn/dbfn/sql?sql=" + sql_arg(small))[0] == 200, 5.0,
             interval=0.05, what="dbfn to answer again with a new channel")


# --- transactions -----------------------------------------------------------------


def _rows(db, key):
    return db.psql(f"SELECT string_agg(v, ',' ORDER BY v) FROM tx WHERE k = '{key}'")


def _idle_in_tx(db):
    return db.psql("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'")


def test_transactions_commit_or_leave_nothing(stack, build, users_db):
    users_db.psql("CREATE TABLE tx (k text, v text, PRIMARY KEY (k, v));"
                  "GRANT ALL ON tx TO PUBLIC")
    gw, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",),
                       gateway={"pool_size": 2}, defaults={"request_timeout": "2s"})
    status, body, _ = get(ngx, "/fn/dbfn/tx?key=c&mode=commit")
    assert (status, body) == (200, {"committed": True}), body
    assert _rows(users_db, "c") == "a,b"
    for mode in ("rollback", "return", "abort", "conflict", "sleep"):
        status, body, r = get(ngx, f"/fn/dbfn/tx?key={mode}&mode={mode}", timeout=20)
        if mode in ("rollback", "return"):
            assert (status, body) == (200, {"committed": False}), (mode, status, body)
        elif mode == "conflict":
            # The INSERT failed (23505), so COMMIT finds the transaction failed.
            assert_db_error(status, body, 409, "25P02")
        elif mode == "abort":
            assert status == 502, (mode, status, r.body)
        else:
            assert status == 504, (mode, status, r.body)
        wait_for(lambda: _idle_in_tx(users_db) == "0", 5.0, interval=0.05,
                 what=f"no session idle in transaction after mode={mode}")
        assert _rows(users_db, mode) == "", f"mode={mode} left rows: {_rows(users_db, mode)}"
    gw.wait_log(lambda ln: "request ended inside a transaction: rolled back" in ln, timeout=3.0,
                what="the SDK's line for a request that returned inside its transaction")
    gw.wait_log(lambda ln: "[fn dbfn pid" in ln and "rolled back" in ln and "channel" in ln,
                timeout=3.0, what="the pool's line naming the function whose transaction went")
    # Nested fn_begin is FG003, and the function still works afterwards.
    status, body, _ = get(ngx, "/fn/dbfn/tx?key=n&mode=nested")
    assert (status, body) == (400, {"error": "bad database request", "sqlstate": "FG003"}), body
    status, body, _ = get(ngx, "/fn/dbfn/tx?key=c2&mode=commit")
    assert (status, body) == (200, {"committed": True}), body
    assert _idle_in_tx(users_db) == "0"


def _query_frame(sql):
    body = b"Q" + len(sql).to_bytes(4, "big") + sql.encode()
    return (len(body).to_bytes(4, "big") + body).hex()


def _rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def _is_asan(pid):
    with open(f"/proc/{pid}/exe", "rb") as f:
        return b"__asan_init" in f.read()


def _peak_rss_while(pid, get_args, **kw):
    """Runs get(*GET_ARGS) on a thread, sampling PID's RSS every 10 ms:
    (its answer, the peak RSS in kB, seconds taken)."""
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", get(*get_args, **kw)), daemon=True)
    peak = _rss_kb(pid)
    t0 = time.monotonic()
    t.start()
    while t.is_alive():
        peak = max(peak, _rss_kb(pid))
        time.sleep(0.01)
    t.join()
    return box["r"], peak, time.monotonic() - t0


def test_unread_answers_do_not_grow_the_pool(stack, build, users_db):
    """25 instances each ask for a 4 MB answer and never read it: the pool
    keeps at most pool_size x max_result of unread output (closing the
    channels with the most), so its RSS stays bounded."""
    from concurrent.futures import ThreadPoolExecutor
    gw, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",),
                       gateway={"pool_size": 2, "max_result": "5M"},
                       sections={"dbfn": {"max_instances": "25"}})
    assert get(ngx, "/fn/dbfn/sleep?s=0")[0] == 200
    pool = gw.pool_pid()
    base = _rss_kb(pool)
    hexq = _query_frame("SELECT repeat('x', 4000000) AS x")
    peak = base
    with ThreadPoolExecutor(25) as ex:
        futs = [ex.submit(get, ngx, f"/fn/dbfn/noread?s=4&hex={hexq}", timeout=30)
                for _ in range(25)]
        t_end = time.monotonic() + 4.5
        while time.monotonic() < t_end:
            peak = max(peak, _rss_kb(pool))
            time.sleep(0.05)
        statuses = [f.result()[0] for f in futs]
    assert statuses == [200] * 25, statuses
    closed = [ln for ln in gw.log().splitlines() if "answers went unread" in ln]
    assert closed, "no channel was closed for leaving its answers unread"
    # pool_size x max_result of unread output, plus per busy connection a
    # libpq result and its JSON (4 MB each), plus a few MB.
    bound = base + (2 * 5 * 1024 + 2 * 2 * 4 * 1024 + 8 * 1024)
    print(f"\npool RSS {base} kB at start, {peak} kB at peak (bound {bound} kB); "
          f"{len(closed)} channels closed for unread answers")
    if _is_asan(pool):
        # ASan keeps freed memory in quarantine (256 MB by default): RSS
        # says nothing about the pool's own bound there.
        print("RSS bound not checked under ASan (its quarantine holds freed memory)")
    else:
        assert peak < bound, f"pool RSS reached {peak} kB (started at {base} kB, bound {bound} kB)"
    # An instance whose channel was closed fails its next query (08006) and
    # is replaced after that request; the function recovers by itself.
    wait_for(lambda: get(ngx, "/fn/dbfn/sleep?s=0")[0] == 200, 15.0, interval=0.05,
             what="dbfn to answer again once the instances that lost their channel are replaced")


# --- per-function database roles ---------------------------------------------------


def test_per_function_database_url_logs_in_as_its_role(stack, build, users_db):
    users_db.psql("CREATE ROLE fn_reader LOGIN; GRANT SELECT ON users TO fn_reader;"
                  "CREATE TABLE secret (x int); REVOKE ALL ON secret FROM PUBLIC")
    role_dsn = users_db.dsn().replace("user=postgres", "user=fn_reader")
    assert role_dsn != users_db.dsn()
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("reader", "dbfn"),
                      gateway={"pool_size": 2},
                      sections={"reader": {"database_url": role_dsn}})
    who = "/sql?sql=" + sql_arg("SELECT current_user AS u")
    for _ in range(3):
        assert get(ngx, "/fn/reader" + who)[:2] == (200, [{"u": "fn_reader"}])
        assert get(ngx, "/fn/dbfn" + who)[:2] == (200, [{"u": "postgres"}])
    assert get(ngx, COUNT_USERS.replace("victim", "reader"))[:2] == (200, [{"n": "1000"}])
    # The table-level GRANT is a real boundary now.
    status, body, _ = get(ngx, "/fn/reader/sql?sql=" + sql_arg("SELECT x FROM secret"))
    assert_db_error(status, body, 422, "42501")
    status, body, _ = get(ngx, "/fn/dbfn/sql?sql=" + sql_arg("SELECT count(*) AS n FROM secret"))
    assert (status, body) == (200, [{"n": "0"}]), body
    conns = users_db.psql(
        "SELECT string_agg(usename, ',' ORDER BY usename) FROM pg_stat_activity "
        f"WHERE datname = '{users_db.name}' AND backend_type = 'client backend' "
        "AND pid <> pg_backend_pid()")
    names = conns.split(",") if conns else []
    assert "fn_reader" in names, f"no fn_reader backend: {names}"
    assert len(names) <= 2, f"more than pool_size = 2 backends from fngate: {names}"


def test_huge_result_fails_fg002_while_reading(stack, build, users_db):
    """A 100 MB result with max_result = 4M: the pool reads it a row at a
    time, answers FG002 once the rendered rows pass max_result and drops
    the rest, so its RSS stays near pool_size x max_result (libpq used to
    buffer the whole 100 MB first); the connection stays usable."""
    gw, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",),
                       gateway={"pool_size": 2, "max_result": "4M"})
    assert get(ngx, "/fn/dbfn/count?n=3")[:2] == (200, {"rows": 3, "count": 3, "sum": 6})
    pool = gw.pool_pid()
    base = _rss_kb(pool)
    sql = "SELECT repeat('x', 1000000) AS x FROM generate_series(1, 100)"
    (status, body, _), peak, elapsed = _peak_rss_while(
        pool, (ngx, "/fn/dbfn/sql?sql=" + sql_arg(sql)), timeout=60)
    assert (status, body) == (422, {"error": "the result is too large", "sqlstate": "FG002"}), body
    # pool_size x max_result, plus libpq's buffer for a 1 MB row, plus a few MB.
    bound = base + 2 * 4 * 1024 + 8 * 1024
    print(f"\npool RSS {base} kB at start, {peak} kB at peak (bound {bound} kB); "
          f"FG002 after {elapsed:.2f} s")
    if _is_asan(pool):
        print("RSS bound not checked under ASan (its quarantine holds freed memory)")
    else:
        assert peak < bound, f"pool RSS reached {peak} kB (started at {base} kB, bound {bound} kB)"
    # The same connections serve the next queries: nothing was left unread.
    assert get(ngx, "/fn/dbfn/count?n=3")[:2] == (200, {"rows": 3, "count": 3, "sum": 6})
    status, rows, r = get(ngx, "/fn/dbfn/sql?sql=" + sql_arg("SELECT 1 AS a WHERE false"))
    assert (status, rows) == (200, []), r
    assert "database channel closed" not in gw.log()


def _pool_counter(ngx, name):
    text = ngx.get("/_fngate/metrics").body.decode()
    m = re.search(rf"^{name} (\d+)$", text, re.M)
    assert m, f"no {name} in /_fngate/metrics"
    return int(m.group(1))


def test_small_statement_turning_huge_is_cut_off_while_read_whole(stack, build, users_db):
    """A statement whose results have stayed small is read whole (without
    libpq's single-row mode, which costs a PGresult per row).  When the same
    statement suddenly returns 100 MB, the guard on the bytes read from the
    socket closes that session at 256 KB: the pool's RSS
    stays bounded, the query gets FG002, and the statement is read row by
    row from then on, so the next queries work and a huge one again fails
    FG002 without another cut-off."""
    gw, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",),
                       gateway={"pool_size": 1, "max_result": "4M"})
    for _ in range(6):
        assert get(ngx, "/fn/dbfn/count?n=3")[:2] == (200, {"rows": 3, "count": 3, "sum": 6})
    assert _pool_counter(ngx, "fngate_pool_whole_reads_total") >= 3, \
        "the small statement was never read whole"
    pool = gw.pool_pid()
    base = _rss_kb(pool)
    # The same statement (BIG_SQL in dbfn.c): 1.5 million rows, about 100 MB.
    (status, body, _), peak, _ = _peak_rss_while(pool, (ngx, "/fn/dbfn/big?n=1500000"),
                                                 timeout=60)
    assert (status, body) == (503, {"error": "the result is too large", "sqlstate": "FG002"}), body
    # pool_size x max_result, plus a few MB (the whole read held at most
    # about 4 x 256 KB of PGresult).
    bound = base + 1 * 4 * 1024 + 8 * 1024
    print(f"\npool RSS {base} kB at start, {peak} kB at peak (bound {bound} kB)")
    if _is_asan(pool):
        print("RSS bound not checked under ASan (its quarantine holds freed memory)")
    else:
        assert peak < bound, f"pool RSS reached {peak} kB (started at {base} kB, bound {bound} kB)"
    cut = [ln for ln in gw.log().splitlines() if "while read whole" in ln]
    assert len(cut) == 1 and "passed 262144 bytes" in cut[0] and "connection 0 closed" in cut[0], \
        cut
    assert _pool_counter(ngx, "fngate_pool_whole_cutoffs_total") == 1
    # A new session serves the next queries, the same statement included.
    reads = _pool_counter(ngx, "fngate_pool_whole_reads_total")
    for _ in range(4):
        assert get(ngx, "/fn/dbfn/count?n=3")[:2] == (200, {"rows": 3, "count": 3, "sum": 6})
    assert get(ngx, "/fn/dbfn/sql?sql=" + sql_arg("SELECT 1 AS a"))[:2] == (200, [{"a": 1}])
    # ... row by row now: the huge result fails in single-row mode, no cut-off.
    assert _pool_counter(ngx, "fngate_pool_whole_reads_total") == reads
    status, body, _ = get(ngx, "/fn/dbfn/big?n=1500000", timeout=60)
    assert (status, body) == (503, {"error": "the result is too large", "sqlstate": "FG002"}), body
    assert _pool_counter(ngx, "fngate_pool_whole_cutoffs_total") == 1
    assert get(ngx, "/fn/dbfn/count?n=3")[:2] == (200, {"rows": 3, "count": 3, "sum": 6})


def test_one_row_larger_than_max_result_is_not_buffered_whole(stack, build, users_db):
    """A hostile function asks for one 200 MB row with max_result = 4M.
    Single-row mode cannot help with one row: libpq buffers a DataRow
    message whole (and copies it into a PGresult), so the pool used to take
    400 MB for it.  The byte guard cuts the session off once a row passes
    max_result: FG002, the pool's RSS near its bound, the next query fine."""
    gw, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",),
                       gateway={"pool_size": 1, "max_result": "4M"})
    assert get(ngx, "/fn/dbfn/count?n=3")[:2] == (200, {"rows": 3, "count": 3, "sum": 6})
    pool = gw.pool_pid()
    base = _rss_kb(pool)
    sql = "SELECT repeat('x', 200000000) AS x"
    (status, body, _), peak, elapsed = _peak_rss_while(
        pool, (ngx, "/fn/dbfn/sql?sql=" + sql_arg(sql)), timeout=60)
    bound = base + 1 * 4 * 1024 + 8 * 1024
    print(f"\npool RSS {base} kB at start, {peak} kB at peak (bound {bound} kB); "
          f"{status} after {elapsed:.2f} s")
    assert status in (422, 503) and body.get("sqlstate") == "FG002", (status, body)
    if _is_asan(pool):
        print("RSS bound not checked under ASan (its quarantine holds freed memory)")
    else:
        assert peak < bound, f"pool RSS reached {peak} kB (started at {base} kB, bound {bound} kB)"
    assert get(ngx, "/fn/dbfn/count?n=3")[:2] == (200, {"rows": 3, "count": 3, "sum": 6})


def test_notices_do_not_reach_the_gateway_log(stack, build, users_db):
    """A function's RAISE NOTICE used to go to the pool's stderr, which is
    the gateway's log: 20,000 notices wrote 20 MB there in 0.07 s, and a
    notice with a newline forged a line of the gateway's own.  The pool
    drops them (fn_query never hands notices to the function either)."""
    gw, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",),
                       gateway={"pool_size": 1})
    assert get(ngx, "/fn/dbfn/count?n=3")[:2] == (200, {"rows": 3, "count": 3, "sum": 6})
    before = os.path.getsize(gw.log_path)
    forged = "E'x\\n2026-12-02T00:00:00.000Z warn  fngate: FORGED by a function'"
    sql = ("DO $$BEGIN RAISE WARNING " + forged.replace("$", "") + "; "
           "FOR i IN 1..20000 LOOP RAISE NOTICE '%', repeat('n', 1000); END LOOP; END$$")
    status, body, _ = get(ngx, "/fn/dbfn/exec?sql=" + sql_arg(sql), timeout=60)
    assert (status, body) == (200, {"tag": "DO", "count": 0}), body
    grew = os.path.getsize(gw.log_path) - before
    print(f"\nthe gateway's log grew {grew} bytes")
    forged_lines = [ln for ln in gw.log().splitlines() if "FORGED" in ln]
    assert forged_lines == [], forged_lines[:2]
    assert grew < 16384, f"the gateway's log grew {grew} bytes"
    assert get(ngx, "/fn/dbfn/count?n=3")[:2] == (200, {"rows": 3, "count": 3, "sum": 6})
