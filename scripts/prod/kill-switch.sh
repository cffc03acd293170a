#!/bin/sh
# The kill switch: takes away, in one step, everything one application's service holds in Vault
# in one environment, and nothing of any other application or environment.
#
#   kill-switch.sh <env>
#
# The role is <app>-app-<env> (APP_NAME, default saas: scripts/lib/app-name.sh). Run by that
# application's admin (policy <app>-admin: VAULT_TOKEN, or the token helper after `vault login`).
# In this order, so that nothing can log in again in between:
#   1. destroys every secret id of the role, by accessor (the ones agents keep in memory, and
#      the wrapped ones not yet delivered): no new login;
#   2. revokes, by accessor, every token AppRole issued for that role (and their children): the
#      service halts (503 vault_token_invalid) within its check interval. Vault files an AppRole
#      login's lease under auth/approle/login/ whatever the role, so a prefix revocation would
#      take every application's tokens: the script lists the token accessors
#      (auth/token/accessors) and revokes those whose lookup says path auth/approle/login and
#      metadata role_name <app>-app-<env>;
#   3. revokes the dynamic database credentials of the role
#      (sys/leases/revoke-prefix/database/creds/<app>-app-<env>); nothing to do there when the
#      database engine is not configured.
# If the service's host is compromised, stop the orchestrator's schedule first: its next wrapped
# secret id would let the agent back in. Recovery: specs/vault/plan-vault.md, section 6.
# Environment: VAULT_ADDR, VAULT_CACERT, VAULT_CLI (vault or bao), APP_NAME.
set -eu
fail() {
  echo "kill-switch: $*" >&2
  exit 1
}
[ $# -eq 1 ] || { echo "usage: $0 <dev|staging|prod>" >&2; exit 2; }
app_env=$1
case $app_env in
  dev | staging | prod) ;;
  *) fail "unknown environment '$app_env': expected dev, staging or prod" ;;
esac
cli=${VAULT_CLI:-vault}
[ -n "${VAULT_ADDR:-}" ] || fail "VAULT_ADDR is not set"
unset BAO_ADDR BAO_TOKEN BAO_CACERT
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$here/../lib/vault-cli.sh"
. "$here/../lib/app-name.sh"
role=$(app_role "$app_env")
role_path=auth/approle/role/$role

"$cli" token lookup >/dev/null 2>"$errors" ||
  fail "no usable admin token ($(reason)): log in first (vault login -method=userpass username=<admin>) or set VAULT_TOKEN"

# A LIST (GET with list=true) read with -field=keys, which prints the keys as [a b c]; `list`
# itself takes no -field. It exits 2 with "No value found" when there is nothing to list.
listed() {
  keys=$("$cli" read -field=keys "$1" list=true 2>"$errors") || return 0
  keys=${keys#[}
  printf '%s\n' "${keys%]}"
}
list_or_fail() {
  out=$(listed "$1")
  if [ -z "$out" ] && ! grep -q 'No value found' "$errors" && [ -s "$errors" ]; then
    fail "cannot list $1 ($(reason)): is the token's policy $app-admin?"
  fi
  printf '%s\n' "$out"
}

# 1. The role's secret ids.
destroyed=0
for accessor in $(list_or_fail "$role_path/secret-id"); do
  "$cli" write "$role_path/secret-id-accessor/destroy" secret_id_accessor="$accessor" >/dev/null 2>"$errors" ||
    fail "cannot destroy secret id accessor $accessor of $role_path ($(reason))"
  destroyed=$((destroyed + 1))
done
[ -z "$(listed "$role_path/secret-id")" ] || fail "secret ids of $role_path remain after destroying $destroyed: run the kill switch again"
echo "kill-switch: destroyed $destroyed secret id(s) of $role: no new login"

# 2. The role's tokens. A token that expires between the list and its lookup is gone already
# ("invalid accessor"); any other refusal stops the script.
revoked=0
for accessor in $(list_or_fail auth/token/accessors); do
  if ! path=$("$cli" write -field=path auth/token/lookup-accessor accessor="$accessor" 2>"$errors"); then
    grep -q 'invalid accessor' "$errors" && continue
    fail "cannot look up token accessor $accessor ($(reason)): is the token's policy $app-admin?"
  fi
  [ "$path" = auth/approle/login ] || continue
  meta=$("$cli" write -field=meta auth/token/lookup-accessor accessor="$accessor" 2>/dev/null) || continue
  case "$meta " in
    *"role_name:$role "* | *"role_name:$role]"*) ;;
    *) continue ;;
  esac
  if ! "$cli" write auth/token/revoke-accessor accessor="$accessor" >/dev/null 2>"$errors"; then
    grep -q 'invalid accessor' "$errors" && continue
    fail "cannot revoke the token of accessor $accessor ($(reason))"
  fi
  revoked=$((revoked + 1))
done
echo "kill-switch: revoked $revoked token(s) AppRole issued for $role (and their children): the service halts within its check interval"

# 3. With no database engine at database/, Vault has no lease under the prefix and answers 204.
"$cli" write -f "sys/leases/revoke-prefix/database/creds/$role" >/dev/null 2>"$errors" ||
  fail "cannot revoke the leases under database/creds/$role ($(reason))"
echo "kill-switch: revoked the database credentials leased under database/creds/$role"
echo "kill-switch: to bring the service back: a fresh wrapped secret id (scripts/prod/issue-wrapped-secret-id.sh), then scripts/prod/unlock-role-id.sh if the role id is locked"
