# shellcheck shell=bash
# Shared by scripts/*.sh (sourced, not run). Expects the cwd to be the repo root.

# shellcheck disable=SC2034 # used by the scripts that source this file
readonly JOBS=2 # the machines have 2 cores, shared by everyone on them

# Prints a command, then runs it.
run() {
  echo "+ $*"
  "$@"
}

# A build directory configured from another source tree (a copied or cloned
# work tree that carried build/ along) makes `cmake --preset` refuse to run:
# CMakeCache.txt remembers its source directory. Such a directory is stale
# through and through, so start it afresh.
drop_foreign_build_dir() {
  local build_dir="build/$1"
  local cache="$build_dir/CMakeCache.txt"
  [[ -f "$cache" ]] || return 0
  local configured_from
  configured_from=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$cache")
  if [[ -n "$configured_from" && "$(cd "$configured_from" 2>/dev/null && pwd -P)" != "$(pwd -P)" ]]; then
    echo "build/$1 was configured from $configured_from, not $(pwd -P): removing it"
    rm -rf "$build_dir"
  fi
}
