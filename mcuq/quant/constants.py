"""Weights, biases and constant operands of one op as integer tensors (step 3 of ``calibrator.Calibrator.build``).

A layer's weights are quantized at its precision's width with its rounding (``weights``: scales, GPTQ, AdaRound,
on the layer's actual quantized inputs); with bias correction the mean output shift that weight rounding causes,
E[(W_q - W) x], is subtracted from the float bias before it is quantized (int32, or int64 in 16x8). The bias needs
room: a weight scale is raised where the bias would not fit int32 at ``s_in * s_w``. Other constant operands get
their op's type over their own range."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir import Activation, DType, Graph, Op, OpKind, QParams, Tensor, fresh_name
from .batch import BatchRunner
from .precision import LayerPrecision, resolve_rounding
from .ranges import WEIGHTED, qparams
from .values import (
    INT32_MAX,
    affine_quantize,
    dequantize,
    expand,
    float_data,
    quantize_symmetric,
    readonly,
    round_half_away,
    weight_scales,
)
from .weights import MAX_HESSIAN_K, LayerInputs, layout_of, quantize_rows, round_with, rows_of

# The axis of the output channel in each weight layout (OHWI, 1HWC, [out, in]).
CHANNEL_AXIS = {OpKind.CONV2D: 0, OpKind.DEPTHWISE_CONV2D: 3, OpKind.FULLY_CONNECTED: 0}
INT64_LIMIT = 2**62  # int64 biases of 16x8 layers are clamped here (far beyond any real bias)


class ConstantQuantizer:
    """The constants of one build, put into ``qt`` (the integer graph's tensors). Keeps, per integer weight tensor,
    its width (``weight_bits``), per layer (weight bits, rounding) (``layer_info``), and for the last layer
    quantized with a rounding other than nearest, its round-to-nearest weight and bias tensors (``nearest``)."""

    def __init__(
        self,
        g: Graph,
        batch: BatchRunner,
        precision: dict[str, LayerPrecision],
        rounding: str,
        qt: dict[str, Tensor],
        *,
        per_channel_fc: bool,
        bias_correction: bool,
        overrides=None,
    ) -> None:
        self.g, self.batch, self.precision, self.rounding, self.qt = g, batch, precision, rounding, qt
        self.overrides = overrides  # fixed quantization (``fixed.Overrides``): given weights, biases, constants
        self.per_channel_fc, self.bias_correction = per_channel_fc, bias_correction
        self.weight_bits: dict[str, int] = {}  # integer weight tensor -> its width
        self.layer_info: dict[str, tuple[int, str]] = {}  # layer -> (weight bits, rounding)
        self.nearest: dict[str, Tensor] | None = None

    def quantize(self, op: Op, out_dtype: DType, qenv: dict[str, np.ndarray]) -> Op:
        """Weights, biases and constant operands of ``op`` (whose output has type ``out_dtype``) as integer
        tensors in ``qt``; returns the op (a layer with a new bias input if it had none)."""
        g, qt = self.g, self.qt
        if op.kind in WEIGHTED:
            return self._quantize_weights(op, qenv)
        for name in op.inputs:
            if name and name not in qt and g.tensors[name].is_const:
                data = float_data(g, g.tensors[name])
                lo, hi = float(min(data.min(initial=0.0), 0.0)), float(max(data.max(initial=0.0), 0.0))
                s, z = qparams(out_dtype, lo, hi)
                if self.overrides is not None and name in self.overrides.acts:  # a constant operand's given
                    s, z = self.overrides.acts[name]
                qt[name] = Tensor(name, g.tensors[name].shape, out_dtype, QParams((s,), (z,)),
                                  readonly(affine_quantize(data, s, z, out_dtype)))  # fmt: skip
        return op

    def _quantize_weights(self, op: Op, qenv) -> Op:
        """Quantize ``op``'s weights (at its precision's width, with its rounding) and bias into ``qt``; returns the
        op (with a new bias input if it had none). Keeps, for the report, the same layer with round-to-nearest
        weights (``self.nearest``) when another rounding was used."""
        g, qt = self.g, self.qt
        x_name, w_name = op.inputs[0], op.inputs[1]
        b_name = op.inputs[2] if len(op.inputs) > 2 else ""
        wt = g.tensors[w_name]
        w = float_data(g, wt).astype(np.float64)
        axis = CHANNEL_AXIS[op.kind]
        channels = wt.shape[axis]
        b = float_data(g, g.tensors[b_name]).astype(np.float64).reshape(-1) if b_name else np.zeros(channels)
        s_in = qt[x_name].scale
        per_channel = op.kind is not OpKind.FULLY_CONNECTED or self.per_channel_fc
        prec = self.precision.get(op.name, LayerPrecision())
        bits, wide = prec.weight_bits, prec.act_dtype is DType.INT16  # int16: int64 bias, no room to make
        if self.overrides is not None and w_name in self.overrides.weights:
            return self._given_weights(op, b, wide, s_in, channels)
        rounding = resolve_rounding(self.rounding, bits)
        if op.kind is not OpKind.DEPTHWISE_CONV2D and rows_of(w, op.kind).shape[1] > MAX_HESSIAN_K:
            rounding = "nearest"  # no [k, k] Hessian this wide: the report shows the layer's rounding as nearest
        room = np.zeros_like(b) if wide else b
        inputs = None
        if bits == 8 and rounding == "nearest":  # the int8 quantizer's own path
            s_w = weight_scales(w, axis, per_channel, room, s_in)
            wq = quantize_symmetric(w, s_w, axis)
        else:
            inputs = LayerInputs(op, _deq(qenv[x_name], qt[x_name]), wt.shape, centered=self.bias_correction)
            floor = _bias_floor(room, s_in, per_channel)
            q_rows, s_w = quantize_rows(rows_of(w, op.kind), bits, rounding, inputs, per_channel, floor)
            wq = layout_of(q_rows, op.kind, wt.shape)
        b_near = b
        if self.bias_correction:
            b = b - self._weight_error_shift(op, w, wq.astype(np.float64) * expand(s_w, axis, w.ndim), qenv)
            if bits == 8 and rounding == "nearest":
                s_w = weight_scales(w, axis, per_channel, np.zeros_like(b) if wide else b, s_in)  # a corrected
                wq = quantize_symmetric(w, s_w, axis)  # bias may need more room
            elif not wide:
                need = _bias_floor(b, s_in, per_channel)
                if np.any(need > s_w):
                    s_w = np.maximum(s_w, need).astype(np.float32)
                    wq = layout_of(round_with(rows_of(w, op.kind), s_w, bits, rounding, inputs), op.kind, wt.shape)
        new_op, wq_name, b_out = self._place_weights(op, wq, s_w, b, per_channel, wide, s_in, channels, bits)
        self.nearest = None
        if rounding != "nearest":
            assert inputs is not None  # what `rounding="nearest"` would have given this layer, on the same inputs
            qn, sn = quantize_rows(rows_of(w, op.kind), bits, "nearest", inputs, per_channel, floor)
            wn = layout_of(qn, op.kind, wt.shape)
            if self.bias_correction:
                b_near = b_near - self._weight_error_shift(op, w, wn.astype(np.float64) * expand(sn, axis, w.ndim),
                                                           qenv)  # fmt: skip
            wtn, btn = _weight_tensors(op.kind, wt, wn, sn, b_near, per_channel, wide, s_in, channels, wq_name, b_out)
            self.nearest = {wq_name: wtn, b_out: btn}
        self.layer_info[op.name] = (bits, rounding)
        return new_op

    def _given_weights(self, op: Op, b: np.ndarray, wide: bool, s_in: float, channels: int) -> Op:
        """Fixed quantization: the layer's given integer weights and scales; its given bias as is (checked against
        the float bias at the implied scale ``s_in * s_w`` by ``overrides.check_bias``), else the float bias
        quantized at that scale."""
        given = self.overrides.weights[op.inputs[1]]
        s_w = np.asarray(given.scales, dtype=np.float32).reshape(-1)
        wq = np.asarray(given.values).astype(np.int8)
        new_op, _, b_out = self._place_weights(op, wq, s_w, b, s_w.size > 1, wide, s_in, channels, given.bits)
        b_name = op.inputs[2] if len(op.inputs) > 2 else ""
        if b_name in self.overrides.biases:
            bt = self.qt[b_out]
            bq = self.overrides.check_bias(op, b_name, bt.data, self.overrides.biases[b_name], bt.dtype)
            self.qt[b_out] = replace(bt, data=readonly(bq))
        self.layer_info[op.name] = (given.bits, "given")
        self.nearest = None
        return new_op

    def _place_weights(self, op, wq, s_w, b, per_channel, wide, s_in, channels, bits):
        g = self.g
        w_name = op.inputs[1]
        b_name = op.inputs[2] if len(op.inputs) > 2 else ""
        bname = b_name or fresh_name(f"{op.name}/bias", g.tensors, self.qt)
        w_t, b_t = _weight_tensors(op.kind, g.tensors[w_name], wq, s_w, b, per_channel, wide, s_in, channels, w_name,
                                   bname)  # fmt: skip
        wq_name = _place(self.qt, w_t, op, g.tensors)
        bq_name = _place(self.qt, b_t, op, g.tensors)
        self.weight_bits[wq_name] = bits
        return replace(op, inputs=(op.inputs[0], wq_name, bq_name)), wq_name, bq_name

    def _weight_error_shift(self, op: Op, w: np.ndarray, w_deq: np.ndarray, qenv) -> np.ndarray:
        """Per output channel, the mean over the calibration data (samples and positions) of ``(W_q - W) x``, with
        ``x`` the op's actual quantized input, dequantized: the bias shift that weight rounding causes."""
        qt = self.qt
        x_name, w_name = op.inputs[0], op.inputs[1]
        xt = qt[x_name]
        x = _deq(qenv[x_name], xt)
        delta = Tensor(w_name, w.shape, DType.FLOAT32, None, (w_deq - w).astype(np.float32))
        tensors = {
            x_name: replace(qt[x_name], dtype=DType.FLOAT32, qparams=None, data=None),
            w_name: delta,
            op.outputs[0]: self.g.tensors[op.outputs[0]],
        }
        probe = replace(op, inputs=(x_name, w_name), attrs=replace(op.attrs, activation=Activation.NONE))
        y = self.batch.float_op(probe, tensors, {x_name: x})
        return y.reshape(-1, y.shape[-1]).astype(np.float64).mean(axis=0)


def _weight_tensors(kind: OpKind, wt, wq, s_w, b, per_channel, wide, s_in, channels, w_name, b_name):
    """The integer weight tensor (int8 values, per-channel or per-tensor symmetric) and bias tensor of a layer of
    ``kind``: int32 bias at scale ``s_in * s_w``, or int64 in 16x8 (``wide``)."""
    axis = CHANNEL_AXIS[kind] if per_channel else 0
    qparams = QParams(tuple(float(v) for v in s_w), (0,) * len(s_w), axis)
    w_t = Tensor(w_name, wt.shape, DType.INT8, qparams, readonly(wq))
    bias_scales = (np.float32(s_in) * s_w.astype(np.float32)).astype(np.float64)  # one, or one per channel
    if wide:  # 16x8: int64 bias (TFLite's spec)
        bq = np.clip(round_half_away(b / bias_scales), -INT64_LIMIT, INT64_LIMIT).astype(np.int64)
    else:
        bq = np.clip(round_half_away(b / bias_scales), -INT32_MAX, INT32_MAX).astype(np.int32)
    bqp = QParams(tuple(float(v) for v in bias_scales), (0,) * len(bias_scales), 0)
    b_t = Tensor(b_name, (channels,), DType.INT64 if wide else DType.INT32, bqp, readonly(bq))
    return w_t, b_t


def _bias_floor(b: np.ndarray, s_in: float, per_channel: bool) -> np.ndarray | float:
    """The least weight scale per channel (or for the tensor) at which the bias fits int32 at ``s_in * s_w``."""
    need = np.abs(b) / (float(s_in) * (INT32_MAX - 1024))
    return need if per_channel else float(need.max(initial=0.0))


def _place(qt: dict[str, Tensor], t: Tensor, op: Op, taken: dict[str, Tensor]) -> str:
    """Put the constant ``t`` into ``qt`` under its name, or, when another op already quantized a constant of that
    name differently (a weight or bias shared by two layers), under a new name for ``op``; returns the name."""
    old = qt.get(t.name)
    if old is None:
        qt[t.name] = t
        return t.name
    if old.qparams == t.qparams and old.dtype is t.dtype and np.array_equal(old.data, t.data):
        return t.name
    name = fresh_name(f"{t.name}/{op.name}", qt, taken)
    qt[name] = replace(t, name=name)
    return name


def _deq(q: np.ndarray, t: Tensor) -> np.ndarray:
    return dequantize(q, t.scale, t.zero_point)
