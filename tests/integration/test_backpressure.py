"""Slow models and backpressure against the real broker: a model made slow on purpose, a
backlog produced before the worker starts, resident memory sampled every 0.5 s.

Phase 1 (default settings): the model is the bottleneck. Inference runs on the polling thread,
so consumption slows to the model's pace; what librdkafka prefetches is bounded by its fetch
queue (queued.max.messages.kbytes), and the in-flight window (10,000) is not reached.
Phase 2 (a second worker on the same group and backlog, acknowledgements slowed down with
linger.ms = 5000): outputs wait for the broker's acknowledgement, the in-flight window fills,
partitions are paused and resumed as acknowledgements drain it.

Both phases: the worker never leaves the group (max.poll.interval.ms = 10000, no MAXPOLL, no
revoke except at shutdown), RSS stays under RSS_BOUND_MB, and after draining every id has a
response.

SLUICE_BACKPRESSURE_N (default 200000) sets the backlog; tests/integration/backpressure_full.sh
runs it with 1,000,000. SLUICE_BACKPRESSURE_LAYERS (default 24) the model's 784x784 MatMul layers.
"""
import os
import subprocess
import threading
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from conftest import (BIN, SRC, free_tcp_port, http_get, make_topics, rss_kb, sluice_collect,
                      sluice_produce, start_worker)

N = int(os.environ.get("SLUICE_BACKPRESSURE_N", "200000"))
LAYERS = int(os.environ.get("SLUICE_BACKPRESSURE_LAYERS", "24"))
PHASE1_S = float(os.environ.get("SLUICE_BACKPRESSURE_PHASE1_S", "20"))
# Measured (24 layers, 59 MB of weights, 200,000 backlog): peak VmRSS 218 MB in phase 1 and
# 227 MB in phase 2 (model, librdkafka's fetch queue, the in-flight window). Bound: 300 MB.
RSS_BOUND_MB = int(os.environ.get("SLUICE_BACKPRESSURE_RSS_MB", "300"))
IN_FLIGHT_MAX = 10000  # worker/stream/worker.c INFLIGHT_MAX_DEFAULT


def slow_model(path, layers):
    """image FP32 [N,1,28,28] -> Reshape [N,784] -> layers x (MatMul 784x784, Relu)
    -> MatMul [N,10] -> Softmax. Opset 13."""
    rng = np.random.default_rng(1)
    nodes = [helper.make_node("Reshape", ["image", "shape"], ["x0"])]
    inits = [numpy_helper.from_array(np.array([-1, 784], dtype=np.int64), "shape")]
    x = "x0"
    for i in range(layers):
        w = (rng.standard_normal((784, 784)) / 28.0).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]))
        nodes.append(helper.make_node("Relu", [f"m{i}"], [f"r{i}"]))
        x = f"r{i}"
    inits.append(numpy_helper.from_array(
        (rng.standard_normal((784, 10)) / 28.0).astype(np.float32), "wout"))
    nodes.append(helper.make_node("MatMul", [x, "wout"], ["logits"]))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1))
    g = helper.make_graph(
        nodes, "slow_mlp",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)],
                          producer_name="sluice-test-backpressure")
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def metric_sum(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


class Sampler(threading.Thread):
    """VmRSS (kB) and the in-flight / paused gauges of a worker every 0.5 s."""

    def __init__(self, pid, http_port):
        super().__init__(daemon=True)
        self.pid, self.port = pid, http_port
        self.rss, self.in_flight, self.paused = [], [], []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            kb = rss_kb(self.pid)
            if kb:
                self.rss.append(kb)
            status, text = http_get(self.port, "/metrics", timeout=1.0)
            if status == 200:
                self.in_flight.append(metric_sum(text, "sluice_in_flight_messages"))
                self.paused.append(metric_sum(text, "sluice_partitions_paused"))
            self.done.wait(0.5)

    def stop(self):
        self.done.set()
        self.join(5)
        return self


def group_events_before_shutdown(log):
    """Lines saying the worker left or lost the group before it was asked to stop."""
    before = log.split('msg="draining', 1)[0]
    out = []
    for ln in before.splitlines():
        if "fac=CONFWARN" in ln:
            continue  # "max.poll.interval.ms is a consumer property" (the producer's copy)
        if ("fac=REBALANCE" in ln and ('msg="revoked' in ln or 'msg="lost' in ln)) or \
                "MAXPOLL" in ln or "MAX_POLL" in ln or "max.poll.interval" in ln.lower():
            out.append(ln)
    return out


def test_slow_model_backlog_bounded_memory(bootstrap, tmp_path):
    t0 = time.time()
    models = tmp_path / "models"
    (models / "slow_mlp" / "1").mkdir(parents=True)
    slow_model(models / "slow_mlp" / "1" / "model.onnx", LAYERS)
    (models / "slow_mlp" / "config.cfg").write_text("max_batch_size = 64;\ntop_k = 1;\n")
    r = subprocess.run([BIN, "inspect", str(models / "slow_mlp" / "1" / "model.onnx")],
                       capture_output=True, text=True)
    assert r.returncode == 0 and f"MatMul×{LAYERS + 1}" in r.stdout, r.stdout + r.stderr

    t = make_topics()
    p = sluice_produce(bootstrap, t["requests"], N, 0, extra=("-m", "slow_mlp"))
    out = p.communicate(timeout=600)[0]
    assert p.returncode == 0, out
    produced_s = time.time() - t0
    print(f"\nbacklog: {out.strip()}")

    def cfg(name, kafka):
        """A worker on the slow model: batches of 64, max.poll.interval.ms 10 s, HTTP on."""
        http_port = free_tcp_port()
        c = tmp_path / f"{name}.cfg"
        c.write_text(f"""
worker: {{ id = "{name}"; models_dir = "{models}"; metrics_interval_ms = 2000; }};
batch: {{ max_size = 64; max_wait_ms = 5; }};
topics: {{
  requests = ["{t['requests']}"];
  responses = "{t['responses']}";
  dead_letters = "{t['dead_letters']}";
  metrics = "{t['metrics']}";
}};
codec: {{ schema_dir = "{SRC / 'schemas'}"; }};
kafka: {{ bootstrap_servers = "{bootstrap}"; group_id = "{t['group']}";
  max_poll_interval_ms = 10000; session_timeout_ms = 6000; heartbeat_interval_ms = 1000;
  {kafka} }};
http: {{ port = {http_port}; bind_address = "127.0.0.1"; }};
""")
        return c, http_port

    # Phase 1: the model is the bottleneck, default producer settings.
    c1, port1 = cfg("bp1", "")
    w1 = start_worker(c1, tmp_path / "bp1.log")
    s1 = Sampler(w1.proc.pid, port1)
    s1.start()
    time.sleep(PHASE1_S)
    assert w1.proc.poll() is None, w1.log_text()[-3000:]
    assert w1.stop(timeout=60) == 0, w1.log_text()[-3000:]
    s1.stop()
    log1 = w1.log_text()

    # Phase 2: acknowledgements slowed too (linger.ms): the in-flight window fills.
    c2, port2 = cfg("bp2", "linger_ms = 5000;")
    w2 = start_worker(c2, tmp_path / "bp2.log")
    s2 = Sampler(w2.proc.pid, port2)
    s2.start()
    summary = sluice_collect(bootstrap, t["responses"], N, timeout_ms=120000)
    alive = w2.proc.poll() is None
    rc2 = w2.stop(timeout=60)
    s2.stop()
    log2 = w2.log_text()

    def mb(samples):
        return max(samples) / 1024 if samples else 0

    def answered(log):
        return sum(int(x.split("responses=")[1].split()[0])
                   for x in log.splitlines() if "fac=METRICS" in x and "responses=" in x)

    flow2 = [ln for ln in log2.splitlines() if "fac=FLOW" in ln]
    n_paused = sum('msg="paused' in x for x in flow2)
    n_resumed = sum('msg="resumed' in x for x in flow2)
    print(f"slow model ({LAYERS} x 784x784 MatMul), backlog {N} produced in {produced_s:.1f} s;"
          f" total {time.time() - t0:.0f} s")
    print(f"phase 1 (default settings, {PHASE1_S:.0f} s): answered {answered(log1)}, "
          f"peak RSS {mb(s1.rss):.0f} MB, peak in flight {max(s1.in_flight, default=0):.0f}, "
          f"FLOW lines {log1.count('fac=FLOW')}")
    print(f"phase 2 (linger.ms 5000): answered {answered(log2)}, peak RSS {mb(s2.rss):.0f} MB,"
          f" peak in flight {max(s2.in_flight, default=0):.0f}, paused "
          f"{n_paused}x, resumed {n_resumed}x")
    print(f"responses: {summary['unique']} unique of {N}, {summary['duplicates']} duplicates; "
          f"RSS bound {RSS_BOUND_MB} MB")

    assert alive, log2[-3000:]
    assert rc2 == 0, log2[-3000:]
    assert summary["unique"] == N, summary
    # Never left the group while serving: revokes only at shutdown, no max.poll.interval.ms.
    assert group_events_before_shutdown(log1) == [], group_events_before_shutdown(log1)
    assert group_events_before_shutdown(log2) == [], group_events_before_shutdown(log2)
    assert log1.count('msg="assigned') == 1 and log2.count('msg="assigned') == 1
    # Phase 1: a slow model throttles consumption; the in-flight window is never reached.
    assert answered(log1) > 0
    assert max(s1.in_flight, default=0) < IN_FLIGHT_MAX
    # Phase 2: paused when the window is full, resumed as it drains.
    assert n_paused >= 1 and n_resumed >= 1, log2[-3000:]
    assert max(s2.in_flight, default=0) <= IN_FLIGHT_MAX + 64 + 1  # window + one batch
    assert max(s2.paused, default=0) > 0
    assert s1.rss and s2.rss
    assert mb(s1.rss) < RSS_BOUND_MB and mb(s2.rss) < RSS_BOUND_MB, (mb(s1.rss), mb(s2.rss))
