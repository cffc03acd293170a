#!/bin/sh
# What the compose one-shots run against the Vault dev server:
#
#   compose-vault-init.sh              (vault-init, before PostgreSQL starts)
#   compose-vault-init.sh database     (vault-db-init, once PostgreSQL is healthy)
#   compose-vault-init.sh prepare      (docker-compose.prod.yml's vault-prepare, as root: no
#                                      Vault, no token; see prepare below)
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
  bootstrap | database | prepare) ;;
  *) fail "unknown step '$step': expected no argument (vault-init), 'database' (vault-db-init) or 'prepare' (vault-prepare)" ;;
esac

# prepare: the production compose file's one-shot. The operator's files (PREPARE_HOST_DIR,
# default /host: tls/, credentials/, postgres/, orchestrator/) belong to the host user, 0400/0600, unreadable
# by the images' users; and the Vault image has no /vault/data, so a fresh volume there is
# root's. As root (CHOWN, DAC_OVERRIDE, FOWNER only), give each reader its own copy, owned so:
#   /vault/data               100:1000 0700 (Raft, as the vault user)
#   /vault/tls                server.pem and ca.pem 0444, server-key.pem 0400 owned by vault
#   /vault/agent/credentials  role-id and secret-id 0400 owned by vault; secret-id is moved
#   /orchestrator             the orchestrator token 0400 owned by vault (secret-id-courier)
#   /pg-init                  0:70 0750, its files 0440 group postgres
#   /pg-tls                   70:70 0750: PostgreSQL's server.pem and ca.pem 0444, server-key.pem
#                             0400 (PostgreSQL refuses a key others can read); and its ca.pem
#                             again as /vault/tls/postgres-ca.pem, for Vault's database connection
# Each copy is written beside its destination and renamed over it: a reader never sees half a file.
prepare() {
  host=${PREPARE_HOST_DIR:-/host}
  vault_owner=${VAULT_OWNER:-100:1000}
  postgres_group=${POSTGRES_GID:-70}
  data_dir=${VAULT_DATA_DIR:-/vault/data}
  tls_dir=${VAULT_TLS_DIR:-/vault/tls}
  orchestrator_dir=${ORCHESTRATOR_DIR:-/orchestrator}
  pg_tls_dir=${POSTGRES_TLS_DIR:-/pg-tls}
  postgres_owner=${POSTGRES_OWNER:-70:70}
  copy() { # <source> <destination> <owner> <mode>
    cp "$1" "$2.partial" && chown "$3" "$2.partial" && chmod "$4" "$2.partial" && mv -f "$2.partial" "$2" ||
      fail "cannot copy $1 to $2"
  }
  chmod 0700 "$data_dir" && chown "$vault_owner" "$data_dir" || fail "cannot give $data_dir to $vault_owner"
  echo "compose-vault-init: $data_dir belongs to $vault_owner (0700)"

  for file in ca.pem server.pem server-key.pem; do
    [ -s "$host/tls/$file" ] ||
      fail "$host/tls/$file is missing (PROD_DIR/tls): run scripts/prod/generate-tls.sh, or put your PKI's files there"
  done
  chmod 0750 "$tls_dir" && chown "$vault_owner" "$tls_dir" || fail "cannot give $tls_dir to $vault_owner"
  copy "$host/tls/ca.pem" "$tls_dir/ca.pem" "$vault_owner" 0444
  copy "$host/tls/server.pem" "$tls_dir/server.pem" "$vault_owner" 0444
  copy "$host/tls/server-key.pem" "$tls_dir/server-key.pem" "$vault_owner" 0400
  echo "compose-vault-init: copied ca.pem, server.pem and server-key.pem (0400, the vault user's) to $tls_dir"

  for file in ca.pem server.pem server-key.pem; do
    [ -s "$host/postgres/tls/$file" ] ||
      fail "$host/postgres/tls/$file is missing (PROD_DIR/postgres/tls): run scripts/prod/generate-tls.sh PROD_DIR/postgres/tls postgres, or put your PKI's files there"
  done
  chmod 0750 "$pg_tls_dir" && chown "$postgres_owner" "$pg_tls_dir" || fail "cannot give $pg_tls_dir to $postgres_owner"
  copy "$host/postgres/tls/ca.pem" "$pg_tls_dir/ca.pem" "$postgres_owner" 0444
  copy "$host/postgres/tls/server.pem" "$pg_tls_dir/server.pem" "$postgres_owner" 0444
  copy "$host/postgres/tls/server-key.pem" "$pg_tls_dir/server-key.pem" "$postgres_owner" 0400
  copy "$host/postgres/tls/ca.pem" "$tls_dir/postgres-ca.pem" "$vault_owner" 0444
  echo "compose-vault-init: copied PostgreSQL's ca.pem, server.pem and server-key.pem (0400, the postgres user's) to $pg_tls_dir, and its ca.pem to $tls_dir/postgres-ca.pem"

  chmod 0700 "$credentials_dir" && chown "$vault_owner" "$credentials_dir" || fail "cannot give $credentials_dir to $vault_owner"
  if [ -s "$host/credentials/role-id" ]; then
    copy "$host/credentials/role-id" "$credentials_dir/role-id" "$vault_owner" 0400
    echo "compose-vault-init: copied role-id to $credentials_dir"
  elif [ ! -s "$credentials_dir/role-id" ]; then
    echo "compose-vault-init: no role-id yet (first-bootstrap.sh writes it): the agent cannot log in until this runs again"
  fi
  if [ -s "$host/credentials/secret-id" ]; then
    # Moved: a wrapped secret id is single-use, and only the agent's copy may remain.
    copy "$host/credentials/secret-id" "$credentials_dir/secret-id" "$vault_owner" 0400
    rm -f "$host/credentials/secret-id" || fail "cannot remove $host/credentials/secret-id after copying it"
    echo "compose-vault-init: moved secret-id to $credentials_dir"
  fi

  chmod 0700 "$orchestrator_dir" && chown "$vault_owner" "$orchestrator_dir" || fail "cannot give $orchestrator_dir to $vault_owner"
  if [ -s "$host/orchestrator/token" ]; then
    copy "$host/orchestrator/token" "$orchestrator_dir/token" "$vault_owner" 0400
    echo "compose-vault-init: copied orchestrator/token to $orchestrator_dir (secret-id-courier's)"
  elif [ ! -s "$orchestrator_dir/token" ]; then
    echo "compose-vault-init: no orchestrator/token yet (first-bootstrap.sh writes it): secret-id-courier waits until this runs again"
  fi

  chmod 0750 "$pg_init_dir" && chown "0:$postgres_group" "$pg_init_dir" || fail "cannot give $pg_init_dir to group $postgres_group"
  copied=''
  for file in superuser-password vault-admin-password app-username app-password; do
    if [ -s "$host/postgres/$file" ]; then
      copy "$host/postgres/$file" "$pg_init_dir/$file" "0:$postgres_group" 0440
      copied="$copied $file"
    fi
  done
  if [ -n "$copied" ]; then
    echo "compose-vault-init: copied$copied to $pg_init_dir (0440, group $postgres_group)"
  elif [ ! -s "$pg_init_dir/superuser-password" ]; then
    echo "compose-vault-init: no $host/postgres/superuser-password (PROD_DIR/postgres): PostgreSQL cannot initialise an empty data folder without it"
  fi
  echo "compose-vault-init: done"
}
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
token_file=${VAULT_TOKEN_FILE_PATH:-/vault/home/.vault-token}
credentials_dir=${CREDENTIALS_DIR:-/vault/agent/credentials}
pg_init_dir=${PG_INIT_DIR:-/pg-init}
wait_seconds=${VAULT_TOKEN_WAIT_SECONDS:-30}
case $wait_seconds in
  '' | *[!0-9]*) fail "VAULT_TOKEN_WAIT_SECONDS must be a whole number of seconds (got '$wait_seconds')" ;;
esac

if [ "$step" = prepare ]; then
  prepare
  exit 0
fi

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
