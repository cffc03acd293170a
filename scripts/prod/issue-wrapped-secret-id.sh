#!/bin/sh
# The trusted orchestrator's step: mints a single-use secret id for the role <app>-app-<env>,
# response-wrapped, and drops the wrapping token where the agent reads its secret id.
#
#   issue-wrapped-secret-id.sh <secret-id-file>
#
# One delivery. scripts/prod/deliver-secret-ids.sh runs it whenever the agent's file is gone
# or too old, with its own WRAP_TTL; run alone, the file must be read before WRAP_TTL passes,
# since an expired wrapping token blocks the agent's login. Environment: VAULT_ADDR,
# VAULT_CACERT, VAULT_CLI, VAULT_TOKEN (the orchestrator token), WRAP_TTL (default 2m), APP_ENV
# (the environment: dev, staging or prod, required) and APP_NAME (default saas), which name the
# role (scripts/lib/app-name.sh).
set -eu
[ $# -eq 1 ] || { echo "usage: $0 <secret-id-file>" >&2; exit 2; }
out=$1
cli=${VAULT_CLI:-vault}
[ -n "${VAULT_ADDR:-}" ] || { echo "issue-wrapped-secret-id: VAULT_ADDR is not set" >&2; exit 1; }
[ -n "${VAULT_TOKEN:-}" ] || { echo "issue-wrapped-secret-id: VAULT_TOKEN (the orchestrator's) is not set" >&2; exit 1; }
unset BAO_ADDR BAO_TOKEN BAO_CACERT
fail() {
  echo "issue-wrapped-secret-id: $*" >&2
  exit 1
}
case ${APP_ENV:-} in
  dev | staging | prod) ;;
  *) fail "APP_ENV must be dev, staging or prod (got '${APP_ENV:-}'): it names the role" ;;
esac
. "$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)/../lib/app-name.sh"
role=$(app_role "$APP_ENV")

umask 077
tmp=$(mktemp "$(dirname "$out")/.secret-id.XXXXXX")
trap 'rm -f "$tmp"' EXIT
"$cli" write -wrap-ttl="${WRAP_TTL:-2m}" -f -field=wrapping_token "auth/approle/role/$role/secret-id" >"$tmp" ||
  fail "Vault refused to mint a wrapped secret id for auth/approle/role/$role"
chmod 0400 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "issue-wrapped-secret-id: dropped a wrapped secret id (wrap TTL ${WRAP_TTL:-2m}) at $out"
