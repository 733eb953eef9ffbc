"""Quantization-aware training for mcuq (the optional extra ``mcuq[qat]``, with torch).

``prepare(model, example_input, weight_bits=...)`` returns a trainable copy of a float torch model whose forward
pass computes what mcuq's integer model will compute (BatchNorm folded, ReLU/ReLU6 fused, weights per channel at
8/4/2/1 bits, asymmetric int8 activations, biases on their int32 grid, rounding half away from zero);
``export(model, "model.tflite")`` writes it through mcuq's writer; ``evaluate_integer(model, x)`` runs the exported
integer model through mcuq's numpy kernels. ``import mcuq`` never imports torch: only this package does.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as e:  # pragma: no cover - the extra is absent
    from ..errors import McuqError

    raise McuqError("mcuq.qat needs torch: pip install 'mcuq[qat]' (torch's CPU build is enough)") from e

from .export import evaluate_integer, export, export_float, float_graph, nhwc_input, to_quantized  # noqa: E402
from .fake import round_half_away  # noqa: E402
from .model import QatConfig, QatModel  # noqa: E402
from .prepare import prepare  # noqa: E402

__all__ = [
    "QatConfig",
    "QatModel",
    "evaluate_integer",
    "export",
    "export_float",
    "float_graph",
    "nhwc_input",
    "prepare",
    "round_half_away",
    "to_quantized",
]
