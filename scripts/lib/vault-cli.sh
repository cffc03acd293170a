# Sourced (`. "$here/lib/vault-cli.sh"`) by the scripts that drive the Vault CLI: what each of
# them used to carry a copy of. POSIX sh. The caller defines `fail` (prints its argument and
# exits 1) and `say`, and sets `cli` (vault or bao) and VAULT_ADDR before calling these
# functions (use_cli_with_token sets and checks both).

# The server's own words for a failed call, without the CLI's banner: run the call with
# 2>"$errors", then say $(reason). The file goes when the script exits. OpenBao gives one
# "* <reason>" line; HashiCorp Vault often gives "* 2 errors occurred:" (or "* 1 error occurred:") and then each reason
# indented ("permission denied", "invalid token"): all of them are said, on one line.
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
reason() {
  listed=$(sed -n 's/^[[:space:]]*\* //p' "$errors" | grep -v '^[0-9]* errors\{0,1\} occurred:$' |
    awk 'NR > 1 { printf ", " } { printf "%s", $0 } END { if (NR > 0) print "" }')
  if [ -n "$listed" ]; then echo "$listed"; else sed -n 's/^Error [a-z ]*: //p' "$errors" | tail -n 1; fi
}

# A duration such as 90s, 5m, 1h or 2d in seconds, as Vault reports durations, so settings can
# be compared with what Vault holds; $1 is the variable's name for the error message.
seconds() {
  case $2 in
    '' | *[!0-9smhd]* | [smhd]*) fail "$1 must be a duration such as 90s, 5m, 1h or 2d (got '$2')" ;;
    *s) echo "${2%s}" ;;
    *m) echo "$((${2%m} * 60))" ;;
    *h) echo "$((${2%h} * 3600))" ;;
    *d) echo "$((${2%d} * 86400))" ;;
    *) echo "$2" ;;
  esac
}

# Vault answers, is unsealed, and accepts VAULT_TOKEN; $1 says what to do once it is unsealed.
require_vault_and_token() {
  vault_status=0
  "$cli" status >/dev/null 2>"$errors" || vault_status=$?
  case $vault_status in
    0) ;;
    2) fail "Vault at $VAULT_ADDR is sealed: unseal it, then $1" ;;
    *) fail "cannot reach Vault at $VAULT_ADDR (VAULT_ADDR): $(reason)" ;;
  esac
  "$cli" token lookup >/dev/null 2>"$errors" ||
    fail "Vault at $VAULT_ADDR does not accept VAULT_TOKEN: $(reason)"
}

# A duration such as 300ms, 30s, 5m or 6h in milliseconds: for the loops' own intervals, which
# a time-scaled run (bench/soak.ts) shortens below a second. $1 names the variable.
milliseconds() {
  case $2 in
    '' | [!0-9]* | *[!0-9mshd]*) fail "$1 must be a duration such as 300ms, 30s, 5m or 6h (got '$2')" ;;
    *[0-9]ms) echo "${2%ms}" ;;
    *[0-9]s) echo "$((${2%s} * 1000))" ;;
    *[0-9]m) echo "$((${2%m} * 60000))" ;;
    *[0-9]h) echo "$((${2%h} * 3600000))" ;;
    *) fail "$1 must be a duration such as 300ms, 30s, 5m or 6h (got '$2')" ;;
  esac
}

# The CLI VAULT_CLI names (vault, the default, or bao) as $cli, on PATH, with VAULT_ADDR and
# a token: VAULT_TOKEN, or the CLI's own ~/.vault-token. bao reads BAO_* before VAULT_*: those are dropped, so both CLIs act on the
# same server with the same token.
use_cli_with_token() {
  cli=${VAULT_CLI:-vault}
  command -v "$cli" >/dev/null 2>&1 || fail "the Vault CLI '$cli' is not on PATH (set VAULT_CLI)"
  [ -n "${VAULT_ADDR:-}" ] || fail "VAULT_ADDR is not set: give the address of the Vault server"
  # Or the CLI's token helper file (~/.vault-token): scripts/prod/first-bootstrap.sh hands the
  # root token over that way, out of every process's environment.
  [ -n "${VAULT_TOKEN:-}" ] || [ -s "${HOME:-/nonexistent}/.vault-token" ] ||
    fail "VAULT_TOKEN is not set, nor ${HOME:-~}/.vault-token: give a token allowed to configure $VAULT_ADDR"
  unset BAO_ADDR BAO_TOKEN BAO_CACERT BAO_CAPATH BAO_NAMESPACE
}

# The auth method of type $1 at auth/$1, enabled unless it is there already; $2 names it in
# what is said. Reading its mount answers 400 "No auth engine at <type>/" when it is absent.
enable_auth_method() { # type, name
  if "$cli" read -field=type "sys/auth/$1" >/dev/null 2>"$errors"; then
    say "$2 already enabled at auth/$1"
  elif grep -q 'No auth engine at' "$errors"; then
    "$cli" auth enable "$1" >/dev/null 2>"$errors" || fail "cannot enable $2: $(reason)"
    say "enabled $2 at auth/$1"
  else
    fail "cannot read the auth method at auth/$1: $(reason)"
  fi
}
