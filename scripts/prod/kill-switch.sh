#!/bin/sh
# The kill switch: takes away, in one step, every identity one application's service holds in
# Vault in one environment, and locks it out until an operator reopens it. Nothing of another
# application or environment is touched.
#
#   kill-switch.sh <env>            take and lock
#   kill-switch.sh --reopen <env>   restore what the lock replaced; the service comes back by itself
#
# The role is <app>-app-<env> (APP_NAME, default saas: scripts/lib/app-name.sh), on every auth
# method where a role of that name exists (AppRole, kubernetes: read from sys/auth, no list kept
# here). Run by that application's admin (policy <app>-admin: VAULT_TOKEN, or the token helper
# after `vault login`) or a root token. In this order, so that nothing logs in again in between:
#   1. locks every role <app>-app-<env> against new logins, whatever the courier, the agent's
#      retries or a restarted pod then try. Each method has its own lock, a field that then
#      matches no client: AppRole's secret_id_bound_cidrs set to 0.0.0.0/32 (no connection
#      comes from 0.0.0.0; Vault answers 400 "source address ... unauthorized by CIDR
#      restrictions on the role", a fresh secret id included), kubernetes'
#      bound_service_account_names set to kill-switch:locked (':' is never in a service account's
#      name). The value each replaced is saved first, at secret/<app>-kill-switch/<env> (a field
#      per role path), so that --reopen restores exactly that. A role on a method with no known
#      lock is named, the other steps run, and the script exits 1. Why not token_bound_cidrs or
#      empty token_policies, which every method shares: Vault still issues the token
#      (specs/vault/plan-vault.md, section 6);
#   2. destroys every secret id of the AppRole roles, by accessor (the ones agents keep in
#      memory, and the wrapped ones not yet delivered): a stolen one stays useless after --reopen;
#   3. revokes, by accessor, every token that carries the policy <app>-app-<env>, whichever
#      method issued it, and their children: the service halts (503 vault_token_invalid) within
#      its check interval. No lease prefix tells one role's logins apart (Vault files them under
#      auth/<method>/login/ whatever the role), so the script lists the token accessors and
#      looks each up;
#   4. revokes the dynamic database credentials of the role
#      (sys/leases/revoke-prefix/database/creds/<app>-app-<env>); nothing to do there when the
#      database engine is not configured.
# --reopen puts back each locked role's saved value, lifts Vault's user lockout from the AppRole
# role ids (the agents' failed logins during the lock), and deletes the record. The agents log
# in again at their next try: with the next secret id the courier delivers (AppRole), with the
# pod's own token (kubernetes).
# Environment: VAULT_ADDR, VAULT_CACERT, VAULT_CLI (vault or bao), APP_NAME.
set -eu
fail() {
  echo "kill-switch: $*" >&2
  exit 1
}
say() {
  echo "kill-switch: $*"
}
usage() {
  echo "usage: $0 [--reopen] <dev|staging|prod>" >&2
  exit 2
}
reopen=false
[ "${1:-}" = --reopen ] && { reopen=true; shift; }
[ $# -eq 1 ] || usage
app_env=$1
case $app_env in
  dev | staging | prod) ;;
  *) fail "unknown environment '$app_env': expected dev, staging or prod" ;;
esac
cli=${VAULT_CLI:-vault}
[ -n "${VAULT_ADDR:-}" ] || fail "VAULT_ADDR is not set"
unset BAO_ADDR BAO_TOKEN BAO_CACERT
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
. "$here/../lib/vault-cli.sh"
. "$here/../lib/app-name.sh"
# kill_switch_cidr, kill_switch_name
. "$here/../lib/kill-switch-lock.sh"
role=$(app_role "$app_env")
record=$app-kill-switch/$app_env

"$cli" token lookup >/dev/null 2>"$errors" ||
  fail "no usable admin token ($(reason)): log in first (vault login -method=userpass username=<admin>) or set VAULT_TOKEN"

# A list field as the CLI prints it ([a b c]) as Vault takes it back (a,b,c).
as_list() {
  value=${1#[}
  value=${value%]}
  printf '%s' "$value" | tr ' ' ','
}
# A LIST (GET with list=true) read with -field=keys, which prints the keys as [a b c]; `list`
# itself takes no -field. It exits 2 with "No value found" when there is nothing to list.
listed() {
  keys=$("$cli" read -field=keys "$1" list=true 2>"$errors") || return 0
  keys=${keys#[}
  printf '%s\n' "${keys%]}"
}
list_or_fail() {
  out=$(listed "$1")
  if [ -z "$out" ] && ! grep -q 'No value found' "$errors" && [ -s "$errors" ]; then
    fail "cannot list $1 ($(reason)): is the token's policy $app-admin?"
  fi
  printf '%s\n' "$out"
}

# A mount as the loops below keep it, "<path>|<type>|<accessor>", split into $path (ending in
# /), $type, $accessor, and the role's path under it, $role_path.
use_mount() {
  path=${1%%|*}
  rest=${1#*|}
  type=${rest%%|*}
  accessor=${rest#*|}
  role_path=auth/${path}role/$role
}

# The mounts that have a role named $role, from the auth methods enabled (sys/auth, read by
# `auth list`). A mount without such a role answers 404 (no role of that name, or no role/ path
# at all, as userpass).
mounts=$("$cli" auth list 2>"$errors") || fail "cannot list the auth methods ($(reason)): is the token's policy $app-admin?"
roles=''
for mount in $(printf '%s\n' "$mounts" | awk 'NR > 2 && $1 ~ /\/$/ && $2 != "token" { print $1 "|" $2 "|" $3 }'); do
  use_mount "$mount"
  if "$cli" read -field=token_policies "$role_path" >/dev/null 2>"$errors"; then
    roles="$roles $mount"
  elif ! grep -q -e 'No value found' -e 'unsupported path' -e 'Code: 404' "$errors"; then
    fail "cannot read $role_path ($(reason)): is the token's policy $app-admin?"
  fi
done
[ -n "$roles" ] || fail "no role $role on any auth method: is APP_NAME ($app) right, and the environment ($app_env)?"

# The field that locks a role of method $1, and its locked value.
lock_field() {
  case $1 in
    approle) echo secret_id_bound_cidrs ;;
    kubernetes) echo bound_service_account_names ;;
    *) echo '' ;;
  esac
}
locked_value() {
  case $1 in
    approle) echo "$kill_switch_cidr" ;;
    kubernetes) echo "$kill_switch_name" ;;
  esac
}
# The saved record exists (a kill not yet reopened).
record_exists() {
  "$cli" kv get -mount=secret "$record" >/dev/null 2>"$errors" && return 0
  grep -q 'No value found' "$errors" || fail "cannot read secret/$record ($(reason)): is the token's policy $app-admin?"
  return 1
}

if [ "$reopen" = true ]; then
  record_exists || { say "$role is not locked (no record at secret/$record): nothing to reopen"; exit 0; }
  for mount in $roles; do
    use_mount "$mount"
    field=$(lock_field "$type")
    [ -n "$field" ] || continue
    current=$(as_list "$("$cli" read -field="$field" "$role_path" 2>"$errors")") || fail "cannot read $role_path ($(reason))"
    if [ "$current" = "$(locked_value "$type")" ]; then
      saved=$("$cli" kv get -mount=secret -field="$role_path" "$record" 2>"$errors") ||
        fail "no value saved for $role_path at secret/$record ($(reason)): set its $field by hand, then run --reopen again"
      "$cli" write "$role_path" "$field=$saved" >/dev/null 2>"$errors" || fail "cannot restore $field of $role_path ($(reason))"
      say "restored $field of $role_path to '$saved'"
    else
      say "$role_path was not locked ($field '$current'): left as it is"
    fi
    if [ "$type" = approle ]; then
      # The agents' logins during the lock may have locked the role id out (5 failures, 15
      # minutes): the next login would be refused even with a fresh secret id.
      role_id=$("$cli" read -field=role_id "$role_path/role-id" 2>"$errors") || fail "cannot read the role id of $role_path ($(reason))"
      "$cli" write -f "sys/locked-users/$accessor/unlock/$role_id" >/dev/null 2>"$errors" ||
        fail "cannot lift the lockout from the role id of $role_path ($(reason))"
    fi
  done
  "$cli" kv metadata delete -mount=secret "$record" >/dev/null 2>"$errors" || fail "cannot delete secret/$record ($(reason))"
  say "reopened $role: its agents log in again at their next try (AppRole: with the courier's next secret id)"
  exit 0
fi

# 1. The lock. The replaced value is saved before the role is written, so that nothing is lost
# if the script stops in between; a role already locked keeps the value saved the first time.
unlockable=''
saved_any=false
record_exists && saved_any=true
for mount in $roles; do
  use_mount "$mount"
  field=$(lock_field "$type")
  if [ -z "$field" ]; then
    unlockable="$unlockable $role_path ($type)"
    continue
  fi
  lock=$(locked_value "$type")
  current=$(as_list "$("$cli" read -field="$field" "$role_path" 2>"$errors")") || fail "cannot read $role_path ($(reason))"
  if [ "$current" = "$lock" ]; then
    say "$role_path was locked already ($field $lock): the value it replaced stays saved at secret/$record"
    continue
  fi
  if [ "$saved_any" = true ]; then verb=patch; else verb=put; fi
  "$cli" kv "$verb" -mount=secret "$record" "$role_path=$current" >/dev/null 2>"$errors" ||
    fail "cannot save $field of $role_path at secret/$record ($(reason)): nothing locked yet"
  saved_any=true
  "$cli" write "$role_path" "$field=$lock" >/dev/null 2>"$errors" || fail "cannot lock $role_path ($(reason))"
  say "locked $role_path ($field $lock; was '$current', saved at secret/$record): no new login"
done

# 2. The AppRole roles' secret ids.
for mount in $roles; do
  use_mount "$mount"
  [ "$type" = approle ] || continue
  # A courier still running may mint one between the list and the check (the lock refuses its
  # logins, not its minting): up to three rounds, then the operator is told.
  destroyed=0
  for round in 1 2 3; do
    for accessor in $(list_or_fail "$role_path/secret-id"); do
      "$cli" write "$role_path/secret-id-accessor/destroy" secret_id_accessor="$accessor" >/dev/null 2>"$errors" ||
        fail "cannot destroy secret id accessor $accessor of $role_path ($(reason))"
      destroyed=$((destroyed + 1))
    done
    [ -n "$(listed "$role_path/secret-id")" ] || break
    [ "$round" -lt 3 ] || fail "secret ids of $role_path remain after destroying $destroyed in 3 rounds: run the kill switch again"
  done
  say "destroyed $destroyed secret id(s) of $role_path"
done

# 3. Every token with the role's policy. A token that expires between the list and its lookup
# is gone already ("invalid accessor"); any other refusal stops the script.
revoked=0
for accessor in $(list_or_fail auth/token/accessors); do
  if ! policies=$("$cli" write -field=policies auth/token/lookup-accessor accessor="$accessor" 2>"$errors"); then
    grep -q 'invalid accessor' "$errors" && continue
    fail "cannot look up token accessor $accessor ($(reason)): is the token's policy $app-admin?"
  fi
  case " $(as_list "$policies" | tr ',' ' ') " in
    *" $role "*) ;;
    *) continue ;;
  esac
  if ! "$cli" write auth/token/revoke-accessor accessor="$accessor" >/dev/null 2>"$errors"; then
    grep -q 'invalid accessor' "$errors" && continue
    fail "cannot revoke the token of accessor $accessor ($(reason))"
  fi
  revoked=$((revoked + 1))
done
say "revoked $revoked token(s) with the policy $role (and their children): the service halts within its check interval"

# 4. With no database engine at database/, Vault has no lease under the prefix and answers 204.
"$cli" write -f "sys/leases/revoke-prefix/database/creds/$role" >/dev/null 2>"$errors" ||
  fail "cannot revoke the leases under database/creds/$role ($(reason))"
say "revoked the database credentials leased under database/creds/$role"
[ -z "$unlockable" ] ||
  fail "no lock known for$unlockable: its tokens are revoked, but it can log in again; remove the role or lock it by hand"
say "$role stays locked until: scripts/prod/kill-switch.sh --reopen $app_env"
