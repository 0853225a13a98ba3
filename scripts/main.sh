#!/usr/bin/env bash
# The main job: builds the release preset and runs the fan-out demo, then a
# short side-by-side benchmark of ringbus and its peer queues (`ringbus bench
# --quick`: progress on stderr, the table, a results file and its chart in
# bench/results/). Works from any directory; extra arguments go to `ringbus
# bench` (e.g. --repetitions 3, --filter rtt/).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

run bash scripts/deps.sh
drop_foreign_build_dir release
run cmake --preset release
# Only what this job runs: the test suite is scripts/test.sh's business.
run cmake --build --preset release -j"$JOBS" --target fanout_demo ringbus-cli

echo
echo "== fan-out demo =="
run build/release/examples/fanout_demo

echo
echo "== benchmark: ringbus bench --quick (the headline scenarios) =="
run build/release/ringbus bench --quick "$@"
