"""The digits CNN of tests/util/digits_float.py rebuilt in torch (with BatchNorms), its float training and QAT
fine-tunes: shared by tests/qat and benchmarks/qat.py. Seeded and single-threaded, so a run is deterministic.

    input 1x8x8 (pixel / 16), NCHW
    conv1 3x3x8, padding 1 + BatchNorm + ReLU     -> 8x8x8
    dw    3x3 depthwise, padding 1 + ReLU         -> 8x8x8
    pw    1x1x16 + BatchNorm + ReLU               -> 16x8x8
    AvgPool2d 2                                   -> 16x4x4
    Flatten                                       -> 256 (NCHW order: export permutes fc's weight columns)
    fc    Linear 10                               -> logits
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tests.util.digits_float import trainer

BATCH = 32


class DigitsNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 16, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.AvgPool2d(2)
        self.drop = nn.Dropout(0.0)
        self.fc = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = nn.functional.relu(self.dw(x))
        x = torch.relu(self.bn2(self.pw(x)))
        return self.fc(self.drop(torch.flatten(self.pool(x), 1)))


@dataclass(frozen=True)
class Data:
    x_train: torch.Tensor  # [N, 1, 8, 8] float32 in [0, 1]
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load() -> Data:
    """examples/train_digits.py's split, NCHW."""
    x_tr, y_tr, x_te, y_te = trainer().load_data()

    def nchw(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32))

    return Data(nchw(x_tr), torch.from_numpy(y_tr), nchw(x_te), torch.from_numpy(y_te))


def fit(model: nn.Module, data: Data, epochs: int, lr: float, seed: int = 0) -> float:
    """A plain PyTorch loop (Adam, cosine decay, cross-entropy); returns the seconds it took."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(data.x_train)
    steps = epochs * math.ceil(n / BATCH)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / steps)))
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)
        for i in range(0, n, BATCH):
            idx = order[i : i + BATCH]
            opt.zero_grad()
            loss = loss_fn(model(data.x_train[idx]), data.y_train[idx])
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    return time.perf_counter() - t0


def logits(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return model(x).numpy()


def accuracy(model: nn.Module, data: Data) -> float:
    return float(np.mean(np.argmax(logits(model, data.x_test), axis=1) == data.y_test.numpy()))


def train_float(data: Data, epochs: int = 30) -> tuple[DigitsNet, float]:
    torch.manual_seed(0)
    net = DigitsNet()
    return net, fit(net, data, epochs, 0.01)
