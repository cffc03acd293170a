#!/bin/sh
# Rotates one of Vault's file audit logs, as logrotate would, without stopping Vault:
#
#   rotate-audit-log.sh <audit-file> <vault-pid> [keep (7)]
#
# Renames <audit-file> to <audit-file>.<UTC time>, sends SIGHUP to the Vault server <vault-pid>
# (a file audit device reopens its file on SIGHUP: the next request starts a new one), and
# deletes all but the newest <keep> rotated files. Run it where the files and the process are:
# with docker-compose.prod.yml, inside the vault container (its pid is 1):
#   docker compose -f docker-compose.prod.yml exec -T vault sh -s /vault/audit/audit.log 1 \
#     <scripts/prod/rotate-audit-log.sh
# Between the rename and the reopen, Vault keeps writing to the renamed file: nothing is lost.
set -eu
fail() {
  echo "rotate-audit-log: $*" >&2
  exit 1
}
[ $# -ge 2 ] && [ $# -le 3 ] || { echo "usage: $0 <audit-file> <vault-pid> [keep]" >&2; exit 2; }
file=$1
pid=$2
keep=${3:-7}
case $pid in '' | *[!0-9]*) fail "the Vault server's pid must be a number (got '$pid')" ;; esac
case $keep in '' | *[!0-9]*) fail "keep must be a whole number (got '$keep')" ;; esac
[ -f "$file" ] || fail "$file is not a file: nothing to rotate"
kill -0 "$pid" 2>/dev/null || fail "no process $pid to tell (the Vault server's pid)"

rotated=$file.$(date -u +%Y%m%dT%H%M%SZ)
[ ! -e "$rotated" ] || fail "$rotated exists already: rotate at most once a second"
mv "$file" "$rotated" || fail "cannot rename $file"
kill -HUP "$pid" || fail "cannot send SIGHUP to $pid: Vault keeps writing to $rotated until it reopens"
echo "rotate-audit-log: $file rotated to $rotated; Vault ($pid) told to reopen"

# The newest <keep> rotated files stay; the names sort by time.
count=0
for old in $(ls -1 "$file".* 2>/dev/null | sort -r); do
  count=$((count + 1))
  if [ "$count" -gt "$keep" ]; then
    rm -f "$old"
    echo "rotate-audit-log: deleted $old (keeping the newest $keep)"
  fi
done
