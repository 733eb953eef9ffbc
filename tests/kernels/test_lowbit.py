"""Packed sub-8-bit weights: CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED with 4-, 2- and 1-bit weights.

Each group is one graph of independent one-op layers (one input and one output each) whose weights are INT4, INT2
or INT1 values; ``three_way`` writes it as the int8-container .tflite (int8 weights + the ``mcuq_weight_bits``
metadata), runs it through the oracle (tflite-runtime 2.14 BUILTIN_REF on the int8 values), the numpy mirror and
the generated C (the packed kernels, under ASan/UBSan), and wants the same bits from all three. The shapes make
channels start in the middle of a byte (27 values a channel), odd tensor lengths, depth multipliers, strides,
dilations and both paddings.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pytest

from mcuq import ir
from mcuq.frontend.tflite import load
from mcuq.frontend.tflite_writer import write
from mcuq.lower import lower
from tests.kernels.test_conv import Case, build_graph
from tests.util.harness import random_int8, three_way

A = ir.Activation
C, D, F = ir.OpKind.CONV2D, ir.OpKind.DEPTHWISE_CONV2D, ir.OpKind.FULLY_CONNECTED
SAME, VALID = ir.Padding.SAME, ir.Padding.VALID
DTYPES = {4: ir.DType.INT4, 2: ir.DType.INT2, 1: ir.DType.INT1}
N_INPUTS = 4

CASES = [
    # 3 channels of 3 * 3 * 3 = 27 values: every channel after the first starts mid-byte at 4, 2 and 1 bits
    Case("conv_3x3_same_odd", C, (1, 7, 6, 3), 3, (3, 3), padding=SAME, act=A.RELU, in_zp=-128, out_zp=-128, seed=31),
    Case("conv_5x3_s2_dil", C, (1, 11, 10, 5), 7, (5, 3), (2, 1), (1, 2), padding=SAME, in_zp=17, out_zp=5, seed=32),
    Case("conv_1x1_per_tensor", C, (1, 4, 5, 9), 5, per_channel=False, in_zp=-7, seed=33),
    Case("conv_2x2_s2_valid_batch2", C, (2, 6, 7, 3), 4, (2, 2), (2, 2), act=A.RELU6, in_zp=100, seed=34),
    Case("dw_3x3_same", D, (1, 7, 8, 5), 5, (3, 3), padding=SAME, act=A.RELU, in_zp=-128, out_zp=-128, seed=35),
    Case("dw_mult3_s2_valid", D, (1, 9, 8, 3), 9, (3, 2), (2, 1), in_zp=25, out_zp=-3, seed=36),
    Case("dw_mult2_dilated_same", D, (1, 9, 9, 1), 2, (3, 3), (1, 1), (2, 2), padding=SAME, in_zp=-60, seed=37),
    Case("fc_odd_per_channel", F, (2, 37), 11, act=A.RELU6, in_zp=127, out_zp=-128, seed=38),
    Case("fc_odd_per_tensor", F, (1, 13), 5, per_channel=False, in_zp=-128, out_zp=12, seed=39),
    Case("fc_one_unit", F, (1, 3), 1, seed=40),
]
# tflite-runtime 2.14's CONV_2D refuses a missing bias: checked against the numpy mirror only
NO_BIAS = [
    Case("conv_nobias", C, (1, 5, 5, 3), 3, (3, 3), padding=SAME, bias=False, seed=41),
    Case("dw_nobias", D, (1, 5, 6, 3), 6, (3, 3), (2, 2), padding=SAME, bias=False, seed=42),
    Case("fc_nobias", F, (1, 19), 3, bias=False, seed=43),
]
RMS = {8: 73.3, 4: 4.32, 2: 0.816, 1: 1.0}  # rms of uniform weights in each range (build_graph assumes int8's)


def narrow_values(shape: tuple[int, ...], bits: int, rng: np.random.Generator) -> np.ndarray:
    if bits == 1:
        return rng.choice(np.array([-1, 1], dtype=np.int8), size=shape)
    hi = 7 if bits == 4 else 1
    return rng.integers(-hi, hi + 1, size=shape).astype(np.int8)


def lowbit_graph(case: Case, bits: int) -> ir.Graph:
    """``test_conv.build_graph(case)`` with packed weights and the output scale narrowed to match."""
    g = build_graph(case)
    rng = np.random.default_rng(case.seed * 10 + bits)
    w, y = g.tensors["w"], g.tensors["y"]
    data = narrow_values(w.shape, bits, rng)
    tensors = dict(g.tensors)
    tensors["w"] = ir.Tensor("w", w.shape, DTYPES[bits], w.qparams, data)
    assert y.qparams is not None
    s_out = float(np.float32(y.qparams.scale[0] * RMS[bits] / RMS[8]))
    tensors["y"] = ir.Tensor("y", y.shape, y.dtype, ir.QParams((s_out,), y.qparams.zero_point))
    if "b" in tensors:  # the bias shrinks with the accumulator, or it would saturate every output
        b = tensors["b"]
        bias = (np.asarray(b.data, dtype=np.int64) * RMS[bits] // int(RMS[8])).astype(np.int32)
        tensors["b"] = replace(b, data=bias)
    return replace(g, name=f"{case.id}_w{bits}", tensors=tensors)


def merged(name: str, graphs: list[ir.Graph]) -> ir.Graph:
    """Independent one-op graphs as one graph (tensor names prefixed with the graph's name)."""
    tensors: dict[str, ir.Tensor] = {}
    ops, inputs, outputs = [], [], []
    for g in graphs:
        ren = {n: f"{g.name}/{n}" for n in g.tensors}
        for n, t in g.tensors.items():
            tensors[ren[n]] = replace(t, name=ren[n])
        (op,) = g.ops
        ops.append(replace(op, inputs=tuple(ren[n] if n else "" for n in op.inputs), outputs=(ren[op.outputs[0]],)))
        inputs += [ren[n] for n in g.inputs]
        outputs += [ren[n] for n in g.outputs]
    return ir.Graph(name, tensors, tuple(ops), tuple(inputs), tuple(outputs))


def _inputs(g: ir.Graph, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [random_int8(g.tensors[n].shape, N_INPUTS, rng) for n in g.inputs]


@pytest.mark.oracle
@pytest.mark.parametrize("bits", [4, 2, 1])
def test_packed_kernels_bit_exact_with_the_oracle(bits: int) -> None:
    g = merged(f"lowbit{bits}", [lowbit_graph(c, bits) for c in CASES])
    outs = three_way(g, _inputs(g, bits), layers=True)
    for case, out in zip(CASES, outs, strict=True):
        if out.size > 8:
            assert np.unique(out).size > 3, f"{case.id}: degenerate case, outputs almost constant"


def test_packed_kernels_without_bias_match_the_mirror() -> None:
    g = merged("lowbit_nobias", [lowbit_graph(c, b) for c in NO_BIAS for b in (4, 2, 1)])
    three_way(g, _inputs(g, 7), oracle_ok=False)


def test_lowering_picks_the_packed_kernel_and_codegen_packs() -> None:
    import mcuq

    g = merged("pick", [lowbit_graph(CASES[0], 4), lowbit_graph(CASES[5], 2), lowbit_graph(CASES[7], 1)])
    layers = lower(g)
    assert [la.kernel.name for la in layers] == [
        "mcuq_conv2d_s8_lowbit",
        "mcuq_depthwise_conv2d_s8_lowbit",
        "mcuq_fully_connected_s8_lowbit",
    ]
    assert [la.p("bits") for la in layers] == [4, 2, 1]
    cm = mcuq.compile_model(write(g), prefix="pick")
    c = cm.files["pick.c"]
    # conv 3 x 27 int4 values: 41 bytes; depthwise 3 * 2 * 9 int2: 14 bytes; FC 11 x 37 int1: 51 bytes
    for name, bits, n in (("conv_3x3_same_odd", 4, 41), ("dw_mult3_s2_valid", 2, 14), ("fc_odd_per_channel", 1, 51)):
        assert re.search(rf"static const uint8_t w_{name}_w{bits}_w(_dsp)?\[{n}\]", c), name  # int4: dsp layout
    assert cm.model.weight_bytes == 41 + 14 + 51 + 4 * (3 + 9 + 11)
    h = cm.files["pick.h"]
    assert "weights int4, activations int8" in h and "weights int2" in h and "weights int1" in h


def test_weights_that_fit_are_detected_and_packed() -> None:
    """An int8 model whose weights hold narrow values: packed by default, left int8 with pack_weights=False;
    the same outputs either way."""
    import mcuq

    parts = [lowbit_graph(CASES[0], 4), lowbit_graph(CASES[6], 2), lowbit_graph(CASES[8], 1)]
    as_int8 = [replace(p, tensors={**p.tensors, "w": replace(p.tensors["w"], dtype=ir.DType.INT8)}) for p in parts]
    g = merged("detect", as_int8)
    model = write(g)
    assert all(t.dtype is not ir.DType.INT4 for t in load(model).tensors.values())
    packed = mcuq.compile_model(model, prefix="detect")
    plain = mcuq.compile_model(model, prefix="detect", pack_weights=False)
    assert [la.base_kernel_name for la in packed.layers] == [
        "mcuq_conv2d_s8_lowbit",
        "mcuq_depthwise_conv2d_s8_lowbit",
        "mcuq_fully_connected_s8_lowbit",
    ]
    assert all("lowbit" not in la.kernel_name for la in plain.layers)
    assert packed.model.weight_bytes < plain.model.weight_bytes
    xs = _inputs(g, 3)
    for a, b in zip(packed.run(xs), plain.run(xs), strict=True):
        np.testing.assert_array_equal(a, b)


def test_int8_weights_outside_every_narrow_range_stay_int8() -> None:
    from mcuq.passes import pack_weights

    g = build_graph(CASES[0])  # random int8 weights in [-127, 127]
    assert pack_weights(g) is g
    w = g.tensors["w"]
    data = np.where(np.asarray(w.data) > 0, 1, -1).astype(np.int8)
    data.flat[0] = 0  # ternary, not binary
    g2 = replace(g, tensors={**g.tensors, "w": replace(w, data=data)})
    assert pack_weights(g2).tensors["w"].dtype is ir.DType.INT2
    data = data.copy()
    data.flat[0] = -8  # int4 two's complement, but outside the narrow range: not packed
    g3 = replace(g, tensors={**g.tensors, "w": replace(w, data=data)})
    assert pack_weights(g3).tensors["w"].dtype is ir.DType.INT8


def test_accumulator_check_sees_the_packed_values() -> None:
    big = Case("fc_big", F, (1, 4000), 2, in_zp=127, seed=3)
    g = lowbit_graph(big, 4)
    assert math.isfinite(g.tensors["y"].scale)
    (layer,) = lower(g)  # 7 * 255 * 4000 fits int32
    assert layer.kernel.name == "mcuq_fully_connected_s8_lowbit"
