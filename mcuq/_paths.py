"""Where mcuq's data directories are: inside the installed package, or at the root of a checkout.

A wheel ships templates/, runtime_c/ and boards/ as package data (mcuq/templates, ...; see pyproject.toml);
in a source checkout (and an editable install) they are the top-level directories next to mcuq/.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    installed = _PKG / name
    return installed if installed.is_dir() else _PKG.parent / name


TEMPLATES = _find("templates")
RUNTIME_C = _find("runtime_c")
BOARDS = _find("boards")
