"""Weight rounding at low bit widths, weights only: round-to-nearest, MSE scales, GPTQ and AdaRound.

Usage: python benchmarks/rounding_eval.py [--models digits,ad] [--bits 4,2,1] [--adaround-iters N] [--no-search]

Fake quantization of the weights alone (activations stay float): each CONV2D, DEPTHWISE_CONV2D and FULLY_CONNECTED
layer of the float graph (after FLOAT_PIPELINE) gets per-channel symmetric weights at the given width, chosen from
the float model's own inputs to that layer on the calibration samples (layer-wise, not sequential), and the graph
runs in float64 with the dequantized weights on the test samples. Methods (mcuq/quant/rounding.py):

- nearest: scales max|w| / qmax, round to nearest (the int8 rule at a narrower width);
- mse: ``choose_scales`` (clip ratio per channel minimising the squared weight error), round to nearest;
- mse-h: ``choose_scales`` weighted by the Hessian diagonal, round to nearest;
- gptq / adaround: mse-h scales, then GPTQ (``gptq``, depthwise ``gptq_grouped``) or AdaRound.

Models and data as `make bench-ptq` makes them (benchmarks/ptq_data.py): digits (tests/util/digits_float.py's CNN,
trained here in seconds; 100 calibration images, accuracy on the 360 held-out ones) and MLPerf Tiny's AD01 (windows
0-99 calibrate, SQNR of the output on windows 100-195). For AD, an exhaustive search over per-layer widths {8, 4, 2}
under 60 % of the all-int8 weight bytes gives the best mix for each method (the issue's target: 36.1 dB).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import ptq_data  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from mcuq.frontend import load  # noqa: E402
from mcuq.ir import Graph, OpKind  # noqa: E402
from mcuq.passes import FLOAT_PIPELINE, run_passes  # noqa: E402
from mcuq.quant import rounding as R  # noqa: E402
from mcuq.quant.batch import BatchRunner  # noqa: E402

MODELS = Path(os.environ.get("MCUQ_MODELS", ROOT.parent / "shared" / "models"))
WEIGHTED = (OpKind.CONV2D, OpKind.DEPTHWISE_CONV2D, OpKind.FULLY_CONNECTED)
METHODS = ("nearest", "mse", "mse-h", "gptq", "gptq-s", "adaround", "best")


@dataclass
class Layer:
    """One weighted op: its weights as rows [out, k] and the Hessian of its float inputs on the calibration set."""

    name: str
    kind: OpKind
    w_name: str
    w_shape: tuple[int, ...]
    w: np.ndarray  # [out, k]
    h: np.ndarray  # [k, k], or [out, k, k] for depthwise

    def to_tensor(self, rows: np.ndarray) -> np.ndarray:
        if self.kind is OpKind.DEPTHWISE_CONV2D:
            return rows.T.reshape(self.w_shape)
        return rows.reshape(self.w_shape)

    @property
    def h_diag(self) -> np.ndarray:
        return np.diagonal(self.h, axis1=-2, axis2=-1)


def run(g: Graph, xs: np.ndarray, weights: dict[str, np.ndarray] | None = None, keep: bool = False):
    """The float graph on all samples at once (float64 kernels), weights replaced by ``weights`` (by tensor name).
    Returns the output, or with ``keep`` every activation."""
    tensors = dict(g.tensors)
    for name, w in (weights or {}).items():
        tensors[name] = replace(tensors[name], data=w.astype(np.float32))
    runner = BatchRunner(g, len(xs))
    env = {g.inputs[0]: xs.astype(np.float32)}
    for op in g.ops:
        env[op.outputs[0]] = runner.float_op(op, tensors, env)
    return env if keep else env[g.outputs[0]]


def layers(g: Graph, calib: np.ndarray) -> list[Layer]:
    env = run(g, calib, keep=True)
    out = []
    for op in g.ops:
        if op.kind not in WEIGHTED:
            continue
        wt = g.tensors[op.inputs[1]]
        w = np.asarray(wt.data, np.float64)
        if op.kind is OpKind.DEPTHWISE_CONV2D:
            rows = w.reshape(-1, w.shape[3]).T
        else:
            rows = w.reshape(w.shape[0], -1)
        x = R.fan_in_rows(op.kind, op.attrs, env[op.inputs[0]], wt.shape)
        out.append(Layer(op.name, op.kind, wt.name, wt.shape, rows, R.hessian(x)))
    return out


def quantize(layer: Layer, bits: int, method: str, iters: int) -> np.ndarray:
    """The layer's dequantized weights as [out, k]."""
    w = layer.w
    if method == "nearest":
        m = np.abs(w).max(axis=1)
        s = np.where(m > 0, m / R.QMAX[bits], R.TINY_SCALE).astype(np.float32).astype(np.float64)
        if bits == 1:  # binary with max scales is hopeless; use the mean of |w| (the binary optimum)
            s = np.maximum(np.abs(w).mean(axis=1), R.TINY_SCALE)
        q = R.quantize_nearest(w, s, bits)
    elif method == "mse":
        s = R.choose_scales(w, bits)
        q = R.quantize_nearest(w, s, bits)
    else:
        s = R.choose_scales(w, bits, layer.h_diag)
        if method == "mse-h":
            q = R.quantize_nearest(w, s, bits)
        elif method == "gptq":
            grouped = layer.kind is OpKind.DEPTHWISE_CONV2D
            q = R.gptq_grouped(w, s, bits, layer.h) if grouped else R.gptq(w, s, bits, layer.h)
        elif method == "adaround":
            q = R.adaround(w, s, bits, hessian=layer.h, iters=iters)
        elif method == "gptq-s":
            q, s = R.gptq_search(w, bits, layer.h)
        elif method == "best":  # per channel the best of GPTQ with the scale search and AdaRound
            cands = [R.gptq_search(w, bits, layer.h), (R.adaround(w, s, bits, hessian=layer.h, iters=iters), s)]
            q, s = R.pick_rows(w, layer.h, cands)
        else:
            raise ValueError(method)
    return q.astype(np.float64) * s[:, None]


@dataclass(frozen=True)
class Model:
    key: str
    graph: Graph
    calib: np.ndarray
    test: np.ndarray
    metric_name: str
    labels: np.ndarray | None  # accuracy when given, else SQNR against the float outputs

    def metric(self, out: np.ndarray, ref: np.ndarray) -> float:
        if self.labels is not None:
            return ptq_data.accuracy(out, self.labels)
        return ptq_data.sqnr_db(ref, out)


def digits_model() -> Model:
    from tests.util.digits_float import float_graph, train

    d = ptq_data.digits()
    g = run_passes(float_graph(train().params), FLOAT_PIPELINE)
    return Model("digits", g, d["digits_calib"][:, 0], d["digits_test"][:, 0], "accuracy %", d["digits_labels"])


def bench_digits_model(key: str) -> Model:
    """`make bench-ptq`'s Keras-trained digits CNNs (build/bench-ptq/, made by that benchmark)."""
    d = ptq_data.digits()
    path = ROOT / "build" / "bench-ptq" / f"{key.replace('keras-', '')}_float.tflite"
    g = run_passes(load(path), FLOAT_PIPELINE)
    return Model(key, g, d["digits_calib"][:, 0], d["digits_test"][:, 0], "accuracy %", d["digits_labels"])


def ad_model() -> Model:
    d = ptq_data.ad(MODELS)
    g = run_passes(load(MODELS / "mlperf_tiny/ad01_fp32.tflite"), FLOAT_PIPELINE)
    return Model("ad", g, d["ad_calib"][:, 0], d["ad_test"][:, 0], "SQNR dB", None)


def uniform_table(m: Model, ls: list[Layer], bits_list: list[int], iters: int) -> dict:
    ref = run(m.graph, m.test)
    print(f"\n{m.key}: float {m.metric_name} {m.metric(ref, ref) if m.labels is not None else 'reference'}")
    print(f"{'bits':>4} " + " ".join(f"{x:>10}" for x in METHODS) + "   (weights only, " + m.metric_name + ")")
    deq: dict = {}
    for bits in bits_list:
        vals = []
        for method in METHODS:
            t0 = time.perf_counter()
            ws = {}
            for layer in ls:
                deq[(layer.name, bits, method)] = quantize(layer, bits, method, iters)
                ws[layer.w_name] = layer.to_tensor(deq[(layer.name, bits, method)])
            secs = time.perf_counter() - t0
            vals.append(m.metric(run(m.graph, m.test, ws), ref))
            print(f"  [{m.key} {bits} bits {method}: {vals[-1]:.2f} in {secs:.2f} s]", file=sys.stderr)
        print(f"{bits:>4} " + " ".join(f"{v:>10.2f}" for v in vals))
    return deq


def chain_search(m: Model, ls: list[Layer], deq: dict, method: str, budget: float, widths=(8, 4, 2), eight="nearest"):
    """Exhaustive search over per-layer widths of a chain of FULLY_CONNECTED layers: the best SQNR with weight bytes
    <= budget. Depth-first with each prefix's activations computed once and a bytes bound. 8-bit layers are rounded
    to nearest (``eight="nearest"``, as the int8 quantizer does) or with ``method`` too (``eight="same"``)."""
    ops = [op for op in m.graph.ops]
    assert all(op.kind is OpKind.FULLY_CONNECTED for op in ops) and len(ops) == len(ls)
    ref = run(m.graph, m.test).astype(np.float64).reshape(len(m.test), -1)
    biases = [np.asarray(m.graph.tensors[op.inputs[2]].data, np.float64) for op in ops]
    relu = [op.attrs.activation.name == "RELU" for op in ops]
    nbytes = [[-(-layer.w.size * b // 8) for b in widths] for layer in ls]
    min_rest = np.concatenate([np.cumsum([min(nb) for nb in nbytes][::-1])[::-1], [0]])
    best = (-np.inf, None)

    def dfs(i: int, x: np.ndarray, used: int, choice: tuple[int, ...]):
        nonlocal best
        if i == len(ls):
            s = ptq_data.sqnr_db(ref, x)
            if s > best[0]:
                best = (s, choice)
            return
        for j, b in enumerate(widths):
            if used + nbytes[i][j] + min_rest[i + 1] > budget:
                continue
            w = deq[(ls[i].name, b, method if b != 8 or eight == "same" else "nearest")]
            y = x @ w.T + biases[i]
            dfs(i + 1, np.maximum(y, 0) if relu[i] else y, used + nbytes[i][j], (*choice, b))

    dfs(0, m.test.reshape(len(m.test), -1).astype(np.float64), 0, ())
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="digits,ad")
    ap.add_argument("--bits", default="4,2,1")
    ap.add_argument("--adaround-iters", type=int, default=1000)
    ap.add_argument("--no-search", action="store_true")
    args = ap.parse_args()
    bits_list = [int(b) for b in args.bits.split(",")]
    with threadpool_limits(limits=1, user_api="blas"):
        for key in args.models.split(","):
            makers = {"digits": digits_model, "ad": ad_model}
            m = makers[key]() if key in makers else bench_digits_model(key)
            t0 = time.perf_counter()
            ls = layers(m.graph, m.calib)
            print(f"{key}: {len(ls)} layers, Hessians in {time.perf_counter() - t0:.2f} s", file=sys.stderr)
            need = sorted(set(bits_list) | ({8, 4, 2} if key == "ad" and not args.no_search else set()))
            deq = uniform_table(m, ls, need, args.adaround_iters)
            if key == "ad" and not args.no_search:
                int8_bytes = sum(layer.w.size for layer in ls)
                budget = 0.6 * int8_bytes
                print(f"\nAD, widths {{8, 4, 2}} per layer, weight bytes <= 60 % of {int8_bytes} (exhaustive):")
                for method in METHODS:
                    for eight in ("nearest", "same") if method not in ("nearest", "mse") else ("nearest",):
                        t0 = time.perf_counter()
                        s, choice = chain_search(m, ls, deq, method, budget, eight=eight)
                        secs = time.perf_counter() - t0
                        print(f"  {method:>9} (8-bit layers {eight}): {s:.2f} dB  widths {choice}  ({secs:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
