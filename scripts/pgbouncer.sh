#!/usr/bin/env bash
# PgBouncer (Debian's package) in transaction mode in front of the local PostgreSQL.
#
#   scripts/pgbouncer.sh start    write the configuration and start it (as the postgres user)
#   scripts/pgbouncer.sh stop     stop it
#
# Then: DATABASE_URL=postgres://postgres@127.0.0.1:6433/<name> BIHUAN_DB_PREPARE=false
# (prepared statements and server-side cursors do not survive transaction pooling: a transaction's statements
# may go to a different server connection than the previous transaction's).
# Settings (environment): PGBOUNCER_PORT (6433), PRIMARY_PORT (5432), PGBOUNCER_POOL (20 server connections
# per database), PGBOUNCER_DIR (/tmp/bihuan-pgbouncer-$PGBOUNCER_PORT: configuration, log, pid).
# A production pooler authenticates its clients (auth_type scram-sha-256 with an auth_file or auth_query);
# this one trusts the loopback like the local PostgreSQL it fronts.
set -euo pipefail

PORT=${PGBOUNCER_PORT:-6433}
PRIMARY_PORT=${PRIMARY_PORT:-5432}
POOL=${PGBOUNCER_POOL:-20}
DIR=${PGBOUNCER_DIR:-/tmp/bihuan-pgbouncer-$PORT}

as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }

case "${1:-}" in
  start)
    command -v pgbouncer >/dev/null || { echo "pgbouncer is not installed (apt-get install pgbouncer)" >&2; exit 1; }
    install -d -o postgres -g postgres -m 700 "$DIR"
    if [ -f "$DIR/pgbouncer.pid" ] && kill -0 "$(cat "$DIR/pgbouncer.pid")" 2>/dev/null; then
      echo "pgbouncer already running on 127.0.0.1:$PORT"; exit 0
    fi
    echo '"postgres" ""' >"$DIR/userlist.txt"
    cat >"$DIR/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$PRIMARY_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir =
auth_type = trust
auth_file = $DIR/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = $POOL
max_client_conn = 1000
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
EOF
    chown postgres:postgres "$DIR"/*
    as_postgres pgbouncer -d -q "$DIR/pgbouncer.ini"
    for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p "$PORT" && break; sleep 0.1; done
    psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -Atqc 'select 1' >/dev/null
    echo "pgbouncer (transaction mode) on 127.0.0.1:$PORT in front of 127.0.0.1:$PRIMARY_PORT"
    ;;
  stop)
    if [ -f "$DIR/pgbouncer.pid" ]; then
      pid=$(cat "$DIR/pgbouncer.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$DIR/pgbouncer.pid"
    fi
    ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
