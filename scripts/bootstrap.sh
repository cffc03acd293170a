#!/bin/sh
# Bootstraps Vault for the SaaS service: what the compose `vault-init` service runs.
#
#   bootstrap.sh <env> <credentials-dir>
#
# <env> is dev, staging or prod. Names come from APP_NAME (scripts/lib/app-name.sh; default
# saas): the policy and the AppRole role are both <app>-app-<env>, one role per application and
# environment, so bootstrapping one never touches another's role; the policy is
# policies/saas-app-<env>.hcl with saas- replaced by <app>-. The role id and a response-wrapped
# secret id for that role are written to <credentials-dir>/role-id and
# <credentials-dir>/secret-id (mode 0400):
# that is how the Vault Agent receives them. The agent unwraps the secret id once; a wrapping
# token someone else already unwrapped makes its login fail loudly (possible interception).
#
# Environment:
#   VAULT_ADDR, VAULT_TOKEN   the server and a token allowed to configure it (required)
#   VAULT_CLI                 the CLI to run: `vault` (default) or `bao`
#   APP_NAME                  the application (default saas): see scripts/lib/app-name.sh
#   ROLE_TOKEN_TTL            token_ttl of the role (default 5m)
#   ROLE_TOKEN_MAX_TTL        token_max_ttl (default 1h)
#   ROLE_SECRET_ID_TTL        secret_id_ttl (default 24h)
#   ROLE_SECRET_ID_NUM_USES   secret_id_num_uses (default 30)
#   ROLE_SECRET_ID_BOUND_CIDRS  secret_id_bound_cidrs, comma-separated (default: none)
#   SECRET_ID_WRAP_TTL        how long the wrapped secret id may wait for the agent (default 10m)
#
# Idempotent: a second run changes nothing in Vault. It writes a new secret id only when the
# file is gone (the agent removes it after reading) or holds a wrapping token that is used up
# or expired.
set -eu

usage() {
  echo "usage: VAULT_ADDR=... VAULT_TOKEN=... $0 <dev|staging|prod> <credentials-dir>" >&2
  exit 2
}
fail() {
  echo "bootstrap: $*" >&2
  exit 1
}
say() {
  echo "bootstrap: $*"
}

[ $# -eq 2 ] || usage
app_env=$1
credentials_dir=$2
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
# reason, seconds, require_vault_and_token, use_cli_with_token, enable_auth_method
. "$here/lib/vault-cli.sh"
policy_dir=${POLICY_DIR:-$here/../policies}

case $app_env in
  dev | staging | prod) ;;
  *) fail "unknown environment '$app_env': expected dev, staging or prod" ;;
esac
# app, app_kv_prefix, app_role, app_policy
. "$here/lib/app-name.sh"
# kill_switch_cidr
. "$here/lib/kill-switch-lock.sh"
policy_name=$(app_role "$app_env")
policy_file="$policy_dir/saas-app-$app_env.hcl"
[ -r "$policy_file" ] || fail "policy file $policy_file not found or not readable"
policy_text=$(app_policy "$policy_file")

use_cli_with_token

role=$policy_name
role_path="auth/approle/role/$role"
token_ttl=${ROLE_TOKEN_TTL:-5m}
token_max_ttl=${ROLE_TOKEN_MAX_TTL:-1h}
secret_id_ttl=${ROLE_SECRET_ID_TTL:-24h}
secret_id_num_uses=${ROLE_SECRET_ID_NUM_USES:-30}
secret_id_bound_cidrs=${ROLE_SECRET_ID_BOUND_CIDRS:-}
wrap_ttl=${SECRET_ID_WRAP_TTL:-10m}

token_ttl_s=$(seconds ROLE_TOKEN_TTL "$token_ttl")
token_max_ttl_s=$(seconds ROLE_TOKEN_MAX_TTL "$token_max_ttl")
secret_id_ttl_s=$(seconds ROLE_SECRET_ID_TTL "$secret_id_ttl")
seconds SECRET_ID_WRAP_TTL "$wrap_ttl" >/dev/null
case $secret_id_bound_cidrs in
  *[!0-9./,:a-fA-F]*) fail "ROLE_SECRET_ID_BOUND_CIDRS must be comma-separated CIDR blocks (got '$secret_id_bound_cidrs')" ;;
esac
case $secret_id_num_uses in
  '' | *[!0-9]*) fail "ROLE_SECRET_ID_NUM_USES must be a whole number (got '$secret_id_num_uses')" ;;
esac
[ "$token_ttl_s" -le "$token_max_ttl_s" ] ||
  fail "ROLE_TOKEN_TTL ($token_ttl) is longer than ROLE_TOKEN_MAX_TTL ($token_max_ttl)"

require_vault_and_token "run the bootstrap again"

# 1. KV v2 at secret/ (dev servers mount it already). Each step reads its own mount with
# -field=: Vault answers 400 "No secret engine mount at secret/" (exit 2) when there is none,
# and prints a map field as map[version:2].
if secret_type=$("$cli" read -field=type sys/mounts/secret 2>"$errors"); then
  secret_options=$("$cli" read -field=options sys/mounts/secret 2>"$errors") ||
    fail "cannot read the secret engine at secret/: $(reason)"
  case "$secret_type $secret_options" in
    'kv '*version:2*) say "KV v2 already enabled at secret/" ;;
    *) fail "secret/ is mounted, but not as KV version 2: move that engine elsewhere first" ;;
  esac
elif grep -q 'No secret engine mount at' "$errors"; then
  "$cli" secrets enable -path=secret -version=2 kv >/dev/null 2>"$errors" ||
    fail "cannot enable KV v2 at secret/: $(reason)"
  say "enabled KV v2 at secret/"
else
  fail "cannot read the secret engine at secret/: $(reason)"
fi

# 2. AppRole at auth/approle.
enable_auth_method approle AppRole

# 3. The read-only policy of this environment.
current_policy=$("$cli" policy read "$policy_name" 2>/dev/null || true)
if [ "$current_policy" = "$policy_text" ]; then
  say "policy $policy_name unchanged"
else
  printf '%s\n' "$policy_text" | "$cli" policy write "$policy_name" - >/dev/null 2>"$errors" ||
    fail "cannot write policy $policy_name: $(reason)"
  if [ -z "$current_policy" ]; then say "created policy $policy_name"; else say "updated policy $policy_name"; fi
fi

# 4. The role, bound to that policy only. token_num_uses stays 0: the agent refuses tokens
# with a use limit, and each lookup-self the service makes would spend a use.
role_field() {
  "$cli" read -field="$1" "$role_path" 2>/dev/null || true
}
wanted="[$policy_name] $token_ttl_s $token_max_ttl_s $secret_id_ttl_s $secret_id_num_uses 0 [$(echo "$secret_id_bound_cidrs" | tr ',' ' ')]"
current="$(role_field token_policies) $(role_field token_ttl) $(role_field token_max_ttl)"
current="$current $(role_field secret_id_ttl) $(role_field secret_id_num_uses) $(role_field token_num_uses)"
bound_cidrs=$(role_field secret_id_bound_cidrs)
current="$current $bound_cidrs"
if [ "$bound_cidrs" = "[$kill_switch_cidr]" ]; then
  say "role $role is locked by the kill switch: left as it is (scripts/prod/kill-switch.sh --reopen $app_env reopens it)"
elif [ "$current" = "$wanted" ]; then
  say "role $role unchanged"
else
  "$cli" write "$role_path" token_policies="$policy_name" \
    token_ttl="$token_ttl" token_max_ttl="$token_max_ttl" token_num_uses=0 \
    secret_id_ttl="$secret_id_ttl" secret_id_num_uses="$secret_id_num_uses" \
    secret_id_bound_cidrs="$secret_id_bound_cidrs" \
    >/dev/null 2>"$errors" || fail "cannot write role $role: $(reason)"
  say "wrote role $role (policy $policy_name, token_ttl $token_ttl, token_max_ttl $token_max_ttl, secret_id_ttl $secret_id_ttl, secret_id_num_uses $secret_id_num_uses${secret_id_bound_cidrs:+, secret_id_bound_cidrs $secret_id_bound_cidrs})"
fi

# 5. Example secrets, generated here and never overwritten: -cas=0 writes only when the
# path has no version yet. Values go through stdin, never the command line.
random_hex() {
  od -An -vtx1 -N"$1" /dev/urandom | tr -d ' \n'
}
put_example() {
  path="$app_kv_prefix/$app_env/$1"
  if "$cli" kv metadata get -mount=secret "$path" >/dev/null 2>&1; then
    say "secret/data/$path exists, left as it is"
    return
  fi
  printf '%s\n' "$2" | "$cli" kv put -mount=secret -cas=0 "$path" - >/dev/null 2>"$errors" ||
    fail "cannot write example secrets to secret/data/$path: $(reason)"
  say "wrote generated example secrets to secret/data/$path"
}
# The groups and their example values come from the catalogue (agent-config/secret-catalogue.json).
. "$here/lib/example-secrets.sh"

# 6. Role id and secret id for the agent, each written whole (temporary file, then rename).
mkdir -p "$credentials_dir" || fail "cannot create the credentials folder $credentials_dir"
write_private() {
  tmp=$(mktemp "$credentials_dir/.$1.XXXXXX") || fail "cannot write in $credentials_dir"
  printf '%s' "$2" >"$tmp"
  chmod 0400 "$tmp"
  mv -f "$tmp" "$credentials_dir/$1"
}
role_id=$("$cli" read -field=role_id "$role_path/role-id" 2>"$errors") ||
  fail "cannot read the role id of $role: $(reason)"
if [ -f "$credentials_dir/role-id" ] && [ "$(cat "$credentials_dir/role-id")" = "$role_id" ]; then
  say "role id already in $credentials_dir/role-id"
else
  write_private role-id "$role_id"
  say "wrote the role id to $credentials_dir/role-id"
fi
# A wrapping token, not the secret id itself: only the first to unwrap it gets the secret id.
wrapped_at() {
  "$cli" write -field=creation_path sys/wrapping/lookup token=- <"$1" 2>/dev/null || true
}
if [ -s "$credentials_dir/secret-id" ] && [ "$(wrapped_at "$credentials_dir/secret-id")" = "$role_path/secret-id" ]; then
  say "wrapped secret id in $credentials_dir/secret-id not unwrapped yet and still valid, left in place"
else
  wrapping_token=$("$cli" write -wrap-ttl="$wrap_ttl" -f -field=wrapping_token "$role_path/secret-id" 2>"$errors") ||
    fail "cannot create a secret id for $role: $(reason)"
  write_private secret-id "$wrapping_token"
  say "wrote a new response-wrapped secret id (wrap TTL $wrap_ttl) to $credentials_dir/secret-id"
fi
