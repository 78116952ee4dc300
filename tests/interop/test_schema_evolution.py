"""Schema evolution against a running worker (Confluent framing): fastavro writes requests with
the reader schema (id 1), an older writer schema (schemas/examples/inference_request_v0.avsc,
id 7), a newer compatible one (inference_request_v2.avsc, id 8) and an incompatible one
(inference_request_incompatible.avsc, id 9). The worker is configured with
codec.writer_schemas; it must serve ids 1, 7 and 8 (all responses decode in fastavro, v2's
label comes back) and turn every id-9 request into a dead letter with code SCHEMA that says
why, while the partition keeps moving."""
import io
import random
import struct
import time
import uuid

import fastavro
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import SRC, Worker

EXAMPLES = SRC / "schemas" / "examples"
N = 12   # requests per writer schema


def load(path):
    return fastavro.parse_schema(fastavro.schema.load_schema(str(path)))


@pytest.fixture(scope="module")
def evo_worker(bootstrap, tmp_path_factory):
    writers = ", ".join(f'"{i}={EXAMPLES / f}"' for i, f in [
        (7, "inference_request_v0.avsc"), (8, "inference_request_v2.avsc"),
        (9, "inference_request_incompatible.avsc")])
    w = Worker(bootstrap, "confluent", tmp_path_factory.mktemp("worker-evolution"),
               codec_extra=f"writer_schemas = [{writers}];")
    w.framing = "confluent"
    yield w
    rc = w.stop()
    assert rc == 0, f"worker exited {rc}:\n" + w.log_text()[-3000:]


def pixels(rng):
    return [round(rng.random(), 4) for _ in range(28 * 28)]


def request(kind, rid, i, rng):
    px = pixels(rng)
    if kind == "v1":
        return {"id": rid, "model_name": "fashion_cnn", "model_version": None,
                "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28],
                            "data": struct.pack("<784f", *px)}],
                "outputs": None, "parameters": {}, "label": i % 10}
    if kind == "v0":   # shape as int, typed array and bytes alternately; no label etc.
        data = {"fp32_contents": px} if i % 2 else struct.pack("<784f", *px)
        return {"id": rid, "model_name": "fashion_cnn",
                "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28],
                            "data": data}]}
    if kind == "v2":
        return {"id": rid, "model_name": "fashion_cnn", "model_version": None, "priority": 3,
                "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28],
                            "data": {"fp32_contents": px}}],
                "outputs": None, "parameters": {"via": "v2"}, "label": i % 10,
                "tenant": "acme"}
    return {"id": i, "model_name": "fashion_cnn",   # incompatible: id is an int
            "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28],
                        "data": struct.pack("<784f", *px)}]}


def consume(bootstrap, topic, expect, timeout=120):
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


def unframe(value, schema_id):
    assert value[0] == 0 and struct.unpack(">I", value[1:5])[0] == schema_id, value[:5]
    return io.BytesIO(value[5:])


def test_old_new_and_incompatible_writers(bootstrap, evo_worker):
    schemas = {"v1": (1, load(SRC / "schemas" / "inference_request.avsc")),
               "v0": (7, load(EXAMPLES / "inference_request_v0.avsc")),
               "v2": (8, load(EXAMPLES / "inference_request_v2.avsc")),
               "bad": (9, load(EXAMPLES / "inference_request_incompatible.avsc"))}
    rng = random.Random(7)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    sent = {}
    for i in range(N):
        for kind, (sid, schema) in schemas.items():   # interleaved on every partition
            rid = f"evo-{kind}-{i}"
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, schema, request(kind, rid, i, rng))
            value = b"\x00" + struct.pack(">I", sid) + buf.getvalue()
            p.produce(evo_worker.topics["requests"], key=rid.encode(), value=value)
            sent[rid] = kind
    assert p.flush(60) == 0

    rschema = load(SRC / "schemas" / "inference_response.avsc")
    served = [m for m in consume(bootstrap, evo_worker.topics["responses"], expect=3 * N)]
    got = {}
    for m in served:
        r = fastavro.schemaless_reader(unframe(m.value(), 2), rschema)
        assert r["id"] == m.key().decode()
        got[r["id"]] = r
    want = {rid for rid, kind in sent.items() if kind != "bad"}
    assert set(got) == want, f"missing {sorted(want - set(got))[:10]}, extra {sorted(set(got) - want)[:10]}"
    for rid, r in got.items():
        assert "code" not in r["result"], f"{rid}: {r['result']}"
        out = r["result"]["outputs"][0]
        assert out["shape"] == [1, 10]
        assert abs(sum(struct.unpack("<10f", out["data"])) - 1.0) < 1e-3
        # v0 has no label (the reader's default null applies); v1 and v2 carry theirs.
        if sent[rid] == "v0":
            assert r["label"] is None, rid
        else:
            assert r["label"] == int(rid.rsplit("-", 1)[1]) % 10, rid

    dschema = load(SRC / "schemas" / "dead_letter.avsc")
    dead = consume(bootstrap, evo_worker.topics["dead_letters"], expect=N, timeout=60)
    assert len(dead) == N, f"{len(dead)} dead letters, want {N}"
    keys = set()
    for m in dead:
        d = fastavro.schemaless_reader(unframe(m.value(), 3), dschema)
        assert d["error_code"] == "SCHEMA", d
        assert "inference_request_incompatible.avsc" in d["error_message"], d["error_message"]
        assert "id: writer type int cannot be read as string" in d["error_message"], d["error_message"]
        assert d["value"][5:9] != b"" and struct.unpack(">I", d["value"][1:5])[0] == 9
        keys.add(d["key"].decode())
    assert keys == {rid for rid, kind in sent.items() if kind == "bad"}
    log = evo_worker.log_text()
    assert "inference_request_incompatible.avsc cannot be resolved" in log
