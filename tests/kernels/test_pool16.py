"""16x8 mode (int16 activations) for AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, PAD, CONCATENATION, RESHAPE/SQUEEZE and
TRANSPOSE: lowering, numpy reference and C, bit-exact with the oracle (tflite-runtime 2.14's int16 reference
kernels) by the three-way check of tests/util/harness.py, plus the compile-time refusals.

Each case is a one-op int16 graph (zero points 0, TFLite's 16x8 spec) run on random int16 inputs over the whole
range, the constant extremes -32768 and 32767, and a narrow spread; the random sweeps put several ops on one input
so that one oracle call and one C build check them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from mcuq import ir
from mcuq.errors import ModelError
from mcuq.lower import lower
from mcuq.lower.window import out_size
from mcuq.passes import PIPELINE
from tests.util.harness import three_way

A = ir.Activation
AVG, MAX = ir.OpKind.AVG_POOL2D, ir.OpKind.MAX_POOL2D
SAME, VALID = ir.Padding.SAME, ir.Padding.VALID
I16 = ir.DType.INT16
N_RANDOM = 6  # random inputs per case, in one oracle call and one C run


def _t(name: str, shape, scale: float = 0.001, dtype: ir.DType = I16, zp: int = 0) -> ir.Tensor:
    return ir.Tensor(name, tuple(int(d) for d in shape), dtype, ir.QParams((float(np.float32(scale)),), (zp,)))


def _graph(name: str, tensors: list[ir.Tensor], ops: list[ir.Op], inputs: list[str], outputs: list[str]) -> ir.Graph:
    return ir.Graph(name, {t.name: t for t in tensors}, tuple(ops), tuple(inputs), tuple(outputs))


def inputs16(shape, seed: int) -> np.ndarray:
    """Random int16 inputs over the whole range, the all -32768 and all 32767 tensors, and a narrow spread."""
    rng = np.random.default_rng(2000 + seed)
    shape = tuple(shape)
    xs = [
        rng.integers(-32768, 32768, size=(N_RANDOM, *shape)),
        np.full((1, *shape), -32768),
        np.full((1, *shape), 32767),
        rng.integers(-5, 6, size=(1, *shape)),
    ]
    return np.concatenate(xs).astype(np.int16)


def merged(name: str, graphs: dict[str, ir.Graph]) -> ir.Graph:
    """The one-op graphs side by side in one graph, every tensor and op name prefixed with its case's id, so that
    one oracle call and one C build check them all (a mismatch names the output, and the harness the layer)."""

    def ren(case: str, n: str) -> str:
        return f"{case}__{n}"

    tensors: list[ir.Tensor] = []
    ops: list[ir.Op] = []
    ins: list[str] = []
    outs: list[str] = []
    for case, g in graphs.items():
        tensors += [ir.Tensor(ren(case, t.name), t.shape, t.dtype, t.qparams, t.data) for t in g.tensors.values()]
        for op in g.ops:
            i, o = tuple(ren(case, n) for n in op.inputs), tuple(ren(case, n) for n in op.outputs)
            ops.append(ir.Op(op.kind, ren(case, op.name), i, o, op.attrs, origin=op.origin))
        ins += [ren(case, n) for n in g.inputs]
        outs += [ren(case, n) for n in g.outputs]
    return _graph(name, tensors, ops, ins, outs)


def check_merged(name: str, graphs: dict[str, ir.Graph]) -> None:
    g = merged(name, graphs)
    three_way(g, [inputs16(g.tensors[n].shape, i) for i, n in enumerate(g.inputs)], name=name, layers=True)


# -- pooling ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolCase:
    id: str
    kind: ir.OpKind
    in_shape: tuple[int, int, int, int]
    filter: tuple[int, int]
    stride: tuple[int, int]
    padding: ir.Padding
    act: ir.Activation = A.NONE
    scale: float = 0.001
    out_scale: float | None = None  # when it differs from the input's (not requantized)
    seed: int = 0


POOL_CASES = [
    PoolCase("avg_2x2_s2_valid", AVG, (1, 8, 8, 3), (2, 2), (2, 2), VALID, seed=1),
    PoolCase("avg_3x3_s2_same_odd_relu", AVG, (2, 9, 7, 5), (3, 3), (2, 2), SAME, A.RELU, seed=2),
    PoolCase("avg_global_25x5", AVG, (1, 25, 5, 16), (25, 5), (25, 5), VALID, seed=3),
    # scale 3e-4: RELU6's 6.0 is 20000, inside the int16 range, so the clamp bites
    PoolCase("avg_5x5_s3_same_relu6", AVG, (1, 11, 13, 2), (5, 5), (3, 3), SAME, A.RELU6, scale=3e-4, seed=4),
    PoolCase("avg_filter_gt_input_n1to1", AVG, (1, 3, 4, 6), (5, 6), (1, 1), SAME, A.RELU_N1_TO_1, 1e-4, seed=5),
    PoolCase("avg_requant_ignored", AVG, (1, 6, 6, 3), (3, 3), (1, 1), SAME, out_scale=0.004, seed=6),
    PoolCase("avg_4x3_s1x2_same_odd_c", AVG, (1, 10, 11, 7), (4, 3), (1, 2), SAME, seed=7),
    PoolCase("max_2x2_s2_valid", MAX, (1, 8, 8, 3), (2, 2), (2, 2), VALID, seed=11),
    PoolCase("max_3x3_s2_same_odd_relu", MAX, (2, 9, 7, 5), (3, 3), (2, 2), SAME, A.RELU, seed=12),
    PoolCase("max_3x2_s1_same_relu6", MAX, (1, 7, 10, 4), (3, 2), (1, 1), SAME, A.RELU6, scale=2e-4, seed=13),
    PoolCase("max_even_kernel_n1to1", MAX, (1, 6, 5, 7), (4, 2), (3, 2), SAME, A.RELU_N1_TO_1, 5e-5, seed=14),
    PoolCase("max_1x1_s2x3_valid", MAX, (1, 9, 10, 3), (1, 1), (2, 3), VALID, seed=15),
]


def pool_graph(case: PoolCase) -> ir.Graph:
    n, h, w, c = case.in_shape
    oh = out_size(case.padding, h, case.filter[0], case.stride[0], 1)
    ow = out_size(case.padding, w, case.filter[1], case.stride[1], 1)
    attrs = ir.Pool2DAttrs(case.padding, case.stride[0], case.stride[1], case.filter[0], case.filter[1], case.act)
    op = ir.Op(case.kind, case.id, ("x",), ("y",), attrs)
    x, y = _t("x", case.in_shape, case.scale), _t("y", (n, oh, ow, c), case.out_scale or case.scale)
    return _graph(case.id, [x, y], [op], ["x"], ["y"])


@pytest.mark.oracle
def test_pool16_bit_exact() -> None:
    check_merged("pools16", {c.id: pool_graph(c) for c in POOL_CASES})


@pytest.mark.oracle
def test_avg_pool16_largest_window() -> None:
    """A global average over 255 x 257 = 65,535 taps, the most whose int32 sum cannot overflow: at -32768
    everywhere the sum is -2,147,450,880 and TFLite's rounding term brings it to -2^31 + 1."""
    case = PoolCase("avg_global_65535", AVG, (1, 255, 257, 1), (255, 257), (255, 257), VALID)
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.integers(-32768, 32768, size=(2, 1, 255, 257, 1)), np.full((2, 1, 255, 257, 1), -32768)])
    x[-1] = 32767
    (y,) = three_way(pool_graph(case), [x.astype(np.int16)], name=case.id)
    assert y[2].item() == -32768 and y[3].item() == 32767


def _random_pools(rng: np.random.Generator, shape: tuple[int, int, int, int], count: int) -> list[ir.Op]:
    ops = []
    for i in range(count):
        fh, fw = (int(v) for v in rng.integers(1, 6, size=2))
        sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
        pad = SAME if rng.random() < 0.5 else VALID
        if pad == VALID:
            fh, fw = min(fh, shape[1]), min(fw, shape[2])
        act = [A.NONE, A.RELU, A.RELU6, A.RELU_N1_TO_1][int(rng.integers(0, 4))]
        kind = AVG if i % 2 == 0 else MAX
        ops.append(ir.Op(kind, f"p{i}", ("x",), (f"y{i}",), ir.Pool2DAttrs(pad, sh, sw, fh, fw, act)))
    return ops


def random_pool_graph(seed: int) -> ir.Graph:
    """Six random pools (odd sizes, strides, both paddings, every fused activation) on one random input shape."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 3)), *(int(v) for v in rng.integers(1, 12, size=2)), int(rng.integers(1, 8)))
    scale = float(rng.choice([1e-4, 2.5e-4, 1e-3]))
    ops = _random_pools(rng, shape, 6)
    tensors = [_t("x", shape, scale)]
    for op in ops:
        a = op.attrs
        oh = out_size(a.padding, shape[1], a.filter_h, a.stride_h, 1)
        ow = out_size(a.padding, shape[2], a.filter_w, a.stride_w, 1)
        tensors.append(_t(op.outputs[0], (shape[0], oh, ow, shape[3]), scale))
    return _graph(f"pools{seed}", tensors, ops, ["x"], [op.outputs[0] for op in ops])


@pytest.mark.oracle
def test_pool16_random() -> None:
    check_merged("random_pools16", {f"r{seed}": random_pool_graph(seed) for seed in (1, 2, 3, 4)})


# -- MEAN -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeanCase:
    id: str
    in_shape: tuple[int, ...]
    axes: tuple[int, ...]
    keep_dims: bool
    in_scale: float
    out_scale: float
    seed: int = 0


MEAN_CASES = [
    MeanCase("gap_4x4x64_keep", (1, 4, 4, 64), (1, 2), True, 0.001, 6e-4, seed=21),
    MeanCase("gap_4x4x64_flat", (1, 4, 4, 64), (1, 2), False, 0.001, 6e-4, seed=22),
    MeanCase("gap_same_scale_keep", (1, 5, 3, 9), (1, 2), True, 4.3e-4, 4.3e-4, seed=23),
    MeanCase("gap_same_scale_flat", (2, 7, 7, 3), (1, 2), False, 4.3e-4, 4.3e-4, seed=24),
    MeanCase("gap_out_coarser", (1, 6, 6, 8), (1, 2), True, 1e-4, 0.0037, seed=25),
    MeanCase("gap_out_finer_saturates", (1, 3, 5, 4), (1, 2), False, 0.002, 3e-4, seed=26),
    MeanCase("last_axis", (1, 3, 5, 8), (3,), True, 2e-4, 1.5e-4, seed=27),
    MeanCase("axes_0_2", (2, 3, 4, 5), (0, 2), False, 3e-4, 2e-4, seed=28),
    MeanCase("rank2_axis1", (3, 10), (1,), False, 8e-4, 5e-4, seed=29),
    MeanCase("all_axes", (2, 3, 4), (0, 1, 2), True, 5e-4, 4e-5, seed=30),
    MeanCase("axis1_rank4", (6, 5, 4, 3), (1,), True, 1.23e-4, 3.1e-5, seed=31),
    MeanCase("one_element", (1, 1, 1, 10), (1, 2), False, 5e-4, 1e-3, seed=32),
    # 65,535 elements, the most whose int32 sum of int16 values cannot overflow
    MeanCase("gap_65535", (1, 255, 257, 1), (1, 2), True, 1e-3, 1e-3, seed=33),
]


def mean_graph(case: MeanCase) -> ir.Graph:
    shape = case.in_shape
    if case.keep_dims:
        y_shape = tuple(1 if i in case.axes else d for i, d in enumerate(shape))
    else:
        y_shape = tuple(d for i, d in enumerate(shape) if i not in case.axes)
    op = ir.Op(ir.OpKind.MEAN, case.id, ("x",), ("y",), ir.MeanAttrs(case.axes, case.keep_dims))
    return _graph(case.id, [_t("x", shape, case.in_scale), _t("y", y_shape, case.out_scale)], [op], ["x"], ["y"])


@pytest.mark.oracle
def test_mean16_bit_exact() -> None:
    check_merged("means16", {c.id: mean_graph(c) for c in MEAN_CASES})


@pytest.mark.oracle
def test_mean16_scale_ratio_sweep() -> None:
    """Many scale ratios (out/in from e^-2.5 to e^2.5) and sizes of the global average."""
    rng = np.random.default_rng(78)
    cases = {}
    for i in range(10):
        h, w = (int(v) for v in rng.integers(1, 9, size=2))
        s_in = float(np.float32(rng.uniform(2e-5, 2e-3)))
        s_out = float(np.float32(s_in * float(np.exp(rng.uniform(-2.5, 2.5)))))
        cases[f"sweep{i}"] = mean_graph(MeanCase(f"sweep{i}", (1, h, w, 16), (1, 2), bool(i % 2), s_in, s_out))
    check_merged("mean16_sweep", cases)


# -- data movement ----------------------------------------------------------------------------------------------


def _one_op(kind: ir.OpKind, attrs, ins: list[ir.Tensor], out: ir.Tensor, origin: str = "") -> ir.Graph:
    op = ir.Op(kind, kind.value.lower(), tuple(t.name for t in ins), (out.name,), attrs, origin=origin)
    return _graph(kind.value.lower(), [*ins, out], [op], [t.name for t in ins], [out.name])


def pad_graph(shape, pads) -> ir.Graph:
    oshape = [d + b + a for d, (b, a) in zip(shape, pads, strict=True)]
    return _one_op(ir.OpKind.PAD, ir.PadAttrs(tuple(tuple(p) for p in pads)), [_t("x", shape)], _t("y", oshape))


def concat_graph(shapes, axis, scales=None) -> ir.Graph:
    scales = scales or [0.001] * len(shapes)
    ins = [_t(f"x{i}", s, sc) for i, (s, sc) in enumerate(zip(shapes, scales, strict=True))]
    oshape = list(shapes[0])
    oshape[axis] = sum(s[axis] for s in shapes)
    return _one_op(ir.OpKind.CONCAT, ir.ConcatAttrs(axis), ins, _t("y", oshape))


def transpose_graph(shape, perm) -> ir.Graph:
    return _one_op(
        ir.OpKind.TRANSPOSE, ir.TransposeAttrs(tuple(perm)), [_t("x", shape)], _t("y", [shape[p] for p in perm])
    )


def reshape_graph(shape, oshape, origin: str = "") -> ir.Graph:
    return _one_op(ir.OpKind.RESHAPE, ir.ReshapeAttrs(), [_t("x", shape)], _t("y", oshape), origin)


SHAPE_CASES = {
    "pad_image": (pad_graph((1, 5, 7, 3), [(0, 0), (1, 1), (2, 1), (0, 0)]), "mcuq_pad_s16"),
    "pad_all_dims": (pad_graph((2, 3, 1, 5), [(1, 0), (0, 2), (3, 1), (1, 1)]), "mcuq_pad_s16"),
    "pad_rank1": (pad_graph((7,), [(3, 2)]), "mcuq_pad_s16"),
    "pad_rank5": (pad_graph((1, 2, 3, 2, 3), [(0, 1), (1, 0), (0, 0), (1, 2), (0, 1)]), "mcuq_pad_s16"),
    "pad_nothing": (pad_graph((1, 3, 4, 2), [(0, 0)] * 4), "mcuq_copy_s16"),
    "concat_channels": (concat_graph([(1, 4, 4, 3), (1, 4, 4, 5)], 3), "mcuq_concatenation_s16"),
    "concat_width_3": (concat_graph([(1, 3, 2, 2), (1, 3, 5, 2), (1, 3, 1, 2)], 2), "mcuq_concatenation_s16"),
    "concat_batch": (concat_graph([(2, 3, 1, 2), (1, 3, 1, 2)], 0), "mcuq_concatenation_s16"),
    # TFLite's int16 CONCATENATION checks only the zero points: other scales are copied unchanged
    "concat_scales_differ": (
        concat_graph([(1, 2, 3, 4), (1, 2, 3, 3)], 3, [0.001, 0.0037]),
        "mcuq_concatenation_s16",
    ),
    "transpose_nhwc_nchw": (transpose_graph((1, 4, 5, 3), (0, 3, 1, 2)), "mcuq_transpose_s16"),
    "transpose_rank2": (transpose_graph((7, 9), (1, 0)), "mcuq_transpose_s16"),
    "transpose_rank6": (transpose_graph((2, 3, 1, 2, 3, 2), (5, 3, 0, 4, 2, 1)), "mcuq_transpose_s16"),
    "transpose_moves_nothing": (transpose_graph((1, 6, 1, 4), (2, 1, 0, 3)), "mcuq_copy_s16"),
    "reshape": (reshape_graph((1, 4, 4, 3), (1, 48)), "mcuq_copy_s16"),
    "squeeze": (reshape_graph((1, 1, 5, 3), (5, 3), origin="SQUEEZE"), "mcuq_copy_s16"),
}


@pytest.mark.parametrize("name", sorted(SHAPE_CASES))
def test_shape16_kernels(name: str) -> None:
    g, kernel = SHAPE_CASES[name]
    for p in PIPELINE:  # as compile_model does: a RESHAPE between two caller buffers becomes a COPY
        g = p(g)
    assert [layer.kernel_name for layer in lower(g)] == [kernel]


@pytest.mark.oracle
def test_shape16_bit_exact() -> None:
    check_merged("shapes16", {name: g for name, (g, _) in SHAPE_CASES.items()})


def alias_graph() -> ir.Graph:
    """TRANSPOSE -> RESHAPE -> PAD: the RESHAPE between two arena tensors is an alias."""
    shape = (1, 4, 4, 3)
    ops = [
        ir.Op(ir.OpKind.TRANSPOSE, "t", ("x",), ("a",), ir.TransposeAttrs((0, 2, 1, 3))),
        ir.Op(ir.OpKind.RESHAPE, "r", ("a",), ("b",), ir.ReshapeAttrs()),
        ir.Op(ir.OpKind.PAD, "p", ("b",), ("y",), ir.PadAttrs(((0, 0), (1, 2)))),
    ]
    tensors = [_t("x", shape), _t("a", shape), _t("b", (1, 48)), _t("y", (1, 51))]
    return _graph("alias16", tensors, ops, ["x"], ["y"])


@pytest.mark.oracle
def test_reshape16_inside_a_graph_is_an_alias() -> None:
    """An int16 RESHAPE between two arena tensors costs no kernel, as for int8."""
    g = alias_graph()
    assert [la.kernel_name for la in lower(g) if la.kernel is not None] == ["mcuq_transpose_s16", "mcuq_pad_s16"]
    three_way(g, [inputs16(g.tensors["x"].shape, 9)], layers=True)


# -- what is refused, with one line naming the op -----------------------------------------------------------------


def _refused(g: ir.Graph, match: str) -> None:
    with pytest.raises(ModelError, match=match):
        lower(g)


def test_int16_nonzero_zero_point_is_refused() -> None:
    g = pool_graph(POOL_CASES[0])
    x = g.tensors["x"]
    g.tensors["x"] = ir.Tensor("x", x.shape, I16, ir.QParams(x.qparams.scale, (3,)))
    _refused(g, "int16 activations must be symmetric")


def test_mixed_int8_int16_is_refused() -> None:
    g = transpose_graph((1, 4, 5, 3), (0, 3, 1, 2))
    y = g.tensors["y"]
    g.tensors["y"] = _t("y", y.shape, dtype=ir.DType.INT8)
    _refused(g, "one type")
    g = concat_graph([(1, 4, 4, 3), (1, 4, 4, 5)], 3)
    g.tensors["x1"] = _t("x1", (1, 4, 4, 5), dtype=ir.DType.INT8)
    _refused(g, "one type")


def test_avg_pool16_window_beyond_65535_taps_is_refused() -> None:
    _refused(pool_graph(PoolCase("big", AVG, (1, 256, 256, 1), (256, 256), (256, 256), VALID)), "more than 65535 taps")
    # a max pool has no sum: the same window is fine
    assert lower(pool_graph(PoolCase("big", MAX, (1, 256, 256, 1), (256, 256), (256, 256), VALID)))


def test_mean16_over_65536_elements_is_refused() -> None:
    _refused(mean_graph(MeanCase("big", (1, 256, 256, 1), (1, 2), True, 1e-3, 1e-3)), "could overflow")


def test_pool16_params() -> None:
    """RELU6 at scale 3e-4 clamps to [0, round(6 / 3e-4)] = [0, 20000]: bounds beyond int8's range."""
    (layer,) = lower(pool_graph(POOL_CASES[3]))
    assert layer.kernel.name == "mcuq_average_pool2d_s16" and layer.kernel.dtype == "s16"
    assert (layer.p("activation.min"), layer.p("activation.max")) == (0, 20000)
    (layer,) = lower(pool_graph(POOL_CASES[0]))
    assert (layer.p("activation.min"), layer.p("activation.max")) == (-32768, 32767)
    (layer,) = lower(mean_graph(MEAN_CASES[0]))
    assert layer.kernel.name == "mcuq_mean_s16" and layer.p("output_zp") == 0 and layer.p("input_zp_sum") == 0
