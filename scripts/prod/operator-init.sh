#!/bin/sh
# Initialises a production Vault: splits the root key into unseal key shares and creates the
# initial root token.
#
#   operator-init.sh <output-file> [key-shares (5)] [key-threshold (3)]
#
# The output (JSON: unseal_keys_b64, root_token) is written ONLY to <output-file>, which must
# not exist yet, created 0600. Environment: VAULT_ADDR, VAULT_CACERT, VAULT_CLI (vault or bao).
set -eu
fail() {
  echo "operator-init: $*" >&2
  exit 1
}
[ $# -ge 1 ] && [ $# -le 3 ] || { echo "usage: $0 <output-file> [key-shares] [key-threshold]" >&2; exit 2; }
out=$1
shares=${2:-5}
threshold=${3:-3}
cli=${VAULT_CLI:-vault}
case "$shares$threshold" in *[!0-9]*|'') fail "key-shares and key-threshold must be whole numbers" ;; esac
[ "$threshold" -ge 1 ] && [ "$threshold" -le "$shares" ] || fail "key-threshold ($threshold) must be between 1 and key-shares ($shares)"
[ -n "${VAULT_ADDR:-}" ] || fail "VAULT_ADDR is not set"
[ ! -e "$out" ] || fail "$out already exists: refusing to overwrite unseal keys"
unset BAO_ADDR BAO_TOKEN BAO_CACERT

umask 077
tmp="$out.partial"
"$cli" operator init -key-shares="$shares" -key-threshold="$threshold" -format=json >"$tmp" || {
  rm -f "$tmp"
  fail "vault operator init failed (already initialised?)"
}
mv "$tmp" "$out"
cat >&2 <<WARNING
operator-init: ************************************************************************
operator-init: $out now holds ALL $shares unseal keys and the initial ROOT TOKEN.
operator-init: Anyone with $threshold of those keys can unseal Vault; the root token can do anything.
operator-init: Now: give each unseal key to a different custodian, run scripts/prod/first-bootstrap.sh
operator-init: (it revokes the root token), then shred $out. Never commit it, never mail it.
operator-init: ************************************************************************
WARNING
