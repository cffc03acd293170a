#!/bin/sh
# Builds the pinned HashiCorp Vault from the Go module proxy into a cache outside the clone,
# links it as .tools/bin/vault (git ignores .tools) and prints that path on stdout.
#
# HashiCorp publishes no binary these machines can download, and Vault 1.15 and later is under
# the BUSL 1.1: the binary is built here for the tests and never committed or published.
# Cold: about 15 minutes on 2 cores, about 6 GB of memory, 7.6 GB of Go caches. A second run only
# checks the version. Progress goes to stderr, a line every 30 s.
set -eu

version=1.21.4

root=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
if [ "$(id -u)" = 0 ]; then cache=/var/lib/saas-vault-secrets/vault
else cache=${XDG_CACHE_HOME:-$HOME/.cache}/saas-vault-secrets/vault; fi
build="$cache/$version"
vault="$build/bin/vault"
link="$root/.tools/bin/vault"

say() { echo "install-vault: $*" >&2; }
installed_version() {
  [ -x "$vault" ] && "$vault" version 2>/dev/null | sed -n 's/^Vault v\([0-9.]*\)[ ,].*/\1/p'
}

# The Go that Vault's go.mod asks for, at least (scripts/lib/go-build.sh fetches it when missing).
toolchain=1.25.3
toolchain_sha256=9758fbb61130102a9128976f9666fe3fd03578ed1e39d0751d8d30f364762ea8
. "$root/scripts/lib/go-build.sh"

lock_build
if [ "$(installed_version || true)" != "$version" ]; then
  go=$(go_for_build "$toolchain" "$toolchain_sha256")
  say "building HashiCorp Vault $version with $("$go" version) into $build (cold: about 15 minutes)"
  start_build

  say "downloading github.com/hashicorp/vault@v$version"
  dir=$(cd "$src" && "$go" mod download -json "github.com/hashicorp/vault@v$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -f "$dir/go.mod" ] || { say "the Go module proxy did not serve github.com/hashicorp/vault@v$version"; exit 1; }
  cp -R "$dir" "$src/vault"
  chmod -R u+w "$src/vault"

  # Vault's own go.mod builds against the api/ and sdk/ folders of its repository, which the
  # module download does not carry; the published sdk v0.21.0 is the nearest, and three places
  # do not compile against it (none in a path this project uses). Each edit fails loudly if
  # its text is not found, so a new pin cannot be built with edits that no longer apply.
  edit() { # file, sed expression, text that must be there afterwards
    sed -i "$2" "$src/vault/$1"
    grep -qF "$3" "$src/vault/$1" || { say "edit no longer applies to $1 (wanted: $3)"; exit 1; }
  }
  # sdk v0.21.0's ActivationFunc takes a third string argument.
  edit vault/identity_store_util.go \
    's/^func (i \*IdentityStore) activateDeduplication(ctx context.Context, req \*logical.Request) error {$/func (i *IdentityStore) activateDeduplication(ctx context.Context, req *logical.Request, _ string) error {/' \
    'req *logical.Request, _ string) error {'
  edit vault/logical_system_activation_flags.go \
    's/b\.idStoreBackend\.ActivationFunc(ctx, nil)/b.idStoreBackend.ActivationFunc(ctx, nil, "")/' \
    'ActivationFunc(ctx, nil, "")'
  # sdk v0.21.0's RestorePolicy returns only an error: the key restored is the one asked for.
  edit builtin/logical/transit/path_restore.go \
    's/restoredKeyName, err := b\.lm\.RestorePolicy(/restoredKeyName, err := keyName, b.lm.RestorePolicy(/' \
    'restoredKeyName, err := keyName, b.lm.RestorePolicy('

  # A wrapper module: Go ignores a dependency's replace lines, so Vault's two third-party ones
  # are repeated here, and Vault itself is the edited copy.
  cat > "$src/go.mod" <<EOF
module saas-vault-secrets.invalid/vault-build

go 1.25.3

require github.com/hashicorp/vault v$version

replace github.com/hashicorp/vault => ./vault

replace github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3

replace github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1
EOF

  compile_into_bin "$go" Vault '-s -w' github.com/hashicorp/vault
  [ "$(installed_version || true)" = "$version" ] || { say "$vault does not report version $version"; exit 1; }
  say "built in $(( ($(date +%s) - started) / 60 )) min"
fi

mkdir -p "$root/.tools/bin"
ln -sfn "$vault" "$link"
echo "$link"
