"""Sub-8-bit weights through the .tflite: the ``mcuq_weight_bits`` metadata (writer and reader), native INT4, the
binary 1-bit packing, and every hostile metadata refused with one line naming the tensor or op."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mcuq import ir
from mcuq.errors import ModelError
from mcuq.frontend import weight_bits
from mcuq.frontend.tflite import load
from mcuq.frontend.tflite_writer import write
from mcuq.quant.packing import pack, unpack

D = ir.DType


def _conv_fc(w_dtype: D = D.INT4, w_values: np.ndarray | None = None) -> ir.Graph:
    """x [1, 4, 4, 2] -> CONV_2D 3x3 VALID, 3 channels -> FULLY_CONNECTED 12 -> 5. Tensor indices: x 0, cw 1, cb 2,
    c 3, fw 4, fb 5, y 6."""
    rng = np.random.default_rng(1)
    cw = w_values if w_values is not None else rng.integers(-7, 8, (3, 3, 3, 2)).astype(np.int8)
    fw = rng.choice(np.array([-1, 1], np.int8), (5, 12))
    q = ir.QParams
    tensors = {
        "x": ir.Tensor("x", (1, 4, 4, 2), D.INT8, q((0.05,), (-3,))),
        "cw": ir.Tensor("cw", (3, 3, 3, 2), w_dtype, q((0.02, 0.03, 0.01), (0, 0, 0), 0), cw),
        "cb": ir.Tensor("cb", (3,), D.INT32, q((0.001, 0.0015, 0.0005), (0, 0, 0)), np.array([5, -7, 9], np.int32)),
        "c": ir.Tensor("c", (1, 2, 2, 3), D.INT8, q((0.04,), (2,))),
        "fw": ir.Tensor("fw", (5, 12), D.INT1, q((0.1,) * 5, (0,) * 5, 0), fw),
        "fb": ir.Tensor("fb", (5,), D.INT32, q((0.004,) * 5, (0,) * 5), np.arange(5, dtype=np.int32)),
        "y": ir.Tensor("y", (1, 5), D.INT8, q((0.3,), (0,))),
    }
    conv = ir.Op(ir.OpKind.CONV2D, "conv", ("x", "cw", "cb"), ("c",), ir.Conv2DAttrs(ir.Padding.VALID))
    fc = ir.Op(ir.OpKind.FULLY_CONNECTED, "fc", ("c", "fw", "fb"), ("y",), ir.FullyConnectedAttrs())
    return ir.Graph("convfc", tensors, (conv, fc), ("x",), ("y",))


def test_binary_packing_is_the_c_layout() -> None:
    """1 bit: a set bit is +1 and a clear one -1 (mcuq_packed.h); no 0."""
    v = np.array([1, -1, -1, 1, 1, 1, -1, -1, 1, -1], np.int8)
    np.testing.assert_array_equal(pack(v, 1), [0b00111001, 0b01])
    np.testing.assert_array_equal(unpack(pack(v, 1), 1, v.size), v)
    with pytest.raises(ValueError, match="binary"):
        pack(np.array([1, 0, -1]), 1)


def test_container_round_trip_and_metadata() -> None:
    g = _conv_fc()
    model = write(g)
    back = load(model)
    assert back.tensors["cw"].dtype is D.INT4 and back.tensors["fw"].dtype is D.INT1
    np.testing.assert_array_equal(back.tensors["cw"].data, g.tensors["cw"].data)
    np.testing.assert_array_equal(back.tensors["fw"].data, g.tensors["fw"].data)
    # the file holds int8 tensors (what tflite-runtime 2.14 runs) and the metadata JSON
    assert weight_bits.encode({1: 4, 4: 1}) in model
    assert json.loads(weight_bits.encode({4: 1, 1: 4})) == {"version": 1, "tensors": {"1": 4, "4": 1}}
    assert write(g) == model  # reproducible


def test_native_int4_writes_int4_and_accepts_minus_8() -> None:
    """native_int4: INT4 tensors natively (op version 7 for CONV_2D), INT1 still a container; -8 (TFLite's INT4
    range) is accepted in a native INT4 weight and computed as -8."""
    import tflite

    values = np.random.default_rng(3).integers(-8, 8, (3, 3, 3, 2)).astype(np.int8)
    values.flat[0] = -8
    g = _conv_fc(D.INT4, values)
    model = write(g, native_int4=True)
    m = tflite.Model.GetRootAs(model, 0)
    sub = m.Subgraphs(0)
    assert sub.Tensors(1).Type() == tflite.TensorType.INT4 and sub.Tensors(4).Type() == tflite.TensorType.INT8
    assert m.OperatorCodes(sub.Operators(0).OpcodeIndex()).Version() == 7
    back = load(model)
    assert back.tensors["cw"].dtype is D.INT4 and int(back.tensors["cw"].data.min()) == -8
    assert back.tensors["fw"].dtype is D.INT1
    assert len(model) < len(write(g))


def test_narrow_int8_model_without_metadata_stays_int8_in_the_frontend() -> None:
    g = _conv_fc()
    plain = ir.Graph(
        g.name,
        {
            n: (t if not t.dtype.packed else ir.Tensor(n, t.shape, D.INT8, t.qparams, t.data))
            for n, t in g.tensors.items()
        },
        g.ops,
        g.inputs,
        g.outputs,
    )
    back = load(write(plain))
    assert back.tensors["cw"].dtype is D.INT8 and back.tensors["fw"].dtype is D.INT8


def _with_metadata(monkeypatch, raw: bytes, g: ir.Graph | None = None) -> bytes:
    monkeypatch.setattr(weight_bits, "encode", lambda bits: raw)
    return write(g or _conv_fc())


HOSTILE = [
    (b"{not json", "not valid UTF-8 JSON"),
    (b"\xff\xfe", "not valid UTF-8 JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"version": 2, "tensors": {}}', "unknown version"),
    (b'{"version": true, "tensors": {}}', "unknown version"),
    (b'{"tensors": {"1": 4}}', "unknown version"),
    (b'{"version": 1, "tensors": [1]}', "'tensors' must be an object"),
    (b'{"version": 1, "tensors": {"99": 4}}', "tensor index 99 out of range"),
    (b'{"version": 1, "tensors": {"-1": 4}}', "not a tensor index"),
    (b'{"version": 1, "tensors": {"abc": 4}}', "not a tensor index"),
    (b'{"version": 1, "tensors": {"1": 3}}', "bits '3' is not 4, 2 or 1"),
    (b'{"version": 1, "tensors": {"1": 8}}', "bits '8' is not 4, 2 or 1"),
    (b'{"version": 1, "tensors": {"1": true}}', "is not 4, 2 or 1"),
    (b'{"version": 1, "tensors": {"1": "4"}}', "is not 4, 2 or 1"),
    (b'{"version": 1, "tensors": {"0": 4}}', "tensor 'x' is not the weights of a CONV_2D"),
    (b'{"version": 1, "tensors": {"2": 4}}', "tensor 'cb' is not the weights"),
    (b'{"version": 1, "tensors": {"1": 2}}', r"op 0 \(CONV_2D 'c'\): weights 'cw': value .* outside the 2-bit range"),
    (b'{"version": 1, "tensors": {"4": 1, "1": 1}}', "weights 'cw': value .* outside the 1-bit range"),
    (b"[" * 100000 + b"]" * 100000, "not valid UTF-8 JSON"),
    (b" " * (weight_bits.MAX_BYTES + 1), "more than the"),
]


@pytest.mark.parametrize(("raw", "message"), HOSTILE, ids=[f"hostile{i}" for i in range(len(HOSTILE))])
def test_hostile_metadata_is_one_line_model_error(monkeypatch, raw: bytes, message: str) -> None:
    g = _conv_fc(D.INT4)
    model = _with_metadata(monkeypatch, raw, g)
    with pytest.raises(ModelError, match=message) as e:
        load(model)
    assert "\n" not in str(e.value) and "mcuq_weight_bits" in str(e.value)


def test_metadata_value_outside_the_narrow_range(monkeypatch) -> None:
    values = np.full((3, 3, 3, 2), 7, np.int8)
    values.flat[5] = -8  # fits int4's two's complement, not the narrow range the metadata promises
    g = _conv_fc(D.INT8, values)
    model = _with_metadata(monkeypatch, b'{"version": 1, "tensors": {"1": 4}}', g)
    with pytest.raises(ModelError, match=r"value -8 at flat index 5 is outside the 4-bit range \[-7, 7\]"):
        load(model)


def test_metadata_on_a_weight_that_is_also_an_activation_input(monkeypatch) -> None:
    g = _conv_fc()
    ops = (*g.ops, ir.Op(ir.OpKind.ADD, "add", ("y", "fw"), ("z",), ir.BinaryAttrs()))
    tensors = {**g.tensors, "z": ir.Tensor("z", (1, 5), D.INT8, ir.QParams((0.3,), (0,)))}
    bad = ir.Graph(g.name, tensors, ops, g.inputs, ("z",))
    model = _with_metadata(monkeypatch, b'{"version": 1, "tensors": {"4": 1}}', bad)
    with pytest.raises(ModelError, match=r"weights .fw. are also read by op 2 \(ADD"):
        load(model)


def test_lowering_refuses_a_packed_value_it_cannot_store() -> None:
    from mcuq.lower import lower

    g = _conv_fc()
    fw = g.tensors["fw"]
    data = np.asarray(fw.data).copy()
    data[0, 0] = 0  # binary has no 0
    g.tensors["fw"] = ir.Tensor("fw", fw.shape, D.INT1, fw.qparams, data)
    with pytest.raises(ModelError, match=r"op .*'fc'.*value 0 at flat index 0 is outside \{-1, \+1\}"):
        lower(g)
