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
    return [
        rng.integers(-128, 128, size=(n, *cm.graph.tensors[t].shape), dtype=np.int8) for t in cm.graph.inputs
    ]


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
