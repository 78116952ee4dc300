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
