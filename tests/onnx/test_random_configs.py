"""Seeded random configurations against onnxruntime: convolutions and pools with random windows, and random chains of
order-dependent ops (Transpose, Reshape, Flatten, ReduceMean, Softmax, Concat, Pad, Squeeze, Unsqueeze) after a
convolution, which exercise the NCHW -> NHWC rewriting. A configuration mcuq refuses must be refused with a
ModelError naming what it does not support; every other one equals onnxruntime within 1e-5 relative."""

from __future__ import annotations

import numpy as np
import pytest

from mcuq.errors import ModelError  # noqa: E402
from mcuq.frontend.onnx import load  # noqa: E402
from tests.onnx.util import helper, mcuq_float, model, ort_run

REFUSALS = (
    "neither TFLite's SAME nor VALID",
    "mcuq's SOFTMAX works on the last axis",
    "ceil_mode=1",
    "is larger than the padded input",
)


def window_case(rng: np.random.Generator):
    one_d = rng.random() < 0.25
    c = int(rng.integers(1, 5))
    size = [int(rng.integers(3, 10))] * (1 if one_d else 2)
    if not one_d:
        size[1] = int(rng.integers(3, 10))
    k = [int(rng.integers(1, 4)) for _ in size]
    attrs = {"strides": [int(rng.integers(1, 3)) for _ in size]}
    if rng.random() < 0.3:
        attrs["auto_pad"] = str(rng.choice(["SAME_UPPER", "SAME_LOWER", "VALID"]))
    else:
        attrs["pads"] = [int(rng.integers(0, kk)) if kk > 1 else 0 for kk in k] * 2
        if rng.random() < 0.5:
            attrs["pads"] = [int(rng.integers(0, kk)) if kk > 1 else 0 for kk in k + k]
    kind = str(rng.choice(["Conv", "Conv", "MaxPool", "AveragePool"]))
    inits = {}
    ins = ["x"]
    if kind == "Conv":
        if rng.random() < 0.5:
            attrs["dilations"] = [int(rng.integers(1, 3)) for _ in size]
        group = c if rng.random() < 0.4 else 1
        out = c * int(rng.integers(1, 3)) if group > 1 else int(rng.integers(1, 5))
        inits = {"w": rng.normal(size=(out, c // group, *k)).astype(np.float32),
                 "b": rng.normal(size=out).astype(np.float32)}  # fmt: skip
        ins += ["w", "b"]
        attrs["group"] = group
    else:
        attrs["kernel_shape"] = k
        if kind == "AveragePool":
            attrs["count_include_pad"] = int(rng.integers(0, 2))
        if rng.random() < 0.2:
            attrs["ceil_mode"] = 1
    if attrs.get("auto_pad") in ("SAME_UPPER", "SAME_LOWER") and any(d > 1 for d in attrs.get("dilations", [])):
        del attrs["dilations"]
    node = helper.make_node(kind, ins, ["y"], **attrs)
    return model([node], [("x", [1, c, *size])], [("y", None)], inits), {"x": [1, c, *size]}


def chain_case(rng: np.random.Generator, one_d: bool = False):
    c, h, w = (int(rng.integers(1, 5)) for _ in range(3))
    h, w = h + 1, w + 1
    if one_d:  # a Conv1d model: NCW values stored as [N, 1, W, C]
        nodes = [helper.make_node("Conv", ["x", "w"], ["t0"], pads=[1, 1])]
        inits = {"w": rng.normal(size=(c, 2, 3)).astype(np.float32)}
        shape = [1, c, w]
    else:
        nodes = [helper.make_node("Conv", ["x", "w"], ["t0"], pads=[1, 1, 1, 1])]
        inits = {"w": rng.normal(size=(c, 2, 3, 3)).astype(np.float32)}
        shape = [1, c, h, w]
    cur = "t0"
    for i in range(int(rng.integers(1, 4))):
        out = f"t{i + 1}"
        op = str(rng.choice(["Transpose", "Reshape", "Flatten", "ReduceMean", "Softmax", "Concat", "Pad", "Unsqueeze",
                             "Squeeze", "Relu", "AddConst", "MulSelf", "BatchNormalization", "MatMul"]))  # fmt: skip
        r = len(shape)
        if op == "Transpose":
            perm = [int(p) for p in rng.permutation(r)]
            nodes.append(helper.make_node(op, [cur], [out], perm=perm))
            shape = [shape[p] for p in perm]
        elif op == "Reshape":
            n = int(np.prod(shape))
            divs = [d for d in range(1, n + 1) if n % d == 0]
            a = int(rng.choice(divs))
            new = [1, a, -1] if rng.random() < 0.5 else [a, n // a]
            inits[f"s{i}"] = np.array(new, np.int64)
            nodes.append(helper.make_node(op, [cur, f"s{i}"], [out]))
            shape = [1, a, n // a] if len(new) == 3 else [a, n // a]
        elif op == "Flatten":
            axis = int(rng.integers(0, r + 1))
            nodes.append(helper.make_node(op, [cur], [out], axis=axis))
            shape = [int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))]
        elif op == "ReduceMean":
            axes = sorted({int(a) for a in rng.integers(0, r, size=int(rng.integers(1, r + 1)))})
            keep = int(rng.integers(0, 2))
            if not keep and len(axes) == r:
                keep = 1
            nodes.append(helper.make_node(op, [cur], [out], axes=axes, keepdims=keep))
            shape = (
                [1 if i in axes else d for i, d in enumerate(shape)]
                if keep
                else [d for i, d in enumerate(shape) if i not in axes]
            )
        elif op == "Softmax":
            nodes.append(helper.make_node(op, [cur], [out], axis=int(rng.integers(-r, r))))
        elif op == "Concat":
            axis = int(rng.integers(0, r))
            nodes.append(helper.make_node(op, [cur, cur], [out], axis=axis))
            shape = [d * 2 if i == axis else d for i, d in enumerate(shape)]
        elif op == "Pad":
            p = [int(v) for v in rng.integers(0, 2, size=2 * r)]
            inits[f"p{i}"] = np.array(p, np.int64)
            nodes.append(helper.make_node(op, [cur, f"p{i}"], [out]))
            shape = [d + p[i] + p[i + r] for i, d in enumerate(shape)]
        elif op == "Unsqueeze":
            axis = int(rng.integers(0, r + 1))
            inits[f"a{i}"] = np.array([axis], np.int64)
            nodes.append(helper.make_node(op, [cur, f"a{i}"], [out]))
            shape = shape[:axis] + [1] + shape[axis:]
        elif op == "Squeeze":
            ones = [i for i, d in enumerate(shape) if d == 1]
            if not ones:
                op = "Relu"
            else:
                inits[f"a{i}"] = np.array([ones[0]], np.int64)
                nodes.append(helper.make_node(op, [cur, f"a{i}"], [out]))
                shape = shape[: ones[0]] + shape[ones[0] + 1 :]
        elif op == "AddConst":
            cshape = [d if rng.random() < 0.5 else 1 for d in shape][int(rng.integers(0, r)) :]
            inits[f"c{i}"] = rng.normal(size=cshape).astype(np.float32)
            nodes.append(helper.make_node("Add", [f"c{i}", cur] if rng.random() < 0.5 else [cur, f"c{i}"], [out]))
        elif op == "MulSelf":
            nodes.append(helper.make_node("Mul", [cur, cur], [out]))
        elif op == "BatchNormalization" and r >= 2:
            ch = shape[1]
            bn = [rng.normal(size=ch), rng.normal(size=ch), rng.normal(size=ch), np.abs(rng.normal(size=ch)) + 0.5]
            for nm, v in zip(("s", "b", "m", "v"), bn):
                inits[f"{nm}{i}"] = v.astype(np.float32)
            nodes.append(helper.make_node(op, [cur, f"s{i}", f"b{i}", f"m{i}", f"v{i}"], [out]))
        elif op == "MatMul" and r >= 2:
            k = int(rng.integers(1, 5))
            inits[f"m{i}"] = rng.normal(size=(shape[-1], k)).astype(np.float32)
            nodes.append(helper.make_node(op, [cur, f"m{i}"], [out]))
            shape = shape[:-1] + [k]
        else:
            op = "Relu"
        if op == "Relu":
            nodes.append(helper.make_node(op, [cur], [out]))
        cur = out
    nodes.append(helper.make_node("Identity", [cur], ["y"]))
    x_shape = [1, 2, w] if one_d else [1, 2, h, w]
    return model(nodes, [("x", x_shape)], [("y", None)], inits, opset=17), {"x": x_shape}


FAMILIES = {"window": (2024, window_case), "chain": (4048, chain_case),
            "chain1d": (4096, lambda rng: chain_case(rng, one_d=True))}  # fmt: skip


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_random_configs_match_onnxruntime(family):
    seed, make = FAMILIES[family]
    rng = np.random.default_rng(seed)
    checked = refused = 0
    for _ in range(60):
        data, shapes = make(rng)
        try:
            g = load(data)
        except ModelError as e:
            assert any(r in str(e) for r in REFUSALS), str(e)
            refused += 1
            continue
        feeds = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
        try:
            want = ort_run(data, feeds)[0]
        except Exception as e:  # onnxruntime refuses some auto_pad windows (negative computed pads)
            assert "padding values must be non-negative" in str(e), str(e)
            continue
        got = mcuq_float(g, feeds)[0]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max() + 1e-30))
        checked += 1
    assert checked >= 40, (checked, refused)
