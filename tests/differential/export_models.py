#!/usr/bin/env python3
"""Export the small PyTorch models of the differential test (sluice vs ONNX Runtime).

Each model is exported with a dynamic batch axis at every opset in OPSETS that
the installed torch supports, with seeded weights, as
OUT/<model>_op<opset>.onnx; inputs() gives seeded random inputs of a batch
size. The files are small (< 200 KB) and never committed: the test writes them
into a temporary folder.

Usage: export_models.py OUT_DIR   (run with the project venv's python, which
sees Debian's torch)
"""
import argparse
import os
import sys

import numpy as np
import torch
from torch import nn

OPSETS = (11, 13, 17)


class Mlp(nn.Module):
    """Linear -> BatchNorm1d -> GELU (exported as Erf) -> Linear."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.bn = nn.BatchNorm1d(64)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(self.act(self.bn(self.fc1(x))))


def dw_block(cin, cout):
    """Depthwise 3x3 + pointwise 1x1 (MobileNet block), BN and ReLU6."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU6(),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class Cnn(nn.Module):
    """Odd-sized images so that ceil_mode pooling produces partial windows."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.pool1 = nn.MaxPool2d(2, ceil_mode=True)
        self.block1 = dw_block(8, 16)
        self.pool2 = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.block2 = dw_block(16, 24)
        self.head = nn.Linear(24, 10)

    def forward(self, x):
        x = self.pool1(self.stem(x))
        x = self.pool2(self.block1(x))
        x = self.block2(x)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.head(x)


class Lstm(nn.Module):
    """Bidirectional 2-layer batch-first LSTM; output sequence and final states."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(16, 24, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(48, 5)

    def forward(self, x):
        y, (h, c) = self.rnn(x)
        return self.fc(y), h, c


class Gru(nn.Module):
    """Batch-first GRU (torch exports linear_before_reset=1)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(16, 20, batch_first=True)
        self.fc = nn.Linear(20, 5)

    def forward(self, x):
        y, h = self.rnn(x)
        return self.fc(y[:, -1]), h


class Transformer(nn.Module):
    """One post-norm TransformerEncoderLayer (batch first) with a GELU feed-forward."""

    def __init__(self):
        super().__init__()
        self.enc = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64,
                                              dropout=0.0, batch_first=True, activation="gelu")
        self.fc = nn.Linear(32, 4)

    def forward(self, x):
        return self.fc(self.enc(x))


class Bag(nn.Module):
    """EmbeddingBag (mean) over fixed-length bags, then a linear layer."""

    def __init__(self):
        super().__init__()
        self.bag = nn.EmbeddingBag(100, 16, mode="mean")
        self.fc = nn.Linear(16, 3)

    def forward(self, idx):
        return self.fc(self.bag(idx))


# name -> (constructor, input specs: (name, shape after the batch axis, dtype))
MODELS = {
    "mlp": (Mlp, [("x", (32,), "float32")]),
    "cnn": (Cnn, [("x", (3, 15, 15), "float32")]),
    "lstm": (Lstm, [("x", (7, 16), "float32")]),
    "gru": (Gru, [("x", (9, 16), "float32")]),
    "transformer": (Transformer, [("x", (6, 32), "float32")]),
    "embedding_bag": (Bag, [("idx", (5,), "int64")]),
}


def build(name):
    """The model with seeded weights and non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(1234)
    model = MODELS[name][0]()
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n) * 0.1)
            m.running_var.copy_(torch.rand(n) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(n) + 0.5)
            m.bias.data.copy_(torch.randn(n) * 0.1)
    return model.eval()


def inputs(name, batch, seed=0):
    """Seeded random inputs of batch size \\p batch, as {input name: ndarray}."""
    rng = np.random.default_rng(seed * 1000 + batch)
    out = {}
    for iname, shape, dtype in MODELS[name][1]:
        if dtype == "int64":
            out[iname] = rng.integers(0, 100, size=(batch,) + shape, dtype=np.int64)
        else:
            out[iname] = rng.standard_normal((batch,) + shape).astype(np.float32)
    return out


def output_names(name, model, example):
    with torch.no_grad():
        y = model(*example)
    n = len(y) if isinstance(y, tuple) else 1
    return ["y"] if n == 1 else ["y%d" % i for i in range(n)]


def export(name, opset, out_dir):
    """Export one model; returns the path."""
    model = build(name)
    example = tuple(torch.from_numpy(v) for v in inputs(name, 2).values())
    in_names = [s[0] for s in MODELS[name][1]]
    out_names = output_names(name, model, example)
    axes = {n: {0: "batch"} for n in in_names}
    for n in out_names:
        # Final RNN states are [num_directions * layers, batch, hidden].
        axes[n] = {1: "batch"} if name in ("lstm", "gru") and n != "y0" else {0: "batch"}
    path = os.path.join(out_dir, "%s_op%d.onnx" % (name, opset))
    # Not under no_grad: with gradients enabled torch 1.13 keeps
    # MultiheadAttention off its fused path (aten::_native_multi_head_attention),
    # which has no ONNX export.
    torch.onnx.export(model, example, path, input_names=in_names, output_names=out_names,
                      dynamic_axes=axes, opset_version=opset, do_constant_folding=True)
    return path


def supported_opsets():
    from torch.onnx import _constants
    top = getattr(_constants, "ONNX_MAX_OPSET", None) or getattr(_constants, "onnx_main_opset", 17)
    return [o for o in OPSETS if o <= top]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--only", help="comma-separated model names")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    names = args.only.split(",") if args.only else list(MODELS)
    for name in names:
        for opset in supported_opsets():
            p = export(name, opset, args.out_dir)
            print("%s %d bytes" % (p, os.path.getsize(p)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
