#!/usr/bin/env bash
# What one PostgreSQL carries for a school authority: 5,000 users with sessions, desktops and a
# month of audit events, then the portal's own query mix (session peeks of the desktop-origin
# sweep, input heartbeats, starts and stops) at 500, 1,500 and 3,000 active desktops, open loop.
# The database is a cluster of its own (/tmp/ird-pg-bench, port 55433) with fsync and
# synchronous commits ON, as in production, created fresh for each run; nothing is pinned, so
# the bench client and PostgreSQL share the machine's cores as a portal and its database on
# one small server would. Prints Markdown; BENCHMARKS.md records a run.
# Knobs: BENCH_USERS (5000), BENCH_ACTIVE (500,1500,3000), BENCH_SECS (10), BENCH_AUDIT_ROWS (200000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
url=$(PG_DURABLE=1 PGPORT_TEST=55433 scripts/start-postgres.sh /tmp/ird-pg-bench)
admin="postgres://postgres@127.0.0.1:55433/postgres"
psql -X -q "$admin" -c "DROP DATABASE IF EXISTS ird_bench" -c "CREATE DATABASE ird_bench OWNER ird"
echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), PostgreSQL $(psql -X -tA "$admin" -c 'SHOW server_version'), fsync $(psql -X -tA "$admin" -c 'SHOW fsync')"
echo
BENCH_DATABASE_URL="${url%/*}/ird_bench" cargo bench -q -p portal-store --bench capacity --locked
