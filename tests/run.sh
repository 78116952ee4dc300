#!/usr/bin/env bash
# The whole test suite: install what is missing, build with -Werror, run every
# ctest label (unit, conformance, integration against a real local Kafka
# broker that the tests start and stop), then unit + conformance again under
# AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

deploy/install-deps.sh

cmake -S . -B build -DSL_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j2
(cd build && ctest --output-on-failure --timeout 1500)

if [[ ${SLUICE_SKIP_ASAN:-0} != 1 ]]; then
  cmake -S . -B build-asan -DSL_WERROR=ON -DSL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  cmake --build build-asan -j2
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -L 'unit|conformance')
fi

# The request decoder's libFuzzer target, briefly (run it for longer by hand: tests/fuzz/README.md).
if [[ ${SLUICE_SKIP_FUZZ:-0} != 1 ]]; then
  CC=clang cmake -S . -B build-fuzz -DSL_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build build-fuzz -j2 --target fuzz_request
  corpus=$(mktemp -d)
  cp tests/fuzz/corpus/request/* "$corpus/"
  build-fuzz/tests/fuzz/fuzz_request "$corpus" -max_total_time="${SLUICE_FUZZ_SECONDS:-30}" \
    -print_final_stats=1 2>&1 | tail -n 4
  rm -rf "$corpus"
fi
