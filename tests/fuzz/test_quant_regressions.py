"""Minimal reproducers of what the quantizer fuzzer (``make fuzz-quant``) found, reduced from its cases.

Each test states the rule a fuzz case broke: a hostile float model or calibration file must end in one clean line
(McuqError; exit 2 through the CLI), never a Python exception, an allocation of gigabytes or an internal error.
Each failed on the mcuq it was written against and passes since the fix. The fuzz case each came from is named as family:model:seed
(``python -m tests.fuzz.run quant --seed S --n 1 --model M --family F`` reruns it).
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.errors import McuqError
from mcuq.npyio import load_npy

from .judge import limited_memory

F32 = ir.DType.FLOAT32
NONE = ir.Activation.NONE


def _npy_with_header(text: str, payload: bytes) -> bytes:
    """A version 1.0 .npy file whose header is ``text`` (padded as numpy pads it)."""
    body = (text + "\n").encode("latin1")
    body = body[:-1] + b" " * ((-(10 + len(body))) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body + payload


def _const(name: str, data: np.ndarray) -> ir.Tensor:
    data = np.ascontiguousarray(data, dtype=np.float32)
    data.flags.writeable = False
    return ir.Tensor(name, data.shape, F32, None, data)


def _graph(tensors: list[ir.Tensor], op: ir.Op, inputs: tuple[str, ...]) -> ir.Graph:
    return ir.Graph("repro", {t.name: t for t in tensors}, (op,), inputs, op.outputs)


# -- calibration files ----------------------------------------------------------------------------------------------


def test_npy_header_with_an_unbalanced_parenthesis_is_a_clean_error(tmp_path: Path) -> None:
    """files:*:19 and 26 more in 2000 cases (a byte of the header overwritten with '('); through the CLI:
    "mcuq: internal error: TokenError: ('EOF in multi-line statement', (2, 0))", exit 1."""
    p = tmp_path / "calib.npy"
    p.write_bytes(_npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': ((4, 8), }", bytes(128)))
    with pytest.raises(McuqError, match="calib.npy"):
        load_npy(p)


def test_npy_header_with_a_bool_dimension_is_a_clean_error(tmp_path: Path) -> None:
    """files:hello:2179 (shape (True, 1, 1)): TypeError 'an integer is required' from reshape; the CLI says
    "internal error", exit 1."""
    p = tmp_path / "calib.npy"
    p.write_bytes(_npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (True, 8), }", bytes(32)))
    with pytest.raises(McuqError, match="calib.npy"):
        load_npy(p)


def test_npy_header_longer_than_the_limit_is_refused_in_one_line(tmp_path: Path) -> None:
    """files:*:* (a header of 20,000 characters): the message is numpy's three lines, which advise
    "allow_pickle=True" and "adjust `max_header_size`", neither of which an mcuq user can (or should) do."""
    p = tmp_path / "calib.npy"
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 8), " + " " * 20000 + "}"
    p.write_bytes(_npy_with_header(text, bytes(128)))
    with pytest.raises(McuqError) as e:
        load_npy(p)
    assert "\n" not in str(e.value) and "allow_pickle" not in str(e.value), str(e.value)


# -- float models whose shapes the float kernels meet before any check ------------------------------------------


@pytest.mark.parametrize("w_shape", [(8,), (8, 6)], ids=["1-D weights", "weights of another width"])
def test_fully_connected_with_wrong_weights_is_refused_by_name(w_shape: tuple[int, ...]) -> None:
    """bytes:ad:87, bytes:ad:1420 (an op's weight index pointed at a bias vector: IndexError in float_ops) and
    bytes:ad:540 (a weight shape mutated: ValueError 'cannot reshape array of size 128 into shape (640)')."""
    x, y = ir.Tensor("x", (1, 8), F32), ir.Tensor("y", (1, 8), F32)
    w, b = _const("w", np.ones(w_shape)), _const("b", np.zeros(8))
    op = ir.Op(ir.OpKind.FULLY_CONNECTED, "fc", ("x", "w", "b"), ("y",), ir.FullyConnectedAttrs(NONE), 0)
    with pytest.raises(McuqError, match="fc"):
        mcuq.quantize(_graph([x, w, b, y], op, ("x",)), np.zeros((4, 1, 8), np.float32))


def test_conv_whose_weights_are_an_activation_is_refused_by_name() -> None:
    """bytes:mix:2668 (a conv's weight index pointed at the model input)."""
    x = ir.Tensor("x", (1, 6, 6, 3), F32)
    h = ir.Tensor("h", (1, 6, 6, 4), F32)
    y = ir.Tensor("y", (1, 6, 6, 4), F32)
    w1, b = _const("w1", np.ones((4, 3, 3, 3))), _const("b", np.zeros(4))
    attrs = ir.Conv2DAttrs(ir.Padding.SAME, 1, 1, 1, 1, NONE)
    c1 = ir.Op(ir.OpKind.CONV2D, "c1", ("x", "w1", "b"), ("h",), attrs, 0)
    c2 = ir.Op(ir.OpKind.CONV2D, "c2", ("h", "x", "b"), ("y",), attrs, 1)
    g = ir.Graph("repro", {t.name: t for t in (x, h, y, w1, b)}, (c1, c2), ("x",), ("y",))
    with pytest.raises(McuqError, match="c2"):
        mcuq.quantize(g, np.zeros((4, 1, 6, 6, 3), np.float32))


def test_depthwise_conv_with_a_short_bias_is_refused_by_name() -> None:
    """bytes:vww:428 (a bias shape mutated): ValueError 'operands could not be broadcast together with shapes
    (8,24,24,32) (2,)' in float_ops."""
    x, y = ir.Tensor("x", (1, 4, 4, 4), F32), ir.Tensor("y", (1, 4, 4, 4), F32)
    w, b = _const("w", np.ones((1, 3, 3, 4))), _const("b", np.zeros(2))
    attrs = ir.DepthwiseConv2DAttrs(ir.Padding.SAME, 1, 1, 1, 1, 1, NONE)
    op = ir.Op(ir.OpKind.DEPTHWISE_CONV2D, "dw", ("x", "w", "b"), ("y",), attrs, 0)
    with pytest.raises(McuqError, match="dw"):
        mcuq.quantize(_graph([x, y, w, b], op, ("x",)), np.zeros((4, 1, 4, 4, 4), np.float32))


def test_pad_whose_paddings_disagree_with_its_output_is_refused_before_allocating() -> None:
    """bytes:mix:2236 (a PAD's paddings mutated): mcuq allocated 14.6 GB, then said the shapes differ; under the
    fuzzer's 6 GiB address-space limit, MemoryError."""
    x, y = ir.Tensor("x", (1, 2, 2, 1), F32), ir.Tensor("y", (1, 2, 2, 1), F32)
    op = ir.Op(ir.OpKind.PAD, "pad", ("x",), ("y",), ir.PadAttrs(((0, 0), (0, 0), (0, 0), (0, 2_000_000_000))), 0)
    with limited_memory(), pytest.raises(McuqError, match="pad"):
        mcuq.quantize(_graph([x, y], op, ("x",)), np.zeros((2, 1, 2, 2, 1), np.float32))


def test_a_tensor_without_values_is_named_in_the_error() -> None:
    """content:*: shape model zero_dim (an input of shape [1, 0, 4, 3]): a clean error, but one that names nothing:
    "tensor: no calibration values to choose a range from" (not the model, not the input)."""
    x, y = ir.Tensor("x", (1, 0, 4, 3), F32), ir.Tensor("y", (1, 0, 4, 3), F32)
    op = ir.Op(ir.OpKind.RELU, "relu", ("x",), ("y",), ir.NoAttrs(), 0)
    with pytest.raises(McuqError, match="'x'"):
        mcuq.quantize(_graph([x, y], op, ("x",)), np.zeros((4, 1, 0, 4, 3), np.float32))


def test_an_output_that_is_the_input_is_refused_before_quantizing() -> None:
    """bytes:resnet:688 (an output index pointed at the input): `mcuq quantize` exited 0 and wrote an int8 model
    that `mcuq compile` refuses ("memory planning: tensor 'x' is both a graph input and a graph output"); quantize
    now refuses it up front, naming the tensor."""
    x, y = ir.Tensor("x", (1, 4), F32), ir.Tensor("y", (1, 4), F32)
    op = ir.Op(ir.OpKind.RELU, "relu", ("x",), ("y",), ir.NoAttrs(), 0)
    g = ir.Graph("repro", {"x": x, "y": y}, (op,), ("x",), ("y", "x"))
    with pytest.raises(McuqError, match="tensor 'x' is both a graph input and a graph output"):
        mcuq.quantize(g, np.ones((4, 1, 4), np.float32))


# -- lowering -------------------------------------------------------------------------------------------------------


def test_mul_whose_input_scales_overflow_float32_is_refused_by_name() -> None:
    """content:mix:2637 (weights of 1e30 made the quantizer try such scales): OverflowError in quantize_multiplier.
    The same int8 model compiled directly: "mcuq: internal error: OverflowError", exit 1, after two numpy warnings.
    ADD's scales were made a clean error in issue 8; MUL multiplies them in float32 first (mul.cc)."""
    q = ir.QParams
    ts = {
        "a": ir.Tensor("a", (1, 4), ir.DType.INT8, q((1e20,), (0,))),
        "b": ir.Tensor("b", (1, 4), ir.DType.INT8, q((1e20,), (0,))),
        "y": ir.Tensor("y", (1, 4), ir.DType.INT8, q((1.0,), (0,))),
    }
    op = ir.Op(ir.OpKind.MUL, "mul", ("a", "b"), ("y",), ir.BinaryAttrs(NONE), 0)
    with pytest.raises(McuqError, match="mul"):
        mcuq.compile_model(ir.Graph("repro", ts, (op,), ("a", "b"), ("y",)))


def test_tanh_with_a_huge_input_scale_compiles_without_numpy_warnings() -> None:
    """content:mix:10821 (a weight of -3.4e38 gave the TANH's input a scale near 1e36): the model is right (C ==
    oracle), but `mcuq compile` prints two lines of numpy's "overflow encountered in multiply" on stderr."""
    q = ir.QParams
    ts = {
        "x": ir.Tensor("x", (1, 4), ir.DType.INT8, q((1e37,), (0,))),
        "y": ir.Tensor("y", (1, 4), ir.DType.INT8, q((1 / 128,), (0,))),
    }
    op = ir.Op(ir.OpKind.TANH, "tanh", ("x",), ("y",), ir.NoAttrs(), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mcuq.compile_model(ir.Graph("repro", ts, (op,), ("x",), ("y",)))
