#!/usr/bin/env bash
# bench_db.sh: the fngate database benchmark (issue 3).  Run by hand, never in CI.
#
#     tests/bench/bench_db.sh [--quick] [--only PARTS] [--no-build] [--keep]
#
#   --quick     3 s wrk runs instead of 10 s (a smoke test; figures indicative only)
#   --only P    run only these parts, comma-separated: list, pk, reset (default all
#               three); so one run of a figure fits a short quiet window
#   --no-build  skip `make`; use the binaries already built in the tree
#   --keep      keep the temporary run directory (configs, sockets, logs)
#   --cpu       also print where the CPU goes: each process group's CPU time
#               (/proc/PID/schedstat, ns) over every measured run, per request:
#               nginx's workers, the back end's processes (fngate: instances,
#               pool, supervisor), its Postgres backends
#
# One throwaway Postgres 15 (unix socket, fsync off) with functions/users/schema.sql
# (1,000 users, 500 active), one PgBouncer (transaction mode) in front of it, and
# one nginx (2 workers, no access log) in front of four FastCGI back ends that all
# answer GET .../users (the 500 active rows, ~58 KB of JSON) and GET .../users/<id>
# (one row by primary key) with the same SQL:
#   /fn/users     fngate's users function: max_instances = 8, pool_size = 8
#   /bare/users   (a) bare_users.c: libfcgi + its own persistent libpq connection
#                 per process + a jansson tree and json_dumps; spawn-fcgi -F 8
#   /php/users    (b) users.php on php-fpm (pm = static, 8 children, opcache),
#                 PDO pgsql with persistent connections
#   /phpb/users   (c) the same PHP through PgBouncer in transaction mode
#                 (default_pool_size = 8, PDO::ATTR_EMULATE_PREPARES)
# The cost of the session reset (issue 7): a second fngate (its own socket_dir,
# pool_size 2) serves the same handler as two functions, ua and ub, on a second
# nginx port; the pk lookup cycling ids on ua alone is compared with the same
# load alternating ua/ub request by request, where every switch of a server
# connection from one function to the other runs DISCARD ALL first.
# For the list and for the primary-key lookup (a wrk Lua script cycling ids
# 1..1000): a 3 s warm-up, then wrk -t2 -c32 -d10s --latency, interleaved
# (fngate bare php phpb, twice), the better run of each kept.  Meanwhile a
# separate psql session samples pg_stat_activity every 100 ms and counts the
# backends of each application_name (fngate, bare, php, phpb).  It prints
# req/s, p50, p99, ratios to (b) and (a), the most Postgres connections seen,
# and the issue's targets with PASS or MISS.  Raw output goes to
# tests/bench/results/<date>-db/.
#
# When run as root, Postgres, PgBouncer, nginx workers, fngate instances,
# spawn-fcgi children and php-fpm workers all run as nobody:nogroup.
# Everything this script starts is stopped on exit, Ctrl-C included, and its
# temporary directory (Postgres' data included) removed.  It never installs
# anything: a missing tool is reported with the apt-get line that provides it.

set -u -o pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/bench/lib.sh
source "$BENCH_DIR/lib.sh"
ROOT=$(cd "$BENCH_DIR/../.." && pwd)

PARTS=list,pk,reset
want_only=0
CPU=0
for arg in "$@"; do
    if [ "$want_only" = 1 ]; then PARTS=$arg; want_only=0; continue; fi
    common_arg "$arg" && continue
    case "$arg" in
        --cpu) CPU=1 ;;
        --only) want_only=1 ;;
        --only=*) PARTS=${arg#--only=} ;;
        *) bad_arg "$arg" ;;
    esac
done
[ "$want_only" = 1 ] && { echo "bench_db.sh: --only needs a list of parts (list,pk,reset)" >&2; exit 2; }
for part in ${PARTS//,/ }; do
    case "$part" in
        list|pk|reset) ;;
        *) echo "bench_db.sh: unknown part for --only: $part (list, pk, reset)" >&2; exit 2 ;;
    esac
done
# has_part NAME: NAME is among the parts to run
has_part() { case ",$PARTS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

WARM_S=3                    # warm-up before every measured wrk run
if [ "$QUICK" = 1 ]; then RUN_S=3; else RUN_S=10; fi
WRK_T=2
WRK_C=32
PROCS=8                     # processes per back end: fngate max_instances, -F, php children
POOL_SIZE=8                 # fngate's pool_size, and PgBouncer's default_pool_size
IDLE_TIMEOUT=5m             # fngate instances stay warm between their runs (the others are static)
SAMPLE_S=0.1                # pg_stat_activity sampling period
PG_BINDIR=${PGTMP_BINDIR:-/usr/lib/postgresql/15/bin}

# Targets (issue 3).
T_LIST_PHP=1.5              # users list: fngate/php req/s, at least (issue 7; issue 3 had 1.3)
T_LIST_BARE=2               # users list: fngate/bare req/s, at least
T_PK_BARE=1.05              # pk lookup: fngate/bare req/s, at least (issue 7; issue 3 had 0.8)
T_PK_PHP=1                  # pk lookup: fngate/php req/s, above ("ahead of")

# --- dependencies -------------------------------------------------------------

need_stack_tools
need_cmd python3 python3
need_cmd psql postgresql-client-15
need_cmd setpriv util-linux
[ -x /usr/sbin/pgbouncer ] || need_cmd pgbouncer pgbouncer
[ -x "$PG_BINDIR/initdb" ] && [ -x "$PG_BINDIR/pg_ctl" ] || MISSING_PKGS+=(postgresql-15)
need_file /usr/include/jansson.h libjansson-dev
need_file /usr/include/postgresql/libpq-fe.h libpq-dev
# (php's module list is read whole before grep: with pipefail, grep -q quitting
# early could make php die of SIGPIPE and the test fail)
PHP_MODULES=$(php-fpm8.2 -m 2>/dev/null || true)
if command -v php-fpm8.2 >/dev/null 2>&1 && ! grep -qx pdo_pgsql <<<"$PHP_MODULES"; then
    MISSING_PKGS+=(php8.2-pgsql)
fi
need_report
PHP_FPM=$(command -v php-fpm8.2)
NGINX=$(command -v nginx)
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
PSQL=$PG_BINDIR/psql
[ -x "$PSQL" ] || PSQL=$(command -v psql)
php_opcache

IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1
# shellcheck disable=SC2034 # RUN_USER is for lib.sh's nginx_conf_head
if [ "$IS_ROOT" = 1 ]; then
    RUN_USER=nobody; RUN_GROUP=nogroup
    AS_SERVER=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
else
    RUN_USER=$(id -un); RUN_GROUP=$(id -gn)
    AS_SERVER=()
fi

# Client tools must not pick up a developer's PGHOST, PGDATABASE, ...
for v in $(compgen -e | grep '^PG' || true); do unset "$v"; done
unset DATABASE_URL

# --- build --------------------------------------------------------------------

STAMP=$(date +%Y%m%d-%H%M%S)
RES="$BENCH_DIR/results/$STAMP-db"
mkdir -p "$RES" || die "cannot create $RES"

FNGATE="$ROOT/gateway/fngate"
USERS="$ROOT/functions/users/handler"
build_tree
[ -x "$FNGATE" ] || die "$FNGATE is missing: build the project first"
[ -x "$USERS" ] || die "$USERS is missing: build the project first"
head -c 4096 "$USERS" | grep -q libtool && die "$USERS is a libtool wrapper script: build with shared libraries disabled"

# --- run directory and cleanup ------------------------------------------------

make_run_dir fngate-benchdb
# Postgres' socket path must fit in sun_path (107 bytes).
[ "${#RUN}" -le 70 ] || { rmdir "$RUN"; die "run directory path too long for a unix socket: $RUN (set TMPDIR=/tmp)"; }

PGDIR=$RUN/pg               # Postgres: socket here, data in $PGDIR/data
PGBDIR=$RUN/pgb             # PgBouncer: socket, config, log
PG_PORT=5432                # only names the socket file, in our own directory
PGB_PORT=6432               # likewise
PG_STARTED=0
PGB_PID=""
NGINX_PID=""
FNGATE_PID=""
FNGATE2_PID=""
WATCH_PID=""
BARE_PIDS=""

pg_ctl_as() { (cd "$PGDIR" && "${AS_SERVER[@]}" "$PG_BINDIR/pg_ctl" "$@"); }

cleanup() {
    local p
    cleanup_once || return
    stop_pid "$WATCH_PID" 5
    stop_pid "$NGINX_PID" 5
    stop_pid "$FNGATE_PID" 15
    stop_pid "$FNGATE2_PID" 15
    stop_php
    for p in $BARE_PIDS $(pids_under_run); do kill -KILL "$p" 2>/dev/null; done
    stop_pid "$PGB_PID" 5
    if [ "$PG_STARTED" = 1 ] && [ -f "$PGDIR/data/postmaster.pid" ]; then
        pg_ctl_as -D "$PGDIR/data" -m fast -w -t 20 stop >>"$PGDIR/setup.log" 2>&1 \
            || pg_ctl_as -D "$PGDIR/data" -m immediate -w -t 20 stop >>"$PGDIR/setup.log" 2>&1
    fi
    # keep the logs next to the results
    [ -f "$RUN/fngate.log" ] && cp "$RUN/fngate.log" "$RES/fngate.log"
    [ -f "$RUN/nginx/error.log" ] && cp "$RUN/nginx/error.log" "$RES/nginx-error.log"
    [ -f "$RUN/php/php-fpm.log" ] && cp "$RUN/php/php-fpm.log" "$RES/php-fpm.log"
    [ -f "$PGDIR/postgres.log" ] && cp "$PGDIR/postgres.log" "$RES/postgres.log"
    [ -f "$PGDIR/setup.log" ] && cp "$PGDIR/setup.log" "$RES/postgres-setup.log"
    [ -f "$PGBDIR/pgbouncer.log" ] && cp "$PGBDIR/pgbouncer.log" "$RES/pgbouncer.log"
    [ -f "$RUN/bare/bare.log" ] && cp "$RUN/bare/bare.log" "$RES/bare.log"
    remove_run_dir
}
trap_cleanup

# --- helpers ------------------------------------------------------------------

# unix_listening PATH: PATH is a unix socket in the listening state (from
# /proc/net/unix, without connecting to it).
unix_listening() {
    local _num _ref _proto flags _type _st _inode path
    [ -r /proc/net/unix ] || { [ -S "$1" ]; return; }
    while read -r _num _ref _proto flags _type _st _inode path; do
        [ "$path" = "$1" ] && (( 16#$flags & 0x10000 )) && return 0
    done </proc/net/unix
    return 1
}

# psql as the superuser on our cluster (or PgBouncer's admin console: -h/-p/-d override)
pg() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -h "$PGDIR" -p "$PG_PORT" -U postgres -d postgres -tA "$@"; }

now() { date +%s.%N | cut -c1-14; }

# --- stage everything ---------------------------------------------------------

mkdir -p "$RUN/functions/users" "$RUN/sock" "$RUN/bare" "$RUN/php" "$RUN/nginx" "$PGDIR" "$PGBDIR"
cp "$USERS" "$RUN/functions/users/handler"
mkdir -p "$RUN/functions2/ua" "$RUN/functions2/ub" "$RUN/sock2"
cp "$USERS" "$RUN/functions2/ua/handler"
cp "$USERS" "$RUN/functions2/ub/handler"
cp "$BENCH_DIR/users.php" "$RUN/php/users.php"
cp "$ROOT/nginx/fngate.inc" "$RUN/nginx/fngate.inc"
say "building: cc -O2 tests/bench/bare_users.c -lfcgi -lpq -ljansson"
cc -O2 -Wall -o "$RUN/bare/bare_users" "$BENCH_DIR/bare_users.c" -I/usr/include/postgresql \
    -lfcgi -lpq -ljansson >"$RES/cc.log" 2>&1 \
    || { cat "$RES/cc.log" >&2; die "cannot build bare_users.c"; }

# the primary-key load: every wrk connection asks for ids 1..1000 in turn
cat >"$RUN/ids.lua" <<'EOF'
-- bench_db.sh: GET <prefix><id>, id cycling 1..1000 (each wrk thread from its own start)
local prefix, id
function init(args)
    prefix = args[1]
    id = math.random(0, 999)
end
function request()
    id = id % 1000 + 1
    return wrk.format("GET", prefix .. id)
end
EOF

PG_DSN="host=$PGDIR port=$PG_PORT user=postgres dbname=postgres"

# fngate: the users function, max_instances = 8, pool_size = 8
cat >"$RUN/fngate.conf" <<EOF
; written by tests/bench/bench_db.sh
[gateway]
functions_dir = $RUN/functions
socket_dir = $RUN/sock
socket_mode = 0660
socket_group = $RUN_GROUP
log_level = info
database_url = $PG_DSN application_name=fngate
pool_size = $POOL_SIZE

[defaults]
max_instances = $PROCS
min_instances = 0
idle_timeout = $IDLE_TIMEOUT
request_timeout = 30s

[users]
max_instances = $PROCS
EOF

# the reset benchmark's fngate: ua and ub sharing pool_size 2
cat >"$RUN/fngate2.conf" <<EOF
; written by tests/bench/bench_db.sh
[gateway]
functions_dir = $RUN/functions2
socket_dir = $RUN/sock2
socket_mode = 0660
socket_group = $RUN_GROUP
log_level = info
database_url = $PG_DSN application_name=fngate2
pool_size = 2

[defaults]
max_instances = 4
idle_timeout = $IDLE_TIMEOUT
request_timeout = 30s
EOF
cat >"$RUN/alt.lua" <<'EOF'
-- ids 1..1000 in turn, the function alternating ua, ub, ua, ... (or ua only)
local id, n, both = 0, 0, true
function init(args) both = args[1] == "both" end
function request()
    id = id % 1000 + 1
    n = n + 1
    local fn = (both and n % 2 == 0) and "ub" or "ua"
    return wrk.format("GET", "/fn/" .. fn .. "/" .. id)
end
EOF

# PgBouncer: transaction mode, at most POOL_SIZE server connections
cat >"$PGBDIR/pgbouncer.ini" <<EOF
; written by tests/bench/bench_db.sh
[databases]
postgres = host=$PGDIR port=$PG_PORT dbname=postgres user=postgres

[pgbouncer]
unix_socket_dir = $PGBDIR
unix_socket_mode = 0777
listen_port = $PGB_PORT
auth_type = trust
auth_file = $PGBDIR/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = $POOL_SIZE
max_db_connections = $POOL_SIZE
max_client_conn = 200
logfile = $PGBDIR/pgbouncer.log
log_connections = 0
log_disconnections = 0
EOF
printf '"postgres" ""\n' >"$PGBDIR/userlist.txt"

# php-fpm: one master, two static pools running users.php, one per DSN.  The DSN
# separators are spaces (PDO pgsql turns ';' into ' ' anyway, and ';' would
# start a comment in php-fpm.conf).
php_user=""
[ "$IS_ROOT" = 1 ] && php_user=$'user = nobody\ngroup = nogroup'
{
    php_conf_head
    cat <<EOF
[php]
$php_user
listen = $RUN/php/php.sock
listen.mode = 0666
pm = static
pm.max_children = $PROCS
pm.max_requests = 0
env[BENCH_PG_DSN] = "pgsql:host=$PGDIR port=$PG_PORT dbname=postgres user=postgres application_name=php"
env[BENCH_PG_EMULATE] = 0

[phpb]
$php_user
listen = $RUN/php/phpb.sock
listen.mode = 0666
pm = static
pm.max_children = $PROCS
pm.max_requests = 0
env[BENCH_PG_DSN] = "pgsql:host=$PGBDIR port=$PGB_PORT dbname=postgres user=postgres application_name=phpb"
env[BENCH_PG_EMULATE] = 1
EOF
} >"$RUN/php/php-fpm.conf"

# nginx: fngate.inc for /fn/, plus /bare/, /php/ and /phpb/ with the same
# FastCGI buffers as fngate.inc (the list is ~58 KB: with nginx's default
# 8 x 4k buffers it would go through a temp file for those three only)
{
    fastcgi_params_bench
    cat <<'EOF'
fastcgi_param PATH_INFO $bench_path;
fastcgi_buffer_size 16k;
fastcgi_buffers 16 16k;
fastcgi_busy_buffers_size 32k;
fastcgi_next_upstream off;
EOF
} >"$RUN/nginx/fastcgi_params.bench"

PORT=$(free_port) || die "no free TCP port found"
PORT2=$(free_port) || die "no free TCP port found"
[ "$PORT2" = "$PORT" ] && { PORT2=$(free_port) || die "no free TCP port found"; }
{
    nginx_conf_head 2 "$RUN_USER $RUN_GROUP"
    cat <<EOF
    server {
        listen 127.0.0.1:$PORT;
        server_name localhost;

        set \$fngate_socket_dir $RUN/sock;
        include fngate.inc;

        location ~ ^/bare/users(?<bench_path>/.*)?\$ {
            include fastcgi_params.bench;
            fastcgi_param SCRIPT_NAME /bare/users;
            fastcgi_pass unix:$RUN/bare/bare.sock;
        }
        location ~ ^/php/users(?<bench_path>/.*)?\$ {
            include fastcgi_params.bench;
            fastcgi_param SCRIPT_NAME /php/users;
            fastcgi_param SCRIPT_FILENAME $RUN/php/users.php;
            fastcgi_pass unix:$RUN/php/php.sock;
        }
        location ~ ^/phpb/users(?<bench_path>/.*)?\$ {
            include fastcgi_params.bench;
            fastcgi_param SCRIPT_NAME /phpb/users;
            fastcgi_param SCRIPT_FILENAME $RUN/php/users.php;
            fastcgi_pass unix:$RUN/php/phpb.sock;
        }
        location = /healthz {
            default_type text/plain;
            return 200 'ok';
        }
    }
    server {
        listen 127.0.0.1:$PORT2;
        server_name localhost;
        set \$fngate_socket_dir $RUN/sock2;
        include fngate.inc;
    }
}
EOF
} >"$RUN/nginx/nginx.conf"
# fngate.inc's exact locations, as the README has users make them, for the
# first gateway (both server blocks include the one file: the second
# gateway's functions, other names, take the include's fallback regex)
fngate_locations "$FNGATE" "$RUN/fngate.conf" "$RUN/nginx"

# Everything but Postgres' data directory (initdb makes that 0700) is
# readable by nobody; Postgres' and PgBouncer's directories belong to it.
find "$RUN" -type d -exec chmod 755 {} +
find "$RUN" -type f -exec chmod go+r {} +
chmod 755 "$RUN/functions/users/handler" "$RUN/bare/bare_users" "$RUN/functions2/ua/handler" "$RUN/functions2/ub/handler"
[ "$IS_ROOT" = 1 ] && chown -R nobody:nogroup "$PGDIR" "$PGBDIR"
cp "$RUN/fngate.conf" "$RUN/php/php-fpm.conf" "$RUN/nginx/nginx.conf" "$PGBDIR/pgbouncer.ini" "$RUN/ids.lua" "$RES/"

# --- machine ------------------------------------------------------------------

machine_info
OTHER_BENCH=$(pgrep -f 'bench_core\.sh' 2>/dev/null | wc -l)
JANSSON_V=$(dpkg-query -W -f '${Version}' libjansson4 2>/dev/null || echo '?')
LIBPQ_V=$(dpkg-query -W -f '${Version}' libpq5 2>/dev/null || echo '?')
VERSIONS="$("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $("$PHP_FPM" -v 2>/dev/null | head -1 | awk '{print "php-fpm " $2}') (opcache $([ "$OPCACHE" = 1 ] && echo on || echo off)), $("$PG_BINDIR/postgres" --version | awk '{print "PostgreSQL " $3}'), $("$PGBOUNCER" --version 2>/dev/null | head -1), libpq $LIBPQ_V, jansson $JANSSON_V, $(wrk -v 2>&1 | head -1 | awk '{print "wrk " $2}')"
say ""
say "fngate database benchmark, $DATE"
say "machine: $MACHINE"
say "before start: CPUs ${BUSY_START}% busy over 2 s, load average $LOAD_START"
[ "$OTHER_BENCH" -gt 0 ] && say "WARNING: bench_core.sh is running at the same time: these figures are unreliable"
say "run directory: $RUN    results: $RES"
[ "$QUICK" = 1 ] && say "QUICK mode: ${RUN_S}s wrk runs (figures are indicative only)"

# --- Postgres and PgBouncer ---------------------------------------------------

say ""
say "starting Postgres ($PG_BINDIR, socket in $PGDIR, fsync off, max_connections 200) and PgBouncer"
pg_ctl_as init -D "$PGDIR/data" -s -o "-U postgres -A trust -E UTF8 --locale=C --no-sync" >>"$PGDIR/setup.log" 2>&1 \
    || { cat "$PGDIR/setup.log" >&2; die "initdb failed"; }
cat >>"$PGDIR/data/postgresql.conf" <<EOF

# --- tests/bench/bench_db.sh
unix_socket_directories = '$PGDIR'
listen_addresses = ''
port = $PG_PORT
fsync = off
full_page_writes = off
synchronous_commit = off
max_connections = 200
shared_buffers = 64MB
timezone = 'UTC'
log_timezone = 'UTC'
EOF
PG_STARTED=1
pg_ctl_as -D "$PGDIR/data" -l "$PGDIR/postgres.log" -w -t 30 start >>"$PGDIR/setup.log" 2>&1 \
    || { cat "$PGDIR/setup.log" "$PGDIR/postgres.log" >&2; die "Postgres did not start"; }
pg -f "$ROOT/functions/users/schema.sql" >"$RES/schema.log" 2>&1 \
    || { cat "$RES/schema.log" >&2; die "cannot load functions/users/schema.sql"; }
read -r N_USERS N_ACTIVE < <(pg -F ' ' -c "SELECT count(*), count(*) FILTER (WHERE active) FROM users")
say "users: $N_USERS rows, $N_ACTIVE active"

(cd "$PGBDIR" && exec "${AS_SERVER[@]}" "$PGBOUNCER" "$PGBDIR/pgbouncer.ini") >>"$PGBDIR/pgbouncer.stderr" 2>&1 &
PGB_PID=$!
pgb_ready() { kill -0 "$PGB_PID" 2>/dev/null || return 0; [ -S "$PGBDIR/.s.PGSQL.$PGB_PORT" ]; }
wait_until 10 pgb_ready
kill -0 "$PGB_PID" 2>/dev/null || { cat "$PGBDIR/pgbouncer.stderr" "$PGBDIR/pgbouncer.log" >&2; die "PgBouncer exited at start"; }
[ "$("$PSQL" -X -tA -h "$PGBDIR" -p "$PGB_PORT" -U postgres -d postgres -c 'SELECT 1' 2>&1)" = 1 ] \
    || { cat "$PGBDIR/pgbouncer.log" >&2; die "cannot query through PgBouncer"; }

# --- fngate, bare, php-fpm, nginx -----------------------------------------------

say "starting fngate (users: max_instances $PROCS, pool_size $POOL_SIZE), spawn-fcgi (bare_users x $PROCS), php-fpm (2 x $PROCS static) and nginx on 127.0.0.1:$PORT"

"$FNGATE" serve -c "$RUN/fngate.conf" >"$RUN/fngate.log" 2>&1 &
FNGATE_PID=$!
fngate_ready() { kill -0 "$FNGATE_PID" 2>/dev/null || return 0; unix_listening "$RUN/sock/fn/users.sock"; }
wait_until 10 fngate_ready
kill -0 "$FNGATE_PID" 2>/dev/null || { cat "$RUN/fngate.log" >&2; die "fngate exited at start"; }
[ -S "$RUN/sock/fn/users.sock" ] || { cat "$RUN/fngate.log" >&2; die "fngate made no socket for users"; }
"$FNGATE" serve -c "$RUN/fngate2.conf" >"$RUN/fngate2.log" 2>&1 &
FNGATE2_PID=$!
fngate2_ready() { kill -0 "$FNGATE2_PID" 2>/dev/null || return 0; unix_listening "$RUN/sock2/fn/ub.sock"; }
wait_until 10 fngate2_ready
kill -0 "$FNGATE2_PID" 2>/dev/null || { cat "$RUN/fngate2.log" >&2; die "the second fngate exited at start"; }

spawn_args=(-s "$RUN/bare/bare.sock" -M 0666 -F "$PROCS" -P "$RUN/bare/spawn-fcgi.pid")
[ "$IS_ROOT" = 1 ] && spawn_args+=(-u nobody -g nogroup)
# spawn-fcgi leaves the children's stderr where its own goes
spawn-fcgi "${spawn_args[@]}" -- "$RUN/bare/bare_users" "$PG_DSN application_name=bare" \
    >"$RES/spawn-fcgi.log" 2>>"$RUN/bare/bare.log" \
    || { cat "$RES/spawn-fcgi.log" "$RUN/bare/bare.log" >&2; die "spawn-fcgi failed"; }
BARE_PIDS=$(cat "$RUN/bare/spawn-fcgi.pid" 2>/dev/null)
[ "$(wc -w <<<"$BARE_PIDS")" = "$PROCS" ] || say "warning: spawn-fcgi reported $(wc -w <<<"$BARE_PIDS") children, not $PROCS"

start_php "$RUN/php/php.sock" "$RUN/php/phpb.sock"

start_nginx

# --- every endpoint returns the same rows -------------------------------------

NAMES=(fngate bare php phpb)
declare -A PREFIX=([fngate]=/fn/users [bare]=/bare/users [php]=/php/users [phpb]=/phpb/users)
declare -A LABEL=(
    [fngate]="fngate /fn/users"
    [bare]="(a) bare libfcgi+libpq+jansson"
    [php]="(b) php-fpm + PDO persistent"
    [phpb]="(c) php-fpm + PDO + PgBouncer"
)
CHECK_IDS="1 2 499 500 777 1000"
mkdir -p "$RES/responses"
for name in "${NAMES[@]}"; do
    p=${PREFIX[$name]}
    code=$(curl -s -o "$RES/responses/$name-list.json" -w '%{http_code}' "http://127.0.0.1:$PORT$p")
    [ "$code" = 200 ] || die "GET $p answered $code: $(head -c 300 "$RES/responses/$name-list.json")"
    for id in $CHECK_IDS; do
        code=$(curl -s -o "$RES/responses/$name-$id.json" -w '%{http_code}' "http://127.0.0.1:$PORT$p/$id")
        [ "$code" = 200 ] || die "GET $p/$id answered $code: $(head -c 300 "$RES/responses/$name-$id.json")"
    done
    code=$(curl -s -o "$RES/responses/$name-1001.json" -w '%{http_code}' "http://127.0.0.1:$PORT$p/1001")
    [ "$code" = 404 ] || die "GET $p/1001 answered $code, not 404"
done
# same ids everywhere (the check); same values too (reported, not required)
CHECK_OUT=$(python3 - "$RES/responses" "$N_ACTIVE" $CHECK_IDS <<'EOF'
import json, sys
d, n_active, ids = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
names = ["fngate", "bare", "php", "phpb"]
lists = {n: json.load(open(f"{d}/{n}-list.json")) for n in names}
sizes = {n: len(open(f"{d}/{n}-list.json", "rb").read()) for n in names}
bad = []
ref = [r["id"] for r in lists["fngate"]]
if len(ref) != n_active:
    bad.append(f"fngate lists {len(ref)} rows, the table has {n_active} active")
for n in names:
    got = [r["id"] for r in lists[n]]
    if sorted(got) != sorted(ref):
        bad.append(f"{n}: the list's ids differ from fngate's ({len(got)} rows)")
for i in ids:
    for n in names:
        row = json.load(open(f"{d}/{n}-{i}.json"))
        if row.get("id") != int(i):
            bad.append(f"{n}: GET /{i} returned id {row.get('id')!r}")
same = [n for n in names[1:] if lists[n] == lists["fngate"]]
diff = [n for n in names[1:] if lists[n] != lists["fngate"]]
note = "values identical to fngate's: " + (", ".join(same) or "none")
if diff:
    r0, r1 = lists["fngate"][0], lists[diff[0]][0]
    keys = [k for k in r0 if r0.get(k) != r1.get(k)]
    note += f"; differ: {', '.join(diff)} (e.g. {diff[0]} {keys}: {[r1.get(k) for k in keys]!r} vs {[r0.get(k) for k in keys]!r})"
print("bytes " + " ".join(f"{n}={sizes[n]}" for n in names))
print("note " + note)
for b in bad:
    print("BAD " + b)
EOF
) || die "the response check failed to run"
say "$CHECK_OUT" >"$RES/check.txt"
if grep -q '^BAD ' <<<"$CHECK_OUT"; then
    grep '^BAD ' <<<"$CHECK_OUT" >&2
    die "the endpoints do not return the same rows (responses in $RES/responses)"
fi
LIST_BYTES=$(sed -n 's/^bytes //p' <<<"$CHECK_OUT")
VALUES_NOTE=$(sed -n 's/^note //p' <<<"$CHECK_OUT")
say "every endpoint returns the same $N_ACTIVE ids for the list and the right row for ids $CHECK_IDS (404 for 1001)"
say "list sizes in bytes: $LIST_BYTES"
say "$VALUES_NOTE"

# --- the pg_stat_activity sampler ---------------------------------------------

# One psql session, \watch every 100 ms: time, then the backends of each
# application (its own excluded), then every other client backend.  PgBouncer
# opens a server connection without an application_name and sets the client's
# (phpb) when it first hands it out: an empty name counts as PgBouncer's.
"$PSQL" -X -q -tA -F ' ' -h "$PGDIR" -p "$PG_PORT" -U postgres -d postgres \
    >"$RUN/pgstat.txt" 2>"$RUN/pgstat.err" <<EOF &
SET application_name = 'bench_db_sampler';
SELECT to_char(extract(epoch FROM clock_timestamp()), 'FM9999999999.000'),
       count(*) FILTER (WHERE application_name = 'fngate'),
       count(*) FILTER (WHERE application_name = 'bare'),
       count(*) FILTER (WHERE application_name = 'php'),
       count(*) FILTER (WHERE application_name IN ('phpb', '')),
       count(*) FILTER (WHERE application_name NOT IN ('fngate', 'bare', 'php', 'phpb', ''))
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
\watch $SAMPLE_S
EOF
WATCH_PID=$!
wait_until 5 test -s "$RUN/pgstat.txt" || { cat "$RUN/pgstat.err" >&2; die "the pg_stat_activity sampler does not run"; }

# max_conns APP START END -> the most backends of APP (fngate bare php phpb
# other) in the samples taken between START and END (epoch seconds)
max_conns() {
    awk -v app="$1" -v s="$2" -v e="$3" '
        BEGIN { col["fngate"] = 2; col["bare"] = 3; col["php"] = 4; col["phpb"] = 5; col["other"] = 6; m = -1 }
        NF == 6 && $1 >= s && $1 <= e { v = $(col[app]) + 0; if (v > m) m = v }
        END { if (m < 0) print "?"; else print m }' "$RUN/pgstat.txt"
}
pgstat_samples() { awk -v s="$1" -v e="$2" 'NF == 6 && $1 >= s && $1 <= e { n++ } END { print n + 0 }' "$RUN/pgstat.txt"; }

# --- where the CPU goes (--cpu) ---------------------------------------------------

# cpu_ns PID...: the CPU time the processes have used so far, in ns
cpu_ns() {
    local p t sum=0
    for p in "$@"; do
        read -r t _ 2>/dev/null <"/proc/$p/schedstat" || continue
        sum=$((sum + t))
    done
    printf '%s\n' "$sum"
}

# cpu_groups NAME: "group pid pid ..." lines for back end NAME's processes
cpu_groups() {
    local c e inst="" pool="" workers=""
    printf 'nginx %s\n' "$(pgrep -P "$NGINX_PID" 2>/dev/null | tr '\n' ' ')"
    case "$1" in
        fngate)
            for c in $(pgrep -P "$FNGATE_PID" 2>/dev/null); do
                e=$(readlink "/proc/$c/exe" 2>/dev/null)
                if [ "${e##*/}" = fngate-pool ]; then pool="$pool $c"; else inst="$inst $c"; fi
            done
            printf 'instances %s\npool %s\nsupervisor %s\n' "$inst" "$pool" "$FNGATE_PID" ;;
        bare) printf 'bare %s\n' "$(tr '\n' ' ' <<<"$BARE_PIDS")" ;;
        php|phpb)
            for c in $(pgrep -P "$PHP_PID" 2>/dev/null); do
                tr '\0' ' ' 2>/dev/null <"/proc/$c/cmdline" | grep -q "pool $1\b" && workers="$workers $c"
            done
            printf 'php-fpm %s\n' "$workers" ;;
    esac
    printf 'postgres %s\n' "$(pg -c "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE application_name = '$1'" 2>/dev/null)"
}

# cpu_snap NAME FILE: each group's CPU time now ("group ns"), pids kept for cpu_delta
cpu_snap() {
    cpu_groups "$1" >"$2.pids"
    while read -r g pids; do
        # shellcheck disable=SC2086
        printf '%s %s\n' "$g" "$(cpu_ns $pids)"
    done <"$2.pids" >"$2"
}

# cpu_delta NAME BEFORE REQUESTS KEY: appends "KEY group us_per_request" lines to
# $RES/cpu.txt for the same processes as the snapshot BEFORE
cpu_delta() {
    local g pids t0 t1
    while read -r g pids; do
        t0=$(awk -v g="$g" '$1 == g { print $2 }' "$2")
        # shellcheck disable=SC2086
        t1=$(cpu_ns $pids)
        awk -v k="$4" -v g="$g" -v a="$t0" -v b="$t1" -v n="$3" \
            'BEGIN { if (n > 0) printf "%s %s %.1f\n", k, g, (b - a) / n / 1000 }' >>"$RES/cpu.txt"
    done <"$2.pids"
}

# --- throughput -----------------------------------------------------------------

say ""
say "== wrk -t$WRK_T -c$WRK_C -d${RUN_S}s --latency after a ${WARM_S}s warm-up; fngate bare php phpb, twice =="
say "   list: GET <prefix>        pk: GET <prefix>/<id>, ids 1..1000 in turn (wrk Lua script)"
declare -A BEST_RPS BEST_P50 BEST_P99 TOT_NON2XX TOT_ERRS RUNS_RPS RUNS_CONN MAX_CONN
printf '%-5s %-7s %-7s %10s %9s %9s %9s %7s %7s %9s  %s\n' kind run target "req/s" "p50 ms" "p99 ms" requests non2xx errors "pg conns" processes \
    | tee "$RES/runs.txt"
LOAD_MID=""
KINDS=()
has_part list && KINDS+=(list)
has_part pk && KINDS+=(pk)
for kind in "${KINDS[@]}"; do
    for round in 1 2; do
        for name in "${NAMES[@]}"; do
            key=$kind-$name
            if [ "$kind" = list ]; then path=${PREFIX[$name]}; else path=${PREFIX[$name]}/1; fi
            # pk: wrk passes what follows the URL to the script's init(args)
            if [ "$kind" = pk ]; then
                t0=$(now)
                wrk -t"$WRK_T" -c"$WRK_C" -d"${WARM_S}s" -s "$RUN/ids.lua" "http://127.0.0.1:$PORT$path" "${PREFIX[$name]}/" \
                    >"$RES/wrk-$key-warmup$round.txt" 2>&1 &
                WRK_PID=$!; wait "$WRK_PID"; WRK_PID=""
                [ "$CPU" = 1 ] && cpu_snap "$name" "$RUN/cpu-before"
                t1=$(now)
                wrk -t"$WRK_T" -c"$WRK_C" -d"${RUN_S}s" --latency -s "$RUN/ids.lua" "http://127.0.0.1:$PORT$path" "${PREFIX[$name]}/" \
                    >"$RES/wrk-$key-run$round.txt" 2>&1 &
                WRK_PID=$!; wait "$WRK_PID"; WRK_PID=""
                t2=$(now)
            else
                t0=$(now)
                run_wrk "$path" "$WARM_S" "$RES/wrk-$key-warmup$round.txt"
                [ "$CPU" = 1 ] && cpu_snap "$name" "$RUN/cpu-before"
                t1=$(now)
                run_wrk "$path" "$RUN_S" "$RES/wrk-$key-run$round.txt" --latency
                t2=$(now)
            fi
            printf '%s %s %s %s %s\n' "$key-warmup$round" "$t0" "$t1" warmup "$name" >>"$RES/windows.txt"
            printf '%s %s %s %s %s\n' "$key-run$round" "$t1" "$t2" run "$name" >>"$RES/windows.txt"
            case "$name" in
                fngate) procs="$(children_with_exe "$FNGATE_PID" "$RUN/functions/users/handler") instances" ;;
                bare) procs="$(for p in $BARE_PIDS; do kill -0 "$p" 2>/dev/null && echo "$p"; done | wc -l) children" ;;
                php|phpb) procs="$(php_workers "$name") workers" ;;
            esac
            read -r rps p50 p99 reqs non2xx errs < <(parse_wrk "$RES/wrk-$key-run$round.txt")
            [ "$CPU" = 1 ] && cpu_delta "$name" "$RUN/cpu-before" "$reqs" "$key"
            read -r _ _ _ _ wnon2xx werrs < <(parse_wrk "$RES/wrk-$key-warmup$round.txt")
            conns=$(max_conns "$name" "$t0" "$t2")
            printf '%-5s %-7s %-7s %10s %9s %9s %9s %7s %7s %9s  %s\n' "$kind" "round$round" "$name" "$rps" "$p50" "$p99" "$reqs" "$non2xx" "$errs" "$conns" "$procs" \
                | tee -a "$RES/runs.txt"
            TOT_NON2XX[$key]=$(( ${TOT_NON2XX[$key]:-0} + non2xx + wnon2xx ))
            TOT_ERRS[$key]=$(( ${TOT_ERRS[$key]:-0} + errs + werrs ))
            RUNS_RPS[$key]="${RUNS_RPS[$key]:-} $rps"
            RUNS_CONN[$key]="${RUNS_CONN[$key]:-} $conns"
            [ "$conns" != "?" ] && [ "$conns" -gt "${MAX_CONN[$key]:--1}" ] && MAX_CONN[$key]=$conns
            if [ "$rps" -gt "${BEST_RPS[$key]:-0}" ]; then
                BEST_RPS[$key]=$rps; BEST_P50[$key]=$p50; BEST_P99[$key]=$p99
            fi
            if [ "$name" = fngate ] && ! kill -0 "$FNGATE_PID" 2>/dev/null; then
                tail -30 "$RUN/fngate.log" >&2
                die "fngate died during the throughput run"
            fi
        done
    done
    [ "$kind" = list ] && LOAD_MID=$(cut -d' ' -f1-3 /proc/loadavg)
done
LOAD_RUNEND=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the cost of the session reset (issue 7) -------------------------------------

say ""
declare -A RESET_RPS RESET_P50 RESET_RUNS
RESET_ROUNDS="1 2"
if has_part reset; then
    say "== session reset: pk lookup on pool_size 2, one function (ua) vs two alternating (ua/ub), twice =="
else
    RESET_ROUNDS=""
fi
for round in $RESET_ROUNDS; do
    for mode in one both; do
        wrk -t"$WRK_T" -c"$WRK_C" -d"${WARM_S}s" -s "$RUN/alt.lua" "http://127.0.0.1:$PORT2/" "$mode" \
            >"$RES/wrk-reset-$mode-warmup$round.txt" 2>&1 &
        WRK_PID=$!; wait "$WRK_PID"; WRK_PID=""
        wrk -t"$WRK_T" -c"$WRK_C" -d"${RUN_S}s" --latency -s "$RUN/alt.lua" "http://127.0.0.1:$PORT2/" "$mode" \
            >"$RES/wrk-reset-$mode-run$round.txt" 2>&1 &
        WRK_PID=$!; wait "$WRK_PID"; WRK_PID=""
        read -r rps p50 _ _ non2xx errs < <(parse_wrk "$RES/wrk-reset-$mode-run$round.txt")
        printf 'reset %-7s %-7s %10s %9s   non2xx %s errors %s\n' "round$round" "$mode" "$rps" "$p50" "$non2xx" "$errs" | tee -a "$RES/runs.txt"
        RESET_RUNS[$mode]="${RESET_RUNS[$mode]:-} $rps"
        if [ "$rps" -gt "${RESET_RPS[$mode]:-0}" ]; then RESET_RPS[$mode]=$rps; RESET_P50[$mode]=$p50; fi
    done
done
RESET_RATIO=$(ratio "${RESET_RPS[both]:-}" "${RESET_RPS[one]:-}")
RESET_CONNS=$("$PSQL" -X -tA -h "$PGDIR" -p "$PG_PORT" -U postgres -d postgres \
    -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fngate2'" 2>/dev/null)
# Before the checks below, which count what is left of fngate's instances.
stop_pid "$FNGATE2_PID" 15; FNGATE2_PID=""

# the whole measurement, from the first warm-up to the last run
touch "$RES/windows.txt"
T_FIRST=$(awk 'NR == 1 { print $2 }' "$RES/windows.txt")
T_LAST=$(awk 'END { print $3 }' "$RES/windows.txt")
sleep 0.3
stop_pid "$WATCH_PID" 5; WATCH_PID=""
cp "$RUN/pgstat.txt" "$RES/pg-connections.txt"
N_SAMPLES=$(pgstat_samples "$T_FIRST" "$T_LAST")
ALL_FNGATE=$(max_conns fngate 0 9999999999)
ALL_PHPB=$(max_conns phpb 0 9999999999)
ALL_OTHER=$(max_conns other "$T_FIRST" "$T_LAST")
# PgBouncer's own view of its server connections, at the end
"$PSQL" -X -h "$PGBDIR" -p "$PGB_PORT" -U postgres -d pgbouncer -c 'SHOW POOLS' -c 'SHOW SERVERS' \
    >"$RES/pgbouncer-pools.txt" 2>&1

# --- stop, and check that fngate stops cleanly ------------------------------

stop_pid "$NGINX_PID" 5; NGINX_PID=""
stop_fngate
PG_FNGATE_AFTER=$(pg -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fngate'" 2>/dev/null || echo '?')

# --- summary ------------------------------------------------------------------

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_END=$(cpu_busy 2)
LIST_PHP=$(ratio "${BEST_RPS[list-fngate]:-}" "${BEST_RPS[list-php]:-}")
LIST_BARE=$(ratio "${BEST_RPS[list-fngate]:-}" "${BEST_RPS[list-bare]:-}")
PK_BARE=$(ratio "${BEST_RPS[pk-fngate]:-}" "${BEST_RPS[pk-bare]:-}")
PK_PHP=$(ratio "${BEST_RPS[pk-fngate]:-}" "${BEST_RPS[pk-php]:-}")
PK_PHP_RAW=$(awk -v a="${BEST_RPS[pk-fngate]:-}" -v b="${BEST_RPS[pk-php]:-}" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.6f\n", a / b }')
V_LIST_PHP=$(verdict "$LIST_PHP" ">=" "$T_LIST_PHP")
V_LIST_BARE=$(verdict "$LIST_BARE" ">=" "$T_LIST_BARE")
V_PK_BARE=$(verdict "$PK_BARE" ">=" "$T_PK_BARE")
V_PK_PHP=$(verdict "$PK_PHP_RAW" ">" "$T_PK_PHP")
V_CONN=$(verdict "$ALL_FNGATE" "<=" "$POOL_SIZE")
FNGATE_BAD=$(( ${TOT_NON2XX[list-fngate]:-0} + ${TOT_ERRS[list-fngate]:-0} + ${TOT_NON2XX[pk-fngate]:-0} + ${TOT_ERRS[pk-fngate]:-0} ))
{
    say ""
    say "==================== fngate database benchmark: summary ===================="
    say "date      $DATE"
    say "machine   $MACHINE"
    say "software  $VERSIONS"
    say "load avg  $LOAD_START at start, $LOAD_MID after the list runs, $LOAD_RUNEND after the pk runs, $LOAD_END at the end"
    say "idle?     CPUs ${BUSY_START}% busy before start, ${BUSY_END}% after the end (2 s samples, nothing of ours loading them)"
    if [ "$BUSY_START" -gt 10 ] || [ "$BUSY_END" -gt 10 ] || [ "$OTHER_BENCH" -gt 0 ]; then
        say "WARNING   other work was using the cores: these figures are unreliable, run again when the machine is idle"
    fi
    say "mode      $([ "$QUICK" = 1 ] && echo "QUICK (${RUN_S}s runs): indicative only" || echo "full (${RUN_S}s runs)")"
    say "setup     nginx (2 workers) -> FastCGI over unix sockets, $PROCS processes per back end; Postgres 15 on a"
    say "          unix socket (fsync off); fngate users: max_instances $PROCS, pool_size $POOL_SIZE (so never more than"
    say "          $POOL_SIZE Postgres connections), idle_timeout $IDLE_TIMEOUT; (a) spawn-fcgi -F $PROCS, PQexecParams,"
    say "          jansson tree + json_dumps; (b) php-fpm pm=static $PROCS, PDO persistent, native prepares;"
    say "          (c) the same through PgBouncer, transaction mode, default_pool_size $POOL_SIZE, emulated prepares"
    say "data      $N_USERS users, list = $N_ACTIVE active rows; list bytes: $LIST_BYTES"
    say "          $VALUES_NOTE"
    say ""
    say "wrk -t$WRK_T -c$WRK_C -d${RUN_S}s --latency after a ${WARM_S}s warm-up, better of two interleaved runs;"
    say "pg conns: most Postgres backends of that client seen in pg_stat_activity (every ${SAMPLE_S}s) during its runs"
    for kind in "${KINDS[@]}"; do
        say ""
        if [ "$kind" = list ]; then
            say "GET .../users: the $N_ACTIVE active users (~$(( $(awk '{ split($1, a, "="); print a[2] }' <<<"$LIST_BYTES") / 1024 )) KB of JSON)"
        else
            say "GET .../users/<id>: one row by primary key, ids 1..1000 in turn"
        fi
        printf '  %-31s %8s %7s %7s %7s %7s %8s  %s\n' "" "req/s" "p50 ms" "p99 ms" "vs (b)" "vs (a)" "pg conns" "runs req/s; pg conns; non-2xx, errors"
        for name in "${NAMES[@]}"; do
            key=$kind-$name
            printf '  %-31s %8s %7s %7s %7s %7s %8s  %s\n' "${LABEL[$name]}" "${BEST_RPS[$key]}" "${BEST_P50[$key]}" "${BEST_P99[$key]}" \
                "$(ratio "${BEST_RPS[$key]}" "${BEST_RPS[$kind-php]}")" "$(ratio "${BEST_RPS[$key]}" "${BEST_RPS[$kind-bare]}")" \
                "${MAX_CONN[$key]:-?}" "${RUNS_RPS[$key]# };${RUNS_CONN[$key]}; ${TOT_NON2XX[$key]}, ${TOT_ERRS[$key]}"
        done
    done
    if has_part reset; then
        say ""
        say "session reset (issue 7): pk lookup, pool_size 2, the same handler as two functions"
        printf '  %-31s %8s %7s  %s\n' "" "req/s" "p50 ms" "runs req/s"
        printf '  %-31s %8s %7s  %s\n' "ua alone (no resets)" "${RESET_RPS[one]}" "${RESET_P50[one]}" "${RESET_RUNS[one]# }"
        printf '  %-31s %8s %7s  %s\n' "ua/ub alternating (DISCARD ALL)" "${RESET_RPS[both]}" "${RESET_P50[both]}" "${RESET_RUNS[both]# }"
        say "  alternating / alone: $RESET_RATIO (Postgres connections of that fngate at the end: $RESET_CONNS, pool_size 2)"
    fi
    if [ "$CPU" = 1 ] && [ -s "$RES/cpu.txt" ]; then
        say ""
        say "CPU per request (us, /proc/PID/schedstat over the measured runs, the lower of the two rounds)"
        for kind in "${KINDS[@]}"; do
            for name in "${NAMES[@]}"; do
                awk -v k="$kind-$name" '$1 == k { if (!($2 in m) || $3 < m[$2]) m[$2] = $3; if (!($2 in o)) o[$2] = ++n; g[o[$2]] = $2 }
                    END { line = sprintf("  %-12s", k); t = 0
                          for (i = 1; i <= n; i++) { line = line sprintf(" %s %.1f", g[i], m[g[i]]); t += m[g[i]] }
                          print line sprintf("  total %.1f", t) }' "$RES/cpu.txt"
            done
        done
    fi
    say ""
    say "targets (issues 3 and 7)$([ "$PARTS" != list,pk,reset ] && echo "; parts run: $PARTS")"
    if has_part list; then
        printf '  %-58s %8s  %s\n' "users list: fngate >= $T_LIST_PHP x php-fpm+PDO persistent (b)" "$LIST_PHP" "$V_LIST_PHP"
        printf '  %-58s %8s  %s\n' "users list: fngate >= $T_LIST_BARE x bare libfcgi+libpq+jansson (a)" "$LIST_BARE" "$V_LIST_BARE"
    fi
    if has_part pk; then
        printf '  %-58s %8s  %s\n' "pk lookup: fngate >= $T_PK_BARE x bare (a)" "$PK_BARE" "$V_PK_BARE"
        printf '  %-58s %8s  %s\n' "pk lookup: fngate ahead of php-fpm+PDO persistent (b), > 1" "$PK_PHP" "$V_PK_PHP"
    fi
    printf '  %-58s %8s  %s\n' "Postgres connections from fngate <= pool_size ($POOL_SIZE), whole run" "$ALL_FNGATE" "$V_CONN"
    say ""
    say "checks    fngate: non-2xx + socket errors over all its wrk runs: $FNGATE_BAD; exit status on SIGTERM: $FNGATE_RC;"
    say "          instances left behind: $LEFTOVER; warn/error lines in its log: $FNGATE_ERRLINES; its Postgres"
    say "          connections after it stopped: $PG_FNGATE_AFTER"
    say "          pg_stat_activity: $N_SAMPLES samples during the runs; most PgBouncer->Postgres connections: $ALL_PHPB;"
    say "          most other client backends: $ALL_OTHER"
    say "raw       $RES"
    say "============================================================================"
} | tee "$RES/summary.txt"
