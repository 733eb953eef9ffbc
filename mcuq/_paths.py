"""Where mcuq's data directories are: inside the installed package, or at the root of a checkout."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent


def _find(name: str) -> Path:
    # Installed wheel: templates/, runtime_c/ and boards/ are shipped as mcuq.<name> package data.
    try:
        p = Path(str(importlib.resources.files(f"mcuq.{name}")))
        if p.is_dir() and any(p.iterdir()):
            return p
    except (ModuleNotFoundError, TypeError):
        pass
    # Source checkout (editable install, or running from the tree).
    return _ROOT / name


TEMPLATES = _find("templates")
RUNTIME_C = _find("runtime_c")
BOARDS = _find("boards")
