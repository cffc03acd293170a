# Sourced by the scripts that name things in Vault or PostgreSQL: every name comes from one
# setting, APP_NAME (default saas), so that several applications share one Vault. POSIX sh.
# The caller defines `fail`. With APP_NAME=saas the names are the ones the project always had:
#
#   app_kv_prefix            <app>-project       secret/data/<app>-project/<env>/<group>
#   app_role <env>           <app>-app-<env>     the policy, the AppRole role and the database
#                                                role (database/creds/<app>-app-<env>)
#   app_connection <env>     <app>-<env>         database/config/<app>-<env>
#   app_db_group             <app>_app_owner     the PostgreSQL group role
#   app_infra_prefix         <app>-infra         secret/data/<app>-infra/<env>/postgres
#   <app>-admin, <app>-orchestrator              the admin's and the orchestrator's policies
#
# APP_NAME is lowercase letters and digits only (no '-' or '_'), at most 20: a policy written
# for one application names its paths <app>-... with globs such as database/roles/<app>-app-*,
# and no other application's name can then match them.
app=${APP_NAME:-saas}
case $app in
  '' | [!a-z]* | *[!a-z0-9]*) fail "APP_NAME must be lowercase letters and digits, starting with a letter (got '$app')" ;;
esac
[ "${#app}" -le 20 ] || fail "APP_NAME must be at most 20 characters (got '$app')"
app_kv_prefix=$app-project
app_infra_prefix=$app-infra
app_db_group=${app}_app_owner
app_role() {
  echo "$app-app-$1"
}
app_connection() {
  echo "$app-$1"
}
# A shipped policy (policies/*.hcl, written for the application saas) as this application's:
# every name in them begins with saas- (saas-project, saas-app-<env>, saas-infra, saas-admin...),
# and the admin's pinned database statements name the group role saas_app_owner.
app_policy() {
  sed -e "s/saas-/$app-/g" -e "s/saas_app_owner/${app}_app_owner/g" "$1"
}
