"""Compare mcuq's generated C with the oracle; on a mismatch, name the first layer that differs and say whether
mcuq's numpy mirror (``mcuq.reference.run_graph``) sides with the C or with the oracle there."""

from __future__ import annotations

import numpy as np

from mcuq.reference import run_graph

from . import oracle


def _clobbered_by_oracle(cm, name: str) -> bool:
    """tflite-runtime 2.14 runs an element-wise op in place when its input has no other consumer: the oracle's copy
    of that input is overwritten by the op's output even with experimental_preserve_all_tensors, so it cannot be
    compared. These are the ops whose mcuq kernel may run in place too (``Kernel.in_place`` in mcuq/kernels: ADD,
    SUB, MUL, QUANTIZE, SIGMOID, TANH, RELU, RELU6, HARD_SWISH, and COPY, whose input is always a caller buffer)."""
    users = cm.graph.consumers().get(name, [])
    if name in cm.graph.outputs or len(users) != 1:
        return False
    layer = next(la for la in cm.layers if la.op is users[0])
    return layer.kernel is not None and layer.kernel.in_place


def first_differing_layer(cm, model, inputs: list[np.ndarray]) -> str:
    """Run one input set through the C (every layer) and the oracle (every tensor); describe the first layer
    whose output differs, or return "" when all layers agree."""
    ours = cm.run_layers(inputs)
    theirs = oracle.run(model, [inputs], all_tensors=True)[0]["tensors"]
    for i, layer in enumerate(cm.layers):
        name = layer.outputs[0]
        if _clobbered_by_oracle(cm, name):
            continue
        idx = cm.graph.meta.get(f"tflite_index:{name}")
        if idx is None or int(idx) not in theirs:
            continue
        want = theirs[int(idx)].reshape(ours[name].shape)
        if not np.array_equal(ours[name], want):
            diff = np.abs(ours[name].astype(np.int32) - want.astype(np.int32))
            return (
                f"layer {i} ({layer.op.type_name} '{layer.op.name}') differs first: "
                f"{int((diff > 0).sum())} of {diff.size} values, max |diff| {int(diff.max())}; "
                + _mirror_verdict(cm, inputs, name, ours[name], want)
            )
    return ""


def _mirror_verdict(cm, inputs: list[np.ndarray], name: str, c_out: np.ndarray, oracle_out: np.ndarray) -> str:
    """Which side mcuq's numpy mirror takes at the differing tensor: it tells a C bug from a lowering bug."""
    mirror = run_graph(cm.graph, inputs)[name].reshape(c_out.shape)
    if np.array_equal(mirror, c_out):
        return "the numpy mirror agrees with the C (the lowering or the mirror is wrong)"
    if np.array_equal(mirror, oracle_out):
        return "the numpy mirror agrees with the oracle (the C kernel is wrong)"
    return "the numpy mirror differs from both"


def assert_bit_exact(cm, model, batch_inputs: list[np.ndarray]) -> None:
    """``batch_inputs``: one array per model input with a leading batch axis."""
    n = batch_inputs[0].shape[0]
    want = oracle.run(model, [[x[i] for x in batch_inputs] for i in range(n)])
    got = cm.run(batch_inputs)
    for k in range(len(got)):
        w = np.stack([w_["outputs"][k] for w_ in want])
        if not np.array_equal(got[k], w.reshape(got[k].shape)):
            bad = next(i for i in range(n) if not np.array_equal(got[k][i], w[i].reshape(got[k][i].shape)))
            where = first_differing_layer(cm, model, [x[bad] for x in batch_inputs])
            raise AssertionError(f"output {k} differs from the oracle on input {bad}; {where or 'no layer differs?'}")
