"""Fixed quantization (``mcuq.quant.fixed.quantize_fixed``): an integer model taken apart into a float graph and its
own quantization parameters must come back as the same integer model; missing edges, requantizes and refusals."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.errors import McuqError
from mcuq.frontend import load
from mcuq.quant import ActQuant, WeightQuant, quantize_fixed
from mcuq.quant.evaluate import run_batch
from mcuq.quant.fixed import NOTES_META
from tests.util.float_models import float_model

K = ir.OpKind
F32 = ir.DType.FLOAT32
WEIGHTED = (K.CONV2D, K.DEPTHWISE_CONV2D, K.FULLY_CONNECTED)


def take_apart(q: ir.Graph):
    """The float graph of integer graph ``q`` (weights and biases dequantized, activations float32) and ``q``'s own
    activation quantization, integer weights and biases, keyed by tensor name."""
    tensors, acts, weights, biases = {}, {}, {}, {}
    layer_of = {}
    for op in q.ops:
        if op.kind in WEIGHTED:
            layer_of[op.inputs[1]] = ("w", op)
            if len(op.inputs) > 2 and op.inputs[2]:
                layer_of[op.inputs[2]] = ("b", op)
    for name, t in q.tensors.items():
        qp = t.qparams
        if t.is_const:
            assert qp is not None
            data = t.data.astype(np.float64)
            kind = layer_of.get(name, ("c", None))[0]
            if qp.per_channel:
                shape = [1] * data.ndim
                shape[qp.axis] = -1
                s = np.asarray(qp.scale).reshape(shape)
                z = np.asarray(qp.zero_point).reshape(shape)
            else:
                s, z = qp.scale[0], qp.zero_point[0]
            fdata = ((data - z) * s).astype(np.float32)
            if kind == "w":
                weights[name] = WeightQuant(t.data.copy(), np.asarray(qp.scale, np.float32), t.dtype.bits)
            elif kind == "b":
                biases[name] = t.data.copy()
            else:
                acts[name] = ActQuant(qp.scale[0], qp.zero_point[0], t.dtype.value)
            fdata.flags.writeable = False
            tensors[name] = ir.Tensor(name, t.shape, F32, None, fdata)
        else:
            acts[name] = ActQuant(t.scale, t.zero_point, t.dtype.value)
            tensors[name] = ir.Tensor(name, t.shape, F32)
    fg = ir.Graph(q.name, tensors, q.ops, q.inputs, q.outputs)
    return fg, acts, weights, biases


def assert_same_graph(a: ir.Graph, b: ir.Graph) -> None:
    assert [(op.kind, op.inputs, op.outputs, op.attrs) for op in a.ops] == [
        (op.kind, op.inputs, op.outputs, op.attrs) for op in b.ops
    ]
    assert a.inputs == b.inputs and a.outputs == b.outputs
    used = {n for op in a.ops for n in (*op.inputs, *op.outputs) if n}
    for name in used:
        ta, tb = a.tensors[name], b.tensors[name]
        assert (ta.shape, ta.dtype, ta.qparams) == (tb.shape, tb.dtype, tb.qparams), name
        if ta.is_const:
            assert np.array_equal(ta.data, tb.data), name


def random_inputs(g: ir.Graph, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for name in g.inputs:
        t = g.tensors[name]
        lo, hi = t.dtype.int_range
        out.append(rng.integers(lo, hi + 1, size=(n, *t.shape)).astype(t.dtype.np))
    return out


def assert_round_trip(q: ir.Graph, n: int = 8) -> mcuq.QuantizedModel:
    fg, acts, weights, biases = take_apart(q)
    qm = quantize_fixed(fg, acts, weights, biases)
    assert qm.report.notes == () and NOTES_META not in qm.graph.meta
    assert_same_graph(q, qm.graph)
    xs = random_inputs(q, n, 0)
    for a, b in zip(run_batch(q, xs), run_batch(qm.graph, xs), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    return qm


PTQ_CASES = ["conv_same_relu", "dw_mult2_s2", "fc_relu", "small_cnn", "residual", "concat", "softmax", "avg_pool",
             "max_pool", "pad", "transpose", "mean", "mul_const_broadcast", "tanh", "reshape"]  # fmt: skip


@pytest.mark.parametrize("case", PTQ_CASES)
def test_round_trip_of_ptq_models(case):
    fm = float_model(case)
    rng = np.random.default_rng(1)
    calib = [rng.uniform(-1, 1, size=(4, *fm.graph.tensors[n].shape)).astype(np.float32) for n in fm.graph.inputs]
    q = mcuq.quantize(fm.graph, calib[0], method="minmax", bias_correction=False).graph
    assert_round_trip(q)


@pytest.mark.parametrize(
    "path",
    ["tflm/hello_world_int8.tflite", "mlperf_tiny/ad01_int8.tflite", "mlperf_tiny/kws_ref_model.tflite",
     "mlperf_tiny/pretrainedResnet_quant.tflite", "mlperf_tiny/vww_96_int8.tflite"],
)  # fmt: skip
def test_round_trip_of_shared_int8_models(path, shared_models):
    p = shared_models / path
    if not p.is_file():
        pytest.skip(f"{p} is absent (the shared models are not in this checkout)")
    assert_round_trip(load(p), n=2)


def ptq_graph(case: str, **kw) -> ir.Graph:
    fm = float_model(case)
    x = np.random.default_rng(1).uniform(-1, 1, size=(4, *fm.graph.tensors[fm.graph.inputs[0]].shape))
    return mcuq.quantize(fm.graph, x.astype(np.float32), method="minmax", bias_correction=False, **kw).graph


def producer(g: ir.Graph, kind: ir.OpKind) -> ir.Op:
    return next(op for op in g.ops if op.kind is kind)


@pytest.mark.parametrize(("case", "kind"), [("reshape", K.RESHAPE), ("max_pool", K.MAX_POOL2D), ("pad", K.PAD),
                                            ("transpose", K.TRANSPOSE), ("softmax", K.SOFTMAX)])  # fmt: skip
def test_missing_edge_takes_the_neighbour_and_says_so(case, kind):
    q = ptq_graph(case)
    fg, acts, weights, biases = take_apart(q)
    out = producer(q, kind).outputs[0]
    del acts[out]  # forward: the output takes its input's (softmax: TFLite's fixed output)
    qm = quantize_fixed(fg, acts, weights, biases)
    assert_same_graph(q, qm.graph)
    assert any(f"'{out}' has no given quantization" in n for n in qm.report.notes)
    assert f"note: '{out}' has no given quantization" in qm.report.table()
    assert json.loads(qm.graph.meta[NOTES_META]) == list(qm.report.notes)
    assert load(qm.tflite_bytes()).ops  # the notes do not get in the way of writing the model
    if kind is not K.SOFTMAX:  # backward: a model input takes the output's
        fg, acts, weights, biases = take_apart(q)
        x = producer(q, kind).inputs[0]
        del acts[x]
        qm = quantize_fixed(fg, acts, weights, biases)
        assert_same_graph(q, qm.graph)
        assert any(f"'{x}' has no given quantization: takes '{out}''s" in n for n in qm.report.notes)


def test_unresolvable_edge_names_the_tensor_and_op():
    q = ptq_graph("conv_same_relu")
    fg, acts, weights, biases = take_apart(q)
    conv = producer(q, K.CONV2D)
    del acts[conv.outputs[0]]
    with pytest.raises(McuqError, match=rf"activation '{conv.outputs[0]}' \(the output of op 0 \(CONV2D"):
        quantize_fixed(fg, acts, weights, biases)


def test_softmax_with_other_parameters_gets_a_quantize():
    q = ptq_graph("softmax")
    fg, acts, weights, biases = take_apart(q)
    out = producer(q, K.SOFTMAX).outputs[0]
    acts[out] = ActQuant(1.0 / 128.0, 0)
    qm = quantize_fixed(fg, acts, weights, biases)
    g = qm.graph
    assert [op.kind for op in g.ops] == [K.SOFTMAX, K.QUANTIZE]
    sm, rq = g.ops
    assert g.tensors[sm.outputs[0]].qparams == ir.QParams((1.0 / 256.0,), (-128,))
    assert rq.outputs == (out,) and g.tensors[out].qparams == ir.QParams((1.0 / 128.0,), (0,))
    assert any("QUANTIZE requantizes it" in n for n in qm.report.notes)
    # the softmax's own result, requantized from (1/256, -128) to (1/128, 0): (q + 128) / 2, half away from zero
    xs = random_inputs(q, 16, 3)
    (want,) = run_batch(q, xs)
    (got,) = run_batch(g, xs)
    expect = np.floor((want.astype(np.int32) + 128) / 2 + 0.5).astype(np.int8)
    assert np.array_equal(got, expect)


def test_pass_through_with_two_given_parameters_gets_a_quantize():
    q = ptq_graph("max_pool")
    fg, acts, weights, biases = take_apart(q)
    pool = producer(q, K.MAX_POOL2D)
    s, z = q.tensors[pool.outputs[0]].scale, q.tensors[pool.outputs[0]].zero_point
    acts[pool.outputs[0]] = ActQuant(s * 2, z)
    qm = quantize_fixed(fg, acts, weights, biases)
    kinds = [op.kind for op in qm.graph.ops]
    assert kinds == [K.MAX_POOL2D, K.QUANTIZE]
    mid = qm.graph.ops[0].outputs[0]
    assert qm.graph.tensors[mid].qparams == q.tensors[pool.inputs[0]].qparams
    assert qm.graph.tensors[pool.outputs[0]].qparams == ir.QParams((np.float32(s * 2).item(),), (z,))


def _refusal(mutate, match):
    q = ptq_graph("small_cnn")
    fg, acts, weights, biases = take_apart(q)
    conv = producer(q, K.CONV2D)
    mutate(q, conv, acts, weights, biases)
    with pytest.raises(McuqError, match=match):
        quantize_fixed(fg, acts, weights, biases)


def _set_act(**kw):
    def f(q, conv, acts, weights, biases):
        acts[conv.outputs[0]] = replace(acts[conv.outputs[0]], **kw)

    return f


def _set_weight(fn):
    def f(q, conv, acts, weights, biases):
        weights[conv.inputs[1]] = fn(weights[conv.inputs[1]])

    return f


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (_set_act(scale=0.0), "scale 0.0 must be positive and finite"),
        (_set_act(scale=float("nan")), "must be positive and finite"),
        (_set_act(scale=-0.5), "must be positive and finite"),
        (_set_act(scale=1e-60), "as float32 too"),
        (_set_act(scale="0.1"), "is not a number"),
        (_set_act(zero_point=128), r"zero point 128 is outside int8's \[-128, 127\]"),
        (_set_act(zero_point=3, dtype="int16"), r"zero point 3 is outside int16's \[0, 0\]"),
        (_set_act(zero_point=1.5), "is not an integer"),
        (_set_act(dtype="uint8"), "dtype 'uint8'"),
        (_set_weight(lambda w: replace(w, values=np.full_like(w.values, -128))), r"8-bit range \[-127, 127\]"),
        (_set_weight(lambda w: replace(w, bits=4)), r"4-bit range \[-7, 7\]"),
        (_set_weight(lambda w: replace(w, bits=1, values=np.zeros_like(w.values))), r"1-bit range \{-1, 1\}"),
        (_set_weight(lambda w: replace(w, bits=3)), "bits 3 is not one of"),
        (_set_weight(lambda w: replace(w, values=w.values[:1])), "values have shape"),
        (_set_weight(lambda w: replace(w, values=w.values.astype(np.float32))), "not integers"),
        (_set_weight(lambda w: replace(w, scales=w.scales[:2])), "give 1 or"),
        (_set_weight(lambda w: replace(w, scales=-w.scales)), "scales must be positive"),
        (lambda q, c, a, w, b: a.update(nope=ActQuant(0.1, 0)), "names tensor 'nope', which the float graph does not"),
        (lambda q, c, a, w, b: w.update({c.outputs[0]: w[c.inputs[1]]}), "is not the weight tensor"),
        (lambda q, c, a, w, b: a.update({c.inputs[1]: ActQuant(0.1, 0)}), "give it in weights or biases"),
        (lambda q, c, a, w, b: b.update({c.inputs[2]: b[c.inputs[2]] + 5}), "is not the float bias at the implied"),
        (lambda q, c, a, w, b: b.update({c.inputs[2]: b[c.inputs[2]][:1]}), "values of shape"),
        (lambda q, c, a, w, b: w.pop(c.inputs[1]), "a bias is given only with its layer's weights"),
    ],
)
def test_refusals(mutate, match):
    _refusal(mutate, match)


def test_bad_arguments():
    q = ptq_graph("fc")
    fg, acts, weights, biases = take_apart(q)
    with pytest.raises(McuqError, match="must be an ir.Graph"):
        quantize_fixed(b"model", acts)
    with pytest.raises(McuqError, match="activations must be a mapping"):
        quantize_fixed(fg, [1, 2])
    with pytest.raises(McuqError, match="expected an ActQuant"):
        quantize_fixed(fg, {**acts, fg.inputs[0]: (0.1, 0)})


def test_int16_activation_under_an_int8_op_is_refused():
    q = ptq_graph("reshape")
    fg, acts, _, _ = take_apart(q)
    out = q.outputs[0]
    acts[out] = ActQuant(0.001, 0, "int16")
    with pytest.raises(McuqError, match=f"activation '{out}' is given as int16"):
        quantize_fixed(fg, acts)


def test_missing_weights_and_biases_are_quantized_as_ptq_does():
    """Without weights and biases, the layer's weights are PTQ's 8-bit per-channel ones: the same integer graph as
    PTQ (without bias correction) with the same activation quantization."""
    q = ptq_graph("small_cnn")
    fg, acts, _, _ = take_apart(q)
    fm = float_model("small_cnn")
    qm = quantize_fixed(fm.graph, {k: v for k, v in acts.items() if k in fm.graph.tensors})
    assert_same_graph(q, qm.graph)


def test_calib_fills_the_sqnr():
    q = ptq_graph("conv_same_relu")
    fg, acts, weights, biases = take_apart(q)
    fm = float_model("conv_same_relu")
    x = np.random.default_rng(2).uniform(-1, 1, size=(4, *fm.graph.tensors[fm.graph.inputs[0]].shape))
    qm = quantize_fixed(fm.graph, {k: v for k, v in acts.items() if k in fm.graph.tensors}, weights, biases,
                        calib=x.astype(np.float32))  # fmt: skip
    assert qm.report.samples == 4 and qm.report.sqnr_db is not None and qm.report.sqnr_db > 20
    assert quantize_fixed(fg, acts, weights, biases).report.samples == 0


@pytest.mark.parametrize("bits", [4, 2, 1])
def test_low_bit_weights_round_trip_and_compile(bits, tmp_path):
    q = ptq_graph("small_cnn", weight_bits=bits, rounding="nearest")
    qm = assert_round_trip(q)
    wts = [op.inputs[1] for op in qm.graph.ops if op.kind in WEIGHTED]
    assert {qm.graph.tensors[w].dtype.bits for w in wts} == {bits}
    path = qm.save(tmp_path / "m.tflite")
    back = load(path)
    assert {back.tensors[w].dtype.bits for w in wts} == {bits}
    from mcuq.cli import main

    assert main(["compile", str(path), "-o", str(tmp_path / "out")]) == 0
    assert any((tmp_path / "out").rglob("*.c"))
    cm = mcuq.compile_model(path)
    assert {cm.graph.tensors[w].dtype.bits for w in wts if w in cm.graph.tensors} == {bits}
    xs = random_inputs(q, 4, 1)
    for a, b in zip(run_batch(q, xs), cm.run(xs), strict=True):
        assert np.array_equal(a, b.reshape(a.shape))


@pytest.mark.parametrize("case", ["small_cnn", "softmax", "residual"])
def test_round_trip_16x8(case):
    q = ptq_graph(case, activations="int16")
    assert q.tensors[q.inputs[0]].dtype is ir.DType.INT16
    assert_round_trip(q)


def _conv_then_relu() -> ir.Graph:
    g = float_model("conv_same_relu").graph
    conv = g.ops[0]
    mid = ir.Tensor("pre_relu", g.tensors[conv.outputs[0]].shape, F32)
    relu = ir.Op(K.RELU, "relu", ("pre_relu",), conv.outputs, ir.NoAttrs(), 1)
    conv2 = replace(conv, outputs=("pre_relu",), attrs=replace(conv.attrs, activation=ir.Activation.NONE))
    return ir.Graph(g.name, {**g.tensors, "pre_relu": mid}, (conv2, relu), g.inputs, g.outputs)


def test_relu_fused_into_the_conv_before_it():
    """A float conv then a RELU op, the conv's output without quantization: the RELU is fused into the conv, which
    writes the RELU's output at its given quantization, with a note."""
    q = ptq_graph("conv_same_relu")
    _, acts, weights, biases = take_apart(q)
    qm = quantize_fixed(_conv_then_relu(), acts, weights, biases)
    assert_same_graph(q, qm.graph)
    assert any("'pre_relu'" in n and "folded away" in n for n in qm.report.notes)


def test_concat_inputs_given_otherwise_are_requantized():
    q = ptq_graph("concat")
    fg, acts, weights, biases = take_apart(q)
    cat = producer(q, K.CONCAT)
    first = cat.inputs[0]
    acts[first] = replace(acts[first], scale=acts[first].scale * 1.5)
    qm = quantize_fixed(fg, acts, weights, biases)
    g = qm.graph
    new_cat = producer(g, K.CONCAT)
    rq = next(op for op in g.ops if op.kind is K.QUANTIZE)
    assert rq.inputs == (first,) and new_cat.inputs[0] == rq.outputs[0]
    assert g.tensors[rq.outputs[0]].qparams == g.tensors[cat.outputs[0]].qparams
    assert g.tensors[first].qparams == ir.QParams((np.float32(acts[first].scale).item(),), (acts[first].zero_point,))


def test_relu_output_without_parameters_takes_its_inputs():
    split = _conv_then_relu()
    q = ptq_graph("conv_same_relu")
    _, acts, weights, biases = take_apart(q)
    acts["pre_relu"] = acts.pop(q.outputs[0])
    qm = quantize_fixed(split, acts, weights, biases)
    assert_same_graph(q, qm.graph)
    assert any(f"'{q.outputs[0]}' has no given quantization: takes 'pre_relu''s" in n for n in qm.report.notes)


def test_given_weights_of_a_layer_with_a_folded_batch_norm_are_refused():
    g = float_model("conv_batchnorm").graph
    conv = producer(g, K.CONV2D)
    w = g.tensors[conv.inputs[1]]
    given = WeightQuant(np.ones(w.shape, np.int8), np.full(w.shape[0], 0.01, np.float32))
    with pytest.raises(McuqError, match=r"the float passes changed this constant \(a batch norm folded"):
        quantize_fixed(g, {}, {conv.inputs[1]: given})


def test_native_int4_file_of_given_4_bit_weights(tmp_path):
    q = ptq_graph("conv_same_relu", weight_bits=4, rounding="nearest")
    fg, acts, weights, biases = take_apart(q)
    qm = quantize_fixed(fg, acts, weights, biases)
    back = load(qm.save(tmp_path / "n.tflite", native_int4=True))
    w = producer(back, K.CONV2D).inputs[1]
    assert back.tensors[w].dtype is ir.DType.INT4
    assert np.array_equal(back.tensors[w].data, qm.graph.tensors[w].data)


def _requantized_models():
    """Three models where given parameters make quantize_fixed insert QUANTIZE ops: after a softmax, after a pool,
    before a concat input."""
    out = []
    for case, kind, how in (("softmax", K.SOFTMAX, "out"), ("max_pool", K.MAX_POOL2D, "out"),
                            ("concat", K.CONCAT, "in")):  # fmt: skip
        q = ptq_graph(case)
        fg, acts, weights, biases = take_apart(q)
        op = producer(q, kind)
        name = op.outputs[0] if how == "out" else op.inputs[0]
        acts[name] = ActQuant(acts[name].scale * 1.37, max(-128, acts[name].zero_point - 3))
        g = quantize_fixed(fg, acts, weights, biases).graph
        assert any(o.kind is K.QUANTIZE for o in g.ops)
        out.append(g)
    return out


def test_inserted_quantize_ops_agree_with_the_oracle_and_the_c():
    from tests.util.harness import three_way

    for i, g in enumerate(_requantized_models()):
        xs = random_inputs(g, 16, 5)
        three_way(g, xs, name=f"fixed{i}", compile_c=i == 0)


def test_weights_behind_a_dequantize():
    """A float graph whose weights are a DEQUANTIZE of the integer values (as a QDQ model stores them): the float
    passes fold the DEQUANTIZE, and the given weights apply under its output's name."""
    q = ptq_graph("conv_same_relu")
    fg, acts, weights, biases = take_apart(q)
    conv = producer(q, K.CONV2D)
    w = conv.inputs[1]
    tensors = {**fg.tensors, w: ir.Tensor(w, fg.tensors[w].shape, F32), "w_int8": replace(q.tensors[w], name="w_int8")}
    deq = ir.Op(K.DEQUANTIZE, "deq", ("w_int8",), (w,), ir.NoAttrs(), 0)
    g = ir.Graph(fg.name, tensors, (deq, *fg.ops), fg.inputs, fg.outputs)
    qm = quantize_fixed(g, acts, weights, biases)
    assert_same_graph(q, qm.graph)


def test_hostile_parameters_are_one_line_errors():
    """Random scales (1e-12 .. 1e12), zero points and missing entries: a model, or a one-line McuqError/ModelError."""
    from mcuq.errors import ModelError

    rng = np.random.default_rng(0)
    q = ptq_graph("residual")
    outcomes = set()
    for _ in range(25):
        fg, acts, weights, biases = take_apart(q)
        for k in list(acts):
            r = rng.random()
            if r < 0.15:
                acts[k] = replace(acts[k], scale=float(10 ** rng.uniform(-12, 12)))
            elif r < 0.25:
                acts[k] = replace(acts[k], zero_point=int(rng.integers(-128, 128)))
        for k in list(weights):
            if rng.random() < 0.2:
                weights[k] = replace(weights[k], scales=weights[k].scales * np.float32(10 ** rng.uniform(-6, 6)))
        try:
            qm = quantize_fixed(fg, acts, weights)
            run_batch(qm.graph, random_inputs(qm.graph, 2, 0))
            outcomes.add("ok")
        except (McuqError, ModelError) as e:
            assert "\n" not in str(e)
            outcomes.add("refused")
    assert outcomes == {"ok", "refused"}


def test_unresolvable_model_input_names_its_reader():
    q = ptq_graph("fc")
    fg, acts, weights, biases = take_apart(q)
    del acts[q.inputs[0]]
    with pytest.raises(McuqError, match=rf"activation '{q.inputs[0]}' \(a model input read by op 0 \(FULLY_CONNECTED"):
        quantize_fixed(fg, acts, weights, biases)
