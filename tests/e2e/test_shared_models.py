"""Every int8 model in ../shared/models is bit-exact against the oracle (tflite-runtime 2.14, BUILTIN_REF)."""

from __future__ import annotations

import numpy as np
import pytest

import mcuq
from tests.util import oracle
from tests.util.compare import assert_bit_exact

INT8_MODELS = [
    "mlperf_tiny/kws_ref_model.tflite",
    "mlperf_tiny/vww_96_int8.tflite",
    "mlperf_tiny/pretrainedResnet_quant.tflite",
    "mlperf_tiny/ad01_int8.tflite",
    "tflm/hello_world_int8.tflite",
]

pytestmark = [pytest.mark.oracle, pytest.mark.models]


def random_inputs(cm, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, size=(n, *cm.graph.tensors[t].shape), dtype=np.int8) for t in cm.graph.inputs]


@pytest.mark.parametrize("rel", INT8_MODELS, ids=lambda r: r.split("/")[-1].removesuffix(".tflite"))
def test_model_bit_exact_on_random_inputs(shared_models, rel):
    oracle.require()
    path = shared_models / rel
    cm = mcuq.compile_model(path, sanitize=True)
    assert_bit_exact(cm, path, random_inputs(cm, 20, seed=20261127))


def ad_windows(shared_models, cm) -> np.ndarray:
    """All 196 windows of 5 consecutive frames from the AD test data, quantized with the model's input params."""
    raw = np.fromfile(shared_models / "mlperf_tiny/testdata/ad_normal_id_01_00000000_hist_librosa.bin", "<f4")
    frames = raw.reshape(200, 128)
    windows = np.stack([frames[i : i + 5].reshape(-1) for i in range(196)])
    t = cm.graph.tensors[cm.graph.inputs[0]]
    q = np.round(windows / np.float32(t.scale)) + t.zero_point
    return np.clip(q, -128, 127).astype(np.int8).reshape((196, *t.shape))


def test_ad_bit_exact_on_real_windows(shared_models):
    oracle.require()
    path = shared_models / "mlperf_tiny/ad01_int8.tflite"
    cm = mcuq.compile_model(path, sanitize=True)
    x = ad_windows(shared_models, cm)
    assert x.shape[0] == 196
    assert len(np.unique(x.reshape(196, -1), axis=0)) > 150  # real, distinct windows
    assert_bit_exact(cm, path, [x])


def test_mismatch_names_the_first_differing_layer(shared_models):
    """The bisection works: corrupt one layer's output shift and the failure names exactly that layer."""
    import dataclasses

    from mcuq.api import CompiledModel
    from mcuq.codegen.emit import build_model, render

    oracle.require()
    path = shared_models / "tflm/hello_world_int8.tflite"
    good = mcuq.compile_model(path, sanitize=True)
    layers = list(good.layers)
    p = layers[1].params
    params = dataclasses.replace(p, quant=dataclasses.replace(p.quant, shift=p.quant.shift - 1))
    layers[1] = dataclasses.replace(layers[1], params=params)
    m = build_model(good.graph, tuple(layers), good.plan, good.prefix)
    bad = CompiledModel(good.graph, tuple(layers), good.plan, m, render(m), sanitize=True)
    # the layer named, and the numpy mirror (lowered afresh from the graph) sides with the oracle
    with pytest.raises(AssertionError, match=r"layer 1 \(FULLY_CONNECTED.*the numpy mirror agrees with the oracle"):
        assert_bit_exact(bad, path, random_inputs(bad, 5, seed=1))
