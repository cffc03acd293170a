# Sourced by the scripts that write the app's roles: the values scripts/prod/kill-switch.sh
# locks a role with, so that writing the role again (a bootstrap re-run, kubernetes-auth.sh)
# never reopens it behind the operator's back. POSIX sh.
#
#   kill_switch_cidr   AppRole's secret_id_bound_cidrs: no connection comes from 0.0.0.0
#   kill_switch_name   kubernetes' bound_service_account_names: ':' is in no service account's name
kill_switch_cidr=0.0.0.0/32
kill_switch_name=kill-switch:locked
