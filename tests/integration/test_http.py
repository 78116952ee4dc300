"""HTTP endpoints of a running worker against the real broker: /readyz flips to ready only
once partitions are assigned, /metrics counts exactly what was sent, /healthz is live."""
import io
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import fastavro

from conftest import KAFKA, make_topics, producer, schema, start_worker, worker_config


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(text, name, **labels):
    """Value of one series in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, value = line.rsplit(" ", 1)
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', series))
        if series.split("{")[0] == name and all(got.get(k) == v for k, v in labels.items()):
            return float(value)
    return 0.0


def test_readyz_metrics_healthz(bootstrap, tmp_path):
    t = make_topics()
    # The requests topic is created only after the worker starts: until then it has no partitions.
    t["requests"] = t["requests"] + ".late"
    port = free_port()
    cfg = worker_config(tmp_path / "w.cfg", bootstrap, t,
                        kafka="topic_metadata_refresh_interval_ms = 500;",
                        extra=f'http: {{ port = {port}; bind_address = "127.0.0.1"; }};')
    w = start_worker(cfg, tmp_path / "w.log", wait_assigned=False)
    try:
        deadline = time.time() + 20
        while True:
            try:
                status, body = get(port, "/readyz")
                break
            except OSError:
                assert time.time() < deadline and w.proc.poll() is None, w.log_text()
                time.sleep(0.1)
        assert status == 503 and "no partitions assigned" in body, (status, body)
        assert get(port, "/healthz")[0] == 200
        assert get(port, "/nope")[0] == 404
        status, text = get(port, "/metrics")
        assert status == 200
        assert metric(text, "sluice_model_loaded", model="fashion_cnn", version="1") == 1
        assert metric(text, "sluice_openblas_core_info") == 1

        subprocess.run([str(KAFKA), "create-topics", f"{t['requests']}:4"], check=True)
        deadline = time.time() + 30
        while get(port, "/readyz")[0] != 200:
            assert time.time() < deadline, w.log_text()[-2000:]
            time.sleep(0.2)

        req = schema("inference_request")
        def enc(rid, shape=(1, 1, 28, 28), model="fashion_cnn"):
            b = io.BytesIO()
            fastavro.schemaless_writer(b, req, {
                "id": rid, "model_name": model, "model_version": None, "outputs": None,
                "parameters": {}, "label": 1,
                "inputs": [{"name": "image", "datatype": "FP32", "shape": list(shape),
                            "data": bytes(4 * 784)}]})
            return b.getvalue()
        p = producer(bootstrap)
        n = 500
        for i in range(n):
            p.produce(t["requests"], key=str(i), value=enc(f"ok-{i}"))
        p.produce(t["requests"], key="bad-shape", value=enc("shape", shape=(1, 28, 28)))
        p.produce(t["requests"], key="garbage", value=b"\xff\x00garbage")
        p.produce(t["requests"], key="nomodel", value=enc("nomodel", model="nope"))
        assert p.flush(30) == 0

        deadline = time.time() + 60
        while True:
            text = get(port, "/metrics")[1]
            if metric(text, "sluice_responses_total", model="fashion_cnn", version="1") >= n:
                break
            assert time.time() < deadline, text
            time.sleep(0.3)
        time.sleep(1.0)
        text = get(port, "/metrics")[1]
        labels = dict(model="fashion_cnn", version="1")
        assert metric(text, "sluice_requests_total", **labels) == n + 1
        assert metric(text, "sluice_responses_total", **labels) == n
        assert metric(text, "sluice_errors_total", code="SHAPE", **labels) == 1
        assert metric(text, "sluice_errors_total", model="", code="UNKNOWN_MODEL") == 1
        assert metric(text, "sluice_dead_letters_total", code="DECODE") == 1
        assert metric(text, "sluice_dead_letters_total", code="SHAPE") == 1
        assert metric(text, "sluice_dead_letters_total", code="UNKNOWN_MODEL") == 1
        assert metric(text, "sluice_request_latency_seconds_count", **labels) == n
        assert metric(text, "sluice_batch_size_sum", **labels) == n + 0  # rows of served batches
        assert metric(text, "sluice_labelled_total", **labels) == n
        assert 0 <= metric(text, "sluice_accuracy", **labels) <= 1
        assert get(port, "/healthz")[0] == 200
        # The online evaluation appears with the next metrics interval (2 s here).
        deadline = time.time() + 10
        while 'sluice_evaluation{model="fashion_cnn",version="1",metric="accuracy"}' not in text:
            assert time.time() < deadline, text
            time.sleep(0.5)
            text = get(port, "/metrics")[1]
        # All-zero images labelled 1: the accuracy is the share predicted as class 1.
        acc = metric(text, "sluice_evaluation", metric="accuracy", **labels)
        assert acc == metric(text, "sluice_correct_total", **labels) / n
        assert 0 <= metric(text, "sluice_evaluation", metric="macro_f1", **labels) <= 1
        print(f"/metrics after {n} good + 3 bad: requests={n + 1} responses={n}")
    finally:
        w.stop()
