# The portal itself in a container, FROM scratch: a statically linked (musl) release binary,
# the CA bundle for IServ's TLS certificate, and the directories it writes. Nothing is pulled
# from a registry.
#
# Build it with scripts/build-portal-image.sh, which compiles the binary and prepares the
# build context (binary, CA bundle, rootfs/ with /data and /tmp owned by the portal's user):
#     scripts/build-portal-image.sh            # → iserv-remote-desktop:latest
# Run it with deploy/compose.yaml (Docker socket, desktop network, .env) — see
# docs/deployment.en.md.
FROM scratch

# scratch has no shell to mkdir or chown with: rootfs/ holds data/ and tmp/, made owned by
# the portal's user 10001 here; etc/ a passwd/group entry for it (root-owned, read-only).
COPY --chown=10001:10001 rootfs/ /
COPY etc/ /etc/
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY iserv-remote-desktop /usr/local/bin/iserv-remote-desktop

# The portal runs in the host's network namespace (compose: `network_mode: host`), so it
# can reach the desktops on their isolated network; it then listens on the host's loopback,
# out of the desktops' reach, behind the TLS proxy. Metrics likewise.
ENV IRD_LISTEN=127.0.0.1:5006 \
    IRD_DATA_DIR=/data \
    IRD_METRICS__LISTEN=127.0.0.1:9020 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    TMPDIR=/tmp \
    HOME=/data

# Not root. Docker socket access comes from the socket's group, added at run time
# (`group_add` in compose, `--group-add` with docker run).
USER 10001:10001
WORKDIR /data
# The SQLite database, and the first admin password when logs are JSON.
VOLUME /data
EXPOSE 5006 9020

# No curl in scratch: the binary asks its own /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/iserv-remote-desktop", "healthcheck"]

# The portal handles SIGTERM itself (it is PID 1), so `docker stop` shuts it down cleanly.
ENTRYPOINT ["/usr/local/bin/iserv-remote-desktop"]
CMD ["serve"]
