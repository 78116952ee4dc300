#!/usr/bin/env bash
# The delivery proofs at the issue's full counts (CI runs them smaller): 100,000 requests with
# kill -9 at 5 random points, at-least-once (every id answered; duplicates printed) and
# exactly-once (every id exactly once under read_committed). Needs a build in build/.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SLUICE_BIN=${SLUICE_BIN:-$repo/build/sluice} SLUICE_SOURCE_DIR=$repo
export SLUICE_DELIVERY_SCALE=${SLUICE_DELIVERY_SCALE:-5} SLUICE_DELIVERY_KILLS=${SLUICE_DELIVERY_KILLS:-5}
# SCALE 5: 100,000 at-least-once requests, 75,000 exactly-once.
exec "$repo/.venv/bin/python" -m pytest -s -q -p no:cacheprovider \
  "$repo/tests/integration/test_delivery.py" -k "kill9"
