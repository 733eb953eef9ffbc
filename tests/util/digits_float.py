"""A small float CNN trained on scikit-learn's digits in numpy, for the post-training quantization tests.

It reuses examples/train_digits.py (its data split, im2col/col2im and Adam) with a network that has every layer
kind the issue names: a 3x3 conv, a depthwise conv, a 1x1 conv, pooling and a fully-connected layer:

    input 1x8x8x1 (pixel / 16)
    CONV_2D 3x3x8, SAME, ReLU            -> 8x8x8
    DEPTHWISE_CONV_2D 3x3, SAME, ReLU    -> 8x8x8
    CONV_2D 1x1x16, ReLU                 -> 8x8x16
    AVERAGE_POOL_2D 2x2, stride 2        -> 4x4x16
    RESHAPE                              -> 256
    FULLY_CONNECTED 10, SOFTMAX          -> 10

Training is seeded and runs in a few seconds; ``float_graph`` exports the trained parameters as a float32
``ir.Graph`` (write it with ``mcuq.frontend.tflite_writer.write``).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from mcuq import ir

from .float_models import Builder

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 20
SEED = 0

Params = dict[str, np.ndarray]


@functools.cache
def trainer() -> ModuleType:
    """examples/train_digits.py as a module (examples/ is not a package), loaded once."""
    spec = importlib.util.spec_from_file_location("mcuq_example_train_digits", ROOT / "examples" / "train_digits.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def init_params(rng: np.random.Generator) -> Params:
    def he(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)

    return {
        "w1": he((8, 3, 3, 1), 9), "b1": np.zeros(8),  # OHWI
        "w2": he((1, 3, 3, 8), 9), "b2": np.zeros(8),  # 1HWC
        "w3": he((16, 1, 1, 8), 8), "b3": np.zeros(16),  # OHWI, 1x1
        "w4": he((10, 256), 256), "b4": np.zeros(10),  # [out, in]
    }  # fmt: skip


def forward(td: ModuleType, p: Params, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every activation, and the im2col patches that backward needs."""
    b = x.shape[0]
    c1 = td.im2col(x, 3, 1)
    h1 = np.maximum(c1.reshape(b * 64, 9) @ p["w1"].reshape(8, 9).T + p["b1"], 0).reshape(b, 8, 8, 8)
    c2 = td.im2col(h1, 3, 1)
    h2 = np.maximum(np.einsum("bhwijc,ijc->bhwc", c2, p["w2"][0]) + p["b2"], 0)
    h3 = np.maximum(h2.reshape(b * 64, 8) @ p["w3"].reshape(16, 8).T + p["b3"], 0).reshape(b, 8, 8, 16)
    flat = h3.reshape(b, 4, 2, 4, 2, 16).mean(axis=(2, 4)).reshape(b, 256)
    logits = flat @ p["w4"].T + p["b4"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return dict(c1=c1, h1=h1, c2=c2, h2=h2, h3=h3, flat=flat, logits=logits, probs=e / e.sum(axis=1, keepdims=True))


def backward(td: ModuleType, p: Params, f: dict[str, np.ndarray], y: np.ndarray) -> Params:
    """Gradients of the mean cross-entropy."""
    b = y.shape[0]
    g: Params = {}
    dlogits = f["probs"].copy()
    dlogits[np.arange(b), y] -= 1.0
    dlogits /= b
    g["w4"], g["b4"] = dlogits.T @ f["flat"], dlogits.sum(axis=0)
    dpool = (dlogits @ p["w4"]).reshape(b, 4, 1, 4, 1, 16)
    dh3 = np.broadcast_to(dpool / 4.0, (b, 4, 2, 4, 2, 16)).reshape(b, 8, 8, 16)
    dz3 = (dh3 * (f["h3"] > 0)).reshape(b * 64, 16)
    g["w3"], g["b3"] = (dz3.T @ f["h2"].reshape(b * 64, 8)).reshape(16, 1, 1, 8), dz3.sum(axis=0)
    dz2 = (dz3 @ p["w3"].reshape(16, 8)).reshape(b, 8, 8, 8) * (f["h2"] > 0)
    g["w2"], g["b2"] = np.einsum("bhwc,bhwijc->ijc", dz2, f["c2"])[None], dz2.sum(axis=(0, 1, 2))
    dh1 = td.col2im(np.einsum("bhwc,ijc->bhwijc", dz2, p["w2"][0]), f["h1"].shape, 1)
    dz1 = (dh1 * (f["h1"] > 0)).reshape(b * 64, 8)
    g["w1"], g["b1"] = (dz1.T @ f["c1"].reshape(b * 64, 9)).reshape(8, 3, 3, 1), dz1.sum(axis=0)
    return g


def loss(td: ModuleType, p: Params, x: np.ndarray, y: np.ndarray) -> float:
    probs = forward(td, p, x)["probs"]
    return float(-np.mean(np.log(probs[np.arange(len(y)), y])))


@dataclass(frozen=True)
class TrainedDigits:
    params: Params
    x_train: np.ndarray  # [N, 8, 8, 1] float in [0, 1]
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def numpy_accuracy(self) -> float:
        """Test accuracy of the float network as trained (the numpy forward pass, float64)."""
        return float(np.mean(np.argmax(forward(trainer(), self.params, self.x_test)["logits"], axis=1) == self.y_test))


def train(epochs: int = EPOCHS) -> TrainedDigits:
    """Train with examples/train_digits.py's split and Adam (same seed, fewer epochs: a few seconds)."""
    td = trainer()
    x_tr, y_tr, x_te, y_te = td.load_data()
    rng = np.random.default_rng(SEED)
    p = td.adam(init_params(rng), lambda p, xb, yb: backward(td, p, forward(td, p, xb), yb), x_tr, y_tr, rng, epochs)
    return TrainedDigits(p, x_tr, y_tr, x_te, y_te)


def float_graph(p: Params) -> ir.Graph:
    """The trained network as a float32 graph with batch 1 (weights in mcuq's layouts: OHWI, 1HWC, [out, in])."""
    relu = ir.Activation.RELU
    b = Builder("digits_float", SEED)
    h = b.conv(b.input((1, 8, 8, 1), "input"), 8, w=p["w1"], b=p["b1"], act=relu)
    h = b.dwconv(h, w=p["w2"], b=p["b2"], act=relu)
    h = b.conv(h, 16, k=1, w=p["w3"], b=p["b3"], act=relu)
    h = b.reshape(b.pool(ir.OpKind.AVG_POOL2D, h), (1, 256))
    return b.graph(b.softmax(b.fc(h, 10, w=p["w4"], b=p["b4"])))
