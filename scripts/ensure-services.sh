#!/usr/bin/env bash
# Make sure PostgreSQL (and Redis, for the cross-process tests) answer on loopback; start them if not.
# Tests never fall back to SQLite: if no PostgreSQL can be started this exits non-zero.
set -euo pipefail

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}

pg_up() { pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; }

if ! pg_up; then
  echo "PostgreSQL is not answering on $PGHOST:$PGPORT; starting it" >&2
  if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi

if ! pg_up; then
  # No packaged cluster: a throwaway one with trust auth, owned by a non-root user as initdb requires.
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$bindir" ] || { echo "no PostgreSQL server binaries found; install postgresql" >&2; exit 1; }
  data=${TMPDIR:-/tmp}/billing-pg
  owner=postgres
  id "$owner" >/dev/null 2>&1 || owner=$(id -un)
  if [ ! -s "$data/PG_VERSION" ]; then
    mkdir -p "$data" && chown "$owner" "$data"
    runuser -u "$owner" -- "$bindir/initdb" -D "$data" -U postgres --auth=trust >/dev/null
  fi
  runuser -u "$owner" -- "$bindir/pg_ctl" -D "$data" -o "-p $PGPORT -k /tmp -h $PGHOST" -l "$data/log" -w start
fi
pg_up || { echo "PostgreSQL could not be started on $PGHOST:$PGPORT" >&2; exit 1; }

if command -v redis-cli >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "Redis is not answering on 127.0.0.1:6379; starting it" >&2
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
