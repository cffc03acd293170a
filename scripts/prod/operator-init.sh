#!/bin/sh
# Initialises a production Vault: splits the root key into unseal key shares and creates the
# initial root token.
#
#   operator-init.sh <output-file> [key-shares (5)] [key-threshold (3)]
#
# The output (JSON: unseal_keys_b64, root_token) is written ONLY to <output-file>, which must
# not exist yet, created 0600. Environment: VAULT_ADDR, VAULT_CACERT, VAULT_CLI (vault or bao),
# and, when the operator gives them (each a file holding a public PGP key, binary or base64):
#   UNSEAL_PGP_KEYS      one key per share, comma-separated, in the custodians' order: share n
#                        is encrypted to key n, and only its custodian can read it
#   ROOT_TOKEN_PGP_KEY   the root token is encrypted to this key
# Without them the file holds every share and the root token in clear, and says so.
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

# Each key file is checked here, so a typo is named before Vault is initialised.
pgp_keys=${UNSEAL_PGP_KEYS:-}
root_pgp_key=${ROOT_TOKEN_PGP_KEY:-}
if [ -n "$pgp_keys" ]; then
  count=0
  old_ifs=$IFS
  IFS=,
  for key in $pgp_keys; do
    count=$((count + 1))
    [ -r "$key" ] && [ -s "$key" ] || fail "UNSEAL_PGP_KEYS: $key is not a readable, non-empty key file"
  done
  IFS=$old_ifs
  [ "$count" -eq "$shares" ] || fail "UNSEAL_PGP_KEYS names $count key(s) for $shares key shares: one per share"
fi
if [ -n "$root_pgp_key" ]; then
  [ -r "$root_pgp_key" ] && [ -s "$root_pgp_key" ] || fail "ROOT_TOKEN_PGP_KEY: $root_pgp_key is not a readable, non-empty key file"
fi

umask 077
tmp="$out.partial"
set -- -key-shares="$shares" -key-threshold="$threshold" -format=json
[ -z "$pgp_keys" ] || set -- "$@" -pgp-keys="$pgp_keys"
[ -z "$root_pgp_key" ] || set -- "$@" -root-token-pgp-key="$root_pgp_key"
"$cli" operator init "$@" >"$tmp" || {
  rm -f "$tmp"
  fail "vault operator init failed: its error is above (already initialised? a PGP key without an encryption subkey?)"
}
mv "$tmp" "$out"
if [ -n "$pgp_keys" ] && [ -n "$root_pgp_key" ]; then
  cat >&2 <<NOTICE
operator-init: $out holds the $shares unseal keys, each encrypted to its custodian's PGP key
operator-init: (UNSEAL_PGP_KEYS, in that order), and the root token encrypted to ROOT_TOKEN_PGP_KEY.
operator-init: A custodian reads its share with: jq -r '.unseal_keys_b64[<n>]' $out | base64 -d | gpg -dq
operator-init: Send each share to its custodian; run scripts/prod/first-bootstrap.sh (it revokes the root token).
NOTICE
  exit 0
fi
clear=
[ -n "$pgp_keys" ] || clear="ALL $shares unseal keys"
[ -n "$root_pgp_key" ] || clear="${clear:+$clear and }the initial ROOT TOKEN"
cat >&2 <<WARNING
operator-init: ************************************************************************
operator-init: $out now holds $clear in clear (give UNSEAL_PGP_KEYS and ROOT_TOKEN_PGP_KEY to encrypt them).
operator-init: Anyone with $threshold of those keys can unseal Vault; the root token can do anything.
operator-init: Now: give each unseal key to a different custodian, run scripts/prod/first-bootstrap.sh
operator-init: (it revokes the root token), then shred $out. Never commit it, never mail it.
operator-init: ************************************************************************
WARNING
