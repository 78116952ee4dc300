#!/usr/bin/python3
"""Check 1/model.onnx without onnxruntime: parse the protobuf by hand, run the
graph (Conv/Relu/MaxPool/Flatten/Gemm/Softmax only) in numpy over the test
split, and compare with the PyTorch reference in metrics.json.

    /usr/bin/python3 models/fashion_cnn/check_onnx.py
"""
import sys, struct, numpy as np
import os
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import train as T
buf = open(os.path.join(HERE, "1", "model.onnx"), "rb").read()
def F(b): return list(T._fields(b))
graph = next(v for f, v in F(buf) if f == 7)
nodes, inits, ios = [], {}, []
for f, v in F(graph):
    if f == 1:
        n = {"in": [], "out": [], "attr": {}}
        for f2, v2 in F(v):
            if f2 == 1: n["in"].append(v2.decode())
            elif f2 == 2: n["out"].append(v2.decode())
            elif f2 == 4: n["op"] = v2.decode()
            elif f2 == 5:
                name, val, ints = None, None, []
                for f3, v3 in F(v2):
                    if f3 == 1: name = v3.decode()
                    elif f3 == 2: val = struct.unpack("<f", v3)[0]
                    elif f3 == 3: val = v3
                    elif f3 == 8:
                        if isinstance(v3, int): ints.append(v3)
                        else:
                            p = 0
                            while p < len(v3):
                                x, p = T._varint(v3, p); ints.append(x)
                n["attr"][name] = ints if ints else val
        nodes.append(n)
    elif f == 5:
        dims, dt, name, raw = [], None, None, None
        for f2, v2 in F(v):
            if f2 == 1: dims.append(v2)
            elif f2 == 2: dt = v2
            elif f2 == 8: name = v2.decode()
            elif f2 == 9: raw = v2
        assert dt == 1
        inits[name] = np.frombuffer(raw, "<f4").reshape(dims)
    elif f in (11, 12):
        name = None; shape = []
        for f2, v2 in F(v):
            if f2 == 1: name = v2.decode()
            if f2 == 2:  # TypeProto
                tt = next(v3 for f3, v3 in F(v2) if f3 == 1)
                elem = None
                for f4, v4 in F(tt):
                    if f4 == 1: elem = v4
                    if f4 == 2:
                        for f5, v5 in F(v4):
                            d = dict(F(v5)); shape.append(d.get(1, d.get(2, b"?").decode() if 2 in d else "?"))
        ios.append(("input" if f == 11 else "output", name, elem, shape))
print(ios)
for n in nodes: print(n["op"], n["in"], n["out"], n["attr"])
def conv(x, w, b, pads):
    N, C, H, W = x.shape; O, _, kh, kw = w.shape
    xp = np.pad(x, ((0,0),(0,0),(pads[0],pads[2]),(pads[1],pads[3])))
    cols = np.stack([xp[:, :, i:i+H, j:j+W] for i in range(kh) for j in range(kw)], 2)  # N,C,k,H,W
    return np.einsum("nckhw,ock->nohw", cols, w.reshape(O, C, kh*kw)) + b[None,:,None,None]
def run(x):
    env = {"image": x, **inits}
    for n in nodes:
        a = [env[i] for i in n["in"]]; op = n["op"]
        if op == "Conv": y = conv(a[0], a[1], a[2], n["attr"]["pads"])
        elif op == "Relu": y = np.maximum(a[0], 0)
        elif op == "MaxPool":
            N, C, H, W = a[0].shape; y = a[0].reshape(N, C, H//2, 2, W//2, 2).max((3, 5))
        elif op == "Flatten": y = a[0].reshape(a[0].shape[0], -1)
        elif op == "Gemm":
            B = a[1].T if n["attr"].get("transB") else a[1]; y = a[0] @ B + a[2]
        elif op == "Softmax":
            e = np.exp(a[0] - a[0].max(1, keepdims=True)); y = e / e.sum(1, keepdims=True)
        env[n["out"][0]] = y.astype(np.float32)
    return env["probabilities"]
x, y = T.load_split("t10k")
x = x.numpy(); y = y.numpy()
correct = 0; out4 = None
for i in range(0, 10000, 500):
    p = run(x[i:i+500]); correct += (p.argmax(1) == y[i:i+500]).sum()
    if i == 0: out4 = p[:4]
print("numpy-ONNX test accuracy", correct / 10000)
import json
m = json.load(open(os.path.join(HERE, "metrics.json")))
print("max abs diff vs torch ref", np.abs(out4 - np.array(m["reference"]["test_probabilities_first4"])).max())
