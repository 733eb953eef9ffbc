"""Review of issue 10's kernel paths: what a careless user or a hostile model may do to specialize, bands and the
kernel-path choice. Regression tests for what the review found, and checks of what was right but untested."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.api import compile_model
from mcuq.errors import McuqError
from mcuq.lower import lower
from mcuq.lower.specialize import specialize
from tests.kernels.test_conv import Case, build_graph
from tests.unit.test_bands import PW, chain
from tests.util.harness import random_int8, reference_outputs

C, D = ir.OpKind.CONV2D, ir.OpKind.DEPTHWISE_CONV2D
SHAPE = (1, 6, 5, 8)


def shared_chain(share_bias: bool = True, in_zp_a: int = -3, in_zp_b: int = 40) -> ir.Graph:
    """A 1x1 conv then a 1x1 conv over its output using the SAME weight (and bias) tensor, with different input
    zero points: each layer's folded bias differs although both fold the same model tensor."""
    a = Case("p", in_shape=SHAPE, out_c=8, in_zp=in_zp_a, out_zp=in_zp_b, seed=1, **PW)
    b = Case("s", in_shape=SHAPE, out_c=8, in_zp=in_zp_b, seed=2, **PW)
    g = chain(a, b)
    first, second = g.ops
    ins = list(second.inputs)
    ins[1] = first.inputs[1]
    if share_bias:
        ins[2] = first.inputs[2]
    tensors = {k: v for k, v in g.tensors.items() if k != "w2" and not (share_bias and k == "b2")}
    return ir.Graph("shared", tensors, (first, replace(second, inputs=tuple(ins))), g.inputs, g.outputs)


@pytest.mark.parametrize("share_bias", [True, False], ids=["shared_bias", "own_bias"])
@pytest.mark.parametrize("path", ["dsp", "mve"])
def test_band_of_two_layers_sharing_weights_and_bias_is_bit_exact(path, share_bias):
    """Regression: specialize named each layer's folded bias '<bias>_folded' fresh per layer only, so two layers
    folding one bias tensor got the same const name; the band merged their consts and the first layer ran with the
    second's folded bias (161 of 720 values wrong)."""
    g = shared_chain(share_bias)
    cm = compile_model(g, kernels=path, sanitize=True)
    assert [la.kernel_name for la in cm.layers] == ["mcuq_band_conv_s8"], "the band must be chosen here"
    x = random_int8(SHAPE, 3, 11)
    (ref,) = reference_outputs(g, x).values()
    got = cm.run(x)[0]
    np.testing.assert_array_equal(got, ref.reshape(got.shape))


@pytest.mark.parametrize("path", ["dsp", "mve"])
def test_specialized_const_names_are_unique_across_layers(path):
    g = shared_chain(True)
    layers = specialize(g, lower(g), path)
    by_name: dict = {}
    for la in layers:
        for n, t in la.consts.items():  # a name may be shared only by the same constant (shared weights, made once)
            assert by_name.setdefault(n, t) is t, n
    assert not set(by_name) & set(g.tensors), "a const named like a model tensor"
    if path == "mve":  # both layers read one re-laid-out copy of the shared weights
        assert layers[0].args[1] == layers[1].args[1]
    a, b = (la.consts[str(la.args[2])] for la in layers)
    assert not np.array_equal(a.data, b.data), "the two layers' folded biases must differ (different input zp)"


def test_specialized_names_avoid_model_tensor_names():
    """A model tensor already called '<weights>_mve' or '<bias>_folded': the consts get other names."""
    g = build_graph(Case("c", C, (1, 5, 5, 3), 4, (3, 3), in_zp=7, seed=3))
    extra = {n: replace(g.tensors["b"], name=n) for n in ("w_mve", "b_folded")}
    g = ir.Graph(g.name, {**g.tensors, **extra}, g.ops, g.inputs, g.outputs)
    (layer,) = specialize(g, lower(g), "mve")
    assert layer.args[1] not in g.tensors and layer.args[2] not in g.tensors, layer.args


@pytest.mark.parametrize("cin, cout", [(1, 2), (1, 3), (1, 8), (2, 3), (3, 5)])
@pytest.mark.parametrize("path", ["dsp", "mve"])
def test_pointwise_conv_with_few_input_channels_reads_no_byte_past_the_weights(path, cin, cout):
    """A 1x1 conv with K = input.c = 1: the dsp conv must not read a whole weight word past the filter's end
    (ASan global-buffer-overflow in dot4 seen during the review on an in-progress mcuq_conv2d_s8_dsp.c)."""
    case = Case("c", C, (1, 4, 4, cin), cout, (1, 1), in_zp=-20, seed=cin * 10 + cout)
    g = build_graph(case)
    cm = compile_model(g, kernels=path, sanitize=True)
    x = random_int8(case.in_shape, 3, 5)
    (ref,) = reference_outputs(g, x).values()
    got = cm.run(x)[0]
    np.testing.assert_array_equal(got, ref.reshape(got.shape))


@pytest.mark.parametrize("which", ["w", "b"])
@pytest.mark.parametrize("kind", [C, D])
@pytest.mark.parametrize("path", ["portable", "dsp", "mve"])
def test_weights_or_bias_given_as_an_activation_is_a_clean_error(kind, which, path):
    """A model whose bias (or weights) is a graph input, not a constant: one McuqError line on every path (the
    fold in specialize must never see it)."""
    g = build_graph(Case("p", kind, (1, 6, 5, 8), 8, (3, 3), seed=1))
    tensors = {**g.tensors, which: replace(g.tensors[which], data=None)}
    g = ir.Graph("act", tensors, g.ops, ("x", which), g.outputs)
    with pytest.raises(McuqError, match="must be a constant") as e:
        compile_model(g, kernels=path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("bad", ["MVE", "helium", "", "dsp ", None, 1, ("dsp",)])
def test_bad_kernels_argument_is_one_line_mcuq_error(bad):
    with pytest.raises(McuqError) as e:
        compile_model(build_graph(Case("c", C, (1, 4, 4, 2), 2, seed=1)), kernels=bad)
    assert "kernels" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("path", ["portable", "dsp", "mve"])
def test_compiling_twice_gives_identical_files(path):
    g = build_graph(Case("dw", D, (1, 9, 10, 8), 8, (3, 3), padding=ir.Padding.SAME, in_zp=-9, seed=11))
    a, b = compile_model(g, kernels=path), compile_model(g, kernels=path)
    assert a.kernels == path and a.files == b.files


def test_fuzz_worker_picks_the_kernel_path(monkeypatch):
    """``python -m tests.fuzz.run --kernels mve`` reaches every compile_model call of the workers."""
    from tests.fuzz import judge, worker

    monkeypatch.setattr(mcuq, "compile_model", mcuq.compile_model)  # restored after the test
    monkeypatch.setenv(worker.KERNELS_ENV, "mve")
    assert worker.use_kernels() == "mve"
    cm = mcuq.compile_model(build_graph(Case("c", C, (1, 4, 4, 2), 2, seed=1)))
    assert cm.kernels == "mve" and cm.layers[0].kernel_name == "mcuq_conv2d_s8_mve"
    assert judge._cli_kernels() == ["--kernels", "mve"]
    monkeypatch.delenv(worker.KERNELS_ENV)
    assert judge._cli_kernels() == []
