# Sourced by the scripts that install one of Debian's packages when a tool is missing
# (scripts/ensure-*.sh): the way in (root, or sudo) and the install, written once. POSIX sh.
# Messages go to stderr: those scripts print only the tool's path on stdout.

# Sets $sudo ('' as root, 'sudo' otherwise), or exits 1 naming what to install by hand.
#   can_install <script name> <what to install, as the message says it>
can_install() {
  if [ "$(id -u)" = 0 ]; then sudo=''; elif command -v sudo >/dev/null 2>&1; then sudo='sudo'; else
    echo "$1: install $2 and run again: not root and no sudo" >&2
    exit 1
  fi
  command -v apt-get >/dev/null 2>&1 || { echo "$1: no apt-get: install $2 by hand" >&2; exit 1; }
}

# Installs Debian's package $1, without recommends, after can_install.
install_package() {
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$1" >&2
}
