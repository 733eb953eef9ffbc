"""Session fixtures of the QAT tests: the digits CNN trained in float once, then fine-tuned with QAT once per
precision (CPU, one thread, seeded: the same numbers on every run)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

torch = pytest.importorskip("torch", reason="mcuq.qat needs torch (the qat extra)")
pytest.importorskip("sklearn", reason="the digits data set needs scikit-learn (the examples extra)")

from tests.qat import digits as D  # noqa: E402

FLOAT_EPOCHS = 30
# name -> (weight_bits, QAT epochs): the three fine-tunes the issue names
RUNS = {
    "int8": (8, 2),
    "int4": (4, 3),
    "ternary": ({"conv1": 8, "dw": 2, "pw": 2, "fc": 8}, 5),
}
FREEZE = {"freeze_bn_after": 100, "freeze_observers_after": 150}


@dataclass(frozen=True, eq=False)
class Run:
    model: object  # mcuq.qat.QatModel
    accuracy: float
    seconds: float


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def data() -> D.Data:
    return D.load()


@pytest.fixture(scope="session")
def float_net(data):
    net, _ = D.train_float(data, FLOAT_EPOCHS)
    return net, D.accuracy(net, data)


@pytest.fixture(scope="session")
def qat_runs(data, float_net) -> dict[str, Run]:
    from mcuq import qat

    out = {}
    for name, (bits, epochs) in RUNS.items():
        qm = qat.prepare(float_net[0], data.x_train[:256], weight_bits=bits, **FREEZE)
        secs = D.fit(qm, data, epochs, 0.001)
        out[name] = Run(qm, D.accuracy(qm, data), secs)
    return out
