"""Compare mcuq's generated C with the oracle; on a mismatch, name the first layer that differs."""

from __future__ import annotations

import numpy as np

from . import oracle

# tflite-runtime 2.14 runs these ops in place when an input has no other consumer: the oracle's copy of such an
# input is overwritten by the op's output even with experimental_preserve_all_tensors, so it cannot be compared.
_INPLACE = {"ADD", "SUB", "MUL", "QUANTIZE", "LOGISTIC", "TANH", "RELU", "RELU6", "HARD_SWISH"}


def _clobbered_by_oracle(cm, name: str) -> bool:
    users = cm.graph.consumers().get(name, [])
    return name not in cm.graph.outputs and len(users) == 1 and users[0].type_name in _INPLACE


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
                f"{int((diff > 0).sum())} of {diff.size} values, max |diff| {int(diff.max())}"
            )
    return ""


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
