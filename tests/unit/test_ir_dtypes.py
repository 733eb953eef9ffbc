"""IR dtypes: bits and byte counts (packed sub-byte types included), the int1/int2/int4 packing, TFLite INT4."""

from __future__ import annotations

import numpy as np
import pytest

from mcuq import ir
from mcuq.errors import ModelError
from mcuq.frontend.tflite import load
from mcuq.frontend.tflite_writer import write
from mcuq.quant.packing import pack, unpack

D = ir.DType

BITS = {
    D.INT1: 1,
    D.INT2: 2,
    D.INT4: 4,
    D.INT8: 8,
    D.UINT8: 8,
    D.BOOL: 8,
    D.INT16: 16,
    D.INT32: 32,
    D.FLOAT32: 32,
    D.FLOAT16: 16,
    D.INT64: 64,
}


def test_every_dtype_has_bits() -> None:
    assert set(BITS) == set(D)
    for dt, bits in BITS.items():
        assert dt.bits == bits, dt
        assert dt.packed == (bits < 8), dt


@pytest.mark.parametrize(
    ("dtype", "np_dtype", "ctype"),
    [
        (D.INT8, np.int8, "int8_t"),
        (D.UINT8, np.uint8, "uint8_t"),
        (D.INT16, np.int16, "int16_t"),
        (D.INT32, np.int32, "int32_t"),
        (D.INT64, np.int64, "int64_t"),
        (D.FLOAT32, np.float32, "float"),
        (D.FLOAT16, np.float16, "uint16_t"),
        (D.BOOL, np.bool_, "uint8_t"),
        (D.INT4, np.int8, "uint8_t"),
        (D.INT2, np.int8, "uint8_t"),
        (D.INT1, np.int8, "uint8_t"),
    ],
)
def test_numpy_and_c_storage(dtype: ir.DType, np_dtype: type, ctype: str) -> None:
    assert dtype.np == np.dtype(np_dtype)
    assert dtype.itemsize == np.dtype(np_dtype).itemsize
    assert dtype.ctype == ctype


@pytest.mark.parametrize(
    ("dtype", "shape", "nbytes"),
    [
        (D.INT8, (2, 3), 6),
        (D.INT16, (5,), 10),
        (D.FLOAT32, (1, 3, 3), 36),
        (D.INT32, (7,), 28),
        (D.BOOL, (3,), 3),
        (D.INT4, (5,), 3),
        (D.INT4, (2, 4), 4),
        (D.INT4, (1,), 1),
        (D.INT2, (3,), 1),
        (D.INT2, (5,), 2),
        (D.INT2, (8,), 2),
        (D.INT1, (9,), 2),
        (D.INT1, (8,), 1),
        (D.INT1, (3, 3, 1), 2),
        (D.INT4, (0,), 0),
        (D.INT8, (), 1),
        (D.INT4, (), 1),
    ],
)
def test_tensor_nbytes(dtype: ir.DType, shape: tuple[int, ...], nbytes: int) -> None:
    assert ir.Tensor("t", shape, dtype).nbytes == nbytes
    assert dtype.nbytes(ir.Tensor("t", shape, dtype).size) == nbytes


def test_int_range() -> None:
    assert D.INT4.int_range == (-8, 7)
    assert D.INT2.int_range == (-2, 1)
    assert D.INT1.int_range == (-1, 1)  # binary: only the two ends
    assert D.INT8.int_range == (-128, 127)
    assert D.INT16.int_range == (-32768, 32767)
    with pytest.raises(ValueError):
        _ = D.FLOAT32.int_range


@pytest.mark.parametrize("bits", [1, 2, 4])
@pytest.mark.parametrize("count", [0, 1, 2, 3, 5, 7, 8, 9, 16, 1001])
def test_pack_round_trip(bits: int, count: int) -> None:
    lo, hi = (-1, 1) if bits == 1 else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    values = np.random.default_rng(bits * 1000 + count).integers(lo, hi + 1, count).astype(np.int8)
    if bits == 1:
        values = np.where(values >= 0, 1, -1).astype(np.int8)  # binary: no 0
    if count >= 2:
        values[0], values[-1] = lo, hi  # the extremes, at both ends
    packed = pack(values, bits)
    assert packed.dtype == np.uint8 and packed.shape == (-(-count * bits // 8),)
    out = unpack(packed, bits, count)
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out, values)


@pytest.mark.parametrize(("bits", "lo", "hi"), [(4, -8, 7), (2, -2, 1), (1, -1, 1)])
def test_pack_extremes_and_range_check(bits: int, lo: int, hi: int) -> None:
    every = np.arange(lo, hi + 1, dtype=np.int32)[:: 2 if bits == 1 else 1].repeat(3)  # any integer dtype
    np.testing.assert_array_equal(unpack(pack(every, bits), bits, every.size), every)
    for bad in (lo - 1, hi + 1, 127, -128) + ((0,) if bits == 1 else ()):
        with pytest.raises(ValueError, match="outside"):
            pack(np.array([0, bad, 0]), bits)


def test_pack_order_is_pinned() -> None:
    """Hand-written bytes: element 2i in the low nibble (TFLite's UnpackDenseInt4IntoInt8: {0x12, 0x34} unpacks
    to {2, 1, 4, 3}); the same little-end-first order for 2 and 1 bit; unused high bits zero."""
    np.testing.assert_array_equal(unpack(np.array([0x12, 0x34], np.uint8), 4, 4), [2, 1, 4, 3])
    np.testing.assert_array_equal(pack(np.array([2, 1, 4, 3]), 4), [0x12, 0x34])
    np.testing.assert_array_equal(pack(np.array([-1, 7, -8]), 4), [0x7F, 0x08])
    # int2 fields 1, -2 (0b10), -1 (0b11), 0 from bit 0 up: 0b00_11_10_01; then -2 alone
    np.testing.assert_array_equal(pack(np.array([1, -2, -1, 0, -2]), 2), [0b00111001, 0b10])
    # int1 is binary: +1 is a set bit, -1 a clear one, element k in bit k (mcuq_packed.h)
    np.testing.assert_array_equal(pack(np.array([1, -1, -1, 1, -1, -1, -1, -1, 1]), 1), [0b00001001, 0b1])
    np.testing.assert_array_equal(unpack(np.array([0x80], np.uint8), 1, 8), [-1] * 7 + [1])


def test_pack_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="bits"):
        pack(np.zeros(4, np.int8), 3)
    with pytest.raises(ValueError, match="integers"):
        pack(np.zeros(4, np.float32), 4)
    with pytest.raises(ValueError, match="bytes"):
        unpack(np.zeros(2, np.uint8), 4, 5)  # 5 int4 need 3 bytes
    with pytest.raises(ValueError, match="bytes"):
        unpack(np.zeros(2, np.int16), 4, 4)


def _fc_with_int4_weights(w: ir.Tensor) -> ir.Graph:
    x = ir.Tensor("x", (1, 5), D.INT8, ir.QParams((0.1,), (0,)))
    y = ir.Tensor("y", (1, 3), D.INT8, ir.QParams((0.2,), (0,)))
    op = ir.Op(ir.OpKind.FULLY_CONNECTED, "y", ("x", "w", ""), ("y",), ir.FullyConnectedAttrs())
    return ir.Graph("fc4", {"x": x, "w": w, "y": y}, (op,), ("x",), ("y",))


def test_tflite_int4_buffer_is_unpacked(tmp_path, monkeypatch) -> None:
    """TFLite INT4 weights: 15 elements written packed in 8 bytes, read back unpacked in the IR; a buffer of the
    wrong size is refused."""
    from mcuq.frontend import tflite_writer

    values = np.random.default_rng(4).integers(-8, 8, (3, 5)).astype(np.int8)
    qp = ir.QParams((0.05,), (0,))
    path = tmp_path / "fc4.tflite"
    path.write_bytes(write(_fc_with_int4_weights(ir.Tensor("w", (3, 5), D.INT4, qp, values)), native_int4=True))
    w = load(path).tensors["w"]
    assert w.dtype is D.INT4 and w.shape == (3, 5) and w.nbytes == 8
    assert w.data is not None and w.data.dtype == np.int8 and not w.data.flags.writeable
    np.testing.assert_array_equal(w.data, values)

    # a writer that forgets to pack: one byte per element
    monkeypatch.setattr(tflite_writer, "pack", lambda v, bits: np.asarray(v).astype(np.uint8).reshape(-1))
    path.write_bytes(write(_fc_with_int4_weights(ir.Tensor("w", (3, 5), D.INT4, qp, values)), native_int4=True))
    with pytest.raises(ModelError, match="holds 15 bytes, shape \\(3, 5\\) needs 8"):
        load(path)


def test_writer_refuses_dtypes_tflite_cannot_hold() -> None:
    values = np.zeros((3, 5), dtype=np.int8)
    w = ir.Tensor("w", (3, 5), D.INT2, ir.QParams((0.05,), (0,)), values)
    x = ir.Tensor("x", (1, 5), D.INT2, ir.QParams((0.1,), (0,)))  # an activation: no container for it
    g = _fc_with_int4_weights(w)
    g.tensors["x"] = x
    with pytest.raises(ValueError, match="TFLite has no int2 tensor type"):
        write(g)
