"""Graph passes (mcuq.passes): reshape_to_copy on hand-built graphs, the pipeline's IR dumps, and a RESHAPE-only
model compiled and run end to end (a reshape reinterprets int8 data, so the expected output is numpy's reshape:
no oracle needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcuq import ir
from mcuq.errors import McuqError
from mcuq.lower import lower
from mcuq.lower.shape import copy_layer
from mcuq.passes import PIPELINE, format_graph, reshape_to_copy, run_passes
from mcuq.plan import plan

Q = ir.QParams((0.1,), (-3,))


def _graph(ops: list[tuple], inputs: tuple[str, ...], outputs: tuple[str, ...], consts: tuple[str, ...] = ()):
    """``ops``: (kind, name, inputs, output) in order; every tensor int8 [2, 3] (constants filled with 7)."""
    names = {*inputs, *outputs, *consts, *(n for _, _, ins, out in ops for n in (*ins, out))}
    tensors = {
        n: ir.Tensor(n, (2, 3), ir.DType.INT8, Q, np.full((2, 3), 7, np.int8) if n in consts else None)
        for n in sorted(names)
    }
    attrs = {ir.OpKind.RESHAPE: ir.ReshapeAttrs(), ir.OpKind.ADD: ir.BinaryAttrs()}
    built = tuple(ir.Op(k, name, tuple(ins), (out,), attrs[k], i) for i, (k, name, ins, out) in enumerate(ops))
    return ir.Graph("g", tensors, built, inputs, outputs)


R, ADD = ir.OpKind.RESHAPE, ir.OpKind.ADD


def _kinds(g: ir.Graph) -> list[str]:
    return [op.kind.value for op in g.ops]


# ----------------------------------------------------------------------------------------------- reshape_to_copy
def test_single_reshape_input_to_output_becomes_copy() -> None:
    g = _graph([(R, "r", ("x",), "y")], ("x",), ("y",))
    g = ir.Graph(g.name, g.tensors, (ir.Op(R, "r", ("x",), ("y",), ir.ReshapeAttrs(), 4, "SQUEEZE"),), ("x",), ("y",))
    out = reshape_to_copy(g)
    (op,) = out.ops
    assert op.kind is ir.OpKind.COPY and isinstance(op.attrs, ir.NoAttrs)
    assert (op.name, op.index, op.inputs, op.outputs, op.origin) == ("r", 4, ("x",), ("y",), "SQUEEZE")
    assert out.tensors is g.tensors and (out.inputs, out.outputs, out.name) == (g.inputs, g.outputs, g.name)


def test_origin_of_a_hand_built_reshape_is_kept() -> None:
    (op,) = reshape_to_copy(_graph([(R, "r", ("x",), "y")], ("x",), ("y",))).ops
    assert op.kind is ir.OpKind.COPY and op.type_name == "RESHAPE"


def test_reshape_between_two_outputs() -> None:
    g = _graph([(ADD, "a", ("x", "x"), "a"), (R, "r1", ("a",), "y1"), (R, "r2", ("a",), "y2")], ("x",), ("y1", "y2"))
    assert _kinds(reshape_to_copy(g)) == ["add", "reshape", "copy"]  # the first joins a's group to y1
    g = _graph([(ADD, "a", ("x", "x"), "y1"), (R, "r", ("y1",), "y2")], ("x",), ("y1", "y2"))
    assert _kinds(reshape_to_copy(g)) == ["add", "copy"]


def test_chain() -> None:
    g = _graph([(R, "r1", ("x",), "a"), (R, "r2", ("a",), "b"), (R, "r3", ("b",), "y")], ("x",), ("y",))
    assert _kinds(reshape_to_copy(g)) == ["reshape", "reshape", "copy"]  # a, b live in x's buffer
    g = _graph([(ADD, "t", ("x", "x"), "a"), (R, "r1", ("a",), "b"), (R, "r2", ("b",), "y")], ("x",), ("y",))
    assert reshape_to_copy(g) is g  # a -> b -> y: one group, in y's buffer
    g = _graph(
        [(ADD, "t", ("x", "x"), "a"), (R, "r1", ("a",), "b"), (R, "r2", ("b",), "y1"), (R, "r3", ("a",), "y2")],
        ("x",),
        ("y1", "y2"),
    )
    assert _kinds(reshape_to_copy(g)) == ["add", "reshape", "reshape", "copy"]  # y2 reaches y1's group via a


def test_reshape_inside_the_graph_stays_an_alias() -> None:
    g = _graph([(ADD, "t", ("x", "x"), "a"), (R, "r", ("a",), "b"), (ADD, "u", ("b", "b"), "y")], ("x",), ("y",))
    assert reshape_to_copy(g) is g
    g = _graph([(R, "r", ("x",), "a"), (ADD, "u", ("a", "a"), "y")], ("x",), ("y",))  # input alias
    assert reshape_to_copy(g) is g


def test_constant_input_is_left_to_lowering() -> None:
    g = _graph([(R, "r", ("w",), "y")], (), ("y",), consts=("w",))
    assert reshape_to_copy(g) is g


def test_pure() -> None:
    g = _graph([(R, "r1", ("x",), "y1"), (R, "r2", ("y1",), "y2")], ("x",), ("y1", "y2"))
    ops, tensors, text = g.ops, dict(g.tensors), format_graph(g)
    out = reshape_to_copy(g)
    assert _kinds(out) == ["copy", "copy"] and out is not g
    assert g.ops is ops and _kinds(g) == ["reshape", "reshape"] and g.tensors == tensors
    assert format_graph(g) == text
    assert reshape_to_copy(g).ops == out.ops  # a function of its input


def test_plan_refuses_a_graph_the_pass_did_not_see() -> None:
    g = _graph([(R, "r", ("x",), "y")], ("x",), ("y",))
    with pytest.raises(RuntimeError, match="reshape_to_copy must run"):
        plan(g, lower(g))
    p = plan(reshape_to_copy(g), lower(reshape_to_copy(g)))
    assert p.arena_size == 0 and p.alias_of == {}


def test_copy_lowers_to_the_copy_kernel() -> None:
    g = reshape_to_copy(_graph([(R, "r", ("x",), "y")], ("x",), ("y",)))
    (layer,) = lower(g)
    assert layer.kernel == copy_layer(g.ops[0], "x", "y", 6).kernel and not layer.alias and layer.args == ("x", "y")


# ------------------------------------------------------------------------------------------------------ dumps
def _two_outputs() -> ir.Graph:
    return _graph(
        [(ADD, "a", ("x", "w"), "a"), (R, "r1", ("a",), "y1"), (R, "r2", ("a",), "y2")], ("x",), ("y1", "y2"), ("w",)
    )


def test_dump_writes_one_file_per_pass_deterministically(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MCUQ_DUMP_IR", raising=False)

    def rename(g: ir.Graph) -> ir.Graph:
        import dataclasses

        return dataclasses.replace(g, name="renamed")

    for d in ("a", "b"):
        run_passes(_two_outputs(), (*PIPELINE, rename), dump_dir=tmp_path / d)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["00-input.txt", "01-reshape_to_copy.txt", "02-rename.txt"]
    for n in names:
        assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes()
    before = (tmp_path / "a" / "00-input.txt").read_text()
    after = (tmp_path / "a" / "01-reshape_to_copy.txt").read_text()
    assert "reshape 'r2' #2 (a) -> (y2)" in before
    assert "copy [RESHAPE] 'r2' #2 (a) -> (y2)" in after and "reshape 'r1' #1 (a) -> (y1)" in after
    assert "w: int8 [2, 3] const scale=0.1 zp=-3" in after and "7, 7" not in after  # no weight values
    assert "graph 'renamed'" in (tmp_path / "a" / "02-rename.txt").read_text()


def test_no_dump_without_a_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MCUQ_DUMP_IR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert _kinds(run_passes(_two_outputs())) == ["add", "reshape", "copy"]
    assert list(tmp_path.iterdir()) == []


def test_env_variable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MCUQ_DUMP_IR", str(tmp_path / "env" / "nested"))
    run_passes(_two_outputs())
    assert sorted(p.name for p in (tmp_path / "env" / "nested").iterdir()) == ["00-input.txt", "01-reshape_to_copy.txt"]
    run_passes(_two_outputs(), dump_dir=tmp_path / "arg")  # an explicit directory wins
    assert (tmp_path / "arg" / "00-input.txt").exists()


def test_empty_dump_directory_means_off(tmp_path: Path, monkeypatch) -> None:
    """`--dump-ir ""` writes nothing, like an empty MCUQ_DUMP_IR (not into the current directory)."""
    monkeypatch.delenv("MCUQ_DUMP_IR", raising=False)
    monkeypatch.chdir(tmp_path)
    run_passes(_two_outputs(), dump_dir="")
    monkeypatch.setenv("MCUQ_DUMP_IR", "")
    run_passes(_two_outputs())
    assert list(tmp_path.iterdir()) == []


def test_dump_directory_is_safe(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    run_passes(_two_outputs(), dump_dir=tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"  # nothing else is touched
    (tmp_path / "file").write_text("x")
    with pytest.raises(McuqError, match="not a directory"):
        run_passes(_two_outputs(), dump_dir=tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x"


# ------------------------------------------------------------------------------------------------- end to end
def _reshape_model() -> ir.Graph:
    """x [2, 6] -> RESHAPE -> y1 [1, 12] (output) -> SQUEEZE -> y2 [12] (output): two copies."""
    t = {
        "x": ir.Tensor("x", (2, 6), ir.DType.INT8, Q),
        "y1": ir.Tensor("y1", (1, 12), ir.DType.INT8, Q),
        "y2": ir.Tensor("y2", (12,), ir.DType.INT8, Q),
    }
    ops = (
        ir.Op(R, "r1", ("x",), ("y1",), ir.ReshapeAttrs(), 0, "RESHAPE"),
        ir.Op(R, "r2", ("y1",), ("y2",), ir.ReshapeAttrs(), 1, "SQUEEZE"),
    )
    return ir.Graph("reshapes", t, ops, ("x",), ("y1", "y2"))


def test_compile_and_run_reshape_only_model(tmp_path: Path) -> None:
    import mcuq

    cm = mcuq.compile_model(_reshape_model(), dump_ir=tmp_path / "ir")
    copy_kernel = copy_layer(cm.graph.ops[0], "x", "y1", 12).kernel
    assert _kinds(cm.graph) == ["copy", "copy"] and [lay.kernel for lay in cm.layers] == [copy_kernel] * 2
    assert cm.plan.arena_size == 0 and (tmp_path / "ir" / "01-reshape_to_copy.txt").exists()
    x = np.random.default_rng(0).integers(-128, 128, (5, 2, 6), dtype=np.int8)
    y1, y2 = cm.run(x)
    np.testing.assert_array_equal(y1, x.reshape(5, 1, 12))
    np.testing.assert_array_equal(y2, x.reshape(5, 12))
    layers = cm.run_layers(x[0])
    np.testing.assert_array_equal(layers["y2"], x[0].reshape(12))


def test_cli_dump_ir(tmp_path: Path) -> None:
    from mcuq.cli import main
    from mcuq.frontend.tflite_writer import write

    model = tmp_path / "reshapes.tflite"
    model.write_bytes(write(_reshape_model()))
    assert main(["compile", str(model), "-o", str(tmp_path / "out"), "--dump-ir", str(tmp_path / "ir")]) == 0
    assert "copy [RESHAPE] 'y1'" in (tmp_path / "ir" / "01-reshape_to_copy.txt").read_text()
    (tmp_path / "f").write_text("")
    assert main(["inspect", str(model), "--dump-ir", str(tmp_path / "f")]) == 2


def test_a_passed_graph_can_be_written_as_tflite() -> None:
    """COPY ops (made by the pass) are written as TFLite RESHAPE, so a graph after the passes can be exported."""
    from mcuq.frontend.tflite import load
    from mcuq.frontend.tflite_writer import write

    g = reshape_to_copy(_two_outputs())
    K = ir.OpKind
    assert any(op.kind is K.COPY for op in g.ops)
    back = load(write(g))
    assert [op.kind for op in back.ops] == [K.RESHAPE if op.kind is K.COPY else op.kind for op in g.ops]
