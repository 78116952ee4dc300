"""The main job against a real broker: 10,000 Fashion-MNIST test images in, 10,000 responses
out, predictions equal to `sluice predict`, the metrics' accuracy equal to the responses', and
bad input turned into dead letters (and error responses) while serving continues."""
import csv
import io
import json
import subprocess

import fastavro

from conftest import BIN, SRC, make_topics, producer, read_all, schema

N = 10000


def decode(sch, value):
    return fastavro.schemaless_reader(io.BytesIO(value), sch)


def encode(sch, record):
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, sch, record)
    return buf.getvalue()


def good_request(rid, label=3):
    # An all-zero image is a valid input; raw little-endian FP32 bytes (fast path).
    return {"id": rid, "model_name": "fashion_cnn", "model_version": None,
            "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28],
                        "data": bytes(4 * 784)}],
            "outputs": None, "parameters": {}, "label": label}


def test_fashion_mnist_end_to_end(bootstrap, topics, worker, tmp_path):
    subprocess.run([BIN, "produce", "-b", bootstrap, "-t", topics["requests"], "-n", str(N),
                    "--schema-dir", str(SRC / "schemas")], check=True, cwd=SRC)
    out = tmp_path / "responses.csv"
    r = subprocess.run([BIN, "collect", "-b", bootstrap, "-t", topics["responses"],
                        "--expect", str(N), "--timeout-ms", "120000", "--json",
                        "--out", str(out), "--schema-dir", str(SRC / "schemas")],
                       check=True, cwd=SRC, capture_output=True, text=True)
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["unique"] == N, summary
    assert summary["errors"] == 0, summary

    pred = tmp_path / "predict.csv"
    subprocess.run([BIN, "predict", "--models", str(SRC / "models"), "-n", str(N),
                    "--out", str(pred)], check=True, cwd=SRC, capture_output=True)
    served = {row[0]: int(row[1]) for row in csv.reader(open(out)) if row and row[0] != "id"}
    offline = {row[0]: int(row[1]) for row in csv.reader(open(pred)) if row and row[0] != "id"}
    assert len(served) == N and len(offline) == N
    mismatches = [k for k in offline if served.get(k) != offline[k]]
    assert not mismatches, f"{len(mismatches)} predictions differ, e.g. {mismatches[:5]}"
    # Every response decodes with fastavro (another Avro implementation) and is keyed by id.
    sch = schema("inference_response")
    msgs = read_all(bootstrap, topics["responses"], expect=N)
    for m in msgs[:200]:
        resp = decode(sch, m.value())
        assert m.key().decode() == resp["id"]
        assert resp["result"]["classes"][0]["label"]
        headers = dict(m.headers() or [])
        assert headers["model-name"] == b"fashion_cnn"
    assert summary["accuracy"] > 0.85, summary

    # --id-prefix counts only the ids it names (the quickstart skips its warm-up this way):
    # img-1, img-10..19, img-100..199, img-1000..1999 are 1,111 of the 10,000.
    r = subprocess.run([BIN, "collect", "-b", bootstrap, "-t", topics["responses"],
                        "--id-prefix", "img-1", "--assign", "--timeout-ms", "5000", "--json",
                        "--schema-dir", str(SRC / "schemas")],
                       check=True, cwd=SRC, capture_output=True, text=True)
    part = json.loads(r.stdout.strip().splitlines()[-1])
    assert part["unique"] == 1111 and part["responses"] == 1111, part
    assert part["skipped"] == N - 1111, part
    assert part["labelled"] == 1111, part


def test_bad_input_becomes_dead_letters(bootstrap, topics, worker):
    req_schema = schema("inference_request")
    valid = encode(req_schema, good_request("trunc-1"))
    wrong_shape = good_request("shape-1")
    wrong_shape["inputs"][0]["shape"] = [1, 28, 28]
    unknown = good_request("unknown-1")
    unknown["model_name"] = "no_such_model"
    wrong_type = good_request("dtype-1")
    wrong_type["inputs"][0]["datatype"] = "INT32"
    bad = [
        ("garbage", b"\xff\xfe this is not avro \x00\x01", "DECODE", None),
        ("empty", b"", "FRAMING", None),
        ("truncated", valid[: len(valid) // 2], "DECODE", "trunc-1"),
        ("shape", encode(req_schema, wrong_shape), "SHAPE", "shape-1"),
        ("unknown", encode(req_schema, unknown), "UNKNOWN_MODEL", "unknown-1"),
        ("dtype", encode(req_schema, wrong_type), "DATATYPE", "dtype-1"),
    ]
    p = producer(bootstrap)
    # All on one partition, each followed by a good request: the partition must keep moving.
    for i, (name, value, _, _) in enumerate(bad):
        p.produce(topics["requests"], key=f"bad-{name}", value=value, partition=0,
                  headers=[("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])
        p.produce(topics["requests"], key=f"good-{i}", partition=0,
                  value=encode(req_schema, good_request(f"good-{i}")))
    assert p.flush(30) == 0

    dl_schema = schema("dead_letter")
    dls = [decode(dl_schema, m.value()) for m in read_all(bootstrap, topics["dead_letters"],
                                                         expect=len(bad))]
    by_key = {d["key"].decode(): d for d in dls}
    assert len(dls) == len(bad), [(d["key"], d["error_code"]) for d in dls]
    for name, value, code, rid in bad:
        d = by_key[f"bad-{name}"]
        assert d["error_code"] == code, (name, d["error_code"], d["error_message"])
        assert d["value"] == value, name
        assert d["topic"] == topics["requests"] and d["partition"] == 0
        assert d["request_id"] == rid, name
        assert d["error_message"]
        assert dict((h["key"], h["value"]) for h in d["headers"])["traceparent"].startswith(b"00-")

    resp_schema = schema("inference_response")
    resps = {}
    for m in read_all(bootstrap, topics["responses"], expect=N + len(bad) * 2 - 2):
        r = decode(resp_schema, m.value())
        resps[r["id"]] = r
    for i in range(len(bad)):
        assert "classes" in resps[f"good-{i}"]["result"], resps[f"good-{i}"]
    for name, _, code, rid in bad:
        if rid is None:
            continue
        assert resps[rid]["result"]["code"] == code, (name, resps[rid])


def test_sigterm_drains_and_metrics_match_responses(bootstrap, topics, worker):
    assert worker.stop() == 0, worker.log_text()[-3000:]
    resp_schema = schema("inference_response")
    labelled = correct = 0
    seen = set()
    for m in read_all(bootstrap, topics["responses"]):
        r = decode(resp_schema, m.value())
        if r["id"] in seen:
            continue
        seen.add(r["id"])
        if r["label"] is not None and "classes" in r["result"] and r["result"]["classes"]:
            labelled += 1
            correct += r["result"]["classes"][0]["index"] == r["label"]
    met_schema = schema("worker_metrics")
    records = [decode(met_schema, m.value()) for m in read_all(bootstrap, topics["metrics"])]
    assert records, "no WorkerMetrics record"
    last = [r for r in records if r["worker_id"] == "it-worker"][-1]
    model = [x for x in last["models"] if x["model_name"] == "fashion_cnn"][0]
    assert model["labelled_total"] == labelled
    assert model["correct_total"] == correct
    assert abs(model["accuracy_total"] - correct / labelled) < 1e-12
    assert last["dead_letters_total"] == 6
    assert last["dead_letters_by_code"] == {"DECODE": 2, "FRAMING": 1, "SHAPE": 1,
                                            "UNKNOWN_MODEL": 1, "DATATYPE": 1}
    assert last["commits_total"] > 0 and last["rebalances_total"] >= 1  # the assignment
    assert last["transactions_aborted_total"] == 0
    assert model["responses_total"] >= N


def test_collect_exit_status(bootstrap):
    """An empty topic is an answer (exit 0); a topic that does not exist is not (exit 1, said)."""
    empty = make_topics()["responses"]
    for topic, rc, said in [(empty, 0, ""), (empty + ".missing", 1, "read nothing: topic")]:
        for mode in ([], ["--assign"]):
            r = subprocess.run([BIN, "collect", "-b", bootstrap, "-t", topic, "--timeout-ms", "2000",
                                "--schema-dir", str(SRC / "schemas")] + mode,
                               cwd=SRC, capture_output=True, text=True)
            assert r.returncode == rc, (topic, mode, r.stdout, r.stderr)
            if rc and not mode:
                assert said in r.stderr, r.stderr
