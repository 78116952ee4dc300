"""Every class of bad input becomes exactly one dead letter (with the original key, value and
headers, source topic/partition/offset and the error class) and, when the request id is known,
an error response; good requests interleaved with them are all answered, in order."""
import io
import struct

import fastavro
import pytest

from conftest import make_topics, producer, read_all, schema, start_worker, worker_config

REQ = schema("inference_request")


def encode(record):
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, REQ, record)
    return buf.getvalue()


def zigzag(n):
    """Avro long: zig-zag then base-128 varint."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def avro_str(s):
    return zigzag(len(s.encode())) + s.encode()


def request(rid, **kw):
    r = {"id": rid, "model_name": "fashion_cnn", "model_version": None,
         "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28],
                     "data": bytes(4 * 784)}],
         "outputs": None, "parameters": {}, "label": 0}
    r.update(kw)
    return r


def tensor(**kw):
    t = {"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28], "data": bytes(4 * 784)}
    t.update(kw)
    return t


VALID = encode(request("x"))

# (name, value, error code, request id known)
CASES = [
    ("empty value", b"", "FRAMING", None),
    ("not avro", b"\x93\x00\x01\x02\xff\xfe\xfd plain text {json: true}", "DECODE", None),
    ("negative string length", zigzag(-5) + b"abcdef", "DECODE", None),
    ("huge string length", zigzag(1 << 40) + b"abc", "DECODE", None),
    ("huge block count", avro_str("blk-1") + avro_str("fashion_cnn") + b"\x00" + zigzag(1 << 40),
     "DECODE", "blk-1"),
    ("invalid union index", avro_str("union-1") + avro_str("fashion_cnn") + zigzag(7),
     "DECODE", "union-1"),
    ("truncated record", encode(request("trunc-1"))[:40], "DECODE", "trunc-1"),
    ("trailing bytes", encode(request("trail-1")) + b"\x00\x00\x07", "DECODE", "trail-1"),
    ("byte length vs shape", encode(request("len-1", inputs=[tensor(data=bytes(100))])),
     "BAD_REQUEST", "len-1"),
    ("unknown datatype", encode(request("dt-1", inputs=[tensor(datatype="FP8")])),
     "BAD_REQUEST", "dt-1"),
    ("negative dimension", encode(request("neg-1", inputs=[tensor(shape=[1, 1, -28, 28])])),
     "BAD_REQUEST", "neg-1"),
    ("unknown model", encode(request("model-1", model_name="no_such_model")),
     "UNKNOWN_MODEL", "model-1"),
    ("unknown version", encode(request("ver-1", model_version="7")), "UNKNOWN_MODEL", "ver-1"),
    ("wrong input name", encode(request("name-1", inputs=[tensor(name="pixels")])),
     "BAD_REQUEST", "name-1"),
    ("wrong shape", encode(request("shape-1", inputs=[tensor(shape=[1, 28, 28],
                                                                data=bytes(4 * 784))])),
     "SHAPE", "shape-1"),
    ("wrong datatype", encode(request("type-1", inputs=[tensor(datatype="FP64",
                                                                 data=bytes(8 * 784))])),
     "DATATYPE", "type-1"),
    ("NaN input", encode(request("nan-1", inputs=[tensor(
        data=bytes(4 * 100) + struct.pack("<f", float("nan")) + bytes(4 * 683))])),
     "BAD_REQUEST", "nan-1"),
    ("infinite input", encode(request("inf-1", inputs=[tensor(
        data=struct.pack("<f", float("inf")) + bytes(4 * 783))])), "BAD_REQUEST", "inf-1"),
    ("empty id", encode(request("")), "BAD_REQUEST", ""),
    ("oversized batch", encode(request("big-1", inputs=[tensor(shape=[65, 1, 28, 28],
                                                                 data=bytes(65 * 4 * 784))])),
     "SHAPE", "big-1"),
]


def run_table(bootstrap, tmp_path, cases, framing_prefix=b"", codec=""):
    t = make_topics(requests_partitions=1)
    w = start_worker(worker_config(tmp_path / "w.cfg", bootstrap, t, codec=codec),
                     tmp_path / "w.log")
    p = producer(bootstrap)
    hdrs = [("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ("x-tenant", b"acme")]
    for i, (name, value, _, _) in enumerate(cases):
        p.produce(t["requests"], key=f"bad-{i}", value=value, headers=hdrs)
        p.produce(t["requests"], key="good", headers=hdrs,
                  value=framing_prefix + encode(request(f"good-{i:03d}")))
    assert p.flush(30) == 0
    n_bad = len(cases)
    n_err = sum(1 for c in cases if c[3])
    skip = len(framing_prefix)  # outputs carry the same framing as inputs
    dls = [(m, fastavro.schemaless_reader(io.BytesIO(m.value()[skip:]), schema("dead_letter")))
           for m in read_all(bootstrap, t["dead_letters"], expect=n_bad)]
    resps = read_all(bootstrap, t["responses"], expect=n_bad + n_err)
    assert w.stop() == 0, w.log_text()[-3000:]
    assert w.proc.returncode == 0

    assert len(dls) == n_bad, [(d["error_code"], d["error_message"]) for _, d in dls]
    by_key = {d["key"].decode(): d for _, d in dls}
    offsets = set()
    for i, (name, value, code, rid) in enumerate(cases):
        d = by_key[f"bad-{i}"]
        assert d["error_code"] == code, (name, d["error_code"], d["error_message"])
        assert d["value"] == value, name
        assert d["topic"] == t["requests"] and d["partition"] == 0, name
        assert d["request_id"] == rid, (name, d["request_id"])
        assert d["error_message"], name
        assert d["worker_id"] == "it-worker"
        assert [(h["key"], h["value"]) for h in d["headers"]] == hdrs, name
        offsets.add(d["offset"])
    assert offsets == {2 * i for i in range(n_bad)}  # bad ones were at even offsets

    rs = schema("inference_response")
    decoded = [(m, fastavro.schemaless_reader(io.BytesIO(m.value()[skip:]), rs)) for m in resps]
    good = [r["id"] for m, r in decoded if m.key() == b"good"]
    for m, r in decoded:
        h = dict(m.headers() or [])
        # worker.pass_headers (default: W3C trace context) is copied; other headers are not.
        assert h["traceparent"] == hdrs[0][1] and "x-tenant" not in h, h
        assert h["model-name"] == (b"fashion_cnn" if m.key() == b"good" else h["model-name"])
    assert good == [f"good-{i:03d}" for i in range(n_bad)], good  # all answered, in order
    errors = {r["id"]: r["result"] for _, r in decoded if "code" in r["result"]}
    for name, _, code, rid in cases:
        if rid:
            assert errors[rid]["code"] == code, (name, errors[rid])
            assert errors[rid]["message"]
    print(f"{n_bad} bad messages -> {len(dls)} dead letters, {len(errors)} error responses; "
          f"{len(good)} good answered in order")


def test_poison_messages_raw_framing(bootstrap, tmp_path):
    run_table(bootstrap, tmp_path, CASES)


def test_poison_messages_confluent_framing(bootstrap, tmp_path):
    framed = b"\x00" + struct.pack(">I", 1)
    cases = [
        ("wrong magic byte", b"\x01" + struct.pack(">I", 1) + VALID, "FRAMING", None),
        ("unknown schema id", b"\x00" + struct.pack(">I", 99) + VALID, "FRAMING", None),
        ("short header", b"\x00\x00\x01", "FRAMING", None),
        ("raw record without framing", VALID, "FRAMING", None),
        ("framed garbage", framed + b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "DECODE",
         None),
        ("framed unknown model", framed + encode(request("cm-1", model_name="nope")),
         "UNKNOWN_MODEL", "cm-1"),
    ]
    run_table(bootstrap, tmp_path, cases, framing_prefix=framed, codec='framing = "confluent";')


def test_outputs_larger_than_message_max_bytes(bootstrap, tmp_path):
    """A requests topic that takes larger records than the outputs may hold: a dead letter or a
    response over the producer's message.max.bytes (1,000,000) is sent smaller, never blocks the
    partition. Found by a tester: the worker stopped on each restart at the same message."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    t = make_topics(requests_partitions=1)
    t["requests"] += "-big"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(t["requests"], 1, 1,
                                           config={"max.message.bytes": "10485760"})]).values():
        f.result(30)
    w = start_worker(worker_config(tmp_path / "w.cfg", bootstrap, t), tmp_path / "w.log")
    p = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 10000000})
    rows = 1000  # 3.1 MB of pixels: a SHAPE error (batch bound) whose dead letter cannot hold it
    big_bad = encode(request("bigbad-1", inputs=[tensor(shape=[rows, 1, 28, 28],
                                                         data=bytes(rows * 4 * 784))]))
    huge_id = "L" * 1_500_000  # served, but neither its response nor an error response fits
    cases = [("bigbad", big_bad), ("hugeid", encode(request(huge_id)))]
    for i, (key, value) in enumerate(cases):
        p.produce(t["requests"], key=key, value=value, headers=[("h", b"v")])
        p.produce(t["requests"], key="good", value=encode(request(f"good-{i}")))
    assert p.flush(30) == 0
    dls = [fastavro.schemaless_reader(io.BytesIO(m.value()), schema("dead_letter"))
           for m in read_all(bootstrap, t["dead_letters"], expect=2)]
    resps = [fastavro.schemaless_reader(io.BytesIO(m.value()), schema("inference_response"))
             for m in read_all(bootstrap, t["responses"], expect=3)]
    assert w.stop() == 0, w.log_text()[-3000:]

    assert len(dls) == 2, [(d["error_code"], d["error_message"][:200]) for d in dls]
    bigbad, hugeid = dls
    assert bigbad["error_code"] == "SHAPE" and bigbad["request_id"] == "bigbad-1"
    assert bigbad["value"] is None and bigbad["headers"] == [], bigbad["error_message"]
    assert "original value (%d bytes)" % len(big_bad) in bigbad["error_message"]
    assert bigbad["offset"] == 0 and bigbad["key"] == b"bigbad"
    assert hugeid["error_code"] == "BAD_REQUEST" and hugeid["offset"] == 2
    assert "larger than the producer's message.max.bytes" in hugeid["error_message"]
    assert hugeid["request_id"] is None and hugeid["value"] is None  # bare: the id alone is 1.5 MB
    # Responses are keyed like their requests, so "bigbad" and "good" may land on different
    # partitions of the responses topic: order holds per key, not across them.
    ids = [r["id"] for r in resps]
    assert sorted(ids) == ["bigbad-1", "good-0", "good-1"], [i[:20] for i in ids]  # none lost
    assert [i for i in ids if i.startswith("good")] == ["good-0", "good-1"]  # in order
    assert {r["id"]: r["result"] for r in resps}["bigbad-1"]["code"] == "SHAPE"
