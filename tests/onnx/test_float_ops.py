"""Single-op float ONNX models (made with ``onnx.helper``): mcuq's import run through mcuq's float reference equals
onnxruntime (ORT_DISABLE_ALL) within 1e-5 relative, arrays in the model's own layout (NCHW / NCW)."""

from __future__ import annotations

import numpy as np
import pytest

from mcuq.frontend.onnx import load  # noqa: E402
from mcuq.ir import OpKind  # noqa: E402
from tests.onnx.util import OPSET, helper, mcuq_float, model, ort_run

R = np.random.default_rng(12)


def f32(*shape, scale=1.0):
    return (R.normal(size=shape) * scale).astype(np.float32)


def node(op, ins, outs=("y",), **attrs):
    return helper.make_node(op, list(ins), list(outs), **attrs)


X4 = ("x", [1, 3, 7, 6])
CONV_W = f32(4, 3, 3, 3)
DW_W = f32(6, 1, 3, 3)
BN = {"s": f32(3) + 2, "bb": f32(3), "m": f32(3), "v": np.abs(f32(3)) + 0.5}

# name: (nodes, inputs, initializers, IR op kinds expected (after import), opset)
CASES = {
    "conv_same": ([node("Conv", "xwb", pads=[1, 1, 1, 1])], [X4], {"w": CONV_W, "b": f32(4)}, [OpKind.CONV2D]),
    "conv_stride_asym_pads": (
        [node("Conv", "xw", pads=[0, 2, 1, 0], strides=[2, 1])],
        [X4],
        {"w": CONV_W},
        [OpKind.PAD, OpKind.CONV2D],
    ),
    "conv_auto_same_lower": (
        [node("Conv", "xw", auto_pad="SAME_LOWER", strides=[2, 2])],
        [X4],
        {"w": f32(4, 3, 2, 2)},
        [OpKind.PAD, OpKind.CONV2D],
    ),
    "conv_dilated_valid": ([node("Conv", "xw", dilations=[2, 1])], [X4], {"w": CONV_W}, [OpKind.CONV2D]),
    "depthwise": (
        [node("Conv", "xwb", group=3, pads=[1, 1, 1, 1])],
        [X4],
        {"w": DW_W, "b": f32(6)},
        [OpKind.DEPTHWISE_CONV2D],
    ),
    "conv1d": (
        [node("Conv", "xwb", pads=[1, 1], strides=[2])],
        [("x", [1, 3, 9])],
        {"w": f32(5, 3, 3), "b": f32(5)},
        [OpKind.CONV2D],
    ),
    "gemm_transb": (
        [node("Gemm", "xwb", transB=1, alpha=0.5, beta=2.0)],
        [("x", [1, 8])],
        {"w": f32(4, 8), "b": f32(4)},
        [OpKind.FULLY_CONNECTED],
    ),
    "gemm": ([node("Gemm", "xwb")], [("x", [1, 8])], {"w": f32(8, 4), "b": f32(1, 4)}, [OpKind.FULLY_CONNECTED]),
    "matmul": ([node("MatMul", "xw")], [("x", [1, 8])], {"w": f32(8, 3)}, [OpKind.FULLY_CONNECTED]),
    "add_bcast": ([node("Add", "xc")], [X4], {"c": f32(3, 1, 1)}, [OpKind.ADD]),
    "mul_two": ([node("Mul", "xz")], [X4, ("z", [1, 3, 7, 6])], {}, [OpKind.MUL]),
    "sub_const_first": ([node("Sub", "cx")], [X4], {"c": f32(6)}, [OpKind.SUB]),
    "relu": ([node("Relu", "x")], [X4], {}, [OpKind.RELU]),
    "clip_relu6": ([node("Clip", ["x", "lo", "hi"])], [X4], {"lo": np.float32(0), "hi": np.float32(6)}, [OpKind.RELU6]),
    "clip_relu": ([node("Clip", ["x", "lo"])], [X4], {"lo": np.float32(0)}, [OpKind.RELU]),
    "leaky_relu": ([node("LeakyRelu", "x", alpha=0.1)], [X4], {}, [OpKind.LEAKY_RELU]),
    "sigmoid": ([node("Sigmoid", "x")], [X4], {}, [OpKind.SIGMOID]),
    "tanh": ([node("Tanh", "x")], [X4], {}, [OpKind.TANH]),
    "hard_swish": ([node("HardSwish", "x")], [X4], {}, [OpKind.HARD_SWISH]),
    "maxpool": ([node("MaxPool", "x", kernel_shape=[2, 2], strides=[2, 2])], [X4], {}, [OpKind.MAX_POOL2D]),
    "maxpool_same": ([node("MaxPool", "x", kernel_shape=[3, 3], pads=[1, 1, 1, 1])], [X4], {}, [OpKind.MAX_POOL2D]),
    "avgpool_exclude_pad": (
        [node("AveragePool", "x", kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
        [X4],
        {},
        [OpKind.AVG_POOL2D],
    ),
    "avgpool_include_pad": (
        [node("AveragePool", "x", kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)],
        [X4],
        {},
        [OpKind.PAD, OpKind.AVG_POOL2D],
    ),
    "maxpool1d": ([node("MaxPool", "x", kernel_shape=[2], strides=[2])], [("x", [1, 3, 9])], {}, [OpKind.MAX_POOL2D]),
    "global_avg": ([node("GlobalAveragePool", "x")], [X4], {}, [OpKind.MEAN]),
    "reduce_mean_hw": ([node("ReduceMean", "x", keepdims=0, axes=[2, 3])], [X4], {}, [OpKind.MEAN, OpKind.RESHAPE]),
    "reduce_mean_c": ([node("ReduceMean", "x", axes=[1])], [X4], {}, [OpKind.MEAN]),
    "reduce_mean_18_w": (
        [node("ReduceMean", "xa", keepdims=0)],
        [X4],
        {"a": np.array([-1])},
        [OpKind.MEAN, OpKind.TRANSPOSE, OpKind.RESHAPE],
        18,
    ),
    "flatten_gemm": (
        [node("Flatten", "x", ["f"]), node("Gemm", "fwb", transB=1)],
        [X4],
        {"w": f32(5, 126), "b": f32(5)},
        [OpKind.RESHAPE, OpKind.FULLY_CONNECTED],
    ),
    "flatten_out": ([node("Flatten", "x")], [X4], {}, [OpKind.TRANSPOSE, OpKind.RESHAPE]),
    "reshape": ([node("Reshape", "xs")], [X4], {"s": np.array([1, 3, -1])}, [OpKind.TRANSPOSE, OpKind.RESHAPE]),
    "squeeze_unsqueeze": (
        [node("Unsqueeze", "xa", ["u"]), node("Squeeze", "ua")],
        [("x", [1, 5])],
        {"a": np.array([1])},
        [OpKind.RESHAPE, OpKind.RESHAPE],
    ),
    "concat_c": ([node("Concat", "xz", axis=1)], [X4, ("z", [1, 2, 7, 6])], {}, [OpKind.CONCAT]),
    "concat_w_const": ([node("Concat", "xc", axis=3)], [X4], {"c": f32(1, 3, 7, 2)}, [OpKind.CONCAT]),
    "softmax_c": ([node("Softmax", "x", axis=1)], [X4], {}, [OpKind.SOFTMAX]),
    "softmax_last": ([node("Softmax", "x")], [("x", [1, 10])], {}, [OpKind.SOFTMAX]),
    "pad": ([node("Pad", "xp")], [X4], {"p": np.array([0, 0, 1, 2, 0, 0, 2, 1])}, [OpKind.PAD]),
    "transpose": ([node("Transpose", "x", perm=[0, 3, 1, 2])], [X4], {}, [OpKind.TRANSPOSE]),
    "transpose_to_nhwc": ([node("Transpose", "x", perm=[0, 2, 3, 1])], [X4], {}, [OpKind.RESHAPE]),
    "batchnorm": ([node("BatchNormalization", ["x", "s", "bb", "m", "v"])], [X4], BN, [OpKind.MUL, OpKind.ADD]),
    "identity_dropout": (
        [node("Identity", "x", ["i"]), node("Dropout", "i", ["d"]), node("Relu", "d")],
        [X4],
        {},
        [OpKind.RELU],
    ),
    "cast_float": ([node("Cast", "x", ["c"], to=1), node("Relu", "c")], [X4], {}, [OpKind.RELU]),
    "div": ([node("Div", "xc")], [X4], {"c": np.float32(3.0)}, [OpKind.MUL]),
    "shape_subgraph_reshape": (
        [
            node("Shape", "x", ["sh"]),
            node("Gather", ["sh", "i0"], ["n"], axis=0),
            node("Unsqueeze", ["n", "a0"], ["nu"]),
            node("Concat", ["nu", "m1"], ["s"], axis=0),
            node("Reshape", "xs", ["f"]),
            node("MatMul", "fw"),
        ],
        [X4],
        {"i0": np.array(0), "a0": np.array([0]), "m1": np.array([-1]), "w": f32(126, 4)},
        [OpKind.RESHAPE, OpKind.FULLY_CONNECTED],
    ),
}
# Ops that HD's quantizer work adds; in the float reference once that lands.
NEW_KINDS = {OpKind.LEAKY_RELU, OpKind.HARD_SIGMOID, OpKind.CLIP}
CASES["hard_sigmoid"] = ([node("HardSigmoid", "x", alpha=0.3, beta=0.4)], [X4], {}, [OpKind.HARD_SIGMOID])
CASES["clip_general"] = (
    [node("Clip", ["x", "lo", "hi"])],
    [X4],
    {"lo": np.float32(-0.5), "hi": np.float32(0.7)},
    [OpKind.CLIP],
)


def case_model(name: str, opset: int | None = None) -> bytes:
    nodes, inputs, inits, _, *own = CASES[name]
    return model(nodes, inputs, [(nodes[-1].output[0], None)], inits, opset=opset or (own[0] if own else OPSET))


@pytest.mark.parametrize("name", sorted(CASES))
def test_float_op_matches_onnxruntime(name):
    nodes, inputs, inits, kinds, *_ = CASES[name]
    data = case_model(name)
    g = load(data)
    assert [op.kind for op in g.ops] == kinds
    from mcuq.reference.float_ops import FLOAT_OPS

    if any(k not in FLOAT_OPS for k in kinds):
        pytest.skip(
            f"{name}: the float reference has no kernel for {[k.name for k in kinds if k not in FLOAT_OPS]} yet"
        )
    feeds = {n: f32(*s, scale=3.0) for n, s in inputs}
    want = ort_run(data, feeds)
    got = mcuq_float(g, feeds)
    assert len(got) == len(want)
    for w, o in zip(want, got):
        assert o.shape == w.shape
        np.testing.assert_allclose(o, w, rtol=1e-5, atol=1e-5 * float(np.abs(w).max() + 1e-30))


@pytest.mark.parametrize("opset", [13, 21])
def test_opset_range_accepted(opset):
    g = load(case_model("conv_same", opset=opset))
    assert g.meta["onnx_opset"] == str(opset)
