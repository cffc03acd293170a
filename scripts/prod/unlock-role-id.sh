#!/bin/sh
# Lifts Vault's user lockout from the app's role id. An agent that kept logging in with a dead
# secret id (after the kill switch, or when no fresh one was delivered) makes Vault refuse every
# login for that role id for 15 minutes after 5 failures, a fresh secret id included.
#
#   unlock-role-id.sh <role-id-file>        (the agent's credentials/role-id)
#
# Run by an admin (policy saas-admin: sys/auth read for the AppRole mount's accessor,
# sys/locked-users/+/unlock/+). Environment: VAULT_ADDR, VAULT_CACERT, VAULT_CLI.
set -eu
fail() {
  echo "unlock-role-id: $*" >&2
  exit 1
}
[ $# -eq 1 ] || { echo "usage: $0 <role-id-file>" >&2; exit 2; }
file=$1
cli=${VAULT_CLI:-vault}
[ -n "${VAULT_ADDR:-}" ] || fail "VAULT_ADDR is not set"
[ -r "$file" ] || fail "$file is not a readable file (the role id)"
unset BAO_ADDR BAO_TOKEN BAO_CACERT
role_id=''
IFS= read -r role_id <"$file" || [ -n "$role_id" ] || fail "$file is empty"

. "$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)/../lib/vault-cli.sh"
# The mount's accessor, read with -field=. Not at sys/auth/approle, which takes sudo: at
# sys/internal/ui/mounts/auth/approle (what the CLI's own `kv` commands read), open to a token
# with any capability under auth/approle/. An absent mount and a token with none there both
# get 403 "preflight capability check returned 403".
accessor=$("$cli" read -field=accessor sys/internal/ui/mounts/auth/approle 2>"$errors") ||
  fail "no AppRole auth method at auth/approle that this token may see ($(reason)): is the token's policy saas-admin?"
[ -n "$accessor" ] || fail "no AppRole auth method at auth/approle"
"$cli" write -f "sys/locked-users/$accessor/unlock/$role_id" >/dev/null 2>"$errors" ||
  fail "cannot unlock the role id in $file ($(reason))"
echo "unlock-role-id: the role id in $file may log in again (mount $accessor)"
