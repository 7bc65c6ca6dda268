# Helpers shared by the benchmarks (bench_core.sh, bench_db.sh,
# bench_sandbox.sh), sourced first thing: the preamble they all have (say and
# die, --quick/--no-build/--keep/--help, the missing-tools report, the build,
# the run directory) and the helpers of the runs, which use what each script
# sets afterwards (RUN, RES, ROOT, PORT, WRK_T, WRK_C, IS_ROOT, PHP_FPM,
# NGINX).  One copy, so that a fix to the preamble reaches every benchmark.
# Bash, like them.
# shellcheck shell=bash
# The variables set here are read by the scripts that source this file:
# shellcheck disable=SC2034

BENCH_NAME=${0##*/}

say() { printf '%s\n' "$*"; }
die() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }

# --- arguments -------------------------------------------------------------------

QUICK=0
BUILD=1
KEEP=0

# common_arg ARG: the arguments every benchmark takes (--quick, --no-build,
# --keep, --help, which prints the script's header); 1 for any other.
common_arg() {
    case "$1" in
        --quick) QUICK=1 ;;
        --no-build) BUILD=0 ;;
        --keep) KEEP=1 ;;
        -h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) return 1 ;;
    esac
}

# bad_arg ARG: the error for an argument no one took.
bad_arg() {
    echo "$BENCH_NAME: unknown argument: $1 (try --help)" >&2
    exit 2
}

# --- dependencies ----------------------------------------------------------------

MISSING_PKGS=()
# need_cmd CMD PKG: PKG is needed unless CMD is on the PATH.
need_cmd() { command -v "$1" >/dev/null 2>&1 || MISSING_PKGS+=("$2"); }
# need_file FILE PKG: PKG is needed unless FILE exists.
need_file() { [ -e "$1" ] || MISSING_PKGS+=("$2"); }
# need_report: with anything missing, the apt-get line that installs it, and
# exit 1.  The benchmarks never install anything themselves.
need_report() {
    [ "${#MISSING_PKGS[@]}" -gt 0 ] || return 0
    say "$BENCH_NAME: missing tools; install them with:"
    say "    apt-get install -y ${MISSING_PKGS[*]}"
    exit 1
}

# need_stack_tools: what the yardstick stacks (nginx, spawn-fcgi and libfcgi,
# php-fpm, wrk) and their set-up need.
need_stack_tools() {
    need_cmd wrk wrk
    need_cmd nginx nginx
    need_cmd php-fpm8.2 php8.2-fpm
    need_cmd spawn-fcgi spawn-fcgi
    need_cmd cc gcc
    need_cmd curl curl
    need_cmd make make
    need_cmd pgrep procps
    need_cmd awk mawk
    need_file /usr/include/fcgiapp.h libfcgi-dev
}

# php_opcache: OPCACHE=1 when $PHP_FPM has opcache, else 0 and a note.  (The
# module list is read whole before grep: with pipefail, grep -q quitting
# early could make php die of SIGPIPE.)
php_opcache() {
    local mods
    mods=$("$PHP_FPM" -m 2>/dev/null || true)
    OPCACHE=0
    if grep -qi '^Zend OPcache$' <<<"$mods"; then
        OPCACHE=1
    else
        say "note: PHP opcache is not available (apt-get install -y php8.2-opcache); php runs without it"
    fi
}

# --- build and run directory -----------------------------------------------------

# build_tree: make -C $ROOT -j2 all check TESTS= (its log in $RES/make.log), unless --no-build.
build_tree() {
    [ "$BUILD" = 1 ] || return 0
    [ -f "$ROOT/Makefile" ] || die "no Makefile in $ROOT: run ./bootstrap check (or autoreconf -i && ./configure) first"
    # check TESTS= also builds the test functions (bench_core's testfn), running no test
    say "building: make -C $ROOT -j2 all check TESTS="
    if ! make -C "$ROOT" -j2 all check TESTS= >"$RES/make.log" 2>&1; then
        tail -20 "$RES/make.log" >&2
        die "make failed (full log: $RES/make.log); --no-build benchmarks the binaries already built"
    fi
}

# make_run_dir PREFIX: RUN, a new mode 0755 directory $TMPDIR/PREFIX.XXXXXX.
# nobody must reach the sockets and binaries in it, so every directory above
# it has to be traversable by others (none of them is changed).
make_run_dir() {
    local d perm
    RUN=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || die "mktemp failed"
    chmod 755 "$RUN"
    d=$(dirname "$RUN")
    while [ "$d" != / ]; do
        perm=$(stat -c %A "$d")
        case "$perm" in
            *x | *t) ;;
            *)
                rmdir "$RUN"
                die "$d is not traversable by other users ($perm); set TMPDIR to a directory that is"
                ;;
        esac
        d=$(dirname "$d")
    done
}

# stop_pid PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL.  PID is a
# child of this shell, so it is reaped too.
stop_pid() {
    local pid=$1 secs=$2 i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < secs * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "warning: pid $pid did not stop within ${secs}s of SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}

# Pids of processes whose executable lives under the run directory: fngate's
# instances and the spawn-fcgi children.  Nothing else can run from there.
pids_under_run() {
    local p exe
    for p in /proc/[0-9]*; do
        exe=$(readlink "$p/exe" 2>/dev/null) || continue
        case "$exe" in "$RUN"/*) printf '%s\n' "${p#/proc/}" ;; esac
    done
}

# A free TCP port on 127.0.0.1 (nothing answers a connect to it).
free_port() {
    local port i
    for ((i = 0; i < 100; i++)); do
        port=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    return 1
}

# wait_until SECONDS COMMAND...: polls COMMAND every 20 ms.
wait_until() {
    local secs=$1 i
    shift
    for ((i = 0; i < secs * 50; i++)); do
        "$@" && return 0
        sleep 0.02
    done
    return 1
}

# Children of PID whose executable is EXE.
children_with_exe() {
    local parent=$1 exe=$2 c n=0
    for c in $(pgrep -P "$parent" 2>/dev/null); do
        [ "$(readlink "/proc/$c/exe" 2>/dev/null)" = "$exe" ] && n=$((n + 1))
    done
    printf '%s\n' "$n"
}

# fn_instances PARENT NAME HANDLER: instances of function NAME among PARENT's
# children: those running HANDLER (exec'd), plus the spare processes that
# took NAME on (fngate-spare, its comm set to the function's name).
fn_instances() {
    local parent=$1 name=$2 exe=$3 c n=0 e
    for c in $(pgrep -P "$parent" 2>/dev/null); do
        e=$(readlink "/proc/$c/exe" 2>/dev/null)
        if [ "$e" = "$exe" ]; then
            n=$((n + 1))
        elif [ "${e##*/}" = fngate-spare ] && [ "$(cat "/proc/$c/comm" 2>/dev/null)" = "${name:0:15}" ]; then
            n=$((n + 1))
        fi
    done
    printf '%s\n' "$n"
}

# Worker processes of php-fpm pool POOL (children of the master).
php_workers() {
    local pool=$1 c n=0
    for c in $(pgrep -P "$PHP_PID" 2>/dev/null); do
        tr '\0' ' ' 2>/dev/null <"/proc/$c/cmdline" | grep -q "pool $pool\b" && n=$((n + 1))
    done
    printf '%s\n' "$n"
}

# parse_wrk FILE -> "req/s p50_ms p99_ms requests non2xx socket_errors"
parse_wrk() {
    awk '
    function ms(v) {
        if (v ~ /us$/) return v / 1000
        if (v ~ /ms$/) return v + 0
        if (v ~ /m$/) return v * 60000
        if (v ~ /s$/) return v * 1000
        return v + 0
    }
    /^Requests\/sec:/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    / requests in / { reqs = $1 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { gsub(/,/, ""); errs = $4 + $6 + $8 + $10 }
    END {
        if (rps == "") { print "0 nan nan 0 0 0"; exit }
        printf "%.0f %.3f %.3f %d %d %d\n", rps, p50, p99, reqs, non2xx + 0, errs + 0
    }' "$1"
}

# run_wrk PATH SECONDS OUTFILE [wrk args...]: wrk in the background so that
# Ctrl-C and SIGTERM reach the trap at once.
# shellcheck disable=SC2153 # PORT is the sourcing script's
run_wrk() {
    local path=$1 secs=$2 out=$3
    shift 3
    wrk -t"$WRK_T" -c"$WRK_C" -d"${secs}s" "$@" "http://127.0.0.1:$PORT$path" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID"
    local rc=$?
    WRK_PID=""
    return $rc
}

# cpu_busy SECONDS: percentage of all CPUs busy over the next SECONDS (/proc/stat).
cpu_busy() {
    local a b
    a=$(awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $5 + $6 }' /proc/stat)
    sleep "$1"
    b=$(awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $5 + $6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
        dt = y[1] - x[1]; di = y[2] - x[2]; v = 0; if (dt > 0) v = 100 * (dt - di) / dt; printf "%.0f\n", v }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "" || a == "nan") print "nan"; else printf "%.2f\n", a / b }'; }

verdict() { # verdict VALUE OP LIMIT
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (v == "nan" || v == "") { print "MISS"; exit }
        ok = (op == ">=") ? (v + 0 >= l + 0) : (op == ">") ? (v + 0 > l + 0) : (op == "<=") ? (v + 0 <= l + 0) : (v + 0 == l + 0)
        print ok ? "PASS" : "MISS" }'
}

# --- cleanup -----------------------------------------------------------------------

CLEANED=0
WRK_PID=""
PHP_PID=""
# cleanup_once: 1 when the script's cleanup has run already; else marks it
# run, ignores further Ctrl-C and stops a wrk still running.
cleanup_once() {
    [ "$CLEANED" = 1 ] && return 1
    CLEANED=1
    trap '' INT TERM
    [ -n "$WRK_PID" ] && { kill -TERM "$WRK_PID" 2>/dev/null; wait "$WRK_PID" 2>/dev/null; }
    return 0
}

# trap_cleanup: the script's cleanup runs on exit, Ctrl-C and SIGTERM.
trap_cleanup() {
    trap cleanup EXIT
    trap 'say "interrupted; stopping everything this script started" >&2; cleanup; exit 130' INT
    trap 'cleanup; exit 143' TERM
}

# remove_run_dir: RUN goes, unless --keep.
remove_run_dir() {
    if [ "$KEEP" = 1 ]; then
        say "run directory kept: $RUN"
    else
        rm -rf "$RUN"
    fi
}

# stop_php: php-fpm (PHP_PID) and any worker it leaves behind.
stop_php() {
    local children p
    [ -n "$PHP_PID" ] || return 0
    children=$(pgrep -P "$PHP_PID" 2>/dev/null)
    stop_pid "$PHP_PID" 5
    for p in $children; do kill -KILL "$p" 2>/dev/null; done
}

# --- the stack ---------------------------------------------------------------------

# fastcgi_params_bench: the FastCGI parameters nginx sends the yardsticks'
# back ends (what Debian's fastcgi_params sends, spelled out), on stdout.
fastcgi_params_bench() {
    cat <<'PARAMS'
fastcgi_param QUERY_STRING $query_string;
fastcgi_param REQUEST_METHOD $request_method;
fastcgi_param CONTENT_TYPE $content_type;
fastcgi_param CONTENT_LENGTH $content_length;
fastcgi_param REQUEST_URI $request_uri;
fastcgi_param DOCUMENT_URI $document_uri;
fastcgi_param DOCUMENT_ROOT $document_root;
fastcgi_param SERVER_PROTOCOL $server_protocol;
fastcgi_param REQUEST_SCHEME $scheme;
fastcgi_param HTTPS $https if_not_empty;
fastcgi_param GATEWAY_INTERFACE CGI/1.1;
fastcgi_param SERVER_SOFTWARE nginx/$nginx_version;
fastcgi_param REMOTE_ADDR $remote_addr;
fastcgi_param REMOTE_PORT $remote_port;
fastcgi_param SERVER_ADDR $server_addr;
fastcgi_param SERVER_PORT $server_port;
fastcgi_param SERVER_NAME $server_name;
fastcgi_param HTTP_PROXY "";
PARAMS
}

# nginx_conf_head WORKERS USER [DIRECTIVE...]: nginx.conf up to its first
# server block (WORKERS worker processes, `user USER;` unless USER is empty,
# no access log, temp paths in the prefix, and each DIRECTIVE in the main
# context), on stdout; the script's http directives, server blocks and the
# closing brace follow.
nginx_conf_head() {
    local d workers=$1 user=$2
    shift 2
    printf '%s\n' "# written by tests/bench/$BENCH_NAME"
    [ -n "$user" ] && printf 'user %s;\n' "$user"
    printf 'worker_processes %s;\n' "$workers"
    for d in "$@"; do printf '%s\n' "$d"; done
    cat <<HEAD
pid nginx.pid;
error_log stderr notice;
events { worker_connections 1024; }
http {
    access_log off;
    server_tokens off;
    client_body_temp_path client_body_temp;
    fastcgi_temp_path fastcgi_temp;
    proxy_temp_path proxy_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    keepalive_timeout 65s;

HEAD
}

# fngate_locations FNGATE CONF NGINX_DIR [FILE]: the exact locations
# fngate.inc picks up, NGINX_DIR/FILE (default fngate-functions.conf; any
# fngate-functions*.conf), made from CONF's functions by the command the
# README has users run, so that a bench measures what they get.  Every
# server block including fngate.inc gets every such file: a second gateway
# behind the same nginx needs a file of its own and names of its own.
fngate_locations() {
    "$1" nginx --locations -c "$2" -o "$3/${4:-fngate-functions.conf}" \
        || die "fngate nginx --locations -c $2 failed"
}

# php_conf_head: php-fpm.conf's [global] section (in the foreground, its pid
# and log in $RUN/php), on stdout; the script's pools follow.
php_conf_head() {
    cat <<HEAD
; written by tests/bench/$BENCH_NAME
[global]
pid = $RUN/php/php-fpm.pid
error_log = $RUN/php/php-fpm.log
log_level = notice
daemonize = no

HEAD
}

# machine_info: MACHINE, DATE, LOAD_START and BUSY_START (CPUs busy over
# 2 s) for the report's header.
machine_info() {
    local cpu
    cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    MACHINE="$(nproc) CPUs, ${cpu:-unknown}, Linux $(uname -r)"
    [ -f /etc/debian_version ] && MACHINE="$MACHINE, Debian $(cat /etc/debian_version)"
    DATE=$(date '+%Y-%m-%d %H:%M:%S %Z')
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    BUSY_START=$(cpu_busy 2)
}

# start_php SOCKET...: php-fpm on $RUN/php/php-fpm.conf (opcache when there
# is one, -R as root) as PHP_PID, once each SOCKET exists.
start_php() {
    local args=(-F -y "$RUN/php/php-fpm.conf")
    [ "$OPCACHE" = 1 ] && args+=(-d opcache.enable=1)
    [ "$IS_ROOT" = 1 ] && args+=(-R)
    "$PHP_FPM" -t "${args[@]}" >"$RES/php-fpm-test.log" 2>&1 \
        || { cat "$RES/php-fpm-test.log" >&2; die "php-fpm refuses the configuration"; }
    "$PHP_FPM" "${args[@]}" >>"$RUN/php/php-fpm.log" 2>&1 &
    PHP_PID=$!
    PHP_SOCKETS=("$@")
    wait_until 10 php_ready
    kill -0 "$PHP_PID" 2>/dev/null || { cat "$RUN/php/php-fpm.log" >&2; die "php-fpm exited at start"; }
}
php_ready() {
    local s
    kill -0 "$PHP_PID" 2>/dev/null || return 0
    for s in "${PHP_SOCKETS[@]}"; do [ -S "$s" ] || return 1; done
}

# start_nginx: nginx on $RUN/nginx/nginx.conf as NGINX_PID, once
# 127.0.0.1:$PORT/healthz answers.
start_nginx() {
    "$NGINX" -p "$RUN/nginx/" -c "$RUN/nginx/nginx.conf" -e stderr -g 'daemon off;' >"$RUN/nginx/error.log" 2>&1 &
    NGINX_PID=$!
    wait_until 10 nginx_ready
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$RUN/nginx/error.log" >&2; die "nginx exited at start"; }
}
nginx_ready() {
    kill -0 "$NGINX_PID" 2>/dev/null || return 0
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz" 2>/dev/null)" = 200 ]
}

# stop_fngate: stops FNGATE_PID as an operator would (SIGTERM, 15 s) and
# sets FNGATE_RC (its exit status, or what happened instead), LEFTOVER
# (processes still running from $RUN, the yardstick's BARE_PIDS aside) and
# FNGATE_ERRLINES (warn and error lines in its log).
stop_fngate() {
    local i
    FNGATE_RC=""
    if kill -0 "$FNGATE_PID" 2>/dev/null; then
        kill -TERM "$FNGATE_PID"
        for ((i = 0; i < 300; i++)); do kill -0 "$FNGATE_PID" 2>/dev/null || break; sleep 0.05; done
        if kill -0 "$FNGATE_PID" 2>/dev/null; then
            kill -KILL "$FNGATE_PID"; FNGATE_RC="killed (did not stop within 15 s)"
            wait "$FNGATE_PID" 2>/dev/null
        else
            wait "$FNGATE_PID"; FNGATE_RC=$?
        fi
    else
        wait "$FNGATE_PID"; FNGATE_RC="had already exited with $?"
    fi
    FNGATE_PID=""
    # shellcheck disable=SC2086 # BARE_PIDS is a list
    LEFTOVER=$(pids_under_run | grep -vxF -f <(printf '%s\n' $BARE_PIDS) | wc -l)
    FNGATE_ERRLINES=$(grep -ciE ' (warn|error) ' "$RUN/fngate.log")
}
