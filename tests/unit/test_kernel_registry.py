"""The kernel registry (mcuq/kernels) against runtime_c: the one contract between Python and C.

Each params dataclass must declare the C struct's fields in order with the same types, each C constant Python
relies on must have the header's value, each kernel's sources must exist and define it, each context-taking
kernel's C ``*_scratch_size`` must agree with its Python mirror, and each kernel must have a numpy mirror.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mcuq._paths import RUNTIME_C
from mcuq.build import host_cc
from mcuq.kernels import C_DEFINES, KERNELS, CStruct, c_fields
from mcuq.kernels.band import BAND_CONV_S8
from mcuq.kernels.cstruct import initializer
from mcuq.kernels.variants import VARIANTS
from mcuq.reference import REFERENCES

HEADERS = sorted((RUNTIME_C / "include").glob("*.h"))
_STRUCT = re.compile(r"typedef struct\s*\{(?P<body>[^}]*)\}\s*(?P<name>\w+)\s*;", re.S)
_FIELD = re.compile(r"^\s*(?P<type>(?:const\s+)?\w+(?:\s*\*)?)\s*(?P<name>\w+)\s*(?:\[(?P<len>\w+)\])?\s*;")


def _c_structs() -> dict[str, list[tuple[str, str]]]:
    structs = {}
    for h in HEADERS:
        text = re.sub(r"/\*.*?\*/", "", h.read_text(), flags=re.S)
        for m in _STRUCT.finditer(text):
            fields = []
            for line in m.group("body").splitlines():
                f = _FIELD.match(line)
                if f:
                    ctype = re.sub(r"\s*\*", " *", f.group("type")).strip()
                    fields.append((ctype + (f"[{f.group('len')}]" if f.group("len") else ""), f.group("name")))
            structs[m.group("name")] = fields
    return structs


def _all_structs() -> set[type[CStruct]]:
    import typing

    seen: set[type[CStruct]] = set()
    todo = [k.params for k in KERNELS.values()]
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for t in typing.get_type_hints(cls).values():
            if isinstance(t, type) and issubclass(t, CStruct):
                todo.append(t)
    return seen


@pytest.mark.parametrize("cls", sorted(_all_structs(), key=lambda c: c.C_NAME), ids=lambda c: c.C_NAME)
def test_params_dataclass_mirrors_the_c_struct(cls: type[CStruct]) -> None:
    structs = _c_structs()
    assert cls.C_NAME in structs, f"{cls.C_NAME} is not declared in runtime_c/include"
    assert c_fields(cls) == structs[cls.C_NAME]


def test_c_defines_agree_with_the_headers() -> None:
    text = "\n".join(h.read_text() for h in HEADERS)
    for name, value in C_DEFINES.items():
        m = re.search(rf"#define\s+{name}\s+\(?(-?\d+)\)?", text)
        assert m, f"{name} is not #defined in runtime_c/include"
        assert int(m.group(1)) == value, name


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_sources_define_it_and_a_mirror_exists(name: str) -> None:
    k = KERNELS[name]
    assert k.sources and all((RUNTIME_C / "src" / s).is_file() for s in k.sources)
    assert re.search(rf"\bmcuq_status\s+{name}\s*\(", (RUNTIME_C / "src" / k.sources[0]).read_text())
    decl = "\n".join(h.read_text() for h in HEADERS)
    sig = re.search(rf"mcuq_status\s+{name}\s*\((?P<args>[^)]*)\)", decl)
    assert sig, f"{name} is not declared in a public header"
    first = sig.group("args").split(",")[0]
    assert ("mcuq_context" in first) == k.context, f"{name}: context argument disagrees with the registry"
    if k.context:
        assert re.search(rf"int32_t\s+{k.scratch_function}\s*\(", decl)
    # A fast variant computes what the portable kernel it replaces computes (mcuq.lower.specialize), and a band
    # what its two convolutions compute: their mirrors stand for it.
    stands_for = [v.replaces for v in VARIANTS if v.kernel is k] or (
        ["mcuq_conv2d_s8", "mcuq_depthwise_conv2d_s8"] if name == BAND_CONV_S8.name else [name]
    )
    for mirrored in stands_for:
        assert mirrored in REFERENCES, f"{name}: {mirrored} has no numpy mirror in mcuq/reference"
    assert (k.variant == "portable") == (stands_for == [name] or name == BAND_CONV_S8.name), name
    assert k.code_bytes > 0 and k.variant in ("portable", "dsp", "mve") and k.dtype


def _sample_params(cls: type[CStruct]):
    """Some valid-looking instance of ``cls``: every int field 1, every array [1, 1]."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        if isinstance(t, type) and issubclass(t, CStruct):
            values[f.name] = _sample_params(t)
        elif f.metadata.get("function"):
            values[f.name] = "mcuq_conv2d_s8"
        elif "elem" in f.metadata:
            values[f.name] = np.ones(2, dtype=np.int32 if f.metadata["elem"] == "int32_t" else np.int8)
        else:
            values[f.name] = 1
    return cls(**values)


def test_scratch_size_c_matches_python(tmp_path: Path) -> None:
    """Each ``<kernel>_scratch_size`` in C returns what the registry's scratch function gives for the same params."""
    ctx_kernels = [k for k in KERNELS.values() if k.context]
    assert ctx_kernels, "no kernel takes an mcuq_context"
    lines = ['#include "mcuq.h"', "#include <stdio.h>"]
    body = []
    for i, k in enumerate(ctx_kernels):
        p = _sample_params(k.params)
        arrays = []

        def ref(path: str, arr: np.ndarray, i: int = i, arrays: list = arrays) -> str:
            name = f"a{i}_{len(arrays)}"
            ctype = "int32_t" if arr.dtype == np.int32 else "int8_t"
            arrays.append(f"static const {ctype} {name}[] = {{{', '.join(str(int(v)) for v in arr)}}};")
            return name

        init = "\n".join(initializer(p, ref))
        lines += arrays
        lines.append(f"static const {k.params_type} p{i} = {{\n{init}\n}};")
        body.append(f'    printf("%ld\\n", (long){k.scratch_function}(&p{i}));')
    src = "\n".join(lines) + "\nint main(void)\n{\n" + "\n".join(body) + "\n    return 0;\n}\n"
    (tmp_path / "t.c").write_text(src)
    sources = sorted({s for k in ctx_kernels for s in k.sources})
    exe = tmp_path / "t"
    cmd = [host_cc(), "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{RUNTIME_C / 'include'}", str(tmp_path / "t.c")]
    cmd += [str(RUNTIME_C / "src" / s) for s in sources] + ["-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True)
    got = [int(v) for v in subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()]
    assert got == [k.scratch_bytes(_sample_params(k.params)) for k in ctx_kernels]


def test_range_violations_name_the_field_and_its_hint() -> None:
    from mcuq.kernels import out_of_range
    from mcuq.kernels.cstruct import RESCALE_HINT
    from mcuq.kernels.types import ActivationRange, PerChannelQuant

    assert out_of_range(ActivationRange(-128, 127)) == []
    assert out_of_range(ActivationRange(-129, 127)) == ["min -129 is outside [-128, 127]"]
    q = PerChannelQuant(np.array([1 << 30, 1 << 30], dtype=np.int32), np.array([0, 31], dtype=np.int32))
    assert out_of_range(q) == [f"shift 0..31 is outside [-31, 30]; {RESCALE_HINT}"]
