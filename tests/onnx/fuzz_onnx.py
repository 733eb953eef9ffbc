"""Structure-aware mutants of ONNX models through the pipeline: every outcome is a model that works or a one-line
McuqError, never another exception.

    python -m tests.onnx.fuzz_onnx [--n 2000] [--seed 0] [--compile]

Mutant ``i`` is seed ``seed + i`` applied to seed model ``i mod len(SEEDS)``: one to three edits of the parsed
ModelProto (input dims, node attributes, initializer dims / data / types, node inputs and op types, opsets,
external data locations, removed or repeated nodes) or a few flipped bytes of the serialized file. A mutant that
loads is quantized with three random samples and its float graph run (``--compile``: also compiled and run on the
host). Failures print the seed and the exception; the test (``test_fuzz_onnx_smoke``) runs a few dozen.
"""

from __future__ import annotations

import argparse
import sys
import traceback

import numpy as np

from mcuq.errors import McuqError  # noqa: E402
from tests.onnx.util import onnx

DIMS = [0, 1, 2, 3, 7, -1, -5, 1 << 31, 1 << 40]
INTS = [0, 1, 2, 3, -1, -2, 5, 100, 1 << 31]
OPS = ["Conv", "Relu", "Add", "MaxPool", "Flatten", "Gemm", "Reshape", "Concat", "Softmax", "Transpose", "Pad",
       "Squeeze", "Unsqueeze", "ReduceMean", "BatchNormalization", "QuantizeLinear", "DequantizeLinear", "Shape",
       "Gather", "Clip", "Einsum"]  # fmt: skip


def seeds() -> list[bytes]:
    from tests.onnx.test_pipeline import conv1d_model, mixed_model
    from tests.onnx.test_qdq import hand_qdq_model, small_float_model

    rng = np.random.default_rng(0)
    return [mixed_model(), conv1d_model(), small_float_model(),
            hand_qdq_model(rng.integers(-127, 128, size=(3, 2, 3, 3)).astype(np.int8))]  # fmt: skip


def _mutate_once(m, rng: np.random.Generator) -> None:
    g = m.graph
    kind = int(rng.integers(0, 9))
    if kind == 0 and g.input:  # an input dimension
        dims = g.input[int(rng.integers(len(g.input)))].type.tensor_type.shape.dim
        if dims:
            d = dims[int(rng.integers(len(dims)))]
            if rng.random() < 0.2:
                d.dim_param = "S"
            else:
                d.dim_value = int(rng.choice(DIMS))
    elif kind == 1 and g.node:  # an attribute
        node = g.node[int(rng.integers(len(g.node)))]
        if node.attribute:
            a = node.attribute[int(rng.integers(len(node.attribute)))]
            if a.ints:
                a.ints[int(rng.integers(len(a.ints)))] = int(rng.choice(INTS))
            elif a.type == onnx.AttributeProto.INT:
                a.i = int(rng.choice(INTS))
            elif a.type == onnx.AttributeProto.FLOAT:
                a.f = float(rng.choice([0.0, -1.0, 1e30, float("nan")]))
    elif kind == 2 and g.initializer:  # initializer dims, data or type
        t = g.initializer[int(rng.integers(len(g.initializer)))]
        r = rng.random()
        if r < 0.4 and t.dims:
            t.dims[int(rng.integers(len(t.dims)))] = int(rng.choice(DIMS))
        elif r < 0.7 and t.raw_data:
            t.raw_data = t.raw_data[: int(rng.integers(len(t.raw_data)))]
        else:
            t.data_type = int(rng.choice([1, 2, 3, 6, 7, 8, 10, 16]))
    elif kind == 3 and g.node:  # a node input
        node = g.node[int(rng.integers(len(g.node)))]
        if node.input:
            names = [o for n in g.node for o in n.output] + [i.name for i in g.input] + ["nowhere", ""]
            node.input[int(rng.integers(len(node.input)))] = str(rng.choice(names))
    elif kind == 4 and g.node:  # an op type
        g.node[int(rng.integers(len(g.node)))].op_type = str(rng.choice(OPS))
    elif kind == 5:  # the opset
        m.opset_import[0].version = int(rng.choice([7, 12, 13, 18, 21, 22, 99]))
    elif kind == 6 and g.initializer:  # external data
        t = g.initializer[int(rng.integers(len(g.initializer)))]
        t.ClearField("raw_data")
        t.data_location = onnx.TensorProto.EXTERNAL
        e = t.external_data.add()
        e.key, e.value = "location", str(rng.choice(["../x", "/etc/passwd", "a\0b", "", "missing.bin", "."]))
    elif kind == 7 and len(g.node) > 1:  # remove or repeat a node
        k = int(rng.integers(len(g.node)))
        if rng.random() < 0.5:
            del g.node[k]
        else:
            g.node.append(g.node[k])
    elif kind == 8 and g.node:  # an output renamed onto an input: cycles, double definitions
        node = g.node[int(rng.integers(len(g.node)))]
        if node.output and node.input and node.input[0]:
            node.output[0] = node.input[0]


def mutant(seed_models: list[bytes], i: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed + i)
    data = seed_models[i % len(seed_models)]
    if rng.random() < 0.15:  # raw bytes
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 6))):
            b[int(rng.integers(len(b)))] = int(rng.integers(256))
        return bytes(b)
    m = onnx.load_from_string(data)
    for _ in range(int(rng.integers(1, 4))):
        _mutate_once(m, rng)
    return m.SerializeToString()


def check(data: bytes, compile_c: bool = False) -> str:
    """'ok', 'refused' (a McuqError) or raises what was not a McuqError."""
    import mcuq
    from mcuq.frontend.onnx import load
    from mcuq.layout import to_ir, user_shape
    from mcuq.reference.graph import run_graph

    try:
        g = load(data)
        if any(t.dtype.name != "FLOAT32" for t in (g.tensors[n] for n in g.inputs)):
            model = g  # a QDQ model: already integer
        else:
            rng = np.random.default_rng(1)
            calib = [[rng.normal(size=user_shape(g, n)).astype(np.float32) for n in g.inputs] for _ in range(3)]
            run_graph(g, [to_ir(g, n, x) for n, x in zip(g.inputs, calib[0])])
            model = mcuq.quantize(g, calib)
        if compile_c:
            cm = mcuq.compile_model(model)
            cm.run([np.zeros(user_shape(cm.graph, t.name), t.dtype.np) for t in cm.input_tensors])
        return "ok"
    except McuqError as e:
        assert "\n" not in str(e) and "(internal error)" not in str(e), str(e)
        return "refused"


def run(n: int, seed: int, compile_c: bool) -> int:
    models = seeds()
    counts: dict[str, int] = {}
    failed = 0
    for i in range(n):
        data = mutant(models, i, seed)
        try:
            outcome = check(data, compile_c)
        except Exception:
            outcome = "FAILED"
            failed += 1
            print(f"mutant {i} (seed {seed + i}): {traceback.format_exc().strip().splitlines()[-1]}", file=sys.stderr)
        counts[outcome] = counts.get(outcome, 0) + 1
    print(counts)
    return 1 if failed else 0


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true")
    a = p.parse_args()
    sys.exit(run(a.n, a.seed, a.compile))
