"""The int4 fast kernels (mcuq_conv2d_s8_s4_dsp/_mve, mcuq_fully_connected_s8_s4_dsp/_mve) on the host, where they
run their plain C (the same algorithm, scratch and memory order as with SMLAD or Helium), built with ASan/UBSan:
bit-exact with the numpy mirror of the portable packed kernels (itself checked against the oracle by
test_lowbit.py). The shapes cover every tail K % 8 (dsp) and K % 32 (mve), channels starting mid-byte, pixel
counts that leave a partial block, output counts not a multiple of 4, batches, padding, strides, dilation and
the extreme values (-8 from a native INT4 tensor, inputs -128 and 127). The same graphs run in QEMU on the
Cortex-M4, M55 and M3 in tests/qemu/test_kernel_paths.py (group "lowbit_s4")."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq.kernels.lowbit_fast import POS_DSP_CONV, POS_DSP_FC, POS_MVE, s4_fast_weights, s4_unsigned
from mcuq.quant.packing import pack
from tests.kernels.test_conv import Case
from tests.kernels.test_lowbit import lowbit_graph, merged
from tests.util.harness import reference_outputs
from tests.util.paths import Fallback, inputs_for, kernel_problems

A = ir.Activation
C, F = ir.OpKind.CONV2D, ir.OpKind.FULLY_CONNECTED
SAME = ir.Padding.SAME

CASES = [
    Case("s4_c3x3_cin1", C, (1, 6, 5, 1), 8, (3, 3), padding=SAME, in_zp=-128, out_zp=-128, act=A.RELU, seed=51),  # K 9
    Case("s4_c3x3_cin3_odd", C, (1, 7, 6, 3), 5, (3, 3), padding=SAME, in_zp=17, seed=52),  # K 27: mid-byte channels
    Case("s4_c1x1_cin64", C, (1, 5, 5, 64), 12, in_zp=-3, out_zp=4, seed=53),  # K 64: no tails
    Case("s4_c1x1_cin37_s2", C, (1, 7, 8, 37), 6, (1, 1), (2, 2), in_zp=90, seed=54),  # K 37: tails 5 and 5
    Case("s4_c10x4_kws", C, (1, 25, 10, 1), 8, (10, 4), (2, 2), padding=SAME, in_zp=-30, seed=55),  # K 40
    Case("s4_c3x3_dil_batch", C, (2, 9, 8, 7), 3, (3, 3), (1, 2), (2, 2), padding=SAME, act=A.RELU6, seed=56),  # 63
    Case("s4_c2x2_pt", C, (1, 6, 6, 13), 4, (2, 2), (2, 2), per_channel=False, in_zp=-1, seed=57),  # K 52
    Case("s4_fc_k640", F, (1, 640), 13, in_zp=-128, out_zp=-2, seed=58),
    Case("s4_fc_k37_batch", F, (3, 37), 6, act=A.RELU, in_zp=60, seed=59),
    Case("s4_fc_k8_pt", F, (1, 8), 9, per_channel=False, in_zp=5, seed=60),
    Case("s4_fc_k3", F, (1, 3), 1, seed=61),
    Case("s4_fc_k95", F, (2, 95), 5, in_zp=127, out_zp=-128, seed=62),
]

# the scope of the int4 variants (also tests/qemu/test_kernel_paths.py's FALLBACKS)
FALLBACKS = [
    *(
        Fallback(k, path, lambda p: int(p.bits) != 4, "the fast packed kernels are int4 only")
        for k in ("mcuq_conv2d_s8_lowbit", "mcuq_fully_connected_s8_lowbit")
        for path in ("dsp", "mve")
    ),
    Fallback("mcuq_fully_connected_s8_lowbit", "dsp", lambda p: int(p.weights_zp) != 0, "int4 FC: weights_zp 0"),
    Fallback(
        "mcuq_conv2d_s8_lowbit",
        "mve",
        lambda p: int(p.window.filter.h) * int(p.window.filter.w) * int(p.input.c) < 32,
        "int4 mve conv: K >= 32 (the dsp variant below)",
    ),
    Fallback("mcuq_fully_connected_s8_lowbit", "mve", lambda p: int(p.input_size) < 32, "int4 mve FC: K >= 32"),
]


def s4_graph(case: Case) -> ir.Graph:
    """``lowbit_graph(case, 4)`` with a few weights at -8 (a native INT4 tensor's extra value)."""
    g = lowbit_graph(case, 4)
    w = g.tensors["w"]
    data = np.asarray(w.data).copy()
    flat = data.reshape(-1)
    flat[:: max(1, flat.size // 7)] = -8
    return replace(g, tensors={**g.tensors, "w": replace(w, data=data)})


@pytest.fixture(scope="module")
def graph_and_inputs():
    g = merged("s4_fast", [s4_graph(c) for c in CASES])
    xs = inputs_for(g, 2, seed=11)
    return g, xs, reference_outputs(g, xs)


@pytest.mark.parametrize("path", ["dsp", "mve"])
def test_s4_kernels_match_the_mirror_on_host(graph_and_inputs, path: str) -> None:
    g, xs, ref = graph_and_inputs
    cm = mcuq.compile_model(g, prefix=f"s4_{path}", sanitize=True, kernels=path)
    assert not kernel_problems(cm, "s4_fast", FALLBACKS)
    kinds = [la.kernel_name for la in cm.layers]
    assert sum(k.startswith("mcuq_conv2d_s8_s4") for k in kinds) == 7, kinds
    assert sum(k.startswith("mcuq_fully_connected_s8_s4") for k in kinds) >= 3, kinds  # k8 may be too small on mve
    for name, got in zip(g.outputs, cm.run(xs), strict=True):
        np.testing.assert_array_equal(got, ref[name].reshape(got.shape), err_msg=f"{path}: {name}")


@pytest.mark.parametrize("pos", [POS_DSP_CONV, POS_DSP_FC, POS_MVE], ids=["dsp_conv", "dsp_fc", "mve"])
@pytest.mark.parametrize("rows,k,interleave", [(5, 27, 1), (6, 64, 4), (3, 9, 4), (1, 3, 1), (7, 95, 4)])
def test_weight_layout_is_a_permutation_in_the_same_bytes(pos, rows: int, k: int, interleave: int) -> None:
    rng = np.random.default_rng(rows * 100 + k)
    w = rng.integers(-8, 8, size=(rows, k)).astype(np.int8)
    got = s4_fast_weights(w, rows, pos, interleave)
    assert got.shape == (rows * k,)
    assert pack(got, 4).size == pack(w, 4).size == (rows * k + 1) // 2
    # the kernels' view: group q of row r at group index (pass start + q * width + j), value i at nibble pos[i]
    gsz = len(pos)
    km = k - k % gsz
    for r in range(rows):
        r0 = r - r % interleave
        width = min(interleave, rows - r0)
        for q in range(km // gsz):
            start = (r0 * (km // gsz) + q * width + (r - r0)) * gsz
            for i in range(gsz):
                assert got[start + pos[i]] == w[r, q * gsz + i], (r, q, i)
        t = k - km
        np.testing.assert_array_equal(got[rows * km + r * t : rows * km + (r + 1) * t], w[r, km:])


def test_dsp_nibbles_hold_w_plus_8() -> None:
    """The dsp layouts store u = w + 8 in each nibble (mcuq_s4_fast.h): packed, every nibble of -8..7 reads back as
    its value plus 8, and the byte count is unchanged."""
    w = np.arange(-8, 8, dtype=np.int8)
    packed = pack(s4_unsigned(w), 4)
    nibbles = np.stack([packed & 15, packed >> 4], axis=1).reshape(-1)
    np.testing.assert_array_equal(nibbles, np.arange(16))
    assert packed.size == pack(w, 4).size


def test_other_widths_and_weight_zero_points_keep_the_packed_kernel() -> None:
    g = merged("s4_not", [lowbit_graph(CASES[1], 2), lowbit_graph(CASES[8], 1)])
    cm = mcuq.compile_model(g, prefix="s4_not", kernels="dsp", sanitize=True)
    assert [la.kernel_name for la in cm.layers] == ["mcuq_conv2d_s8_lowbit", "mcuq_fully_connected_s8_lowbit"]


def test_flash_is_the_packed_size() -> None:
    g = merged("s4_flash", [s4_graph(CASES[1]), s4_graph(CASES[8])])
    sizes = {
        path: mcuq.compile_model(g, prefix="s4_flash", kernels=path).model.weight_bytes
        for path in ("portable", "dsp", "mve")
    }
    # conv 5 x 27 int4 = 68 bytes, FC 6 x 37 = 111 bytes, plus the biases (folded on the fast paths: same size)
    assert sizes == dict.fromkeys(sizes, 68 + 111 + 4 * (5 + 6)), sizes
