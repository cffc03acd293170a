#!/bin/sh
# Builds the pinned Kubernetes control plane and node binaries (kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl) from the Go module proxy into a
# cache outside the clone, and prints the folder holding them on stdout.
#
# Kubernetes publishes release binaries, but not to anywhere these machines can reach; the Go
# module proxy serves k8s.io/kubernetes itself. Its go.mod points each staging module
# (k8s.io/api, k8s.io/client-go, ...) at a folder of its own repository, so `go install` refuses
# it: a wrapper module requires it and points each staging module at its published release of
# the same minor version instead. Cold: 7 to 9 minutes on 2 idle cores (measured), more on a busy
# machine; about 5 GB of Go caches. A second run only checks the versions.
set -eu

version=1.37.2
# The staging modules are published as v0.<minor>.<patch> of the same release.
staging_version=v0.${version#1.}
commands='kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy'

root=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
. "$root/scripts/lib/go-build.sh"
cache=$(cache_folder kubernetes)
build="$cache/$version"
bin="$build/bin"

say() { echo "install-kubernetes: $*" >&2; }
installed() {
  for command in $commands; do
    [ -x "$bin/$command" ] || return 1
  done
  "$bin/kubectl" version --client 2>/dev/null | grep -qF "Client Version: v$version"
}

# The Go that k8s.io/kubernetes' go.mod asks for, at least.
toolchain=1.26.0
toolchain_sha256=38461905b98c59173672814302e222ab43b652274bc0c95817b08b71ab66b705

lock_build
if ! installed; then
  go=$(go_for_build "$toolchain" "$toolchain_sha256")
  say "building Kubernetes $version ($commands) with $("$go" version) into $build (cold: about 7 minutes on 2 idle cores, longer on a busy machine)"
  start_build

  say "downloading k8s.io/kubernetes@v$version"
  gomod=$(cd "$src" && "$go" mod download -json "k8s.io/kubernetes@v$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -n "$gomod" ] && [ -f "$gomod" ] || { say "the Go module proxy did not serve k8s.io/kubernetes@v$version"; exit 1; }
  # Each `k8s.io/<name> => ./staging/src/k8s.io/<name>` line of its go.mod becomes a replace by
  # the published module. k8s.io/utils and k8s.io/kube-openapi are ordinary dependencies with
  # versions of their own, and no such line.
  replaces=$(sed -n 's|^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/k8s\.io/[a-z0-9-]*$|replace \1 => \1 '"$staging_version"'|p' "$gomod")
  [ -n "$replaces" ] || { say "no staging modules found in $gomod: its layout changed"; exit 1; }
  cat > "$src/go.mod" <<GOMOD
module saas-vault-secrets.invalid/kubernetes-build

go $toolchain

require k8s.io/kubernetes v$version

$replaces
GOMOD
  packages=$(for command in $commands; do printf 'k8s.io/kubernetes/cmd/%s ' "$command"; done)
  # The version the binaries report, and the one kubelet and kubectl compare with the server's.
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2) -X k8s.io/component-base/version.gitTreeState=clean"
  # shellcheck disable=SC2086 # one argument per package
  compile_into_bin "$go" Kubernetes "$ldflags" $packages
  installed || { say "$bin does not hold all of $commands at version $version"; exit 1; }
  say "built in $(( ($(date +%s) - started) / 60 )) min"
fi

echo "$bin"
