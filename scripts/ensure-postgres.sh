#!/bin/sh
# Prints the folder holding PostgreSQL's server binaries (initdb, postgres, pg_ctl), installing
# Debian's `postgresql` package first when no server is found. Used by the local stack and
# the tests; psql must be on PATH as well (the same package provides it).
set -eu
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
# can_install, install_package
. "$here/lib/debian-package.sh"

find_bindir() {
  for candidate in "$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)")" \
    $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    if [ -x "$candidate/initdb" ] && [ -x "$candidate/postgres" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

if ! bindir=$(find_bindir) || ! command -v psql >/dev/null 2>&1; then
  echo "ensure-postgres: no PostgreSQL server found; installing Debian's postgresql package" >&2
  can_install ensure-postgres "PostgreSQL (server and psql)"
  install_package postgresql
  bindir=$(find_bindir) || { echo "ensure-postgres: PostgreSQL still not found after installing" >&2; exit 1; }
fi
echo "$bindir"
