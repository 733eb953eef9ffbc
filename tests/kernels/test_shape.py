"""Shape ops (RESHAPE, SQUEEZE, PAD, CONCATENATION, TRANSPOSE): lowering, numpy reference and C, bit-exact
with the oracle (tflite-runtime 2.14, BUILTIN_REF) on one-op models, by the three-way check of
tests/util/harness.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mcuq import ir
from mcuq.errors import ModelError
from mcuq.lower import lower
from mcuq.reference import run_graph
from tests.util import oracle
from tests.util.harness import random_inputs, three_way

ROOT = Path(__file__).resolve().parents[2]
N_INPUTS = 4  # random inputs per case, run as one batch (one C build per case)


def _t(name: str, shape, scale: float = 0.05, zp: int = 0) -> ir.Tensor:
    return ir.Tensor(name, tuple(shape), ir.DType.INT8, ir.QParams((scale,), (zp,)))


def _graph(kind: ir.OpKind, attrs, ins: list[ir.Tensor], out: ir.Tensor, origin: str = "") -> ir.Graph:
    tensors = {t.name: t for t in [*ins, out]}
    names = tuple(t.name for t in ins)
    op = ir.Op(kind, kind.value.lower(), names, (out.name,), attrs, origin=origin)
    return ir.Graph(kind.value.lower(), tensors, (op,), tuple(dict.fromkeys(names)), (out.name,))


def pad_graph(shape, pads, zin=0, zout=0, sin=0.05, sout=0.05) -> ir.Graph:
    oshape = [d + b + a for d, (b, a) in zip(shape, pads, strict=True)]
    attrs = ir.PadAttrs(tuple(tuple(p) for p in pads))
    return _graph(ir.OpKind.PAD, attrs, [_t("x", shape, sin, zin)], _t("y", oshape, sout, zout))


def concat_graph(shapes, axis, zp=0, scale=0.05) -> ir.Graph:
    ins = [_t(f"x{i}", s, scale, zp) for i, s in enumerate(shapes)]
    oshape = list(shapes[0])
    oshape[axis] = sum(s[axis] for s in shapes)
    return _graph(ir.OpKind.CONCAT, ir.ConcatAttrs(axis), ins, _t("y", oshape, scale, zp))


def transpose_graph(shape, perm, zin=0, zout=0, sin=0.05, sout=0.05) -> ir.Graph:
    oshape = [shape[p] for p in perm]
    return _graph(
        ir.OpKind.TRANSPOSE, ir.TransposeAttrs(tuple(perm)), [_t("x", shape, sin, zin)], _t("y", oshape, sout, zout)
    )


def reshape_graph(kind: ir.OpKind, shape, oshape, zp=0, origin: str = "") -> ir.Graph:
    """A RESHAPE; ``origin="SQUEEZE"`` makes the oracle model a TFLite SQUEEZE."""
    return _graph(kind, ir.ReshapeAttrs(), [_t("x", shape, 0.1, zp)], _t("y", oshape, 0.1, zp), origin)


PAD_CASES = {
    "image_style": pad_graph((1, 5, 7, 3), [(0, 0), (1, 1), (2, 1), (0, 0)], -128, -128),
    "all_dims": pad_graph((2, 3, 1, 5), [(1, 0), (0, 2), (3, 1), (1, 1)], 5, 5),
    "zp_127": pad_graph((1, 4, 4, 2), [(0, 0), (0, 3), (0, 0), (2, 0)], 127, 127),
    "channels_only": pad_graph((1, 3, 3, 5), [(0, 0), (0, 0), (0, 0), (2, 3)], -7, -7),
    "rank1": pad_graph((7,), [(3, 2)], 0, 0),
    "rank2": pad_graph((3, 5), [(0, 1), (2, 0)], 10, 10),
    "rank3": pad_graph((2, 1, 9), [(0, 0), (1, 1), (0, 0)], -1, -1),
    "rank5": pad_graph((1, 2, 3, 2, 3), [(0, 1), (1, 0), (0, 0), (1, 2), (0, 1)], 3, 3),
    "no_padding": pad_graph((1, 3, 4, 2), [(0, 0)] * 4, 0, 0),
    # TFLite 2.14 accepts different quantization: data copied unchanged, padding = the output's zero point.
    "out_zp_differs": pad_graph((1, 3, 3, 1), [(0, 0), (1, 1), (1, 1), (0, 0)], 4, -100, 0.05, 0.2),
    "outer_dims_only": pad_graph((2, 3, 4), [(1, 2), (0, 0), (0, 0)], -50, -50),
}

CONCAT_CASES = {
    "channels": concat_graph([(1, 4, 4, 3), (1, 4, 4, 5)], 3, -128),
    "width": concat_graph([(1, 3, 2, 2), (1, 3, 5, 2), (1, 3, 1, 2)], 2, 127),
    "height": concat_graph([(1, 1, 3, 3), (1, 4, 3, 3)], 1, 9),
    "batch": concat_graph([(2, 3, 1, 2), (1, 3, 1, 2)], 0, -3),
    "four_inputs": concat_graph([(1, 5, 1), (1, 5, 3), (1, 5, 2), (1, 5, 7)], 2, 0, 0.3),
    "rank1": concat_graph([(3,), (5,), (1,)], 0, 100),
    "rank2_axis1": concat_graph([(3, 2), (3, 7)], 1, -20),
    "one_input": concat_graph([(2, 3, 4)], 1, 1),
    "rank5": concat_graph([(1, 2, 3, 2, 2), (1, 2, 3, 1, 2)], 3, -128),
}

TRANSPOSE_CASES = {
    "nhwc_to_nchw": transpose_graph((1, 5, 7, 3), (0, 3, 1, 2), 3, 3),
    "nchw_to_nhwc": transpose_graph((2, 3, 4, 5), (0, 2, 3, 1), -128, -128),
    "reverse4": transpose_graph((2, 3, 4, 5), (3, 2, 1, 0), 127, 127),
    "rank2": transpose_graph((7, 9), (1, 0), 0, 0),
    "rank3": transpose_graph((3, 1, 5), (2, 0, 1), 11, 11),
    "rank5": transpose_graph((2, 3, 2, 1, 3), (4, 0, 3, 2, 1), -5, -5),
    "rank6": transpose_graph((2, 1, 3, 2, 2, 3), (5, 3, 1, 0, 4, 2), 1, 1),
    "identity": transpose_graph((2, 3, 4), (0, 1, 2), 0, 0),
    "unit_dims_only": transpose_graph((1, 6, 1), (2, 1, 0), 0, 0),
    "rank1": transpose_graph((5,), (0,), 0, 0),
    # TFLite 2.14 does not compare quantization parameters for TRANSPOSE: the data is copied unchanged.
    "qparams_differ": transpose_graph((2, 3, 4), (1, 2, 0), 3, -9, 0.05, 0.5),
}

ALIAS_CASES = {
    "reshape_flatten": reshape_graph(ir.OpKind.RESHAPE, (1, 2, 3, 4), (1, 24), -128),
    "reshape_3d": reshape_graph(ir.OpKind.RESHAPE, (2, 6), (3, 2, 2), 5),
    "squeeze": reshape_graph(ir.OpKind.RESHAPE, (1, 1, 1, 10), (1, 10), 127, origin="SQUEEZE"),
}

CASES = {
    **{f"pad-{k}": v for k, v in PAD_CASES.items()},
    **{f"concat-{k}": v for k, v in CONCAT_CASES.items()},
    **{f"transpose-{k}": v for k, v in TRANSPOSE_CASES.items()},
    **{f"alias-{k}": v for k, v in ALIAS_CASES.items()},
}


def _reference(g: ir.Graph, xs: list[np.ndarray]) -> np.ndarray:
    """The graph's output from the numpy mirrors, for one set of inputs (no batch axis)."""
    return run_graph(g, xs, keep="outputs")[g.outputs[0]]


def _check(g: ir.Graph, seed: int, name: str, layers: bool = False) -> None:
    """Oracle vs numpy reference vs generated C on N_INPUTS random inputs; with ``layers``, every layer's C
    output against the reference too."""
    three_way(g, random_inputs(g, N_INPUTS, seed), name=name, layers=layers)


@pytest.mark.oracle
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_oracle(name: str) -> None:
    _check(CASES[name], seed=sum(map(ord, name)), name=name)


@pytest.mark.oracle
def test_chain_with_alias_in_the_middle() -> None:
    """PAD -> RESHAPE -> TRANSPOSE -> SQUEEZE: aliases between real kernels, and a graph output that is an alias."""
    q = (0.1, -4)
    ts = [
        _t("x", (1, 3, 4, 2), *q),
        _t("p", (1, 4, 5, 2), *q),
        _t("r", (1, 20, 2), *q),
        _t("t", (1, 2, 20), *q),
        _t("y", (2, 20), *q),
    ]
    ops = (
        ir.Op(ir.OpKind.PAD, "pad", ("x",), ("p",), ir.PadAttrs(((0, 0), (1, 0), (0, 1), (0, 0)))),
        ir.Op(ir.OpKind.RESHAPE, "reshape", ("p",), ("r",), ir.ReshapeAttrs(), 1),
        ir.Op(ir.OpKind.TRANSPOSE, "transpose", ("r",), ("t",), ir.TransposeAttrs((0, 2, 1)), 2),
        ir.Op(ir.OpKind.RESHAPE, "squeeze", ("t",), ("y",), ir.ReshapeAttrs(), 3, origin="SQUEEZE"),
    )
    _check(ir.Graph("chain", {t.name: t for t in ts}, ops, ("x",), ("y",)), seed=7, name="chain", layers=True)


@pytest.mark.oracle
def test_alias_only_model_layers() -> None:
    _check(ALIAS_CASES["reshape_flatten"], seed=3, name="reshape_flatten", layers=True)


# -- lowering: simplified shapes and TFLite's restrictions (no oracle needed) --------------------------------


def _layer(g: ir.Graph):
    return lower(g)[0]


def test_simplified_kernels() -> None:
    lay = _layer(PAD_CASES["image_style"])
    assert lay.kernel.name == "mcuq_pad_s8" and lay.p("pad_value") == -128
    assert list(lay.p("in_dims")) == [1, 1, 1, 5, 21] and list(lay.p("pad_before")) == [0, 0, 0, 1, 6]
    assert _layer(PAD_CASES["no_padding"]).kernel.name == "mcuq_copy_s8"
    assert _layer(PAD_CASES["out_zp_differs"]).p("pad_value") == -100
    assert _layer(TRANSPOSE_CASES["identity"]).kernel.name == "mcuq_copy_s8"
    assert _layer(TRANSPOSE_CASES["unit_dims_only"]).kernel.name == "mcuq_copy_s8"
    lay = _layer(TRANSPOSE_CASES["nchw_to_nhwc"])  # (2, 3, 4*5) -> (2, 20, 3)
    assert list(lay.p("out_dims")) == [1, 1, 1, 2, 20, 3] and list(lay.p("in_strides")) == [0, 0, 0, 60, 1, 20]
    lay = _layer(CONCAT_CASES["width"])
    assert lay.args[0] == ("x0", "x1", "x2") and lay.p("outer_size") == 3 and list(lay.p("copy_sizes")) == [4, 10, 2]
    assert _layer(ALIAS_CASES["squeeze"]).alias


@pytest.mark.parametrize("seed", range(40))
def test_reference_matches_numpy(seed: int) -> None:
    """Random shapes through the lowering and the numpy mirrors, against numpy's own pad/transpose/concatenate."""
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, 6))
    shape = tuple(int(d) for d in rng.integers(1, 5, rank))
    x = rng.integers(-128, 128, shape, dtype=np.int8)
    pads = [(int(rng.integers(0, 3)) * int(rng.random() < 0.5), int(rng.integers(0, 3))) for _ in shape]
    zp = int(rng.integers(-128, 128))
    np.testing.assert_array_equal(_reference(pad_graph(shape, pads, zp, zp), [x]), np.pad(x, pads, constant_values=zp))
    perm = tuple(int(p) for p in rng.permutation(rank))
    np.testing.assert_array_equal(_reference(transpose_graph(shape, perm), [x]), np.transpose(x, perm))
    axis = int(rng.integers(0, rank))
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        s = list(shape)
        s[axis] = int(rng.integers(1, 4))
        parts.append(rng.integers(-128, 128, s, dtype=np.int8))
    got = _reference(concat_graph([p.shape for p in parts], axis), parts)
    np.testing.assert_array_equal(got, np.concatenate(parts, axis))


def test_negative_perm_is_normalised() -> None:
    g = transpose_graph((2, 3, 4), (2, 0, 1))
    op = g.ops[0]
    import dataclasses

    g2 = dataclasses.replace(g, ops=(dataclasses.replace(op, attrs=ir.TransposeAttrs((-1, 0, -2))),))
    x = np.arange(24, dtype=np.int8).reshape(2, 3, 4)
    np.testing.assert_array_equal(_reference(g2, [x]), np.transpose(x, (2, 0, 1)))


def _with(g: ir.Graph, **tensors: ir.Tensor) -> ir.Graph:
    import dataclasses

    return dataclasses.replace(g, tensors={**g.tensors, **tensors})


@pytest.mark.parametrize(
    "graph, message",
    [
        (_with(concat_graph([(1, 2), (1, 3)], 1), x1=_t("x1", (1, 3), 0.07)), "requires them equal"),
        (_with(concat_graph([(1, 2), (1, 3)], 1), x0=_t("x0", (1, 2), 0.05, 1)), "requires them equal"),
        (_with(concat_graph([(1, 2), (1, 3)], 1), x1=_t("x1", (2, 3))), "does not fit"),
        (_with(reshape_graph(ir.OpKind.RESHAPE, (1, 6), (2, 3)), y=_t("y", (2, 3), 0.2)), "cannot requantize"),
        (_with(reshape_graph(ir.OpKind.RESHAPE, (1, 6), (6,)), y=_t("y", (5,), 0.1)), "elements"),
        (transpose_graph((1,) * 7, tuple(range(7))), "at most 6"),
        (pad_graph((1,) * 6, [(0, 0)] * 6), "at most 5"),
        (_with(pad_graph((2, 2), [(1, 1), (0, 0)]), y=_t("y", (4, 3))), "does not match"),
    ],
)
def test_rejects(graph: ir.Graph, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        lower(graph)


def test_rejects_fused_activation() -> None:
    import dataclasses

    g = concat_graph([(1, 2), (1, 3)], 1)
    op = dataclasses.replace(g.ops[0], attrs=ir.ConcatAttrs(1, ir.Activation.RELU))
    with pytest.raises(ModelError, match="fused activation"):
        lower(dataclasses.replace(g, ops=(op,)))


@pytest.mark.oracle
def test_oracle_rejects_concat_requantization() -> None:
    """The reason mcuq rejects it: TFLite 2.14's int8 CONCATENATION fails to prepare when scales differ."""
    from mcuq.frontend.tflite_writer import write

    oracle.require()
    g = _with(concat_graph([(1, 2), (1, 3)], 1), x1=_t("x1", (1, 3), 0.07))
    with pytest.raises(RuntimeError, match="scale"):
        oracle.outputs(write(g), [np.zeros((1, 2), np.int8), np.zeros((1, 3), np.int8)])


def test_c_compiles_strict(tmp_path: Path) -> None:
    """The shape kernels build with the strictest flags (pedantic C99, no floating-point registers)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    for src in sorted((ROOT / "runtime_c" / "src" / "shape").glob("*.c")):
        cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-mgeneral-regs-only",
               f"-I{ROOT / 'runtime_c' / 'include'}", "-c", str(src), "-o", str(tmp_path / (src.stem + ".o"))]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
