# fngate in a container: nginx in front, fngate as PID 1 (it reaps every child
# and drains on `docker stop`), the example functions, your own mounted over
# /srv/fngate/functions.
#
#   docker build -t fngate .
#   docker run -p 8080:8080 -e DATABASE_URL=postgresql://user:pw@db/app \
#       -v "$PWD/functions:/srv/fngate/functions" fngate
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential autoconf automake libtool pkg-config \
        libfcgi-dev libjansson-dev check libevent-dev libinih-dev libpq-dev libseccomp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN (make distclean >/dev/null 2>&1 || true) \
 && autoreconf -fi && ./configure --prefix=/usr/local --sysconfdir=/etc \
 && make -j"$(nproc)" && make install \
 && for f in hello echo users; do \
        install -D -m 0755 "functions/$f/handler" "/srv/fngate/functions/$f/handler"; \
    done \
 && install -m 0644 functions/users/schema.sql /srv/fngate/functions/users/schema.sql

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        nginx libfcgi0ldbl libjansson4 libevent-core-2.1-7 libinih1 libpq5 libseccomp2 ca-certificates procps \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/*
COPY --from=build /usr/local /usr/local
COPY --from=build /srv/fngate /srv/fngate
COPY nginx/container-entrypoint.sh /usr/local/bin/fngate-container
RUN mkdir -p /etc/fngate \
 && printf '%s\n' '[gateway]' 'functions_dir = /srv/fngate/functions' \
        'socket_dir = /run/fngate' 'socket_mode = 0660' 'socket_group = nogroup' \
        '[defaults]' > /etc/fngate/fngate.conf
ENV PORT=8080
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/fngate-container"]
