#!/bin/bash
# fngate-container: the container's entry point (PID 1) and its health check.
#
#   fngate-container          start fngate and nginx on $HOST:$PORT, wait on both
#   fngate-container health   exit 0 if nginx and fngate answer (HEALTHCHECK)
#
# PID 1 supervises both: when either exits on its own, the other is stopped
# and the container exits non-zero, so a restart policy or an orchestrator
# sees it.  SIGTERM (docker stop) drains: nginx first switches to a
# configuration that answers 503 to new requests and to /healthz (so a load
# balancer stops sending), fngate then finishes what is queued and running
# and exits, nginx stops, and the container exits 0.  SIGHUP reloads fngate
# and gives nginx the exact locations of the functions there are then.
#
# Environment: HOST (listen address, default 0.0.0.0; [::] for IPv6), PORT
# (default 8080), FNGATE_CONF (default /etc/fngate/fngate.conf),
# FNGATE_STATUS_ALLOW (addresses or CIDRs besides loopback that may read
# /_fngate/status and /_fngate/metrics, e.g. a Prometheus: "10.0.0.0/8").
#
# Runs as root (the default: nginx workers as nobody, every function as a
# dynamic uid of its own) or as any other user (`--user 65534`): then nginx,
# fngate and the functions all run as that user, and when the configuration's
# socket_dir is not writable it runs from a copy of the file whose socket_dir
# is under $TMPDIR (default /tmp).  Nothing needs root at start.
set -euo pipefail

HOST=${HOST:-0.0.0.0}
PORT=${PORT:-8080}
CONF=${FNGATE_CONF:-/etc/fngate/fngate.conf}
SHARE=/usr/local/share/fngate/nginx

say() { printf 'fngate-container: %s\n' "$*" >&2; }

# The address the health check connects to: loopback for a wildcard HOST.
probe_host() {
    case $HOST in
    0.0.0.0 | "") echo 127.0.0.1 ;;
    "[::]" | "::") echo ::1 ;;
    \[*\]) h=${HOST#[}; echo "${h%]}" ;;
    *) echo "$HOST" ;;
    esac
}

# healthz_line: the status line of GET /healthz, over bash's /dev/tcp (no
# curl in the image), or nothing.
healthz_line() {
    local line=
    {
        exec 3<>"/dev/tcp/$(probe_host)/$PORT" &&
            printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 &&
            IFS= read -r -t 5 line <&3
    } 2>/dev/null || true
    exec 3<&- 3>&- 2>/dev/null || true
    printf '%s\n' "${line%$'\r'}"
}

# health: healthy only on a 200, which nginx answers only while fngate's
# status socket does.
health() {
    local line
    line=$(healthz_line)
    case $line in
    "HTTP/1."?" 200 "*) exit 0 ;;
    esac
    printf '%s\n' "${line:-no answer on $(probe_host):$PORT}" >&2
    exit 1
}

# conf_get KEY: KEY's value in CONF's [gateway] section (last one wins).
conf_get() {
    awk -v key="$1" '
        /^[ \t]*\[/ { sec = $0; gsub(/[ \t\[\]]/, "", sec); next }
        sec == "gateway" && $0 ~ "^[ \t]*" key "[ \t]*=" {
            v = $0; sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]+;.*$/, "", v); sub(/[ \t]+$/, "", v)
            val = v
        }
        END { print val }' "$CONF"
}

listen_addr() {
    case $HOST in
    *:*) case $HOST in \[*) echo "$HOST:$PORT" ;; *) echo "[$HOST]:$PORT" ;; esac ;;
    *) echo "$HOST:$PORT" ;;
    esac
}

# write_nginx MODE: the nginx configuration, serving or draining.  Draining
# answers everything with 503 at the server level, before any location.
write_nginx() {
    local user_line="" mode_line=""
    [ "$(id -u)" -eq 0 ] && user_line="user nobody nogroup;"
    if [ "$1" = draining ]; then
        mode_line="add_header Retry-After 5 always; return 503 '{\"error\":\"service unavailable: this container is stopping\"}\\n';"
    fi
    cat >"$RUN/nginx/nginx.conf.new" <<EOF
# Written by fngate-container ($1).
$user_line
worker_processes auto;
pid nginx.pid;
error_log stderr notice;
pcre_jit on;
events { worker_connections 1024; }
http {
    access_log off;
    server_tokens off;
    client_body_temp_path client_body_temp;
    fastcgi_temp_path fastcgi_temp;
    proxy_temp_path proxy_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    server {
        listen $(listen_addr);
        server_name _;
        default_type application/json;
        $mode_line
        set \$fngate_socket_dir $SOCKDIR;
        include fngate.inc;

        # Healthy while fngate's status server answers (nginx alone is not enough).
        # (auth_request runs in the access phase, after any \`return\`: the
        # body is a file.)
        location = /healthz {
            auth_request /_fngate_health;
            default_type text/plain;
            error_page 500 502 503 504 = @unhealthy;
            alias $RUN/nginx/healthz.txt;
        }
        location = /_fngate_health {
            internal;
            fastcgi_pass unix:$SOCKDIR/status.sock;
            fastcgi_pass_request_body off;
            fastcgi_read_timeout 3s;
            fastcgi_param REQUEST_METHOD GET;
            fastcgi_param FNGATE_STATUS_PATH /_fngate/status.txt;
        }
        location @unhealthy {
            return 503 '{"error":"service unavailable: fngate is not answering"}\n';
        }
        location / {
            return 404 '{"error":"not found"}\n';
        }
    }
}
EOF
    mv "$RUN/nginx/nginx.conf.new" "$RUN/nginx/nginx.conf"
}

alive() { kill -0 "$1" 2>/dev/null; }

STOPPING=0 # 1 draining, 2 one of them died, 3 drained: nginx stopping
FNGATE_PID=
NGINX_PID=

drain() {
    [ "$STOPPING" -eq 0 ] || return 0
    STOPPING=1
    say "SIGTERM: draining (new requests and /healthz answer 503)"
    write_nginx draining
    alive "$NGINX_PID" && kill -HUP "$NGINX_PID"
    # New workers take over within milliseconds, but an old one may accept a
    # little longer: wait (2 s at most) until ten probes in a row meet the
    # drain.  An old worker's request after that still gets a 503 (the
    # include's answer for a stopping gateway), never a 404.
    local i ok=0
    for ((i = 0; i < 100 && ok < 10; i++)); do
        case $(healthz_line) in
        "HTTP/1."?" 503 "*) ok=$((ok + 1)) ;;
        *) ok=0; sleep 0.02 ;;
        esac
    done
    alive "$FNGATE_PID" && kill -TERM "$FNGATE_PID"
}

if [ "${1:-}" = health ]; then
    health
fi
[ $# -eq 0 ] || {
    say "usage: fngate-container [health]"
    exit 2
}

RUN=/run/fngate-container
if ! mkdir -p "$RUN/nginx" 2>/dev/null || [ ! -w "$RUN/nginx" ]; then
    RUN=${TMPDIR:-/tmp}/fngate-container
    mkdir -p "$RUN/nginx"
fi
[ -r "$CONF" ] || {
    say "cannot read $CONF"
    exit 1
}
SOCKDIR=$(conf_get socket_dir)
SOCKDIR=${SOCKDIR:-/run/fngate}
if [ "$(id -u)" -eq 0 ]; then
    # The image makes it 1777 for --user; as root, functions (other uids)
    # have no business writing there.
    mkdir -p "$SOCKDIR" && chmod 0755 "$SOCKDIR"
else
    # Not root (--user): nginx and fngate run as the same user, so the
    # sockets need no group (and we could not give them one we are not in);
    # socket_dir moves under $RUN if it is not writable.
    if ! mkdir -p "$SOCKDIR" 2>/dev/null || [ ! -w "$SOCKDIR" ]; then
        SOCKDIR=$RUN/sock
    fi
    awk -v sd="$SOCKDIR" '
        /^[ \t]*\[/ { sec = $0; gsub(/[ \t\[\]]/, "", sec); print; if (sec == "gateway" && !done) { print "socket_dir = " sd; done = 1 } ; next }
        sec == "gateway" && /^[ \t]*(socket_dir|socket_group)[ \t]*=/ { next }
        { print }' "$CONF" >"$RUN/fngate.conf"
    CONF=$RUN/fngate.conf
    say "running as uid $(id -u): socket_dir $SOCKDIR, no socket_group (configuration copied to $CONF)"
fi
cp "$SHARE/fngate.inc" "$RUN/nginx/fngate.inc"
# fngate.inc's fast path: an exact location per function there is now
# (README, nginx); one added later is served by the include's regex until a
# SIGHUP writes the file again and reloads nginx.
write_locations() {
    /usr/local/bin/fngate nginx --locations -c "$CONF" -o "$RUN/nginx/fngate-functions.conf"
}
write_locations || { say "fngate nginx --locations failed: every function takes the include's regex"; : >"$RUN/nginx/fngate-functions.conf"; }
echo ok >"$RUN/nginx/healthz.txt"
# /_fngate/ (status, metrics) answers loopback only; FNGATE_STATUS_ALLOW lets
# more in, e.g. a Prometheus in the cluster: "10.0.0.0/8 192.168.0.0/16".
: >"$RUN/nginx/fngate-status-allow.conf"
allow=${FNGATE_STATUS_ALLOW:-}
for net in ${allow//,/ }; do
    case $net in
    *[!0-9a-fA-F.:/]*) say "FNGATE_STATUS_ALLOW: '$net' is not an address or CIDR"; exit 1 ;;
    esac
    echo "allow $net;" >>"$RUN/nginx/fngate-status-allow.conf"
done
write_nginx serving

trap drain TERM INT
# SIGHUP: fngate reloads, and nginx gets the exact locations of the
# functions there are now.
reload() {
    alive "$FNGATE_PID" && kill -HUP "$FNGATE_PID"
    [ "$STOPPING" -eq 0 ] && write_locations && alive "$NGINX_PID" && kill -HUP "$NGINX_PID"
    return 0
}
trap reload HUP

# Exit 3: some functions are disabled (they answer 503): the others serve.
/usr/local/bin/fngate check -c "$CONF" >/dev/null || [ $? -eq 3 ]
/usr/local/bin/fngate serve -c "$CONF" &
FNGATE_PID=$!
nginx -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" -e stderr -g 'daemon off;' &
NGINX_PID=$!
say "fngate pid $FNGATE_PID, nginx pid $NGINX_PID, listening on $(listen_addr)"

# wait returns early for every trapped signal (then no pid is reported):
# loop until both have exited.
status=0
fngate_rc=
nginx_rc=
while [ -z "$fngate_rc" ] || [ -z "$nginx_rc" ]; do
    pids=()
    [ -n "$fngate_rc" ] || pids+=("$FNGATE_PID")
    [ -n "$nginx_rc" ] || pids+=("$NGINX_PID")
    done_pid=
    set +e
    wait -n -p done_pid "${pids[@]}"
    rc=$?
    set -e
    [ -n "${done_pid:-}" ] || continue
    if [ "$done_pid" = "$FNGATE_PID" ]; then
        fngate_rc=$rc
        what=fngate
    else
        nginx_rc=$rc
        what=nginx
    fi
    if [ "$STOPPING" -eq 0 ]; then
        # One of them died on its own: stop the other, exit non-zero.
        STOPPING=2
        status=1
        say "$what exited on its own (status $rc): stopping the container"
        if [ "$what" = fngate ]; then
            kill -QUIT "$NGINX_PID" 2>/dev/null || true
        else
            kill -TERM "$FNGATE_PID" 2>/dev/null || true
        fi
    elif [ "$STOPPING" -eq 1 ] && [ "$what" = fngate ]; then
        [ "$rc" -eq 0 ] || status=$rc
        say "fngate drained (status $rc): stopping nginx"
        STOPPING=3
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
    elif [ "$STOPPING" -eq 1 ]; then
        say "nginx exited during the drain (status $rc)"
        status=1
    fi
done
say "stopped (exit $status)"
exit "$status"
