#!/bin/sh
# Sets up PostgreSQL for the app from the files postgres-credentials.sh writes, or brings it up
# to date. Runs in the postgres image's /docker-entrypoint-initdb.d (first start of an empty
# data folder) and from the local stack. Both ways of giving the app its credentials are served:
#
#   saas_app_owner   NOLOGIN group role owning the app database and its public schema. Every
#                    login role of the app is a member and has `SET role = saas_app_owner`, so
#                    whatever it creates belongs to the group: tables made by one user (the KV
#                    role, or yesterday's dynamic user) stay usable by the next.
#   app-username /   `kv` way: the static login role (password from KV). Both files, or neither.
#   app-password
#   vault-admin-     `dynamic` way: the role Vault's database engine connects as
#   password         (scripts/database-engine.sh), created with this initial password when
#                    missing, and only then: Vault rotates it at once (rotate-root), so a later
#                    run must never set it back. Skipped when the file is absent.
#
# Environment: PG_CREDENTIALS_DIR (default /pg-init), APP_DATABASE (default saas),
# DATABASE_ADMIN_USER (default vault_admin), and psql's connection from POSTGRES_USER /
# POSTGRES_DB (as the postgres image sets them) or PG* variables.
set -eu

fail() {
  echo "postgres-init: $*" >&2
  exit 1
}
dir=${PG_CREDENTIALS_DIR:-/pg-init}
database=${APP_DATABASE:-saas}
admin_user=${DATABASE_ADMIN_USER:-vault_admin}
case $database in
  '' | *[!A-Za-z0-9_]*) fail "APP_DATABASE must be letters, digits and _ (got '$database')" ;;
esac

has_app=false
if [ -e "$dir/app-username" ] || [ -e "$dir/app-password" ]; then
  for file in app-username app-password; do
    [ -s "$dir/$file" ] || fail "$dir/$file is missing or empty"
  done
  has_app=true
fi
has_admin=false
if [ -e "$dir/vault-admin-password" ]; then
  [ -s "$dir/vault-admin-password" ] || fail "$dir/vault-admin-password is empty"
  has_admin=true
fi
[ "$has_app" = true ] || [ "$has_admin" = true ] ||
  fail "$dir/app-username is missing or empty (and no $dir/vault-admin-password): nothing to set up"

# psql runs the backquoted `cat` itself: passwords are in neither argv nor the environment.
export APP_USERNAME_FILE="$dir/app-username" APP_PASSWORD_FILE="$dir/app-password"
export VAULT_ADMIN_PASSWORD_FILE="$dir/vault-admin-password"
psql -v ON_ERROR_STOP=1 -v app_database="$database" -v admin_user="$admin_user" \
  -v has_app="$has_app" -v has_admin="$has_admin" -q \
  --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" <<'SQL'
-- A re-run grants what is granted already: no notice about it.
SET client_min_messages = warning;
SELECT 'CREATE ROLE saas_app_owner NOLOGIN'
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'saas_app_owner') \gexec
ALTER ROLE saas_app_owner NOLOGIN;

\if :has_app
\set app_user `cat "$APP_USERNAME_FILE"`
\set app_password `cat "$APP_PASSWORD_FILE"`
SELECT format('CREATE ROLE %I LOGIN', :'app_user')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'app_user', :'app_password') \gexec
SELECT format('GRANT saas_app_owner TO %I', :'app_user') \gexec
SELECT format('ALTER ROLE %I SET role = saas_app_owner', :'app_user') \gexec
\endif

\if :has_admin
\set admin_password `cat "$VAULT_ADMIN_PASSWORD_FILE"`
SELECT format('CREATE ROLE %I LOGIN CREATEROLE PASSWORD %L', :'admin_user', :'admin_password')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'admin_user') \gexec
\unset admin_password
-- The attributes it needs, and no more; never its password (Vault's own after rotate-root).
-- INHERIT stays: PostgreSQL 15 checks privileges of a role (not bare membership) for
-- pg_terminate_backend and REASSIGN OWNED in the revocation statements.
SELECT format('ALTER ROLE %I LOGIN CREATEROLE NOSUPERUSER NOCREATEDB NOREPLICATION NOBYPASSRLS INHERIT', :'admin_user') \gexec
-- ADMIN OPTION: what PostgreSQL 16+ requires to create users IN ROLE saas_app_owner
-- (15 accepts CREATEROLE alone).
SELECT format('GRANT saas_app_owner TO %I WITH ADMIN OPTION', :'admin_user') \gexec
\endif

-- The database belongs to the group, also when an older version of this script made the KV
-- role its owner.
SELECT format('CREATE DATABASE %I OWNER saas_app_owner', :'app_database')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_database') \gexec
SELECT format('ALTER DATABASE %I OWNER TO saas_app_owner', :'app_database') \gexec

\connect :app_database
SET client_min_messages = warning;
ALTER SCHEMA public OWNER TO saas_app_owner;
\if :has_app
-- Tables the KV role created before the group existed go to the group too. REASSIGN OWNED
-- acts on this database's objects (and on databases the role owns).
SELECT format('REASSIGN OWNED BY %I TO saas_app_owner', :'app_user') \gexec
\endif
SQL
if [ "$has_app" = true ] && [ "$has_admin" = true ]; then
  echo "postgres-init: role and database ready for the app; $admin_user ready for Vault's database engine"
elif [ "$has_app" = true ]; then
  echo "postgres-init: role and database ready for the app"
else
  echo "postgres-init: database ready for the app; $admin_user ready for Vault's database engine"
fi
