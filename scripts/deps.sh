#!/usr/bin/env bash
# Installs the Debian 12 packages that building and testing ringbus needs,
# and only those that are missing: when everything is there it touches
# nothing (no apt-get update), so it is cheap to run before every build.
# Run as root it installs them; run as anyone else it prints the one
# apt-get line to run and fails, rather than asking for a password.
set -euo pipefail

# Build tools, then the libraries: ringbus's own test framework (doctest),
# its private heap (mimalloc), the command-line tool's parser (CLI11), and the
# benchmark with its peer queues.
readonly PACKAGES=(
  cmake ninja-build g++ pkg-config git
  doctest-dev libmimalloc-dev libcli11-dev
  libbenchmark-dev libconcurrentqueue-dev libreaderwriterqueue-dev libatomic-queue-dev libboost-dev libxxhash-dev
)

missing=()
for package in "${PACKAGES[@]}"; do
  # db:Status-Status is "installed" only for a fully installed package
  # (not one removed with its config files left, nor half-configured).
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  if [[ "$status" != "installed" ]]; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "deps: all ${#PACKAGES[@]} Debian packages are installed"
  exit 0
fi

install_line="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [[ "$(id -u)" != "0" ]]; then
  echo "deps: missing Debian packages: ${missing[*]}" >&2
  echo "deps: run as root:" >&2
  echo "  apt-get update && $install_line" >&2
  exit 1
fi

echo "deps: installing missing Debian packages: ${missing[*]}"
echo "+ apt-get update"
apt-get update
echo "+ $install_line"
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
