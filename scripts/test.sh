#!/usr/bin/env bash
# Builds and runs every test under each preset (default: dev, asan, tsan):
#   cmake --preset P && cmake --build --preset P -j2 && ctest --preset P
# A preset that fails to configure or build does not stop the others. The
# script ends with one summary line per preset (counts, outcome, seconds per
# step) and a total line, and exits non-zero when any preset failed to
# configure or build, or any test failed.
# Works from any directory:  scripts/test.sh [PRESET...]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

presets=("$@")
if ((${#presets[@]} == 0)); then
  presets=(dev asan tsan)
fi

run bash scripts/deps.sh

summaries=()
total_passed=0
total_failed=0
any_failure=0

# Runs one step of a preset and notes how long it took in $timings.
timed() {
  local step=$1
  shift
  local started=$SECONDS status=0
  "$@" || status=$?
  timings+="${timings:+, }$step $((SECONDS - started))s"
  return "$status"
}

# ctest, its output kept in $log for the tally. --no-tests=error: a preset
# that ran no test has proved nothing.
# shellcheck disable=SC2317 # invoked through timed
run_ctest() {
  echo "+ ctest --preset $1 --no-tests=error"
  ctest --preset "$1" --no-tests=error 2>&1 | tee "$log"
}

for preset in "${presets[@]}"; do
  echo
  echo "== preset $preset =="
  log="build/$preset/ctest-output.log"
  passed=0
  failed=0
  timings=""
  ctest_status=0
  drop_foreign_build_dir "$preset"
  if ! timed configure run cmake --preset "$preset"; then
    outcome="configure FAILED"
  elif ! timed build run cmake --build --preset "$preset" -j"$JOBS"; then
    outcome="build FAILED"
  else
    timed test run_ctest "$preset" || ctest_status=$?
    # ctest's own tally, e.g. "97% tests passed, 1 tests failed out of 40".
    tally=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
    if [[ -n "$tally" ]]; then
      failed=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$tally")
      passed=$(($(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$tally") - failed))
    else
      failed=1 # ctest ran no test, or died before its tally
    fi
    if ((ctest_status != 0 || failed != 0)); then
      outcome="tests FAILED, ctest exit $ctest_status"
    else
      outcome="ok"
    fi
  fi
  if [[ "$outcome" != ok ]]; then
    any_failure=1
  fi
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  summaries+=("$(printf '%-5s %d passed, %d failed  [%s; %s]' "$preset:" "$passed" "$failed" "$outcome" "$timings")")
done

echo
echo "== summary =="
printf '%s\n' "${summaries[@]}"
if ((any_failure != 0 && total_failed == 0)); then
  total_failed=1 # a configure or build failure counts, though no test ran
fi
echo "total: $total_passed passed, $total_failed failed"
exit "$any_failure"
