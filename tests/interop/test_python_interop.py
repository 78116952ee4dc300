"""Python's Kafka/Avro ecosystem against a running sluice worker: deploy/examples/producer.py
(confluent-kafka + fastavro) sends requests with raw and Confluent framing, with the data as raw
bytes and as typed FP32 arrays; every request must be served, and every response must decode in
fastavro through deploy/examples/read_responses.py (and carry its request's key and headers)."""
import io
import json
import struct
import subprocess
import time
import uuid

import fastavro
from confluent_kafka import Consumer, TopicPartition

from conftest import EXAMPLES, PYTHON, SRC

N = 40   # requests per data kind and framing


def run_example(script, *args, timeout=180):
    r = subprocess.run([PYTHON, str(EXAMPLES / script), *args], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"{script} {' '.join(args)} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def produce(bootstrap, worker, data, n=N, tag=""):
    prefix = f"{worker.framing}-{data}{tag}"
    sent = run_example("producer.py", "-b", bootstrap, "-t", worker.topics["requests"], "-n", str(n),
                       "--framing", worker.framing, "--schema-id", "1", "--data", data,
                       "--id-prefix", prefix)
    assert sent == {**sent, "sent": n, "failed": 0}
    return {f"{prefix}-{i}" for i in range(n)}


def raw_messages(bootstrap, topic, expect, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex}",
                  "enable.auto.commit": False})
    md = c.list_topics(topic, timeout=10)
    c.assign([TopicPartition(topic, p, 0) for p in md.topics[topic].partitions])
    out = []
    end = time.time() + timeout
    while len(out) < expect and time.time() < end:
        m = c.poll(0.2)
        if m is not None and not m.error():
            out.append(m)
    c.close()
    return out


def test_requests_served_and_responses_decode(bootstrap, worker):
    """Raw bytes and typed arrays, in the worker's framing: all served, all decode."""
    ids = produce(bootstrap, worker, "bytes") | produce(bootstrap, worker, "array")
    summary = run_example("read_responses.py", "-b", bootstrap, "-t", worker.topics["responses"],
                          "--framing", worker.framing, "--schema-id", "2", "--expect", str(len(ids)),
                          "--timeout", "120", "--json", "--ids")
    assert summary["decode_failures"] == 0, summary
    assert summary["errors"] == {}, summary
    assert set(summary["ids"]) == ids, f"missing {sorted(ids - set(summary['ids']))[:10]}"
    assert summary["labelled"] == len(ids)
    dead = raw_messages(bootstrap, worker.topics["dead_letters"], expect=1, timeout=3)
    assert dead == [], f"{len(dead)} dead letters"


def test_response_framing_keys_and_headers(bootstrap, worker):
    """The wire bytes themselves: framing header, key = request id, traceparent copied."""
    ids = produce(bootstrap, worker, "array", n=5, tag="-wire")
    msgs = [m for m in raw_messages(bootstrap, worker.topics["responses"], expect=2 * N + 5)
            if m.key() and m.key().decode() in ids]
    assert len(msgs) == 5, f"{len(msgs)} responses for {sorted(ids)}"
    schema = fastavro.parse_schema(fastavro.schema.load_schema(str(SRC / "schemas" / "inference_response.avsc")))
    for m in msgs:
        v = m.value()
        if worker.framing == "confluent":
            assert v[0] == 0 and struct.unpack(">I", v[1:5])[0] == 2, v[:5]
            v = v[5:]
        r = fastavro.schemaless_reader(io.BytesIO(v), schema)
        assert r["id"] == m.key().decode()
        assert r["model_name"] == "fashion_cnn"
        assert len(r["result"]["classes"]) >= 1
        out = r["result"]["outputs"][0]
        assert out["datatype"] == "FP32" and out["shape"] == [1, 10]
        probs = struct.unpack("<10f", out["data"])
        assert abs(sum(probs) - 1.0) < 1e-3
        headers = dict(m.headers() or [])
        assert headers.get("traceparent", b"").startswith(b"00-"), headers
        assert headers.get("model-name") == b"fashion_cnn", headers
