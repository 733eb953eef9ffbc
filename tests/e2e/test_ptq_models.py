"""Post-training quantization of the float models in ../shared/models: each quantizes, compiles, and the generated C
equals the oracle (tflite-runtime 2.14, BUILTIN_REF) on the quantized model. The output SQNR against float, through
the generated C on held-out inputs, must beat the int8 model shipped beside the float one (made by TFLite's
converter), and for AD on its real test windows AI Edge Quantizer's 36.1 dB as well (issue 9; it aims above 41.8).

Calibration data: VWW and ResNet have no real data here, so they calibrate on a few seeded synthetic images in
their input range (VWW: [0, 1], ResNet: [0, 255]): enough for the bit-exact check, not for an accuracy claim.
hello_world calibrates on x uniform in [0, 2 pi]; AD on the first 100 real windows of its test data.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import mcuq
from mcuq.frontend import load
from mcuq.quant.ptq import QuantizedModel, quantize
from mcuq.reference.graph import prepare
from tests.conftest import models_dir
from tests.e2e.test_ptq_ops import check_int8_spec, dequantize, sqnr_db, to_int8
from tests.util import oracle
from tests.util.compare import assert_bit_exact

pytestmark = pytest.mark.models

AD_DATA = "mlperf_tiny/testdata/ad_normal_id_01_00000000_hist_librosa.bin"
AD_CALIB, AD_TEST = slice(0, 100), slice(100, 196)
AI_EDGE_QUANTIZER_DB = 36.1  # its static int8 recipe on the same windows (issue 9)


def smooth_images(rng: np.random.Generator, n: int, shape: tuple[int, ...], high: float) -> np.ndarray:
    """Synthetic images in [0, high]: coarse random blobs (4x4 cells, nearest upsampling) plus pixel noise."""
    _, h, w, c = shape
    coarse = rng.uniform(0, 1, size=(n, 1, h // 4 + 1, w // 4 + 1, c)).repeat(4, axis=2).repeat(4, axis=3)
    x = 0.8 * coarse[:, :, :h, :w, :] + 0.2 * rng.uniform(0, 1, size=(n, *shape))
    return (high * x).astype(np.float32)


def ad_windows() -> np.ndarray:
    """The 196 windows of 5 consecutive frames (stride 1) of the AD test data: (196, 1, 640) float32."""
    frames = np.fromfile(models_dir() / AD_DATA, "<f4").reshape(200, 128)
    return np.stack([frames[i : i + 5].reshape(1, 640) for i in range(196)])


def model_data(key: str) -> tuple[str, np.ndarray, np.ndarray]:
    """(model path under the shared folder, calibration samples, held-out samples), each (N, *input shape)."""
    rng = np.random.default_rng(20261127)
    if key == "vww":
        return "mlperf_tiny/vww_96_float.tflite", *np.split(smooth_images(rng, 12, (1, 96, 96, 3), 1.0), [8])
    if key == "resnet":
        return "mlperf_tiny/pretrainedResnet.tflite", *np.split(smooth_images(rng, 12, (1, 32, 32, 3), 255.0), [8])
    if key == "hello_world":
        x = rng.uniform(0, 2 * math.pi, size=(80, 1, 1)).astype(np.float32)
        return "tflm/hello_world_float.tflite", x[:64], x[64:]
    assert key == "ad01"
    w = ad_windows()
    return "mlperf_tiny/ad01_fp32.tflite", w[AD_CALIB], w[AD_TEST]


@functools.cache
def quantized(key: str) -> tuple[QuantizedModel, np.ndarray]:
    rel, calib, test = model_data(key)
    return quantize(models_dir() / rel, calib), test


@pytest.mark.oracle
@pytest.mark.parametrize("key", ["vww", "resnet", "ad01", "hello_world"])
def test_float_model_quantizes_compiles_and_is_bit_exact(shared_models, key):
    oracle.require()
    qm, test = quantized(key)
    check_int8_spec(qm, per_channel_fc=True)
    model = qm.tflite_bytes()
    cm = mcuq.compile_model(model, sanitize=True)
    assert_bit_exact(cm, model, [to_int8(test, cm.input_tensors[0])])


def output_sqnr(key: str, cm: mcuq.CompiledModel) -> float:
    """End-to-end SQNR (dB, over all held-out samples at once) of the C's dequantized output (``cm``: an int8 model
    of the float model ``key``) against the float model's output (mcuq's float executor)."""
    fg = load(models_dir() / model_data(key)[0])
    test = quantized(key)[1]
    ex = prepare(fg)
    want = np.stack([ex.run([x], keep="outputs")[fg.outputs[0]] for x in test])
    got = cm.run([to_int8(test, cm.input_tensors[0])])[0]
    return sqnr_db(want, dequantize(got, cm.output_tensors[0]).reshape(want.shape))


@pytest.mark.parametrize(
    ("key", "shipped", "bound"),
    [
        ("ad01", "mlperf_tiny/ad01_int8.tflite", AI_EDGE_QUANTIZER_DB),  # the shipped model: 31.70 dB
        ("hello_world", "tflm/hello_world_int8.tflite", 30.0),  # the shipped model: 23.3 dB
    ],
)
def test_output_sqnr_beats_the_shipped_int8_model(shared_models, key, shipped, bound):
    """Measured the same way (the generated C, held-out inputs quantized at the edge): mcuq's int8 model against
    the one TFLite's converter made, and against the issue's bound (AD: AI Edge Quantizer's 36.1 dB)."""
    ours = output_sqnr(key, mcuq.compile_model(quantized(key)[0].tflite_bytes()))
    theirs = output_sqnr(key, mcuq.compile_model(shared_models / shipped))
    print(f"{key}: int8 C output vs float on held-out inputs: mcuq {ours:.2f} dB, shipped int8 {theirs:.2f} dB")
    assert ours > bound
    assert ours > theirs
