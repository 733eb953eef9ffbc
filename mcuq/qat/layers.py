"""The trainable pieces of a prepared model: activation observers, the fused conv/linear layer, the residual add.

Each piece returns its output fake-quantized, together with that output's quantization ``(scale, zero point)``,
so that the next one knows its input's scale (the bias's int32 grid is ``s_in * s_w``). Whether observers and
batch statistics are live is decided by the owning ``QatModel`` through ``Phase``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import McuqError
from ..quant.observers import choose_qparams
from . import fake, integer

QP = tuple[torch.Tensor, int]  # (scale: 0-d float32 tensor, zero point)
# A learned (LSQ) scale is kept at or above this fraction of the last observed one: an optimizer step can take it to
# zero or below, where the layer would pass on nothing (and, clamped, never learn back) and its bias would not fit
# int32 at export.
LSQ_FLOOR = 2.0**-8
# ... and a learned weight scale keeps the int32 bias within half of int32's range (the other half for the sums).
LSQ_BIAS_LIMIT = 2.0**30


@dataclass(frozen=True)
class Phase:
    """What one forward pass may change: observers (activation ranges, weight scales) and BN batch statistics."""

    observe: bool = False
    batch_stats: bool = False
    calibrate: bool = False  # the one pass at ``prepare``: plain min/max instead of the moving average


class ActObserver(nn.Module):
    """A tensor's range (moving averages of the batch min and max, as TFLite's QAT observers) and the int8
    ``(scale, zero point)`` that ``choose_qparams`` gives it. With ``lsq`` the scale is a learnable parameter once
    the observer is frozen (the zero point keeps its frozen value)."""

    def __init__(self, momentum: float, lsq: bool) -> None:
        super().__init__()
        self.momentum, self.lsq = momentum, lsq
        self.label = "input"  # the tensor's name, for messages (the owning layer sets it)
        self.register_buffer("lo", torch.zeros((), dtype=torch.float64))
        self.register_buffer("hi", torch.zeros((), dtype=torch.float64))
        self.register_buffer("seen", torch.zeros((), dtype=torch.bool))
        self.register_buffer("zp", torch.zeros((), dtype=torch.int64))
        self.register_buffer("floor", torch.zeros((), dtype=torch.float32))  # LSQ's lower bound of the scale
        self.scale = nn.Parameter(torch.ones((), dtype=torch.float32), requires_grad=lsq)

    def update(self, x: torch.Tensor, phase: Phase) -> None:
        with torch.no_grad():
            lo, hi = float(x.min()), float(x.max())
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise McuqError(f"qat: activation '{self.label}' has NaN or infinite values (a diverged training "
                                "step, or such an input)")  # fmt: skip
            if not bool(self.seen) or phase.calibrate:
                if phase.calibrate and bool(self.seen):
                    lo, hi = min(lo, float(self.lo)), max(hi, float(self.hi))
                self.lo.fill_(lo)
                self.hi.fill_(hi)
                self.seen.fill_(True)
            else:
                m = self.momentum
                self.lo.fill_(float(self.lo) + m * (lo - float(self.lo)))
                self.hi.fill_(float(self.hi) + m * (hi - float(self.hi)))
            s, z = choose_qparams(float(self.lo), float(self.hi))
            self.scale.data.fill_(s)
            self.floor.fill_(s * LSQ_FLOOR)
            self.zp.fill_(z)

    def qparams(self) -> QP:
        if not self.lsq:
            return self.scale.detach(), int(self.zp)
        with torch.no_grad():  # a learned scale stays a positive float32: projected back above its floor
            if not bool(torch.isfinite(self.scale)):
                raise McuqError(f"qat: the learned scale of activation '{self.label}' is {float(self.scale)} (a "
                                "diverged training step: lower the learning rate)")  # fmt: skip
            if bool(self.scale < self.floor):
                self.scale.data.copy_(self.floor)
        return self.scale, int(self.zp)

    def forward(self, x: torch.Tensor, phase: Phase) -> tuple[torch.Tensor, QP]:
        if phase.observe:
            self.update(x, phase)
        s, z = self.qparams()
        return fake.fake_quant_act(x, s, z, lsq=self.lsq and not phase.observe), (s, z)

    def frozen_qparams(self) -> tuple[float, int]:
        """The exported (float32 scale, zero point)."""
        s, z = self.qparams()
        return float(torch.tensor(float(s.detach()), dtype=torch.float32)), z


@dataclass(frozen=True)
class LayerSpec:
    """One conv, depthwise or linear layer of the traced model, with what was fused into it."""

    name: str  # the torch module's qualified name: mcuq's layer name in the exported model
    kind: str  # "conv", "depthwise" or "fc"
    bits: int
    act: str  # "none", "relu" or "relu6"
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1


class QLayer(nn.Module):
    """conv / depthwise / linear + optional BatchNorm (folded into the weights as training goes) + ReLU/ReLU6,
    computed as mcuq's integer layer computes it: weights at their width per channel, the bias on the int32 grid of
    ``s_in * s_w``, the output requantized to int8."""

    def __init__(self, spec: LayerSpec, layer: nn.Module, bn: nn.BatchNorm2d | None, cfg) -> None:
        super().__init__()
        self.spec = spec
        self.weight = nn.Parameter(layer.weight.detach().clone())
        out = self.weight.shape[0]
        b = layer.bias.detach().clone() if layer.bias is not None else torch.zeros(out)
        self.bias = nn.Parameter(b)
        # a layer the user froze (requires_grad False) stays frozen; a missing bias follows the weights
        self.weight.requires_grad_(layer.weight.requires_grad)
        self.bias.requires_grad_(layer.bias.requires_grad if layer.bias is not None else layer.weight.requires_grad)
        self.bn = None
        if bn is not None:
            if bn.running_mean is None or bn.running_var is None:
                raise McuqError(f"qat: the BatchNorm2d after '{spec.name}' keeps no running statistics "
                                "(track_running_stats=False); mcuq folds the running statistics into the conv")  # fmt: skip
            self.bn = nn.BatchNorm2d(bn.num_features, eps=bn.eps, momentum=bn.momentum, affine=True)
            self.bn.load_state_dict(
                {
                    "weight": bn.weight.detach().clone() if bn.affine else torch.ones(out),
                    "bias": bn.bias.detach().clone() if bn.affine else torch.zeros(out),
                    "running_mean": bn.running_mean.detach().clone(),
                    "running_var": bn.running_var.detach().clone(),
                    "num_batches_tracked": bn.num_batches_tracked.detach().clone(),
                }
            )
            # affine=False: gamma 1 and beta 0 stay fixed, as in the user's model
            self.bn.weight.requires_grad_(bn.affine and bn.weight.requires_grad)
            self.bn.bias.requires_grad_(bn.affine and bn.bias.requires_grad)
        self.weight_method = cfg.weight_scale if spec.bits < 8 else "max"
        self.lsq, self.integer = cfg.lsq, cfg.integer
        self.w_scale = nn.Parameter(torch.ones(out), requires_grad=cfg.lsq)
        self.register_buffer("w_scale_set", torch.zeros((), dtype=torch.bool))
        self.register_buffer("w_floor", torch.zeros(out))  # LSQ's lower bound of each channel's scale
        self.out = ActObserver(cfg.momentum, cfg.lsq)
        self.out.label = spec.name

    # -- the float layer folded -----------------------------------------------------------------------------------
    def _linear(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.spec
        if s.kind == "fc":
            return F.linear(x, w)
        return F.conv2d(x, w, None, s.stride, s.padding, s.dilation, s.groups)

    def folded(self, x: torch.Tensor | None, phase: Phase) -> tuple[torch.Tensor, torch.Tensor]:
        """(weights, bias) with the BatchNorm folded in: batch statistics of ``x``'s pre-BN output while they are
        live (updating the running ones), else the running statistics."""
        w, b = self.weight, self.bias
        if self.bn is None:
            return w, b
        bn = self.bn
        if phase.batch_stats and x is not None:
            y = self._linear(x, w) + b[None, :, None, None]
            mean = y.mean(dim=(0, 2, 3))
            var = y.var(dim=(0, 2, 3), unbiased=False)
            with torch.no_grad():
                n = y.numel() / y.shape[1]
                bn.num_batches_tracked.add_(1)
                # momentum None: torch's cumulative average (1 / the number of batches seen)
                m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
                bn.running_mean.mul_(1 - m).add_(m * mean.detach())
                bn.running_var.mul_(1 - m).add_(m * var.detach() * n / max(n - 1, 1))
        else:
            mean, var = bn.running_mean, bn.running_var
        k = bn.weight / torch.sqrt(var + bn.eps)
        shape = (-1,) + (1,) * (w.dim() - 1)
        return w * k.reshape(shape), bn.bias + (b - mean) * k

    def rows(self, w: torch.Tensor) -> torch.Tensor:
        """Weights as ``[out, k]`` rows, one per output channel (depthwise: its own taps)."""
        return w.reshape(w.shape[0], -1)

    def scales(self, w2: torch.Tensor, phase: Phase, b: torch.Tensor, s_in: torch.Tensor) -> torch.Tensor:
        if phase.observe or not bool(self.w_scale_set):
            with torch.no_grad():
                s = fake.weight_scales(w2, self.spec.bits, self.weight_method)
                # as mcuq's quantizer: a scale is raised where the bias would not fit int32 at s_in * s_w
                need = b.detach().double().abs() / (float(s_in.detach()) * (fake.INT32_MAX - 1024))
                self.w_scale.data.copy_(torch.maximum(s.double(), need).to(torch.float32))
                self.w_floor.copy_(self.w_scale.data * LSQ_FLOOR)
                self.w_scale_set.fill_(True)
        if self.lsq and not phase.observe:
            with torch.no_grad():  # projected back above its floor, and where the int32 bias fits with room to sum
                if not bool(torch.isfinite(self.w_scale).all()):
                    raise McuqError(f"qat: a learned weight scale of layer '{self.spec.name}' is not finite (a "
                                    "diverged training step: lower the learning rate)")  # fmt: skip
                need = b.detach().double().abs() / (float(s_in.detach()) * LSQ_BIAS_LIMIT)
                lo = torch.maximum(self.w_floor.double(), need).to(torch.float32)
                lo = torch.where(lo.double() < need, torch.nextafter(lo, torch.full_like(lo, math.inf)), lo)
                self.w_scale.data.copy_(torch.maximum(self.w_scale.data, lo))
            return self.w_scale
        return self.w_scale.detach()

    def forward(self, x: torch.Tensor, qp_in: QP, phase: Phase) -> tuple[torch.Tensor, QP]:
        w, b = self.folded(x, phase)
        w2 = self.rows(w)
        s_w = self.scales(w2, phase, b, qp_in[0])
        wq = fake.fake_quant_weight(w2, s_w, self.spec.bits, lsq=self.lsq and not phase.observe).reshape(w.shape)
        bq = fake.fake_quant_bias(b, qp_in[0], s_w)
        y = self._linear(x, wq)
        y = y + (bq if y.dim() == 2 else bq[None, :, None, None])
        if self.spec.act == "relu":
            y = F.relu(y)
        elif self.spec.act == "relu6":
            y = torch.clamp(y, 0.0, 6.0)
        y_fq, qp_out = self.out(y, phase)
        if self.integer:  # the value mcuq's kernel computes; the gradient of the float path
            w_int = fake.weight_int(w2, s_w, self.spec.bits).reshape(w.shape)
            b_int = fake.bias_int(b, qp_in[0], s_w)
            y_int = integer.layer_output(self, x, qp_in, w_int, s_w, b_int, qp_out)
            y_fq = y_fq + (y_int - y_fq).detach()
        return y_fq, qp_out

    # -- what export needs ----------------------------------------------------------------------------------------
    def integer_params(self, s_in: float):
        """(folded float weights in torch's layout, int8 values ``[out, k]``, float32 scales, int32 bias) as the
        evaluation-mode forward uses them."""
        with torch.no_grad():
            w, b = self.folded(None, Phase())
            w2 = self.rows(w)
            s_w = self.scales(w2, Phase(), b, torch.tensor(s_in))
            q = fake.weight_int(w2, s_w, self.spec.bits)
            bi = fake.bias_int(b, torch.tensor(s_in, dtype=torch.float32), s_w)
        return w.detach().numpy().copy(), q, s_w.detach().numpy().astype("float32"), bi.numpy().astype("int32")


class QAdd(nn.Module):
    """A residual add (with an optional ReLU or ReLU6): the float sum of the two quantized inputs, requantized."""

    def __init__(self, act: str, cfg) -> None:
        super().__init__()
        self.act, self.integer = act, cfg.integer
        self.out = ActObserver(cfg.momentum, cfg.lsq)

    def forward(self, a: torch.Tensor, qa: QP, b: torch.Tensor, qb: QP, phase: Phase) -> tuple[torch.Tensor, QP]:
        y = a + b
        if self.act == "relu":
            y = F.relu(y)
        elif self.act == "relu6":
            y = torch.clamp(y, 0.0, 6.0)
        y_fq, qp_out = self.out(y, phase)
        if self.integer:
            y_fq = y_fq + (integer.add_output(a, qa, b, qb, qp_out, self.act) - y_fq).detach()
        return y_fq, qp_out


def avg_pool_int(x: torch.Tensor, qp: QP, k, stride) -> torch.Tensor:
    """TFLite's int8 average pool at the input's quantization (pools share it): the mean of the int8 values
    ``q`` (zero point included) rounded half away from zero, in the ``q`` domain as the kernel rounds."""
    s, z = qp
    q = round_half_away(x.detach() / s.detach()) + z
    avg = F.avg_pool2d(q, k, stride)
    q_out = round_half_away(avg)
    y = F.avg_pool2d(x, k, stride)  # the gradient of the mean, the value of the integer kernel
    return y + ((q_out - z) * s.detach() - y).detach()


round_half_away = fake.round_half_away
