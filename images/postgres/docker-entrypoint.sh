#!/bin/sh
# The stand-in's entrypoint: only what the official image documents and the compose files use
# (https://hub.docker.com/_/postgres, "Environment Variables", "Docker Secrets",
# "Initialization scripts"):
#   - started as root, it makes PGDATA postgres' own and runs as postgres (the official image
#     does the same with su-exec/gosu); started as another user, it runs as that user;
#   - on the first start of an empty PGDATA: initdb with the superuser POSTGRES_USER (postgres)
#     whose password is the first line of POSTGRES_PASSWORD_FILE (or POSTGRES_PASSWORD), TCP
#     logins by scram-sha-256, POSTGRES_DB created, then every file of
#     /docker-entrypoint-initdb.d in name order against a server listening on the socket only
#     (*.sh executed when executable and sourced otherwise, *.sql through psql);
#   - then `exec "$@"` (postgres).
set -eu
if [ "${1:-}" = postgres ] && [ "$(id -u)" = 0 ]; then
  install -d -o postgres -g postgres -m 0700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  POSTGRES_USER=${POSTGRES_USER:-postgres}
  POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
  export POSTGRES_USER POSTGRES_DB
  pwfile=''
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    [ -r "$POSTGRES_PASSWORD_FILE" ] || { echo "docker-entrypoint: cannot read POSTGRES_PASSWORD_FILE ($POSTGRES_PASSWORD_FILE)" >&2; exit 1; }
    pwfile=$POSTGRES_PASSWORD_FILE
  elif [ -n "${POSTGRES_PASSWORD:-}" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  else
    echo "docker-entrypoint: the superuser needs a password: set POSTGRES_PASSWORD_FILE (or POSTGRES_PASSWORD)" >&2
    exit 1
  fi
  install -d -m 0700 "$PGDATA"
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" -D "$PGDATA" >/dev/null
  [ "$pwfile" = "${POSTGRES_PASSWORD_FILE:-}" ] || rm -f "$pwfile"
  printf '\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -q --username "$POSTGRES_USER" --dbname postgres -c "CREATE DATABASE \"$POSTGRES_DB\""
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case $f in
      *.sh) if [ -x "$f" ]; then echo "docker-entrypoint: running $f"; "$f"; else echo "docker-entrypoint: sourcing $f"; . "$f"; fi ;;
      *.sql) echo "docker-entrypoint: running $f"; psql -v ON_ERROR_STOP=1 -q --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -f "$f" ;;
      *) echo "docker-entrypoint: ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "docker-entrypoint: PostgreSQL init process complete; ready for start up"
fi
exec "$@"
