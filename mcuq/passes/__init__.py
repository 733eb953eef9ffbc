"""Graph passes: a pipeline of pure ``Graph -> Graph`` functions run between the frontend and lowering.

A pass never mutates its input (``ir.Graph`` and ``ir.Op`` are frozen; a pass builds new ones with
``dataclasses.replace``) and returns its input unchanged when it has nothing to do. ``PIPELINE`` is the order
``compile_model`` runs them in; ``FLOAT_PIPELINE`` (``fold.py``) is what ``mcuq.quantize`` runs on a float32
graph before calibration. With a dump directory (``--dump-ir DIR`` or ``MCUQ_DUMP_IR=DIR``) the graph is
written as text before the first pass (``00-input.txt``) and after each pass (``01-<pass>.txt``, ...).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from ..errors import McuqError
from ..ir import Graph
from .copies import reshape_to_copy
from .dump import format_graph
from .fold import FLOAT_PIPELINE, fold_batchnorm, fold_dequantize, fold_relu
from .lowbit import pack_weights

__all__ = [
    "FLOAT_PIPELINE",
    "PIPELINE",
    "Pass",
    "fold_batchnorm",
    "fold_dequantize",
    "fold_relu",
    "format_graph",
    "pack_weights",
    "reshape_to_copy",
    "run_passes",
]

log = logging.getLogger(__name__)

Pass = Callable[[Graph], Graph]

PIPELINE: tuple[Pass, ...] = (reshape_to_copy,)

DUMP_ENV = "MCUQ_DUMP_IR"


def pass_name(p: Pass) -> str:
    """A file-name-safe name for ``p`` (its function name)."""
    name = getattr(p, "__name__", None) or type(p).__name__
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def run_passes(g: Graph, passes: tuple[Pass, ...] = PIPELINE, dump_dir: str | os.PathLike | None = None) -> Graph:
    """Run ``passes`` in order on ``g``; with ``dump_dir`` (default: ``$MCUQ_DUMP_IR`` if set and not empty),
    write the graph as text before the first pass and after each one. Files already in the directory are left
    alone, except those this run writes, which are replaced."""
    if dump_dir is None:
        dump_dir = os.environ.get(DUMP_ENV) or None
    out = _dump_dir(Path(dump_dir)) if dump_dir is not None and str(dump_dir) != "" else None  # "": off
    if out is not None:
        _write(out / "00-input.txt", format_graph(g, "input"))
    for i, p in enumerate(passes, 1):
        before = g
        g = p(g)
        name = pass_name(p)
        log.debug("pass %s: %s", name, "no change" if g is before else f"{len(before.ops)} -> {len(g.ops)} ops")
        if out is not None:
            _write(out / f"{i:02d}-{name}.txt", format_graph(g, f"after pass {i}: {name}"))
    return g


def _dump_dir(d: Path) -> Path:
    """Create ``d`` (and its parents) if missing; refuse a path that exists and is not a directory."""
    if d.exists() and not d.is_dir():
        raise McuqError(f"IR dump directory {d}: exists and is not a directory")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise McuqError(f"IR dump directory {d}: cannot create it ({e.strerror or e})") from None
    return d


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise McuqError(f"IR dump {path}: cannot write it ({e.strerror or e})") from None
