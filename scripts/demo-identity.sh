#!/bin/sh
# A sign-in for dev and the tests: Vault's own OpenID Connect provider, with one demo user per
# tenant. Production brings its own issuer (specs/vault/plan-vault.md, "La connexion").
#
#   demo-identity.sh <env> <redirect-url> <demo-users-dir>
#
# Makes, on the Vault at VAULT_ADDR (OpenBao or HashiCorp Vault; names from APP_NAME, default
# saas):
#   - userpass at auth/userpass, and the demo users (DEMO_USERS), each an entity whose
#     metadata names its tenant (the user's own name). A user's password is generated here and
#     written to <demo-users-dir>/<user> (0600), the only place it exists; it is never printed.
#     A user whose file is there keeps its password, and is written again with it when Vault
#     does not know the user (a new dev server beside the files of the one before).
#   - the scope `tenant` ({"tenant": <the entity's metadata tenant>}), the signing key
#     <app>-<env>, the assignment <app>-<env>-demo (the demo entities, nobody else), the
#     confidential client <app>-app-<env> (redirect URL <redirect-url>) and the provider
#     <app>-<env>, whose issuer is ISSUER_ADDR/v1/identity/oidc/provider/<app>-<env>.
#   - the client's id and secret, written to secret/data/<app>-project/<env>/oidc (the secret
#     catalogue's oidc group) as JSON on stdin, when they differ from what is there.
#
# Environment:
#   VAULT_ADDR, VAULT_TOKEN   the server and a token allowed to configure it (required)
#   VAULT_CLI                 vault (default) or bao
#   APP_NAME                  the application (default saas): see scripts/lib/app-name.sh
#   ISSUER_ADDR               scheme://host:port the service reaches Vault at (default
#                             VAULT_ADDR): the issuer's address in every ID token
#   DEMO_USERS                the demo users, space-separated (default "acme globex"), each
#                             the tenant of the same name
#
# Idempotent: a second run changes only what differs.
set -eu

usage() {
  echo "usage: VAULT_ADDR=... VAULT_TOKEN=... $0 <dev|staging|prod> <redirect-url> <demo-users-dir>" >&2
  exit 2
}
fail() {
  echo "demo-identity: $*" >&2
  exit 1
}
say() {
  echo "demo-identity: $*"
}

[ $# -eq 3 ] || usage
app_env=$1
redirect_url=$2
users_dir=$3
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
# reason, require_vault_and_token, use_cli_with_token, enable_auth_method
. "$here/lib/vault-cli.sh"
case $app_env in
  dev | staging | prod) ;;
  *) fail "unknown environment '$app_env': expected dev, staging or prod" ;;
esac
case $redirect_url in
  http://*/auth/callback | https://*/auth/callback) ;;
  *) fail "the redirect URL must be the service's http(s)://<host>/auth/callback (got '$redirect_url')" ;;
esac
# app, app_kv_prefix, app_role
. "$here/lib/app-name.sh"
use_cli_with_token
issuer_addr=${ISSUER_ADDR:-$VAULT_ADDR}
case $issuer_addr in
  http://* | https://*) ;;
  *) fail "ISSUER_ADDR must be an http(s)://host:port address (got '$issuer_addr')" ;;
esac
require_vault_and_token "run this again"

client=$(app_role "$app_env")
provider=$app-$app_env
key=$provider
assignment=$provider-demo
users=${DEMO_USERS:-acme globex}
for user in $users; do
  case $user in
    [a-z0-9]?* ) case $user in *[!a-z0-9-]*) user= ;; esac ;;
    *) user= ;;
  esac
  [ -n "$user" ] && [ "${#user}" -le 63 ] ||
    fail "DEMO_USERS must be tenant names: 2 to 63 lowercase letters, digits or dashes, not starting with a dash"
done

mkdir -p "$users_dir" || fail "cannot create the demo users' folder $users_dir"
chmod 0700 "$users_dir"

# 1. The demo users and their entities: a login through userpass lands on the entity its alias
# names, whose metadata holds the tenant the scope template puts in the ID token.
enable_auth_method userpass userpass
accessor=$("$cli" read -field=accessor sys/auth/userpass 2>"$errors") ||
  fail "cannot read the accessor of auth/userpass: $(reason)"
entity_ids=
for user in $users; do
  if [ ! -s "$users_dir/$user" ]; then
    tmp=$(mktemp "$users_dir/.$user.XXXXXX") || fail "cannot write in $users_dir"
    od -An -vtx1 -N16 /dev/urandom | tr -d ' \n' >"$tmp"
    chmod 0600 "$tmp"
    "$cli" write "auth/userpass/users/$user" password=- <"$tmp" >/dev/null 2>"$errors" ||
      fail "cannot write the demo user $user: $(reason)"
    mv -f "$tmp" "$users_dir/$user"
    say "wrote the demo user $user (password in $users_dir/$user)"
  elif "$cli" read "auth/userpass/users/$user" >/dev/null 2>&1; then
    say "demo user $user kept (password in $users_dir/$user)"
  else
    # The file outlived the server that knew it (a dev server keeps nothing across a restart):
    # the user comes back with the password in the file, which is the one handed out.
    "$cli" write "auth/userpass/users/$user" password=- <"$users_dir/$user" >/dev/null 2>"$errors" ||
      fail "cannot write the demo user $user: $(reason)"
    say "wrote the demo user $user again, with the password kept in $users_dir/$user (Vault did not know it)"
  fi
  "$cli" write "identity/entity/name/$user" metadata="tenant=$user" >/dev/null 2>"$errors" ||
    fail "cannot write the entity $user: $(reason)"
  id=$("$cli" read -field=id "identity/entity/name/$user" 2>"$errors") ||
    fail "cannot read the entity $user: $(reason)"
  # A lookup that finds nothing answers 204, no error and no data: the entity's own id (the
  # one line at the data's depth), or nothing, says.
  linked=$("$cli" write -format=json identity/lookup/entity alias_name="$user" alias_mount_accessor="$accessor" 2>/dev/null |
    sed -n 's/^    "id": "\([^"]*\)",$/\1/p') || linked=
  if [ "$linked" != "$id" ]; then
    [ -z "$linked" ] || fail "the userpass user $user belongs to another entity ($linked), not the entity $user: delete that alias first"
    "$cli" write identity/entity-alias name="$user" canonical_id="$id" mount_accessor="$accessor" >/dev/null 2>"$errors" ||
      fail "cannot link the userpass user $user to its entity: $(reason)"
  fi
  entity_ids=${entity_ids:+$entity_ids,}$id
done

# 2. The provider's parts. The key signs only this client's ID tokens; the assignment lets
# the demo entities, nobody else, sign in to it.
"$cli" write identity/oidc/scope/tenant description="the tenant in the entity's metadata" \
  template='{"tenant": {{identity.entity.metadata.tenant}}}' >/dev/null 2>"$errors" ||
  fail "cannot write the scope tenant: $(reason)"
"$cli" write "identity/oidc/assignment/$assignment" entity_ids="$entity_ids" >/dev/null 2>"$errors" ||
  fail "cannot write the assignment $assignment: $(reason)"
if ! "$cli" read "identity/oidc/key/$key" >/dev/null 2>&1; then
  "$cli" write "identity/oidc/key/$key" algorithm=RS256 rotation_period=24h verification_ttl=24h >/dev/null 2>"$errors" ||
    fail "cannot write the key $key: $(reason)"
fi
"$cli" write "identity/oidc/client/$client" key="$key" redirect_uris="$redirect_url" assignments="$assignment" \
  client_type=confidential id_token_ttl=5m access_token_ttl=5m >/dev/null 2>"$errors" ||
  fail "cannot write the client $client: $(reason)"
client_id=$("$cli" read -field=client_id "identity/oidc/client/$client" 2>"$errors") ||
  fail "cannot read the client $client: $(reason)"
"$cli" write "identity/oidc/key/$key" allowed_client_ids="$client_id" >/dev/null 2>"$errors" ||
  fail "cannot bind the key $key to the client $client: $(reason)"
"$cli" write "identity/oidc/provider/$provider" issuer="$issuer_addr" allowed_client_ids="$client_id" \
  scopes_supported=tenant >/dev/null 2>"$errors" || fail "cannot write the provider $provider: $(reason)"
say "provider $provider: issuer $issuer_addr/v1/identity/oidc/provider/$provider, client $client, redirect $redirect_url"

# 3. The client's credentials, for the service, as the catalogue's oidc group. The secret goes
# from one CLI to the other through a pipe, never a command line.
path=$app_kv_prefix/$app_env/oidc
wanted=$("$cli" read -format=json "identity/oidc/client/$client" 2>"$errors" |
  sed -n 's/^ *"\(client_id\|client_secret\)": \("[^"]*"\),\{0,1\}$/"\1": \2/p' | paste -sd, -) ||
  fail "cannot read the client $client: $(reason)"
case $wanted in
  *client_id*client_secret* | *client_secret*client_id*) ;;
  *) fail "the client $client has no client_id and client_secret to hand to the service" ;;
esac
current=$("$cli" kv get -format=json -mount=secret "$path" 2>/dev/null |
  sed -n 's/^ *"\(client_id\|client_secret\)": \("[^"]*"\),\{0,1\}$/"\1": \2/p' | paste -sd, -) || current=
if [ "$current" = "$wanted" ]; then
  say "secret/data/$path unchanged"
else
  printf '{%s}\n' "$wanted" | "$cli" kv put -mount=secret "$path" - >/dev/null 2>"$errors" ||
    fail "cannot write the client's credentials to secret/data/$path: $(reason)"
  say "wrote the client's credentials to secret/data/$path"
fi
