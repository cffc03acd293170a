#!/bin/sh
# Writes what PostgreSQL needs to set up the app's role, all read from Vault, into a folder:
#
#   postgres-credentials.sh <out-dir>
#
#   superuser-password  from secret/data/saas-infra/<env>/postgres (generated here once). It lives
#                       outside saas-project/, so the app's policy can never read it.
#   app-username        \ from secret/data/saas-project/<env>/database, the credentials the app
#   app-password        / reads through the agent (the `kv` way)
#   vault-admin-password  initial password of vault_admin, the role Vault's database engine
#                       connects as (the `dynamic` way, scripts/database-engine.sh): key
#                       vault_admin_initial_password next to superuser_password, generated here
#                       once. It is useless once database-engine.sh has run: Vault rotates the
#                       password at once (rotate-root) and postgres-init.sh never sets it again,
#                       so this value opens nothing, and stays only as the record of what
#                       PostgreSQL was first given.
#
# Files are 0440: readable by the owner and the group that runs PostgreSQL. Values never pass
# through the command line. Environment: VAULT_ADDR, VAULT_TOKEN, VAULT_CLI (vault or bao), APP_ENV.
set -eu

fail() {
  echo "postgres-credentials: $*" >&2
  exit 1
}
[ $# -eq 1 ] || fail "usage: $0 <out-dir>"
out=$1
cli=${VAULT_CLI:-vault}
app_env=${APP_ENV:-dev}
[ -n "${VAULT_ADDR:-}" ] || fail "VAULT_ADDR is not set"
[ -n "${VAULT_TOKEN:-}" ] || fail "VAULT_TOKEN is not set"
unset BAO_ADDR BAO_TOKEN BAO_CACERT BAO_CAPATH BAO_NAMESPACE

# app_kv_prefix, app_infra_prefix (APP_NAME, default saas)
. "$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)/lib/app-name.sh"
admin_path="$app_infra_prefix/$app_env/postgres"
random_hex() {
  od -An -vtx1 -N24 /dev/urandom | tr -d ' \n'
}
if ! "$cli" kv metadata get -mount=secret "$admin_path" >/dev/null 2>&1; then
  printf '{"superuser_password":"%s","vault_admin_initial_password":"%s"}\n' "$(random_hex)" "$(random_hex)" |
    "$cli" kv put -mount=secret -cas=0 "$admin_path" - >/dev/null ||
    fail "cannot write secret/data/$admin_path"
  echo "postgres-credentials: generated the PostgreSQL superuser and vault_admin passwords at secret/data/$admin_path"
elif ! "$cli" kv get -mount=secret -field=vault_admin_initial_password "$admin_path" >/dev/null 2>&1; then
  # Written by a version that knew only the superuser: add the key, keep the rest.
  printf '{"vault_admin_initial_password":"%s"}\n' "$(random_hex)" |
    "$cli" kv patch -mount=secret "$admin_path" - >/dev/null ||
    fail "cannot add vault_admin_initial_password to secret/data/$admin_path"
  echo "postgres-credentials: generated the vault_admin password at secret/data/$admin_path"
fi

mkdir -p "$out"
write() {
  tmp=$(mktemp "$out/.$1.XXXXXX")
  "$cli" kv get -mount=secret -field="$3" "$2" >"$tmp" || { rm -f "$tmp"; fail "cannot read $3 of secret/data/$2"; }
  chmod 0440 "$tmp"
  mv -f "$tmp" "$out/$1"
}
write superuser-password "$admin_path" superuser_password
write app-username "$app_kv_prefix/$app_env/database" username
write app-password "$app_kv_prefix/$app_env/database" password
write vault-admin-password "$admin_path" vault_admin_initial_password
echo "postgres-credentials: wrote superuser-password, app-username and app-password, and vault-admin-password to $out"
