# fngate in a container: nginx in front, fngate behind it, the example
# functions; mount your own over /srv/fngate/functions.
#
#   docker build -t fngate .            (podman: podman build --format docker,
#                                        which keeps the HEALTHCHECK)
#   docker run -p 8080:8080 -e DATABASE_URL=postgresql://user:pw@db/app \
#       -v "$PWD/functions:/srv/fngate/functions" fngate
#
# PID 1 is fngate-container (nginx/container-entrypoint.sh): it runs nginx and
# fngate, exits non-zero when either dies, and on `docker stop` drains (503
# for new requests and /healthz, queued and running requests finish) and
# exits 0.  HOST and PORT choose the listen address.  --user works too.

# --- build: the tree's own autotools build, installed stripped into /out ---
# Left out of /out: what only a function's build or a host install needs (the
# SDK, man pages, the systemd unit, the host's starter config).
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential autoconf automake libtool pkg-config \
        libfcgi-dev libjansson-dev check libevent-dev libinih-dev libpq-dev libseccomp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN (make distclean >/dev/null 2>&1 || true) \
 && autoreconf -fi \
 && ./configure --prefix=/usr/local --sysconfdir=/etc --localstatedir=/var \
 && make -j"$(nproc)" \
 && make install-strip DESTDIR=/out \
 && for f in hello echo users; do \
        install -D -s -m 0755 "functions/$f/handler" "/out/srv/fngate/functions/$f/handler"; \
        install -s -m 0644 "functions/$f/handler.so" "/out/srv/fngate/functions/$f/handler.so"; \
    done \
 && install -m 0644 functions/users/schema.sql /out/srv/fngate/functions/users/schema.sql \
 && install -D -m 0755 nginx/container-entrypoint.sh /out/usr/local/bin/fngate-container \
 && rm -rf /out/usr/local/include /out/usr/local/lib /out/usr/local/share/man \
        /out/etc/fngate /out/var \
 && mkdir -p /out/etc/fngate \
 && printf '%s\n' '# fngate.conf of the container image: see fngate.conf(5).' \
        '[gateway]' 'functions_dir = /srv/fngate/functions' 'socket_dir = /run/fngate' \
        'socket_mode = 0660' 'socket_group = nogroup' '' '[defaults]' \
        > /out/etc/fngate/fngate.conf

# --- the image: nginx, the libraries fngate links, nothing else -------------
# socket_dir and the entry point's run folder are writable by any --user.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        nginx libfcgi0ldbl libjansson4 libevent-core-2.1-7 libinih1 libpq5 libseccomp2 \
        ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log \
        /usr/share/doc/* /usr/share/man/* /usr/share/locale/* /usr/share/info/* \
        /etc/nginx/sites-enabled/* \
 && install -d -m 1777 /run/fngate /run/fngate-container
COPY --from=build /out/ /
ENV HOST=0.0.0.0 PORT=8080
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/fngate-container", "health"]
ENTRYPOINT ["/usr/local/bin/fngate-container"]
