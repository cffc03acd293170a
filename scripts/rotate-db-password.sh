#!/bin/sh
# Rotates the app's PostgreSQL password: PostgreSQL first, then Vault.
#
#   rotate-db-password.sh
#
# In that order (DATABASE_CREDENTIALS=kv), the service's open connections stay authenticated
# while PostgreSQL already has the new password; a connection it must open in between is
# refused (503 database_unavailable) until the agent renders the new version, within its
# render interval. With dynamic credentials it changes only the KV user the service does not use.
#
# Environment: VAULT_ADDR, VAULT_TOKEN (allowed to write the secret), VAULT_CLI (vault or bao),
# APP_ENV, and psql's superuser connection (PGHOST, PGPORT, PGUSER, or the usual defaults).
set -eu

fail() {
  echo "rotate-db-password: $*" >&2
  exit 1
}
cli=${VAULT_CLI:-vault}
app_env=${APP_ENV:-dev}
# app_kv_prefix (APP_NAME, default saas)
. "$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)/lib/app-name.sh"
path="$app_kv_prefix/$app_env/database"
[ -n "${VAULT_ADDR:-}" ] || fail "VAULT_ADDR is not set"
[ -n "${VAULT_TOKEN:-}" ] || fail "VAULT_TOKEN is not set"
unset BAO_ADDR BAO_TOKEN BAO_CACERT BAO_CAPATH BAO_NAMESPACE
# set_role_password
. "$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)/lib/pg-password.sh"

username=$("$cli" kv get -mount=secret -field=username "$path") || fail "cannot read secret/data/$path"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 077
od -An -vtx1 -N24 /dev/urandom | tr -d ' \n' >"$work/password"

# Sent as a SCRAM verifier (scripts/lib/pg-password.sh): no statement log holds the password.
set_role_password "$username" "$work/password" --dbname "${PGDATABASE:-postgres}" ||
  fail "PostgreSQL refused the new password; Vault is unchanged"
echo "rotate-db-password: PostgreSQL has the new password for role $username"

"$cli" kv patch -mount=secret "$path" password=- <"$work/password" >/dev/null ||
  fail "PostgreSQL has the new password but Vault does not: run this script again"

echo "rotate-db-password: secret/data/$path has the new password; the agent renders it within its interval"
