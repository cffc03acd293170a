#!/bin/sh
# Writes what PostgreSQL needs to set up the app's role, all read from Vault, into a folder:
#
#   postgres-credentials.sh <out-dir>
#
#   superuser-password  from secret/data/saas-infra/<env>/postgres (generated here once). It lives
#                       outside saas-project/, so the app's policy can never read it.
#   app-username        \ from secret/data/saas-project/<env>/database, the credentials the app
#   app-password        / reads through the agent
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

admin_path="saas-infra/$app_env/postgres"
if ! "$cli" kv metadata get -mount=secret "$admin_path" >/dev/null 2>&1; then
  password=$(od -An -vtx1 -N24 /dev/urandom | tr -d ' \n')
  printf '{"superuser_password":"%s"}\n' "$password" |
    "$cli" kv put -mount=secret -cas=0 "$admin_path" - >/dev/null ||
    fail "cannot write secret/data/$admin_path"
  echo "postgres-credentials: generated the PostgreSQL superuser password at secret/data/$admin_path"
fi

mkdir -p "$out"
write() {
  tmp=$(mktemp "$out/.$1.XXXXXX")
  "$cli" kv get -mount=secret -field="$3" "$2" >"$tmp" || { rm -f "$tmp"; fail "cannot read $3 of secret/data/$2"; }
  chmod 0440 "$tmp"
  mv -f "$tmp" "$out/$1"
}
write superuser-password "$admin_path" superuser_password
write app-username "saas-project/$app_env/database" username
write app-password "saas-project/$app_env/database" password
echo "postgres-credentials: wrote superuser-password, app-username and app-password to $out"
