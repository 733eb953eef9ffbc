"""Per-layer sensitivity to precision: what each layer costs in end-to-end accuracy at each weight width and
activation type, measured one layer at a time on data (``mcuq sensitivity``).

For each layer (weighted op) and each option it measures the model with *only that layer* changed from all-int8:
weights at 4, 2 or 1 bit, or activations at int16. Quantities are kept additive: the output noise power
``N = sum (q - f)^2`` over all outputs and samples, relative to the signal power ``S = sum f^2``. The solver
predicts a mixed model's noise as ``N_int8 + sum_l (N_l,option - N_int8)`` (noise from independent layers adds;
dB values do not), so a layer's loss is its noise increase ``(N_l,o - N_int8) / S``; int16 activations give a
negative loss (a gain). With labels, the accuracy drop (points) is measured and reported too.

The error of each layer at int8 is split into a weight part and an activation part with the float model: once with
only that layer's weights quantized (per-channel symmetric int8, round to nearest), once with only its output
quantized with the int8 model's scale and zero point; each is the end-to-end noise that part alone causes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..errors import McuqError, printable
from ..ir import DType, Graph
from .evaluate import quantized_inputs, run_batch, run_float
from .precision import LayerPrecision
from .values import dequantize

LOWER_BITS = (4, 2, 1)
INT8 = LayerPrecision(8, "int8")


@dataclass(frozen=True)
class Metric:
    noise: float  # sum of squared output errors, relative to the signal power (N / S)
    accuracy: float | None = None  # percent, with labels

    @property
    def sqnr_db(self) -> float:
        return math.inf if self.noise <= 0 else -10.0 * math.log10(self.noise)


class Evaluator:
    """The float model's outputs on ``data`` computed once; ``measure`` compares a quantized graph with them."""

    def __init__(self, float_graph: Graph, data: Sequence[np.ndarray], labels: np.ndarray | None = None) -> None:
        self.float_graph = float_graph
        self.data = [np.asarray(a, np.float32) for a in data]
        self.labels = None if labels is None else np.asarray(labels).reshape(-1)
        self.ref = [np.asarray(o, np.float64) for o in run_float(float_graph, self.data)]
        self.signal = float(sum(np.sum(r**2) for r in self.ref)) or 1.0
        n = self.data[0].shape[0]
        if self.labels is not None and self.labels.size != n:
            raise McuqError(f"--labels: {self.labels.size} labels for {n} samples of --eval")
        if self.labels is not None and n:
            classes = self.ref[0].size // n
            bad = (self.labels < 0) | (self.labels >= classes)
            if bad.any():
                i = int(np.argmax(bad))
                raise McuqError(
                    f"--labels: label {int(self.labels[i])} of sample {i} is not a class of the model's first output "
                    f"(0 to {classes - 1})"
                )

    def metric_of(self, outs: Sequence[np.ndarray]) -> Metric:
        noise = float(
            sum(np.sum((np.asarray(o, np.float64).reshape(r.shape) - r) ** 2) for o, r in zip(outs, self.ref))
        )
        acc = None
        if self.labels is not None:
            scores = np.asarray(outs[0], np.float64).reshape(len(self.labels), -1)
            acc = 100.0 * float(np.mean(np.argmax(scores, axis=1) == self.labels))
        return Metric(noise / self.signal, acc)

    def measure(self, qgraph: Graph) -> Metric:
        outs = run_batch(qgraph, quantized_inputs(qgraph, self.data))
        return self.metric_of([_real(qgraph.tensors[n], o) for n, o in zip(qgraph.outputs, outs)])

    def float_accuracy(self) -> float | None:
        return None if self.labels is None else self.metric_of(self.ref).accuracy


# -- the quantizer, with results cached per precision -------------------------------------------------------------
class Quantizations:
    """Quantized models by per-layer precision, each made once; the calibration statistics are computed once
    (``ptq.Quantizer``). ``options``: the Quantizer's (method, per_channel_fc, bias_correction) and ``rounding``."""

    def __init__(self, model, calib, *, rounding: str = "auto", **options) -> None:
        from .ptq import Quantizer

        self.quantizer = Quantizer(model, calib, **options)
        self.float_graph = self.quantizer.float_graph
        self.names = list(self.quantizer.layer_names)
        self.rounding = rounding
        self._cache: dict[tuple, object] = {}

    def get(self, precision: dict[str, LayerPrecision]):
        key = tuple((n, precision.get(n, INT8)) for n in self.names)
        if key not in self._cache:
            full = dict(key)
            bits = {n: p.weight_bits for n, p in full.items()}
            acts = {n: p.activations for n, p in full.items()}
            uniform_acts = set(acts.values())
            self._cache[key] = self.quantizer.quantize(
                weight_bits=bits,
                activations=uniform_acts.pop() if len(uniform_acts) == 1 else acts,
                rounding=self.rounding,
            )
        return self._cache[key]

    def uniform(self, p: LayerPrecision):
        return self.get(dict.fromkeys(self.names, p))


# -- sensitivity ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerSensitivity:
    name: str
    kind: str
    weights: int  # weight values
    # per option label ("w4", "w2", "w1", "a16"): the model with only this layer changed
    noise: dict[str, float]  # relative output noise N/S of that model
    sqnr_db: dict[str, float]
    accuracy: dict[str, float] = field(default_factory=dict)
    weight_part: float = 0.0  # end-to-end relative noise of this layer's int8 weights alone (float model otherwise)
    act_part: float = 0.0  # ... of its int8 output alone

    def loss(self, p: LayerPrecision, base: float) -> float:
        """Predicted noise increase over all-int8 (relative to the signal) of this layer at ``p``: the weight and
        activation changes add."""
        out = 0.0
        if p.weight_bits != 8:
            out += self.noise[f"w{p.weight_bits}"] - base
        if p.activations == "int16":
            out += self.noise["a16"] - base
        return out


@dataclass(frozen=True)
class Sensitivity:
    layers: tuple[LayerSensitivity, ...]
    base: Metric  # all-int8
    float_accuracy: float | None
    samples: int
    on: str  # "calibration data" or "evaluation data"
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v

        return clean(
            {
                "measured_on": self.on,
                "samples": self.samples,
                "int8": {"noise": self.base.noise, "sqnr_db": self.base.sqnr_db, "accuracy": self.base.accuracy},
                "float_accuracy": self.float_accuracy,
                "loss_unit": "relative output noise power increase (N/S), additive across layers",
                "layers": [asdict(layer) for layer in self.layers],
                "notes": list(self.notes),
            }
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def table(self) -> str:
        base_db = self.base.sqnr_db
        labels = bool(self.layers) and bool(self.layers[0].accuracy)
        opts = [k for k in ("w4", "w2", "w1", "a16") if self.layers and k in self.layers[0].noise]
        head = f"{'#':>3}  {'layer':<32} {'kind':<18} {'weights':>8}  "
        head += "  ".join(f"{_label(k) + (' pts' if labels else ' dB'):>12}" for k in opts)
        head += f"  {'int8 error: weights / activations':>34}"
        lines = [
            f"per-layer sensitivity on {self.samples} samples of the {self.on}: all-int8 SQNR {base_db:.1f} dB"
            + (f", accuracy {self.base.accuracy:.1f} % (float {self.float_accuracy:.1f} %)" if labels else ""),
            "each column: only that layer changed; "
            + ("accuracy drop in points" if labels else "SQNR drop in dB (negative: a gain)"),
            "",
            head,
            "-" * len(head),
        ]
        for i, s in enumerate(self.layers):
            cells = []
            for k in opts:
                if labels:
                    cells.append(f"{self.base.accuracy - s.accuracy[k]:>12.1f}")
                else:
                    cells.append(f"{base_db - s.sqnr_db[k]:>12.2f}")
            tot = s.weight_part + s.act_part
            split = "-" if tot <= 0 else f"{100 * s.weight_part / tot:.0f} % / {100 * s.act_part / tot:.0f} %"
            lines.append(
                f"{i:>3}  {printable(s.name, 32):<32} {s.kind:<18} {s.weights:>8}  "
                + "  ".join(cells)
                + f"  {split:>34}"
            )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _real(t, q: np.ndarray) -> np.ndarray:
    """An output's values as real numbers in float64 (a float output as it is)."""
    if t.dtype is DType.FLOAT32:
        return np.asarray(q, np.float64)
    return dequantize(q, float(t.qparams.scale[0]), int(t.qparams.zero_point[0]))


def _label(k: str) -> str:
    return {"w4": "w 4 bit", "w2": "w 2 bit", "w1": "w 1 bit", "a16": "act int16"}[k]


def _fake_quant_weights(w: np.ndarray, kind, bits: int = 8) -> np.ndarray:
    from .weights import layout_of, rows_of

    rows = rows_of(w, kind)
    qmax = (1 << (bits - 1)) - 1
    scale = np.max(np.abs(rows), axis=1, keepdims=True) / qmax
    scale[scale == 0] = 1.0
    q = np.clip(np.sign(rows / scale) * np.floor(np.abs(rows / scale) + 0.5), -qmax, qmax) * scale
    return layout_of(q, kind, w.shape).astype(np.float32)


def split_errors(ev: Evaluator, qgraph: Graph, names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Per layer (weight part, activation part): the end-to-end relative noise of the float model with only
    that layer's weights at int8, and with only its output quantized as the int8 model quantizes it."""
    g = ev.float_graph
    out: dict[str, tuple[float, float]] = {}
    ops = {op.name: op for op in g.ops}
    for name in names:
        op = ops[name]
        w = g.tensors[op.inputs[1]]
        wq = replace(w, data=_fake_quant_weights(np.asarray(w.data, np.float64), op.kind))
        g_w = replace(g, tensors={**g.tensors, w.name: wq})
        wpart = ev.metric_of(run_batch(g_w, ev.data)).noise
        t = qgraph.tensors.get(op.outputs[0])
        apart = 0.0
        if t is not None and t.qparams is not None:
            info = np.iinfo(t.dtype.np) if t.dtype is not DType.FLOAT32 else None
            s, zp = float(t.qparams.scale[0]), int(t.qparams.zero_point[0])

            def hook(o, out_name, v, target=op.outputs[0], info=info, s=s, zp=zp):
                if out_name != target or info is None:
                    return v
                q = np.clip(np.round(np.asarray(v, np.float64) / s) + zp, info.min, info.max)
                return ((q - zp) * s).astype(np.float32)

            apart = ev.metric_of(run_batch(g, ev.data, hook)).noise
        out[name] = (wpart, apart)
    return out


def measure(
    quants: Quantizations,
    ev: Evaluator,
    bits: Sequence[int] = LOWER_BITS,
    int16: bool = True,
    on: str = "calibration data",
    progress=None,
) -> Sensitivity:
    """Each layer alone at each of ``bits`` (and int16 activations when ``int16``), against all-int8."""
    g = quants.float_graph
    base_qm = quants.uniform(INT8)
    base = ev.measure(base_qm.graph)
    notes: list[str] = []
    opts = [(f"w{b}", LayerPrecision(b, "int8")) for b in bits]
    if int16:
        opts.append(("a16", LayerPrecision(8, "int16")))
    ops = {op.name: op for op in g.ops}
    splits = split_errors(ev, base_qm.graph, quants.names)
    layers = []
    for li, name in enumerate(quants.names):
        noise, sqnr, acc = {}, {}, {}
        for label, p in opts:
            if progress is not None:
                progress(f"layer {li + 1}/{len(quants.names)} {label}")
            try:
                qm = quants.get({name: p})
            except McuqError as e:
                raise McuqError(f"sensitivity: layer '{printable(name, 60)}' at {_label(label)}: {e}") from None
            m = ev.measure(qm.graph)
            noise[label], sqnr[label] = m.noise, m.sqnr_db
            if m.accuracy is not None:
                acc[label] = m.accuracy
        op = ops[name]
        layers.append(
            LayerSensitivity(
                name=name,
                kind=op.type_name,
                weights=int(g.tensors[op.inputs[1]].size),
                noise=noise,
                sqnr_db=sqnr,
                accuracy=acc,
                weight_part=splits[name][0],
                act_part=splits[name][1],
            )
        )
    return Sensitivity(tuple(layers), base, ev.float_accuracy(), int(ev.data[0].shape[0]), on, tuple(notes))
