"""Review of mcuq.qat as a careless and a hostile user: each test pins a finding (a bug fixed, or a behaviour
checked and kept). Small models, a few steps each: the whole file runs in a few seconds."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest

from mcuq.errors import McuqError

torch = pytest.importorskip("torch", reason="mcuq.qat needs torch (the qat extra)")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from mcuq import qat  # noqa: E402
from mcuq.qat.layers import LSQ_BIAS_LIMIT, LSQ_FLOOR, Phase  # noqa: E402
from tests.qat.test_units import Tiny  # noqa: E402


def _tiny(**kw):
    torch.manual_seed(0)
    x = torch.randn(8, 2, 4, 4)
    return qat.prepare(Tiny(), x, **kw), x


def _eval(qm, x) -> np.ndarray:
    qm.eval()
    with torch.no_grad():
        return qm(x).numpy()


def _steps(qm, x, n: int, lr: float = 0.01) -> None:
    qm.train()
    opt = torch.optim.SGD(qm.parameters(), lr=lr)
    for _ in range(n):
        opt.zero_grad()
        qm(x).square().mean().backward()
        opt.step()


# -- LSQ: a learned scale that an optimizer step takes to zero or below --------------------------------------------


def test_lsq_scale_stays_positive_and_the_export_fits():
    """Before: an activation scale at -0.1 was clamped to 1e-8 in the forward pass (the layer passed on nothing and,
    its gradient zero, never learned back) and the next layer's bias overflowed int32 at export (ModelError)."""
    qm, x = _tiny(lsq=True, freeze_bn_after=0, freeze_observers_after=0)
    conv, head = qm.layer("conv"), qm.layer("head")
    with torch.no_grad():
        observed = float(conv.out.scale)
        conv.out.scale.fill_(-0.1)  # what a too large step does
        head.w_scale.fill_(-1.0)
    _steps(qm, x, 1)
    assert float(conv.out.scale.grad) != 0.0  # still learning
    want = _eval(qm, x)  # every forward pass uses the scales projected back above their floors
    assert float(conv.out.scale.detach()) >= observed * LSQ_FLOOR * (1 - 1e-6) > 0
    assert (head.w_scale.detach() > 0).all()
    s_in = float(conv.out.scale.detach())
    bias = head.folded(None, Phase())[1].detach().double().abs()
    assert (bias / (s_in * head.w_scale.detach().double()) <= LSQ_BIAS_LIMIT).all()  # the int32 bias fits
    np.testing.assert_array_equal(qat.evaluate_integer(qm, x), want)  # exports (the accumulator fits) and agrees
    with torch.no_grad():
        conv.out.scale.fill_(float("nan"))
    with pytest.raises(McuqError, match="learned scale of activation 'conv' is nan .*lower the learning rate"):
        qm(x)


# -- careless inputs ------------------------------------------------------------------------------------------------


def test_nhwc_example_is_one_line_without_a_printed_traceback(capfd):
    """Before: torch.fx's ShapeProp printed the failing node's traceback to stderr before our one-line error."""
    with pytest.raises(McuqError, match=r"does not run on example_input of shape \[8, 4, 4, 2\].*NCHW"):
        qat.prepare(Tiny(), torch.randn(8, 4, 4, 2))
    assert capfd.readouterr().err == ""


def test_forward_and_evaluate_check_the_input():
    """The prepared model runs only what the exported one takes: a float64 batch is the float32 one (before: a raw
    dtype RuntimeError), another sample shape is an error (before: it ran a geometry the export does not have)."""
    qm, x = _tiny()
    np.testing.assert_array_equal(_eval(qm, x.double()), _eval(qm, x))
    with pytest.raises(McuqError, match=r"input has shape \[3, 2, 5, 5\]; the model was prepared for .* \[2, 4, 4\]"):
        qm(torch.randn(3, 2, 5, 5))  # the conv, pool and head would run on it
    with pytest.raises(McuqError, match=r"evaluate_integer's x has shape \[2, 4, 4\]"):
        qat.evaluate_integer(qm, x[0])  # one sample without its batch dimension (before: a numpy ValueError)
    with pytest.raises(McuqError, match="takes a float torch.Tensor, not Tensor of torch.int64"):
        qm(x.long())
    with pytest.raises(McuqError, match="moved or cast to torch.float64 on cpu"):
        copy.deepcopy(qm).double()(x)


def test_linear_on_a_3d_tensor_is_named():
    """Before: a raw RuntimeError from the bias broadcast during prepare's calibration."""
    with pytest.raises(McuqError, match=r"Linear '0' reads a 3-D tensor \(one sample \[3, 8\]\).*flatten before it"):
        qat.prepare(nn.Sequential(nn.Linear(8, 2)), torch.randn(4, 3, 8))


def test_options_are_checked():
    net, x = Tiny(), torch.randn(8, 2, 4, 4)
    for kw, message in (
        ({"momentum": 2.0}, "momentum must be a number in \\(0, 1\\]"),
        ({"momentum": float("nan")}, "momentum must be"),
        ({"lsq": "no"}, "lsq must be True or False, not 'no'"),  # before: a TypeError from nn.Parameter
        ({"integer": 0}, "integer must be True or False"),
        ({"config": {"lsq": True}}, "config must be a QatConfig, not dict"),  # before: "replace() should be called"
    ):
        with pytest.raises(McuqError, match=message):
            qat.prepare(net, x, **kw)
    # widths read from numpy or a command line (before: "weight_bits 4 is not one of 8, 4, 2, 1")
    assert qat.prepare(net, x, weight_bits=np.int64(4)).weight_bits == {"conv": 4, "head": 4}
    assert qat.prepare(net, x, weight_bits="2", per_layer={"head": np.int32(8)}).weight_bits == {"conv": 2, "head": 8}
    with pytest.raises(McuqError, match="weight_bits names 'bn', not a layer"):
        qat.prepare(net, x, weight_bits=4, per_layer={"bn": 8})  # a folded BatchNorm is not a layer
    with pytest.raises(McuqError, match="per_layer must be a mapping \\{layer: bits\\} \\(or a recipe\\), not list"):
        qat.prepare(net, x, weight_bits=4, per_layer=[("conv", 8)])  # before: TypeError "not a mapping"
    # nn.Sequential's layers are '0', '1', ...: an int key names them (before: "names '0', not a layer ... '0'")
    seq = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(16, 2))
    assert qat.prepare(seq, x, weight_bits={0: 4}).weight_bits == {"0": 4, "2": 8}


# -- what the tracer accepts ----------------------------------------------------------------------------------------


class Views(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.c = nn.Conv2d(3, 4, 3, padding=1)
        self.f = nn.Linear(4 * 5 * 5, 2)

    def forward(self, x):
        h = self.c(x).relu_()
        if self.how == "shape":
            h = h.view(h.shape[0], -1)
        elif self.how == "size()":
            h = h.reshape(h.size()[0], -1)
        else:
            h = h.view(-1, 100)
        return self.f(h)


@pytest.mark.parametrize("how", ["shape", "size()", "-1"])
def test_flatten_spellings(how):
    """x.view(x.shape[0], -1), x.reshape(x.size()[0], -1) and x.view(-1, C*H*W) are flattens (before: "node
    'getattr_1' does not produce one tensor" and ".view() is not supported")."""
    torch.manual_seed(0)
    x = torch.randn(6, 3, 5, 5)
    qm = qat.prepare(Views(how), x, weight_bits=4)
    assert [s.kind for s in qm.stages] == ["input", "layer", "flatten", "layer", "output"]
    np.testing.assert_array_equal(qat.evaluate_integer(qm, x), _eval(qm, x))


def test_a_module_called_twice():
    """Before: the stages of both calls had one name, and verify refused the export ("tensor 'p' is produced
    twice"). A pool called twice is two pools; a conv called twice (shared weights) is refused by name."""

    class TwoPools(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(4, 4, 3, padding=1)
            self.p = nn.MaxPool2d(2)
            self.f = nn.Linear(36, 3)

        def forward(self, x):
            return self.f(torch.flatten(self.p(self.a(x)) + self.p(x), 1))

    class Shared(TwoPools):
        def forward(self, x):
            return self.f(torch.flatten(self.p(self.a(torch.relu(self.a(x)))), 1))

    torch.manual_seed(0)
    x = torch.randn(8, 4, 7, 7)
    qm = qat.prepare(TwoPools(), x)
    assert len({s.name for s in qm.stages}) == len(qm.stages)
    np.testing.assert_array_equal(qat.evaluate_integer(qm, x), _eval(qm, x))
    with pytest.raises(McuqError, match="Conv2d 'a' is called twice .*give each call its own module"):
        qat.prepare(Shared(), x)


def test_compiled_and_scripted_modules():
    """torch.compile's wrapper is unwrapped (before: 'OptimizedModule is missing the required "forward"'); a
    TorchScript module gets a message that says what to pass instead."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(100, 2))
    x = torch.randn(4, 3, 5, 5)
    qm = qat.prepare(torch.compile(net), x)
    assert qm.layer_names == ["0", "3"]
    with pytest.raises(McuqError, match="TorchScript module, which torch.fx cannot trace; pass the eager nn.Module"):
        qat.prepare(torch.jit.script(net), x)


def test_dropout_trains_and_is_dropped_at_export():
    """Before: Dropout(p) was removed from training too, though the docs said "as they are"."""
    torch.manual_seed(0)
    x = torch.randn(16, 6)
    qm = qat.prepare(nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)), x)
    assert [s.kind for s in qm.stages] == ["input", "layer", "dropout", "layer", "output"]
    with torch.no_grad():
        assert not torch.equal(qm(x), qm(x))  # training passes drop
    want = _eval(qm, x)
    np.testing.assert_array_equal(_eval(qm, x), want)
    np.testing.assert_array_equal(qat.evaluate_integer(qm, x), want)
    fused = qat.prepare(nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.5), nn.ReLU(), nn.Linear(16, 3)), x)
    assert [s.kind for s in fused.stages] == ["input", "layer", "layer", "output"]  # the ReLU still fuses


def test_batchnorm_momentum_none_is_torchs_cumulative_average():
    """Before: momentum=None was taken as 0.1. On inputs on the int8 grid the running statistics are torch's."""
    for momentum in (None, 0.3):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4, momentum=momentum), nn.ReLU())
        ref = copy.deepcopy(net).train()
        qm = qat.prepare(net, torch.randn(4, 2, 5, 5), freeze_observers_after=0)
        s, z = qm.input_obs.frozen_qparams()
        for _ in range(3):
            x = (torch.randint(-100, 100, (4, 2, 5, 5)).float() - z) * s
            qm(x)
            ref(x)
        bn = qm.layer("0").bn
        torch.testing.assert_close(bn.running_mean, ref[1].running_mean, rtol=0, atol=1e-6)
        torch.testing.assert_close(bn.running_var, ref[1].running_var, rtol=1e-6, atol=1e-6)


# -- held: saving, copying, exporting at any point --------------------------------------------------------------------


def test_save_copy_and_export_at_any_time(tmp_path):
    qm, x = _tiny(lsq=True, freeze_bn_after=1, freeze_observers_after=2)
    a = qat.export(qm, tmp_path / "a.tflite").read_bytes()  # before any training
    assert qat.export(qm, tmp_path / "b.tflite").read_bytes() == a and qm.training  # twice; the mode kept
    _steps(qm, x, 4)
    buf = io.BytesIO()
    torch.save(qm.state_dict(), buf)
    buf.seek(0)
    again, _ = _tiny(lsq=True, freeze_bn_after=1, freeze_observers_after=2)
    again.load_state_dict(torch.load(buf))
    want = _eval(qm, x)
    assert int(again.step) == 4
    for other in (again, copy.deepcopy(qm), pickle.loads(pickle.dumps(qm))):
        np.testing.assert_array_equal(_eval(other, x), want)
    assert qat.export(again, tmp_path / "c.tflite").read_bytes() == qat.export(qm, tmp_path / "d.tflite").read_bytes()
    _steps(qm, x, 1)  # training goes on after an export
    assert int(qm.step) == 5


# -- fidelity beyond digits ---------------------------------------------------------------------------------------


class ZooNet(nn.Module):
    """A depthwise multiplier 3 without bias, with an affine-free BN and ReLU6; a residual add of two branches at
    different scales with ReLU6 (before: refused, though the docs said fused); an odd 3x3 / stride 2 average pool; dropout; Linear + ReLU6; a Linear without bias."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.dw = nn.Conv2d(4, 12, 3, padding=1, groups=4, bias=False)
        self.bn = nn.BatchNorm2d(12, affine=False)
        self.pw = nn.Conv2d(12, 4, 1)
        self.pool = nn.AvgPool2d(3, 2)
        self.drop = nn.Dropout(0.2)
        self.fc1 = nn.Linear(4 * 3 * 3, 8)
        self.fc2 = nn.Linear(8, 5, bias=False)

    def forward(self, x):
        h = F.relu(self.stem(x))
        b = F.relu6(self.bn(self.dw(h)))
        r = F.relu6(self.pw(b) + h)
        return self.fc2(self.drop(F.relu6(self.fc1(self.pool(r).flatten(1)))))


def test_compiled_c_equals_the_qat_evaluation_beyond_digits():
    import mcuq

    torch.manual_seed(0)
    x = torch.randn(16, 3, 7, 7)
    qm = qat.prepare(ZooNet(), x, weight_bits={"dw": 2, "pw": 4, "fc2": 1}, lsq=True, freeze_bn_after=2,
                     freeze_observers_after=3)  # fmt: skip
    assert [s.spec.act for s in qm.stages if s.kind == "layer"] == ["relu", "relu6", "none", "relu6", "none"]
    assert [s.attrs["act"] for s in qm.stages if s.kind == "add"] == ["relu6"]
    _steps(qm, x, 5)
    want = _eval(qm, x)
    qmodel = qat.to_quantized(qm)
    np.testing.assert_array_equal(qat.evaluate_integer(qm, x, qmodel), want)
    got = mcuq.compile_model(qmodel, sanitize=False).run(x.numpy(), float_output=True)[0]
    np.testing.assert_array_equal(got, want)


def test_padding_strings_and_frozen_parameters():
    """padding="same" (odd kernel) and "valid" are TFLite's SAME and VALID (before: refused, "give the padding as
    numbers"); parameters the user froze stay frozen, and an affine-free BN gets no trainable gamma and beta (before:
    every prepared parameter trained)."""
    import mcuq

    torch.manual_seed(0)
    x = torch.randn(4, 3, 6, 6)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding="same"), nn.BatchNorm2d(4, affine=False), nn.ReLU(),
                        nn.Conv2d(4, 4, (3, 1), padding="valid", dilation=(1, 2)))  # fmt: skip
    net[0].requires_grad_(False)
    qm = qat.prepare(net, x)
    assert qm.layer("0").spec.padding == (1, 1)
    trainable = {n for n, p in qm.named_parameters() if p.requires_grad}
    assert trainable == {f"layers.{qm.keys['3']}.weight", f"layers.{qm.keys['3']}.bias"}
    want = _eval(qm, x)
    assert want.shape == net(x).shape
    got = mcuq.compile_model(qat.to_quantized(qm), sanitize=False).run(x.numpy(), float_output=True)[0]
    np.testing.assert_array_equal(got, want)
    with pytest.raises(McuqError, match="padding='same' with an even kernel \\(2, 2\\)"):
        qat.prepare(nn.Sequential(nn.Conv2d(3, 4, 2, padding="same")), x)
    with pytest.raises(McuqError, match=r"calibrate's x has shape \[4, 6, 6, 3\]"):
        qm.calibrate(x.permute(0, 2, 3, 1))


def test_add_of_two_flattened_tensors():
    """Before: refused with "inputs must have the same shape ..., got [1, 60] and [1, 60]". Two tensors flattened
    from NCHW maps of one shape share their element order: the add keeps it, and the Linear after it is permuted."""

    class Mid(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 3, 1)
            self.d = nn.Conv2d(3, 3, 3, padding=1)
            self.g = nn.AdaptiveAvgPool2d(1)
            self.l = nn.Linear(60, 2)

        def forward(self, x):
            return self.l(torch.flatten(x, 1) + torch.flatten(self.c(x), 1))

    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 5)
    qm = qat.prepare(Mid(), x)
    np.testing.assert_array_equal(qat.evaluate_integer(qm, x), _eval(qm, x))

    class Other(Mid):
        def __init__(self) -> None:
            super().__init__()
            self.k = nn.Linear(60, 60)

        def forward(self, x):  # an NCHW-ordered flatten plus a Linear's output: no one NHWC order fits both
            return self.l(torch.flatten(self.c(x), 1) + self.k(torch.flatten(x, 1)))

    with pytest.raises(McuqError, match="add 'add' adds a flattened NCHW tensor to a tensor of another element order"):
        qat.prepare(Other(), x)


class Unread(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 3, padding=1)
        self.r = nn.ReLU(inplace=True)
        self.l = nn.Linear(80, 2)

    def forward(self, x):
        h = self.a(x)
        if self.how == "dead":
            self.b(x)  # computed, never read
        elif self.how == "relu_":
            h.relu_()
        elif self.how == "module":
            self.r(h)
        elif self.how == "F.relu":
            F.relu(h, inplace=True)
        return self.l(torch.flatten(h, 1))


@pytest.mark.parametrize("how", ["dead", "relu_", "module", "F.relu"])
def test_values_nothing_reads(how):
    """A layer whose output nothing reads is not exported (before: a dead conv in the C). An in-place ReLU whose
    result is unused is refused: fx traces values, so the layers after it would read the tensor before the ReLU
    (before: the message said the ReLU did not follow a conv)."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, 4, 5)
    if how == "dead":
        qm = qat.prepare(Unread(how), x)
        assert qm.layer_names == ["a", "l"]
        assert [op.name for op in qat.to_quantized(qm).graph.ops if op.name == "b"] == []
        return
    with pytest.raises(McuqError, match="changes a tensor in place and its result is not used"):
        qat.prepare(Unread(how), x)


def test_flatten_with_a_positional_end_dim():
    """Before: torch.flatten(x, 1, 2) was taken as a flatten to the last dimension (the positional end_dim was not
    read), so the prepared model's output had another shape than the float model's."""

    class Fl(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            return torch.flatten(self.c(x), 1, 2)

    with pytest.raises(McuqError, match="function flatten 'flatten' must flatten from dimension 1 to the last"):
        qat.prepare(Fl(), torch.randn(2, 3, 4, 5))


def test_an_infinite_input_saturates():
    """Before: with frozen observers, +-inf in a batch gave NaN outputs (the STE's inf - inf) and numpy's "invalid
    value in cast" warning in the integer path; it saturates now, as TFLite's quantize does."""
    import warnings

    torch.manual_seed(0)
    x = torch.randn(8, 3, 6, 6)
    qm = qat.prepare(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2)), x,
                     freeze_observers_after=0)  # fmt: skip
    bad = x.clone()
    bad[0, 0, 0, 0], bad[1, 1, 1, 1] = float("inf"), -float("inf")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = qm(bad)
        y.sum().backward()
        assert torch.isfinite(y).all() and torch.isfinite(qm.layer("0").weight.grad).all()
        got = _eval(qm, bad)
    big = bad.clone()
    big[0, 0, 0, 0], big[1, 1, 1, 1] = 1e30, -1e30  # what the exported model does with a value beyond its range
    np.testing.assert_array_equal(got, qat.evaluate_integer(qm, big))
