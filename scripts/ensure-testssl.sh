#!/bin/sh
# Prints the path of testssl.sh (Debian's package names it `testssl`), installing Debian's
# `testssl.sh` package first when none is found. The TLS tests run it against Vault's listener
# and PostgreSQL as the shipped files configure them (service/test/deploy/tls-suites.test.ts).
# The package brings what the script needs besides bash and openssl: dig (bind9-dnsutils,
# without which it refuses to start), hexdump (bsdextrautils) and ps (procps).
set -eu
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
# can_install, install_package
. "$here/lib/debian-package.sh"

find_testssl() {
  for name in testssl testssl.sh; do
    if path=$(command -v "$name" 2>/dev/null); then
      echo "$path"
      return 0
    fi
  done
  return 1
}

if path=$(find_testssl) && command -v dig >/dev/null 2>&1; then
  echo "$path"
  exit 0
fi

echo "ensure-testssl: no testssl.sh (or no dig) found; installing Debian's testssl.sh package" >&2
can_install ensure-testssl "testssl.sh (Debian's testssl.sh package)"
install_package testssl.sh

path=$(find_testssl) || { echo "ensure-testssl: testssl.sh still not found after installing" >&2; exit 1; }
echo "$path"
