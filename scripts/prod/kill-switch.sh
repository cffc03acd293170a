#!/bin/sh
# The kill switch: takes away, in one step, everything the service holds in Vault.
#
#   kill-switch.sh <env>
#
# Run by an admin (policy saas-admin: VAULT_TOKEN, or the token helper after `vault login`).
# In this order, so that nothing can log in again in between:
#   1. destroys every secret id of saas-app-role, by accessor (the ones agents keep in memory,
#      and the wrapped ones not yet delivered): no new login;
#   2. revokes every token AppRole issued (sys/leases/revoke-prefix/auth/approle/login), with
#      their children: the service halts (503 vault_token_invalid) within its check interval;
#   3. revokes the dynamic database credentials of saas-app-<env>
#      (sys/leases/revoke-prefix/database/creds/saas-app-<env>); nothing to do there when the
#      database engine is not configured.
# If the service's host is compromised, stop the orchestrator's schedule first: its next wrapped
# secret id would let the agent back in. Recovery: specs/vault/plan-vault.md, section 6.
# Environment: VAULT_ADDR, VAULT_CACERT, VAULT_CLI (vault or bao).
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
role_path=auth/approle/role/saas-app-role

. "$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)/../lib/vault-cli.sh"
"$cli" token lookup >/dev/null 2>"$errors" ||
  fail "no usable admin token ($(reason)): log in first (vault login -method=userpass username=<admin>) or set VAULT_TOKEN"

# A LIST (GET with list=true) read with -field=keys, which prints the accessors as
# [a b c]; `list` itself takes no -field. It exits 2 with "No value found" when the role has
# no secret id left.
accessors() {
  keys=$("$cli" read -field=keys "$role_path/secret-id" list=true 2>"$errors") || return 0
  keys=${keys#[}
  printf '%s\n' "${keys%]}"
}
listed=$(accessors) || true
if [ -z "$listed" ] && ! grep -q 'No value found' "$errors" && [ -s "$errors" ]; then
  fail "cannot list the secret ids of $role_path ($(reason)): is the token's policy saas-admin?"
fi
destroyed=0
for accessor in $listed; do
  "$cli" write "$role_path/secret-id-accessor/destroy" secret_id_accessor="$accessor" >/dev/null 2>"$errors" ||
    fail "cannot destroy secret id accessor $accessor ($(reason))"
  destroyed=$((destroyed + 1))
done
[ -z "$(accessors)" ] || fail "secret ids of $role_path remain after destroying $destroyed: run the kill switch again"
echo "kill-switch: destroyed $destroyed secret id(s) of saas-app-role: no new login"

"$cli" write -f sys/leases/revoke-prefix/auth/approle/login >/dev/null 2>"$errors" ||
  fail "cannot revoke the tokens issued by auth/approle/login ($(reason)): is the token's policy saas-admin?"
echo "kill-switch: revoked every token issued by auth/approle/login (and their children): the service halts within its check interval"

# With no database engine at database/, Vault has no lease under the prefix and answers 204.
"$cli" write -f "sys/leases/revoke-prefix/database/creds/saas-app-$app_env" >/dev/null 2>"$errors" ||
  fail "cannot revoke the leases under database/creds/saas-app-$app_env ($(reason))"
echo "kill-switch: revoked the database credentials leased under database/creds/saas-app-$app_env"
echo "kill-switch: to bring the service back: a fresh wrapped secret id (scripts/prod/issue-wrapped-secret-id.sh), then scripts/prod/unlock-role-id.sh if the role id is locked"
