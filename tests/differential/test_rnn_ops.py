"""Differential test of the recurrent operators (RNN, GRU, LSTM) against ONNX
Runtime on single-node models covering the attributes and optional inputs the
backend test data leaves out: reverse and bidirectional directions, layout 1,
sequence_lens, initial states, peepholes, clip, input_forget, activations with
activation_alpha/beta, GRU linear_before_reset 0 and 1, omitted outputs.

Where ONNX Runtime does not implement layout=1, the expected outputs are ORT's
layout-0 outputs of the same data transposed (the layout only permutes axes).

Tolerance as test_differential.py: |sluice - ort| <= 1e-6 + 1e-4 * |ort|.
Skipped, with the reason printed, when onnxruntime is not importable.
"""
import itertools
import os
import shutil
import subprocess

import numpy as np
import pytest

try:
    import onnxruntime as ort
except ImportError as e:  # missing or broken install: skip, saying why
    pytest.skip("onnxruntime is not importable (%s); install it into .venv with "
                "deploy/install-deps.sh" % e, allow_module_level=True)
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnxruntime.capi.onnxruntime_pybind11_state import Fail as OrtFail  # noqa: E402

RTOL = os.environ.get("SL_DIFF_RTOL", "1e-4")
ATOL = os.environ.get("SL_DIFF_ATOL", "1e-6")
SEQ, BATCH, INPUT, HIDDEN = 5, 3, 4, 6
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
N_OUT = {"RNN": 2, "GRU": 2, "LSTM": 3}


def make_case(op, direction="forward", layout=0, lens=False, init=False, peep=False,
              bias=True, attrs=None, outputs=None, seed=0):
    """Returns (inputs: [(name, array or None)], outputs: [names], attributes)."""
    rng = np.random.default_rng(seed)
    nd = 2 if direction == "bidirectional" else 1
    g = GATES[op]
    x = rng.standard_normal((SEQ, BATCH, INPUT)).astype(np.float32)
    ins = [("X", x),
           ("W", (rng.standard_normal((nd, g * HIDDEN, INPUT)) * 0.5).astype(np.float32)),
           ("R", (rng.standard_normal((nd, g * HIDDEN, HIDDEN)) * 0.5).astype(np.float32)),
           ("B", (rng.standard_normal((nd, 2 * g * HIDDEN)) * 0.3).astype(np.float32)
            if bias else None),
           ("sequence_lens", np.array([SEQ, 2, 4][:BATCH], dtype=np.int32) if lens else None),
           ("initial_h", rng.standard_normal((nd, BATCH, HIDDEN)).astype(np.float32)
            if init else None)]
    if op == "LSTM":
        ins.append(("initial_c", rng.standard_normal((nd, BATCH, HIDDEN)).astype(np.float32)
                    if init else None))
        ins.append(("P", (rng.standard_normal((nd, 3 * HIDDEN)) * 0.5).astype(np.float32)
                    if peep else None))
    while ins[-1][1] is None:
        ins.pop()
    outs = outputs or ["Y", "Y_h", "Y_c"][:N_OUT[op]]
    a = dict(hidden_size=HIDDEN, direction=direction)
    a.update(attrs or {})
    return ins, outs, a


def to_layout1(name, v):
    """Layout-0 tensor -> layout 1 (X: [seq,batch,in] -> [batch,seq,in];
    states: [nd,batch,h] -> [batch,nd,h]; Y: [seq,nd,batch,h] -> [batch,seq,nd,h])."""
    if name in ("X", "initial_h", "initial_c", "Y_h", "Y_c"):
        return np.ascontiguousarray(v.transpose(1, 0, 2))
    if name == "Y":
        return np.ascontiguousarray(v.transpose(2, 0, 1, 3))
    return v


def build(op, ins, outs, attrs, opset):
    vin = [helper.make_tensor_value_info(n, TensorProto.INT32 if v.dtype == np.int32
                                         else TensorProto.FLOAT, v.shape)
           for n, v in ins if v is not None]
    node = helper.make_node(op, [n if v is not None else "" for n, v in ins], outs, **attrs)
    vout = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outs if n]
    graph = helper.make_graph([node], "rnn", vin, vout)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    return model


def ort_run(model, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


CASES = []
for op, d, lay, lens in itertools.product(("RNN", "GRU", "LSTM"),
                                          ("forward", "reverse", "bidirectional"), (0, 1),
                                          (False, True)):
    CASES.append(("%s-%s-layout%d%s" % (op, d, lay, "-lens" if lens else ""),
                  op, dict(direction=d, layout=lay, lens=lens, init=True), 14))
for d in ("forward", "reverse", "bidirectional"):
    for lbr in (0, 1):
        CASES.append(("GRU-%s-lbr%d-lens-noinit" % (d, lbr), "GRU",
                      dict(direction=d, lens=True, attrs={"linear_before_reset": lbr}), 14))
        CASES.append(("GRU-%s-lbr%d-clip" % (d, lbr), "GRU",
                      dict(direction=d, init=True, attrs={"linear_before_reset": lbr,
                                                          "clip": 0.7}), 7))
    CASES.append(("LSTM-%s-peepholes-lens" % d, "LSTM",
                  dict(direction=d, lens=True, init=True, peep=True), 14))
    CASES.append(("LSTM-%s-clip-input_forget" % d, "LSTM",
                  dict(direction=d, init=True, peep=True,
                       attrs={"clip": 0.5, "input_forget": 1}), 7))
CASES += [
    ("RNN-relu-nobias", "RNN", dict(bias=False, attrs={"activations": ["Relu"]}), 7),
    ("RNN-bidi-activations", "RNN",
     dict(direction="bidirectional", init=True,
          attrs={"activations": ["LeakyRelu", "HardSigmoid"], "activation_alpha": [0.1, 0.3],
                 "activation_beta": [0.4]}), 14),
    ("GRU-activations-alpha", "GRU",
     dict(init=True, attrs={"activations": ["HardSigmoid", "Softsign"],
                            "activation_alpha": [0.25], "activation_beta": [0.45]}), 14),
    ("LSTM-bidi-activations", "LSTM",
     dict(direction="bidirectional", init=True,
          attrs={"activations": ["Sigmoid", "Tanh", "Tanh", "HardSigmoid", "Elu", "Softsign"],
                 "activation_alpha": [0.3, 0.9], "activation_beta": [0.4]}), 14),
    ("LSTM-only-Y_h", "LSTM", dict(init=True, outputs=["", "Y_h"]), 14),
    ("LSTM-only-Y_c-layout1", "LSTM", dict(init=True, layout=1, outputs=["", "", "Y_c"]), 14),
    ("GRU-only-Y", "GRU", dict(direction="bidirectional", outputs=["Y"]), 14),
]


def sluice_bin():
    path = os.environ.get("SLUICE_BIN") or shutil.which("sluice")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("set SLUICE_BIN to the sluice binary (ctest does)")
    return path


@pytest.mark.parametrize("cid,op,kw,opset", CASES, ids=[c[0] for c in CASES])
def test_rnn_matches_onnxruntime(tmp_path, cid, op, kw, opset):
    kw = dict(kw)
    layout = kw.pop("layout", 0)
    ins, outs, attrs = make_case(op, **kw)
    feeds0 = {n: v for n, v in ins if v is not None}
    out_names = [n for n in outs if n]
    if layout:
        attrs["layout"] = 1
    model = build(op, ins if not layout else [(n, None if v is None else to_layout1(n, v))
                                               for n, v in ins], outs, attrs, opset)
    try:
        want = ort_run(model, {n: to_layout1(n, v) if layout else v for n, v in feeds0.items()})
    except OrtFail:  # ORT without layout=1 ("not supported"): layout 0, transposed
        if not layout:
            raise
        attrs0 = dict(attrs)
        del attrs0["layout"]
        want = [to_layout1(n, v) for n, v in
                zip(out_names, ort_run(build(op, ins, outs, attrs0, opset), feeds0))]
    case = tmp_path / cid
    data = case / "test_data_set_0"
    data.mkdir(parents=True)
    (case / "model.onnx").write_bytes(model.SerializeToString())
    feeds = [(n, to_layout1(n, v) if layout else v) for n, v in ins if v is not None]
    for k, (n, v) in enumerate(feeds):
        (data / ("input_%d.pb" % k)).write_bytes(numpy_helper.from_array(v, n).SerializeToString())
    for k, (n, v) in enumerate(zip(out_names, want)):
        (data / ("output_%d.pb" % k)).write_bytes(numpy_helper.from_array(v, n).SerializeToString())
    r = subprocess.run([sluice_bin(), "conformance", "--rtol", RTOL, "--atol", ATOL, str(case)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and ("PASS %s" % cid) in r.stdout, r.stdout + r.stderr
