#!/usr/bin/env python3
"""sluice engine vs ONNX Runtime on the same model, same thread count (1).

Interleaved in one session: each round times ONNX Runtime in-process and
sluice through `sluice bench` (a subprocess that loads the model, warms up and
prints every timed run as JSON), alternating which goes first, so that both
see the same machine load. Reports per-run medians, the interquartile range
and min/max over all rounds, for batch-1 latency and batch-64 throughput, with
ratios. Wall time is what a caller sees; thread-CPU time is also shown because
on a shared machine it is far less disturbed by other processes.

Run:  /work/main/.venv/bin/python tests/bench/bench_engine.py --sluice build/sluice
Not a ctest test: speed is never asserted.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def quantiles(xs):
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else [xs[0]] * 3
    return {"median": q[1], "q1": q[0], "q3": q[2], "min": xs[0], "max": xs[-1], "n": len(xs)}


def ort_session(model):
    # numpy on this machine may have been started with OPENBLAS_CORETYPE set by
    # the environment; ORT does not use OpenBLAS (MLAS), so nothing to undo.
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def ort_times(sess, batch, warmup, runs):
    import numpy as np

    inp = sess.get_inputs()[0]
    shape = [batch if not isinstance(d, int) and i == 0 else (d if isinstance(d, int) else 1)
             for i, d in enumerate(inp.shape)]
    x = np.random.default_rng(12345).random(shape, dtype=np.float32)
    feed = {inp.name: x}
    for _ in range(warmup):
        sess.run(None, feed)
    wall, cpu = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.thread_time()
        sess.run(None, feed)
        cpu.append((time.thread_time() - c0) * 1e3)
        wall.append((time.perf_counter() - w0) * 1e3)
    return wall, cpu


def sluice_times(exe, model, batch, warmup, runs):
    out = subprocess.run([exe, "bench", "-b", str(batch), "-w", str(warmup), "-r", str(runs), model],
                         check=True, capture_output=True, text=True).stdout
    d = json.loads(out)
    return d["wall_ms"], d["cpu_ms"], d.get("blas_core", "?")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", default=os.path.join(root, "build", "sluice"))
    ap.add_argument("--model", default=os.path.join(root, "models", "fashion_cnn", "1", "model.onnx"))
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds per batch size")
    ap.add_argument("--runs", type=int, default=0, help="timed runs per round (default: 300 at batch 1, 30 at 64)")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--json", help="also write the raw numbers here")
    a = ap.parse_args()

    import onnxruntime as ort

    sess = ort_session(a.model)
    results, core = {}, "?"
    for batch in [int(b) for b in a.batches.split(",")]:
        runs = a.runs or (300 if batch == 1 else 30)
        warm = max(10, runs // 10)
        acc = {"ort": ([], []), "sluice": ([], [])}
        for r in range(a.rounds):
            order = ["ort", "sluice"] if r % 2 == 0 else ["sluice", "ort"]
            for who in order:
                if who == "ort":
                    w, c = ort_times(sess, batch, warm, runs)
                else:
                    w, c, core = sluice_times(a.sluice, a.model, batch, warm, runs)
                acc[who][0].extend(w)
                acc[who][1].extend(c)
        results[batch] = {k: {"wall": quantiles(v[0]), "cpu": quantiles(v[1])} for k, v in acc.items()}

    print(f"model {os.path.relpath(a.model, root)}; 1 thread each; ONNX Runtime {ort.__version__} "
          f"(intra/inter-op threads 1); sluice OpenBLAS core {core}; {a.rounds} interleaved rounds")
    print(f"{'metric':<28}{'clock':<6}{'sluice median [IQR] (min-max)':>40}"
          f"{'ORT median [IQR] (min-max)':>40}{'sl/ORT':>8}")
    for batch, res in results.items():
        for clock in ("wall", "cpu"):
            s, o = res["sluice"][clock], res["ort"][clock]
            if batch == 1:
                name, unit = "batch-1 latency (ms)", 1.0
                fmt = lambda q: f"{q['median']:.4f} [{q['q1']:.4f}-{q['q3']:.4f}] ({q['min']:.3f}-{q['max']:.3f})"
                ratio = s["median"] / o["median"]  # < 1: sluice faster
            else:
                name = f"batch-{batch} throughput (img/s)"
                tp = lambda ms: batch / ms * 1e3
                fmt = lambda q: (f"{tp(q['median']):.0f} [{tp(q['q3']):.0f}-{tp(q['q1']):.0f}] "
                                 f"({tp(q['max']):.0f}-{tp(q['min']):.0f})")
                ratio = o["median"] / s["median"]  # > 1: sluice faster
            print(f"{name:<28}{clock:<6}{fmt(s):>40}{fmt(o):>40}{ratio:>7.2f}x")
    print("ratio: batch-1 = sluice latency / ORT latency (<= 1.00 meets the target); "
          "throughput = sluice / ORT (>= 0.90 meets the target)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({str(k): v for k, v in results.items()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
