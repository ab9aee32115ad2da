#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster in a new temporary folder and prints its URL and folder:
#   eval "$(scripts/pg-temp.sh)"   # sets PG_URL and PG_DIR;  stop: scripts/pg-temp.sh stop "$PG_DIR"
set -euo pipefail
BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)}"
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "${1:-}" = "stop" ]; then
  as_pg "$BIN/pg_ctl" -D "$2/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$2"
  exit 0
fi
DIR="$(mktemp -d)"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DIR"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
as_pg "$BIN/initdb" -D "$DIR/data" -U postgres -A trust --no-sync -E UTF8 --locale=C >/dev/null
as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w start \
  -o "-k $DIR -p $PORT -h 127.0.0.1 -c max_connections=200 ${PG_EXTRA_OPTS:-}" >/dev/null
echo "PG_URL=postgres://postgres@127.0.0.1:$PORT/postgres PG_DIR=$DIR"
