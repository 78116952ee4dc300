#!/usr/bin/env bash
# The full backpressure proof of issue 4 item 4 (not in ctest: ~10 minutes): the same test as
# tests/integration/test_backpressure.py with a 1,000,000-request backlog produced before the
# worker starts, a model made slow on purpose, VmRSS sampled every 0.5 s and held under a
# stated bound, the worker never leaving the group, every id answered.
#
#   tests/integration/backpressure_full.sh [N]        (default N = 1000000)
#
# Runs a broker of its own (ports 39692/39693 unless KAFKA_PORT / KAFKA_CONTROLLER_PORT are
# set, a temporary SLUICE_RUN_DIR) and stops it afterwards. Needs ~4 GB of disk for the
# backlog. SLUICE_BIN (default build/sluice), SLUICE_BACKPRESSURE_LAYERS (24) and
# SLUICE_BACKPRESSURE_RSS_MB (300) as in the test.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
py=${SLUICE_PYTHON:-$repo/.venv/bin/python}
export SLUICE_BIN=${SLUICE_BIN:-$repo/build/sluice}
export SLUICE_BACKPRESSURE_N=${1:-1000000}
export KAFKA_PORT=${KAFKA_PORT:-39692}
export KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-39693}
own_run_dir=
if [[ -z ${SLUICE_RUN_DIR:-} ]]; then
  own_run_dir=$(mktemp -d "${TMPDIR:-/tmp}/sluice-backpressure-kafka.XXXXXX")
  export SLUICE_RUN_DIR=$own_run_dir
fi
basetemp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-backpressure-pytest.XXXXXX")
cleanup() {
  "$repo/deploy/kafka-local.sh" stop >/dev/null 2>&1 || true
  [[ -n $own_run_dir ]] && rm -rf "$own_run_dir"
  rm -rf "$basetemp"
}
trap cleanup EXIT

"$repo/deploy/kafka-local.sh" start
# The phase-2 collect waits for all N responses; its idle timeout is 120 s.
"$py" -m pytest -v -s -p no:cacheprovider --basetemp="$basetemp" \
  "$here/test_backpressure.py"
