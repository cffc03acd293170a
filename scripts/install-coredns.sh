#!/bin/sh
# Builds the pinned CoreDNS, the test cluster's DNS, from the Go module proxy into the cache
# that scripts/install-kubernetes.sh builds into, and prints the path of the binary on stdout.
#
# CoreDNS publishes images and release binaries, neither reachable from these machines; the Go
# module proxy serves github.com/coredns/coredns. The cluster needs only what a kube-dns does, so
# a wrapper main compiles in the few plugins its Corefile names (scripts/kubernetes/dns.ts),
# not the cloud back-ends of the full build. It shares the Kubernetes build's Go caches (and
# its lock): client-go and its dependencies are mostly there already. Cold: 2 minutes on 2
# cores once Kubernetes is built (measured). A second run only checks the version.
set -eu

# v1.14.7: the newest patch of the newest well-tried minor, which fixes the DoH/DoQ/gRPC
# advisories reported against v1.14.6 and earlier.
version=1.14.7
# Execution order, as CoreDNS's plugin.cfg orders these plugins; log is there to trace a lookup
# by adding it to the Corefile.
plugins='ready errors log cache loadbalance kubernetes'

root=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
. "$root/scripts/lib/go-build.sh"
cache=$(cache_folder kubernetes)
build="$cache/coredns-$version"
coredns="$build/bin/coredns"

say() { echo "install-coredns: $*" >&2; }
installed() { [ -x "$coredns" ] && "$coredns" -version 2>/dev/null | grep -qF "CoreDNS-$version"; }

# CoreDNS's go.mod asks for Go 1.25.0 or later; the release install-vault.sh pins is one, so a
# machine without Go fetches a single toolchain for both.
toolchain=1.25.3
toolchain_sha256=9758fbb61130102a9128976f9666fe3fd03578ed1e39d0751d8d30f364762ea8

lock_build
if ! installed; then
  go=$(go_for_build "$toolchain" "$toolchain_sha256")
  say "building CoreDNS $version (plugins: $plugins) with $("$go" version) into $build (cold: about 2 minutes on 2 cores)"
  start_build
  imports=$(for plugin in $plugins; do printf '\t_ "github.com/coredns/coredns/plugin/%s"\n' "$plugin"; done)
  directives=$(for plugin in $plugins; do printf '"%s", ' "$plugin"; done)
  cat > "$src/go.mod" <<GOMOD
module saas-vault-secrets.invalid/coredns

go $toolchain

require github.com/coredns/coredns v$version
GOMOD
  # CoreDNS's own main imports every plugin (core/plugin); this one only those the Corefile
  # uses, and tells the server their order.
  cat > "$src/main.go" <<GO
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
$imports
)

func init() { dnsserver.Directives = []string{$directives} }

func main() { coremain.Run() }
GO
  compile_into_bin "$go" CoreDNS '-s -w' .
  installed || { say "$coredns does not report version $version"; exit 1; }
  say "built in $(( ($(date +%s) - started) / 60 )) min"
fi

echo "$coredns"
