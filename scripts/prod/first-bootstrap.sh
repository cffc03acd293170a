#!/bin/sh
# The first bootstrap of a production Vault, the one time the root token is used:
#
#   first-bootstrap.sh <env> <credentials-dir> <orchestrator-token-file> < root-token
#
#   1. reads the initial root token from standard input (never from argv or the environment);
#   2. runs scripts/bootstrap.sh for <env> with production settings: single-use secret ids
#      (ROLE_SECRET_ID_NUM_USES=1, a fresh wrapped one is delivered before each login) and a
#      short wrap TTL; role-id and a first wrapped secret-id land in <credentials-dir>;
#   3. writes the policy saas-orchestrator and creates a periodic orchestrator token that can
#      only mint wrapped secret ids for the role, into <orchestrator-token-file> (0400);
#   4. revokes the root token, and checks it no longer works.
#
# Environment: VAULT_ADDR, VAULT_CACERT, VAULT_CLI (vault or bao); ROLE_* and
# ROLE_SECRET_ID_BOUND_CIDRS pass through to bootstrap.sh.
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

IFS= read -r VAULT_TOKEN || true
[ -n "$VAULT_TOKEN" ] || fail "no root token on standard input"
export VAULT_TOKEN
# Whatever happens below, the root token does not outlive this script.
revoke_root() {
  "$cli" token revoke -self >/dev/null 2>&1 || true
}
trap revoke_root EXIT

ROLE_SECRET_ID_NUM_USES=${ROLE_SECRET_ID_NUM_USES:-1} \
  SECRET_ID_WRAP_TTL=${SECRET_ID_WRAP_TTL:-5m} \
  sh "$here/../bootstrap.sh" "$app_env" "$credentials_dir" || fail "bootstrap.sh failed (see above)"

"$cli" policy write saas-orchestrator "$here/../../policies/saas-orchestrator.hcl" >/dev/null ||
  fail "cannot write policy saas-orchestrator"
umask 077
"$cli" token create -orphan -policy=saas-orchestrator -period=24h -field=token >"$orchestrator_file.partial" ||
  { rm -f "$orchestrator_file.partial"; fail "cannot create the orchestrator token"; }
chmod 0400 "$orchestrator_file.partial"
mv "$orchestrator_file.partial" "$orchestrator_file"
echo "first-bootstrap: wrote the orchestrator token (policy saas-orchestrator, renewable every 24h) to $orchestrator_file"

revoke_root
trap - EXIT
if "$cli" token lookup >/dev/null 2>&1; then fail "the root token still works after revocation"; fi
echo "first-bootstrap: the root token is revoked; generate a new one only with a quorum of unseal keys (operator generate-root)"
