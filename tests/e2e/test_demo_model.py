"""The bundled demo model (examples/digits_cnn.tflite): it loads, classifies digits, and its C is bit-exact."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tests.util import oracle

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "digits_cnn.tflite"
TEST_SET = ROOT / "examples" / "digits_test.npz"

EXPECTED_OPS = ["CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED",
                "SOFTMAX"]  # fmt: skip


def _test_set() -> tuple[np.ndarray, np.ndarray]:
    with np.load(TEST_SET) as d:
        return d["x"], d["y"]


@pytest.fixture(scope="module")
def oracle_out() -> np.ndarray:
    """The oracle's int8 outputs for every test image, [N, 1, 10]."""
    oracle.require()
    x, _ = _test_set()
    return np.stack([r["outputs"][0] for r in oracle.run(MODEL, [[xi[None]] for xi in x])])


def test_files_are_committed() -> None:
    x, y = _test_set()
    assert x.dtype == np.int8 and x.ndim == 4 and x.shape[1:] == (8, 8, 1)
    assert y.shape == (x.shape[0],) and set(np.unique(y)) <= set(range(10))


def test_loads() -> None:
    from mcuq.frontend.tflite import load

    g = load(MODEL)
    assert [op.type_name for op in g.ops] == EXPECTED_OPS
    (inp,) = g.inputs
    assert g.tensors[inp].shape == (1, 8, 8, 1) and g.tensors[inp].dtype.value == "int8"
    (out,) = g.outputs
    assert g.tensors[out].qparams.scale == (1.0 / 256.0,) and g.tensors[out].qparams.zero_point == (-128,)


@pytest.mark.oracle
def test_oracle_accuracy(oracle_out: np.ndarray) -> None:
    _, y = _test_set()
    acc = float(np.mean(np.argmax(oracle_out[:, 0], axis=1) == y))
    assert acc >= 0.93, f"int8 accuracy under the oracle is {acc:.4f}"


@pytest.fixture(scope="module")
def compiled():
    """The demo model compiled to C (built with the sanitizers by default)."""
    import mcuq

    if not hasattr(mcuq, "compile_model"):
        pytest.skip("mcuq.compile_model is not available yet")
    return mcuq.compile_model(MODEL)


@pytest.mark.oracle
def test_c_matches_oracle(compiled, oracle_out: np.ndarray) -> None:
    x, _ = _test_set()
    (got,) = compiled.run([x[:, None]])
    np.testing.assert_array_equal(got, oracle_out)


def _oracle_clobbered(g) -> set[str]:
    """Tensors whose value tflite-runtime 2.14 does not keep even with experimental_preserve_all_tensors: an ADD
    whose input has no other consumer writes its output into that input's buffer (in-place ADD)."""
    cons = g.consumers()
    return {t for op in g.ops if op.type_name == "ADD" for t in op.inputs if len(cons.get(t, [])) == 1}


@pytest.mark.oracle
def test_every_layer_matches(compiled) -> None:
    """Every layer's output, for 20 images: the C against the oracle's tensors (where the oracle keeps them)
    and against mcuq's numpy reference kernels, layer by layer."""
    from mcuq.reference import portable_layers, run_layer

    x = _test_set()[0][:20]
    got = compiled.run_layers([x[:, None]])
    theirs = oracle.run(MODEL, [[xi[None]] for xi in x], all_tensors=True)
    g = compiled.graph
    skip = _oracle_clobbered(g)
    assert skip == {"dwconv"}
    for layer in compiled.layers:
        name = layer.outputs[0]
        if name in skip:
            continue
        idx = int(g.meta[f"tflite_index:{name}"])
        want = np.stack([r["tensors"][idx] for r in theirs]).reshape(got[name].shape)
        np.testing.assert_array_equal(got[name], want, err_msg=f"layer {layer.op.where} vs the oracle")
    for i in range(len(x)):
        values = {g.inputs[0]: x[i][None]}
        for layer in (p for la in compiled.layers for p in portable_layers(la)):
            consts = {**{n: t.data for n, t in g.tensors.items() if t.is_const},
                      **{n: t.data for n, t in layer.consts.items()}}  # fmt: skip
            ins = [consts[a] if a in consts else values[a] if a else None for a in layer.inputs]
            outs = run_layer(layer, ins, [g.tensors[o].shape for o in layer.outputs])
            values.update(zip(layer.outputs, outs, strict=True))
            name = layer.outputs[0]
            if name in got:  # not the tensor inside a band, which never exists whole in the C
                np.testing.assert_array_equal(got[name][i], values[name], err_msg=f"{layer.op.where} vs reference")


@pytest.mark.slow
def test_script_is_deterministic(tmp_path: Path) -> None:
    """Two runs of examples/train_digits.py give byte-identical files."""
    spec = importlib.util.spec_from_file_location("train_digits", ROOT / "examples" / "train_digits.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    pytest.importorskip("sklearn")
    for run in ("a", "b"):
        mod.build(tmp_path / run)
    for name in ("digits_cnn.tflite", "digits_test.npz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
