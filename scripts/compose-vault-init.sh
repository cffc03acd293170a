#!/bin/sh
# What the compose one-shots run against the Vault dev server:
#
#   compose-vault-init.sh              (vault-init, before PostgreSQL starts)
#   compose-vault-init.sh database     (vault-db-init, once PostgreSQL is healthy)
#
#   1. reads the dev server's generated root token from the file it stored (the server's
#      ~/.vault-token, on a volume shared read-only with this container), waiting for it;
#   2. vault-init: runs bootstrap.sh for APP_ENV: KV v2, AppRole, the policy, the role,
#      example secrets, and the role-id and secret-id files the agent logs in with; then
#      postgres-credentials.sh: the PostgreSQL superuser password, the app's KV credentials and
#      vault_admin's initial password, from Vault, as files for the postgres container;
#   3. vault-db-init, with DATABASE_CREDENTIALS=dynamic: runs database-engine.sh, which hands
#      vault_admin's initial password to Vault's database engine and has Vault rotate it at
#      once. With DATABASE_CREDENTIALS=kv it has nothing to do.
#
# Environment (the defaults are the paths in the compose file's containers):
#   VAULT_ADDR                 the server (default http://vault:8200)
#   VAULT_CLI                  vault (default) or bao, a name on PATH or a path
#   APP_ENV                    dev (default), staging or prod
#   VAULT_TOKEN_FILE_PATH      the root token file (default /vault/home/.vault-token)
#   VAULT_TOKEN_WAIT_SECONDS   how long to wait for that file to appear (default 30)
#   CREDENTIALS_DIR            role-id and secret-id (default /vault/agent/credentials)
#   PG_INIT_DIR                PostgreSQL's files (default /pg-init)
#   DATABASE_CREDENTIALS       dynamic (default) or kv: whether vault-db-init sets up the engine
#   DATABASE_ADDRESS           PostgreSQL as the Vault server reaches it (default postgres:5432)
#
# The root token goes to the two scripts through VAULT_TOKEN, in this process tree only; it is
# never printed and never written anywhere else. POSIX sh: runs on the Vault image's busybox.
set -eu
ulimit -c 0 2>/dev/null || true
umask 027

fail() {
  echo "compose-vault-init: $*" >&2
  exit 1
}

step=${1:-bootstrap}
case $step in
  bootstrap | database) ;;
  *) fail "unknown step '$step': expected no argument (vault-init) or 'database' (vault-db-init)" ;;
esac
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
token_file=${VAULT_TOKEN_FILE_PATH:-/vault/home/.vault-token}
credentials_dir=${CREDENTIALS_DIR:-/vault/agent/credentials}
pg_init_dir=${PG_INIT_DIR:-/pg-init}
wait_seconds=${VAULT_TOKEN_WAIT_SECONDS:-30}
case $wait_seconds in
  '' | *[!0-9]*) fail "VAULT_TOKEN_WAIT_SECONDS must be a whole number of seconds (got '$wait_seconds')" ;;
esac

VAULT_ADDR=${VAULT_ADDR:-http://vault:8200}
VAULT_CLI=${VAULT_CLI:-vault}
APP_ENV=${APP_ENV:-dev}
export VAULT_ADDR VAULT_CLI APP_ENV
# bao reads BAO_* before VAULT_*: both CLIs must act on the server and token given here.
unset BAO_ADDR BAO_TOKEN

# The dev server stores the token just after it unseals: wait for the file, not the server.
waited=0
while [ ! -s "$token_file" ]; do
  [ "$waited" -lt "$wait_seconds" ] ||
    fail "no root token in $token_file after ${wait_seconds}s: is the dev server's HOME on the shared volume (VAULT_TOKEN_FILE_PATH)?"
  sleep 1
  waited=$((waited + 1))
done
[ -r "$token_file" ] || fail "cannot read the root token file $token_file (check the container's user)"
VAULT_TOKEN=$(tr -d ' \r\n' <"$token_file")
[ -n "$VAULT_TOKEN" ] || fail "the root token file $token_file is empty"
export VAULT_TOKEN

if [ "$step" = database ]; then
  case ${DATABASE_CREDENTIALS:-dynamic} in
    kv) echo "compose-vault-init: DATABASE_CREDENTIALS=kv: no database engine to set up"; exit 0 ;;
    dynamic) ;;
    *) fail "DATABASE_CREDENTIALS must be dynamic or kv (got '${DATABASE_CREDENTIALS}')" ;;
  esac
  echo "compose-vault-init: setting up the database engine for $APP_ENV"
  DATABASE_ADDRESS=${DATABASE_ADDRESS:-postgres:5432} DATABASE_ADMIN_PASSWORD_FILE="$pg_init_dir/vault-admin-password" \
    sh "$here/database-engine.sh" "$APP_ENV" || fail "database-engine.sh failed (see above)"
  echo "compose-vault-init: done"
  exit 0
fi
echo "compose-vault-init: bootstrapping $APP_ENV at $VAULT_ADDR"
sh "$here/bootstrap.sh" "$APP_ENV" "$credentials_dir" || fail "bootstrap.sh failed (see above)"
sh "$here/postgres-credentials.sh" "$pg_init_dir" || fail "postgres-credentials.sh failed (see above)"
echo "compose-vault-init: done"
