"""Every C kernel's status returns, table-driven: MCUQ_OK for valid calls, MCUQ_ERR_ARGUMENT for a NULL pointer or
an impossible parameter, MCUQ_ERR_UNSUPPORTED for a valid call the kernel does not implement.

The table, error_returns.toml beside this file, has one entry per kernel of the registry (mcuq.kernels.KERNELS):
its valid params, its call's arguments, and rows that each break one thing (the file's header explains its
syntax). Each kernel's test builds a small C program from its entry against the kernel's own sources with
-fsanitize=address,undefined, runs it, and checks every row: the program prints each call's status by its enum
name, so the test does not depend on the enum's values.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcuq._paths import RUNTIME_C
from mcuq.build import SANITIZE_FLAGS, host_cc
from mcuq.kernels import KERNELS, sources_of

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (tomli is a dependency there)
    import tomli as tomllib  # type: ignore[no-redef]

TABLE = tomllib.loads((Path(__file__).parent / "error_returns.toml").read_text())
ENTRIES: list[dict[str, Any]] = TABLE["kernel"]
OK, ARGUMENT, UNSUPPORTED = "OK", "ARGUMENT", "UNSUPPORTED"

_MAIN = r"""
#include <stdio.h>
#include "mcuq.h"

/* A status by its enum name; anything else (a scratch size, a data check) as a number. */
static void report(const char *what, int value, int is_status)
{
    const char *name = !is_status                       ? NULL
                       : value == MCUQ_OK               ? "OK"
                       : value == MCUQ_ERR_ARGUMENT     ? "ARGUMENT"
                       : value == MCUQ_ERR_UNSUPPORTED  ? "UNSUPPORTED"
                                                        : NULL;
    if (name != NULL) {
        printf("%s|%s\n", what, name);
    } else {
        printf("%s|%d\n", what, value);
    }
}
"""


@dataclass(frozen=True)
class Check:
    """One call of the C program: ``what`` names it, ``setup`` are statements before it, ``want`` its result."""

    what: str
    setup: str
    expr: str
    want: str | int

    @property
    def is_status(self) -> bool:
        return isinstance(self.want, str)


def _args(spec: str) -> list[tuple[str, str, bool]]:
    """ "name=expr, name?=expr" -> [(name, expr, NULL allowed)]."""
    out = []
    for part in spec.split(", "):
        name, expr = part.split("=", 1)
        out.append((name.rstrip("?"), expr, name.endswith("?")))
    return out


def _expand(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A row, or the rows of a shorthand (see the table's header)."""
    if "nonpositive" in row:
        return [{"what": f"{f} 0", "want": ARGUMENT, "change": f"p.{f} = 0;"} for f in row["nonpositive"]]
    if "out_of_range" in row:
        bad = (row["lo"] - 1, row["hi"] + 1)
        return [
            {"what": f"{f} {v}", "want": ARGUMENT, "change": f"p.{f} = {v};"} for f in row["out_of_range"] for v in bad
        ]
    return [row]


def checks(entry: dict[str, Any]) -> list[Check]:
    """The entry's calls: the valid call, a NULL for each pointer argument, its groups' rows, its own rows."""
    k = KERNELS[entry["name"]]
    args = _args(entry["args"])
    rows: list[dict[str, Any]] = [{"what": "valid call", "want": OK}]
    for name, _, optional in args:
        what = f"NULL {name}" + (" (allowed)" if optional else "")
        rows.append({"what": what, "want": OK if optional else ARGUMENT, "swap": f"{name}=NULL"})
    for row in [r for g in entry.get("groups", []) for r in TABLE["groups"][g]] + entry.get("rows", []):
        rows += _expand(row)
    out = []
    for row in rows:
        swapped = {n: e for n, e, _ in _args(row["swap"])} if "swap" in row else {}
        call = f"{k.name}({', '.join(swapped.get(n, e) for n, e, _ in args)})"
        setup = f"{k.params_type} p = {entry['params']}; {row.get('change', '')} (void)p;"
        out.append(Check(row["what"], setup, row["expr"].format(k=k.name) if "expr" in row else call, row["want"]))
    return out


def program(entry: dict[str, Any]) -> str:
    body = []
    for c in checks(entry):
        assert '"' not in c.what and "|" not in c.what, c.what
        body.append(
            f'    {{\n        {c.setup}\n        report("{c.what}", (int)({c.expr}), {int(c.is_status)});\n    }}'
        )
    prelude = TABLE["families"][entry["family"]]["prelude"]
    return "\n".join([_MAIN, prelude, "int main(void)\n{", *body, "    return 0;\n}\n"])


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["name"])
def test_error_returns(entry: dict[str, Any], tmp_path: Path) -> None:
    src = tmp_path / "errors.c"
    src.write_text(program(entry))
    exe = tmp_path / "errors"
    kernel_srcs = [str(RUNTIME_C / "src" / s) for s in sources_of([entry["name"], *entry.get("links", ())])]
    cc = [host_cc(), *SANITIZE_FLAGS, f"-I{RUNTIME_C / 'include'}", "-o", str(exe), str(src), *kernel_srcs]
    build = subprocess.run(cc, capture_output=True, text=True)
    assert build.returncode == 0, f"{entry['name']}: the test program does not build:\n{build.stderr[-3000:]}"
    run = subprocess.run([str(exe)], capture_output=True, text=True)
    got = dict(line.split("|", 1) for line in run.stdout.splitlines())
    wrong = []
    for c in checks(entry):
        if c.what not in got:
            wrong.append(f"  {c.what}: no result (the program stopped: rc {run.returncode})")
        elif got[c.what] != str(c.want):
            wrong.append(f"  {c.what}: {got[c.what]}, want {c.want}")
    assert not wrong, f"{entry['name']}:\n" + "\n".join(wrong) + f"\n{run.stderr[-3000:]}"
    assert run.returncode == 0, run.stderr[-3000:]


def test_every_kernel_has_error_returns() -> None:
    """Each registered kernel has a table entry with a valid call and at least one error return."""
    by_kernel = {e["name"]: e for e in ENTRIES}
    assert len(by_kernel) == len(ENTRIES), "a kernel has two table entries"
    missing = sorted(set(KERNELS) - set(by_kernel))
    assert not missing, f"kernels without an error-return table entry: {missing}"
    for name, entry in by_kernel.items():
        cs = checks(entry)
        assert len({c.what for c in cs}) == len(cs), f"{name}: two rows of one name"
        wants = {c.want for c in cs}
        assert OK in wants and wants & {ARGUMENT, UNSUPPORTED}, name
        assert KERNELS[name].context == entry["args"].startswith("ctx="), f"{name}: context argument"
