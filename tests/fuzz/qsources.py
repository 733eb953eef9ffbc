"""The float models that the quantizer fuzzer (``make fuzz-quant``) starts from, each with real calibration data.

* ``digits``: the float digits CNN of tests/util/digits_float.py (3x3 conv, depthwise, 1x1 conv, average pool,
  reshape, fully connected, softmax) with its seeded He-initialised weights (no training: the fuzzer needs the
  structure, not the accuracy), calibrated on 16 of scikit-learn's digits;
* ``mix``: two inputs and the rest of the int8 set: a batch-norm left as MUL/ADD by constants, concat, pad, max
  pool, transpose, SUB and MUL of activations, broadcast ADD, logistic, tanh, hard swish, ReLU6, mean, softmax;
* ``hello`` and ``ad``: hello_world_float.tflite and the MLPerf Tiny autoencoder ad01_fp32.tflite from the shared
  models folder, when present (x uniform in [0, 2 pi]; AD's first 16 real windows);
* ``resnet`` and ``vww``: the MLPerf Tiny ResNet-8 and MobileNet (visual wake words) float models, when present,
  with 8 synthetic images (no real data for them here: the fuzzer needs their structure, ADD and 96x96 layers).

``sources()`` builds them once per process; a ``Source`` holds the .tflite bytes and one (N, *input shape)
float32 array per input.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from mcuq import ir
from mcuq.frontend import load
from mcuq.frontend.tflite_writer import write
from tests.conftest import models_dir
from tests.util import digits_float
from tests.util.float_models import Builder

A, K = ir.Activation, ir.OpKind
N_CALIB = 16


@dataclass(frozen=True, eq=False)
class Source:
    name: str
    model: bytes
    calib: tuple[np.ndarray, ...]  # per input, (N, *shape) float32

    def input_shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(a.shape[1:]) for a in self.calib)


def _digits() -> Source:
    g = digits_float.float_graph(digits_float.init_params(np.random.default_rng(digits_float.SEED)))
    x = digits_float.trainer().load_data()[0][:N_CALIB]
    return Source("digits", write(g), (np.ascontiguousarray(x.reshape(N_CALIB, 1, 8, 8, 1), np.float32),))


def mix_graph() -> ir.Graph:
    """Two inputs, x [1, 6, 6, 3] and z [1, 1, 1, 8], through most of the int8 set's ops."""
    b = Builder("mix", 7)
    x, z = b.input((1, 6, 6, 3), "x"), b.input((1, 1, 1, 8), "z")
    y1 = b.conv(x, 4, act=A.RELU)
    y1 = b.binary(K.MUL, y1, b.const("bn/scale", b.rng.uniform(0.5, 1.5, (4,))))
    y1 = b.binary(K.ADD, y1, b.const("bn/shift", b.rng.uniform(-0.3, 0.3, (4,))))
    y2 = b.unary(K.TANH, b.conv(x, 4, k=1))
    c = b.concat((y1, y2), 3)
    t = b.transpose(b.pool(K.MAX_POOL2D, b.pad(c, ((0, 0), (1, 1), (1, 1), (0, 0)))), (0, 2, 1, 3))
    t = b.binary(K.ADD, t, z)
    t = b.binary(K.SUB, t, b.unary(K.SIGMOID, t))
    t = b.unary(K.HARD_SWISH, b.binary(K.MUL, t, b.unary(K.RELU6, b.dwconv(t, act=A.NONE))))
    m = b.mean(t, (1, 2), keep_dims=False)
    return b.graph(b.softmax(b.fc(m, 5)))


def _mix() -> Source:
    rng = np.random.default_rng(3)
    x = rng.uniform(-1.0, 1.0, (N_CALIB, 1, 6, 6, 3)).astype(np.float32)
    z = rng.normal(0.0, 0.5, (N_CALIB, 1, 1, 1, 8)).astype(np.float32)
    return Source("mix", write(mix_graph()), (x, z))


def _hello() -> Source | None:
    p = models_dir() / "tflm" / "hello_world_float.tflite"
    if not p.is_file():
        return None
    x = np.linspace(0.0, 2 * np.pi, N_CALIB, dtype=np.float32).reshape(N_CALIB, 1, 1)
    return Source("hello", p.read_bytes(), (x,))


def _ad() -> Source | None:
    p = models_dir() / "mlperf_tiny" / "ad01_fp32.tflite"
    data = models_dir() / "mlperf_tiny" / "testdata" / "ad_normal_id_01_00000000_hist_librosa.bin"
    if not p.is_file() or not data.is_file():
        return None
    frames = np.fromfile(data, dtype="<f4").reshape(-1, 128)
    x = np.stack([frames[i : i + 5].reshape(640) for i in range(N_CALIB)]).reshape(N_CALIB, 1, 640)
    return Source("ad", p.read_bytes(), (x.astype(np.float32),))


def _image_model(name: str, file: str) -> Source | None:
    """A shared float image model with synthetic calibration images (uniform in [0, 1]; no real data here)."""
    p = models_dir() / "mlperf_tiny" / file
    if not p.is_file():
        return None
    model = p.read_bytes()
    g = load(model)
    shape = g.tensors[g.inputs[0]].shape
    x = np.random.default_rng(5).uniform(0.0, 1.0, (N_CALIB // 2, *shape)).astype(np.float32)
    return Source(name, model, (x,))


@functools.cache
def sources() -> dict[str, Source]:
    """Every available source by name, in a fixed order."""
    found = [_digits(), _mix(), _hello(), _ad(), _image_model("resnet", "pretrainedResnet.tflite"),
             _image_model("vww", "vww_96_float.tflite")]  # fmt: skip
    return {s.name: s for s in found if s is not None}
