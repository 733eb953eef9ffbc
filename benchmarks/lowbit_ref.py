"""AI Edge Quantizer's int4-weight (and 16x8) recipes for `make bench-lowbit`, run and measured in TensorFlow 2.21.

Runs only inside build/bench-ptq-venv (made by benchmarks/ptq.py's ensure_ref_env): TensorFlow never enters mcuq's
.venv. tflite-runtime 2.14, the oracle that measures mcuq's models, rejects INT4 filters, so the models written here
are measured by TensorFlow 2.21's own interpreter (``tf.lite.Interpreter``, reference kernels: BUILTIN_REF).

    python benchmarks/lowbit_ref.py PTQ_WORK OUT_DIR

PTQ_WORK is build/bench-ptq (data.npz and the float models that benchmarks/ptq_ref.py made: digits_float,
digits2_float, cancer_float, ad_float_tf and hello_float, the ones AI Edge Quantizer reads there too). Writes into
OUT_DIR, for each model KEY and recipe R of RECIPES:
  aieq_{KEY}_{R}.tflite   the quantized model
  aieq_outputs.npz        "{KEY}__{R}": the model's outputs on KEY's test set, dequantized to float64
  aieq_status.json        per model and recipe: file bytes, or the one-line error that stopped it; the interpreter
                          and the versions
Calibration: the same samples as bench-ptq, in order, with the library's default calibrator (moving-average
ranges) or, for the "_minmax" recipes, its min_max_update ranges. Inputs of integer-input models are quantized with the model's own parameters (round half away from zero).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ptq_data  # noqa: E402

SIGNATURE = "serving_default"
# model key -> the float .tflite (in PTQ_WORK) that AI Edge Quantizer reads: the one benchmarks/ptq_ref.py gives it
SOURCES = {
    "digits": "digits_float",
    "digits2": "digits2_float",
    "cancer": "cancer_float",
    "ad": "ad_float_tf",
    "hello": "hello_float",
}
DATA = {"digits2": "digits"}  # model key -> the prefix of its samples in data.npz (the key itself when absent)
# recipe key -> (description, needs calibration). A "_minmax" key is the recipe before it with the library's
# min_max_update ranges instead of its default moving average (as bench-ptq's second AI Edge Quantizer row).
RECIPES = {
    "static_wi4_ai8": ("static, int4 weights on CONV_2D and FULLY_CONNECTED, int8 elsewhere, int8 activations", True),
    "static_wi4_ai8_minmax": ("static_wi4_ai8 with min_max_update ranges", True),
    "dynamic_wi4_afp32": ("recipe.dynamic_wi4_afp32: int4 weights, float activations quantized at run time", False),
    "weight_only_wi4_afp32": ("recipe.weight_only_wi4_afp32: int4 weights dequantized, float compute", False),
    "static_wi8_ai16": ("recipe.static_wi8_ai16: int8 weights, int16 activations", True),
    "static_wi8_ai16_minmax": ("static_wi8_ai16 with min_max_update ranges", True),
    "static_wi8_ai8": ("recipe.static_wi8_ai8: int8 weights, int8 activations", True),
    "static_wi8_ai8_minmax": ("static_wi8_ai8 with min_max_update ranges", True),
}


def _tf():
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def recipe_of(key: str):
    """The recipe ``key`` of RECIPES. static_wi4_ai8 is the library's policy of that name (int4 weights only for
    CONV_2D and FULLY_CONNECTED): static_wi8_ai8 for every op, then (later rules win) 4-bit weights for those two."""
    from ai_edge_quantizer import qtyping, recipe, recipe_manager

    if key == "static_wi4_ai8":
        rm = recipe_manager.RecipeManager()
        rm.add_static_config(".*", qtyping.TFLOperationName.ALL_SUPPORTED, activation_num_bits=8, weight_num_bits=8)
        for op in (qtyping.TFLOperationName.CONV_2D, qtyping.TFLOperationName.FULLY_CONNECTED):
            rm.add_static_config(".*", op, activation_num_bits=8, weight_num_bits=4)
        return rm.get_quantization_recipe()
    return getattr(recipe, key)()


def quantize(float_model: bytes, key: str, calib: np.ndarray) -> bytes:
    """``float_model`` quantized with recipe ``key``, calibrated (when the recipe needs it) on ``calib`` in order."""
    from ai_edge_quantizer import calibrator, quantizer, recipe_manager
    from ai_edge_quantizer.utils import qsv_utils

    minmax = key.endswith("_minmax")
    rcp = recipe_of(key.removesuffix("_minmax"))
    q = quantizer.Quantizer(float_model, rcp)
    if not RECIPES[key][1]:
        return bytes(q.quantize(enable_progress_report=False).quantized_model)
    runner = _tf().lite.Interpreter(model_content=float_model).get_signature_runner(SIGNATURE)
    (name,) = runner.get_input_details()
    data = {SIGNATURE: [{name: s} for s in calib]}
    if minmax:
        rm = recipe_manager.RecipeManager()
        rm.load_quantization_recipe(rcp)
        cal = calibrator.Calibrator(float_model, qsv_update_func=qsv_utils.min_max_update)
        cal.calibrate(data, rm)
        qsvs = cal.get_model_qsvs()
    else:
        qsvs = q.calibrate(data)
    return bytes(q.quantize(qsvs, enable_progress_report=False).quantized_model)


def run(model: bytes, xs: np.ndarray) -> np.ndarray:
    """The outputs of ``model`` on the float samples ``xs`` under TensorFlow's interpreter with reference kernels,
    dequantized (float64), one per sample."""
    tf = _tf()
    it = tf.lite.Interpreter(
        model_content=model, experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF
    )
    it.allocate_tensors()
    (din,), dout = it.get_input_details(), it.get_output_details()[0]
    outs = []
    for x in xs:
        if din["dtype"] != np.float32:
            scale, zp = din["quantization"]
            v = x.astype(np.float32) / np.float32(scale)
            info = np.iinfo(din["dtype"])
            x = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + zp, info.min, info.max).astype(din["dtype"])
        it.set_tensor(din["index"], x)
        it.invoke()
        y = it.get_tensor(dout["index"]).astype(np.float64)
        if dout["dtype"] != np.float32:
            scale, zp = dout["quantization"]
            y = (y - zp) * scale
        outs.append(y)
    return np.stack(outs)


def one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:200]}"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    work, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    data = ptq_data.load(work / "data.npz")
    outputs: dict[str, np.ndarray] = {}
    status: dict[str, dict[str, dict[str, object]]] = {}
    for key, src in SOURCES.items():
        flt = (work / f"{src}.tflite").read_bytes()
        d = DATA.get(key, key)
        status[key] = {}
        for r in RECIPES:
            try:
                blob = quantize(flt, r, data[f"{d}_calib"])
                (out / f"aieq_{key}_{r}.tflite").write_bytes(blob)
                outputs[f"{key}__{r}"] = run(blob, data[f"{d}_test"])
                status[key][r] = {"bytes": len(blob), "error": None}
                print(f"lowbit_ref: {key} {r}: {len(blob):,} bytes", flush=True)
            except Exception as e:  # noqa: BLE001 - a recipe that fails on a model is a result, said in one line
                status[key][r] = {"bytes": None, "error": one_line(e)}
                print(f"lowbit_ref: {key} {r}: failed: {one_line(e)}", flush=True)
    from importlib.metadata import version

    meta = {
        "interpreter": f"tensorflow-cpu {version('tensorflow-cpu')} tf.lite.Interpreter, BUILTIN_REF",
        "versions": {p: version(p) for p in ("tensorflow-cpu", "ai-edge-quantizer")},
        "recipes": {r: d for r, (d, _) in RECIPES.items()},
        "models": status,
    }
    ptq_data.save(out / "aieq_outputs.npz", outputs)
    (out / "aieq_status.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
