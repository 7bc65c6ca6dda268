"""The database path (issue 3) through a real nginx and a real Postgres.

fn_query, the pool process, the users example and the failure modes: every
test runs its own fngate against a throwaway Postgres (a fresh copy of the
users seed from the `users_db` fixture, or a cluster of its own from
`postgres_factory` when the test stops or restarts the server).  tests/
integration/dbfn.c is the function most tests call.  Every wait is bounded.
"""

from __future__ import annotations

import collections
import datetime
import json
import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from fngate_harness import wait_for
from pg_harness import PsqlWatch


def strict_json(body):
    """json.loads that refuses what JSON does not have (NaN, Infinity) as
    well as control characters inside strings."""
    def no_constant(name):
        raise ValueError(f"not JSON: bare {name}")
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    return json.loads(body, parse_constant=no_constant)


def call(ngx, method, path, body=None, timeout=15.0):
    """(status, parsed JSON body or None, Response); a connection error is
    status -1 so load loops can count it."""
    try:
        if method == "GET":
            r = ngx.get(path, timeout=timeout)
        else:
            r = ngx.request(method, path, body=body,
                            headers={"Content-Type": "application/json"}, timeout=timeout)
    except OSError as e:
        return -1, {"exception": repr(e)}, None
    try:
        return r.status, strict_json(r.body), r
    except ValueError:
        return r.status, None, r


def get(ngx, path, **kw):
    return call(ngx, "GET", path, **kw)


def post(ngx, path, obj, **kw):
    body = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
    return call(ngx, "POST", path, body=body.encode() if isinstance(body, str) else body, **kw)


def sql_arg(sql):
    return quote(sql, safe="")


def db_stack(stack, build, dsn, functions=("users", "dbfn"), gateway=None, **kwargs):
    """fngate + nginx with DSN as database_url and FUNCTIONS staged (users is
    the example's handler, anything else is dbfn)."""
    fns = {n: build.handler("users") if n == "users" else build.dbfn for n in functions}
    gw_keys = {"database_url": dsn}
    gw_keys.update(gateway or {})
    return stack(fns, gateway=gw_keys, **kwargs)


def assert_db_error(status, body, want_status, sqlstate=None):
    assert status == want_status, f"expected {want_status}, got {status} {body}"
    assert isinstance(body, dict) and body.get("error"), f"no JSON error body: {body}"
    assert len(body.get("sqlstate", "")) == 5, f"no SQLSTATE in {body}"
    if sqlstate:
        assert body["sqlstate"] == sqlstate, f"SQLSTATE {body['sqlstate']} not {sqlstate}: {body}"


def wait_sleeping(db, timeout=5.0):
    """Waits until a pg_sleep query of a function runs on DB's server."""
    sql = ("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
           "AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()")
    wait_for(lambda: db.psql(sql) == "1", timeout, interval=0.05,
             what="a function's pg_sleep query to be running")


USER_KEYS = ["id", "name", "email", "active", "created_at"]


def seed_user(i):
    """Row I of functions/users/schema.sql as the pool renders it (UTC)."""
    created = datetime.datetime(2026, 1, 1) + datetime.timedelta(hours=i)
    return {"id": i, "name": f"User {i}", "email": f"user{i}@example.com", "active": i % 2 == 0,
            "created_at": created.strftime("%Y-%m-%d %H:%M:%S+00")}


# --- the users example -------------------------------------------------------


def test_users_list_is_the_500_active_users(stack, build, users_db):
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("users",))
    status, body, r = get(ngx, "/fn/users")
    assert status == 200, r
    assert r.headers["content-type"].startswith("application/json")
    assert isinstance(body, list) and len(body) == 500, f"{len(body)} users"
    for row in body:
        assert list(row) == USER_KEYS, f"columns {list(row)}"
    assert [u["id"] for u in body] == list(range(2, 1001, 2))
    assert all(u["active"] is True for u in body)
    assert body[0] == seed_user(2)
    assert body[-1] == seed_user(1000)
    assert users_db.psql("SELECT count(*) FROM users WHERE active") == "500"


def test_users_get_by_id(stack, build, users_db):
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("users",))
    status, body, r = get(ngx, "/fn/users/2")
    assert (status, body) == (200, seed_user(2)), r
    assert list(body) == USER_KEYS
    # users.c looks a user up by id whatever its active flag.
    assert get(ngx, "/fn/users/3")[:2] == (200, seed_user(3))
    for missing in ("/fn/users/999999", "/fn/users/0", "/fn/users/abc", "/fn/users/2x",
                    "/fn/users/99999999999"):
        status, body, r = get(ngx, missing)
        assert status == 404, f"{missing}: {r}"
        assert r.headers["content-type"].startswith("application/json"), missing
        assert "error" in body, f"{missing}: {body}"


def test_users_create(stack, build, users_db):
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("users",))
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    status, body, r = post(ngx, "/fn/users", {"name": "Ada Lovelace", "email": email})
    assert status == 201, r
    assert list(body) == USER_KEYS
    assert body["id"] == 1001 and body["name"] == "Ada Lovelace" and body["email"] == email
    assert body["active"] is True and body["created_at"] == "2026-01-01 00:00:00+00"
    assert get(ngx, f"/fn/users/{body['id']}")[:2] == (200, body)
    assert users_db.psql(f"SELECT name FROM users WHERE email = '{email}'") == "Ada Lovelace"

    status, dup, r = post(ngx, "/fn/users", {"name": "Someone else", "email": email})
    assert status == 409, f"duplicate email: {r}"
    assert "error" in dup
    status, dup, r = post(ngx, "/fn/users", {"name": "Seed clash", "email": "user7@example.com"})
    assert status == 409, f"seed email: {r}"

    bad_bodies = [
        {"email": "a@example.com"},                       # no name
        {"name": "No Email"},                             # no email
        {"name": 42, "email": "b@example.com"},           # name not a string
        {"name": "", "email": "c@example.com"},           # empty name
        {"name": "Bad", "email": 7},                      # email not a string
        {"name": "Bad", "email": "no-at-sign"},           # not an email
        ["Ada", "ada@example.com"],                       # not an object
    ]
    for bad in bad_bodies:
        status, body, r = post(ngx, "/fn/users", bad)
        assert status == 400, f"{bad}: {r}"
        assert "error" in body, f"{bad}: {body}"
    status, body, r = post(ngx, "/fn/users", b'{"name": "x", "email": ')
    assert status == 400, f"invalid JSON: {r}"
    assert "invalid JSON" in body["error"], body
    status, _, r = call(ngx, "DELETE", "/fn/users/2")
    assert status == 405, r
    assert users_db.psql("SELECT count(*) FROM users") == "1001", "a rejected POST inserted"


# --- fn_query: parameters, types, errors ------------------------------------

PARAMS_KEYS = ["s", "i", "r", "b", "n", "j"]


def test_parameters_of_every_type(stack, build, users_db):
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",))
    text = "héllo 'quoted' \"dq\" \\ ; -- 😀"
    j = {"k": [1, "two", None, {"deep": True}], "e": ""}
    q = (f"s={quote(text)}&i=9007199254740993&r=-2.5e-3&b=true"
         f"&j={quote(json.dumps(j))}")
    status, row, r = get(ngx, f"/fn/dbfn/params?{q}")
    assert status == 200, r
    assert list(row) == PARAMS_KEYS
    # int8 comes back as a string: no precision lost past 2^53.
    assert row == {"s": text, "i": "9007199254740993", "r": -0.0025, "b": True, "n": None,
                   "j": j}, row

    status, row, r = get(ngx, "/fn/dbfn/params?s=&i=-9223372036854775808&r=0&b=false&j=[]")
    assert status == 200, r
    assert row == {"s": "", "i": "-9223372036854775808", "r": 0, "b": False, "n": None,
                   "j": []}, row

    # The same six through fn_query_json, from a JSON array body.
    status, row, r = post(ngx, "/fn/dbfn/params", [text, 42, 1.25, False, None, j])
    assert status == 200, r
    assert row == {"s": text, "i": "42", "r": 1.25, "b": False, "n": None, "j": j}, row
    status, row, r = post(ngx, "/fn/dbfn/params", [None, None, None, None, None, None])
    assert status == 200, r
    assert row == dict.fromkeys(PARAMS_KEYS), row

    # Wrong types and counts are the database's errors, returned as data.
    status, body, _ = post(ngx, "/fn/dbfn/params", ["s", "not a number", 1.0, True, None, {}])
    assert_db_error(status, body, 503, "22P02")
    status, body, _ = post(ngx, "/fn/dbfn/params", ["only one"])
    assert_db_error(status, body, 503)
    status, body, _ = post(ngx, "/fn/dbfn/params", {"not": "an array"})
    assert_db_error(status, body, 503, "FG003")
    # ...and the function still works afterwards.
    assert post(ngx, "/fn/dbfn/params", ["ok", 1, 1.0, True, None, {}])[0] == 200


TYPES_EXPECTED = {
    "i2": 32767,
    "i4": -2147483648,
    "i8": "9223372036854775807",
    "num": "12345678901234567890.000000000001",
    "num_nan": "NaN",
    "f4": 1.5,
    "f8": 0.1,
    "nan": "NaN",
    "inf": "Infinity",
    "ninf": "-Infinity",
    "t": True,
    "f": False,
    "js": {"a": [1, 2.5, "x"], "b": None},
    "jb": {"a": [1], "b": None},
    "ai": [1, None, 3],
    "a2": [[1, 2], [3, 4]],
    "a8": ["1", "9223372036854775807"],
    "at": ["a,b", 'c"d', None, "NULL"],
    "ab": [True, False],
    "an": ["1.50"],
    "af": ["NaN", "Infinity", 2.5],
    "aj": [{"k": 1}, []],
    "empty": [],
    "null_int": None,
    "null_text": None,
    "null_json": None,
    "txt": 'quote" backslash\\ tab\t nl\n \u00e9 \U0001F600 ctl\x01',
    "ts": "2026-01-02 03:04:05.5+00",
    "d": "2026-01-02",
    "id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "iv": "1 day 02:00:00",
    "bin": "\\x0102ff",
}


def test_type_mapping(stack, build, users_db):
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",))
    r = ngx.get("/fn/dbfn/types")
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("application/json")
    rows = strict_json(r.body)  # NaN/Infinity must be strings, controls escaped
    assert isinstance(rows, list) and len(rows) == 1, rows
    row = rows[0]
    assert list(row) == list(TYPES_EXPECTED), f"column order: {list(row)}"
    wrong = {k: (row[k], v) for k, v in TYPES_EXPECTED.items()
             if row[k] != v or type(row[k]) is not type(v)}
    assert not wrong, "(got, expected) per column: " + repr(wrong)
    # Types as the JSON text says them, not only as Python reads them back.
    text = r.body.decode()
    for frag in ('"i2":32767', '"i8":"9223372036854775807"', '"t":true', '"null_int":null',
                 '"nan":"NaN"', '"empty":[]'):
        assert frag in text.replace(" ", ""), f"{frag} not in {text[:400]}"


def test_copy_is_refused_and_does_not_wedge_the_pool(stack, build, users_db):
    """COPY puts a libpq connection in a state PQgetResult never leaves; the
    pool used to spin on it at 100% CPU with every function's queries stuck
    (found in review).  It must answer FG003 and keep serving."""
    gw, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",), gateway={"pool_size": 1})
    for sql in ("COPY (SELECT 1) TO STDOUT", "/* c */ copy users FROM STDIN"):
        status, body, r = get(ngx, "/fn/dbfn/sql?sql=" + sql_arg(sql), timeout=10)
        assert_db_error(status, body, 422, "FG003")
        # The HTTP client gets a generic message; the reason is in the log.
        assert body["error"] == "bad database request", body
    gw.wait_log(lambda ln: "FG003: COPY is not supported through fn_query" in ln, timeout=3.0,
                what="the COPY refusal in the gateway log")
    status, body, _ = get(ngx, "/fn/dbfn/sql?sql=" + sql_arg("SELECT 1 AS one"), timeout=10)
    assert (status, body) == (200, [{"one": 1}])


def test_sql_error_gives_the_function_its_sqlstate(stack, build, users_db):
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",))
    status, body, r = get(ngx, "/fn/dbfn/sql?sql=" + sql_arg("SELECT * FROM no_such_table"))
    assert_db_error(status, body, 422, "42P01")
    assert "no_such_table" in body["error"], body
    assert r.headers["content-type"].startswith("application/json")
    # The status is the function's choice.
    status, body, _ = get(ngx, "/fn/dbfn/sql?status=409&sql=" + sql_arg("SELECT 1/0"))
    assert_db_error(status, body, 409, "22012")
    status, body, _ = get(ngx, "/fn/dbfn/sql?sql=" + sql_arg("SELEC 1"))
    assert_db_error(status, body, 422, "42601")
    # Detail and hint reach the function too.
    status, body, _ = get(ngx, "/fn/dbfn/sql?sql=" + sql_arg(
        "INSERT INTO users (name, email) VALUES ('x', 'user4@example.com')"))
    assert_db_error(status, body, 422, "23505")
    assert "user4@example.com" in body.get("detail", ""), body
    status, body, _ = get(ngx, "/fn/dbfn/sql?sql=" + sql_arg("SELECT nme FROM users"))
    assert_db_error(status, body, 422, "42703")
    assert "name" in body.get("hint", ""), body
    # An error leaves nothing behind: the next queries work.
    for _ in range(3):
        status, body, r = get(ngx, "/fn/dbfn/sql?sql=" + sql_arg("SELECT 1 AS one"))
        assert (status, body) == (200, [{"one": 1}]), r


def test_exec_gives_tag_and_count(stack, build, users_db):
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",))

    def ex(sql):
        status, body, r = get(ngx, "/fn/dbfn/exec?sql=" + sql_arg(sql))
        assert status == 200, f"{sql}: {r}"
        return body

    assert ex("UPDATE users SET active = NOT active WHERE id <= 10") == \
        {"tag": "UPDATE 10", "count": 10}
    assert ex("INSERT INTO users (name, email) VALUES ('e', 'exec@example.com')") == \
        {"tag": "INSERT 0 1", "count": 1}
    assert ex("DELETE FROM users WHERE id < 0") == {"tag": "DELETE 0", "count": 0}
    assert ex("SELECT * FROM users WHERE id <= 3") == {"tag": "SELECT 3", "count": 3}
    assert ex("CREATE TABLE exec_probe (x int)")["tag"] == "CREATE TABLE"
    # Each query is its own transaction: committed, visible elsewhere (5 of
    # the first 10 flipped each way, and the new user is active).
    assert users_db.psql("SELECT count(*) FROM users WHERE active") == "501"
    assert users_db.psql("SELECT active FROM users WHERE id = 1") == "t"
    assert users_db.psql("SELECT to_regclass('exec_probe') IS NOT NULL") == "t"


def test_fn_rows_json_and_large_results(stack, build, users_db):
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",))
    status, body, r = get(ngx, "/fn/dbfn/count?n=1000")
    assert (status, body) == (200, {"rows": 1000, "count": 1000, "sum": 500500}), r
    # 20,000 rows (about 1.3 MB) under the default max_result of 16M.
    status, rows, r = get(ngx, "/fn/dbfn/big?n=20000")
    assert status == 200, r
    assert len(rows) == 20000 and rows[-1] == {"g": 20000, "pad": "x" * 50}


def test_connection_left_in_a_transaction_is_not_reused(stack, build, users_db):
    """A statement that leaves its server connection inside a transaction
    (here a bare BEGIN) must not leak into the next query on that connection:
    with pool_size=1 the CREATE TABLE would otherwise never commit."""
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",),
                      gateway={"pool_size": 1})
    get(ngx, "/fn/dbfn/exec?sql=BEGIN")  # whatever it answers
    status, body, r = get(ngx, "/fn/dbfn/exec?sql=" + sql_arg("CREATE TABLE tx_probe (x int)"))
    assert status == 200, r
    assert users_db.psql("SELECT to_regclass('tx_probe') IS NOT NULL") == "t", \
        "CREATE TABLE ran inside the transaction BEGIN left open"


def test_no_database_configured_is_fg004(stack, build):
    _, ngx = stack({"dbfn": build.dbfn})
    status, body, _ = get(ngx, "/fn/dbfn/sleep?s=0")
    assert_db_error(status, body, 503, "FG004")


# --- the pool under load -------------------------------------------------------

ACTIVITY_SQL = """
SELECT count(*) FILTER (WHERE application_name = 'fngate'),
       count(*) FILTER (WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())
FROM pg_stat_activity
"""


def test_64_concurrent_requests_on_pool_size_4(stack, build, users_db):
    gw, ngx = db_stack(stack, build, users_db.dsn(application_name="fngate"),
                       functions=("dbfn", "users"), gateway={"pool_size": 4},
                       defaults={"max_instances": 8})
    watch = PsqlWatch(users_db.pg, ACTIVITY_SQL, interval=0.02, db=users_db.name)
    watch.start()
    try:
        watch.wait_first()
        paths = ["/fn/dbfn/sleep?s=0.05" if i % 4 else f"/fn/users/{i + 1}" for i in range(64)]
        with ThreadPoolExecutor(max_workers=64) as ex:
            results = list(ex.map(lambda p: get(ngx, p, timeout=30), paths))
        time.sleep(0.1)
    finally:
        samples = watch.stop()

    statuses = collections.Counter(s for s, _, _ in results)
    assert statuses == {200: 64}, f"{statuses}: {[b for s, b, _ in results if s != 200][:5]}"
    pids = {b["pid"] for s, b, _ in results if "pid" in b}
    assert len(pids) >= 2, f"the burst never scaled out: served by {pids}"
    assert all(b["id"] == i + 1 for i, (_, b, _) in enumerate(results) if i % 4 == 0)
    ours = [int(v[0]) for _, v in samples]
    clients = [int(v[1]) for _, v in samples]
    assert len(samples) >= 10, f"only {len(samples)} pg_stat_activity samples"
    assert max(ours) >= 1, "pg_stat_activity never showed fngate's connections"
    assert max(ours) <= 4, f"fngate held {max(ours)} connections with pool_size=4"
    assert max(clients) <= 4, f"{max(clients)} client connections with pool_size=4"
    backends = {b["backend"] for s, b, _ in results if "backend" in b}
    assert 1 <= len(backends) <= 4, f"queries ran on {len(backends)} backends: {backends}"
    assert gw.running()


def test_postgres_stopped_mid_load_fails_fast_and_recovers(stack, build, postgres_factory):
    pg = postgres_factory(schema=False)
    gw, ngx = db_stack(stack, build, pg.dsn(application_name="fngate"), functions=("dbfn",),
                       gateway={"pool_size": 4, "db_wait_timeout": "2s"},
                       defaults={"max_instances": 8})
    assert get(ngx, "/fn/dbfn/sleep?s=0")[0] == 200
    gw_pid, pool_pid = gw.pid, gw.pool_pid()
    assert pool_pid, "no pool process found"

    stop = threading.Event()
    results = []  # (start, elapsed, status, body)
    lock = threading.Lock()

    def client():
        while not stop.is_set():
            t0 = time.monotonic()
            status, body, _ = get(ngx, "/fn/dbfn/sleep?s=0.02", timeout=20)
            with lock:
                results.append((t0, time.monotonic() - t0, status, body))
            if status != 200:
                time.sleep(0.02)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.7)
        t_stop = time.monotonic()
        pg.stop("fast")
        t_stopped = time.monotonic()
        time.sleep(2.5)
        t_start = time.monotonic()
        pg.start()
        recovered = wait_for(lambda: get(ngx, "/fn/dbfn/sleep?s=0")[0] == 200 and time.monotonic(),
                             10.0, interval=0.1, what="a query to succeed after Postgres restarted")
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads), "a client is stuck"

    before = [r for r in results if r[0] + r[1] < t_stop]
    down = [r for r in results if r[0] > t_stopped and r[0] + r[1] < t_start]
    assert before and all(r[2] == 200 for r in before), "failures before Postgres stopped"
    assert down, "no request was made while Postgres was down"
    slowest = max(results, key=lambda r: r[1])
    assert slowest[1] <= 4.0, f"a request took {slowest[1]:.2f}s with db_wait_timeout=2s: {slowest}"
    for _, elapsed, status, body in down:
        assert 500 <= status <= 599, f"while Postgres was down: {status} {body}"
        assert_db_error(status, body, status)
    errors = [r for r in results if r[2] != 200]
    assert all(isinstance(r[3], dict) and len(r[3].get("sqlstate", "")) == 5 for r in errors), \
        f"an error without a JSON database error: {[r for r in errors if not r[3]][:3]}"
    print(f"\n{len(results)} requests, {len(errors)} errors "
          f"({collections.Counter(r[3]['sqlstate'] for r in errors)}), "
          f"slowest {slowest[1]:.2f}s, recovered {recovered - t_start:.2f}s after the restart")
    # The same fngate serves again, without a restart of its own or of its pool.
    assert gw.running() and gw.pid == gw_pid
    assert gw.pool_pid() == pool_pid, "the pool process was replaced (did it crash?)"
    for _ in range(5):
        assert get(ngx, "/fn/dbfn/sleep?s=0")[0] == 200


def test_kill_9_of_the_pool_is_survived(stack, build, users_db):
    gw, ngx = db_stack(stack, build, users_db.dsn(), functions=("users", "dbfn"))
    assert get(ngx, "/fn/users/2")[:2] == (200, seed_user(2))
    assert get(ngx, "/fn/dbfn/sleep?s=0")[0] == 200
    gw_pid, victim = gw.pid, gw.pool_pid()
    assert victim, "no pool process found among fngate's children"
    # A query in flight when the pool dies is answered at once, with an error.
    box = {}
    inflight = threading.Thread(
        target=lambda: box.setdefault("r", get(ngx, "/fn/dbfn/sleep?s=3", timeout=20)),
        daemon=True)
    inflight.start()
    wait_sleeping(users_db)
    os.kill(victim, signal.SIGKILL)
    t0 = time.monotonic()
    inflight.join(20)
    status, body, r = box["r"]
    assert_db_error(status, body, 503, "08006")
    assert time.monotonic() - t0 < 1.5, f"the in-flight query was answered after {r.elapsed:.2f}s"

    wait_for(lambda: get(ngx, "/fn/users/2")[:2] == (200, seed_user(2)), 5.0, interval=0.05,
             what="GET /fn/users/2 to work again after kill -9 of the pool")
    wait_for(lambda: get(ngx, "/fn/dbfn/sleep?s=0")[0] == 200, 5.0, interval=0.05,
             what="dbfn to work again after kill -9 of the pool")
    print(f"\nqueries work again {time.monotonic() - t0:.2f}s after kill -9 of the pool")
    gw.wait_log(lambda ln: f"pool process {victim}" in ln and ("signal 9" in ln or "SIGKILL" in ln),
                timeout=3.0, what=f"a log line saying pool process {victim} was killed")
    new = gw.pool_pid()
    assert new and new != victim, f"pool pid {new} after killing {victim}"
    gw.wait_log(lambda ln: f"pool process {new} started" in ln, timeout=3.0,
                what="the restarted pool's start line")
    assert gw.running() and gw.pid == gw_pid
    for i in range(2, 12):
        assert get(ngx, f"/fn/users/{i}")[:2] == (200, seed_user(i))


# --- safety -------------------------------------------------------------------


def test_injection_through_a_parameter_is_inert(stack, build, users_db):
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("users", "dbfn"))
    evil = "x'); DROP TABLE users; --"
    evil_email = "o'brien'--@example.com"
    status, body, r = post(ngx, "/fn/users", {"name": evil, "email": evil_email})
    assert status == 201, r
    assert body["name"] == evil and body["email"] == evil_email
    assert users_db.psql("SELECT to_regclass('users') IS NOT NULL") == "t", "users was dropped"
    assert users_db.psql("SELECT count(*) FROM users") == "1001"
    stored = users_db.psql(f"SELECT name FROM users WHERE id = {body['id']}")
    assert stored == evil, f"stored as {stored!r}"

    for s in ("'; DROP TABLE users; --", "1; DELETE FROM users", "$1", "\\'; SELECT pg_sleep(5)"):
        status, row, r = get(ngx, f"/fn/dbfn/params?s={quote(s)}&i=1&r=1&b=true&j=%7B%7D")
        assert status == 200 and row["s"] == s, r
    status, _, r = get(ngx, "/fn/users/" + quote("1 OR 1=1"))
    assert status == 404, r
    assert users_db.psql("SELECT count(*) FROM users") == "1001"


@pytest.mark.parametrize("where", ["conf", "env"])
def test_function_environment_holds_no_password(stack, build, users_db, where):
    secret = f"s3cret{uuid.uuid4().hex[:6]}"
    # Trust authentication ignores the password; the URL still has to work.
    dsn = users_db.dsn(application_name="fngate", password=secret)
    env = dict(os.environ)
    if where == "env":
        # DATABASE_URL overrides database_url, which points nowhere.
        env["DATABASE_URL"] = dsn
        dsn = "host=/nonexistent dbname=nowhere"
    gw, ngx = db_stack(stack, build, dsn, functions=("dbfn",), env=env)
    status, body, r = get(ngx, "/fn/dbfn/sleep?s=0")
    assert status == 200, f"the database is not reachable with this URL: {r}"

    status, body, r = get(ngx, "/fn/dbfn/env")
    assert status == 200, r
    text = r.body.decode()
    assert secret not in text, f"the password is in a function's environment: {body['env']}"
    assert "DATABASE_URL" not in body["env"], body["env"]
    assert not [k for k in body["env"] if k.startswith("PG")], body["env"]
    pids = gw.instances("dbfn")
    assert body["pid"] in pids, f"{body['pid']} not among {pids}"
    for pid in pids:
        for f in ("environ", "cmdline"):
            with open(f"/proc/{pid}/{f}", "rb") as fh:
                data = fh.read()
            assert secret.encode() not in data, f"the password is in /proc/{pid}/{f}"
            assert b"DATABASE_URL" not in data, f"DATABASE_URL in /proc/{pid}/{f}"


# --- pool settings --------------------------------------------------------------


def test_statement_timeout_per_function(stack, build, users_db):
    """statement_timeout applies to its function only, even on a server
    connection it shares with another (pool_size=1)."""
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn", "free"),
                      gateway={"pool_size": 1}, sections={"dbfn": {"statement_timeout": "200ms"}})
    status, body, r = get(ngx, "/fn/dbfn/sleep?s=1")
    assert_db_error(status, body, 503, "57014")
    assert r.elapsed < 0.9, f"statement_timeout=200ms answered after {r.elapsed:.2f}s"
    status, body, r = get(ngx, "/fn/free/sleep?s=0.4")
    assert status == 200, f"the other function inherited the timeout: {r}"
    status, body, _ = get(ngx, "/fn/dbfn/sleep?s=0.4")
    assert_db_error(status, body, 503, "57014")
    assert get(ngx, "/fn/dbfn/sleep?s=0.01")[0] == 200
    assert get(ngx, "/fn/free/sleep?s=0.4")[0] == 200


def test_db_wait_timeout_gives_fg001(stack, build, users_db):
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",),
                      gateway={"pool_size": 1, "db_wait_timeout": "1s"})
    assert get(ngx, "/fn/dbfn/sleep?s=0")[0] == 200
    box = {}
    holder = threading.Thread(target=lambda: box.setdefault("r", get(ngx, "/fn/dbfn/sleep?s=3",
                                                                     timeout=20)), daemon=True)
    holder.start()
    wait_sleeping(users_db)  # the slow query holds the only connection
    status, body, r = get(ngx, "/fn/dbfn/sleep?s=0", timeout=20)
    assert_db_error(status, body, 503, "FG001")
    assert 0.8 <= r.elapsed <= 2.0, f"FG001 after {r.elapsed:.2f}s with db_wait_timeout=1s"
    holder.join(20)
    assert box["r"][0] == 200, f"the slow query: {box['r']}"
    assert get(ngx, "/fn/dbfn/sleep?s=0")[0] == 200


def test_max_result_gives_fg002(stack, build, users_db):
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",),
                      gateway={"max_result": "1K"})
    status, body, r = get(ngx, "/fn/dbfn/big?n=1000")
    assert_db_error(status, body, 503, "FG002")
    status, rows, r = get(ngx, "/fn/dbfn/big?n=5")
    assert status == 200 and len(rows) == 5, r
    status, body, _ = get(ngx, "/fn/dbfn/big?n=100000")
    assert_db_error(status, body, 503, "FG002")
    assert get(ngx, "/fn/dbfn/count?n=3")[:2] == (200, {"rows": 3, "count": 3, "sum": 6})


def test_statement_cache_is_bounded(stack, build, users_db):
    """300 distinct statements through one server connection: the cache of
    prepared statements stays bounded (256 by default) and keeps working."""
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",), gateway={"pool_size": 1})
    for i in range(300):
        # Twice: the pool prepares a statement on its second use (issue 7).
        for _ in range(2):
            status, body, r = get(ngx, "/fn/dbfn/sql?sql=" + sql_arg(f"SELECT {i} AS n"))
            assert (status, body) == (200, [{"n": i}]), r
    status, body, r = get(ngx, "/fn/dbfn/sql?sql=" + sql_arg(
        "SELECT count(*) AS n FROM pg_prepared_statements"))
    assert status == 200, r
    n = int(body[0]["n"])
    assert 1 <= n <= 256, f"{n} prepared statements on the connection"
    # The oldest were evicted; asking again prepares them again.
    assert get(ngx, "/fn/dbfn/sql?sql=" + sql_arg("SELECT 0 AS n"))[:2] == (200, [{"n": 0}])


def test_prepared_statements_off(stack, build, users_db):
    """prepared_statements = false (PgBouncer in transaction mode before 1.21):
    no named statement is left on the server, and everything still works."""
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn", "users"),
                      gateway={"pool_size": 1, "prepared_statements": False})
    for _ in range(3):
        assert get(ngx, "/fn/users/2")[:2] == (200, seed_user(2))
        status, body, r = get(ngx, "/fn/dbfn/sql?sql=" + sql_arg(
            "SELECT count(*) AS n FROM pg_prepared_statements"))
        assert (status, body) == (200, [{"n": "0"}]), r
    status, row, r = post(ngx, "/fn/dbfn/params", ["a", 1, 1.5, True, None, {"x": [1]}])
    assert (status, row) == (200, {"s": "a", "i": "1", "r": 1.5, "b": True, "n": None,
                                   "j": {"x": [1]}}), r
    status, rows, r = get(ngx, "/fn/dbfn/types")
    assert status == 200 and rows[0] == TYPES_EXPECTED, r


def test_min_pool_keeps_connections_open(stack, build, users_db):
    _, ngx = db_stack(stack, build, users_db.dsn(application_name="fngate"),
                      functions=("dbfn",), gateway={"pool_size": 4, "min_pool": 2})
    count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fngate'"
    wait_for(lambda: users_db.psql(count) == "2", 5.0, interval=0.05,
             what="min_pool=2 connections before any request")
    time.sleep(0.5)
    assert users_db.psql(count) == "2"
    assert get(ngx, "/fn/dbfn/sleep?s=0")[0] == 200


def test_fngate_started_before_postgres(stack, build, postgres_factory):
    """Postgres not up yet: queries fail fast with a connection error, then
    work once it is up, with nothing restarted."""
    pg = postgres_factory(schema=False)
    pg.stop("fast")
    gw, ngx = db_stack(stack, build, pg.dsn(), functions=("dbfn",),
                       gateway={"db_wait_timeout": "2s"})
    status, body, r = get(ngx, "/fn/dbfn/sleep?s=0")
    assert_db_error(status, body, 503)
    assert body["sqlstate"].startswith("08"), body
    assert r.elapsed < 2.5, f"answered after {r.elapsed:.2f}s"
    pg.start()
    wait_for(lambda: get(ngx, "/fn/dbfn/sleep?s=0")[0] == 200, 10.0, interval=0.1,
             what="queries to work once Postgres is up")
    assert gw.running()


def test_cached_statement_survives_a_schema_change(stack, build, users_db):
    """A migration (ALTER TABLE ... ADD COLUMN) changes the result type of a
    cached `SELECT *`; Postgres then refuses the prepared statement with
    0A000 "cached plan must not change result type".  The cache must be
    transparent: the pool re-prepares, as it does for 26000."""
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn",), gateway={"pool_size": 1})
    q = "/fn/dbfn/sql?sql=" + sql_arg("SELECT * FROM users WHERE id = 2")
    assert get(ngx, q)[:2] == (200, [seed_user(2)])
    users_db.psql("ALTER TABLE users ADD COLUMN extra int DEFAULT 7")
    for attempt in (1, 2):
        status, body, r = get(ngx, q)
        assert (status, body) == (200, [{**seed_user(2), "extra": 7}]), \
            f"attempt {attempt} after ALTER TABLE: {r}"


def test_statement_timeout_cannot_be_escaped_or_imposed(stack, build, users_db):
    """statement_timeout is per function (the pool SETs it on a server
    connection when it differs from what it last set there).  A function
    that runs SET statement_timeout itself must neither escape its own limit
    nor impose one on another function sharing the connection (pool_size=1)."""
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn", "free", "free2"),
                      gateway={"pool_size": 1}, sections={"dbfn": {"statement_timeout": "200ms"}})
    problems = []
    status, body, _ = get(ngx, "/fn/dbfn/sleep?s=0.5")
    assert_db_error(status, body, 503, "57014")
    assert get(ngx, "/fn/dbfn/exec?sql=" + sql_arg("SET statement_timeout = 0"))[0] == 200
    status, body, _ = get(ngx, "/fn/dbfn/sleep?s=0.5")
    if status == 200:
        problems.append("dbfn (statement_timeout=200ms) escaped its limit after running "
                        f"SET statement_timeout = 0: pg_sleep(0.5) answered {status} {body}")

    # free and free2 both have the server's default (no statement_timeout).
    assert get(ngx, "/fn/free/sleep?s=0")[0] == 200
    assert get(ngx, "/fn/free/exec?sql=" + sql_arg("SET statement_timeout = '10ms'"))[0] == 200
    status, body, _ = get(ngx, "/fn/free2/sleep?s=0.05")
    if status != 200:
        problems.append(f"free2 (no statement_timeout) got {status} {body} for pg_sleep(0.05) "
                        "after free ran SET statement_timeout = '10ms'")
    assert not problems, "\n".join(problems)


def test_session_state_does_not_leak_between_functions(stack, build, users_db):
    """Each query is its own implicit transaction on a shared server
    connection; what one function leaves in the session (search_path, a
    TEMP table and its rows) must not reach another function's queries."""
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn", "other"),
                      gateway={"pool_size": 1})
    count = "/fn/other/sql?sql=" + sql_arg("SELECT count(*) AS n FROM users")
    assert get(ngx, count)[:2] == (200, [{"n": "1000"}])
    problems = []
    assert get(ngx, "/fn/dbfn/exec?sql=" + sql_arg("SET search_path = pg_catalog"))[0] == 200
    status, body, _ = get(ngx, count)
    if (status, body) != (200, [{"n": "1000"}]):
        problems.append(f"after dbfn's SET search_path = pg_catalog, other's query of users "
                        f"answered {status} {body}")
    assert get(ngx, "/fn/dbfn/exec?sql=" + sql_arg(
        "CREATE TEMP TABLE dbfn_private AS SELECT 'dbfn data' AS x"))[0] == 200
    status, body, _ = get(ngx, "/fn/other/sql?sql=" + sql_arg("SELECT x FROM dbfn_private"))
    if status == 200:
        problems.append(f"other read dbfn's TEMP table: {body}")
    assert not problems, "\n".join(problems)


def test_killed_instance_does_not_keep_its_query_running(stack, build, users_db):
    """An instance killed for request_timeout in the middle of a long query:
    its server connection must come back to the pool (the query cancelled),
    not stay busy until the query ends on its own (with pool_size=1, every
    other query of every function waits for it meanwhile)."""
    _, ngx = db_stack(stack, build, users_db.dsn(), functions=("dbfn", "other"),
                      gateway={"pool_size": 1, "db_wait_timeout": "1s"},
                      sections={"dbfn": {"request_timeout": "1s"}})
    r = ngx.get("/fn/dbfn/sleep?s=20", timeout=20)
    assert r.status == 504, r
    t0 = time.monotonic()
    last = []

    def other_query_works():
        last[:] = [get(ngx, "/fn/other/sleep?s=0", timeout=10)[:2]]
        return last[0][0] == 200
    try:
        wait_for(other_query_works, 5.0, interval=0.1,
                 what="another function's query after the killed instance's")
    except AssertionError:
        running = users_db.psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                "AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()")
        raise AssertionError(
            f"5 s after dbfn's instance was killed, other's query still fails ({last[0]}); "
            f"the killed instance's pg_sleep(20) still runs: {running == '1'}") from None
    print(f"\nthe pool was free again {time.monotonic() - t0:.2f}s after the 504")


def test_invalid_utf8_from_the_server_still_renders_json(stack, build, users_db):
    """A SQL_ASCII database hands back any bytes; the JSON stays valid UTF-8."""
    pg = users_db.pg
    name = users_db.name + "_ascii"
    pg.psql(f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' "
            "TEMPLATE template0")
    try:
        _, ngx = db_stack(stack, build, pg.dsn(name), functions=("dbfn",))
        for sql in (r"SELECT E'\xff\xfe ok' AS b", r"SELECT E'a\xc3' AS b",
                    r"SELECT ARRAY[E'\xed\xa0\x80', E'\xc0\xaf'] AS a"):
            r = ngx.get("/fn/dbfn/sql?sql=" + sql_arg(sql))
            assert r.status == 200, f"{sql}: {r}"
            strict_json(r.body)  # valid UTF-8 and valid JSON, or it raises
        assert strict_json(ngx.get("/fn/dbfn/sql?sql=" + sql_arg(
            r"SELECT E'\xff\xfe ok' AS b")).body)[0]["b"].endswith(" ok")
    finally:
        pg.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", check=False)


MALFORMED_FRAMES = {
    "garbage (a 1.7 GB length)": b"hello, pool".hex(),
    "length 0xffffffff": "ffffffff51",
    "empty frame": "00000000",
    "unknown frame type": "0000000158",
    "field longer than its frame": "0000000651000000ff41",
    "unknown parameter tag": "00000012510000000853454c4543542031000000017a",
    "a second query before the answer": "0000000d510000000853454c4543542031" * 2,
}


def test_malformed_frames_close_only_their_channel(stack, build, users_db):
    """What a broken or hostile function writes to its database channel closes
    that one channel with a log line; the pool and every other function go on."""
    gw, ngx = db_stack(stack, build, users_db.dsn(), functions=("raw", "dbfn"),
                       sections={"raw": {"max_requests": 1}})
    assert get(ngx, "/fn/dbfn/sleep?s=0")[0] == 200
    pool = gw.pool_pid()
    # The test's own encoding is right: a well-formed "SELECT 1" is answered.
    status, body, r = get(ngx, "/fn/raw/raw?hex=0000000d510000000853454c4543542031")
    assert status == 200 and body["answer_bytes"] > 0 and not body["eof"], r
    for what, hexdata in MALFORMED_FRAMES.items():
        status, body, r = get(ngx, f"/fn/raw/raw?hex={hexdata}")
        assert status == 200, f"{what}: {r}"
        assert body["eof"] and body["answer_bytes"] == 0, f"{what}: channel not closed: {body}"
        gw.wait_log(lambda ln, pid=body["pid"]: f"pid {pid}] database channel closed" in ln,
                    timeout=3.0, what=f"the log line for {what}")
        assert get(ngx, "/fn/dbfn/sleep?s=0")[0] == 200, f"dbfn failed after {what}"
    # A truncated frame: the pool waits for the rest and must not block on it.
    status, body, r = get(ngx, "/fn/raw/raw?hex=0000001051")
    assert status == 200 and not body["eof"], r
    assert get(ngx, "/fn/dbfn/sleep?s=0")[0] == 200
    gw.wait_log(lambda ln: f"pid {body['pid']}] database channel closed" in ln, timeout=3.0,
                what="the log line for the truncated frame")
    assert gw.pool_pid() == pool, "the pool process was replaced"
    assert gw.running()
