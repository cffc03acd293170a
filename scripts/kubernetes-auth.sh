#!/bin/sh
# Configures Vault's kubernetes auth method for the SaaS service on Kubernetes: the pods'
# service account token is their identity (agent-config/kubernetes.hcl logs in with it), so no
# secret id is delivered. Vault checks each token it is given with a TokenReview against the
# cluster's API server.
#
#   kubernetes-auth.sh <env>
#
# Writes, idempotently:
#   auth/kubernetes                     enabled (the kubernetes auth method)
#   auth/kubernetes/config              the API server, its CA, the reviewer's token
#   auth/kubernetes/role/<app>-app-<env>  bound to the service account, namespace and token
#                                       audience the manifests use, with the policy
#                                       <app>-app-<env> only and the AppRole role's token TTLs
# The policy must exist: scripts/bootstrap.sh (or prod/first-bootstrap.sh) writes it.
#
# Environment:
#   VAULT_ADDR, VAULT_TOKEN     the server and a token allowed to configure it (required)
#   VAULT_CLI                   `vault` (default) or `bao`
#   APP_NAME                    the application (default saas): scripts/lib/app-name.sh
#   KUBERNETES_HOST             the API server as Vault reaches it, https://... (required)
#   KUBERNETES_CA_FILE          the cluster's CA certificate, PEM (required)
#   TOKEN_REVIEWER_JWT_FILE     a token of a service account bound to system:auth-delegator
#                               (deploy/kubernetes/token-reviewer/): needed when Vault runs
#                               outside the cluster. Without it, Vault reviews each login with
#                               the client's own token, which then needs that binding itself.
#   KUBERNETES_NAMESPACE        the app's namespace (default saas)
#   KUBERNETES_SERVICE_ACCOUNT  the app's service account (default <app>-app)
#   KUBERNETES_AUDIENCE         the audience the agent's projected token is issued for (default
#                               vault, as deploy/kubernetes/overlays/native-sidecar projects it):
#                               a token for another audience (the API server's default, which
#                               any container given the pod's token would hold) is refused
#   ROLE_TOKEN_TTL, ROLE_TOKEN_MAX_TTL  the tokens' TTL and max TTL (default 5m and 1h, as
#                               bootstrap.sh gives the AppRole role)
set -eu

usage() {
  echo "usage: VAULT_ADDR=... VAULT_TOKEN=... KUBERNETES_HOST=... KUBERNETES_CA_FILE=... $0 <dev|staging|prod>" >&2
  exit 2
}
fail() {
  echo "kubernetes-auth: $*" >&2
  exit 1
}
say() {
  echo "kubernetes-auth: $*"
}

[ $# -eq 1 ] || usage
app_env=$1
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
# reason, seconds, require_vault_and_token, use_cli_with_token, enable_auth_method
. "$here/lib/vault-cli.sh"
case $app_env in
  dev | staging | prod) ;;
  *) fail "unknown environment '$app_env': expected dev, staging or prod" ;;
esac
# app, app_role
. "$here/lib/app-name.sh"
# kill_switch_name
. "$here/lib/kill-switch-lock.sh"
role=$(app_role "$app_env")

use_cli_with_token
host=${KUBERNETES_HOST:-}
case $host in
  https://*) ;;
  '') fail "KUBERNETES_HOST is not set: give the API server's address as Vault reaches it (https://...)" ;;
  *) fail "KUBERNETES_HOST must be an https:// address (got '$host')" ;;
esac
ca_file=${KUBERNETES_CA_FILE:-}
[ -n "$ca_file" ] || fail "KUBERNETES_CA_FILE is not set: give the file holding the cluster's CA certificate"
grep -q 'BEGIN CERTIFICATE' "$ca_file" 2>/dev/null || fail "KUBERNETES_CA_FILE ($ca_file) is not a readable PEM certificate"
reviewer=${TOKEN_REVIEWER_JWT_FILE:-}
if [ -n "$reviewer" ]; then
  [ -s "$reviewer" ] || fail "TOKEN_REVIEWER_JWT_FILE ($reviewer) is missing or empty"
fi
namespace=${KUBERNETES_NAMESPACE:-saas}
service_account=${KUBERNETES_SERVICE_ACCOUNT:-$app-app}
audience=${KUBERNETES_AUDIENCE:-vault}
token_ttl=${ROLE_TOKEN_TTL:-5m}
token_max_ttl=${ROLE_TOKEN_MAX_TTL:-1h}
[ "$(seconds ROLE_TOKEN_TTL "$token_ttl")" -le "$(seconds ROLE_TOKEN_MAX_TTL "$token_max_ttl")" ] ||
  fail "ROLE_TOKEN_TTL ($token_ttl) is longer than ROLE_TOKEN_MAX_TTL ($token_max_ttl)"

require_vault_and_token "run this script again"

"$cli" policy read "$role" >/dev/null 2>"$errors" ||
  fail "policy $role not found ($(reason)): run scripts/bootstrap.sh $app_env first"

enable_auth_method kubernetes "the kubernetes auth method"

# disable_local_ca_jwt: a Vault running in a pod would otherwise use its own pod's token and CA
# in place of the ones given here.
set -- kubernetes_host="$host" kubernetes_ca_cert=@"$ca_file" disable_local_ca_jwt=true
if [ -n "$reviewer" ]; then set -- "$@" token_reviewer_jwt=@"$reviewer"; fi
"$cli" write auth/kubernetes/config "$@" >/dev/null 2>"$errors" ||
  fail "cannot write auth/kubernetes/config: $(reason)"
say "auth/kubernetes/config: $host${reviewer:+, reviewer token from $reviewer}"

if [ "$("$cli" read -field=bound_service_account_names "auth/kubernetes/role/$role" 2>/dev/null)" = "[$kill_switch_name]" ]; then
  say "role $role is locked by the kill switch: left as it is (scripts/prod/kill-switch.sh --reopen $app_env reopens it)"
  exit 0
fi
"$cli" write "auth/kubernetes/role/$role" \
  bound_service_account_names="$service_account" bound_service_account_namespaces="$namespace" \
  audience="$audience" token_policies="$role" token_ttl="$token_ttl" token_max_ttl="$token_max_ttl" >/dev/null 2>"$errors" ||
  fail "cannot write auth/kubernetes/role/$role: $(reason)"
say "role $role: service account $service_account in namespace $namespace, audience $audience, policy $role, token TTL $token_ttl (max $token_max_ttl)"
