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
#      vault_admin's initial password, from Vault, as files for the postgres container; then
#      the orchestrator: the policy <app>-orchestrator-<env>, the token role <app>-orchestrator-<env> (as
#      scripts/prod/first-bootstrap.sh makes them) and a token of that role in
#      ORCHESTRATOR_DIR/token, for secret-id-courier (scripts/prod/deliver-secret-ids.sh);
#      then, with DEMO_USERS_DIR, the dev sign-in: demo-identity.sh makes Vault's own OpenID
#      Connect provider (issuer ISSUER_ADDR/v1/identity/oidc/provider/<app>-<env>), the demo
#      users acme and globex (their passwords in DEMO_USERS_DIR) and the client whose redirect
#      is OIDC_REDIRECT_URL, and writes the client's id and secret to the oidc group;
#   3. vault-db-init, with DATABASE_CREDENTIALS=dynamic: runs database-engine.sh, which hands
#      vault_admin's initial password to Vault's database engine and has Vault rotate it at
#      once. With DATABASE_CREDENTIALS=kv it has nothing to do.
#
# A dev server keeps nothing across a restart, while PostgreSQL keeps its data (the pgdata
# volume) and pg-init stays mounted (postgres holds it). So, with APP_ENV=dev, `docker compose
# up -d` after a restart of the vault service bootstraps the new server with what PostgreSQL
# still uses:
#   - vault-init finds no secret/<app>-infra/dev/postgres but PostgreSQL's files in pg-init: it
#     writes those passwords (superuser, vault_admin's initial one, the app's KV user) back to
#     Vault instead of generating new ones PostgreSQL would never learn;
#   - vault-db-init finds no database connection in Vault: the old server had rotated
#     vault_admin's password, and the dynamic users it issued are still in PostgreSQL (some
#     connected) until their VALID UNTIL. Through a temporary connection of the new server as
#     the superuser (its password from pg-init), it ends those users' sessions and drops them,
#     and sets a new password for vault_admin that Vault generates and sends as a SCRAM
#     verifier (password_authentication scram-sha-256: no clear password in any SQL text);
#     then removes that connection and hands the password to database-engine.sh, which rotates
#     it at once. The first start takes the same path (nothing to drop).
#
# Environment (the defaults are the paths in the compose file's containers):
#   VAULT_ADDR                 the server (default http://vault:8200)
#   VAULT_CLI                  vault (default) or bao, a name on PATH or a path
#   APP_ENV                    dev (default), staging or prod
#   APP_NAME                   the application (default saas): every name in Vault and
#                              PostgreSQL derives from it (scripts/lib/app-name.sh), and the
#                              scripts this runs get it too
#   VAULT_TOKEN_FILE_PATH      the root token file (default /vault/home/.vault-token)
#   VAULT_TOKEN_WAIT_SECONDS   how long to wait for that file to appear (default 30)
#   CREDENTIALS_DIR            role-id and secret-id (default /vault/agent/credentials)
#   PG_INIT_DIR                PostgreSQL's files (default /pg-init)
#   DATABASE_CREDENTIALS       dynamic (default) or kv: whether vault-db-init sets up the engine
#   DATABASE_ADDRESS           PostgreSQL as the Vault server reaches it (default postgres:5432)
#   DATABASE_NAME              the app's database (default saas)
#   DATABASE_SUPERUSER         PostgreSQL's superuser, dev only (default postgres)
#   ORCHESTRATOR_DIR           where vault-init writes the orchestrator token (default /orchestrator)
#   ORCHESTRATOR_TOKEN_PERIOD  that token's period (default 24h, as in production)
#   DEMO_USERS_DIR             vault-init: where demo-identity.sh keeps the demo users'
#                              passwords; unset (the default, as the local stack runs this
#                              script), no sign-in is made here
#   OIDC_REDIRECT_URL          with DEMO_USERS_DIR: the app's /auth/callback as the browser
#                              reaches it (the app's own OIDC_REDIRECT_URL)
#   ISSUER_ADDR                with DEMO_USERS_DIR: Vault as the app reaches it (default VAULT_ADDR)
#
# The root token goes to the scripts through VAULT_TOKEN, in this process tree only; it is
# never printed and never written anywhere else. Passwords go to Vault as JSON on stdin, and
# the one vault-db-init hands on lives in a file under TMPDIR (a tmpfs in the compose file)
# for the run only. POSIX sh: runs on the Vault image's busybox.
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
#   /vault/data, /vault/audit 100:1000 0700 (Raft and the audit logs, as the vault user)
#   /vault/tls                server.pem and ca.pem 0444, server-key.pem 0400 owned by vault
#   /vault/agent/credentials  role-id and secret-id 0400 owned by vault; secret-id is moved
#   /orchestrator             the orchestrator token 0400 owned by vault (secret-id-courier)
#   /admin                    the app's admin port token 0400 owned by the app (1000:1000), in
#                             a folder 0500 of its own: no other container mounts it
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
  audit_dir=${VAULT_AUDIT_DIR:-/vault/audit}
  tls_dir=${VAULT_TLS_DIR:-/vault/tls}
  orchestrator_dir=${ORCHESTRATOR_DIR:-/orchestrator}
  pg_tls_dir=${POSTGRES_TLS_DIR:-/pg-tls}
  admin_dir=${ADMIN_TOKEN_DIR:-/admin}
  app_owner=${APP_OWNER:-1000:1000}
  postgres_owner=${POSTGRES_OWNER:-70:70}
  copy() { # <source> <destination> <owner> <mode>
    cp "$1" "$2.partial" && chown "$3" "$2.partial" && chmod "$4" "$2.partial" && mv -f "$2.partial" "$2" ||
      fail "cannot copy $1 to $2"
  }
  for dir in "$data_dir" "$audit_dir"; do
    chmod 0700 "$dir" && chown "$vault_owner" "$dir" || fail "cannot give $dir to $vault_owner"
    echo "compose-vault-init: $dir belongs to $vault_owner (0700)"
  done

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

  # The bearer token of the app's operator port (ADMIN_TOKEN_FILE): the app refuses to start in
  # prod with that port off loopback and no token, so a missing one stops here, named.
  [ -s "$host/admin/token" ] ||
    fail "$host/admin/token is missing (PROD_DIR/admin/token): make it once, e.g. (umask 077 && openssl rand -hex 32 >PROD_DIR/admin/token), and give Prometheus the same file"
  chmod 0700 "$admin_dir" && chown "$app_owner" "$admin_dir" || fail "cannot give $admin_dir to $app_owner"
  copy "$host/admin/token" "$admin_dir/token" "$app_owner" 0400
  chmod 0500 "$admin_dir" || fail "cannot make $admin_dir read-only"
  echo "compose-vault-init: copied admin/token to $admin_dir (0400, the app's)"

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
# app, app_kv_prefix, app_infra_prefix, app_db_group, app_role, app_connection, app_policy
. "$here/lib/app-name.sh"
APP_NAME=$app
export VAULT_ADDR VAULT_CLI APP_ENV APP_NAME
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

cli=$VAULT_CLI
# reason (the server's words for a failed call, from "$errors")
. "$here/lib/vault-cli.sh"
database_address=${DATABASE_ADDRESS:-postgres:5432}
database_name=${DATABASE_NAME:-saas}
orchestrator_dir=${ORCHESTRATOR_DIR:-/orchestrator}
case $database_name in
  '' | *[!A-Za-z0-9_]*) fail "DATABASE_NAME must be letters, digits and _ (got '$database_name')" ;;
esac

# A file's one line as a JSON string's content (sed reads the file: no value in any argv).
json_of() {
  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' "$1" | tr -d '\r\n'
}

# vault-init, dev: a restarted dev server has no secret/<app>-infra/dev/postgres, while
# PostgreSQL (its data kept) still uses the passwords in pg-init. Put those back into Vault, so
# postgres-credentials.sh writes the same files again instead of new passwords nothing uses.
dev_restore_postgres_passwords() {
  infra=$app_infra_prefix/$APP_ENV/postgres
  if "$cli" kv metadata get -mount=secret "$infra" >/dev/null 2>&1 || [ ! -s "$pg_init_dir/superuser-password" ]; then
    return 0
  fi
  for file in vault-admin-password app-username app-password; do
    [ -s "$pg_init_dir/$file" ] || fail "$pg_init_dir holds superuser-password but no $file: remove the pgdata volume (docker compose down -v) to start over"
  done
  printf '{"superuser_password":"%s","vault_admin_initial_password":"%s"}\n' \
    "$(json_of "$pg_init_dir/superuser-password")" "$(json_of "$pg_init_dir/vault-admin-password")" |
    "$cli" kv put -mount=secret -cas=0 "$infra" - >/dev/null 2>"$errors" || fail "cannot write secret/data/$infra: $(reason)"
  printf '{"username":"%s","password":"%s"}\n' "$(json_of "$pg_init_dir/app-username")" "$(json_of "$pg_init_dir/app-password")" |
    "$cli" kv put -mount=secret "$app_kv_prefix/$APP_ENV/database" - >/dev/null 2>"$errors" ||
    fail "cannot write secret/data/$app_kv_prefix/$APP_ENV/database: $(reason)"
  echo "compose-vault-init: a new dev server, PostgreSQL's data kept: wrote the passwords PostgreSQL uses (from $pg_init_dir) back to secret/data/$infra and secret/data/$app_kv_prefix/$APP_ENV/database"
}

# vault-init: what secret-id-courier needs, made as scripts/prod/first-bootstrap.sh makes it.
# A token file left by an earlier run is kept while Vault still accepts it (a second `up`);
# after a dev server's restart it is refused, and replaced.
orchestrator() {
  period=${ORCHESTRATOR_TOKEN_PERIOD:-24h}
  seconds ORCHESTRATOR_TOKEN_PERIOD "$period" >/dev/null
  name=$app-orchestrator-$APP_ENV
  app_policy "$here/../policies/saas-orchestrator-$APP_ENV.hcl" | "$cli" policy write "$name" - >/dev/null 2>"$errors" ||
    fail "cannot write policy $name: $(reason)"
  "$cli" write "auth/token/roles/$name" allowed_policies="$name" orphan=true renewable=true \
    token_period="$period" >/dev/null 2>"$errors" || fail "cannot write the token role $name: $(reason)"
  file=$orchestrator_dir/token
  if [ -s "$file" ] && VAULT_TOKEN=$(cat "$file") "$cli" token lookup >/dev/null 2>&1; then
    echo "compose-vault-init: the orchestrator token in $file is still valid, left in place"
    return 0
  fi
  tmp=$(mktemp "$orchestrator_dir/.token.XXXXXX") || fail "cannot write in $orchestrator_dir"
  "$cli" token create -role="$name" -field=token >"$tmp" 2>"$errors" ||
    { rm -f "$tmp"; fail "cannot create the orchestrator token: $(reason)"; }
  chmod 0400 "$tmp"
  mv -f "$tmp" "$file"
  echo "compose-vault-init: wrote the policy and token role $name, and a token of that role (period $period) to $file"
}

# vault-db-init, dev, a server with no database connection yet (see the top of this file).
# Sets reset_password_file, a file under TMPDIR removed when this script exits.
dev_reset_database() {
  superuser=${DATABASE_SUPERUSER:-postgres}
  case $superuser in
    '' | [!a-z_]* | *[!a-z0-9_]*) fail "DATABASE_SUPERUSER must be a lower-case PostgreSQL name (got '$superuser')" ;;
  esac
  [ -s "$pg_init_dir/superuser-password" ] || fail "no $pg_init_dir/superuser-password: vault-init writes it (dev only)"
  reset=$(app_connection "$APP_ENV")-reset
  # Dynamic users carry the postgresql plugin's default username template:
  # v-<display name, 8>-<role name, 8>-<20 random>-<unix time>; and they are members of
  # <app>_app_owner (database-engine.sh's creation statements). Both must match.
  role_part=$(printf '%.8s' "$(app_role "$APP_ENV")")
  # 400 "No secret engine mount at database/" when there is none (the dev root token reads it).
  if ! "$cli" read -field=type sys/mounts/database >/dev/null 2>&1; then
    "$cli" secrets enable -path=database database >/dev/null 2>"$errors" ||
      fail "cannot enable the database secrets engine at database/: $(reason)"
  fi
  printf '{"plugin_name":"postgresql-database-plugin","allowed_roles":"%s","connection_url":"postgresql://{{username}}:{{password}}@%s/%s?sslmode=disable","password_authentication":"scram-sha-256","username":"%s","password":"%s"}\n' \
    "$reset" "$database_address" "$database_name" "$superuser" "$(json_of "$pg_init_dir/superuser-password")" |
    "$cli" write "database/config/$reset" - >/dev/null 2>"$errors" ||
    fail "cannot connect Vault to $database_address as $superuser with $pg_init_dir/superuser-password: $(reason)"
  # One read of this role runs both statements as the superuser; {{password}} is the SCRAM
  # verifier of the password Vault generated and returns. No user {{name}} is created.
  cat <<JSON | "$cli" write "database/roles/$reset" - >/dev/null 2>"$errors" || fail "cannot write role $reset: $(reason)"
{"db_name":"$reset","default_ttl":"1m","max_ttl":"1m",
"creation_statements":[
"DO \$\$\nDECLARE\n  leftover record;\nBEGIN\n  FOR leftover IN SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.rolname ~ '^v-.{1,8}-$role_part-[A-Za-z0-9]{20}-[0-9]+\$'\n    AND pg_catalog.pg_has_role(r.oid, '$app_db_group', 'MEMBER') AND r.rolname <> '$app_db_group' LOOP\n    PERFORM pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = leftover.rolname;\n    EXECUTE format('REASSIGN OWNED BY %I TO $app_db_group', leftover.rolname);\n    EXECUTE format('DROP OWNED BY %I', leftover.rolname);\n    EXECUTE format('DROP ROLE %I', leftover.rolname);\n    RAISE NOTICE 'dropped %', leftover.rolname;\n  END LOOP;\nEND\n\$\$",
"ALTER ROLE vault_admin WITH PASSWORD '{{password}}'"
],
"revocation_statements":["SELECT 1"]}
JSON
  reset_password_file=$(mktemp "${TMPDIR:-/tmp}/vault-admin.XXXXXX") || fail "cannot write in ${TMPDIR:-/tmp}"
  trap 'rm -f "$errors" "$reset_password_file"' EXIT
  "$cli" read -field=password "database/creds/$reset" >"$reset_password_file" 2>"$errors" ||
    fail "cannot run the reset statements as $superuser (database/creds/$reset): $(reason)"
  "$cli" lease revoke -prefix "database/creds/$reset" >/dev/null 2>&1 || true
  "$cli" delete "database/roles/$reset" >/dev/null 2>"$errors" || fail "cannot delete role $reset: $(reason)"
  "$cli" delete "database/config/$reset" >/dev/null 2>"$errors" || fail "cannot delete connection $reset: $(reason)"
  echo "compose-vault-init: a new dev server: dropped the dynamic users an earlier one left in PostgreSQL, ended their sessions, and gave vault_admin a password Vault generated (sent as a SCRAM verifier; connection $reset removed)"
}

if [ "$step" = database ]; then
  case ${DATABASE_CREDENTIALS:-dynamic} in
    kv) echo "compose-vault-init: DATABASE_CREDENTIALS=kv: no database engine to set up"; exit 0 ;;
    dynamic) ;;
    *) fail "DATABASE_CREDENTIALS must be dynamic or kv (got '${DATABASE_CREDENTIALS}')" ;;
  esac
  echo "compose-vault-init: setting up the database engine for $APP_ENV"
  admin_password_file="$pg_init_dir/vault-admin-password"
  if [ "$APP_ENV" = dev ] && ! "$cli" read "database/config/$(app_connection "$APP_ENV")" >/dev/null 2>"$errors"; then
    grep -q '^No value found at' "$errors" || fail "cannot read database/config/$(app_connection "$APP_ENV"): $(reason)"
    dev_reset_database
    admin_password_file=$reset_password_file
  fi
  DATABASE_ADDRESS=$database_address DATABASE_NAME=$database_name DATABASE_ADMIN_PASSWORD_FILE=$admin_password_file \
    sh "$here/database-engine.sh" "$APP_ENV" || fail "database-engine.sh failed (see above)"
  echo "compose-vault-init: done"
  exit 0
fi
echo "compose-vault-init: bootstrapping $app in $APP_ENV at $VAULT_ADDR"
sh "$here/bootstrap.sh" "$APP_ENV" "$credentials_dir" || fail "bootstrap.sh failed (see above)"
[ "$APP_ENV" != dev ] || dev_restore_postgres_passwords
sh "$here/postgres-credentials.sh" "$pg_init_dir" || fail "postgres-credentials.sh failed (see above)"
orchestrator
# The dev sign-in, after the bootstrap (the KV mount the oidc group is written to). Each run
# writes the provider again: after a dev server's restart, the new server gets it.
if [ -n "${DEMO_USERS_DIR:-}" ]; then
  [ -n "${OIDC_REDIRECT_URL:-}" ] ||
    fail "DEMO_USERS_DIR is set but OIDC_REDIRECT_URL is not: give the app's /auth/callback as the browser reaches it"
  ISSUER_ADDR=${ISSUER_ADDR:-$VAULT_ADDR} sh "$here/demo-identity.sh" "$APP_ENV" "$OIDC_REDIRECT_URL" "$DEMO_USERS_DIR" ||
    fail "demo-identity.sh failed (see above)"
fi
echo "compose-vault-init: done"
