"""Train mcuq's bundled demo model: a small CNN for scikit-learn's 8x8 digits, exported as an int8 .tflite.

Everything is numpy: the forward and backward passes, Adam, and a small post-training quantization
(calibration on the training set, asymmetric int8 activations, symmetric per-channel int8 conv weights,
per-tensor int8 fully-connected weights, int32 biases). The int8 model is built as an ``mcuq.ir.Graph`` and
serialised with ``mcuq.frontend.tflite_writer.write``. Run from the repository root:

    .venv/bin/python examples/train_digits.py

Writes examples/digits_cnn.tflite and examples/digits_test.npz (int8 test inputs, labels) and, when
tflite-runtime is installed, prints the int8 accuracy measured with TFLite's reference kernels. Two runs on
the same machine give byte-identical files (fixed seed, fixed split, no timestamps).

Network (NHWC, float):
    input 1x8x8x1 (pixel / 16)
    CONV_2D 3x3x8, SAME, ReLU            -> 8x8x8
    CONV_2D 3x3x16, stride 2, SAME, ReLU -> 4x4x16   (h2)
    DEPTHWISE_CONV_2D 3x3, SAME, ReLU    -> 4x4x16   (h3)
    ADD h2 + h3                          -> 4x4x16
    AVERAGE_POOL_2D 2x2, stride 2        -> 2x2x16
    RESHAPE                              -> 64
    FULLY_CONNECTED 10, SOFTMAX          -> 10
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

SEED = 0
N_TEST = 360
EPOCHS = 40
BATCH = 32


# ---------------------------------------------------------------------------------------------- float layers
def same_pads(size: int, k: int, stride: int) -> tuple[int, int, int]:
    """TFLite's SAME padding: (output size, pad before, pad after)."""
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + k - size, 0)
    return out, total // 2, total - total // 2


def im2col(x: np.ndarray, k: int, stride: int) -> np.ndarray:
    """[B,H,W,C] -> [B,OH,OW,k,k,C] patches with SAME padding."""
    b, h, w, c = x.shape
    oh, pt, pb = same_pads(h, k, stride)
    ow, pl, pr = same_pads(w, k, stride)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    cols = np.empty((b, oh, ow, k, k, c), x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, :, i, j, :] = xp[:, i : i + stride * oh : stride, j : j + stride * ow : stride, :]
    return cols


def col2im(dcols: np.ndarray, shape: tuple[int, ...], stride: int) -> np.ndarray:
    """Adjoint of im2col."""
    b, h, w, c = shape
    k = dcols.shape[3]
    oh, pt, pb = same_pads(h, k, stride)
    ow, pl, pr = same_pads(w, k, stride)
    dxp = np.zeros((b, h + pt + pb, w + pl + pr, c), dcols.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, i : i + stride * oh : stride, j : j + stride * ow : stride, :] += dcols[:, :, :, i, j, :]
    return dxp[:, pt : pt + h, pl : pl + w, :]


def init_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    def he(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)

    return {
        "w1": he((8, 3, 3, 1), 9), "b1": np.zeros(8),  # OHWI
        "w2": he((16, 3, 3, 8), 72), "b2": np.zeros(16),
        "w3": he((1, 3, 3, 16), 9), "b3": np.zeros(16),  # 1HWC
        "w4": he((10, 64), 64), "b4": np.zeros(10),  # [out, in]
    }  # fmt: skip


def forward(p: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    """Every intermediate activation (named as in the int8 graph) plus what backward needs."""
    b = x.shape[0]
    c1 = im2col(x, 3, 1)
    h1 = np.maximum(c1.reshape(b * 64, 9) @ p["w1"].reshape(8, 9).T + p["b1"], 0).reshape(b, 8, 8, 8)
    c2 = im2col(h1, 3, 2)
    h2 = np.maximum(c2.reshape(b * 16, 72) @ p["w2"].reshape(16, 72).T + p["b2"], 0).reshape(b, 4, 4, 16)
    c3 = im2col(h2, 3, 1)
    h3 = np.maximum(np.einsum("bhwijc,ijc->bhwc", c3, p["w3"][0]) + p["b3"], 0)
    h4 = h2 + h3
    h5 = h4.reshape(b, 2, 2, 2, 2, 16).mean(axis=(2, 4))
    flat = h5.reshape(b, 64)
    logits = flat @ p["w4"].T + p["b4"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    return dict(input=x, c1=c1, conv1=h1, c2=c2, conv2=h2, c3=c3, dwconv=h3, add=h4, pool=h5, flat=flat,
                logits=logits, probs=probs)  # fmt: skip


def backward(p: dict[str, np.ndarray], f: dict[str, np.ndarray], y: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of the mean cross-entropy."""
    b = y.shape[0]
    g: dict[str, np.ndarray] = {}
    dlogits = f["probs"].copy()
    dlogits[np.arange(b), y] -= 1.0
    dlogits /= b
    g["w4"] = dlogits.T @ f["flat"]
    g["b4"] = dlogits.sum(axis=0)
    dh5 = (dlogits @ p["w4"]).reshape(b, 2, 1, 2, 1, 16)
    dh4 = np.broadcast_to(dh5 / 4.0, (b, 2, 2, 2, 2, 16)).reshape(b, 4, 4, 16)
    dz3 = dh4 * (f["dwconv"] > 0)
    g["w3"] = np.einsum("bhwc,bhwijc->ijc", dz3, f["c3"])[None]
    g["b3"] = dz3.sum(axis=(0, 1, 2))
    dh2 = dh4 + col2im(np.einsum("bhwc,ijc->bhwijc", dz3, p["w3"][0]), f["conv2"].shape, 1)
    dz2 = (dh2 * (f["conv2"] > 0)).reshape(b * 16, 16)
    g["w2"] = (dz2.T @ f["c2"].reshape(b * 16, 72)).reshape(p["w2"].shape)
    g["b2"] = dz2.sum(axis=0)
    dh1 = col2im((dz2 @ p["w2"].reshape(16, 72)).reshape(f["c2"].shape), f["conv1"].shape, 2)
    dz1 = (dh1 * (f["conv1"] > 0)).reshape(b * 64, 8)
    g["w1"] = (dz1.T @ f["c1"].reshape(b * 64, 9)).reshape(p["w1"].shape)
    g["b1"] = dz1.sum(axis=0)
    return g


def train(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """This network's parameters after ``EPOCHS`` of ``adam``."""
    return adam(init_params(rng), lambda p, xb, yb: backward(p, forward(p, xb), yb), x, y, rng, EPOCHS)


Grads = Callable[[dict[str, np.ndarray], np.ndarray, np.ndarray], dict[str, np.ndarray]]


def adam(
    p: dict[str, np.ndarray], grads_of: Grads, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, epochs: int
) -> dict[str, np.ndarray]:
    """Adam with a cosine-decayed learning rate and a little weight decay (on the parameters named "w...").

    ``grads_of(p, x_batch, y_batch)`` gives the loss gradients of a network's parameters ``p``; the batches come
    from ``rng`` (one permutation per epoch). Shared with tests/util/digits_float.py, which trains another net."""
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    steps_per_epoch = (len(x) + BATCH - 1) // BATCH
    total, t = epochs * steps_per_epoch, 0
    b1, b2, eps, wd = 0.9, 0.999, 1e-8, 1e-4
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in range(steps_per_epoch):
            idx = order[s * BATCH : (s + 1) * BATCH]
            grads = grads_of(p, x[idx], y[idx])
            t += 1
            lr = 0.5 * 0.01 * (1.0 + np.cos(np.pi * (t - 1) / total))
            for k in p:
                gk = grads[k] + (wd * p[k] if k[0] == "w" else 0.0)
                m[k] = b1 * m[k] + (1 - b1) * gk
                v[k] = b2 * v[k] + (1 - b2) * gk * gk
                p[k] = p[k] - lr * (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + eps)
    return p


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits (bundled, no download), a fixed shuffle, the last N_TEST images as the test set."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float64) / 16.0)[..., None]  # [N, 8, 8, 1] in [0, 1]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(x))
    x, y = x[order], y[order]
    return x[:-N_TEST], y[:-N_TEST], x[-N_TEST:], y[-N_TEST:]


# ---------------------------------------------------------------------------------------------- quantization
def act_qparams(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric int8 (scale, zero point) for the range [lo, hi] widened to include 0; scale is a float32."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = np.float32((hi - lo) / 255.0)
    zp = int(np.clip(np.round(-128.0 - lo / float(scale)), -128, 127))
    return float(scale), zp


def quantize_weights(w: np.ndarray, b: np.ndarray, s_in: float, axis: int | None) -> tuple[np.ndarray, ...]:
    """Symmetric int8 weights (zero point 0) and int32 bias (scale s_in * s_w, zero point 0).

    Per channel along ``axis``, or per tensor when ``axis`` is None. A weight scale is raised where needed so
    that the quantized bias stays within about +-2^23 (a channel whose weights decayed to ~0 would otherwise need a
    huge bias; TFLite's quantizer makes the same adjustment).
    """
    red = tuple(i for i in range(w.ndim) if i != axis) if axis is not None else None
    amax = np.max(np.abs(w), axis=red).reshape(-1)
    bmax = np.abs(b) if axis is not None else np.max(np.abs(b), keepdims=True)
    s_w = np.maximum(np.maximum(amax, 1e-12) / 127.0, bmax / (s_in * 2.0**23)).astype(np.float32)
    shape = [1] * w.ndim
    if axis is not None:
        shape[axis] = -1
    wq = np.clip(np.round(w / s_w.astype(np.float64).reshape(shape)), -127, 127).astype(np.int8)
    s_b = (np.float32(s_in) * s_w).astype(np.float32)
    bq = np.round(b / s_b.astype(np.float64))
    assert np.all(np.abs(bq) <= 2**24), "bias does not fit"
    return wq, s_w, bq.astype(np.int32), s_b


def build_graph(p: dict[str, np.ndarray], ranges: dict[str, tuple[float, float]]):
    """The int8 ``ir.Graph``: one tensor per activation (qparams from ``ranges``), quantized constants."""
    from mcuq import ir

    tensors: dict[str, ir.Tensor] = {}
    qp: dict[str, tuple[float, int]] = {}

    def act(name: str, shape: tuple[int, ...], q: tuple[float, int]) -> str:
        qp[name] = q
        tensors[name] = ir.Tensor(name, shape, ir.DType.INT8, ir.QParams((q[0],), (q[1],)))
        return name

    def const(name: str, data: np.ndarray, dtype: ir.DType, scale: np.ndarray, axis: int) -> str:
        data = np.ascontiguousarray(data)
        data.flags.writeable = False
        zps = (0,) * len(scale)
        qparams = ir.QParams(tuple(float(s) for s in scale), zps, axis if len(scale) > 1 else 0)
        tensors[name] = ir.Tensor(name, tuple(data.shape), dtype, qparams, data)
        return name

    def weights(layer: str, w: np.ndarray, b: np.ndarray, x: str, axis: int | None) -> tuple[str, str]:
        wq, sw, bq, sb = quantize_weights(w, b, qp[x][0], axis)
        return (const(f"{layer}/weights", wq, ir.DType.INT8, sw, axis or 0),
                const(f"{layer}/bias", bq, ir.DType.INT32, sb, 0))  # fmt: skip

    relu, same = ir.Activation.RELU, ir.Padding.SAME
    x = act("input", (1, 8, 8, 1), act_qparams(0.0, 1.0))
    ops: list[ir.Op] = []

    def op(kind: ir.OpKind, name: str, inputs: tuple[str, ...], attrs: ir.Attrs) -> None:
        ops.append(ir.Op(kind, name, inputs, (name,), attrs, index=len(ops)))

    w, b = weights("conv1", p["w1"], p["b1"], x, 0)
    op(ir.OpKind.CONV2D, act("conv1", (1, 8, 8, 8), act_qparams(*ranges["conv1"])), (x, w, b),
       ir.Conv2DAttrs(same, activation=relu))  # fmt: skip
    w, b = weights("conv2", p["w2"], p["b2"], "conv1", 0)
    op(ir.OpKind.CONV2D, act("conv2", (1, 4, 4, 16), act_qparams(*ranges["conv2"])), ("conv1", w, b),
       ir.Conv2DAttrs(same, stride_h=2, stride_w=2, activation=relu))  # fmt: skip
    w, b = weights("dwconv", p["w3"], p["b3"], "conv2", 3)
    op(ir.OpKind.DEPTHWISE_CONV2D, act("dwconv", (1, 4, 4, 16), act_qparams(*ranges["dwconv"])), ("conv2", w, b),
       ir.DepthwiseConv2DAttrs(same, activation=relu))  # fmt: skip
    op(ir.OpKind.ADD, act("add", (1, 4, 4, 16), act_qparams(*ranges["add"])), ("conv2", "dwconv"), ir.BinaryAttrs())
    op(ir.OpKind.AVG_POOL2D, act("pool", (1, 2, 2, 16), qp["add"]), ("add",),
       ir.Pool2DAttrs(ir.Padding.VALID, 2, 2, 2, 2))  # fmt: skip
    op(ir.OpKind.RESHAPE, act("flat", (1, 64), qp["pool"]), ("pool",), ir.ReshapeAttrs())
    w, b = weights("logits", p["w4"], p["b4"], "flat", None)
    op(ir.OpKind.FULLY_CONNECTED, act("logits", (1, 10), act_qparams(*ranges["logits"])), ("flat", w, b),
       ir.FullyConnectedAttrs())  # fmt: skip
    op(ir.OpKind.SOFTMAX, act("probs", (1, 10), (1.0 / 256.0, -128)), ("logits",), ir.SoftmaxAttrs(1.0))
    g = ir.Graph("digits_cnn", tensors, tuple(ops), ("input",), ("probs",))
    ir.verify(g)
    return g


def quantize_input(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """np.savez with fixed zip timestamps, so that the file is byte-identical from run to run."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def oracle_accuracy(model: bytes | Path, xq: np.ndarray, y: np.ndarray) -> float | None:
    """Top-1 accuracy of the int8 model under tflite-runtime's reference kernels (None without it)."""
    from tests.util import oracle

    if not oracle.available():
        return None
    res = oracle.run(model, [[xi[None]] for xi in xq])
    pred = np.array([int(np.argmax(r["outputs"][0])) for r in res])
    return float(np.mean(pred == y))


def build(out_dir: Path) -> tuple[bytes, np.ndarray, np.ndarray, float]:
    """Train, quantize and write ``digits_cnn.tflite`` and ``digits_test.npz`` into ``out_dir``.

    Returns the model bytes, the int8 test inputs, the test labels and the float model's test accuracy.
    """
    from mcuq.frontend.tflite_writer import write

    rng = np.random.default_rng(SEED)
    x_tr, y_tr, x_te, y_te = load_data()
    p = train(x_tr, y_tr, rng)
    acc_float = float(np.mean(np.argmax(forward(p, x_te)["logits"], axis=1) == y_te))

    calib = forward(p, x_tr)
    ranges = {k: (float(calib[k].min()), float(calib[k].max())) for k in ("conv1", "conv2", "dwconv", "add", "logits")}
    g = build_graph(p, ranges)
    model = write(g)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "digits_cnn.tflite").write_bytes(model)
    qin = g.tensors["input"]
    xq = quantize_input(x_te, qin.scale, qin.zero_point)
    save_npz(out_dir / "digits_test.npz", x=xq, y=y_te.astype(np.uint8))
    return model, xq, y_te, acc_float


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=HERE, help="where to write the files (default: examples/)")
    args = ap.parse_args(argv)
    model, xq, y, acc_float = build(args.out_dir)
    print(f"wrote digits_cnn.tflite ({len(model)} bytes) and digits_test.npz ({len(y)} images) to {args.out_dir}")
    print(f"float test accuracy: {acc_float:.4f}")
    acc_int8 = oracle_accuracy(model, xq, y)
    if acc_int8 is None:
        print("int8 test accuracy: not measured (tflite-runtime is not installed)")
        return 0
    print(f"int8 test accuracy (tflite-runtime 2.14, BUILTIN_REF): {acc_int8:.4f}")
    if abs(acc_int8 - acc_float) > 0.02:
        print("warning: int8 accuracy differs from float by more than 2 points")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
