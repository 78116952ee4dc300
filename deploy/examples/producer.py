#!/usr/bin/env python3
"""Send InferenceRequests to sluice from Python with confluent-kafka and fastavro.

    python deploy/examples/producer.py -b 127.0.0.1:39092 -t sluice.requests -n 100
    python deploy/examples/producer.py ... --data array                 # typed FP32 array tensors
    python deploy/examples/producer.py ... --framing confluent --schema-id 1

Each request carries one 1x1x28x28 FP32 image for the `fashion_cnn` model (synthetic pixels,
seeded, so runs repeat) and a ground-truth `label` for the worker's online accuracy.

--data bytes  `data` is the raw little-endian bytes branch (the fast path)
--data array  `data` is the `Fp32Contents` record: {"fp32_contents": [floats]}
--framing raw        the Avro binary record alone (the worker's codec.framing = "raw")
--framing confluent  magic byte 0 + 4-byte big-endian schema id + record (codec.framing =
                     "confluent", the id is the worker's codec.request_schema_id, default 1)

The Kafka key is the request id (the response carries the same key); a W3C `traceparent`
header is set, which the worker copies onto the response. Prints a JSON summary line.
"""
import argparse
import io
import json
import os
import random
import struct
import sys
import time
from pathlib import Path

import fastavro
from confluent_kafka import Producer

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def load_schema(schema_dir, name):
    return fastavro.parse_schema(fastavro.schema.load_schema(str(Path(schema_dir) / f"{name}.avsc")))


def frame(payload, framing, schema_id):
    """Wire framing: raw = the record alone; confluent = 0x00 + schema id (big-endian) + record."""
    if framing == "confluent":
        return b"\x00" + struct.pack(">I", schema_id) + payload
    return payload


def make_request(rid, pixels, data_kind, label, model="fashion_cnn", version=None):
    if data_kind == "bytes":
        data = struct.pack(f"<{len(pixels)}f", *pixels)     # raw little-endian FP32
    else:
        data = {"fp32_contents": pixels}                     # Fp32Contents branch of the union
    return {
        "id": rid,
        "model_name": model,
        "model_version": version,
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28], "data": data}],
        "outputs": None,
        "parameters": {"source": "deploy/examples/producer.py"},
        "label": label,
    }


def encode(schema, record):
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-b", "--bootstrap", default=os.environ.get("BOOTSTRAP", "127.0.0.1:39092"))
    ap.add_argument("-t", "--topic", default="sluice.requests")
    ap.add_argument("-n", "--count", type=int, default=100)
    ap.add_argument("--framing", choices=["raw", "confluent"], default="raw")
    ap.add_argument("--schema-id", type=int, default=1, help="Confluent schema id of InferenceRequest")
    ap.add_argument("--data", choices=["bytes", "array"], default="bytes")
    ap.add_argument("--model", default="fashion_cnn")
    ap.add_argument("--id-prefix", default="py")
    ap.add_argument("--schema-dir", default=str(SCHEMAS))
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)

    schema = load_schema(a.schema_dir, "inference_request")
    rng = random.Random(a.seed)
    producer = Producer({"bootstrap.servers": a.bootstrap, "linger.ms": 5,
                         "enable.idempotence": True, "acks": "all"})
    failures = []

    def on_delivery(err, msg):
        if err is not None:
            failures.append(str(err))

    start = time.time()
    for i in range(a.count):
        rid = f"{a.id_prefix}-{i}"
        pixels = [round(rng.random(), 4) for _ in range(28 * 28)]
        record = make_request(rid, pixels, a.data, label=i % 10, model=a.model)
        value = frame(encode(schema, record), a.framing, a.schema_id)
        trace = f"00-{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}-01"
        while True:
            try:
                producer.produce(a.topic, key=rid.encode(), value=value,
                                 headers=[("traceparent", trace.encode())], on_delivery=on_delivery)
                break
            except BufferError:          # local queue full: wait for deliveries, then retry
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(60)
    took = time.time() - start
    summary = {"sent": a.count - len(failures) - left, "failed": len(failures) + left,
               "framing": a.framing, "data": a.data, "seconds": round(took, 3)}
    print(json.dumps(summary))
    if failures:
        print("delivery errors: " + "; ".join(failures[:5]), file=sys.stderr)
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
