"""Frontends: one module per model format, each with ``load(model, source=None) -> ir.Graph`` that maps the format's
ops onto ``ir.OpKind`` and fixes the layout (NHWC, OHWI, 1HWC, [out, in]) once.

``FRONTENDS`` is the registry: a file's suffix picks its frontend; bytes that start like an ONNX ModelProto (not
``TFL3``, first byte 0x08) go to ONNX; other bytes, and files of another suffix, go to the default (TFLite, which
names the file in its error when the bytes are not a TFLite model). An ONNX frontend is
an entry here, with its module imported only when used (its dependencies are an optional extra).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..ir import Graph


@dataclass(frozen=True)
class Frontend:
    name: str
    suffixes: tuple[str, ...]
    module: str  # relative to this package; imported on first use

    def load(self, model: str | os.PathLike | bytes) -> Graph:
        return importlib.import_module(f".{self.module}", __name__).load(model)


FRONTENDS: dict[str, Frontend] = {}
DEFAULT = "tflite"


def register(fe: Frontend) -> Frontend:
    assert fe.name not in FRONTENDS, f"frontend {fe.name} registered twice"
    FRONTENDS[fe.name] = fe
    return fe


register(Frontend("tflite", (".tflite",), "tflite"))
register(Frontend("onnx", (".onnx",), "onnx"))


def frontend_for(model: str | os.PathLike | bytes) -> Frontend:
    """The frontend for ``model``: by file suffix (case-insensitive), else the default."""
    if not isinstance(model, (bytes, bytearray, memoryview)):
        suffix = Path(model).suffix.lower()
        for fe in FRONTENDS.values():
            if suffix in fe.suffixes:
                return fe
    elif bytes(model[4:8]) != b"TFL3" and bytes(model[:1]) == b"\x08":  # an ONNX ModelProto starts with ir_version
        return FRONTENDS["onnx"]
    return FRONTENDS[DEFAULT]


def load(model: str | os.PathLike | bytes) -> Graph:
    """Import a model file (or its bytes) into an IR graph with the frontend of its format."""
    return frontend_for(model).load(model)
