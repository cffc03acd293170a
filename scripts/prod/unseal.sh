#!/bin/sh
# Unseals a production Vault with unseal keys read from standard input, one per line (each
# custodian pastes theirs), until the threshold is reached. Keys never appear on a command line.
#
#   unseal.sh < keys        or        custodian-1 | unseal.sh
#
# Environment: VAULT_ADDR, VAULT_CACERT, VAULT_CLI (vault or bao).
set -eu
cli=${VAULT_CLI:-vault}
[ -n "${VAULT_ADDR:-}" ] || { echo "unseal: VAULT_ADDR is not set" >&2; exit 1; }
unset BAO_ADDR BAO_TOKEN BAO_CACERT

# `status` exits 0 when unsealed, 2 when sealed, 1 when it cannot tell.
state() {
  "$cli" status >/dev/null 2>&1 && echo unsealed || { [ $? -eq 2 ] && echo sealed || echo unreachable; }
}
case $(state) in
  unsealed) echo "unseal: $VAULT_ADDR is already unsealed"; exit 0 ;;
  unreachable) echo "unseal: cannot reach Vault at $VAULT_ADDR (VAULT_ADDR, VAULT_CACERT)" >&2; exit 1 ;;
esac
# sys/seal-status answers without a token, sealed or not.
progress() {
  "$cli" read -field=progress sys/seal-status 2>/dev/null
}
given=0
while [ "$(state)" = sealed ] && IFS= read -r key; do
  [ -n "$key" ] || continue
  # `operator unseal` only prompts on a terminal; `write key=-` reads the key from stdin.
  printf '%s' "$key" | "$cli" write sys/unseal key=- >/dev/null || { echo "unseal: a key was refused" >&2; exit 1; }
  given=$((given + 1))
  # Progress back at 0 while still sealed: the threshold was reached and the node is finishing
  # (a Raft follower that just joined syncs first). More keys would start a new attempt.
  [ "$(progress)" != 0 ] || break
done
waited=0
while [ "$(state)" = sealed ] && [ "$(progress)" = 0 ] && [ "$given" -gt 0 ] && [ "$waited" -lt "${UNSEAL_WAIT_SECONDS:-15}" ]; do
  sleep 1
  waited=$((waited + 1))
done
if [ "$(state)" != unsealed ]; then
  echo "unseal: $VAULT_ADDR is still sealed after $given key(s): more custodians needed" >&2
  exit 1
fi
echo "unseal: $VAULT_ADDR is unsealed ($given key(s) given)"
