#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the test suite and print its URL.
#
# Usage: export TEST_DATABASE_URL=$(scripts/start-postgres.sh [DIR])
#   DIR          cluster directory (default /tmp/ird-pg); data in DIR/data, log in DIR/postgres.log
#   PGPORT_TEST  TCP port on 127.0.0.1 (default 55432)
#   PG_DURABLE=1 keep fsync and synchronous commits on, as in production (for benchmarks)
#
# Idempotent: installs Debian's `postgresql` only when no server binaries are found, initialises
# the cluster only once, and when the cluster already runs just (re)checks the role and prints the
# URL. Only the URL goes to stdout, so the command substitution above gets nothing else; all logs go
# to stderr. The cluster trusts every local connection and runs with fsync off: it is for tests
# only and must never hold data anyone cares about.
set -euo pipefail

# Everything below logs to stderr; fd 3 keeps the real stdout for the one line callers want.
exec 3>&1 1>&2

dir=${1:-/tmp/ird-pg}
port=${PGPORT_TEST:-55432}
role=ird
database=ird
url="postgres://${role}@127.0.0.1:${port}/${database}"

log() { printf 'start-postgres: %s\n' "$*" >&2; }

# Prefer Debian's versioned directory: a pg_ctl elsewhere on PATH (e.g. /usr/local/bin) may
# belong to another version than the server binaries it would start.
find_bindir() {
  local d
  # Newest version first; the version directories are plain numbers, so word splitting is safe.
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
    if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
      printf '%s\n' "$d"
      return 0
    fi
  done
  return 1
}

if ! bindir=$(find_bindir); then
  log "no PostgreSQL server found; installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >&2
  bindir=$(find_bindir) || { log "postgresql installed but no initdb found under /usr/lib/postgresql"; exit 1; }
fi
log "using $bindir"

# PostgreSQL refuses to run as root, so the cluster belongs to the `postgres` OS user.
if ! id -u postgres >/dev/null 2>&1; then
  log "creating OS user postgres"
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

mkdir -p "$dir"
chown postgres:postgres "$dir" 2>/dev/null || true
chmod 700 "$dir"
data="$dir/data"
logfile="$dir/postgres.log"
# The postgres user may not be allowed into the caller's working directory.
cd "$dir"

if [[ ! -f "$data/PG_VERSION" ]]; then
  log "initialising cluster in $data"
  # Trust for local connections only: the server listens on 127.0.0.1 and a socket in $dir alone.
  as_postgres "$bindir/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=trust \
    --encoding=UTF8 --locale=C.UTF-8 >&2
fi

if as_postgres "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  log "cluster in $data is already running"
else
  log "starting cluster on 127.0.0.1:$port"
  # fsync, synchronous_commit and full_page_writes off: a crash may lose the data, which is fine
  # for throwaway test databases and makes CREATE DATABASE per test much faster.
  # 3>&- : the server must not inherit the caller's stdout, or `$(start-postgres.sh)` would wait
  # for the server to exit before returning.
  durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  [[ ${PG_DURABLE:-0} == 1 ]] && durability=""
  if ! as_postgres "$bindir/pg_ctl" -D "$data" -l "$logfile" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir $durability -c max_connections=200" \
    </dev/null >&2 3>&-; then
    log "pg_ctl start failed; last lines of $logfile:"
    tail -n 30 "$logfile" >&2 || true
    exit 1
  fi
fi

for _ in $(seq 1 60); do
  if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    break
  fi
  sleep 0.5
done
if ! "$bindir/pg_isready" -h 127.0.0.1 -p "$port" >&2; then
  log "server on 127.0.0.1:$port did not become ready; see $logfile"
  exit 1
fi

psql_admin() {
  "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}

# CREATEDB because the test suite creates (and drops) one database per test case.
if [[ $(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$role'") != 1 ]]; then
  log "creating role $role"
  psql_admin -c "CREATE ROLE $role LOGIN CREATEDB"
else
  psql_admin -c "ALTER ROLE $role LOGIN CREATEDB"
fi
if [[ $(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'") != 1 ]]; then
  log "creating database $database"
  psql_admin -c "CREATE DATABASE $database OWNER $role"
fi

printf '%s\n' "$url" >&3
