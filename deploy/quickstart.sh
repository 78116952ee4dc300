#!/usr/bin/env bash
# The quickstart: install, build, start a local Kafka broker, run a worker,
# stream the 10,000 Fashion-MNIST test images through it, print predictions,
# accuracy, rate and latency, then stop everything it started.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
N=${QUICKSTART_COUNT:-10000}
RATE=${QUICKSTART_RATE:-1000}         # messages per second; 0 = as fast as possible (a backlog: latency then measures queueing)
WARMUP=${QUICKSTART_WARMUP:-3000}     # requests sent first to warm a freshly started broker, not counted
run="$repo/run/quickstart"
mkdir -p "$run"

step() { printf '\n== %s\n' "$*"; }

step "installing dependencies (deploy/install-deps.sh)"
deploy/install-deps.sh

step "building (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$run/cmake.log"
cmake --build build -j2 >>"$run/cmake.log" || { tail -40 "$run/cmake.log"; exit 1; }
sluice="$repo/build/sluice"

worker_pid=
started_broker=
cleanup() {
  if [[ -n $worker_pid ]] && kill -0 "$worker_pid" 2>/dev/null; then
    kill -TERM "$worker_pid"; wait "$worker_pid" || true
  fi
  if [[ -n $started_broker ]]; then deploy/kafka-local.sh stop; fi
}
trap cleanup EXIT

step "starting a local Apache Kafka broker (KRaft, 127.0.0.1)"
if deploy/kafka-local.sh status >/dev/null 2>&1; then
  echo "broker already running"
else
  deploy/kafka-local.sh start
  started_broker=1
fi
bootstrap=$(deploy/kafka-local.sh bootstrap)
# Fresh topics for this run, so that a broker left running does not mix runs.
tag=qs-$(date +%s)
deploy/kafka-local.sh create-topics "$tag.requests:4" "$tag.responses:4" \
  "$tag.dead-letters:1" "$tag.metrics:1"
sed -e "s/\"sluice\.\(requests\|responses\|dead-letters\|metrics\)\"/\"$tag.\1\"/" \
    -e "s/127.0.0.1:39092/$bootstrap/" -e "s/group_id = \"sluice\"/group_id = \"$tag\"/" \
    deploy/sluice.cfg >"$run/sluice.cfg"

step "starting the worker (log: run/quickstart/worker.log)"
"$sluice" worker -c "$run/sluice.cfg" 2>"$run/worker.log" &
worker_pid=$!
for _ in $(seq 300); do
  grep -q "assigned" "$run/worker.log" && break
  kill -0 "$worker_pid" 2>/dev/null || { cat "$run/worker.log"; exit 1; }
  sleep 0.2
done
grep -E "OpenBLAS|loaded|assigned" "$run/worker.log" | sed 's/^/  /'

# A broker that has just started serves its first seconds of traffic slowly
# (the JVM still compiling its request paths): requests queue up for ~0.5-1.5 s
# while the worker's own consume-to-ack stays ~15 ms (README, "Results"). So a
# few seconds of traffic first, with ids that collect skips, and every one of
# them answered before the measured stream starts: the numbers below measure
# sluice and a warm broker. QUICKSTART_WARMUP=0 skips it.
if ((WARMUP > 0)); then
  step "warming up the broker: $WARMUP requests at $RATE msg/s (ids warmup-*, unlabelled, not counted)"
  "$sluice" produce -b "$bootstrap" -t "$tag.requests" -n "$WARMUP" --rate "$RATE" \
    --id-prefix warmup- --labels "" | sed 's/^/  /'
  "$sluice" collect -b "$bootstrap" -t "$tag.responses" --assign --id-prefix warmup- \
    --expect "$WARMUP" --show 0 | grep -E "^(responses|latency)" | sed 's/^/  warm-up /'
fi

step "producing $N Fashion-MNIST test images as InferenceRequests"
"$sluice" produce -b "$bootstrap" -t "$tag.requests" -n "$N" --rate "$RATE"

step "collecting the responses"
"$sluice" collect -b "$bootstrap" -t "$tag.responses" --expect "$N" --show 8 --id-prefix img-

step "stopping the worker (SIGTERM: drain, commit, last metrics record)"
kill -TERM "$worker_pid"; wait "$worker_pid"; worker_pid=
grep "METRICS" "$run/worker.log" | tail -1 | sed 's/^/  /'
