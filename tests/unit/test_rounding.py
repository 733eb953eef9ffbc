"""mcuq/quant/rounding.py: scales, round-to-nearest, GPTQ and AdaRound at 8, 4, 2 and 1 bits."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mcuq import ir
from mcuq.errors import McuqError
from mcuq.quant import rounding as R
from mcuq.quant.values import quantize_symmetric
from mcuq.reference import run_graph
from tests.util.float_models import Builder

BITS = (8, 4, 2, 1)


def correlated(rng: np.random.Generator, n: int, k: int, rank: int = 6, mix: np.ndarray | None = None) -> np.ndarray:
    """Layer inputs with strongly correlated columns (a few factors through ``mix`` plus noise), as real activations
    have."""
    mix = rng.standard_normal((rank, k)) if mix is None else mix
    return rng.standard_normal((n, len(mix))) @ mix + 0.2 * rng.standard_normal((n, k))


def output_error(w, q, s, x) -> float:
    return float(np.sum(((w - q * s[:, None]) @ x.T) ** 2))


@pytest.fixture(scope="module")
def layer():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((24, 48))
    mix = rng.standard_normal((6, 48))
    return w, correlated(rng, 800, 48, mix=mix), correlated(np.random.default_rng(2), 400, 48, mix=mix)


def test_nearest_rounds_half_away_and_clamps_narrow():
    w = np.array([[-2.5, -0.5, 0.0, 0.5, 1.5, 100.0, -100.0]])
    s = np.ones(1)
    assert R.quantize_nearest(w, s, 8).tolist() == [[-3, -1, 0, 1, 2, 100, -100]]
    assert R.quantize_nearest(w, s, 4).tolist() == [[-3, -1, 0, 1, 2, 7, -7]]
    assert R.quantize_nearest(w, s, 2).tolist() == [[-1, -1, 0, 1, 1, 1, -1]]
    assert R.quantize_nearest(w, s, 1).tolist() == [[-1, -1, 1, 1, 1, 1, -1]]  # binary: sign, 0 -> +1
    assert R.quantize_nearest(np.array([[-0.0]]), s, 1).tolist() == [[1]]


def test_nearest_at_8_bits_is_the_int8_rule(layer):
    w = layer[0]
    s = (np.abs(w).max(axis=1) / 127).astype(np.float32)
    np.testing.assert_array_equal(R.quantize_nearest(w, s, 8), quantize_symmetric(w, s, 0))


@pytest.mark.parametrize("bits", BITS)
def test_scales_are_normal_float32_and_beat_max_scaling(layer, bits):
    w = layer[0].copy()
    w[3] = 0.0  # an all-zero channel
    w[5] *= 1e-30  # tiny but normal weights
    s = R.choose_scales(w, bits)
    assert s.shape == (24,) and np.all(np.isfinite(s))
    assert np.all(s >= np.finfo(np.float32).tiny)
    np.testing.assert_array_equal(s, s.astype(np.float32).astype(np.float64))
    assert s[3] == R.TINY_SCALE
    if bits > 1:  # the grid holds max|w| / qmax, so the chosen scales are never worse per channel
        s_max = (np.abs(w).max(axis=1) / R.QMAX[bits]).astype(np.float32).astype(np.float64)
        s_max[3] = 1.0
        e = R.weight_error(w, R.quantize_nearest(w, s, bits), s)
        e_max = R.weight_error(w, R.quantize_nearest(w, s_max, bits), s_max)
        assert np.all(e <= e_max * (1 + 1e-9))


def test_binary_scale_is_the_weighted_mean_magnitude():
    w = np.array([[1.0, -3.0, 2.0, 0.0]])
    assert R.choose_scales(w, 1)[0] == np.float32(1.5)
    assert R.choose_scales(w, 1, np.array([1.0, 0.0, 1.0, 0.0]))[0] == np.float32(1.5)
    assert R.choose_scales(w, 1, np.array([0.0, 1.0, 0.0, 0.0]))[0] == np.float32(3.0)


def test_hessian_weighted_scales_fit_the_weighted_error(layer):
    w, x, _ = layer
    hd = np.diag(R.hessian(x))
    s_h, s = R.choose_scales(w, 4, hd), R.choose_scales(w, 4)
    err = lambda sc: np.sum(hd * (w - R.quantize_nearest(w, sc, 4) * sc[:, None]) ** 2)  # noqa: E731
    assert err(s_h) <= err(s)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("act_order", [True, False])
def test_gptq_with_identity_hessian_is_nearest(layer, bits, act_order):
    w = layer[0]
    s = R.choose_scales(w, bits)
    q = R.gptq(w, s, bits, np.eye(w.shape[1]), act_order=act_order, block=7)
    np.testing.assert_array_equal(q, R.quantize_nearest(w, s, bits))


@pytest.mark.parametrize("bits", (4, 2, 1))
def test_gptq_and_adaround_beat_nearest_on_correlated_inputs(layer, bits):
    """Less layer-output error than round-to-nearest, on the calibration inputs and on held-out ones."""
    w, x, x_test = layer
    s = R.choose_scales(w, bits)
    qn = R.quantize_nearest(w, s, bits)
    for q in (R.gptq(w, s, bits, R.hessian(x)), R.adaround(w, s, bits, x, iters=300)):
        assert q.dtype == np.int8
        for xs in (x, x_test):
            assert output_error(w, q, s, xs) < 0.8 * output_error(w, qn, s, xs)


@pytest.mark.parametrize("bits", BITS)
def test_values_in_the_narrow_range(layer, bits):
    w, x, _ = layer
    w = w * 3  # many weights beyond the clipped range
    s = R.choose_scales(w, bits) / 2
    qmax = R.QMAX[bits]
    for q in (R.gptq(w, s, bits, R.hessian(x)), R.adaround(w, s, bits, x, iters=50)):
        assert q.dtype == np.int8 and q.shape == w.shape
        assert np.all(np.abs(q) <= qmax)
        if bits == 1:
            assert set(np.unique(q)) <= {-1, 1}


def test_deterministic_whatever_the_thread_count(layer):
    w, x, _ = layer
    s = R.choose_scales(w, 2)
    h = R.hessian(x)
    with threadpool_limits(limits=1, user_api="blas"):
        a = (R.gptq(w, s, 2, h), R.adaround(w, s, 2, x, iters=100), R.hessian(x))
    with threadpool_limits(limits=2, user_api="blas"):
        b = (R.gptq(w, s, 2, h), R.adaround(w, s, 2, x, iters=100), R.hessian(x))
    for u, v in zip(a, b, strict=True):
        assert u.tobytes() == v.tobytes()
    q1 = R.adaround(w, s, 2, x, iters=60, batch=64, seed=3)
    assert q1.tobytes() == R.adaround(w, s, 2, x, iters=60, batch=64, seed=3).tobytes()


def test_adaround_through_the_rows_equals_through_the_hessian():
    """Fewer samples than inputs: the gradient goes through X (cheaper); same result as through H."""
    rng = np.random.default_rng(4)
    x = correlated(rng, 30, 64)
    w = rng.standard_normal((5, 64))
    s = R.choose_scales(w, 4)
    np.testing.assert_array_equal(
        R.adaround(w, s, 4, x, iters=200), R.adaround(w, s, 4, hessian=R.hessian(x), iters=200)
    )


def test_singular_and_dead_inputs():
    rng = np.random.default_rng(5)
    x = correlated(rng, 10, 40, rank=3)  # rank 10 < 40: a singular Hessian
    x[:, [0, 7]] = 0.0  # two inputs that never fire
    w = rng.standard_normal((6, 40))
    s = R.choose_scales(w, 4)
    near = R.quantize_nearest(w, s, 4)
    for q in (R.gptq(w, s, 4, R.hessian(x), damp=0.0), R.adaround(w, s, 4, x, iters=100)):
        np.testing.assert_array_equal(q[:, [0, 7]], near[:, [0, 7]])  # dead inputs keep their nearest value
    assert output_error(w, R.gptq(w, s, 4, R.hessian(x)), s, x) < output_error(w, near, s, x)


@pytest.mark.parametrize("bits", BITS)
def test_one_input_and_zero_weights(bits):
    x = np.linspace(-1, 1, 50)[:, None]
    w = np.array([[0.3], [-2.0], [0.0]])
    s = R.choose_scales(w, bits)
    for q in (R.gptq(w, s, bits, R.hessian(x)), R.adaround(w, s, bits, x, iters=20)):
        np.testing.assert_array_equal(q, R.quantize_nearest(w, s, bits))
    zero = np.zeros((2, 5))
    assert np.all(R.choose_scales(zero, bits) == R.TINY_SCALE)
    assert np.all(R.gptq(zero, R.choose_scales(zero, bits), bits, np.zeros((5, 5))) == (1 if bits == 1 else 0))


def test_grouped_gptq_is_gptq_per_channel():
    rng = np.random.default_rng(6)
    w = rng.standard_normal((5, 9))
    hs = np.stack([R.hessian(correlated(rng, 200, 9, rank=3)) for _ in range(5)])
    s = R.choose_scales(w, 2)
    q = R.gptq_grouped(w, s, 2, hs)
    for r in range(5):
        np.testing.assert_array_equal(q[r], R.gptq(w[r : r + 1], s[r : r + 1], 2, hs[r])[0])
    qa = R.adaround(w, s, 2, hessian=hs, iters=200)
    assert R.weight_error(w, qa, s, hs).sum() < R.weight_error(w, R.quantize_nearest(w, s, 2), s, hs).sum()


def test_pick_rows_takes_the_best_candidate_per_channel(layer):
    w, x, _ = layer
    h = R.hessian(x)
    s = R.choose_scales(w, 2)
    a, b = R.quantize_nearest(w, s, 2), R.gptq(w, s, 2, h)
    q, s2 = R.pick_rows(w, h, [(a, s), (b, s)])
    best = np.minimum(R.weight_error(w, a, s, h), R.weight_error(w, b, s, h))
    np.testing.assert_allclose(R.weight_error(w, q, s2, h), best)


def test_hessian_streams_chunks(layer):
    x = layer[1]
    np.testing.assert_allclose(R.hessian(iter([x[:300], x[300:]])), x.T @ x / len(x), rtol=1e-12)
    dw = np.random.default_rng(7).standard_normal((40, 9, 3))
    np.testing.assert_allclose(R.hessian(dw), np.einsum("nkc,nlc->ckl", dw, dw) / 40, rtol=1e-12)


def test_bad_input_is_refused():
    w = np.ones((2, 3))
    with pytest.raises(McuqError, match="infinite or NaN"):
        R.quantize_nearest(np.array([[np.nan]]), np.ones(1), 4)
    with pytest.raises(McuqError, match="scale"):
        R.gptq(w, np.array([1.0, 0.0]), 4, np.eye(3))
    with pytest.raises(McuqError, match="Hessian"):
        R.gptq(w, np.ones(2), 4, np.full((3, 3), np.inf))
    with pytest.raises(ValueError, match="widths"):
        R.choose_scales(w, 3)


@pytest.mark.parametrize("kind", ["conv", "dw", "fc"])
def test_fan_in_rows_reproduce_the_layer(kind):
    """Rows times weight rows give the float kernel's output (stride 2, SAME padding, depth multiplier 2)."""
    b = Builder("rows", 0)
    x = b.input((1, 7, 6, 3))
    if kind == "conv":
        y = b.conv(x, 4, k=3, stride=2)
    elif kind == "dw":
        y = b.dwconv(x, k=3, mult=2, stride=2)
    else:
        y = b.fc(b.reshape(x, (1, 126)), 5)
    g = b.graph(y)
    op = g.ops[-1]
    xv = np.random.default_rng(8).uniform(-1, 1, (1, 7, 6, 3)).astype(np.float32)
    env = run_graph(g, [xv])
    wt = g.tensors[op.inputs[1]]
    w = np.asarray(wt.data, np.float64)
    bias = np.asarray(g.tensors[op.inputs[2]].data, np.float64)
    rows = R.fan_in_rows(op.kind, op.attrs, env[op.inputs[0]], wt.shape)
    if op.kind is ir.OpKind.DEPTHWISE_CONV2D:
        got = np.einsum("nkc,kc->nc", rows, w.reshape(-1, w.shape[3]))
    else:
        got = rows @ w.reshape(w.shape[0], -1).T
    np.testing.assert_allclose(got + bias, env[y].reshape(got.shape), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bits", (4, 2, 1))
def test_gptq_search_is_never_worse_than_gptq_at_its_base_scales(layer, bits):
    w, x, _ = layer
    h = R.hessian(x)
    s = R.choose_scales(w, bits, np.diag(h))
    q, s2 = R.gptq_search(w, bits, h)
    assert q.dtype == np.int8 and np.all(np.abs(q) <= R.QMAX[bits])
    np.testing.assert_array_equal(s2, s2.astype(np.float32).astype(np.float64))
    assert np.all(R.weight_error(w, q, s2, h) <= R.weight_error(w, R.gptq(w, s, bits, h), s, h) * (1 + 1e-9))
    hs = np.stack([R.hessian(correlated(np.random.default_rng(r), 100, 9, rank=2)) for r in range(3)])
    qg, sg = R.gptq_search(w[:3, :9], bits, hs)
    sb = R.choose_scales(w[:3, :9], bits, np.diagonal(hs, axis1=1, axis2=2))
    base = R.weight_error(w[:3, :9], R.gptq_grouped(w[:3, :9], sb, bits, hs), sb, hs)
    assert np.all(R.weight_error(w[:3, :9], qg, sg, hs) <= base * (1 + 1e-9))
