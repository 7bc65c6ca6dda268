#!/bin/sh
# Container entry point: start nginx (daemonised, so it ends up a child of
# PID 1) on 0.0.0.0:$PORT, then become fngate.  fngate as PID 1 reaps every
# process in the container and turns `docker stop` (SIGTERM) into a drain.
set -eu
PORT=${PORT:-8080}
CONF=${FNGATE_CONF:-/etc/fngate/fngate.conf}
RUN=/run/fngate-nginx
mkdir -p "$RUN" /run/fngate
cp /usr/local/share/fngate/nginx/fngate.inc "$RUN/"
# nginx.conf already looks for the sockets in /run/fngate, the socket_dir of the
# image's fngate.conf: only the listen address changes.
sed -e "s|listen 127.0.0.1:8080;|listen 0.0.0.0:$PORT;|" \
    /usr/local/share/fngate/nginx/nginx.conf > "$RUN/nginx.conf"
grep -q "listen 0.0.0.0:$PORT;" "$RUN/nginx.conf" \
    || { echo "fngate-container: no 'listen 127.0.0.1:8080;' in nginx.conf to rewrite" >&2; exit 1; }
nginx -p "$RUN" -c "$RUN/nginx.conf" -e stderr
exec /usr/local/bin/fngate serve -c "$CONF"
