#!/usr/bin/env bash
# A PostgreSQL hot standby of the local primary, on the same machine (Debian's postgresql-common clusters).
#
#   scripts/replica.sh start    configure the primary for streaming (idempotent), create the standby with
#                               pg_basebackup -R if it does not exist, start it, wait until it streams
#   scripts/replica.sh status   the standby's state and lag
#   scripts/replica.sh stop     stop the standby (keeps it)
#   scripts/replica.sh remove   stop and delete the standby
#
# Then: DATABASE_REPLICA_URL=postgres://postgres@127.0.0.1:5433/<same database name as DATABASE_URL>.
# Settings (environment): PRIMARY_PORT (5432), REPLICA_PORT (5433), REPLICA_NAME (bihuan_replica),
# PG_VERSION (the one installed), REPLICA_NO_SYNC=1 (a throwaway standby: the copy is not flushed to disk). Run as root (or as postgres with sudo rights over pg_ctlcluster).
# The primary needs wal_level=replica (Debian's default) and max_wal_senders > 0; a primary with
# wal_level=minimal is switched and must be restarted once, which this script says and does not do itself.
set -euo pipefail

PRIMARY_PORT=${PRIMARY_PORT:-5432}
REPLICA_PORT=${REPLICA_PORT:-5433}
NAME=${REPLICA_NAME:-bihuan_replica}
VERSION=${PG_VERSION:-$(ls /etc/postgresql | sort -V | tail -1)}
PRIMARY_CONF=/etc/postgresql/$VERSION/main
DATA=/var/lib/postgresql/$VERSION/$NAME

as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }
psql_primary() { psql -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -d postgres -Atq "$@"; }
psql_replica() { psql -h 127.0.0.1 -p "$REPLICA_PORT" -U postgres -d postgres -Atq "$@"; }
exists() { pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$VERSION $NAME"; }

configure_primary() {
  local hba reload=no
  hba=$(psql_primary -c 'show hba_file')
  if ! grep -Eq '^host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
    echo "host replication all 127.0.0.1/32 trust  # streaming standby on this machine" >>"$hba"
    reload=yes
  fi
  if [ "$(psql_primary -c 'show wal_level')" = minimal ]; then
    psql_primary -c "alter system set wal_level = replica"
    echo "the primary had wal_level=minimal: set to replica; restart it (pg_ctlcluster $VERSION main restart) and run again" >&2
    exit 1
  fi
  if [ "$(psql_primary -c 'show max_wal_senders')" = 0 ]; then
    psql_primary -c "alter system set max_wal_senders = 10"
    echo "the primary had max_wal_senders=0: set to 10; restart it and run again" >&2
    exit 1
  fi
  # Enough WAL kept for a standby that was stopped for a while to catch up without a new base backup.
  if [ "$(psql_primary -c 'show wal_keep_size')" = 0 ]; then
    psql_primary -c "alter system set wal_keep_size = '128MB'"
    reload=yes
  fi
  if [ $reload = yes ]; then psql_primary -c 'select pg_reload_conf()' >/dev/null; fi
}

create() {
  echo "creating standby $VERSION/$NAME on port $REPLICA_PORT from 127.0.0.1:$PRIMARY_PORT"
  pg_createcluster "$VERSION" "$NAME" -p "$REPLICA_PORT" >/dev/null
  rm -rf "$DATA"
  install -d -o postgres -g postgres -m 700 "$DATA"
  # -R writes standby.signal and primary_conninfo; -X stream copies the WAL made during the copy.
  # REPLICA_NO_SYNC=1 (CI's throwaway standby) skips flushing the copy to disk: faster, not crash-safe.
  local nosync=()
  if [ "${REPLICA_NO_SYNC:-}" = 1 ]; then nosync=(--no-sync); fi
  as_postgres pg_basebackup -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -D "$DATA" -R -X stream -c fast "${nosync[@]}"
  # A copy of the primary's postgresql.auto.conf may carry settings for the primary only.
  : >"$DATA/postgresql.auto.conf.standby"
  grep -Ev '^(wal_keep_size)' "$DATA/postgresql.auto.conf" >"$DATA/postgresql.auto.conf.standby" || true
  mv "$DATA/postgresql.auto.conf.standby" "$DATA/postgresql.auto.conf"
  chown postgres:postgres "$DATA/postgresql.auto.conf"
  # The same clients as the primary's (the standby answers the same applications).
  install -o postgres -g postgres -m 640 "$(psql_primary -c 'show hba_file')" "/etc/postgresql/$VERSION/$NAME/pg_hba.conf"
  cat >>"/etc/postgresql/$VERSION/$NAME/postgresql.conf" <<EOF
# standby of 127.0.0.1:$PRIMARY_PORT (scripts/replica.sh)
hot_standby = on
hot_standby_feedback = on
max_standby_streaming_delay = 30s
recovery_init_sync_method = syncfs  # a fresh copy: one syncfs, not an fsync per file
EOF
}

wait_streaming() {
  for _ in $(seq 180); do
    if [ "$(psql_replica -c "select status from pg_stat_wal_receiver" 2>/dev/null)" = streaming ]; then
      echo "standby $NAME streaming on 127.0.0.1:$REPLICA_PORT"
      return 0
    fi
    sleep 0.5
  done
  echo "standby $NAME did not start streaming within 90 s" >&2
  tail -20 "/var/log/postgresql/postgresql-$VERSION-$NAME.log" >&2 || true
  return 1
}

case "${1:-}" in
  start)
    configure_primary
    exists || create
    pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$NAME" start 2>/dev/null || true
    wait_streaming
    ;;
  status)
    if ! exists; then echo "no standby $NAME"; exit 1; fi
    pg_lsclusters | awk -v n="$NAME" 'NR == 1 || $2 == n'
    psql_replica -F ' ' -c "select 'recovery=' || pg_is_in_recovery(),
      'receiver=' || coalesce((select status from pg_stat_wal_receiver), 'none'),
      'replay_lag_s=' || coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp())::int::text, '-')"
    ;;
  stop)
    if exists; then pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$NAME" stop -m fast 2>/dev/null || true; fi
    ;;
  remove)
    if exists; then pg_dropcluster --stop "$VERSION" "$NAME"; echo "standby $NAME removed"; fi
    ;;
  *)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
