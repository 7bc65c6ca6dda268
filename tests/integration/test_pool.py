"""The pool keeps functions apart (issue 7), through a real nginx and a real
Postgres: session resets that SQL cannot bypass, a statement_timeout SQL
cannot escape, and the rest of the issue's points as they land.

Every attack runs with pool_size = 1, so attacker and victim share the one
server connection, and builds its SQL inside a DO block, which no keyword
classifier sees.
"""

from __future__ import annotations

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
