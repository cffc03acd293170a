#!/bin/sh
# Prints the path of promtool (Prometheus' checker of rules and metrics), installing Debian's
# `prometheus` package first when none is found. The tests use it on deploy/prometheus/ and on
# the service's /metrics. Only promtool is wanted: the package also ships the Prometheus server
# with a service that its install would start, so starts are refused while it installs (a
# policy-rc.d, unless the machine has one), a server started anyway is stopped (with systemd,
# also kept from starting at boot), and the script fails if the install left one running.
set -eu
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
# can_install, install_package
. "$here/lib/debian-package.sh"

if path=$(command -v promtool 2>/dev/null); then
  echo "$path"
  exit 0
fi

echo "ensure-promtool: no promtool found; installing Debian's prometheus package" >&2
can_install ensure-promtool "promtool (Debian's prometheus package)"

# Prometheus servers running, read from /proc (a minimal Debian has no pgrep).
servers() {
  for comm in /proc/[0-9]*/comm; do
    [ "$(cat "$comm" 2>/dev/null)" = prometheus ] && echo "${comm%/comm}" | sed 's|/proc/||'
  done
  return 0
}
# The ones this install started: any that ran before it are not ours to judge.
before=" $(servers | tr '\n' ' ') "
started() {
  for pid in $(servers); do
    case "$before" in *" $pid "*) ;; *) echo "$pid" ;; esac
  done
}

# invoke-rc.d and deb-systemd-invoke ask policy-rc.d first; 101 means "action forbidden".
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  trap '$sudo rm -f "$policy"' EXIT
  trap 'exit 130' INT TERM
  printf '#!/bin/sh\n# ensure-promtool.sh: no service starts while prometheus installs\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
fi

install_package prometheus

# Should a start have slipped through, stop it; with systemd, also keep it off at boot.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  $sudo systemctl disable --now prometheus.service >&2 || true
elif [ -x /etc/init.d/prometheus ] && [ -n "$(started)" ]; then
  $sudo /etc/init.d/prometheus stop >&2 || true
fi
if [ -n "$(started)" ]; then
  echo "ensure-promtool: the install left a Prometheus server running (pid $(started | tr '\n' ' ')); stop it" >&2
  exit 1
fi

path=$(command -v promtool 2>/dev/null) || { echo "ensure-promtool: promtool still not found after installing" >&2; exit 1; }
echo "$path"
