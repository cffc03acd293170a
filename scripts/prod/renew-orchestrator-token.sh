#!/bin/sh
# Renews the orchestrator's periodic token (first-bootstrap.sh, ORCHESTRATOR_TOKEN_PERIOD,
# 24h by default): each renewal gives it one more period. Run it from a timer well within the
# period (every 6 hours for 24h); a token not renewed within its period expires for good.
#
#   renew-orchestrator-token.sh <token-file>
#
# The token is read from <token-file>, never from argv or the environment. Environment:
# VAULT_ADDR, VAULT_CACERT, VAULT_CLI (vault or bao).
set -eu
fail() {
  echo "renew-orchestrator-token: $*" >&2
  exit 1
}
[ $# -eq 1 ] || { echo "usage: $0 <token-file>" >&2; exit 2; }
file=$1
cli=${VAULT_CLI:-vault}
[ -n "${VAULT_ADDR:-}" ] || fail "VAULT_ADDR is not set"
[ -r "$file" ] || fail "$file is not a readable file (the orchestrator token)"
unset BAO_ADDR BAO_TOKEN BAO_CACERT
VAULT_TOKEN=''
IFS= read -r VAULT_TOKEN <"$file" || [ -n "$VAULT_TOKEN" ] || fail "$file is empty"
export VAULT_TOKEN

. "$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)/../lib/vault-cli.sh"
status=0
"$cli" status >/dev/null 2>"$errors" || status=$?
case $status in
  0) ;;
  2) fail "Vault at $VAULT_ADDR is sealed: unseal it, then renew (the token keeps counting down meanwhile)" ;;
  *) fail "cannot reach Vault at $VAULT_ADDR (VAULT_ADDR, VAULT_CACERT): $(reason)" ;;
esac
# What `token renew` does, written out: its own command takes no -field (bao), a write does.
ttl=$("$cli" write -f -field=token_duration auth/token/renew-self 2>"$errors") ||
  fail "Vault refused to renew the token in $file ($(reason)): it expired or was revoked; ask an admin for a new one (vault token create -role=saas-orchestrator-<env>)"
echo "renew-orchestrator-token: renewed the token in $file: valid for ${ttl:-?}s more; renew it again before then"
