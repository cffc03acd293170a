# saas-admin: the people who run the service once the root token is revoked (the runbook of
# specs/vault/plan-vault.md, section 6). Bound by scripts/prod/first-bootstrap.sh to one
# userpass user; real deployments bind it to their OIDC or LDAP group instead.
#
# What it leaves out on purpose: sys/policies writes, sys/auth and sys/mounts writes, and any
# auth/* configuration beyond the app's AppRole roles. An admin can therefore neither grant
# itself (or the app) more than this file says, nor mount or enable anything: that takes a
# root token regenerated from a quorum of unseal keys (scripts/prod/generate-root.sh).

# The project's secrets in every environment: rotate API keys, session keys and the app's
# database password (vault kv put / patch / get, scripts/rotate-db-password.sh). `patch` is
# what `vault kv patch` sends first.
path "secret/data/saas-project/*" {
  capabilities = ["create", "read", "update", "patch", "delete"]
}
# Versions and history: `kv metadata get`, `kv list`, and `kv put -cas` reads them.
path "secret/metadata/saas-project/*" {
  capabilities = ["read", "list", "update", "delete"]
}
path "secret/metadata/saas-project" {
  capabilities = ["list"]
}
# Undo a bad write (undelete), or erase a leaked value for good (destroy).
path "secret/delete/saas-project/*" {
  capabilities = ["update"]
}
path "secret/undelete/saas-project/*" {
  capabilities = ["update"]
}
path "secret/destroy/saas-project/*" {
  capabilities = ["update"]
}

# PostgreSQL's superuser password (scripts/postgres-credentials.sh writes it): outside
# saas-project/ so that no app policy reaches it, but the admin rotates it.
path "secret/data/saas-infra/*" {
  capabilities = ["create", "read", "update", "patch"]
}
path "secret/metadata/saas-infra/*" {
  capabilities = ["read", "list"]
}

# The app's AppRole roles, one per environment (saas-app-<env>, each bound to the policy of the
# same name by scripts/bootstrap.sh), listed one by one: a glob such as saas-app-* would also
# cover every path under the role. Their TTLs and secret id limits are the admin's to tune, but
# the policies their tokens carry are not. allowed_parameters denies every field not listed
# (policies, token_period, token_type, bind_secret_id, token_no_default_policy...), and
# token_policies only as the environment's own read-only policy: attaching saas-admin (or any
# other policy, another environment's included) to the app's tokens is refused (403), and so is
# a JSON list, which Vault compares whole against these strings. Under each role: its role id
# (read only, to hand to a new agent: a chosen role id is not needed), and its secret ids: list
# their accessors, look one up, destroy one (rotation, kill switch); `update` on secret-id also
# lets an admin mint one in an emergency, the orchestrator does it daily.
path "auth/approle/role/saas-app-dev" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "token_policies"        = ["saas-app-dev"]
    "token_ttl"             = []
    "token_max_ttl"         = []
    "token_num_uses"        = []
    "token_bound_cidrs"     = []
    "secret_id_ttl"         = []
    "secret_id_num_uses"    = []
    "secret_id_bound_cidrs" = []
  }
}
path "auth/approle/role/saas-app-dev/role-id" {
  capabilities = ["read"]
}
path "auth/approle/role/saas-app-dev/secret-id" {
  capabilities = ["update", "list"]
}
path "auth/approle/role/saas-app-dev/secret-id/lookup" {
  capabilities = ["update"]
}
path "auth/approle/role/saas-app-dev/secret-id/destroy" {
  capabilities = ["update"]
}
path "auth/approle/role/saas-app-dev/secret-id-accessor/lookup" {
  capabilities = ["update"]
}
path "auth/approle/role/saas-app-dev/secret-id-accessor/destroy" {
  capabilities = ["update"]
}
path "auth/approle/role/saas-app-staging" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "token_policies"        = ["saas-app-staging"]
    "token_ttl"             = []
    "token_max_ttl"         = []
    "token_num_uses"        = []
    "token_bound_cidrs"     = []
    "secret_id_ttl"         = []
    "secret_id_num_uses"    = []
    "secret_id_bound_cidrs" = []
  }
}
path "auth/approle/role/saas-app-staging/role-id" {
  capabilities = ["read"]
}
path "auth/approle/role/saas-app-staging/secret-id" {
  capabilities = ["update", "list"]
}
path "auth/approle/role/saas-app-staging/secret-id/lookup" {
  capabilities = ["update"]
}
path "auth/approle/role/saas-app-staging/secret-id/destroy" {
  capabilities = ["update"]
}
path "auth/approle/role/saas-app-staging/secret-id-accessor/lookup" {
  capabilities = ["update"]
}
path "auth/approle/role/saas-app-staging/secret-id-accessor/destroy" {
  capabilities = ["update"]
}
path "auth/approle/role/saas-app-prod" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "token_policies"        = ["saas-app-prod"]
    "token_ttl"             = []
    "token_max_ttl"         = []
    "token_num_uses"        = []
    "token_bound_cidrs"     = []
    "secret_id_ttl"         = []
    "secret_id_num_uses"    = []
    "secret_id_bound_cidrs" = []
  }
}
path "auth/approle/role/saas-app-prod/role-id" {
  capabilities = ["read"]
}
path "auth/approle/role/saas-app-prod/secret-id" {
  capabilities = ["update", "list"]
}
path "auth/approle/role/saas-app-prod/secret-id/lookup" {
  capabilities = ["update"]
}
path "auth/approle/role/saas-app-prod/secret-id/destroy" {
  capabilities = ["update"]
}
path "auth/approle/role/saas-app-prod/secret-id-accessor/lookup" {
  capabilities = ["update"]
}
path "auth/approle/role/saas-app-prod/secret-id-accessor/destroy" {
  capabilities = ["update"]
}

# A new orchestrator token when the old one expired or leaked: only through the token roles
# saas-orchestrator-<env> (first-bootstrap.sh creates them: policy saas-orchestrator-<env>
# only, orphan, periodic, bound to the orchestrator's addresses when given), so the admin
# cannot mint a token with any other policy, and the new token does not die with the admin's
# own short-lived token.
path "auth/token/create/saas-orchestrator-dev" {
  capabilities = ["update"]
}
path "auth/token/create/saas-orchestrator-staging" {
  capabilities = ["update"]
}
path "auth/token/create/saas-orchestrator-prod" {
  capabilities = ["update"]
}
# The kill switch (scripts/prod/kill-switch.sh) locks the app's roles on every auth method, and
# --reopen puts back what the lock replaced. AppRole's lock is secret_id_bound_cidrs, which the
# blocks above allow. On any other method's mount (+: one path segment, so no new block for a
# new mount), the role saas-app-<env> may be read and its bound_service_account_names set to
# the lock (kill-switch:locked) or to the manifests' service account (saas-app) only: any other
# name, a glob included, would let other pods in. A cluster whose service account is not
# saas-app lists it here. The exact AppRole blocks above take precedence on auth/approle/.
path "auth/+/role/saas-app-dev" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "bound_service_account_names" = ["kill-switch:locked", "saas-app"]
  }
}
path "auth/+/role/saas-app-staging" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "bound_service_account_names" = ["kill-switch:locked", "saas-app"]
  }
}
path "auth/+/role/saas-app-prod" {
  capabilities = ["read", "update"]
  allowed_parameters = {
    "bound_service_account_names" = ["kill-switch:locked", "saas-app"]
  }
}
# What the lock replaced, one field per role path, kept until --reopen restores it and deletes
# the record. Outside saas-project/: no app policy reaches it.
path "secret/data/saas-kill-switch/*" {
  capabilities = ["create", "read", "update", "patch"]
}
path "secret/metadata/saas-kill-switch/*" {
  capabilities = ["delete"]
}
# The kill switch revokes the app's tokens one by one: every token carrying the policy
# saas-app-<env>, whichever method issued it. Vault files a login's lease under
# auth/<method>/login/ whatever the role, so no lease prefix tells one role's tokens apart, and
# an accessor is random: the script lists the accessors (LIST takes sudo), looks each up for its
# policies, and revokes those with saas-app-<env>. Vault's ACL cannot tie lookup-accessor and
# revoke-accessor to a role: these three paths are the only ones here that reach past this
# application (see the plan, section 6); the rest of the kill switch is scoped by path.
path "auth/token/accessors" {
  capabilities = ["list", "sudo"]
}
path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}
path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}
# The app's dynamic database credentials, which the kill switch revokes by prefix (Vault
# requires sudo on revoke-prefix), and the listing of what it would revoke (sudo too).
path "sys/leases/revoke-prefix/database/creds/saas-app-*" {
  capabilities = ["update", "sudo"]
}
path "sys/leases/lookup/database/creds/saas-app-*" {
  capabilities = ["list", "sudo"]
}

# Recovery (kill-switch.sh --reopen, unlock-role-id.sh): an agent that kept logging in with a
# dead secret id locks the role id (5 failures, 15 minutes). The unlock needs the AppRole mount's accessor, which `vault auth list` shows;
# reading sys/auth changes nothing (enabling a method is a write on sys/auth/<path>). Only
# under an AppRole mount's accessor (auth_approle_...): a locked admin user of userpass stays
# locked. A role id is random, so the unlock cannot be tied to this application's roles.
path "sys/auth" {
  capabilities = ["read"]
}
path "sys/locked-users" {
  capabilities = ["read"]
}
path "sys/locked-users/auth_approle_*" {
  capabilities = ["update"]
}

# The emergency root token (scripts/prod/generate-root.sh). OpenBao 2.6 and later serve root
# generation only to an authenticated token allowed here (the unauthenticated sys/generate-root
# is off by default): a new root then takes an admin login AND a quorum of unseal keys.
# HashiCorp Vault serves sys/generate-root without a token; this block is then unused.
path "sys/generate-root-token/*" {
  capabilities = ["read", "update", "delete"]
}

# Read (never write) the policies the project deployed, to check what a token can do.
path "sys/policies/acl/saas-*" {
  capabilities = ["read"]
}

# The database secrets engine (mounted at database/ by first-bootstrap.sh, configured by the
# admin): one connection per environment (saas-<env>), one role per environment
# (saas-app-<env>), and rotating the root credential Vault holds for each connection. No
# database/creds: the admin does not need the app's database credentials.
# What runs in PostgreSQL as vault_admin (CREATEROLE: on PostgreSQL 15 it may grant any role
# but superuser, pg_execute_server_program included) is fixed here, not the admin's to write:
# the role's statements are exactly scripts/database-engine.sh's (each list whole, as one
# allowed value; policies.test.ts keeps them equal), and the connection takes no
# root_rotation_statements nor any other parameter than those listed.
# scripts/database-engine.sh, run by the admin, lists the mounts to find database/ (mounted by
# first-bootstrap.sh): reading the mount table changes nothing; mounting is a write on
# sys/mounts/<path>, which stays root's.
path "sys/mounts" {
  capabilities = ["read"]
}
path "database/config/saas-dev" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "plugin_name"             = ["postgresql-database-plugin"]
    "allowed_roles"           = ["saas-app-dev"]
    "connection_url"          = []
    "username"                = []
    "password"                = []
    "password_authentication" = ["scram-sha-256"]
    "verify_connection"       = []
  }
}
path "database/roles/saas-app-dev" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "db_name"               = ["saas-dev"]
    "default_ttl"           = []
    "max_ttl"               = []
    "creation_statements"   = [["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE saas_app_owner", "ALTER ROLE \"{{name}}\" SET role = saas_app_owner"]]
    "revocation_statements" = [["DO $$\nBEGIN\n  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{{name}}') THEN\n    GRANT \"{{name}}\" TO CURRENT_USER;\n    PERFORM pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = '{{name}}';\n    REASSIGN OWNED BY \"{{name}}\" TO saas_app_owner;\n    DROP OWNED BY \"{{name}}\";\n    DROP ROLE \"{{name}}\";\n  END IF;\nEND\n$$"]]
  }
}
path "database/config/saas-staging" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "plugin_name"             = ["postgresql-database-plugin"]
    "allowed_roles"           = ["saas-app-staging"]
    "connection_url"          = []
    "username"                = []
    "password"                = []
    "password_authentication" = ["scram-sha-256"]
    "verify_connection"       = []
  }
}
path "database/roles/saas-app-staging" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "db_name"               = ["saas-staging"]
    "default_ttl"           = []
    "max_ttl"               = []
    "creation_statements"   = [["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE saas_app_owner", "ALTER ROLE \"{{name}}\" SET role = saas_app_owner"]]
    "revocation_statements" = [["DO $$\nBEGIN\n  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{{name}}') THEN\n    GRANT \"{{name}}\" TO CURRENT_USER;\n    PERFORM pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = '{{name}}';\n    REASSIGN OWNED BY \"{{name}}\" TO saas_app_owner;\n    DROP OWNED BY \"{{name}}\";\n    DROP ROLE \"{{name}}\";\n  END IF;\nEND\n$$"]]
  }
}
path "database/config/saas-prod" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "plugin_name"             = ["postgresql-database-plugin"]
    "allowed_roles"           = ["saas-app-prod"]
    "connection_url"          = []
    "username"                = []
    "password"                = []
    "password_authentication" = ["scram-sha-256"]
    "verify_connection"       = []
  }
}
path "database/roles/saas-app-prod" {
  capabilities = ["create", "read", "update", "delete"]
  allowed_parameters = {
    "db_name"               = ["saas-prod"]
    "default_ttl"           = []
    "max_ttl"               = []
    "creation_statements"   = [["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}' IN ROLE saas_app_owner", "ALTER ROLE \"{{name}}\" SET role = saas_app_owner"]]
    "revocation_statements" = [["DO $$\nBEGIN\n  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{{name}}') THEN\n    GRANT \"{{name}}\" TO CURRENT_USER;\n    PERFORM pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = '{{name}}';\n    REASSIGN OWNED BY \"{{name}}\" TO saas_app_owner;\n    DROP OWNED BY \"{{name}}\";\n    DROP ROLE \"{{name}}\";\n  END IF;\nEND\n$$"]]
  }
}
path "database/config" {
  capabilities = ["list"]
}
path "database/roles" {
  capabilities = ["list"]
}
path "database/rotate-root/saas-*" {
  capabilities = ["update"]
}
