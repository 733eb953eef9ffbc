"""``QatModel``: a trainable model (made by ``prepare.py``) that computes what mcuq's integer model will compute
(fake-quantized), and freezes its observers and BatchNorm statistics by itself after a number of training steps,
so that an ordinary training loop works unchanged."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import McuqError
from .layers import ActObserver, Phase, QAdd, QLayer, avg_pool_int
from .trace import Stage

WEIGHT_SCALES = ("mse", "max")


@dataclass(frozen=True)
class QatConfig:
    """How a prepared model trains.

    ``freeze_bn_after``: training steps (forward passes in ``train()`` mode) during which BatchNorm uses batch
    statistics and updates its running ones; afterwards the running statistics are folded, as the exported model
    folds them. ``freeze_observers_after``: steps during which activation ranges (moving min/max, ``momentum``) and
    weight scales follow the data and weights; afterwards they are fixed (with ``lsq`` they are then learned).
    ``weight_scale`` below 8 bits: "mse" (mcuq's clipped scale, ``rounding.choose_scales``) or "max" (max |w| /
    qmax); 8 bits always use max |w| / 127 and binary mean |w|, as mcuq's quantizer. ``integer``: each layer passes
    on the value mcuq's integer kernel computes (``mcuq.qat.integer``), so that the model's own evaluation is the
    device's, bit for bit; False: the float simulation only (faster, within a step or two per logit)."""

    freeze_bn_after: int = 1000
    freeze_observers_after: int = 2000
    momentum: float = 0.01
    lsq: bool = False
    weight_scale: str = "mse"
    integer: bool = True


class QatModel(nn.Module):
    """A prepared model. ``forward`` takes what the float model took (NCHW) and returns its output fake-quantized
    as the integer model computes it. ``step`` counts training forward passes."""

    def __init__(self, stages: list[Stage], layers: dict[str, QLayer], adds: dict[str, QAdd], cfg: QatConfig):
        super().__init__()
        self.stages, self.cfg = stages, cfg
        self.keys = {name: f"m{i}" for i, name in enumerate([*layers, *adds])}
        self.layers = nn.ModuleDict({self.keys[n]: m for n, m in layers.items()})
        self.adds = nn.ModuleDict({self.keys[n]: m for n, m in adds.items()})
        self.input_obs = ActObserver(cfg.momentum, cfg.lsq)
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    # -- names -----------------------------------------------------------------------------------------------------
    @property
    def layer_names(self) -> list[str]:
        """mcuq's names of the layers (the torch modules' qualified names), in order."""
        return [s.name for s in self.stages if s.kind == "layer"]

    @property
    def weight_bits(self) -> dict[str, int]:
        return {s.name: s.spec.bits for s in self.stages if s.kind == "layer"}

    def layer(self, name: str) -> QLayer:
        return self.layers[self.keys[name]]

    def add(self, name: str) -> QAdd:
        return self.adds[self.keys[name]]

    def check_shape(self, shape: tuple[int, ...], what: str) -> None:
        """McuqError unless ``shape`` is a batch of the samples ``prepare`` saw (the exported model's shape)."""
        want = tuple(self.stages[0].shape[1:])
        if len(shape) != len(want) + 1 or tuple(shape[1:]) != want:
            raise McuqError(f"qat: {what} has shape {list(shape)}; the model was prepared for a batch of samples of "
                            f"shape {list(want)} (as example_input), which is what the exported model takes")  # fmt: skip

    # -- the freeze schedule ---------------------------------------------------------------------------------------
    @property
    def observers_frozen(self) -> bool:
        return int(self.step) >= self.cfg.freeze_observers_after

    @property
    def bn_frozen(self) -> bool:
        return int(self.step) >= self.cfg.freeze_bn_after

    def phase(self) -> Phase:
        if not self.training:
            return Phase()
        self.step += 1
        s = int(self.step)
        return Phase(observe=s <= self.cfg.freeze_observers_after, batch_stats=s <= self.cfg.freeze_bn_after)

    def forward(self, x: torch.Tensor, _phase: Phase | None = None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise McuqError(f"qat: the model takes a float torch.Tensor, not {type(x).__name__}"
                            f"{'' if not isinstance(x, torch.Tensor) else ' of ' + str(x.dtype)}")  # fmt: skip
        self.check_shape(tuple(x.shape), "the input")
        p = self.input_obs.scale
        if p.dtype != torch.float32 or p.device.type != "cpu":  # .double(), .half(), .cuda(), .to(...)
            raise McuqError(f"qat: the prepared model was moved or cast to {p.dtype} on {p.device.type}; it computes "
                            "mcuq's float32 and integer arithmetic on the CPU: keep it there (.float().cpu())")  # fmt: skip
        if x.dtype != torch.float32 or x.device.type != "cpu":  # the exported model's input is float32
            x = x.to("cpu", torch.float32)
        return self.run(x, self.phase() if _phase is None else _phase)[0]

    def run(self, x: torch.Tensor, phase: Phase):
        """(output, {stage name: (value, (scale, zero point))})."""
        env: dict = {}
        out = None
        for st in self.stages:
            if st.kind == "input":
                env[st.name] = self.input_obs(x, phase)
            elif st.kind == "output":
                out = env[st.inputs[0]][0]
            elif st.kind == "layer":
                v, qp = env[st.inputs[0]]
                env[st.name] = self.layer(st.name)(v, qp, phase)
            elif st.kind == "add":
                (a, qa), (b, qb) = env[st.inputs[0]], env[st.inputs[1]]
                env[st.name] = self.add(st.name)(a, qa, b, qb, phase)
            elif st.kind == "maxpool":
                v, qp = env[st.inputs[0]]
                env[st.name] = (F.max_pool2d(v, st.attrs["kernel"], st.attrs["stride"]), qp)
            elif st.kind == "avgpool":
                v, qp = env[st.inputs[0]]
                env[st.name] = (avg_pool_int(v, qp, st.attrs["kernel"], st.attrs["stride"]), qp)
            elif st.kind == "dropout":  # training passes only (not the calibration at prepare): export drops it
                v, qp = env[st.inputs[0]]
                env[st.name] = (F.dropout(v, st.attrs["p"], self.training and not phase.calibrate), qp)
            elif st.kind == "flatten":
                v, qp = env[st.inputs[0]]
                env[st.name] = (torch.flatten(v, 1), qp)
            else:  # pragma: no cover - trace makes only the kinds above
                raise AssertionError(st.kind)
        return out, env

    def calibrate(self, x: torch.Tensor) -> None:
        """Set the activation ranges and weight scales from ``x`` (plain min/max; BN keeps its running statistics)."""
        self.check_shape(tuple(x.shape), "calibrate's x")
        with torch.no_grad():
            self.run(x.detach().to("cpu", torch.float32), Phase(observe=True, calibrate=True))
