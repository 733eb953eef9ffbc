"""Assemble and write a generated project folder: the model's C, the runtime sources it calls, and files rendered
from ``templates/<folder>/`` (the host's Makefile here; the firmware folder's files through
``mcuq.firmware.project``, which adds what only a board knows).

A folder is a ``dict`` of relative path -> text, built deterministically, and written in place by
:func:`mcuq.codegen.outdir.write_tree` (a manifest of what mcuq wrote; a user's file is never deleted). What the
generated Makefiles and CMake build goes under ``build/``. Board-derived values reach the build files only through
the quoting filters of ``mcuq.codegen.buildfiles``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from .._paths import RUNTIME_C, TEMPLATES
from ..kernels import sources_of
from .buildfiles import FILTERS
from .outdir import BUILD_DIR, MANIFEST, write_tree  # noqa: F401 (re-exported: folders are written through here)

if TYPE_CHECKING:
    from .emit import Model

HOST_FILES = ("Makefile",)


def kernel_names(model: Model) -> frozenset[str]:
    """The names of the C kernels the generated model calls (alias layers call none), with those a call's params
    point to."""
    return frozenset(k for c in model.calls if c.kernel for k in (c.kernel, *c.callees))


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
@functools.cache  # one environment per template folder: templates are compiled once
def _env(folder: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES / folder)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env


def render_templates(folder: str, names: Iterable[str], context: Mapping[str, Any]) -> dict[str, str]:
    """``templates/<folder>/<name>.j2`` rendered with ``context``, for each of ``names``, by name. The filters
    ``make_words``, ``cmake_items`` and ``comment`` (``mcuq.codegen.buildfiles``) quote values for build files."""
    env = _env(folder)
    return {name: env.get_template(f"{name}.j2").render(**context) for name in names}


def model_files(model: Model, files: Mapping[str, str]) -> dict[str, str]:
    """The model's own files (``<prefix>.c``, ``<prefix>.h``) and the runtime sources it calls, by relative path."""
    out = dict(sorted(files.items()))
    out.update(runtime_sources(kernel_names(model)))
    return out


def host_project_files(model: Model, files: Mapping[str, str]) -> dict[str, str]:
    """The host folder: the model, the runtime it calls, and a Makefile building ``build/lib<prefix>.a`` with ``cc``."""
    out = model_files(model, files)
    out.update(render_templates("host", HOST_FILES, {"prefix": model.prefix}))
    return out
