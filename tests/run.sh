#!/usr/bin/env bash
# The whole test suite: install what is missing, build with -Werror, run every
# ctest label (unit, conformance, integration against a real local Kafka
# broker that the tests start and stop), then unit + conformance again under
# AddressSanitizer + UndefinedBehaviorSanitizer, then a short fuzz run of the
# request decoder. Ends with one line: "suite: N passed, N failed".
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
passed=0 failed=0

# Run ctest in a build dir with extra args; add its counts to the totals.
run_ctest() {
  export ASAN_OPTIONS=${ASAN_OPTIONS:-} UBSAN_OPTIONS=${UBSAN_OPTIONS:-}
  local dir=$1 log
  shift
  log=$(mktemp)
  (cd "$dir" && ctest --output-on-failure --timeout 1500 "$@") 2>&1 | tee "$log" || true
  local line
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1 || true)
  rm -f "$log"
  if [[ -z $line ]]; then
    failed=$((failed + 1))
    return 0
  fi
  local nfail ntotal
  nfail=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
  ntotal=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
  passed=$((passed + ntotal - nfail))
  failed=$((failed + nfail))
}

deploy/install-deps.sh

cmake -S . -B build -DSL_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j2
run_ctest build

if [[ ${SLUICE_SKIP_ASAN:-0} != 1 ]]; then
  cmake -S . -B build-asan -DSL_WERROR=ON -DSL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  cmake --build build-asan -j2
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    run_ctest build-asan -L 'unit|conformance' -E deploy_validate
fi

# The request decoder's libFuzzer target, briefly (run it for longer by hand: tests/fuzz/README.md).
if [[ ${SLUICE_SKIP_FUZZ:-0} != 1 ]]; then
  CC=clang cmake -S . -B build-fuzz -DSL_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-fuzz -j2 --target fuzz_request
  corpus=$(mktemp -d)
  cp tests/fuzz/corpus/request/* "$corpus/"
  if build-fuzz/tests/fuzz/fuzz_request "$corpus" -max_total_time="${SLUICE_FUZZ_SECONDS:-30}" \
       -print_final_stats=1 >"$corpus.log" 2>&1; then
    passed=$((passed + 1))
    grep -E '^Done|stat::number_of_executed_units' "$corpus.log" || true
  else
    failed=$((failed + 1))
    tail -n 40 "$corpus.log"
  fi
  rm -rf "$corpus" "$corpus.log"
fi

echo "suite: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
