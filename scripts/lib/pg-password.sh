# Sourced by scripts that set a PostgreSQL role's password (rotate-db-password.sh; postgres-init.sh
# holds a copy between the same markers, because the postgres image mounts that file alone).
#
#   set_role_password <role> <password-file> [psql connection options...]
#
# The password (the file's content, trailing newlines dropped; one line) reaches PostgreSQL
# only as a SCRAM-SHA-256 verifier: psql's \password computes it on this side (libpq's
# PQencryptPasswordConn) and sends ALTER USER ... PASSWORD 'SCRAM-SHA-256$...', so no statement
# log holds the clear password (Vault's database engine does the same with
# password_authentication=scram-sha-256). The password is in no argv and no environment: psql
# reads it on stdin, where \password prompts when there is no terminal; with one, psql would
# ask it, so psql runs in a new session without one (setsid). Returns 1 with psql's error on
# stderr, the prompts left out.
# --- set_role_password (begin) ---
set_role_password() {
  srp_role=$1
  srp_file=$2
  shift 2
  srp_password=$(cat "$srp_file") || return 1
  case $srp_password in
    '') echo "the password file $srp_file is empty" >&2; return 1 ;;
    *'
'*) echo "the password file $srp_file holds more than one line" >&2; return 1 ;;
  esac
  srp_detach=''
  if (: </dev/tty) 2>/dev/null; then
    command -v setsid >/dev/null 2>&1 || { echo "setsid is needed to keep psql from asking the terminal" >&2; return 1; }
    srp_detach='setsid -w'
  fi
  srp_errors=$(mktemp)
  srp_status=0
  printf '%s\n%s\n' "$srp_password" "$srp_password" |
    $srp_detach psql -X -q -v ON_ERROR_STOP=1 "$@" -c "SET password_encryption = 'scram-sha-256'" \
      -c "\\password \"$(printf '%s' "$srp_role" | sed 's/"/""/g')\"" >/dev/null 2>"$srp_errors" || srp_status=1
  srp_password=''
  sed -e 's/^Enter new password for user .*: //' -e 's/^Enter it again: //' -e '/^$/d' "$srp_errors" >&2
  rm -f "$srp_errors"
  return "$srp_status"
}
# --- set_role_password (end) ---
