"""Hostile and broken ONNX files: each is one line on stderr from `mcuq compile`, exit status 2, no output folder."""

from __future__ import annotations

import numpy as np
import pytest

from mcuq.cli import main  # noqa: E402
from mcuq.errors import McuqError  # noqa: E402
from mcuq.frontend.onnx import load  # noqa: E402
from tests.onnx.util import TensorProto, helper, model, onnx

W = np.ones((2, 3, 3, 3), np.float32)


def conv_model(**kw) -> bytes:
    nodes = kw.pop("nodes", [helper.make_node("Conv", ["x", "w"], ["y"])])
    inputs = kw.pop("inputs", [("x", [1, 3, 5, 5])])
    inits = kw.pop("inits", {"w": W})
    return model(nodes, inputs, [("y", None)], inits, **kw)


def external(location: str) -> onnx.ModelProto:
    m = onnx.load_from_string(conv_model())
    t = m.graph.initializer[0]
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(W.nbytes))):
        e = t.external_data.add()
        e.key, e.value = k, v
    return m


def cycle() -> bytes:
    nodes = [helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Add", ["x", "a"], ["b"]),
             helper.make_node("Relu", ["b"], ["y"])]  # fmt: skip
    return conv_model(nodes=nodes, inits={})


def huge_initializer() -> bytes:
    m = onnx.load_from_string(conv_model())
    t = m.graph.initializer[0]
    t.ClearField("dims")
    t.dims.extend([1 << 20, 1 << 20, 3, 3])
    return m.SerializeToString()


CASES = {
    "missing_initializer": (lambda: conv_model(inits={}), "input 'w' is no initializer"),
    "opset_7": (lambda: conv_model(opset=7), "opset 7 is not supported"),
    "opset_22": (lambda: conv_model(opset=22), "opset 22 is not supported"),
    "dynamic_dims": (lambda: conv_model(inputs=[("x", ["N", 3, "H", "W"])]), "dimension 2 is 'H'"),
    "unknown_op": (
        lambda: conv_model(nodes=[helper.make_node("Einsum", ["x", "w"], ["y"], equation="ij")]),
        "(Einsum): op not supported",
    ),
    "custom_domain_node": (
        lambda: conv_model(
            nodes=[helper.make_node("Gelu", ["x"], ["y"], domain="com.microsoft")], extra_opsets=[("com.microsoft", 1)]
        ),
        "op of domain 'com.microsoft' is not supported",
    ),
    "cycle": (cycle, "cycle"),
    "huge_initializer": (huge_initializer, "more than mcuq handles"),
    "huge_input": (lambda: conv_model(inputs=[("x", [1, 3, 1 << 20, 1 << 20])]), "is too large"),
    "not_onnx": (lambda: b"\x08" + np.random.default_rng(3).bytes(64), "ONNX"),
    "bad_weight_shape": (lambda: conv_model(inits={"w": np.ones((2, 3, 3), np.float32)}), "(Conv)"),
    "int_input": (lambda: model([helper.make_node("Relu", ["x"], ["y"])], [], [("y", None)]), "no inputs"),
}


def run_cli(tmp_path, data: bytes, capsys, name: str = "m.onnx") -> tuple[int, str]:
    path = tmp_path / name
    path.write_bytes(data)
    calib = tmp_path / "c.npy"
    np.save(calib, np.zeros((2, 1, 3, 5, 5), np.float32))
    out = tmp_path / "out"
    code = main(["compile", str(path), "--calib", str(calib), "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert not out.exists()
    return code, err


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_file_is_one_line(tmp_path, capsys, name):
    make, expect = CASES[name]
    code, err = run_cli(tmp_path, make(), capsys)
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert expect in err
    assert "m.onnx" in err


@pytest.mark.parametrize("location", ["../outside.bin", "/etc/passwd", "sub/../../outside.bin", "link.bin"])
def test_external_data_outside_the_folder(tmp_path, capsys, location):
    (tmp_path / "outside.bin").write_bytes(W.tobytes())
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "link.bin").symlink_to(tmp_path / "outside.bin")
    code, err = run_cli(folder, external(location).SerializeToString(), capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "external data" in err and ("outside the model's folder" in err or "relative path inside" in err)


def test_external_data_inside_the_folder_loads(tmp_path):
    (tmp_path / "w.bin").write_bytes(W.tobytes())
    path = tmp_path / "m.onnx"
    path.write_bytes(external("w.bin").SerializeToString())
    g = load(path)
    np.testing.assert_array_equal(g.tensors["Conv_0/weights"].data, W.transpose(0, 2, 3, 1))
    (tmp_path / "w.bin").write_bytes(W.tobytes()[:-4])  # cut short: refused, not read past the end
    with pytest.raises(McuqError, match="external data"):
        load(path)


def test_unused_domains_accepted():
    g = load(conv_model(extra_opsets=[("com.microsoft", 1), ("ai.onnx.ml", 3)]))
    assert [op.kind.name for op in g.ops] == ["CONV2D"]


def test_symbolic_batch_is_one():
    g = load(conv_model(inputs=[("x", ["batch", 3, 5, 5])]))
    assert g.tensors["x"].shape == (1, 5, 5, 3)


def test_without_onnx_package(monkeypatch, tmp_path):
    import sys

    path = tmp_path / "m.onnx"
    path.write_bytes(conv_model())
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(McuqError, match=r"install 'mcuq\[onnx\]'"):
        load(path)


def test_fuzz_onnx_smoke():
    """A few dozen structure-aware mutants (tests/onnx/fuzz_onnx.py; longer runs: python -m tests.onnx.fuzz_onnx):
    each loads and quantizes, or is a one-line McuqError."""
    from tests.onnx.fuzz_onnx import check, mutant, seeds

    models = seeds()
    assert [check(m, compile_c=True) for m in models] == ["ok"] * len(models)  # the seeds compile and run
    outcomes = [check(mutant(models, i, 0)) for i in range(40)]
    assert set(outcomes) <= {"ok", "refused"} and "ok" in outcomes
