#!/bin/sh
# Sets up Vault's database secrets engine for the SaaS service's `dynamic` credentials: every
# app instance reads its own short-lived PostgreSQL user from Vault instead of the static KV
# value at secret/data/saas-project/<env>/database (the `kv` way, which keeps working).
#
#   database-engine.sh <env>
#
# <env> is dev, staging or prod. The names below are those of APP_NAME=saas (the default); another
# APP_NAME puts its own name in place of saas (scripts/lib/app-name.sh). In Vault it writes:
#   database/                          the engine (plugin postgresql-database-plugin, built into
#                                      HashiCorp Vault and OpenBao alike)
#   database/config/saas-<env>         the connection, as DATABASE_ADMIN_USER, allowed_roles
#                                      saas-app-<env> only; its password is rotated AT ONCE
#                                      (database/rotate-root/saas-<env>), so after the first run
#                                      only Vault knows the admin's password
#   database/roles/saas-app-<env>      the role the app reads at database/creds/saas-app-<env>
#
# PostgreSQL must be provisioned first (scripts/postgres-init.sh with a vault-admin-password
# file): the NOLOGIN group role saas_app_owner owns the database and its public schema, and
# the admin (CREATEROLE, member of saas_app_owner WITH ADMIN OPTION, not superuser) exists
# with the initial password this script hands to Vault.
#
# Environment:
#   VAULT_ADDR, VAULT_TOKEN        the server and a token allowed to configure it (required)
#   VAULT_CLI                      the CLI to run: `vault` (default) or `bao`
#   APP_NAME                       the application (default saas)
#   DATABASE_ADDRESS               host:port of PostgreSQL as the VAULT SERVER reaches it (required)
#   DATABASE_NAME                  the database (default saas)
#   DATABASE_ADMIN_USER            the role Vault connects as (default vault_admin)
#   DATABASE_ADMIN_PASSWORD_FILE   a file holding that role's initial password (required on the
#                                  first run only: once the connection exists, its password is
#                                  Vault's own and the file is not read; delete it after the run)
#   DATABASE_SSLMODE               libpq sslmode (default disable, for the local stack). Use
#                                  verify-full in production: TLS, and the server's name checked
#                                  against its certificate, which must chain to DATABASE_SSLROOTCERT.
#   DATABASE_SSLROOTCERT           the CA certificate (PEM) of PostgreSQL's certificate, as a path
#                                  the VAULT SERVER reads (in its container): the connection URL's
#                                  sslrootcert. Required by verify-ca and verify-full (OpenBao 2.x's
#                                  plugin ignores a tls_ca field: tried with bao 2.7.2; the URL
#                                  parameter is read by the pgx driver of both plugins).
#   DB_CREDS_TTL                   default_ttl of issued credentials (default 1h)
#   DB_CREDS_MAX_TTL               max_ttl: no renewal goes past it (default 24h)
#
# Idempotent: a second run changes nothing, and never writes the connection's password again
# (that would hand Vault the stale initial password). No secret is passed on a command line or
# printed: the initial password goes to Vault as JSON on stdin.
set -eu

usage() {
  echo "usage: VAULT_ADDR=... VAULT_TOKEN=... DATABASE_ADDRESS=host:port DATABASE_ADMIN_PASSWORD_FILE=... $0 <dev|staging|prod>" >&2
  exit 2
}
fail() {
  echo "database-engine: $*" >&2
  exit 1
}
say() {
  echo "database-engine: $*"
}
# reason, seconds, require_vault_and_token, use_cli_with_token
. "$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)/lib/vault-cli.sh"

[ $# -eq 1 ] || usage
app_env=$1
case $app_env in
  dev | staging | prod) ;;
  *) fail "unknown environment '$app_env': expected dev, staging or prod" ;;
esac

use_cli_with_token

address=${DATABASE_ADDRESS:-}
database=${DATABASE_NAME:-saas}
admin_user=${DATABASE_ADMIN_USER:-vault_admin}
password_file=${DATABASE_ADMIN_PASSWORD_FILE:-}
sslmode=${DATABASE_SSLMODE:-disable}
sslrootcert=${DATABASE_SSLROOTCERT:-}
ttl=${DB_CREDS_TTL:-1h}
max_ttl=${DB_CREDS_MAX_TTL:-24h}

# Everything below lands in a URL or a JSON string unescaped: allow only what is needed.
[ -n "$address" ] || fail "DATABASE_ADDRESS is not set: give host:port of PostgreSQL as the Vault server reaches it"
case $address in
  *:*) ;;
  *) fail "DATABASE_ADDRESS must be host:port, such as postgres:5432 (got '$address'): the port is missing" ;;
esac
host=${address%:*}
port=${address##*:}
case $host in
  '' | *[!]A-Za-z0-9._:[-]*) fail "DATABASE_ADDRESS must be host:port, such as postgres:5432 (got '$address'): bad host" ;;
esac
case $port in
  '' | *[!0-9]*) fail "DATABASE_ADDRESS must be host:port, such as postgres:5432 (got '$address'): bad port" ;;
esac
case $database in
  '' | *[!A-Za-z0-9_]*) fail "DATABASE_NAME must be letters, digits and _ (got '$database')" ;;
esac
case $admin_user in
  '' | [!a-z_]* | *[!a-z0-9_]*) fail "DATABASE_ADMIN_USER must be a lower-case PostgreSQL name (got '$admin_user')" ;;
esac
case $sslmode in
  disable | allow | prefer | require | verify-ca | verify-full) ;;
  *) fail "DATABASE_SSLMODE must be one of disable, allow, prefer, require, verify-ca, verify-full (got '$sslmode')" ;;
esac
case $sslmode in
  verify-ca | verify-full)
    [ -n "$sslrootcert" ] ||
      fail "DATABASE_SSLROOTCERT is not set: DATABASE_SSLMODE $sslmode needs the CA certificate's path on the Vault server" ;;
esac
case $sslrootcert in
  *[!A-Za-z0-9._/-]*) fail "DATABASE_SSLROOTCERT must be a path of letters, digits and . _ / - (got '$sslrootcert')" ;;
esac

ttl_s=$(seconds DB_CREDS_TTL "$ttl")
max_ttl_s=$(seconds DB_CREDS_MAX_TTL "$max_ttl")
[ "$ttl_s" -gt 0 ] || fail "DB_CREDS_TTL must be longer than 0 (got '$ttl')"
[ "$ttl_s" -le "$max_ttl_s" ] || fail "DB_CREDS_TTL ($ttl) is longer than DB_CREDS_MAX_TTL ($max_ttl)"

# app, app_role, app_connection, app_db_group (APP_NAME, default saas)
. "$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)/lib/app-name.sh"
connection=$(app_connection "$app_env")
role=$(app_role "$app_env")

# JSON as Vault prints it, without layout: what the comparisons below look at.
flat() {
  tr -d ' \n'
}

require_vault_and_token "run again"

# 1. The engine at database/.
# Its type, read with -field=. Not at sys/mounts/database, which saas-admin may not read: at
# sys/internal/ui/mounts/database (what the CLI's own `kv` commands read), open to a token with
# any capability under database/. An absent mount answers 403 "preflight capability check":
# then the enable below either works or names what is missing.
database_type=$("$cli" read -field=type sys/internal/ui/mounts/database 2>"$errors") || database_type=''
if [ -z "$database_type" ]; then
  "$cli" secrets enable -path=database database >/dev/null 2>"$errors" ||
    fail "cannot enable the database secrets engine at database/: $(reason)"
  say "enabled the database secrets engine at database/"
elif [ "$database_type" = database ]; then
  say "database secrets engine already enabled at database/"
else
  fail "database/ is mounted, but not as the database secrets engine: move that engine elsewhere first"
fi

# 2. The connection. Its details without the password, as Vault reports them (sorted keys).
connection_url="postgresql://{{username}}:{{password}}@$address/$database?sslmode=$sslmode${sslrootcert:+&sslrootcert=$sslrootcert}"
tls="sslmode $sslmode${sslrootcert:+, sslrootcert $sslrootcert}"
# scram-sha-256: Vault sends PostgreSQL a SCRAM verifier, never the clear password, so no
# statement log of PostgreSQL can hold a usable password (the plugin supports it since Vault
# 1.14; OpenBao has it).
details="{\"connection_url\":\"$connection_url\",\"password_authentication\":\"scram-sha-256\",\"username\":\"$admin_user\"}"
settings="\"plugin_name\":\"postgresql-database-plugin\",\"allowed_roles\":\"$role\""
settings="$settings,\"connection_url\":\"$connection_url\",\"password_authentication\":\"scram-sha-256\""
if current_details=$("$cli" read -format=json -field=connection_details "database/config/$connection" 2>"$errors"); then
  # The CLI writes & as \u0026 in JSON.
  current_details=$(printf '%s' "$current_details" | flat | sed 's/\\u0026/\&/g')
  current_user=$(printf '%s' "$current_details" | sed -n 's/.*"username":"\([^"]*\)".*/\1/p')
  current_plugin=$("$cli" read -field=plugin_name "database/config/$connection" 2>/dev/null || true)
  current_roles=$("$cli" read -field=allowed_roles "database/config/$connection" 2>/dev/null || true)
  # Its password is the one rotate-root chose: only another user would need a new one.
  [ "$current_user" = "$admin_user" ] ||
    fail "connection $connection exists for user '$current_user', not DATABASE_ADMIN_USER '$admin_user': delete database/config/$connection to start over"
  if [ "$current_details" = "$details" ] && [ "$current_plugin" = postgresql-database-plugin ] &&
    [ "$current_roles" = "[$role]" ]; then
    say "connection $connection unchanged (its password is Vault's own since rotate-root; DATABASE_ADMIN_PASSWORD_FILE not read)"
  else
    # An update merges into the stored details: without a password field, the rotated
    # password stays, and Vault checks the new address with it before saving.
    printf '{%s}\n' "$settings" | "$cli" write "database/config/$connection" - >/dev/null 2>"$errors" ||
      fail "cannot update connection $connection (Vault connects to $address with $tls to check it; DATABASE_SSLMODE, DATABASE_SSLROOTCERT): $(reason)"
    say "updated connection $connection ($address/$database, $tls, allowed_roles $role), its rotated password kept"
  fi
else
  grep -q '^No value found at' "$errors" || fail "cannot read connection $connection: $(reason)"
  [ -n "$password_file" ] ||
    fail "DATABASE_ADMIN_PASSWORD_FILE is not set: give the file holding the initial password of $admin_user (connection $connection does not exist yet)"
  [ -f "$password_file" ] && [ -r "$password_file" ] ||
    fail "DATABASE_ADMIN_PASSWORD_FILE ($password_file) is missing or not readable"
  [ -s "$password_file" ] || fail "DATABASE_ADMIN_PASSWORD_FILE ($password_file) is empty"
  [ "$(sed -n '$=' "$password_file")" -le 1 ] && ! LC_ALL=C grep -q '[[:cntrl:]]' "$password_file" ||
    fail "DATABASE_ADMIN_PASSWORD_FILE ($password_file) must hold the password on one line, without control characters"
  # JSON-escaped by sed reading the file: the password is in no process's argv; printf is
  # the shell's builtin.
  password=$(sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' "$password_file")
  printf '{%s,"username":"%s","password":"%s"}\n' "$settings" "$admin_user" "$password" |
    "$cli" write "database/config/$connection" - >/dev/null 2>"$errors" ||
    fail "cannot write connection $connection (Vault connects to $address as $admin_user with $tls to check it; DATABASE_SSLMODE, DATABASE_SSLROOTCERT): $(reason)"
  password=
  say "wrote connection $connection ($address/$database as $admin_user, $tls, allowed_roles $role)"
  # At once: from here on nobody but Vault knows the admin's password, and the initial one
  # (in the file, in KV at saas-infra/<env>/postgres) is useless. If it fails, the connection
  # goes too, so that a new run starts again from the initial password instead of trusting a
  # connection whose password was never rotated.
  if ! "$cli" write -f "database/rotate-root/$connection" >/dev/null 2>"$errors"; then
    why=$(reason)
    "$cli" delete "database/config/$connection" >/dev/null 2>&1 || true
    fail "cannot rotate the password of $admin_user (database/rotate-root/$connection): $why; connection $connection deleted, run again (if PostgreSQL did change the password, reset it to the initial one first)"
  fi
  say "rotated the password of $admin_user (database/rotate-root/$connection): the initial password no longer works"
fi

# 3. The role. Every issued user logs in with SET role = saas_app_owner, so whatever it
# creates is owned by the group role: tables made by yesterday's user stay usable today.
# VALID UNTIL is Vault's expiry; renewals move it (the plugin's default renew statement).
# Revocation (one DO block: the plugin runs a statement holding END as it is): first the
# admin makes itself a member of the user (allowed by CREATEROLE), which both
# pg_terminate_backend and REASSIGN OWNED require of a non-superuser; then it ends the
# user's sessions, hands anything the user owns to the group (after a SET ROLE NONE),
# drops it. A user already gone is not an error, so a retried revocation completes.
statements=$(
  cat <<'JSON'
"creation_statements":[
"CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE saas_app_owner",
"ALTER ROLE \"{{name}}\" SET role = saas_app_owner"
],
"revocation_statements":[
"DO $$\nBEGIN\n  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{{name}}') THEN\n    GRANT \"{{name}}\" TO CURRENT_USER;\n    PERFORM pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = '{{name}}';\n    REASSIGN OWNED BY \"{{name}}\" TO saas_app_owner;\n    DROP OWNED BY \"{{name}}\";\n    DROP ROLE \"{{name}}\";\n  END IF;\nEND\n$$"
]
JSON
)
statements=$(printf '%s\n' "$statements" | sed "s/saas_app_owner/$app_db_group/g")
role_field() {
  "$cli" read "$@" "database/roles/$role" 2>/dev/null || true
}
wanted="$connection $ttl_s $max_ttl_s $(printf '%s' "$statements" | flat)"
current="$(role_field -field=db_name) $(role_field -field=default_ttl) $(role_field -field=max_ttl)"
current="$current \"creation_statements\":$(role_field -format=json -field=creation_statements | flat)"
current="$current,\"revocation_statements\":$(role_field -format=json -field=revocation_statements | flat)"
if [ "$current" = "$wanted" ]; then
  say "role $role unchanged"
else
  printf '{"db_name":"%s","default_ttl":"%s","max_ttl":"%s",%s}\n' "$connection" "$ttl" "$max_ttl" "$statements" |
    "$cli" write "database/roles/$role" - >/dev/null 2>"$errors" || fail "cannot write role $role: $(reason)"
  say "wrote role $role (default_ttl $ttl, max_ttl $max_ttl): credentials at database/creds/$role"
fi
