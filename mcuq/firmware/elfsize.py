"""Flash and RAM of a firmware ELF, read with pyelftools.

``text``, ``data`` and ``bss`` are what ``arm-none-eabi-size`` (Berkeley format) prints: the sum of the allocated
sections that are read-only (text), writable with contents (data) and without contents (bss). On top of that:

- flash = text + data (the initial values of .data are stored in flash); split into ``code`` (executable
  sections), ``rodata`` (the other read-only sections: vectors, constants, weights) and ``data``;
  ``weights``: the model's constant arrays and parameter structs, the read-only objects that the model's own
  translation unit (``<prefix>.c``) defines;
- RAM = data + bss; split into ``arena`` (the ``<prefix>_arena`` symbol), ``stack`` (the ``.stack`` section that
  the firmware linker script reserves) and ``ram_other`` (the rest of .data/.bss: I/O buffers, runtime state).
"""

from __future__ import annotations

import os
import subprocess

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from ..errors import BuildError


def _symbols(elf: ELFFile):
    tab = elf.get_section_by_name(".symtab")
    return list(tab.iter_symbols()) if isinstance(tab, SymbolTableSection) else []


def _model_objects(elf: ELFFile, syms, prefix: str, readonly: set[int]) -> int:
    """Bytes of the read-only data objects defined in ``<prefix>.c`` (its local symbols follow its STT_FILE)."""
    total, inside = 0, False
    for s in syms:
        if s["st_info"]["type"] == "STT_FILE":
            inside = os.path.basename(s.name) == f"{prefix}.c"
        elif s["st_info"]["bind"] != "STB_LOCAL":
            inside = False  # globals follow all locals, after the last file's
        elif inside and s["st_info"]["type"] == "STT_OBJECT":
            if isinstance(s["st_shndx"], int) and s["st_shndx"] in readonly:
                total += s["st_size"]
    return total


def elf_sizes(elf_path: str | os.PathLike, prefix: str | None = None) -> dict[str, int]:
    """Section sums of ``elf_path`` (see the module docstring). ``prefix`` names the model, for arena/weights."""
    try:
        f = open(elf_path, "rb")
    except OSError as e:
        raise BuildError(f"{elf_path}: cannot read the firmware ELF ({e.strerror})") from None
    with f:
        elf = ELFFile(f)
        text = data = bss = code = 0
        readonly: set[int] = set()
        stack = 0
        for i, sec in enumerate(elf.iter_sections()):
            flags = sec["sh_flags"]
            if not flags & SH_FLAGS.SHF_ALLOC:
                continue
            size = sec["sh_size"]
            if sec["sh_type"] == "SHT_NOBITS":
                bss += size
                if sec.name == ".stack":
                    stack += size
            elif not flags & SH_FLAGS.SHF_WRITE:
                text += size
                readonly.add(i)
                if flags & SH_FLAGS.SHF_EXECINSTR:
                    code += size
            else:
                data += size
        syms = _symbols(elf)
        arena = weights = 0
        if prefix:
            arena = sum(s["st_size"] for s in syms if s.name == f"{prefix}_arena")
            weights = _model_objects(elf, syms, prefix, readonly)
    return {
        "text": text,
        "data": data,
        "bss": bss,
        "dec": text + data + bss,
        "flash": text + data,
        "code": code,
        "rodata": text - code,
        "weights": weights,
        "ram": data + bss,
        "arena": arena,
        "stack": stack,
        "ram_other": data + bss - arena - stack,
    }


def format_sizes(s: dict[str, int]) -> str:
    """Two lines: flash and RAM, each with its parts."""
    return (
        f"flash {s['flash']} B: code (.text) {s['code']}, read-only data (.rodata etc.) {s['rodata']} "
        f"(model weights and parameters {s['weights']}), .data {s['data']}\n"
        f"RAM   {s['ram']} B: arena {s['arena']}, stack {s['stack']}, other .data/.bss {s['ram_other']}"
    )


def arm_size(elf_path: str | os.PathLike, timeout: float = 30) -> dict[str, int]:
    """``arm-none-eabi-size`` (Berkeley format) of ``elf_path``: text, data, bss, dec. For cross-checking."""
    try:
        proc = subprocess.run(
            ["arm-none-eabi-size", "-B", str(elf_path)], capture_output=True, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BuildError(f"arm-none-eabi-size failed on {elf_path}: {e}") from None
    if proc.returncode != 0:
        raise BuildError(f"arm-none-eabi-size failed on {elf_path}: {proc.stderr.strip()}")
    values = proc.stdout.splitlines()[1].split()
    return dict(zip(("text", "data", "bss", "dec"), map(int, values[:4])))


def code_by_owner(
    elf_path: str | os.PathLike, kernels: dict[str, tuple[str, ...]], prefix: str | None = None
) -> dict[str, int]:
    """Bytes of the linked functions (ELF symbol sizes, STT_FUNC) per owner: each kernel of ``kernels`` (name ->
    its runtime sources, as the registry's ``Kernel.sources``), ``model`` (the functions of ``<prefix>.c``) and
    ``other`` (the firmware's startup and main, libgcc, anything no listed kernel owns).

    Sources are owned as ``kernels.code_bytes_of`` counts them: a file belongs to the kernel whose first source it
    is, else to the first kernel that lists it (a callee), so a shared file is counted once. A file-local function
    belongs to the file whose STT_FILE symbol precedes it. The ELF keeps no file for a global function: it belongs
    to the file named after its longest prefix (``mcuq_conv2d_s8_scratch_size`` -> ``mcuq_conv2d_s8.c``; runtime
    files are named after the kernel they define), else to the kernel of that name. Alignment padding between
    functions belongs to no one: the sum is at most ``elf_sizes(...)["code"]``."""
    files: dict[str, str] = {}
    for name, sources in sorted(kernels.items()):
        if sources:
            files.setdefault(os.path.basename(sources[0]), name)
    for name, sources in sorted(kernels.items()):
        for src in sources:
            files.setdefault(os.path.basename(src), name)
    if prefix:
        files[f"{prefix}.c"] = "model"
    stems = sorted(((f[:-2], o) for f, o in files.items() if f.endswith(".c")), key=lambda t: (-len(t[0]), t[0]))
    names = sorted(((k, k) for k in kernels), key=lambda t: (-len(t[0]), t[0]))

    def global_owner(sym: str) -> str:
        for stem, owner in (*stems, *names):
            if sym == stem or sym.startswith(stem + "_"):
                return owner
        return "other"

    out = dict.fromkeys(sorted(kernels), 0)
    out["model"] = out["other"] = 0
    try:
        f = open(elf_path, "rb")
    except OSError as e:
        raise BuildError(f"{elf_path}: cannot read the firmware ELF ({e.strerror})") from None
    with f:
        elf = ELFFile(f)
        executable = {i for i, sec in enumerate(elf.iter_sections()) if sec["sh_flags"] & SH_FLAGS.SHF_EXECINSTR}
        seen: set[int] = set()
        current = ""
        for s in _symbols(elf):
            kind = s["st_info"]["type"]
            if kind == "STT_FILE":
                current = os.path.basename(s.name)
                continue
            if kind != "STT_FUNC" or not isinstance(s["st_shndx"], int) or s["st_shndx"] not in executable:
                continue
            if s["st_value"] in seen:  # another name of a function already counted
                continue
            seen.add(s["st_value"])
            local = s["st_info"]["bind"] == "STB_LOCAL"
            out[files.get(current, "other") if local else global_owner(s.name)] += s["st_size"]
    return out
