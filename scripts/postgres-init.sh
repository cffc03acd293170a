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
#   password         (scripts/database-engine.sh), given this initial password while it has
#                    none, and only then: Vault rotates it at once (rotate-root), so a later
#                    run must never set it back. Skipped when the file is absent.
#
# Passwords reach PostgreSQL as SCRAM-SHA-256 verifiers only (set_role_password, below): no
# statement, and so no statement log, holds one in clear.
#
# Environment: PG_CREDENTIALS_DIR (default /pg-init), APP_DATABASE (default saas), APP_NAME
# (default saas: the group role is <app>_app_owner),
# DATABASE_ADMIN_USER (default vault_admin), and psql's connection from POSTGRES_USER /
# POSTGRES_DB (as the postgres image sets them) or PG* variables.
set -eu

fail() {
  echo "postgres-init: $*" >&2
  exit 1
}
# A copy of scripts/lib/pg-password.sh's function (the postgres image mounts this file alone;
# a test keeps the two the same): passwords reach PostgreSQL as SCRAM verifiers only.
# --- set_role_password (begin) ---
set_role_password() {
  srp_role=$1
  srp_file=$2
  shift 2
  srp_password=$(cat "$srp_file") || return 1
  case $srp_password in
    '') echo "the password file $srp_file is empty" >&2; return 1 ;;
    *'
'*) echo "the password file $srp_file holds more than one line" >&2; return 1 ;;
  esac
  srp_detach=''
  if (: </dev/tty) 2>/dev/null; then
    command -v setsid >/dev/null 2>&1 || { echo "setsid is needed to keep psql from asking the terminal" >&2; return 1; }
    srp_detach='setsid -w'
  fi
  srp_errors=$(mktemp)
  srp_status=0
  printf '%s\n%s\n' "$srp_password" "$srp_password" |
    $srp_detach psql -X -q -v ON_ERROR_STOP=1 "$@" -c "SET password_encryption = 'scram-sha-256'" \
      -c "\\password \"$(printf '%s' "$srp_role" | sed 's/"/""/g')\"" >/dev/null 2>"$srp_errors" || srp_status=1
  srp_password=''
  sed -e 's/^Enter new password for user .*: //' -e 's/^Enter it again: //' -e '/^$/d' "$srp_errors" >&2
  rm -f "$srp_errors"
  return "$srp_status"
}
# --- set_role_password (end) ---
dir=${PG_CREDENTIALS_DIR:-/pg-init}
database=${APP_DATABASE:-saas}
admin_user=${DATABASE_ADMIN_USER:-vault_admin}
case $database in
  '' | *[!A-Za-z0-9_]*) fail "APP_DATABASE must be letters, digits and _ (got '$database')" ;;
esac
# The group role is <app>_app_owner, as scripts/lib/app-name.sh names it (this file runs alone
# in the PostgreSQL container: the rule is repeated here). The statements below name
# saas_app_owner, the default's, and are given to psql with the application's name in it.
app=${APP_NAME:-saas}
case $app in
  '' | [!a-z]* | *[!a-z0-9]*) fail "APP_NAME must be lowercase letters and digits, starting with a letter (got '$app')" ;;
esac
owner=${app}_app_owner

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

# psql runs the backquoted `cat` itself: the username is in neither argv nor the environment.
# Passwords are set after, by set_role_password: never in a statement.
export APP_USERNAME_FILE="$dir/app-username"
sed "s/saas_app_owner/$owner/g" <<'SQL' | psql -v ON_ERROR_STOP=1 -v app_database="$database" -v admin_user="$admin_user" \
  -v has_app="$has_app" -v has_admin="$has_admin" -q \
  --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}"
-- A re-run grants what is granted already: no notice about it.
SET client_min_messages = warning;
SELECT 'CREATE ROLE saas_app_owner NOLOGIN'
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'saas_app_owner') \gexec
ALTER ROLE saas_app_owner NOLOGIN;

\if :has_app
\set app_user `cat "$APP_USERNAME_FILE"`
SELECT format('CREATE ROLE %I LOGIN', :'app_user')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN', :'app_user') \gexec
SELECT format('GRANT saas_app_owner TO %I', :'app_user') \gexec
SELECT format('ALTER ROLE %I SET role = saas_app_owner', :'app_user') \gexec
\endif

\if :has_admin
SELECT format('CREATE ROLE %I LOGIN CREATEROLE', :'admin_user')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'admin_user') \gexec
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
connection="--username ${POSTGRES_USER:-postgres} --dbname ${POSTGRES_DB:-postgres}"
if [ "$has_app" = true ]; then
  # shellcheck disable=SC2086 # two options and their values, split on purpose
  set_role_password "$(cat "$dir/app-username")" "$dir/app-password" $connection ||
    fail "cannot set the password of the app's role"
fi
if [ "$has_admin" = true ]; then
  # Its initial password only while it has none: Vault's rotate-root gave it one that must stay.
  # shellcheck disable=SC2086
  has_password=$(printf '%s\n' "SELECT count(*) FROM pg_authid WHERE rolname = :'admin_user' AND rolpassword IS NOT NULL" |
    psql -X -tA -v ON_ERROR_STOP=1 -v admin_user="$admin_user" $connection) || fail "cannot read the state of $admin_user"
  if [ "$has_password" = 0 ]; then
    # shellcheck disable=SC2086
    set_role_password "$admin_user" "$dir/vault-admin-password" $connection ||
      fail "cannot set the initial password of $admin_user"
  fi
fi
if [ "$has_app" = true ] && [ "$has_admin" = true ]; then
  echo "postgres-init: role and database ready for the app; $admin_user ready for Vault's database engine"
elif [ "$has_app" = true ]; then
  echo "postgres-init: role and database ready for the app"
else
  echo "postgres-init: database ready for the app; $admin_user ready for Vault's database engine"
fi
