"""mcuq: compile trained neural networks to integer-only C for microcontrollers."""

from __future__ import annotations

__version__ = "0.1.0"

from .api import CompiledModel, compile_model  # noqa: E402

__all__ = ["CompiledModel", "compile_model", "__version__"]
