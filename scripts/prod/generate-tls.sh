#!/bin/sh
# Generates a throw-away CA and a server certificate for a local production-mode Vault:
#
#   generate-tls.sh <out-dir> [dns-name-or-ip ...]      (default: localhost 127.0.0.1 vault)
#
# Writes ca.pem, server.pem and server-key.pem (0600). For local use and tests only: real
# deployments take certificates from their PKI. Never commit the output (.tls/ is ignored).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 <out-dir> [dns-name-or-ip ...]" >&2; exit 2; }
out=$1
shift
[ $# -gt 0 ] || set -- localhost 127.0.0.1 vault
command -v openssl >/dev/null 2>&1 || { echo "generate-tls: openssl is not installed" >&2; exit 1; }

san=''
for name in "$@"; do
  case $name in
    *[!0-9.]*) entry="DNS:$name" ;;
    *) entry="IP:$name" ;;
  esac
  san="${san:+$san,}$entry"
done

mkdir -p "$out"
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:3072 -nodes -days 30 -subj "/CN=saas-vault local CA" \
  -keyout "$work/ca-key.pem" -out "$out/ca.pem" 2>/dev/null
openssl req -newkey rsa:3072 -nodes -subj "/CN=$1" -keyout "$out/server-key.pem" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san" >"$work/ext.cnf"
openssl x509 -req -in "$work/server.csr" -CA "$out/ca.pem" -CAkey "$work/ca-key.pem" -CAcreateserial \
  -days 30 -extfile "$work/ext.cnf" -out "$out/server.pem" 2>/dev/null
chmod 0644 "$out/ca.pem" "$out/server.pem"
echo "generate-tls: wrote ca.pem, server.pem and server-key.pem to $out for $san (the CA key is discarded)"
