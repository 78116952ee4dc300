#!/usr/bin/env bash
# End-to-end check of deploy/kafka-local.sh: start a broker on its own ports and
# run dir, create topics (twice: idempotent), list them, produce and consume one
# message with the venv's confluent-kafka, run a Kafka tool class, stop.
# Needs deploy/install-deps.sh to have run. Prints "N passed, N failed".
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
kl="$repo/deploy/kafka-local.sh"
py=${SLUICE_PYTHON:-$repo/.venv/bin/python}

export KAFKA_PORT=${KAFKA_PORT:-39192}
export KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-39193}
export SLUICE_RUN_DIR=${SLUICE_RUN_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/sluice-kafka-test.XXXXXX")}

passed=0 failed=0
check() {
  local name=$1; shift
  if "$@"; then
    echo "ok   $name"; passed=$((passed + 1))
  else
    echo "FAIL $name"; failed=$((failed + 1))
  fi
}
cleanup() { "$kl" stop >/dev/null 2>&1 || true; rm -rf "$SLUICE_RUN_DIR"; }
trap cleanup EXIT

# The cluster id start formats storage with: a Kafka Uuid (22 URL-safe base64
# characters) never starting with '-', which kafka-storage's parser takes for an
# option (1 draw in 64 did before; 300 draws hit that 99 times in 100).
uuids_ok() {
  local i id
  for ((i = 0; i < 300; i++)); do
    id=$("$kl" random-uuid) || return 1
    [[ $id =~ ^[A-Za-z0-9_][A-Za-z0-9_-]{21}$ ]] || { echo "bad cluster id: $id" >&2; return 1; }
  done
}
check "random-uuid never starts with '-'" uuids_ok
check "start" "$kl" start
check "start again says already running" bash -c '"$0" start | grep -q "already running"' "$kl"
check "status" "$kl" status
check "create topics" "$kl" create-topics sluice.requests:4 sluice.responses:4
check "create topics again (idempotent)" "$kl" create-topics sluice.requests:4 sluice.responses:4
check "list topics" bash -c 'out=$("$0" list-topics) && grep -qx sluice.requests <<<"$out" && grep -qx sluice.responses <<<"$out"' "$kl"

roundtrip() {
  "$py" - "$("$kl" bootstrap)" <<'PY'
import sys, time, uuid
from confluent_kafka import Producer, Consumer
from confluent_kafka.admin import AdminClient
bs = sys.argv[1]
parts = AdminClient({"bootstrap.servers": bs}).list_topics(timeout=10).topics["sluice.requests"].partitions
assert len(parts) == 4, len(parts)
key, val = uuid.uuid4().hex.encode(), b"hello sluice"
p = Producer({"bootstrap.servers": bs, "acks": "all"})
acks = []
p.produce("sluice.requests", key=key, value=val, headers=[("traceparent", b"00-test")],
          on_delivery=lambda err, msg: acks.append(err))
p.flush(15)
assert acks == [None], acks
c = Consumer({"bootstrap.servers": bs, "group.id": "test-" + key.decode(),
              "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe(["sluice.requests"])
deadline = time.time() + 30
try:
    while time.time() < deadline:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        if m.key() == key:
            assert m.value() == val and dict(m.headers())["traceparent"] == b"00-test"
            c.commit(m, asynchronous=False)
            sys.exit(0)
    sys.exit("not consumed within 30 s")
finally:
    c.close()
PY
}
check "produce and consume one message" roundtrip
check "run-class ConsumerGroupCommand --list" bash -c '"$0" run-class org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server "$("$0" bootstrap)" --list | grep -q "^test-"' "$kl"
check "stop" "$kl" stop
check "status after stop is 'not running'" bash -c '! "$0" status >/dev/null' "$kl"
check "data removed" test ! -d "$SLUICE_RUN_DIR/data"

echo "$passed passed, $failed failed"
((failed == 0))
