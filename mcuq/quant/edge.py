"""Real values in and out of a quantized model, at its edge, as TFLite's QUANTIZE and DEQUANTIZE compute them.

A compiled model takes and returns integers (int8, or int16 in TFLite's 16x8 mode: symmetric, zero point 0; the
same formulas hold with the int16 range). Users hold real (float32) data, and firmware quantizes it with
the scale and zero point the generated header gives. These functions do the same arithmetic in numpy, so that
``mcuq run`` and ``CompiledModel.run`` take float32 inputs and give the exact integers that the header's formula
(and TFLite's interpreter with a float input and a QUANTIZE op) would give:

* quantize (reference_ops::AffineQuantize): ``clamp(round(x / scale) + zero_point, qmin, qmax)``, the division
  in float32 and ``round`` half away from zero (``std::round``), not numpy's half to even;
* dequantize (reference_ops::Dequantize): ``float(double(scale) * (q - zero_point))``. ``q - zero_point`` has at
  most 9 significant bits and ``scale`` 24, so the double product is exact and rounding it to float32 gives the
  same value as the float32 product ``(q - zero_point) * scale``, which is what is computed here.

``prepare_inputs`` applies ``quantize_input`` to the float32 arrays among a model's inputs; shapes and batches
are then checked as for integer inputs (``mcuq.records.normalise_inputs``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import McuqError
from ..ir import DType, Tensor
from .values import affine_quantize

__all__ = ["dequantize_output", "dequantize_outputs", "is_quantized", "prepare_inputs", "quantize_input"]

_REAL = np.dtype(np.float32)


def is_quantized(t: Tensor) -> bool:
    """Whether ``t`` holds integers that stand for real values with one scale and zero point (int8, uint8,
    int16 with per-tensor quantization): the tensors whose values ``quantize_input`` can produce."""
    return (
        t.dtype in (DType.INT8, DType.UINT8, DType.INT16)
        and t.qparams is not None
        and len(t.qparams.scale) == 1
        and len(t.qparams.zero_point) == 1
    )


def _need_quantized(t: Tensor, what: str) -> tuple[np.float32, int]:
    if not is_quantized(t):
        raise McuqError(f"{what} '{t.name}' is {t.dtype.value} without one scale and zero point; it has no real values")
    return np.float32(t.qparams.scale[0]), int(t.qparams.zero_point[0])


def quantize_input(tensor: Tensor, x: np.ndarray, label: str | None = None) -> np.ndarray:
    """``x`` (float32 real values, any shape) as ``tensor``'s integers: TFLite's QUANTIZE, bit for bit.

    float16 and float64 values are rounded to float32 first, as the float model's own float32 input would hold them
    (and as calibration data is read), so one array serves calibration and ``mcuq run``. NaN and infinity are
    refused (TFLite leaves their conversion undefined); integers of another type are refused rather than guessed
    at (uint8 pixels for an int8 input may be raw values or already quantized)."""
    scale, zp = _need_quantized(tensor, "input")
    where = label or f"input '{tensor.name}'"
    a = np.asarray(x)
    if a.dtype.kind != "f":
        raise McuqError(f"{where}: dtype {a.dtype}; give float32 real values to quantize, or {tensor.dtype.value}")
    with np.errstate(over="ignore"):
        a = a.astype(_REAL)  # float64 beyond float32's range becomes inf, refused below
    if a.size and not np.isfinite(a).all():
        bad = "NaN" if np.isnan(a).any() else "infinity"
        raise McuqError(f"{where}: holds {bad}; only finite float32 values can be quantized")
    return affine_quantize(a, scale, zp, tensor.dtype)


def dequantize_output(tensor: Tensor, q: np.ndarray) -> np.ndarray:
    """``tensor``'s integers ``q`` as float32 real values: ``(q - zero_point) * scale``, TFLite's DEQUANTIZE."""
    scale, zp = _need_quantized(tensor, "output")
    a = np.asarray(q)
    if a.dtype != tensor.dtype.np:
        raise McuqError(f"output '{tensor.name}': dtype {a.dtype}, expected {tensor.dtype.value}")
    return (a.astype(np.int32) - np.int32(zp)).astype(np.float32) * scale


def dequantize_outputs(tensors: Sequence[Tensor], outputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each output as float32 real values (``dequantize_output``); an output that is not quantized is refused."""
    return [dequantize_output(t, q) for t, q in zip(tensors, outputs)]


def prepare_inputs(tensors: Sequence[Tensor], inputs, labels: Sequence[str] | None = None):
    """``inputs`` (as ``CompiledModel.run`` takes them) with the arrays given for a quantized input in another
    dtype quantized (``quantize_input``, which refuses anything but float32). Anything else is returned as it
    came, for ``mcuq.records.normalise_inputs`` to check and explain. ``labels`` name the inputs in messages
    (the CLI passes the .npy paths)."""
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    if not isinstance(inputs, (list, tuple)) or len(inputs) != len(tensors):
        return inputs
    out = []
    for i, (t, x) in enumerate(zip(tensors, inputs)):
        if not isinstance(x, np.ndarray):
            out.append(x)
            continue
        label = f"{labels[i]} (input '{t.name}')" if labels else None
        if is_quantized(t) and x.dtype != t.dtype.np:
            if x.dtype.kind not in "fiub":
                out.append(x)  # objects, strings: normalise_inputs says what is wrong
                continue
            x = quantize_input(t, x, label)
        out.append(x)
    return out
