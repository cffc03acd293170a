#!/bin/sh
# The trusted orchestrator, shipped: keeps one fresh response-wrapped secret id waiting where the
# Vault Agent reads it, and keeps its own token alive.
#
#   deliver-secret-ids.sh <credentials-dir> <orchestrator-token-file>
#
# Why a loop that watches the file rather than a drop every so often. The agent reads
# <credentials-dir>/secret-id only when it logs in (at its token's max TTL, after a lost or
# revoked token, at every start) and removes it once unwrapped; the secret id is single-use.
# A drop timed by the clock is read whenever the next login happens, by which time its wrapping
# token may have expired, and an expired file blocks every later login (the agent never falls
# back to the secret id it remembers while a file is there). So, every DELIVERY_INTERVAL, this
# drops a new wrapped secret id when the file is gone (a login consumed it) or older than
# SECRET_ID_MAX_AGE. Whenever the agent logs in, the file it finds is at most
# SECRET_ID_MAX_AGE + DELIVERY_INTERVAL old, so its wrapping token has WRAP_TTL minus that left
# (4m30s with the defaults): an outage of this loop shorter than that costs nothing, and a longer
# one only matters if a login falls in it. A replaced file's secret id is never unwrapped: it
# expires with its wrapping token, unseen by anyone.
#
# Every ORCHESTRATOR_RENEW_INTERVAL it renews its periodic token (renew-orchestrator-token.sh;
# the period is 24h by default, so a stopped loop has a day before the token is lost).
# A sealed or unreachable Vault is logged and tried again at the next interval; this never gives
# up on its own. It stops on SIGTERM or SIGINT.
#
# Environment: VAULT_ADDR, VAULT_CACERT, VAULT_CLI (vault or bao); APP_ENV (dev, staging or prod,
# required) and APP_NAME (default saas), which name the role <app>-app-<env> it mints for;
#   DELIVERY_INTERVAL             how often it looks at the file (default 30s)
#   SECRET_ID_MAX_AGE             a waiting file older than this is replaced (default 5m)
#   WRAP_TTL                      the wrapping token's TTL (default 10m, the most the
#                                 saas-orchestrator-<env> policy allows)
#   ORCHESTRATOR_RENEW_INTERVAL   how often it renews its token (default 6h)
set -eu
fail() {
  echo "deliver-secret-ids: $*" >&2
  exit 1
}
[ $# -eq 2 ] || { echo "usage: $0 <credentials-dir> <orchestrator-token-file>" >&2; exit 2; }
credentials_dir=$1
token_file=$2
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$here/../lib/vault-cli.sh"

interval=${DELIVERY_INTERVAL:-30s}
max_age=${SECRET_ID_MAX_AGE:-5m}
wrap_ttl=${WRAP_TTL:-10m}
renew_every=${ORCHESTRATOR_RENEW_INTERVAL:-6h}
interval_ms=$(milliseconds DELIVERY_INTERVAL "$interval")
max_age_ms=$(milliseconds SECRET_ID_MAX_AGE "$max_age")
wrap_ttl_ms=$(milliseconds WRAP_TTL "$wrap_ttl")
renew_ms=$(milliseconds ORCHESTRATOR_RENEW_INTERVAL "$renew_every")
[ "$interval_ms" -gt 0 ] || fail "DELIVERY_INTERVAL must be more than 0"
[ $((wrap_ttl_ms % 1000)) -eq 0 ] || fail "WRAP_TTL must be whole seconds: Vault counts TTLs in seconds (got '$wrap_ttl')"
[ $((max_age_ms + interval_ms)) -lt "$wrap_ttl_ms" ] ||
  fail "WRAP_TTL ($wrap_ttl) must be longer than SECRET_ID_MAX_AGE + DELIVERY_INTERVAL ($max_age + $interval): a file could expire before the agent reads it"
[ -n "${VAULT_ADDR:-}" ] || fail "VAULT_ADDR is not set"
case ${APP_ENV:-} in
  dev | staging | prod) ;;
  *) fail "APP_ENV must be dev, staging or prod (got '${APP_ENV:-}'): it names the role the secret ids are for" ;;
esac
. "$here/../lib/app-name.sh"
[ -d "$credentials_dir" ] || fail "$credentials_dir is not a folder (the agent's credentials)"
[ -r "$token_file" ] || fail "$token_file is not a readable file (the orchestrator token)"

file=$credentials_dir/secret-id
pause=$(printf '%d.%03d' $((interval_ms / 1000)) $((interval_ms % 1000)))
trap 'echo "deliver-secret-ids: stopped"; exit 0' TERM INT

# Age of the waiting file in milliseconds (whole seconds: mtime), or nothing when there is none.
age_ms() {
  [ -s "$file" ] || return 0
  modified=$(stat -c %Y "$file" 2>/dev/null) || return 0
  echo $((($(date +%s) - modified) * 1000))
}

deliver() {
  token=''
  IFS= read -r token <"$token_file" || [ -n "$token" ] || { echo "deliver-secret-ids: $token_file is empty" >&2; return 1; }
  VAULT_TOKEN=$token WRAP_TTL=$((wrap_ttl_ms / 1000))s sh "$here/issue-wrapped-secret-id.sh" "$file" >/dev/null 2>"$errors" ||
    { echo "deliver-secret-ids: no secret id delivered ($1), trying again in $interval: $(tail -n 1 "$errors")" >&2; return 1; }
  echo "deliver-secret-ids: delivered a wrapped secret id to $file ($1; wrap TTL $wrap_ttl)"
}

echo "deliver-secret-ids: keeping a wrapped secret id of $(app_role "$APP_ENV") at $file (every $interval; replaced after $max_age; wrap TTL $wrap_ttl)"
last_renew=$(date +%s)
while :; do
  age=$(age_ms)
  if [ -z "$age" ]; then
    deliver "none waiting" || true
  elif [ "$age" -ge "$max_age_ms" ]; then
    deliver "the waiting one is ${age}ms old" || true
  fi
  if [ $((($(date +%s) - last_renew) * 1000)) -ge "$renew_ms" ]; then
    sh "$here/renew-orchestrator-token.sh" "$token_file" && last_renew=$(date +%s) || true
  fi
  sleep "$pause" &
  wait $! || true
done
