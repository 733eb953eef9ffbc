"""The data of `make bench-ptq`: calibration and evaluation sets, made the same way for every quantizer.

numpy only (scikit-learn for digits and cancer), so that both sides of the benchmark import it: `benchmarks/ptq.py` in
mcuq's .venv and `benchmarks/ptq_ref.py` in the TensorFlow environment. `ptq.py` makes the sets once and saves them
with `save`; `ptq_ref.py` reads that file, so both sides see the very same float32 arrays. Every array of samples
has the model input's exact shape after its leading sample axis.

- digits: scikit-learn's 8x8 digits (bundled), the shuffle and split of examples/train_digits.py (seed 0, last 360
  images held out); the training images train the two float CNNs (digits and digits2), the first N_CALIB of them
  calibrate.
- ad: MLPerf Tiny AD01's test clip (200 log-mel frames x 128); an input is 5 consecutive frames flattened, stride
  1, so 196 windows: windows 0-99 calibrate, windows 100-195 evaluate.
- hello_world: x uniform in [0, 2 pi) (seeded), the model's target is sin(x); N_CALIB calibrate, 1000 others
  evaluate.
- cancer: scikit-learn's breast cancer set (bundled; 569 samples, 30 features, 2 classes), shuffled with seed 0, the
  last CANCER_N_TEST held out; features standardised with the training samples' mean and standard deviation; the
  training samples train the float MLP, the first N_CALIB of them calibrate.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

SEED = 0
N_CALIB = 100
DIGITS_N_TEST = 360
AD_FRAMES, AD_MELS, AD_WINDOW = 200, 128, 5
AD_CALIB = range(0, 100)
AD_TEST = range(100, 196)
HELLO_N_TEST = 1000
CANCER_N_TEST = 169
AD_DATA = "mlperf_tiny/testdata/ad_normal_id_01_00000000_hist_librosa.bin"


def digits() -> dict[str, np.ndarray]:
    """Train and test split of scikit-learn's digits as [N, 1, 8, 8, 1] float32 in [0, 1] with int64 labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / np.float32(16.0))[:, None, :, :, None]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(x))
    x, y = x[order], y[order]
    return {
        "digits_x_train": x[:-DIGITS_N_TEST],
        "digits_y_train": y[:-DIGITS_N_TEST],
        "digits_calib": x[:N_CALIB],
        "digits_test": x[-DIGITS_N_TEST:],
        "digits_labels": y[-DIGITS_N_TEST:],
    }


def ad_windows(path: Path) -> np.ndarray:
    """The 196 inputs of AD01's test clip: [196, 1, 640] float32, window i = frames i..i+4 flattened."""
    raw = np.fromfile(path, dtype="<f4")
    if raw.size != AD_FRAMES * AD_MELS:
        raise ValueError(f"{path}: expected {AD_FRAMES} x {AD_MELS} float32 values, found {raw.size}")
    frames = raw.reshape(AD_FRAMES, AD_MELS)
    n = AD_FRAMES - AD_WINDOW + 1
    return np.stack([frames[i : i + AD_WINDOW].reshape(1, -1) for i in range(n)]).astype(np.float32)


def ad(models: Path) -> dict[str, np.ndarray]:
    w = ad_windows(models / AD_DATA)
    return {"ad_calib": w[AD_CALIB.start : AD_CALIB.stop], "ad_test": w[AD_TEST.start : AD_TEST.stop]}


def hello_world() -> dict[str, np.ndarray]:
    """x in [0, 2 pi) as [N, 1, 1] float32 (the model's input shape is [1, 1]); the target is sin(x)."""
    x = np.random.default_rng(SEED).uniform(0.0, 2.0 * np.pi, size=N_CALIB + HELLO_N_TEST).astype(np.float32)
    x = x.reshape(-1, 1, 1)
    return {"hello_calib": x[:N_CALIB], "hello_test": x[N_CALIB:]}


def cancer() -> dict[str, np.ndarray]:
    """Train and test split of scikit-learn's breast cancer set as [N, 1, 30] float32 with int64 labels (1 benign).
    The scaling comes from the training samples only (in float64), so the held-out ones stay unseen."""
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    order = np.random.default_rng(SEED).permutation(len(d.target))
    x, y = d.data[order].astype(np.float64), d.target[order].astype(np.int64)
    train = x[:-CANCER_N_TEST]
    x = ((x - train.mean(axis=0)) / train.std(axis=0)).astype(np.float32)[:, None, :]
    return {
        "cancer_x_train": x[:-CANCER_N_TEST],
        "cancer_y_train": y[:-CANCER_N_TEST],
        "cancer_calib": x[:N_CALIB],
        "cancer_test": x[-CANCER_N_TEST:],
        "cancer_labels": y[-CANCER_N_TEST:],
    }


def make_all(models: Path) -> dict[str, np.ndarray]:
    """Every set, keyed as ``save`` stores them."""
    return {**digits(), **ad(models), **hello_world(), **cancer()}


def save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An .npz without pickle and with fixed zip timestamps (the same arrays give the same bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio over all values: 10 log10(sum ref^2 / sum (ref - test)^2), in dB."""
    ref = np.asarray(ref, np.float64)
    err = float(np.sum((ref - np.asarray(test, np.float64)) ** 2))
    sig = float(np.sum(ref**2))
    return float("inf") if err == 0.0 else 10.0 * float(np.log10(sig / err))


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in percent; ties go to the lowest class index (np.argmax), as a device's loop would."""
    pred = np.argmax(probs.reshape(len(labels), -1), axis=1)
    return 100.0 * float(np.mean(pred == labels))
