"""The other quantizers of `make bench-ptq`: TensorFlow's TFLite converter and Google's AI Edge Quantizer.

Runs only inside the benchmark's own environment (build/bench-ptq-venv, made by benchmarks/ptq.py): TensorFlow never
enters mcuq's .venv. It writes .tflite files and measures nothing; benchmarks/ptq.py runs every int8 model in one
interpreter (tflite-runtime 2.14 with reference kernels), so the three quantizers are judged alike.

    python benchmarks/ptq_ref.py WORK_DIR

WORK_DIR holds data.npz (benchmarks/ptq_data.py), hello_float.tflite (a copy of TFLM's hello_world_float.tflite)
and, for the two fully connected stacks that exist only as float .tflite files, {ad,hello}_fc.npz (weights
[out, in], biases, fused activations, read by mcuq's frontend). Writes:
  digits_float.tflite           the digits CNN trained here in Keras (fixed seeds), converted to float TFLite
  digits2_float.tflite          a second digits CNN (two branches, ReLU6, hard-swish, concatenation, max pool,
                                global average pool), trained and converted the same way
  cancer_float.tflite           an MLP on the breast cancer set (tanh and logistic hidden layers), the same way
  {ad,hello}_float_tf.tflite    the stacks rebuilt in Keras and converted to float TFLite (builtin_code and a
                                SignatureDef, which AI Edge Quantizer needs; ad01_fp32.tflite has neither)
  {m}_tfconv.tflite             TFLite converter, full int8 (int8 input and output), representative_dataset = the
                                calibration samples in order
  {m}_aieq.tflite               AI Edge Quantizer, recipe static_wi8_ai8 as shipped (moving-average ranges), on
                                the float models made here, ad_float_tf and the shipped hello_world_float
  {m}_aieq_minmax.tflite        the same recipe with AI Edge Quantizer's min_max_update ranges (plain min/max)
  versions.json                 the versions of tensorflow, ai-edge-quantizer and keras
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ptq_data  # noqa: E402

SEED = ptq_data.SEED
EPOCHS = 40
CANCER_EPOCHS = 60
BATCH = 32
SIGNATURE = "serving_default"


def _tf():
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def digits_net(batch: int | None):
    """The digits CNN: 3x3 conv, depthwise 3x3 conv, 1x1 conv (all ReLU), 2x2 average pool, dense,
    softmax: the network of tests/util/digits_float.py (helper of the PTQ tests), trained here in Keras."""
    import keras

    return keras.Sequential(
        [
            keras.Input(batch_shape=(batch, 8, 8, 1)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.DepthwiseConv2D(3, padding="same", activation="relu"),
            keras.layers.Conv2D(16, 1, activation="relu"),
            keras.layers.AveragePooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
            keras.layers.Softmax(),
        ]
    )


def digits2_net(batch: int | None):
    """A digits CNN in another style, for ops the first lacks: a 3x3 and a 5x5 convolution side by side (the second
    with hard-swish, which the converter writes as HARD_SWISH), concatenated, a ReLU6 after the concatenation (a
    RELU6 op of its own), 2x2 max pool, 3x3 convolution with ReLU6 (fused), global average pool (MEAN), dense,
    softmax."""
    import keras

    x = keras.Input(batch_shape=(batch, 8, 8, 1))
    a = keras.layers.Conv2D(8, 3, padding="same")(x)
    b = keras.layers.Conv2D(8, 5, padding="same")(x)
    b = keras.layers.Activation("hard_swish")(b)
    y = keras.layers.Concatenate()([a, b])
    y = keras.layers.ReLU(max_value=6.0)(y)
    y = keras.layers.MaxPooling2D(2)(y)
    y = keras.layers.Conv2D(24, 3, padding="same")(y)
    y = keras.layers.ReLU(max_value=6.0)(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    y = keras.layers.Dense(10)(y)
    return keras.Model(x, keras.layers.Softmax()(y))


def cancer_net(batch: int | None):
    """The tabular model: 30 standardised features -> dense 16 tanh -> dense 8 logistic -> dense 2 -> softmax."""
    import keras

    return keras.Sequential(
        [
            keras.Input(batch_shape=(batch, 30)),
            keras.layers.Dense(16, activation="tanh"),
            keras.layers.Dense(8, activation="sigmoid"),
            keras.layers.Dense(2),
            keras.layers.Softmax(),
        ]
    )


def trained(net: Callable, x_train: np.ndarray, y_train: np.ndarray, epochs: int):
    """``net`` trained with fixed seeds and TensorFlow's deterministic ops (a rerun gives the same weights), returned
    at batch 1: the converters then write static shapes, which mcuq and TFLM want. ``x_train`` has the samples'
    leading batch-1 axis (ptq_data's layout), which Keras's batches replace."""
    import keras

    tf = _tf()
    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    model = net(None)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(x_train[:, 0], y_train, batch_size=BATCH, epochs=epochs, shuffle=True, verbose=0)
    one = net(1)
    one.set_weights(model.get_weights())
    return one


def fc_keras(npz: Path):
    """A Keras model (batch 1) of dense layers with the weights of a float .tflite FULLY_CONNECTED stack
    (``{name}_fc.npz``: w0, b0, w1, b1, ... and the fused activations by layer; TFLite's [out, in] weights become
    Keras's [in, out] kernels)."""
    import keras

    with np.load(npz, allow_pickle=False) as z:
        layers = [(z[f"w{i}"], z[f"b{i}"], str(a)) for i, a in enumerate(z["activations"])]
    acts = {"RELU": "relu", "NONE": None}
    model = keras.Sequential([keras.Input(batch_shape=(1, layers[0][0].shape[1]))])
    for w, b, act in layers:
        dense = keras.layers.Dense(w.shape[0], activation=acts[act])
        model.add(dense)
        dense.set_weights([np.ascontiguousarray(w.T), b])
    return model


def converter(model):
    """TFLite's converter for a Keras model; its output has a serving_default SignatureDef."""
    return _tf().lite.TFLiteConverter.from_keras_model(model)


def float_tflite(model) -> bytes:
    return converter(model).convert()


def tfconv_int8(model, calib: np.ndarray) -> bytes:
    """TFLite converter full-integer quantization: int8 everywhere, int8 input and output, its default (per-channel)
    weights, calibrated on ``calib`` (samples with the input's exact shape) in order."""
    tf = _tf()
    conv = converter(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([s] for s in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def aieq_int8(float_model: bytes, calib: np.ndarray, minmax: bool) -> bytes:
    """AI Edge Quantizer's static_wi8_ai8 recipe (int8 activations, per-channel int8 weights). Its calibrator keeps a
    moving average of each tensor's min and max over the samples; with ``minmax`` it is given the library's own
    min_max_update instead, so the ranges are the plain minimum and maximum."""
    from ai_edge_quantizer import calibrator, quantizer, recipe, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    tf = _tf()
    runner = tf.lite.Interpreter(model_content=float_model).get_signature_runner(SIGNATURE)
    (name,) = runner.get_input_details()
    data = {SIGNATURE: [{name: s} for s in calib]}
    q = quantizer.Quantizer(float_model, recipe.static_wi8_ai8())
    if minmax:
        rm = recipe_manager.RecipeManager()
        rm.load_quantization_recipe(recipe.static_wi8_ai8())
        cal = calibrator.Calibrator(float_model, qsv_update_func=qsv_utils.min_max_update)
        cal.calibrate(data, rm)
        qsvs = cal.get_model_qsvs()
    else:
        qsvs = q.calibrate(data)
    return bytes(q.quantize(qsvs, enable_progress_report=False).quantized_model)


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("tensorflow-cpu", "ai-edge-quantizer", "keras")}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    work = Path(argv[0])
    data = ptq_data.load(work / "data.npz")

    def put(name: str, blob: bytes) -> None:
        (work / name).write_bytes(blob)
        print(f"ptq_ref: wrote {name} ({len(blob):,} bytes)", flush=True)

    digits = (data["digits_x_train"], data["digits_y_train"], EPOCHS)
    # (Keras model, calibration, name of the float .tflite made here, the float .tflite that AI Edge
    # Quantizer reads: the one made here unless the shipped one is readable, as hello_world_float.tflite is)
    models = {
        "digits": (trained(digits_net, *digits), data["digits_calib"], "digits_float.tflite", None),
        "digits2": (trained(digits2_net, *digits), data["digits_calib"], "digits2_float.tflite", None),
        "cancer": (
            trained(cancer_net, data["cancer_x_train"], data["cancer_y_train"], CANCER_EPOCHS),
            data["cancer_calib"],
            "cancer_float.tflite",
            None,
        ),
        "ad": (fc_keras(work / "ad_fc.npz"), data["ad_calib"], "ad_float_tf.tflite", None),
        "hello": (fc_keras(work / "hello_fc.npz"), data["hello_calib"], "hello_float_tf.tflite", "hello_float"),
    }
    for name, (model, calib, float_name, aieq_source) in models.items():
        flt = float_tflite(model)
        put(float_name, flt)
        put(f"{name}_tfconv.tflite", tfconv_int8(model, calib))
        src = (work / f"{aieq_source}.tflite").read_bytes() if aieq_source else flt
        put(f"{name}_aieq.tflite", aieq_int8(src, calib, minmax=False))
        put(f"{name}_aieq_minmax.tflite", aieq_int8(src, calib, minmax=True))
    (work / "versions.json").write_text(json.dumps(versions(), indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
