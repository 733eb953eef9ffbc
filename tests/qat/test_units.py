"""mcuq.qat's pieces: rounding on ties as mcuq's quantizer rounds, weight and activation quantization equal to
mcuq's, per-layer widths, the freeze schedule, errors that name the module, and torch staying optional."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mcuq.errors import McuqError
from mcuq.quant.observers import choose_qparams
from mcuq.quant.rounding import quantize_nearest
from mcuq.quant.values import affine_quantize, round_half_away

torch = pytest.importorskip("torch", reason="mcuq.qat needs torch (the qat extra)")
from torch import nn  # noqa: E402

from mcuq import qat  # noqa: E402
from mcuq.qat import fake  # noqa: E402


def test_import_mcuq_does_not_import_torch():
    code = ("import sys, mcuq, mcuq.api, mcuq.quant.ptq, mcuq.quant.fixed, mcuq.cli; "
            "assert 'torch' not in sys.modules, 'torch imported'")  # fmt: skip
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_torch_a_one_line_error():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from mcuq.errors import McuqError\n"
        "try:\n    import mcuq.qat\nexcept McuqError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "mcuq[qat]" in out and len(out.strip().splitlines()) == 1


def test_round_half_away_on_ties():
    x = np.array([-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, -0.49999997, 0.49999997, 2.4999998, 7.0], np.float32)
    got = fake.round_half_away(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(got, round_half_away(x))
    assert list(got[:8]) == [-4, -3, -2, -1, 1, 2, 3, 4]
    assert not np.array_equal(torch.round(torch.from_numpy(x)).numpy(), got)  # torch rounds half to even


def test_activation_quantization_is_tflites():
    rng = np.random.default_rng(0)
    s, z = choose_qparams(-1.3, 2.9)
    ties = (np.arange(-140, 140) + 0.5).astype(np.float32) * np.float32(s)  # x / s lands on .5 (in float32)
    x = np.concatenate([rng.uniform(-2, 3.5, 1000).astype(np.float32), ties])
    fq = fake.fake_quant_act(torch.from_numpy(x), torch.tensor(s, dtype=torch.float32), z)
    q = fake.act_int(torch.from_numpy(x), torch.tensor(s, dtype=torch.float32), z).numpy()
    np.testing.assert_array_equal(q.astype(np.int8), affine_quantize(x, s, z))
    np.testing.assert_allclose(fq.numpy(), (q - z) * np.float32(s), rtol=0, atol=1e-6)


@pytest.mark.parametrize("bits", [8, 4, 2, 1])
def test_weight_quantization_is_mcuqs(bits):
    rng = np.random.default_rng(bits)
    w = rng.standard_normal((6, 20)).astype(np.float32)
    w[:, :4] = np.array([0.5, 1.5, -2.5, -0.5], np.float32) * 0.25  # ties at scale 0.25
    s = fake.weight_scales(torch.from_numpy(w), bits, "max")
    if bits == 1:
        np.testing.assert_allclose(s.numpy(), np.abs(w).mean(axis=1).astype(np.float32), rtol=1e-6)
    s = torch.full((6,), 0.25)
    q = fake.weight_int(torch.from_numpy(w), s, bits)
    np.testing.assert_array_equal(q, quantize_nearest(w, np.full(6, 0.25), bits))
    real = fake.fake_quant_weight(torch.from_numpy(w), s, bits).numpy()
    np.testing.assert_array_equal(real, q.astype(np.float32) * 0.25)


def test_straight_through_gradient():
    x = torch.tensor([0.1, 0.26, 5.0, -5.0], requires_grad=True)
    fake.fake_quant_act(x, torch.tensor(0.01), 0).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 0.0, 0.0]  # identity inside the int8 range, zero where clamped


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(torch.flatten(self.pool(torch.relu(self.bn(self.conv(x)))), 1))


def _tiny():
    torch.manual_seed(0)
    return Tiny(), torch.randn(8, 2, 4, 4)


def test_per_layer_widths():
    net, x = _tiny()
    assert qat.prepare(net, x, weight_bits={"head": 2}).weight_bits == {"conv": 8, "head": 2}
    assert qat.prepare(net, x, weight_bits=4, per_layer={"conv": 8}).weight_bits == {"conv": 8, "head": 4}
    recipe = {"conv": {"weight_bits": 1, "activations": "int8"}, "head": {"weight_bits": 4, "activations": "int8"}}
    assert qat.prepare(net, x, weight_bits=recipe).weight_bits == {"conv": 1, "head": 4}
    with pytest.raises(McuqError, match=r"qat.prepare: weight_bits names 'nope'.*'conv', 'head'"):
        qat.prepare(net, x, weight_bits={"nope": 4})
    with pytest.raises(McuqError, match="weight_bits of layer 'conv' 3 is not one of 8, 4, 2, 1"):
        qat.prepare(net, x, weight_bits={"conv": 3})
    with pytest.raises(McuqError, match=r"layer 'conv' int16 activations; QAT trains int8.*weight_bits=\{'conv': 8\}"):
        qat.prepare(net, x, weight_bits={"conv": {"weight_bits": 8, "activations": "int16"}})


def test_recipe_file(tmp_path):
    net, x = _tiny()
    p = tmp_path / "choice.json"
    p.write_text(json.dumps({"recipe": {"conv": {"weight_bits": 4, "activations": "int8"}}, "method": "milp"}))
    assert qat.prepare(net, x, weight_bits=p).weight_bits == {"conv": 4, "head": 8}
    report = {"layers": [], "mixed_precision": {"recipe": {"head": {"weight_bits": 1, "activations": "int8"}}}}
    p.write_text(json.dumps(report))  # the --report of `mcuq quantize --budget-...`
    assert qat.prepare(net, x, weight_bits=p).weight_bits == {"conv": 8, "head": 1}
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(McuqError, match="bad.json: cannot read a precision recipe"):
        qat.prepare(net, x, weight_bits=tmp_path / "bad.json")


def test_freeze_schedule():
    net, x = _tiny()
    qm = qat.prepare(net, x, freeze_bn_after=3, freeze_observers_after=5)
    bn, obs = qm.layer("conv").bn, qm.layer("conv").out
    assert qm.training and int(qm.step) == 0
    history = []
    for i in range(8):
        qm(torch.randn(8, 2, 4, 4) * (1 + i))
        history.append((bn.running_mean.clone(), float(obs.hi), int(qm.step)))
    assert [h[2] for h in history] == list(range(1, 9))
    means, his = [h[0] for h in history], [h[1] for h in history]
    assert not torch.equal(means[1], means[2])  # step 3: still batch statistics
    assert all(torch.equal(means[2], m) for m in means[3:])  # frozen after 3 steps
    assert his[3] != his[4] and len(set(his[4:])) == 1  # observers frozen after 5
    assert qm.bn_frozen and qm.observers_frozen
    qm.eval()
    qm(x)
    assert int(qm.step) == 8  # evaluation is not a training step


def test_eval_is_the_exported_integer_model():
    """A small residual model (add + ReLU, ReLU6, max pool) at mixed widths with LSQ: after a few steps, the
    evaluation equals mcuq's integer reference of the export exactly."""

    class Res(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(3, 6, 3, padding=1)
            self.b = nn.Conv2d(6, 6, 3, padding=1, groups=6)
            self.c = nn.Conv2d(6, 6, 1)
            self.act = nn.ReLU6()
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(6 * 3 * 3, 5)

        def forward(self, x):
            h = torch.relu(self.a(x))
            h = torch.relu(self.b(h) + h)
            h = self.pool(self.act(self.c(h)))
            return self.fc(h.flatten(1))

    torch.manual_seed(1)
    net, x = Res(), torch.randn(16, 3, 6, 6)
    qm = qat.prepare(net, x, weight_bits={"b": 2, "c": 4, "fc": 1}, lsq=True, freeze_bn_after=0,
                     freeze_observers_after=2)  # fmt: skip
    assert qm.layer("c").spec.act == "relu6"
    opt = torch.optim.SGD(qm.parameters(), lr=0.01)
    for _ in range(4):
        opt.zero_grad()
        qm(x).square().mean().backward()
        opt.step()
    assert qm.layer("c").w_scale.grad is not None  # LSQ: the scales learn once frozen
    qm.eval()
    with torch.no_grad():
        want = qm(x).numpy()
    np.testing.assert_array_equal(qat.evaluate_integer(qm, x), want)


def test_view_flatten_and_global_pool():
    """x.view(x.size(0), -1) is a flatten (the Linear's columns permuted to NHWC); AdaptiveAvgPool2d(1) a global
    average pool; a model of Linear layers alone takes (N, F)."""

    class V(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3, padding=1)
            self.g = nn.AdaptiveAvgPool2d(1)
            self.f = nn.Linear(4 * 5 * 5 + 4, 2)

        def forward(self, x):
            h = torch.relu(self.c(x))
            return self.f(torch.cat([h.view(h.size(0), -1), self.g(h).flatten(1)], 1))

    torch.manual_seed(0)
    x = torch.randn(8, 3, 5, 5)
    with pytest.raises(McuqError, match="function cat 'cat' is not supported"):
        qat.prepare(V(), x)
    for net, inp in (
        (nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(100, 2)), x),
        (nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)), x),
        (nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)), torch.randn(8, 6)),
        (nn.Sequential(nn.Conv2d(3, 4, (3, 1), padding=(1, 0)), nn.Flatten(), nn.Linear(100, 2)), x),  # SAME
    ):
        qm = qat.prepare(net, inp, weight_bits=4).eval()
        with torch.no_grad():
            want = qm(inp).numpy()
        np.testing.assert_array_equal(qat.evaluate_integer(qm, inp), want)

    class W(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3, padding=1)
            self.f = nn.Linear(100, 2)

        def forward(self, x):
            h = torch.relu(self.c(x))
            return self.f(h.view(h.size(0), -1))

    qm = qat.prepare(W(), x).eval()
    assert [s.kind for s in qm.stages] == ["input", "layer", "flatten", "layer", "output"]
    with torch.no_grad():
        want = qm(x).numpy()
    np.testing.assert_array_equal(qat.evaluate_integer(qm, x), want)


@pytest.mark.parametrize(
    "layer, message",
    [
        (nn.Sequential(nn.Conv2d(2, 4, 3), nn.Sigmoid()), "module Sigmoid '1' is not supported"),
        (nn.Sequential(nn.Conv2d(2, 4, 1), nn.Conv2d(4, 4, 3, groups=2)), "Conv2d '1' has groups=2"),
        (nn.Sequential(nn.Flatten(), nn.Linear(32, 4), nn.BatchNorm1d(4)), "module BatchNorm1d '2' is not supported"),
        (nn.Sequential(nn.MaxPool2d(2), nn.ReLU()), "ReLU '1' does not follow a conv, linear or add"),
        (nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1)), "Conv2d '0': padding \\(1, 1\\) on a 4x4 input"),
        (nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, padding_mode="reflect")), "padding_mode 'reflect'"),
        (nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4, track_running_stats=False)), "keeps no running stat"),
        (nn.Sequential(nn.ReLU(), nn.Conv2d(2, 4, 3)), "module ReLU '0' does not follow a conv"),
        (nn.Sequential(nn.Conv2d(2, 4, 3), nn.AvgPool2d(2, ceil_mode=True)), "AvgPool2d '1' must have padding 0"),
    ],
)
def test_unsupported_modules_are_named(layer, message):
    with pytest.raises(McuqError, match=message):
        qat.prepare(layer, torch.randn(2, 2, 4, 4))


def test_float_graph_names_layers_as_prepare(tmp_path):
    """The float model that ``mcuq quantize`` / ``sensitivity`` read names its layers as ``prepare`` does."""
    from mcuq.quant.ptq import layer_names

    net, x = _tiny()
    qm = qat.prepare(net, x)
    path = qat.export_float(qm, tmp_path / "float.tflite")
    assert layer_names(str(path)) == qm.layer_names == ["conv", "head"]
    g = qat.float_graph(qm)
    assert g.tensors["input"].shape == (1, 4, 4, 2)


def test_bad_inputs_are_one_line_errors():
    net, x = _tiny()
    with pytest.raises(McuqError, match=r"does not run on example_input of shape \[8, 3, 4, 4\]"):
        qat.prepare(net, torch.randn(8, 3, 4, 4))
    with pytest.raises(McuqError, match="must be a float torch.Tensor"):
        qat.prepare(net, x.numpy())
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(McuqError, match="activation 'input' has NaN or infinite values"):
        qat.prepare(net, bad)
    with pytest.raises(McuqError, match="freeze_bn_after must be a step count"):
        qat.prepare(net, x, freeze_bn_after=-1)
    with pytest.raises(McuqError, match="unexpected keyword argument 'freeze'"):
        qat.prepare(net, x, freeze=3)


def test_not_a_prepared_model():
    with pytest.raises(McuqError, match="expected a model from mcuq.qat.prepare"):
        qat.export(nn.Linear(2, 2), "x.tflite")


def test_nchw_at_the_python_api():
    """The exported graph records its NCHW input and output (``mcuq.layout``): the compiled model takes and returns
    the torch layout, while its C arrays are NHWC."""
    import mcuq

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 1))
    x = torch.randn(5, 2, 4, 6)
    qm = qat.prepare(net, x).eval()
    with torch.no_grad():
        want = qm(x).numpy()
    qmodel = qat.to_quantized(qm)
    assert qmodel.graph.tensors[qmodel.graph.inputs[0]].shape == (1, 4, 6, 2)
    got = mcuq.compile_model(qmodel, sanitize=False).run(x.numpy(), float_output=True)[0]
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(qat.evaluate_integer(qm, x), want)
