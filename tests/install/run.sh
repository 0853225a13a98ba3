#!/usr/bin/env bash
# Installs a ringbus build into a fresh temporary prefix and builds an outside
# program against it twice: with CMake (find_package(ringbus CONFIG) and
# ringbus::ringbus) and with pkg-config (ringbus.pc). Both programs must run
# and pass. This is what a user gets from `cmake --install`, so it catches
# headers that include uninstalled files, missing link dependencies of the
# static library, and config or .pc files that point outside the prefix.
#   tests/install/run.sh BUILD_DIR
set -euo pipefail

if (($# != 1)) || [[ ! -f "$1/CMakeCache.txt" ]]; then
  echo "usage: $0 BUILD_DIR   (a configured and built ringbus build directory)" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/ringbus-install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

run() {
  echo "+ $*"
  "$@"
}

# The consumer is built with the compiler ringbus was built with.
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
cxx=${cxx:-${CXX:-c++}}
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi

echo "== install $build_dir into $prefix =="
run cmake --install "$build_dir" --prefix "$prefix"

echo "== CMake consumer: find_package(ringbus CONFIG REQUIRED) =="
run cmake -S "$source_dir" -B "$work/cmake-consumer" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix"
# The package must come from the fresh prefix, not from an older install elsewhere.
found_dir=$(sed -n 's/^ringbus_DIR:[A-Z]*=//p' "$work/cmake-consumer/CMakeCache.txt")
if [[ "$found_dir" != "$prefix"/* ]]; then
  echo "FAIL: find_package found ringbus in '$found_dir', not under $prefix" >&2
  exit 1
fi
run cmake --build "$work/cmake-consumer"
run "$work/cmake-consumer/consumer"

echo "== pkg-config consumer: ringbus.pc =="
pc_file=$(find "$prefix" -name ringbus.pc -print -quit)
if [[ -z "$pc_file" ]]; then
  echo "FAIL: no ringbus.pc installed under $prefix" >&2
  exit 1
fi
PKG_CONFIG_PATH=$(dirname "$pc_file")
export PKG_CONFIG_PATH
includedir=$(pkg-config --variable=includedir ringbus)
libdir=$(pkg-config --variable=libdir ringbus)
echo "ringbus.pc: includedir=$includedir libdir=$libdir"
# A .pc written with the configure-time prefix points away from an install
# made with `cmake --install --prefix`; say so plainly rather than let the
# compiler find (or miss) some other copy.
if [[ ! -f "$includedir/ringbus/ringbus.hpp" ]]; then
  echo "FAIL: ringbus.pc's includedir ($includedir) has no ringbus/ringbus.hpp; installed under $prefix" >&2
  exit 1
fi
if ! compgen -G "$libdir/libringbus.*" >/dev/null; then
  echo "FAIL: ringbus.pc's libdir ($libdir) has no libringbus; installed under $prefix" >&2
  exit 1
fi
# Both the plain link line and the --static one (Libs.private) must work.
for mode in plain static; do
  static_flag=()
  if [[ $mode == static ]]; then static_flag=(--static); fi
  read -r -a pc_flags <<<"$(pkg-config "${static_flag[@]}" --cflags --libs ringbus)"
  run "$cxx" -std=c++20 "$source_dir/main.cpp" -o "$work/pc-consumer-$mode" "${pc_flags[@]}"
  run "$work/pc-consumer-$mode"
done

echo "install test: CMake and pkg-config consumers passed"
