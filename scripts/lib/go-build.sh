# Sourced by the scripts that build a pinned Go program from the Go module proxy into a cache
# outside the clone (install-vault.sh, install-kubernetes.sh, install-coredns.sh). The caller
# sets, before calling:
#   say        a function printing one progress line on stderr
#   cache      the cache folder (the toolchain and the Go caches go under it)
#   build      the folder of this build: src/ while it builds, bin/ when it is done, and
#              step.log holding the running step's output
# A build is: lock_build, go_for_build, start_build, the caller's own module in $src/go.mod,
# then compile_into_bin.

# The cache folder of the builds of one kind (the name): the system's as root, the user's
# otherwise, so a build done once serves every clone on the machine.
cache_folder() { # name
  if [ "$(id -u)" = 0 ]; then echo "/var/lib/saas-vault-secrets/$1"
  else echo "${XDG_CACHE_HOME:-$HOME/.cache}/saas-vault-secrets/$1"; fi
}

# The Go a module asks for, at least: the machine's, or else that release of
# golang.org/toolchain (a whole Go distribution) from the Go module proxy, checked against its
# SHA-256 and unpacked into the cache. Python does the download and the unzip: the README
# promises Python, not curl or unzip.
go_for_build() { # version, sha256 of its linux-amd64 zip
  toolchain=$1 toolchain_sha256=$2
  if command -v go >/dev/null 2>&1; then
    have=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
    if [ "$(printf '%s\n' "$toolchain" "$have" | sort -V | head -n 1)" = "$toolchain" ]; then command -v go; return; fi
  fi
  dir="$cache/toolchain/go$toolchain"
  if [ ! -x "$dir/bin/go" ]; then
    [ "$(uname -sm)" = 'Linux x86_64' ] ||
      { say "no Go $toolchain or later on PATH: install it (the toolchain this script fetches is for Linux x86-64)"; exit 1; }
    say "no Go $toolchain or later on PATH: fetching golang.org/toolchain go$toolchain from the Go module proxy"
    mkdir -p "$cache/toolchain"
    rm -rf "$dir.staging"
    ${PYTHON:-python3} - "$dir.staging" "$toolchain" "$toolchain_sha256" <<'PY' || { say "could not fetch Go $toolchain (see above)"; exit 1; }
import hashlib, io, sys, urllib.request, zipfile
dest, version, sha256 = sys.argv[1:]
url = f"https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go{version}.linux-amd64.zip"
data = urllib.request.urlopen(url, timeout=300).read()
if hashlib.sha256(data).hexdigest() != sha256:
    sys.exit(f"{url}: SHA-256 {hashlib.sha256(data).hexdigest()}, expected {sha256}")
zipfile.ZipFile(io.BytesIO(data)).extractall(dest)
PY
    # A zip keeps no file modes: the binaries are made executable again.
    chmod -R a+x "$dir.staging/golang.org/toolchain@v0.0.1-go$toolchain.linux-amd64/bin" \
      "$dir.staging/golang.org/toolchain@v0.0.1-go$toolchain.linux-amd64/pkg/tool"
    mv "$dir.staging/golang.org/toolchain@v0.0.1-go$toolchain.linux-amd64" "$dir"
    rm -rf "$dir.staging"
  fi
  echo "$dir/bin/go"
}

# The Go caches live in the build's cache, so one folder holds everything a build left;
# -modcacherw lets `rm -rf` remove it.
use_cache_for_go() {
  export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS='-modcacherw -buildvcs=false' GOTOOLCHAIN=local
}

# Runs a long step with its output in step.log, saying every 30 s how many lines match.
progress() { # what, pattern, command...
  what=$1 pattern=$2
  shift 2
  "$@" >"$build/step.log" 2>&1 &
  pid=$! ticks=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    ticks=$((ticks + 1))
    [ $((ticks % 30)) -ne 0 ] || say "$(grep -c "$pattern" "$build/step.log" || true) $what ($(( ($(date +%s) - started) / 60 )) min)"
  done
  wait "$pid" || { cat "$build/step.log" >&2; say "failed: $* (its output is above)"; exit 1; }
}

# One build per cache at a time: a second caller (two test files, two clones) waits for the
# first, then finds its result instead of building over it. The lock goes with the process.
lock_build() {
  mkdir -p "$cache"
  exec 9>"$cache/.build.lock"
  flock 9 || { say "cannot lock $cache/.build.lock"; exit 1; }
}

# Points Go at the cache and starts an empty $src (where the caller writes its wrapper module)
# and the clock that progress lines and the last line read.
start_build() {
  use_cache_for_go
  started=$(date +%s)
  mkdir -p "$build"
  src="$build/src"
  rm -rf "$src"
  mkdir -p "$src"
}

# Downloads what the packages need, compiles them into $build/bin (swapped in whole, so a
# failed build leaves no half of one) and removes $src. -v names each package as it is
# compiled: their count is the progress.
compile_into_bin() { # go, what it is (for the progress lines), ldflags, packages...
  go=$1 what=$2 ldflags=$3
  shift 3
  say "downloading the dependencies of $what"
  progress 'modules downloaded' '^go: downloading' sh -c "cd '$src' && '$go' list -mod=mod -deps $*"
  total=$(grep -vc '^go: ' "$build/step.log")
  staging="$build/bin.staging"
  rm -rf "$staging"
  mkdir -p "$staging"
  say "compiling about $total packages"
  progress "packages compiled of about $total" '^[a-z][^: ]*$' \
    sh -c "cd '$src' && '$go' build -mod=mod -v -trimpath -ldflags '$ldflags' -o '$staging/' $*"
  rm -rf "$build/bin"
  mv "$staging" "$build/bin"
  rm -rf "$src" "$build/step.log"
}
