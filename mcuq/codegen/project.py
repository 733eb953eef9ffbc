"""Assemble and write a generated project folder: the model's C, the runtime sources it calls, and files rendered
from ``templates/<folder>/`` (the host's Makefile here; the firmware folder's files through
``mcuq.firmware.project``, which adds what only a board knows).

A folder is a ``dict`` of relative path -> text, built deterministically, and written by :func:`write_tree`,
which never overwrites a directory that mcuq did not write (it leaves a marker file in its own).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from .._paths import RUNTIME_C, TEMPLATES
from ..errors import McuqError
from ..kernels import sources_of

if TYPE_CHECKING:
    from .emit import Model

MARKER = ".mcuq-output"
HOST_FILES = ("Makefile",)


def kernel_names(model: Model) -> frozenset[str]:
    """The names of the C kernels the generated model calls (alias layers call none)."""
    return frozenset(c.kernel for c in model.calls if c.kernel)


# -- runtime selection ---------------------------------------------------------------------------------------
def runtime_files(kernels: Iterable[str]) -> list[Path]:
    """The runtime .c files the named kernels need, from the kernel registry (``mcuq.kernels``)."""
    return [RUNTIME_C / "src" / rel for rel in sources_of(sorted(set(kernels)))]


def runtime_sources(kernel_names: Iterable[str]) -> dict[str, str]:
    """The runtime files a model calling ``kernel_names`` needs, by relative path under ``mcuq_runtime/``: the
    public headers (``include/``), the runtime's internal headers (``src/<dir>/*.h``) and the kernel sources."""
    files = {f"mcuq_runtime/include/{p.name}": p.read_text() for p in sorted((RUNTIME_C / "include").glob("*.h"))}
    for p in [*sorted((RUNTIME_C / "src").glob("*/*.h")), *runtime_files(kernel_names)]:
        files[f"mcuq_runtime/src/{p.parent.name}/{p.name}"] = p.read_text()
    return files


# -- templates -----------------------------------------------------------------------------------------------
def render_templates(folder: str, names: Iterable[str], context: Mapping[str, Any]) -> dict[str, str]:
    """``templates/<folder>/<name>.j2`` rendered with ``context``, for each of ``names``, by name."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES / folder)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return {name: env.get_template(f"{name}.j2").render(**context) for name in names}


def model_files(model: Model, files: Mapping[str, str]) -> dict[str, str]:
    """The model's own files (``<prefix>.c``, ``<prefix>.h``) and the runtime sources it calls, by relative path."""
    out = dict(sorted(files.items()))
    out.update(runtime_sources(kernel_names(model)))
    return out


def host_project_files(model: Model, files: Mapping[str, str]) -> dict[str, str]:
    """The host folder: the model, the runtime it calls, and a Makefile building ``lib<prefix>.a`` with ``cc``."""
    out = model_files(model, files)
    out.update(render_templates("host", HOST_FILES, {"prefix": model.prefix}))
    return out


# -- writing -------------------------------------------------------------------------------------------------
def write_tree(files: Mapping[str, str], out_dir: str | os.PathLike) -> Path:
    """Write ``files`` into ``out_dir`` through a staging sibling, replacing a directory mcuq wrote before.

    Refuses a non-empty directory without mcuq's marker file, so a user's folder is never overwritten; a
    failure leaves no half-written output directory."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not (out / MARKER).exists() and any(out.iterdir()):
        raise McuqError(f"{out}: exists and was not written by mcuq; refusing to overwrite it (choose another -o)")
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for rel, text in files.items():
            p = stage / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        (stage / MARKER).write_text("written by mcuq; `mcuq compile` replaces this directory\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out
