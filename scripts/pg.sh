#!/usr/bin/env bash
# Start or stop a throw-away PostgreSQL server on 127.0.0.1 for the tests.
# PostgreSQL refuses to run as root, so the cluster belongs to the postgres user.
set -euo pipefail
PG_DIR=${PG_DIR:-/tmp/darkmap-pg}
PG_PORT=${PG_PORT:-55432}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }

ensure_server() {
  if [ -z "$bindir" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get install -y -q postgresql >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }
      bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
    else
      echo "PostgreSQL server binaries not found; install the 'postgresql' package" >&2; exit 1
    fi
  fi
}

case "${1:-start}" in
  start)
    ensure_server
    if as_pg "$bindir/pg_isready -h 127.0.0.1 -p $PG_PORT -q"; then exit 0; fi
    mkdir -p "$PG_DIR"
    if [ "$(id -u)" = 0 ]; then chown postgres "$PG_DIR"; fi
    if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
      as_pg "$bindir/initdb -D $PG_DIR/data -U postgres -A trust --no-sync >/dev/null"
    fi
    as_pg "$bindir/pg_ctl -D $PG_DIR/data -l $PG_DIR/log -w -o '-h 127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off' start >/dev/null"
    echo "PostgreSQL on 127.0.0.1:$PG_PORT"
    ;;
  stop)
    ensure_server
    as_pg "$bindir/pg_ctl -D $PG_DIR/data -m fast stop" >/dev/null 2>&1 || true
    ;;
esac
