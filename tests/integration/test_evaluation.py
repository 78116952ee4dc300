"""Online evaluation against the real broker: the accuracy and macro F1 a worker reports for the
shipped Fashion-MNIST model equal those computed offline from its responses, whether labels come
inside the requests or later on a labels topic (joined by request id)."""
import gzip
import io
import subprocess

import fastavro
import numpy as np

from conftest import BIN, SRC, make_topics, producer, read_all, schema, start_worker, worker_config

N = 10000
DATA = "/usr/share/datasets/fashion-mnist"


def offline(pairs, c=10):
    """accuracy and macro F1 (scikit-learn's definitions, labels=range(c), zero_division=0)."""
    tp, fp, fn = [0] * c, [0] * c, [0] * c
    for pred, true in pairs:
        if pred == true:
            tp[true] += 1
        else:
            fp[pred] += 1
            fn[true] += 1
    f1 = [2 * tp[k] / (2 * tp[k] + fp[k] + fn[k]) if tp[k] + fp[k] + fn[k] else 0.0
          for k in range(c)]
    return sum(tp) / len(pairs), sum(f1) / c


def last_eval(bootstrap, topic):
    ms = schema("worker_metrics")
    recs = [fastavro.schemaless_reader(io.BytesIO(m.value()), ms) for m in read_all(bootstrap, topic)]
    return [x for x in recs[-1]["models"] if x["model_name"] == "fashion_cnn"][0]["evaluation"]


def predictions(bootstrap, topic, n):
    rs = schema("inference_response")
    out = {}
    for m in read_all(bootstrap, topic, expect=n, timeout=180):
        r = fastavro.schemaless_reader(io.BytesIO(m.value()), rs)
        out[r["id"]] = r["result"]["classes"][0]["index"]
    return out


def test_online_accuracy_and_f1_inline_and_late_labels(bootstrap, tmp_path):
    labels = np.frombuffer(gzip.open(f"{DATA}/t10k-labels-idx1-ubyte.gz").read(), np.uint8,
                           offset=8)
    images = np.frombuffer(gzip.open(f"{DATA}/t10k-images-idx3-ubyte.gz").read(), np.uint8,
                           offset=16).reshape(-1, 784)

    # 1. Labels inside the requests (sluice produce sends them).
    t = make_topics()
    w = start_worker(worker_config(tmp_path / "a.cfg", bootstrap, t), tmp_path / "a.log")
    subprocess.run([BIN, "produce", "-b", bootstrap, "-t", t["requests"], "-n", str(N),
                    "--schema-dir", str(SRC / "schemas")], cwd=SRC, check=True,
                   capture_output=True)
    pred = predictions(bootstrap, t["responses"], N)
    assert w.stop() == 0
    acc, f1 = offline([(pred[f"img-{i}"], int(labels[i])) for i in range(N)])
    ev = last_eval(bootstrap, t["metrics"])["total"]
    print(f"inline labels: online accuracy {ev['accuracy']:.4f} macro F1 {ev['macro_f1']:.4f}; "
          f"offline {acc:.4f} / {f1:.4f}; log loss {ev['log_loss']:.4f}")
    assert ev["count"] == N
    assert abs(ev["accuracy"] - acc) < 1e-12 and abs(ev["macro_f1"] - f1) < 1e-12
    assert len(ev["confusion"]) == 10 and sum(map(sum, ev["confusion"])) == N
    assert ev["per_class"][0]["label"] == "T-shirt/top"

    # 2. Requests without labels; the labels arrive later on a labels topic.
    t2 = make_topics()
    labels_topic = t2["requests"] + ".labels"
    subprocess.run([str(SRC / "deploy" / "kafka-local.sh"), "create-topics", f"{labels_topic}:2"],
                   check=True)
    cfg = worker_config(tmp_path / "b.cfg", bootstrap, t2)
    cfg.write_text(cfg.read_text().replace("topics: {", f'topics: {{\n  labels = ["{labels_topic}"];'))
    w = start_worker(cfg, tmp_path / "b.log")
    rq, lb = schema("inference_request"), schema("inference_label")
    p = producer(bootstrap)
    for i in range(N):
        b = io.BytesIO()
        fastavro.schemaless_writer(b, rq, {
            "id": f"img-{i}", "model_name": "fashion_cnn", "model_version": None,
            "outputs": None, "parameters": {}, "label": None,
            "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28],
                        "data": (images[i].astype(np.float32) / 255.0).tobytes()}]})
        p.produce(t2["requests"], key=f"img-{i}", value=b.getvalue())
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    pred2 = predictions(bootstrap, t2["responses"], N)
    # Late labels (after every prediction), plus one early label for an id never requested.
    for i in range(N):
        b = io.BytesIO()
        fastavro.schemaless_writer(b, lb, {"id": f"img-{i}", "label": int(labels[i]),
                                           "value": None})
        p.produce(labels_topic, key=f"img-{i}", value=b.getvalue())
    assert p.flush(60) == 0
    import time
    time.sleep(3)
    assert w.stop() == 0
    ev2 = last_eval(bootstrap, t2["metrics"])["total"]
    acc2, f12 = offline([(pred2[f"img-{i}"], int(labels[i])) for i in range(N)])
    print(f"late labels: online accuracy {ev2['accuracy']:.4f} macro F1 {ev2['macro_f1']:.4f}; "
          f"offline {acc2:.4f} / {f12:.4f}")
    assert ev2["count"] == N
    assert abs(ev2["accuracy"] - acc2) < 1e-12 and abs(ev2["macro_f1"] - f12) < 1e-12
    assert abs(ev2["accuracy"] - ev["accuracy"]) < 1e-12  # same model, same images


def test_regression_mae_rmse(bootstrap, tmp_path):
    """A regression model ([N, 1] output): MAE and RMSE online equal those from the responses."""
    import onnx
    from onnx import TensorProto, helper
    w_ = np.array([[0.5], [-1.0], [2.0], [0.25]], np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "reg", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor("w", TensorProto.FLOAT, [4, 1], w_.ravel()),
         helper.make_tensor("b", TensorProto.FLOAT, [1], [0.5])])
    d = tmp_path / "models" / "reg" / "1"
    d.mkdir(parents=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
              str(d / "model.onnx"))
    t = make_topics()
    cfg = worker_config(tmp_path / "r.cfg", bootstrap, t)
    cfg.write_text(cfg.read_text().replace(f'models_dir = "{SRC / "models"}"',
                                           f'models_dir = "{tmp_path / "models"}"'))
    w = start_worker(cfg, tmp_path / "r.log")
    rng = np.random.default_rng(5)
    xs = rng.normal(size=(500, 4)).astype(np.float32)
    truth = rng.integers(-3, 4, size=500)
    rq = schema("inference_request")
    p = producer(bootstrap)
    for i in range(500):
        b = io.BytesIO()
        fastavro.schemaless_writer(b, rq, {
            "id": f"r{i}", "model_name": "reg", "model_version": None, "outputs": None,
            "parameters": {}, "label": int(truth[i]),
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": xs[i].tobytes()}]})
        p.produce(t["requests"], key=f"r{i}", value=b.getvalue())
    assert p.flush(30) == 0
    rs = schema("inference_response")
    got = {}
    for m in read_all(bootstrap, t["responses"], expect=500):
        r = fastavro.schemaless_reader(io.BytesIO(m.value()), rs)
        got[r["id"]] = np.frombuffer(r["result"]["outputs"][0]["data"], np.float32)[0]
    assert w.stop() == 0
    err = np.array([got[f"r{i}"] - truth[i] for i in range(500)], np.float64)
    ev = [x for x in fastavro_models(bootstrap, t["metrics"]) if x["model_name"] == "reg"][0]
    tot = ev["evaluation"]["total"]
    print(f"regression: online MAE {tot['mae']:.6f} RMSE {tot['rmse']:.6f}; offline "
          f"{np.abs(err).mean():.6f} / {np.sqrt((err ** 2).mean()):.6f}")
    assert tot["count"] == 500
    assert abs(tot["mae"] - np.abs(err).mean()) < 1e-9
    assert abs(tot["rmse"] - np.sqrt((err ** 2).mean())) < 1e-9


def fastavro_models(bootstrap, topic):
    ms = schema("worker_metrics")
    recs = [fastavro.schemaless_reader(io.BytesIO(m.value()), ms) for m in read_all(bootstrap, topic)]
    return recs[-1]["models"]
