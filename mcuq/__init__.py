"""mcuq: compile trained neural networks to integer-only C for microcontrollers, and quantize float models to int8
for it (``mcuq.quantize``)."""

from __future__ import annotations

__version__ = "0.1.0"

from .api import CompiledModel, compile_model  # noqa: E402

__all__ = ["CompiledModel", "QuantizedModel", "compile_model", "quantize", "__version__"]

_LAZY = {"quantize", "QuantizedModel"}  # the quantizer (calibration, observers) loads on first use only


def __getattr__(name: str):
    """``mcuq.quantize`` and ``mcuq.QuantizedModel``, imported from ``mcuq.quant.ptq`` when first asked for, so that
    ``import mcuq`` for compiling int8 models does not load the quantizer."""
    if name in _LAZY:
        from .quant import ptq

        value = getattr(ptq, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mcuq' has no attribute {name!r}")
