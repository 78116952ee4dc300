#!/usr/bin/env python3
"""sluice engine vs ONNX Runtime on the same models, same thread count (1).

Interleaved in one session: each round times ONNX Runtime in-process and
sluice through `sluice bench` (a subprocess that loads the model, warms up and
prints every timed run as JSON), alternating which goes first, so that both
see the same machine load. Reports per-run medians, the interquartile range
and min/max over all rounds, for batch-1 latency and batch-64 throughput, with
ratios. Wall time is what a caller sees; thread-CPU time is also shown because
on a shared machine it is far less disturbed by other processes.

By default the shipped model and every model of the differential test
(tests/differential/export_models.py, exported at one opset into a temporary
folder) are measured, one after the other, and a summary table of ratios ends
the output. --model PATH measures one file instead.

Run:  /work/main/.venv/bin/python tests/bench/bench_engine.py --sluice build/sluice
Not a ctest test: speed is never asserted.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHIPPED = os.path.join(ROOT, "models", "fashion_cnn", "1", "model.onnx")
# Differential-test models benchmarked by default (embedding_bag takes int64
# indices, which `sluice bench` fills with zeros: not a fair comparison).
DIFF_MODELS = ("mlp", "cnn", "lstm", "gru", "transformer")


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


def bench_model(a, path, batches):
    """{batch: {"sluice"/"ort": {"wall"/"cpu": quantiles}}} and the BLAS core."""
    sess = ort_session(path)
    results, core = {}, "?"
    for batch in batches:
        runs = a.runs or (300 if batch == 1 else 30)
        warm = max(10, runs // 10)
        acc = {"ort": ([], []), "sluice": ([], [])}
        for r in range(a.rounds):
            order = ["ort", "sluice"] if r % 2 == 0 else ["sluice", "ort"]
            for who in order:
                if who == "ort":
                    w, c = ort_times(sess, batch, warm, runs)
                else:
                    w, c, core = sluice_times(a.sluice, path, batch, warm, runs)
                acc[who][0].extend(w)
                acc[who][1].extend(c)
        results[batch] = {k: {"wall": quantiles(v[0]), "cpu": quantiles(v[1])} for k, v in acc.items()}
    return results, core


def ratio(batch, s, o):
    # batch 1: sluice latency / ORT latency (< 1: sluice faster);
    # batch N: sluice throughput / ORT throughput (> 1: sluice faster).
    return s["median"] / o["median"] if batch == 1 else o["median"] / s["median"]


def print_detail(name, results):
    print(f"\n== {name}")
    print(f"{'metric':<28}{'clock':<6}{'sluice median [IQR] (min-max)':>40}"
          f"{'ORT median [IQR] (min-max)':>40}{'sl/ORT':>8}")
    for batch, res in results.items():
        for clock in ("wall", "cpu"):
            s, o = res["sluice"][clock], res["ort"][clock]
            if batch == 1:
                metric = "batch-1 latency (ms)"
                fmt = lambda q: f"{q['median']:.4f} [{q['q1']:.4f}-{q['q3']:.4f}] ({q['min']:.3f}-{q['max']:.3f})"
            else:
                metric = f"batch-{batch} throughput (/s)"
                tp = lambda ms: batch / ms * 1e3
                fmt = lambda q: (f"{tp(q['median']):.0f} [{tp(q['q3']):.0f}-{tp(q['q1']):.0f}] "
                                 f"({tp(q['max']):.0f}-{tp(q['min']):.0f})")
            print(f"{metric:<28}{clock:<6}{fmt(s):>40}{fmt(o):>40}{ratio(batch, s, o):>7.2f}x")


def print_summary(all_results, batches, clock):
    print(f"\nsummary ({clock} clock): medians [IQR]; batch 1 in microseconds (ratio sluice/ORT, "
          f"<= 1.00 meets the target), larger batches in samples/s (ratio sluice/ORT, >= 0.90)")
    head = f"{'model':<14}"
    for b in batches:
        head += f"{'b%d sluice' % b:>22}{'b%d ORT' % b:>22}{'ratio':>7}"
    print(head)
    for name, results in all_results.items():
        line = f"{name:<14}"
        for b in batches:
            s, o = results[b]["sluice"][clock], results[b]["ort"][clock]
            if b == 1:
                f = lambda q: f"{q['median'] * 1e3:.1f} [{q['q1'] * 1e3:.1f}-{q['q3'] * 1e3:.1f}]"
            else:
                tp = lambda ms: b / ms * 1e3
                f = lambda q: f"{tp(q['median']):.0f} [{tp(q['q3']):.0f}-{tp(q['q1']):.0f}]"
            line += f"{f(s):>22}{f(o):>22}{ratio(b, s, o):>6.2f}x"
        print(line)


def export_diff_models(names, opset, out_dir):
    sys.path.insert(0, os.path.join(ROOT, "tests", "differential"))
    import export_models

    paths = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in names:
            paths[n] = export_models.export(n, opset, out_dir)
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", default=os.path.join(ROOT, "build", "sluice"))
    ap.add_argument("--model", help="benchmark this .onnx file only")
    ap.add_argument("--models", default="shipped," + ",".join(DIFF_MODELS),
                    help="comma-separated: 'shipped' and differential-test model names")
    ap.add_argument("--opset", type=int, default=13, help="opset of the exported models")
    ap.add_argument("--keep", help="export the models into this folder (kept) instead of a temporary one")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds per batch size")
    ap.add_argument("--runs", type=int, default=0, help="timed runs per round (default: 300 at batch 1, 30 at 64)")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--json", help="also write the raw numbers here")
    a = ap.parse_args()

    import onnxruntime as ort

    batches = [int(b) for b in a.batches.split(",")]
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as tmp:
        if a.model:
            paths = {os.path.basename(a.model): a.model}
        else:
            names = [n for n in a.models.split(",") if n]
            out_dir = a.keep or tmp
            os.makedirs(out_dir, exist_ok=True)
            paths = {n: SHIPPED for n in names if n == "shipped"}
            paths.update(export_diff_models([n for n in names if n != "shipped"], a.opset, out_dir))
            paths = {n: paths[n] for n in names}
        all_results, core = {}, "?"
        for name, path in paths.items():
            all_results[name], core = bench_model(a, path, batches)
            print_detail(f"{name} ({os.path.relpath(path, ROOT) if name == 'shipped' else path})",
                         all_results[name])
            sys.stdout.flush()

    print(f"\n1 thread each; ONNX Runtime {ort.__version__} (intra/inter-op threads 1, "
          f"ORT_ENABLE_ALL); sluice OpenBLAS core {core}; {a.rounds} interleaved rounds; "
          f"differential models at opset {a.opset}")
    for clock in ("cpu", "wall"):
        print_summary(all_results, batches, clock)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({n: {str(k): v for k, v in r.items()} for n, r in all_results.items()}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
