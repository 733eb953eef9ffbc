"""The Python API: compile a model to C, write the project, build and run it on the host or in QEMU."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .boards import HOST, Board, load_board
from .build import build_host_runner
from .codegen.emit import Model, build_model, render, render_host_main
from .codegen.names import c_identifier
from .errors import BuildError, McuqError, ModelError
from .fit import check_fit
from .ir import DType, Graph, verify
from .lower import Layer, lower
from .plan import Plan, plan


def _default_sanitize() -> bool:
    return os.environ.get("MCUQ_SANITIZE", "") not in ("", "0")


def load_graph(model: str | os.PathLike | bytes | Graph) -> Graph:
    if isinstance(model, Graph):
        return model
    from .frontend.tflite import load

    return load(model)


def check_quantized(g: Graph) -> None:
    """Reject float graphs with a clear error before lowering (post-training quantization is separate)."""
    for op in g.ops:
        for name in (*op.inputs, *op.outputs):
            if name and g.tensors[name].dtype == DType.FLOAT32:
                raise ModelError(
                    g.source,
                    f"{op.where}: tensor '{name}' is float32. mcuq compiles int8-quantized models; quantize this "
                    "float model first (post-training quantization with calibration data).",
                )


@dataclass(eq=False)
class CompiledModel:
    """A model lowered to C. ``files`` maps file names to contents (the model's .c and .h)."""

    graph: Graph
    layers: tuple[Layer, ...]
    plan: Plan
    model: Model
    files: dict[str, str]
    board: str = "host"
    sanitize: bool = False
    target: Board | None = None  # the board, when it is not the host (it may come from a user's .toml)
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, repr=False)
    _exe: Path | None = field(default=None, repr=False)

    @property
    def prefix(self) -> str:
        return self.model.prefix

    def project_files(self) -> dict[str, str]:
        """Every file of the output folder by relative path: for the host the model's .c/.h, the runtime sources
        its kernels need and a Makefile for a static library; for a board the firmware project."""
        from .firmware.project import render_firmware_project, runtime_sources_for

        if self.board != HOST:
            return render_firmware_project(self, self.target or self.board)
        files = dict(sorted(self.files.items()))
        files.update(runtime_sources_for(self))
        files["Makefile"] = _host_makefile(self.prefix)
        return files

    def write(self, out_dir: str | os.PathLike) -> list[Path]:
        """Write the C project into ``out_dir`` (see ``project_files``).

        Everything is written to a temporary sibling directory first and moved into place at the end, so a
        failure leaves no half-written output directory; a non-empty directory mcuq did not write is refused.
        """
        from .firmware.project import write_tree

        out = write_tree(self.project_files(), out_dir)
        return sorted(p for p in out.rglob("*") if p.is_file())

    # -- host execution -------------------------------------------------------------------------------------
    def _runner(self) -> Path:
        if self._exe is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"mcuq-{self.prefix}-")
            d = Path(self._tmp.name)
            for name, text in self.files.items():
                (d / name).write_text(text)
            (d / "runner.c").write_text(render_host_main(self.model))
            self._exe = build_host_runner(d, self.prefix, self.sanitize)
        return self._exe

    def normalise_inputs(self, inputs) -> tuple[list[np.ndarray], int, bool]:
        """Check ``inputs`` against the model: (one array per input with a leading batch axis, batch size,
        whether the caller gave a batch). Wrong count, dtype or shape raise McuqError naming the input."""
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        inputs = list(inputs)
        if len(inputs) != len(self.model.inputs):
            raise McuqError(f"the model has {len(self.model.inputs)} input(s); {len(inputs)} given")
        arrays, batch, batched = [], None, False
        for port, x in zip(self.model.inputs, inputs):
            x = np.asarray(x)
            want = self.graph.tensors[port.tensor]
            if x.dtype != want.dtype.np:
                raise McuqError(f"input '{port.tensor}': dtype {x.dtype}, the model wants {want.dtype.value}")
            if tuple(x.shape) == want.shape:
                n, b = 1, False
                x = x.reshape((1, *want.shape))
            elif tuple(x.shape[1:]) == want.shape:
                n, b = x.shape[0], True
            else:
                raise McuqError(
                    f"input '{port.tensor}': shape {list(x.shape)}, the model wants {list(want.shape)} "
                    "(or a batch of those with one extra leading axis)"
                )
            if batch is not None and (n, b) != (batch, batched):
                raise McuqError("all inputs must have the same batch size")
            batch, batched = n, b
            arrays.append(np.ascontiguousarray(x))
        return arrays, int(batch or 1), batched

    def _execute(self, inputs, want_layers: bool):
        arrays, n, batched = self.normalise_inputs(inputs)
        if self.board != HOST:
            if want_layers:
                raise McuqError("run_layers runs on the host only (board 'host'); use `mcuq bench` on a board")
            from .firmware.qemu import run_batch

            b = self.target or load_board(self.board)
            if not b.emulated:
                raise McuqError(
                    f"board '{self.board}' is a real board: mcuq compiles and fit-checks for it but cannot run it; "
                    "run on an emulated board (mcuq boards) or on the host"
                )
            outs = run_batch(self, b, arrays, n)
            return [a if batched else a[0] for a in outs], None
        exe = self._runner()
        d = exe.parent
        inp, outp, lay = d / "in.bin", d / "out.bin", d / "layers.bin"
        with open(inp, "wb") as f:
            for i in range(n):
                for a in arrays:
                    f.write(a[i].tobytes())
        cmd = [str(exe), str(inp), str(outp), str(n)] + ([str(lay)] if want_layers else [])
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0", UBSAN_OPTIONS="print_stacktrace=1")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        except subprocess.TimeoutExpired:
            raise BuildError(f"{self.prefix}: the host run timed out after 600 s") from None
        if proc.returncode != 0:
            raise BuildError(f"{self.prefix}: the host run failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        raw = outp.read_bytes()
        outs, pos = [], 0
        per = [(p, self.graph.tensors[p.tensor]) for p in self.model.outputs]
        rec = sum(t.nbytes for _, t in per)
        buf = np.frombuffer(raw, dtype=np.uint8).reshape(n, rec)
        for _, t in per:
            a = buf[:, pos : pos + t.nbytes].copy().view(t.dtype.np).reshape((n, *t.shape))
            outs.append(a if batched else a[0])
            pos += t.nbytes
        layers = None
        if want_layers:
            layers = {}
            sizes = [(c, self.graph.tensors[lay_.outputs[0]]) for c, lay_ in zip(self.model.calls, self.layers)]
            rec = sum(t.nbytes for _, t in sizes)
            buf = np.frombuffer(lay.read_bytes(), dtype=np.uint8).reshape(n, rec)
            pos = 0
            for lay_, (_, t) in zip(self.layers, sizes):
                a = buf[:, pos : pos + t.nbytes].copy().view(t.dtype.np).reshape((n, *t.shape))
                layers[lay_.outputs[0]] = a if batched else a[0]
                pos += t.nbytes
        return outs, layers

    def run(self, inputs) -> list[np.ndarray]:
        """Run the generated C on the host. ``inputs``: one array per model input (or one array for a
        single-input model), each with the input's shape or a batch of them with one extra leading axis."""
        return self._execute(inputs, False)[0]

    def run_layers(self, inputs) -> dict[str, np.ndarray]:
        """Every layer's output tensor, by tensor name, as computed by the generated C."""
        return self._execute(inputs, True)[1]


def compile_model(
    model: str | os.PathLike | bytes | Graph,
    board: str = "host",
    prefix: str | None = None,
    sanitize: bool | None = None,
) -> CompiledModel:
    """Load, lower, plan and generate C for ``model`` (a .tflite path, its bytes, or an IR graph) for ``board``
    (``mcuq boards`` lists them). For a board other than the host, the model must fit its flash and RAM
    (``FitError`` otherwise, with the numbers)."""
    b = load_board(board)
    g = load_graph(model)
    verify(g)
    check_quantized(g)
    layers = lower(g)
    p = plan(g, layers)
    if prefix is None:
        prefix = Path(str(model)).stem if isinstance(model, (str, os.PathLike)) else (g.name or "model")
    m = build_model(g, layers, p, c_identifier(prefix))
    cm = CompiledModel(
        graph=g,
        layers=layers,
        plan=p,
        model=m,
        files=render(m),
        board=b.name,
        sanitize=_default_sanitize() if sanitize is None else sanitize,
        target=None if b.name == HOST else b,
    )
    if b.name != HOST:
        check_fit(b, cm)
    return cm


def _host_makefile(prefix: str) -> str:
    return f"""# Builds lib{prefix}.a: the generated model and the mcuq runtime. Generated by mcuq.
CC ?= cc
CFLAGS ?= -std=c99 -O2 -Wall -Wextra -Werror
SRCS := {prefix}.c $(wildcard mcuq_runtime/src/*/*.c)
OBJS := $(SRCS:.c=.o)

lib{prefix}.a: $(OBJS)
\t$(AR) rcs $@ $^

%.o: %.c
\t$(CC) $(CFLAGS) -Imcuq_runtime/include -I. -c $< -o $@

clean:
\trm -f $(OBJS) lib{prefix}.a

.PHONY: clean
"""
