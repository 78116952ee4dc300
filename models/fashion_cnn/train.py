#!/usr/bin/python3
"""Train a small CNN on Fashion-MNIST and export it to ONNX (opset 13).

Run from the repository root with Debian's Python:
    /usr/bin/python3 models/fashion_cnn/train.py

Data: Debian package dataset-fashion-mnist (gzipped IDX files under
/usr/share/datasets/fashion-mnist). Input to the exported model is float32
[N,1,28,28] with pixel values x/255.0 (no mean/std normalisation); output is
"probabilities" [N,10] (softmax is part of the exported graph).

Writes, next to this script:
    1/model.onnx   the exported model
    metrics.json   measured test accuracy and training settings
"""
import argparse
import gzip
import json
import os
import platform
import random
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = "/usr/share/datasets/fashion-mnist"
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path):
    """Read a (gzipped) IDX file into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError("%s: unsupported IDX header" % path)
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError("%s: size mismatch" % path)
    return arr.reshape(dims)


def load_split(name):
    images = read_idx(os.path.join(DATA_DIR, "%s-images-idx3-ubyte.gz" % name))
    labels = read_idx(os.path.join(DATA_DIR, "%s-labels-idx1-ubyte.gz" % name))
    assert images.shape[0] == labels.shape[0]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


class FashionCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):  # returns logits
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = torch.flatten(x, 1)
        x = self.drop(F.relu(self.fc1(x)))
        return self.fc2(x)


class WithSoftmax(nn.Module):
    """Export wrapper: the ONNX output is class probabilities."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image):
        return F.softmax(self.net(image), dim=1)


@torch.no_grad()
def accuracy(model, x, y, batch=1000):
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch):
        out = model(x[i:i + batch])
        correct += int((out.argmax(1) == y[i:i + batch]).sum())
    return correct / x.shape[0]


# --- minimal protobuf wire-format reader (no onnx/protobuf package needed) ---
def _varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf):
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 1:
            val, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            val, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            val, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield field, val


def inspect_onnx(path):
    """Return opsets, node op types, input/output names from an ONNX file."""
    with open(path, "rb") as f:
        buf = f.read()
    info = {"opset_import": {}, "ops": [], "inputs": [], "outputs": [],
            "initializers": 0}
    for field, val in _fields(buf):
        if field == 8:  # ModelProto.opset_import
            dom, ver = "", None
            for f2, v2 in _fields(val):
                if f2 == 1:
                    dom = v2.decode()
                elif f2 == 2:
                    ver = v2
            info["opset_import"][dom or "ai.onnx"] = ver
        elif field == 7:  # ModelProto.graph
            for f2, v2 in _fields(val):
                if f2 == 1:  # GraphProto.node
                    for f3, v3 in _fields(v2):
                        if f3 == 4:  # NodeProto.op_type
                            info["ops"].append(v3.decode())
                elif f2 == 5:
                    info["initializers"] += 1
                elif f2 in (11, 12):  # input / output ValueInfoProto
                    name = next(v3.decode() for f3, v3 in _fields(v2) if f3 == 1)
                    info["inputs" if f2 == 11 else "outputs"].append(name)
    return info


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False

    x_train, y_train = load_split("train")
    x_test, y_test = load_split("t10k")
    print("train %s test %s" % (tuple(x_train.shape), tuple(x_test.shape)))

    model = FashionCNN()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    gen = torch.Generator().manual_seed(args.seed)
    n = x_train.shape[0]
    history = []
    t0 = time.time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total_loss = 0.0
        for i in range(0, n, args.batch_size):
            idx = perm[i:i + args.batch_size]
            opt.zero_grad()
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            total_loss += float(loss) * idx.shape[0]
        sched.step()
        acc = accuracy(model, x_test, y_test)
        history.append({"epoch": epoch, "train_loss": round(total_loss / n, 5),
                        "test_accuracy": acc,
                        "elapsed_s": round(time.time() - t0, 1)})
        print("epoch %d loss %.4f test_acc %.4f (%.0fs)" % (
            epoch, total_loss / n, acc, time.time() - t0), flush=True)
    train_time = time.time() - t0

    model.eval()
    export_model = WithSoftmax(model).eval()
    test_acc = accuracy(export_model, x_test, y_test)
    train_acc = accuracy(export_model, x_train, y_train)
    print("final test accuracy %.4f (train %.4f), train time %.1fs"
          % (test_acc, train_acc, train_time))

    onnx_path = os.path.join(HERE, "1", "model.onnx")
    os.makedirs(os.path.dirname(onnx_path), exist_ok=True)
    torch.onnx.export(
        export_model, torch.zeros(1, 1, 28, 28), onnx_path,
        export_params=True, opset_version=13, do_constant_folding=True,
        input_names=["image"], output_names=["probabilities"],
        dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"}})
    size = os.path.getsize(onnx_path)
    info = inspect_onnx(onnx_path)
    op_counts = {}
    for op in info["ops"]:
        op_counts[op] = op_counts.get(op, 0) + 1
    print("onnx: %s, %d bytes, opsets %s" % (onnx_path, size, info["opset_import"]))
    print("onnx nodes (in order): %s" % " ".join(info["ops"]))
    print("onnx inputs %s outputs %s" % (info["inputs"], info["outputs"]))
    if size >= 2 * 1024 * 1024:
        sys.exit("model.onnx is %d bytes, exceeds 2 MB" % size)

    # Reference outputs for the first test images (useful for engine checks).
    with torch.no_grad():
        ref = export_model(x_test[:4])
    metrics = {
        "model": "fashion_cnn",
        "test_accuracy": round(test_acc, 4),
        "train_accuracy": round(train_acc, 4),
        "test_samples": int(x_test.shape[0]),
        "train_samples": int(n),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "optimizer": "Adam",
        "lr": args.lr,
        "lr_schedule": "cosine annealing over epochs",
        "dropout": 0.3,
        "seed": args.seed,
        "threads": args.threads,
        "train_time_s": round(train_time, 1),
        "history": history,
        "input": {"name": "image", "dtype": "float32",
                  "shape": ["batch", 1, 28, 28], "preprocessing": "pixel / 255.0"},
        "output": {"name": "probabilities", "dtype": "float32",
                   "shape": ["batch", 10]},
        "onnx_opset": info["opset_import"].get("ai.onnx"),
        "onnx_ops": sorted(op_counts),
        "onnx_op_counts": op_counts,
        "onnx_bytes": size,
        "data": DATA_DIR + " (Debian dataset-fashion-mnist)",
        "reference": {
            "test_labels_first4": [int(v) for v in y_test[:4]],
            "test_argmax_first4": [int(v) for v in ref.argmax(1)],
            "test_probabilities_first4": [[round(float(p), 6) for p in row]
                                          for row in ref],
        },
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
    }
    with open(os.path.join(HERE, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")
    print("wrote metrics.json")


if __name__ == "__main__":
    main()
