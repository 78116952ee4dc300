"""Model repository against the real broker: several models and versions served at once, each
request answered by the version it asked for; live reload while streaming (a new version takes
over with nothing lost or failed, a broken one is reported and ignored, the old one is freed)."""
import io
import json
import shutil
import signal
import subprocess
import time

import fastavro

from conftest import BIN, SRC, make_topics, producer, read_all, schema, start_worker, worker_config


def repo_copy(tmp_path, versions=("1",), name="fashion_cnn", config=None):
    root = tmp_path / "models"
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    shutil.copy(SRC / "models" / "fashion_cnn" / "labels.txt", d / "labels.txt")
    (d / "config.cfg").write_text(config or 'max_batch_size = 64;\ntop_k = 3;\n')
    for v in versions:
        (d / v).mkdir(exist_ok=True)
        shutil.copy(SRC / "models" / "fashion_cnn" / "1" / "model.onnx", d / v / "model.onnx")
    return root


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def request(rid, model="fashion_cnn", version=None):
    b = io.BytesIO()
    fastavro.schemaless_writer(b, schema("inference_request"), {
        "id": rid, "model_name": model, "model_version": version, "outputs": None,
        "parameters": {}, "label": 0,
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28],
                    "data": bytes(4 * 784)}]})
    return b.getvalue()


def test_two_models_two_versions(bootstrap, tmp_path):
    root = repo_copy(tmp_path, ("1", "2"), config='version_policy = "all";\n')
    repo_copy(tmp_path, ("3",), name="fashion_b")
    t = make_topics()
    cfg = worker_config(tmp_path / "w.cfg", bootstrap, t)
    # The requests topic names a default model for requests that carry none.
    cfg.write_text(cfg.read_text()
                   .replace(f'models_dir = "{SRC / "models"}"', f'models_dir = "{root}"')
                   .replace("topics: {", f'topics: {{\n  default_models = ["{t["requests"]}=fashion_b"];'))
    w = start_worker(cfg, tmp_path / "w.log")
    asks = [("fashion_cnn", "1"), ("fashion_cnn", "2"), ("fashion_cnn", None),
            ("fashion_b", None), ("fashion_b", "3"), ("", None)]
    p = producer(bootstrap)
    for i in range(200):
        m, v = asks[i % len(asks)]
        p.produce(t["requests"], key=f"r{i}", value=request(f"r{i}", m, v))
    assert p.flush(30) == 0
    rs = schema("inference_response")
    got = {}
    for msg in read_all(bootstrap, t["responses"], expect=200):
        r = fastavro.schemaless_reader(io.BytesIO(msg.value()), rs)
        got[r["id"]] = (r["model_name"], r["model_version"], "classes" in r["result"])
    w.stop()
    assert len(got) == 200
    for i in range(200):
        m, v = asks[i % len(asks)]
        m = m or "fashion_b"  # topics.default_models
        want_v = v or {"fashion_cnn": "2", "fashion_b": "3"}[m]  # default: the latest
        assert got[f"r{i}"] == (m, want_v, True), (i, got[f"r{i}"])


def test_live_reload_while_streaming(bootstrap, tmp_path):
    n = 50000
    root = repo_copy(tmp_path, ("1",))
    t = make_topics()
    cfg = worker_config(tmp_path / "w.cfg", bootstrap, t)
    cfg.write_text(cfg.read_text()
                   .replace(f'models_dir = "{SRC / "models"}"', f'models_dir = "{root}"')
                   .replace("metrics_interval_ms = 2000;",
                            "metrics_interval_ms = 2000; reload_interval_ms = 500;"))
    w = start_worker(cfg, tmp_path / "w.log")
    p = subprocess.Popen([BIN, "produce", "-b", bootstrap, "-t", t["requests"], "-n", str(n),
                          "--rate", "5000", "--schema-dir", str(SRC / "schemas")], cwd=SRC,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(2.5)
    rss_before = rss_kb(w.proc.pid)
    # A broken version 3 and a good version 2 appear (3 first: the newest is the broken one).
    d = root / "fashion_cnn"
    (d / "3").mkdir()
    (d / "3" / "model.onnx").write_bytes(b"\x08\x07 this is not a protobuf model")
    (d / "2").mkdir()
    shutil.copy(d / "1" / "model.onnx", d / "2" / "model.onnx.tmp")
    (d / "2" / "model.onnx.tmp").rename(d / "2" / "model.onnx")  # appears whole
    w.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 20
    while "loaded fashion_cnn version 2" not in w.log_text():
        assert time.time() < deadline, w.log_text()[-3000:]
        time.sleep(0.2)
    time.sleep(1.0)
    rss_after = rss_kb(w.proc.pid)
    assert p.wait(60) == 0, p.stdout.read()
    r = subprocess.run([BIN, "collect", "-b", bootstrap, "-t", t["responses"], "--expect",
                        str(n), "--timeout-ms", "120000", "--json", "--out",
                        str(tmp_path / "resp.csv"), "--schema-dir", str(SRC / "schemas")],
                       cwd=SRC, capture_output=True, text=True)
    assert w.stop() == 0
    log = w.log_text()
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["unique"] == n and s["errors"] == 0, s
    versions = [m for m in read_all(bootstrap, t["responses"], expect=n)]
    served = {}
    for m in versions:
        h = dict(m.headers() or [])
        served[h["model-version"]] = served.get(h["model-version"], 0) + 1
    print(f"live reload: {n} answered, 0 errors, by version {served}; broken version reported: "
          f"{'version 3 failed to load' in log}; RSS before {rss_before} kB, after swap "
          f"{rss_after} kB")
    assert served.get(b"1", 0) > 0 and served.get(b"2", 0) > 0, served
    assert b"3" not in served
    assert "fashion_cnn version 3 failed to load (the serving version stays)" in log
    assert "unloading fashion_cnn version 1" in log
    # The old version is freed: memory back near its level (the model file is 1.7 MB).
    assert rss_after < rss_before + 8 * 1024, (rss_before, rss_after)


def test_canary_and_shadow(bootstrap, tmp_path):
    """A canary at 10% receives 10% +- 1% of 50,000 requests; a shadow version runs a copy of
    every request, is counted in its own metrics, and never answers."""
    n = 50000
    root = repo_copy(tmp_path, ("1", "2", "3"), config=(
        'version_policy = "all";\ncanary_version = 2;\ncanary_fraction = 0.1;\n'
        'shadow_version = 3;\n'))
    t = make_topics()
    cfg = worker_config(tmp_path / "w.cfg", bootstrap, t)
    cfg.write_text(cfg.read_text().replace(f'models_dir = "{SRC / "models"}"',
                                           f'models_dir = "{root}"'))
    w = start_worker(cfg, tmp_path / "w.log")
    subprocess.run([BIN, "produce", "-b", bootstrap, "-t", t["requests"], "-n", str(n),
                    "--schema-dir", str(SRC / "schemas")], cwd=SRC, check=True,
                   capture_output=True)
    by_version = {}
    for m in read_all(bootstrap, t["responses"], expect=n, timeout=180):
        v = dict(m.headers() or [])["model-version"].decode()
        by_version[v] = by_version.get(v, 0) + 1
    assert w.stop() == 0
    ms = schema("worker_metrics")
    last = [fastavro.schemaless_reader(io.BytesIO(m.value()), ms)
            for m in read_all(bootstrap, t["metrics"])][-1]
    totals = {x["model_version"]: x for x in last["models"]}
    share = by_version.get("2", 0) / n
    print(f"canary 10%: responses by version {by_version} -> canary share {share:.4f}; "
          f"shadow v3 ran {totals['3']['requests_total']} copies, correct_total "
          f"{totals['3']['correct_total']} vs v1 {totals['1']['correct_total']}")
    assert sum(by_version.values()) == n
    assert "3" not in by_version  # the shadow never answers
    assert 0.09 <= share <= 0.11, by_version
    assert totals["3"]["requests_total"] == n  # ... but runs every request
    assert totals["3"]["responses_total"] == 0  # none published, none counted as such
    assert totals["3"]["labelled_total"] == n
    assert totals["1"]["requests_total"] + totals["2"]["requests_total"] == n


def test_uint8_input_preprocessing(bootstrap, tmp_path):
    """config.cfg `input: { datatype = "UINT8"; scale = 1/255; }`: producers send raw pixels;
    predictions equal those of the FP32 path; `output: { argmax_only = true; }` keeps top-1."""
    import gzip

    import numpy as np
    root = repo_copy(tmp_path, ("1",))
    repo_copy(tmp_path, ("1",), name="fashion_u8", config=(
        'input: { datatype = "UINT8"; scale = 0.00392156862745098; };\n'
        'output: { argmax_only = true; return_tensors = false; };\n'))
    t = make_topics()
    cfg = worker_config(tmp_path / "w.cfg", bootstrap, t)
    cfg.write_text(cfg.read_text().replace(f'models_dir = "{SRC / "models"}"',
                                           f'models_dir = "{root}"'))
    w = start_worker(cfg, tmp_path / "w.log")
    raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 1, 28, 28)[:300]
    rq = schema("inference_request")

    def enc(rid, model, dtype, data):
        b = io.BytesIO()
        fastavro.schemaless_writer(b, rq, {
            "id": rid, "model_name": model, "model_version": None, "outputs": None,
            "parameters": {}, "label": None,
            "inputs": [{"name": "image", "datatype": dtype, "shape": [1, 1, 28, 28],
                        "data": data}]})
        return b.getvalue()
    p = producer(bootstrap)
    for i, img in enumerate(images):
        p.produce(t["requests"], key=f"f{i}", value=enc(
            f"f{i}", "fashion_cnn", "FP32", (img.astype(np.float32) / 255.0).tobytes()))
        p.produce(t["requests"], key=f"u{i}", value=enc(f"u{i}", "fashion_u8", "UINT8",
                                                        img.tobytes()))
    # A FP32 request to the UINT8 model is refused in the producer's terms.
    p.produce(t["requests"], key="bad", value=enc("bad", "fashion_u8", "FP32", bytes(4 * 784)))
    assert p.flush(30) == 0
    rs = schema("inference_response")
    got = {}
    for m in read_all(bootstrap, t["responses"], expect=2 * len(images) + 1):
        r = fastavro.schemaless_reader(io.BytesIO(m.value()), rs)
        got[r["id"]] = r["result"]
    w.stop()
    assert got["bad"]["code"] == "DATATYPE" and "UINT8" in got["bad"]["message"], got["bad"]
    for i in range(len(images)):
        f, u = got[f"f{i}"], got[f"u{i}"]
        assert len(u["classes"]) == 1 and u["outputs"] == []  # argmax_only, no tensors
        assert u["classes"][0]["index"] == f["classes"][0]["index"], i
        assert abs(u["classes"][0]["probability"] - f["classes"][0]["probability"]) < 1e-5
