#!/bin/sh
# The first bootstrap of a production Vault, the one time the root token is used:
#
#   first-bootstrap.sh <env> <credentials-dir> <orchestrator-token-file> < root-token
#
#   1. reads the initial root token from standard input (never from argv or the environment),
#      and hands it to the CLI only through its token file in a private HOME;
#   2. runs scripts/bootstrap.sh for <env> with production settings: single-use secret ids
#      (ROLE_SECRET_ID_NUM_USES=1, a fresh wrapped one is delivered before each login) and a
#      short wrap TTL; role-id and a first wrapped secret-id land in <credentials-dir>;
#   3. writes the policies saas-orchestrator-<each env> and their token roles (one orchestrator
#      per environment: a staging orchestrator cannot mint a prod secret id; each token role
#      bound to ORCHESTRATOR_BOUND_CIDRS_<ENV> when given), and creates a periodic token of
#      <env>'s role, which can only mint wrapped secret ids for saas-app-<env>, into
#      <orchestrator-token-file> (0400); an admin can mint a new one later, through those roles only;
#   4. writes the policy saas-admin, enables userpass and creates one admin user bound to it
#      (without it nobody could run the runbook once root is gone), and mounts the database
#      secrets engine at database/ (mounting is root's; configuring it is the admin's);
#   5. revokes the root token, and checks it no longer works.
#
# Environment: VAULT_ADDR, VAULT_CACERT, VAULT_CLI (vault or bao); ROLE_* and
# ROLE_SECRET_ID_BOUND_CIDRS and APP_NAME (default saas: the names <app>-admin,
# <app>-orchestrator-<env>, <app>-app-<env>) pass through to bootstrap.sh;
#   ADMIN_PASSWORD_FILE          a file whose first line is the admin's password (required: the
#                                password itself never goes through argv or the environment)
#   ADMIN_USERNAME               the userpass user (default admin)
#   ADMIN_TOKEN_TTL, ADMIN_TOKEN_MAX_TTL   the admin's token lifetime (default 1h, at most 8h)
#   ORCHESTRATOR_TOKEN_PERIOD    the orchestrator token's period: renew it within that (24h)
#   ORCHESTRATOR_BOUND_CIDRS_DEV, ORCHESTRATOR_BOUND_CIDRS_STAGING, ORCHESTRATOR_BOUND_CIDRS_PROD
#                                the addresses (CIDR blocks, comma-separated) each environment's
#                                orchestrator calls from, where the platform gives fixed ones:
#                                its tokens are refused from anywhere else (default: none)
#   AUDIT_FILE_PATH              where HashiCorp Vault's file audit device writes, as the server
#                                sees it (default /vault/data/audit.log, as in deploy/vault-server.hcl)
#   AUDIT_SECOND_FILE_PATH       its second device, on another volume (default /vault/audit/audit.log)
set -eu
fail() {
  echo "first-bootstrap: $*" >&2
  exit 1
}
[ $# -eq 3 ] || { echo "usage: $0 <env> <credentials-dir> <orchestrator-token-file> < root-token" >&2; exit 2; }
app_env=$1
credentials_dir=$2
orchestrator_file=$3
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
cli=${VAULT_CLI:-vault}
[ -n "${VAULT_ADDR:-}" ] || fail "VAULT_ADDR is not set"
[ ! -e "$orchestrator_file" ] || fail "$orchestrator_file already exists"
unset BAO_ADDR BAO_TOKEN BAO_CACERT
admin_user=${ADMIN_USERNAME:-admin}
admin_ttl=${ADMIN_TOKEN_TTL:-1h}
admin_max_ttl=${ADMIN_TOKEN_MAX_TTL:-8h}
orchestrator_period=${ORCHESTRATOR_TOKEN_PERIOD:-24h}
[ -n "${ADMIN_PASSWORD_FILE:-}" ] ||
  fail "ADMIN_PASSWORD_FILE is not set: give a file holding the admin's password (once root is revoked, only that admin can run the runbook)"
[ -r "$ADMIN_PASSWORD_FILE" ] || fail "ADMIN_PASSWORD_FILE ($ADMIN_PASSWORD_FILE) is not a readable file"
# A shell variable, never exported: printf is a builtin, so the password reaches the CLI's
# stdin without appearing in any process's argv or environment.
admin_password=''
IFS= read -r admin_password <"$ADMIN_PASSWORD_FILE" || [ -n "$admin_password" ] ||
  fail "ADMIN_PASSWORD_FILE ($ADMIN_PASSWORD_FILE) is empty"
[ "${#admin_password}" -ge 12 ] || fail "ADMIN_PASSWORD_FILE ($ADMIN_PASSWORD_FILE): the password must be at least 12 characters"
case $admin_user in
  '' | *[!a-zA-Z0-9._-]*) fail "ADMIN_USERNAME must be letters, digits, '.', '_' or '-' (got '$admin_user')" ;;
esac

root_token=''
IFS= read -r root_token || true
[ -n "$root_token" ] || fail "no root token on standard input"
# The CLIs (this script's and bootstrap.sh's) take the root token from their token helper's
# file, ~/.vault-token, in a HOME of this run's own (0700): it is in no process's argv or
# environment, where any process of the same user could read it (/proc/<pid>/environ).
token_home=$(mktemp -d) || fail "cannot make a private folder for the root token"
chmod 0700 "$token_home"
(umask 077 && printf '%s' "$root_token" >"$token_home/.vault-token") || fail "cannot write the root token to $token_home"
root_token=''
unset VAULT_TOKEN
HOME=$token_home
export HOME
# Whatever happens below, the root token does not outlive this script.
revoke_root() {
  "$cli" token revoke -self >/dev/null 2>&1 || true
  rm -rf "$token_home"
}
trap revoke_root EXIT

# HashiCorp Vault ignores the audit block of deploy/vault-server.hcl, which OpenBao 2.x takes
# (and OpenBao refuses `audit enable`): when the server lists no file device, enable it over the
# API now, while the root token exists, so that everything below is audited.
# Two devices, on two volumes: Vault answers once any one has logged a request, so one full
# disk does not stop it.
audit_file=${AUDIT_FILE_PATH:-/vault/data/audit.log}
second_audit_file=${AUDIT_SECOND_FILE_PATH:-/vault/audit/audit.log}
if ! "$cli" audit list 2>/dev/null | grep -q '^file/'; then
  "$cli" audit enable file file_path="$audit_file" >/dev/null ||
    fail "cannot enable the file audit device at $audit_file (AUDIT_FILE_PATH)"
  "$cli" audit enable -path=file-audit file file_path="$second_audit_file" >/dev/null ||
    fail "cannot enable the second file audit device at $second_audit_file (AUDIT_SECOND_FILE_PATH)"
  echo "first-bootstrap: enabled the file audit devices at $audit_file and $second_audit_file"
fi

ROLE_SECRET_ID_NUM_USES=${ROLE_SECRET_ID_NUM_USES:-1} \
  SECRET_ID_WRAP_TTL=${SECRET_ID_WRAP_TTL:-5m} \
  sh "$here/../bootstrap.sh" "$app_env" "$credentials_dir" || fail "bootstrap.sh failed (see above)"

# The shipped policies name the application saas; another APP_NAME gets them with saas- replaced
# by <app>- (scripts/lib/app-name.sh).
. "$here/../lib/app-name.sh"
policies=$here/../../policies
for env in dev staging prod; do
  app_policy "$policies/saas-orchestrator-$env.hcl" | "$cli" policy write "$app-orchestrator-$env" - >/dev/null ||
    fail "cannot write policy $app-orchestrator-$env"
done
app_policy "$policies/saas-admin.hcl" | "$cli" policy write "$app-admin" - >/dev/null || fail "cannot write policy $app-admin"
echo "first-bootstrap: wrote the policies $app-orchestrator-dev, $app-orchestrator-staging, $app-orchestrator-prod and $app-admin"

# The admin's way in. userpass is the example; real deployments bind saas-admin to their OIDC
# or LDAP group instead (specs/vault/plan-vault.md, section 5).
# Each mount is read at its own path (-field=type): an absent one is a 400, "No auth engine at
# userpass/" or "No secret engine mount at database/".
if "$cli" read -field=type sys/auth/userpass >/dev/null 2>&1; then
  echo "first-bootstrap: userpass already enabled at auth/userpass"
else
  "$cli" auth enable userpass >/dev/null || fail "cannot enable the userpass auth method"
  echo "first-bootstrap: enabled userpass at auth/userpass"
fi
printf '%s' "$admin_password" | "$cli" write "auth/userpass/users/$admin_user" password=- token_policies="$app-admin" \
  token_ttl="$admin_ttl" token_max_ttl="$admin_max_ttl" >/dev/null ||
  fail "cannot write the userpass user $admin_user (ADMIN_TOKEN_TTL $admin_ttl, ADMIN_TOKEN_MAX_TTL $admin_max_ttl)"
admin_password=''
echo "first-bootstrap: wrote the admin user $admin_user (policy $app-admin, token_ttl $admin_ttl, token_max_ttl $admin_max_ttl)"

# Mounting an engine is a sys/mounts write, which saas-admin leaves out: done here, once.
if "$cli" read -field=type sys/mounts/database >/dev/null 2>&1; then
  echo "first-bootstrap: the database secrets engine is already mounted at database/"
else
  "$cli" secrets enable -path=database database >/dev/null || fail "cannot mount the database secrets engine at database/"
  echo "first-bootstrap: mounted the database secrets engine at database/ (the admin configures it)"
fi

# One token role per environment, so that a new orchestrator token later comes from an admin
# (saas-admin may use only these roles) and carries its environment's policy and nothing else.
# Orphan: it outlives the admin token that created it. token_bound_cidrs: Vault refuses the
# token from any other address, so a stolen one is useless off the orchestrator's hosts.
for env in dev staging prod; do
  eval "cidrs=\${ORCHESTRATOR_BOUND_CIDRS_$(echo "$env" | tr a-z A-Z):-}"
  case $cidrs in
    *[!0-9./,:a-fA-F]*) fail "ORCHESTRATOR_BOUND_CIDRS_$(echo "$env" | tr a-z A-Z) must be comma-separated CIDR blocks (got '$cidrs')" ;;
  esac
  "$cli" write "auth/token/roles/$app-orchestrator-$env" allowed_policies="$app-orchestrator-$env" orphan=true renewable=true \
    token_period="$orchestrator_period" token_bound_cidrs="$cidrs" >/dev/null ||
    fail "cannot write the token role $app-orchestrator-$env (ORCHESTRATOR_TOKEN_PERIOD $orchestrator_period${cidrs:+, bound to $cidrs})"
  echo "first-bootstrap: wrote the token role $app-orchestrator-$env (period $orchestrator_period${cidrs:+, tokens bound to $cidrs})"
done
umask 077
"$cli" token create -role="$app-orchestrator-$app_env" -field=token >"$orchestrator_file.partial" ||
  { rm -f "$orchestrator_file.partial"; fail "cannot create the orchestrator token"; }
chmod 0400 "$orchestrator_file.partial"
mv "$orchestrator_file.partial" "$orchestrator_file"
echo "first-bootstrap: wrote the orchestrator token (policy $app-orchestrator-$app_env, period $orchestrator_period: renew it with scripts/prod/renew-orchestrator-token.sh) to $orchestrator_file"

revoke_root
trap - EXIT
if "$cli" token lookup >/dev/null 2>&1; then fail "the root token still works after revocation"; fi
echo "first-bootstrap: the root token is revoked; generate a new one only with a quorum of unseal keys (operator generate-root)"
