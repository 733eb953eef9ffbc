"""``prepare``: the user's float torch model -> a trainable ``QatModel`` (``model.py``), traced (``trace.py``),
each layer at its bit width, calibrated on the example batch and checked against what ``export`` can write."""

from __future__ import annotations

import copy
import json
import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from ..errors import McuqError
from ..quant import precision as precision_mod
from .export import build
from .layers import QAdd, QLayer
from .model import WEIGHT_SCALES, QatConfig, QatModel
from .trace import Stage, trace


def prepare(
    model: nn.Module,
    example_input: torch.Tensor,
    weight_bits=8,
    per_layer: Mapping[str, int] | None = None,
    *,
    config: QatConfig | None = None,
    **options,
) -> QatModel:
    """A trainable copy of ``model`` (left untouched) that fake-quantizes as mcuq's integer model computes.

    ``example_input``: a batch of real inputs (NCHW, as the model takes them); the activation ranges and weight
    scales start from it. ``weight_bits``: 8, 4, 2 (ternary) or 1 (binary) for every layer, or per layer: a
    ``{layer: bits}`` mapping, the recipe of ``mcuq quantize --budget`` / ``sensitivity`` (``{layer: {"weight_bits":
    bits, ...}}``, a ``LayerPrecision`` mapping, an object with ``.recipe``, or the path of a JSON file holding it,
    such as ``mcuq quantize --budget ... --report FILE``); layers
    not named keep 8 bits. ``per_layer`` overrides some layers on top of a uniform ``weight_bits``. Layer names are
    the modules' qualified names (``model.layer_names`` lists them). ``options`` are ``QatConfig``'s fields."""
    if not isinstance(model, nn.Module):
        raise McuqError(f"qat.prepare: model must be a torch.nn.Module, not {type(model).__name__}")
    if not isinstance(example_input, torch.Tensor) or not example_input.is_floating_point():
        raise McuqError("qat.prepare: example_input must be a float torch.Tensor (a batch of real inputs)")
    if type(model).__name__ == "OptimizedModule" and isinstance(getattr(model, "_orig_mod", None), nn.Module):
        model = model._orig_mod  # torch.compile's wrapper: the module it compiles
    if config is not None and not isinstance(config, QatConfig):
        raise McuqError(f"qat.prepare: config must be a QatConfig, not {type(config).__name__}; or give its fields as "
                        "keyword arguments")  # fmt: skip
    cfg = config or QatConfig()
    try:
        cfg = replace(cfg, **options)
    except TypeError as e:
        raise McuqError(f"qat.prepare: {e}") from None
    if cfg.weight_scale not in WEIGHT_SCALES:
        raise McuqError(f"qat.prepare: weight_scale {cfg.weight_scale!r} is not one of {', '.join(WEIGHT_SCALES)}")
    for f in ("freeze_bn_after", "freeze_observers_after"):
        v = getattr(cfg, f)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise McuqError(f"qat.prepare: {f} must be a step count >= 0, not {v!r}")
    m = cfg.momentum
    if isinstance(m, bool) or not isinstance(m, numbers.Real) or not (0.0 < float(m) <= 1.0) or math.isnan(m):
        raise McuqError(f"qat.prepare: momentum must be a number in (0, 1] (the weight of a new batch's min/max), "
                        f"not {m!r}")  # fmt: skip
    for f in ("lsq", "integer"):
        if not isinstance(getattr(cfg, f), bool):
            raise McuqError(f"qat.prepare: {f} must be True or False, not {getattr(cfg, f)!r}")
    src = copy.deepcopy(model).float().cpu().eval()
    x = example_input.detach().float().cpu()
    if x.dim() < 2 or len(x) == 0:
        raise McuqError(f"qat.prepare: example_input must be a batch (N, ...) with N >= 1, got shape {list(x.shape)}")
    stages = trace(src, x, lambda name: 8)
    names = [s.name for s in stages if s.kind == "layer"]
    bits = resolve_bits(names, weight_bits, per_layer)
    mods = dict(src.named_modules())
    layers, adds = {}, {}
    for i, st in enumerate(stages):
        if st.kind == "layer":
            st = stages[i] = Stage(**{**st.__dict__, "spec": replace(st.spec, bits=bits[st.name])})
            layers[st.name] = QLayer(st.spec, mods[st.module], mods[st.bn] if st.bn else None, cfg)
        elif st.kind == "add":
            adds[st.name] = QAdd(st.attrs["act"], cfg)
            adds[st.name].out.label = st.name
    qm = QatModel(stages, layers, adds, cfg)
    qm.calibrate(x)
    build(qm)  # refuse now what export could not write (a padding TFLite has no name for, ...)
    return qm.train(model.training)


def resolve_bits(names: list[str], weight_bits, per_layer: Mapping[str, int] | None) -> dict[str, int]:
    """One width per layer from ``prepare``'s arguments (McuqError in one line for unknown names or widths)."""
    spec = _recipe(weight_bits)
    if per_layer is not None:
        if isinstance(spec, Mapping):
            raise McuqError("qat.prepare: give per_layer with a uniform weight_bits, or one mapping, not both")
        extra = _recipe(per_layer)
        if not isinstance(extra, Mapping):
            raise McuqError(f"qat.prepare: per_layer must be a mapping {{layer: bits}} (or a recipe), not "
                            f"{type(per_layer).__name__}")  # fmt: skip
        spec = {**{n: spec for n in names}, **extra}
    try:
        res = precision_mod.resolve(names, spec)
    except McuqError as e:
        raise McuqError(str(e).replace("quantize:", "qat.prepare:", 1)) from None
    return {n: p.weight_bits for n, p in res.items()}


def _recipe(value):
    """A uniform width, or ``{layer: bits}`` from any of the forms ``prepare`` accepts."""
    if isinstance(value, str) and value.isdigit():  # "4", as a command line gives it
        return int(value)
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise McuqError(f"qat.prepare: {path}: cannot read a precision recipe: {e}") from None
        if isinstance(data, dict) and isinstance(data.get("mixed_precision"), dict):  # mcuq quantize --report
            data = data["mixed_precision"]
        value = data.get("recipe", data) if isinstance(data, dict) else data
        if not isinstance(value, Mapping):
            raise McuqError(f"qat.prepare: {path}: no {{layer: bits}} recipe in the file")
    if hasattr(value, "recipe") and not isinstance(value, Mapping):
        value = value.recipe
    if not isinstance(value, Mapping):
        return _int(value)
    out, wide = {}, []
    for k, v in value.items():
        if isinstance(v, precision_mod.LayerPrecision):
            acts, v = v.activations, v.weight_bits
        elif isinstance(v, Mapping):
            acts, v = v.get("activations", "int8"), v.get("weight_bits", 8)
        else:
            acts = "int8"
        if isinstance(k, numbers.Integral) and not isinstance(k, bool):
            k = str(int(k))  # nn.Sequential's layer 0 is the module '0'
        if acts != "int8":
            wide.append(str(k))
        out[k] = _int(v)
    if wide:
        raise McuqError(
            f"qat.prepare: the recipe gives layer {precision_mod.printable_list(wide)} {value_of(value, wide[0])} "
            f"activations; QAT trains int8 activations. To train its weight widths with int8 activations, pass "
            f"weight_bits={dict(out)!r}"
        )
    return out


def _int(v):
    """A numpy integer as a Python int (a width read from an array); anything else as it is."""
    return int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else v


def value_of(value, name) -> str:
    v = value[name]
    return v.activations if isinstance(v, precision_mod.LayerPrecision) else str(v.get("activations"))
