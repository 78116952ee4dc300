#!/usr/bin/env python3
"""Read sluice's InferenceResponses from Kafka and decode every one with fastavro.

    python deploy/examples/read_responses.py -b 127.0.0.1:39092 -t sluice.responses --expect 100
    python deploy/examples/read_responses.py ... --framing confluent --schema-id 2 --json

Reads the topic from the beginning with a throw-away consumer group (nothing is committed)
until --expect responses arrived (or --timeout), or, without --expect, until --idle seconds
pass with no message. Each response prints as
    <id>  <model>:<version>  <top class> (<probability>)  label=<label>
or, for an error response, `<id>  ERROR <code>: <message>`. --json prints one summary line
instead: counts, unique ids, errors by code, accuracy over labelled responses, decode failures.
Exit status 1 when a message does not decode or fewer than --expect responses came.
"""
import argparse
import io
import json
import os
import struct
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import fastavro
from confluent_kafka import Consumer, KafkaError, TopicPartition

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def load_schema(schema_dir, name):
    return fastavro.parse_schema(fastavro.schema.load_schema(str(Path(schema_dir) / f"{name}.avsc")))


def unframe(value, framing, schema_id):
    """The Avro record bytes of a message; checks the Confluent header when framing says so."""
    if framing == "confluent":
        if len(value) < 5 or value[0] != 0:
            raise ValueError("not Confluent framing (magic byte 0 expected)")
        (sid,) = struct.unpack(">I", value[1:5])
        if sid != schema_id:
            raise ValueError(f"schema id {sid}, expected {schema_id}")
        return value[5:]
    return value


def decode(schema, value, framing="raw", schema_id=2):
    payload = unframe(value, framing, schema_id)
    buf = io.BytesIO(payload)
    record = fastavro.schemaless_reader(buf, schema)
    if buf.tell() != len(payload):
        raise ValueError(f"{len(payload) - buf.tell()} trailing bytes after the record")
    return record


def read(bootstrap, topic, expect=None, idle=5.0, timeout=120.0):
    """All messages of the topic from offset 0 of every partition."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-responses-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    md = c.list_topics(topic, timeout=10)
    if md.topics[topic].error is not None:
        raise SystemExit(f"topic {topic}: {md.topics[topic].error}")
    c.assign([TopicPartition(topic, p, 0) for p in md.topics[topic].partitions])
    msgs, start = [], time.time()
    last = start
    try:
        while True:
            m = c.poll(0.2)
            now = time.time()
            if m is not None:
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        print(f"consumer error: {m.error()}", file=sys.stderr)
                    continue
                msgs.append(m)
                last = now
                continue
            if now - start > timeout:
                break
            if expect is not None and len(msgs) >= expect and now - last > 1.0:
                break
            if expect is None and now - last > idle:
                break
    finally:
        c.close()
    return msgs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-b", "--bootstrap", default=os.environ.get("BOOTSTRAP", "127.0.0.1:39092"))
    ap.add_argument("-t", "--topic", default="sluice.responses")
    ap.add_argument("--framing", choices=["raw", "confluent"], default="raw")
    ap.add_argument("--schema-id", type=int, default=2, help="Confluent schema id of InferenceResponse")
    ap.add_argument("--expect", type=int)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--idle", type=float, default=5.0)
    ap.add_argument("--schema-dir", default=str(SCHEMAS))
    ap.add_argument("--json", action="store_true", help="print one JSON summary line only")
    ap.add_argument("--ids", action="store_true", help="with --json: list the response ids")
    a = ap.parse_args(argv)

    schema = load_schema(a.schema_dir, "inference_response")
    msgs = read(a.bootstrap, a.topic, a.expect, a.idle, a.timeout)
    ids, errors, bad = Counter(), Counter(), []
    labelled = correct = 0
    for m in msgs:
        try:
            r = decode(schema, m.value(), a.framing, a.schema_id)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            bad.append(f"{m.topic()}[{m.partition()}]@{m.offset()}: {e}")
            continue
        ids[r["id"]] += 1
        res = r["result"]
        if "code" in res:                      # InferenceError branch
            errors[res["code"]] += 1
            line = f"{r['id']}  ERROR {res['code']}: {res['message']}"
        else:
            classes = res.get("classes") or []
            top = classes[0] if classes else None
            if r.get("label") is not None and top is not None:
                labelled += 1
                correct += int(top["index"] == r["label"])
            line = f"{r['id']}  {r['model_name']}:{r['model_version']}  " + (
                f"{top['label'] or top['index']} ({top['probability']:.3f})" if top else f"{len(res['outputs'])} outputs")
            if r.get("label") is not None:
                line += f"  label={r['label']}"
        if not a.json:
            print(line)
    summary = {"responses": len(msgs), "unique": len(ids), "duplicates": sum(ids.values()) - len(ids),
               "errors": dict(errors), "decode_failures": len(bad), "labelled": labelled}
    if labelled:
        summary["accuracy"] = round(correct / labelled, 4)
    if a.ids:
        summary["ids"] = sorted(ids)
    if a.json:
        print(json.dumps(summary))
    else:
        print(f"{len(msgs)} responses, {len(ids)} unique, {sum(errors.values())} errors, "
              f"{len(bad)} did not decode")
    for b in bad[:10]:
        print(f"decode failure: {b}", file=sys.stderr)
    short = a.expect is not None and len(ids) < a.expect
    return 1 if bad or short else 0


if __name__ == "__main__":
    sys.exit(main())
