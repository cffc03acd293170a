#!/bin/sh
# Creates the app's login role and database, or brings the role's password up to date, from
# the files postgres-credentials.sh writes. Runs in the postgres image's
# /docker-entrypoint-initdb.d (first start of an empty data folder) and from the local stack.
#
# Environment: PG_CREDENTIALS_DIR (default /pg-init), APP_DATABASE (default saas), and psql's
# connection from POSTGRES_USER / POSTGRES_DB (as the postgres image sets them) or PG* variables.
set -eu

dir=${PG_CREDENTIALS_DIR:-/pg-init}
for file in app-username app-password; do
  [ -s "$dir/$file" ] || { echo "postgres-init: $dir/$file is missing or empty" >&2; exit 1; }
done

# psql runs the backquoted `cat` itself: the password is in neither argv nor the environment.
export APP_USERNAME_FILE="$dir/app-username" APP_PASSWORD_FILE="$dir/app-password"
psql -v ON_ERROR_STOP=1 -v app_database="${APP_DATABASE:-saas}" -q \
  --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" <<'SQL'
\set app_user `cat "$APP_USERNAME_FILE"`
\set app_password `cat "$APP_PASSWORD_FILE"`
SELECT format('CREATE ROLE %I LOGIN', :'app_user')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'app_user', :'app_password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'app_database', :'app_user')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_database') \gexec
SQL
echo "postgres-init: role and database ready for the app"
