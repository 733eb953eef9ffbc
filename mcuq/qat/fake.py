"""Fake quantization in torch that reproduces mcuq's integer scheme value for value.

- Rounding is half away from zero (TFLite's ``std::round``; ``torch.round`` rounds half to even, so it is never
  used bare): ``round_half_away``.
- Activations are asymmetric int8: ``q = clamp(round(x / s) + zp, -128, 127)`` with ``x / s`` in float32, as
  TFLite's AffineQuantize; ``(s, zp)`` come from a range by ``mcuq.quant.observers.choose_qparams`` itself.
- Weights are symmetric per output channel in the narrow range of their width (``mcuq.quant.precision.QMAX``):
  [-127, 127], [-7, 7], ternary {-1, 0, 1}, binary {-1, +1} (the sign, 0 -> +1, scale = mean |w|).
- Biases are int32 at scale ``s_in * s_w`` (computed in float64).
- Gradients: the straight-through estimator, zero outside the clamp (a clipped STE); with LSQ the scales get
  LSQ's gradient (Esser et al.), scaled by ``1 / sqrt(n * qmax)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..quant.precision import QMAX

INT32_MAX = 2**31 - 1


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """Halves away from zero, as ``mcuq.quant.values.round_half_away`` (``x - trunc(x)`` is exact in any float)."""
    t = torch.trunc(x)
    return t + torch.sign(x) * ((x - t).abs() >= 0.5).to(x.dtype)


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """``round_half_away`` forward, identity backward."""
    return x + (round_half_away(x) - x).detach()


def grad_scale(s: torch.Tensor, g: float) -> torch.Tensor:
    """``s`` forward, its gradient times ``g`` backward (LSQ's step-size gradient scale)."""
    return (s - s * g).detach() + s * g


def fake_quant_act(x: torch.Tensor, scale: torch.Tensor, zp: int, lsq: bool = False) -> torch.Tensor:
    """Asymmetric int8 quantize-dequantize of ``x`` (float32) at ``scale`` (0-d float32 tensor) and ``zp``."""
    s = scale
    if lsq and s.requires_grad:
        s = grad_scale(s, 1.0 / math.sqrt(max(x[0].numel(), 1) * 127.0))
    # +-inf (an infinite input, a tiny scale) saturates as TFLite's quantize does; the STE's x - round(x) would be NaN
    v = torch.clamp(x / s, -(2.0**24), 2.0**24)
    q = torch.clamp(ste_round(v) + zp, -128.0, 127.0)
    return (q - zp) * s


def act_int(x: torch.Tensor, scale: torch.Tensor, zp: int) -> torch.Tensor:
    """The int8 values (as float) that ``fake_quant_act`` stands for, without gradient."""
    with torch.no_grad():
        return torch.clamp(round_half_away(x / scale) + zp, -128.0, 127.0)


def weight_scales(w2: torch.Tensor, bits: int, method: str) -> torch.Tensor:
    """Per-channel float32 scales of the rows ``w2 [out, k]`` (no gradient): binary ``mean |w|``; otherwise
    ``max |w| / qmax`` ("max", what mcuq's int8 quantizer uses) or ``mcuq.quant.rounding.choose_scales`` ("mse", the
    clipped scale of mcuq's low-bit quantizer). A channel of zeros gets the median of the others (1 / qmax if none),
    as mcuq's quantizer does, so that its multiplier stays ordinary."""
    with torch.no_grad():
        a = w2.detach().abs()
        if bits == 1:
            s = a.mean(dim=1)
        elif method == "mse" and bits < 8:
            from ..quant.rounding import choose_scales

            s = torch.from_numpy(np.asarray(choose_scales(a.double().numpy(), bits), dtype=np.float64))
            s = torch.where(a.amax(dim=1) > 0, s.to(torch.float32), torch.zeros_like(s, dtype=torch.float32))
        else:
            s = a.amax(dim=1) / QMAX[bits]
        s = s.to(torch.float32)
        good = s[s > 0]
        fill = good.median() if good.numel() else torch.tensor(1.0 / QMAX[bits])
        return torch.where(s > 0, s, fill.to(torch.float32))


def fake_quant_weight(w2: torch.Tensor, s: torch.Tensor, bits: int, lsq: bool = False) -> torch.Tensor:
    """Rows ``w2 [out, k]`` quantize-dequantized at per-channel scales ``s [out]`` in the narrow range of ``bits``."""
    if lsq and s.requires_grad:
        s = grad_scale(s, 1.0 / math.sqrt(max(w2.shape[1], 1) * QMAX[bits]))
    v = w2 / s[:, None]
    if bits == 1:
        vc = torch.clamp(v, -1.0, 1.0)
        q = torch.where(v >= 0, 1.0, -1.0).to(w2.dtype)
        return (vc + (q - vc).detach()) * s[:, None]
    qmax = float(QMAX[bits])
    return torch.clamp(ste_round(v), -qmax, qmax) * s[:, None]


def weight_int(w2: torch.Tensor, s: torch.Tensor, bits: int) -> np.ndarray:
    """The int8 values of ``fake_quant_weight`` (the same float32 arithmetic), ``[out, k]``."""
    with torch.no_grad():
        v = w2 / s[:, None]
        if bits == 1:
            q = torch.where(v >= 0, 1.0, -1.0)
        else:
            q = torch.clamp(round_half_away(v), -QMAX[bits], QMAX[bits])
    return q.numpy().astype(np.int8)


def bias_int(b: torch.Tensor, s_in: torch.Tensor, s_w: torch.Tensor) -> torch.Tensor:
    """int32 bias values (float64, no gradient): ``round(b / (s_in * s_w))`` clamped to int32."""
    with torch.no_grad():
        sb = s_in.detach().double() * s_w.detach().double()
        return torch.clamp(round_half_away(b.detach().double() / sb), -INT32_MAX, INT32_MAX)


def fake_quant_bias(b: torch.Tensor, s_in: torch.Tensor, s_w: torch.Tensor) -> torch.Tensor:
    """``b`` at its int32 grid (STE); the value is ``bias_int * s_in * s_w``."""
    sb = s_in.detach().double() * s_w.detach().double()
    return b + (bias_int(b, s_in, s_w) * sb - b.double()).to(b.dtype).detach()
