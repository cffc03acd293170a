#!/bin/sh
# The emergency root token, once first-bootstrap.sh has revoked the initial one: a quorum of
# unseal key custodians, each pasting their key, and (OpenBao 2.6 and later) an admin logged in
# with the policy saas-admin, which alone may start a root generation.
#
#   generate-root.sh <root-token-file> < keys        (one unseal key per line)
#
# Keys are read from standard input, never from argv. The root token is written only to
# <root-token-file> (must not exist yet, created 0400), never printed. Revoke it as soon as the
# emergency is over:  VAULT_TOKEN="$(cat <root-token-file>)" vault token revoke -self, then
# shred the file. Environment: VAULT_ADDR, VAULT_CACERT, VAULT_CLI (vault or bao), and the
# admin's token (VAULT_TOKEN, or the token helper after `vault login`).
set -eu
fail() {
  echo "generate-root: $*" >&2
  exit 1
}
[ $# -eq 1 ] || { echo "usage: $0 <root-token-file> < unseal-keys" >&2; exit 2; }
out=$1
cli=${VAULT_CLI:-vault}
[ -n "${VAULT_ADDR:-}" ] || fail "VAULT_ADDR is not set"
[ ! -e "$out" ] || fail "$out already exists: refusing to overwrite a root token"
unset BAO_ADDR BAO_TOKEN BAO_CACERT

. "$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)/../lib/vault-cli.sh"
# `operator generate-root` has no -field=: its -format=json answer is read with Node.js, which
# the clone needs anyway (the CLI's indentation is not an interface).
command -v node >/dev/null 2>&1 || fail "node (Node.js) is needed to read the CLI's JSON answers: install it, or run from the clone's machine"
field() {
  node -e 'let s = ""; process.stdin.on("data", (d) => { s += d; }).on("end", () => {
    const v = JSON.parse(s)[process.argv[1]]; process.stdout.write(v === undefined || v === null ? "" : String(v)); });' "$1"
}

# The OTP comes back once, in the answer to -init; the server XORs the new token with it.
started=$("$cli" operator generate-root -init -format=json 2>"$errors") ||
  fail "Vault refused to start a root token generation ($(reason)): with OpenBao log in as an admin (policy saas-admin) first; if an attempt is already running and is not yours, cancel it: $cli operator generate-root -cancel"
nonce=$(printf '%s\n' "$started" | field nonce)
otp=$(printf '%s\n' "$started" | field otp)
required=$(printf '%s\n' "$started" | field required)
[ -n "$nonce" ] && [ -n "$otp" ] || fail "Vault started a root generation without a nonce or OTP"
echo "generate-root: started (nonce $nonce): $required unseal key(s) required"

cancel() {
  "$cli" operator generate-root -cancel >/dev/null 2>&1 || true
}
given=0
encoded=''
while [ -z "$encoded" ] && IFS= read -r key; do
  [ -n "$key" ] || continue
  answer=$(printf '%s' "$key" | "$cli" operator generate-root -nonce="$nonce" -format=json - 2>"$errors") ||
    { cancel; fail "a key was refused ($(reason)); the attempt is cancelled"; }
  given=$((given + 1))
  if [ "$(printf '%s\n' "$answer" | field complete)" = true ]; then
    encoded=$(printf '%s\n' "$answer" | field encoded_token)
    [ -n "$encoded" ] || encoded=$(printf '%s\n' "$answer" | field encoded_root_token)
  fi
done
key=''
if [ -z "$encoded" ]; then
  cancel
  fail "$given key(s) given, $required required: more custodians needed; the attempt is cancelled"
fi

umask 077
# The OTP alone decodes nothing; the encoded token goes through stdin.
printf '%s' "$encoded" | "$cli" operator generate-root -decode=- -otp="$otp" >"$out.partial" 2>"$errors" ||
  { rm -f "$out.partial"; fail "cannot decode the new root token: $(reason)"; }
chmod 0400 "$out.partial"
mv "$out.partial" "$out"
cat >&2 <<WARNING
generate-root: ************************************************************************
generate-root: $out now holds a ROOT TOKEN ($given key(s) given). It never expires.
generate-root: Do only what the emergency needs, then revoke it and shred the file:
generate-root:   VAULT_TOKEN="\$(cat $out)" $cli token revoke -self
generate-root: ************************************************************************
WARNING
