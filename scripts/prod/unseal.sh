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
given=0
while [ "$(state)" = sealed ] && IFS= read -r key; do
  [ -n "$key" ] || continue
  printf '%s\n' "$key" | "$cli" operator unseal >/dev/null || { echo "unseal: a key was refused" >&2; exit 1; }
  given=$((given + 1))
done
if [ "$(state)" != unsealed ]; then
  echo "unseal: $VAULT_ADDR is still sealed after $given key(s): more custodians needed" >&2
  exit 1
fi
echo "unseal: $VAULT_ADDR is unsealed ($given key(s) given)"
