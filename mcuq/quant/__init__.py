"""Quantization: arithmetic shared with the kernels, and post-training quantization of float models.

* ``fixedpoint``: TFLite's integer multipliers, shifts and rounding (the numpy mirror of the C helpers);
* ``packing``: sub-byte (int4/2/1) packing;
* ``values``: affine quantize/dequantize and symmetric weight scales on arrays;
* ``edge``: float data in and out of a quantized model (``mcuq run`` with float32 inputs);
* post-training quantization (``mcuq.quantize`` is ``ptq.quantize``; ``ptq.Quantizer`` caches statistics for many
  precisions): ``calib`` loads calibration data, ``observers`` turns an activation's values into a range, ``batch``
  runs one op on all samples, ``calibrator`` drives it, ``ranges`` plans each activation's type and range,
  ``constants`` quantizes weights (``weights``, ``rounding``: GPTQ/AdaRound below 8 bits) and biases, ``convert``
  adds QUANTIZE ops between int8 and int16, ``precision`` checks per-layer precisions, ``evaluate`` runs a graph on
  N samples, ``report`` says what each layer lost;
* mixed precision under budgets: ``sensitivity`` (per-layer loss of each precision), ``costs`` (flash, RAM and
  instructions of each option), ``knapsack`` (the exact choice and the greedy baseline), ``mixed`` (solve, verify,
  tighten), ``pareto`` (the front over a sweep of budgets);
* fixed quantization (``fixed``: ``quantize_fixed`` with given ``ActQuant`` / ``WeightQuant`` / biases, the seam of
  ONNX QDQ import and QAT export): the calibrator builds the graph with the given parameters instead of choosing.
"""

_FIXED = ("ActQuant", "WeightQuant", "quantize_fixed")


def __getattr__(name: str):
    """``mcuq.quant.ActQuant``, ``WeightQuant`` and ``quantize_fixed`` from ``fixed``, loaded on first use."""
    if name in _FIXED:
        from . import fixed

        return getattr(fixed, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
