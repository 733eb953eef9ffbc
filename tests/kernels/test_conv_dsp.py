"""The dsp path of CONV_2D and FULLY_CONNECTED (mcuq_conv2d_s8_dsp, mcuq_fully_connected_s8_dsp) on the host: the
plain-C fallback of the same algorithm, built with ASan/UBSan, bit-exact with the numpy reference (the portable
kernels' mirror) over test_conv.py's cases and odd shapes, and the conv's overlap contract (output == input + D).
The SXTB16/SMLAD path itself runs in QEMU in tests/qemu/test_kernel_paths.py.
"""

from __future__ import annotations

import dataclasses
import subprocess

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq._paths import RUNTIME_C
from mcuq.build import SANITIZE_FLAGS, host_cc
from mcuq.kernels import initializer
from mcuq.kernels.conv_dsp import BLOCK, conv2d_dsp_scratch, fc_dsp_weights
from mcuq.lower import lower
from mcuq.lower.specialize import specialize
from tests.kernels.test_conv import CASES, Case, build_graph, random_inputs
from tests.util.harness import random_int8, reference_outputs

C, F = ir.OpKind.CONV2D, ir.OpKind.FULLY_CONNECTED
SAME, VALID = ir.Padding.SAME, ir.Padding.VALID
A = ir.Activation

ODD = [
    Case("dsp_cin1_k10x4_s2", C, (1, 13, 7, 1), 8, (10, 4), (2, 2), padding=SAME, in_zp=-128, seed=31),
    Case("dsp_cin3_3x3_s2", C, (1, 9, 9, 3), 5, (3, 3), (2, 2), padding=SAME, act=A.RELU, in_zp=127, seed=32),
    Case("dsp_cin2_2x2_odd_cout", C, (1, 5, 6, 2), 7, (2, 2), padding=VALID, in_zp=-77, out_zp=9, seed=33),
    Case("dsp_1x1_cin5", C, (1, 3, 5, 5), 3, seed=34, in_zp=120),  # pointwise, K % 4 == 1, 15 pixels
    Case("dsp_1x1_cin16_s2", C, (1, 7, 7, 16), 9, stride=(2, 2), in_zp=-100, seed=35),
    Case("dsp_1x1_cin8_batch2", C, (2, 3, 3, 8), 6, in_zp=50, seed=36),  # blocks span the batch
    Case("dsp_one_pixel", C, (1, 3, 3, 4), 5, (3, 3), in_zp=-128, seed=37),
    Case("dsp_two_pixels", C, (1, 1, 4, 6), 3, (1, 3), in_zp=90, seed=38),
    Case("dsp_3x3_cin8_same", C, (1, 5, 7, 8), 4, (3, 3), padding=SAME, in_zp=-128, out_zp=-128, seed=39),
    Case("dsp_dilated_cin4", C, (1, 9, 9, 4), 3, (3, 3), dilation=(2, 2), padding=SAME, in_zp=100, seed=40),
    Case("dsp_k1_cout5", C, (1, 3, 3, 1), 5, in_zp=-9, seed=45),  # K < 4: tails read bytewise near the end
    Case("dsp_k2_cout6", C, (1, 2, 5, 2), 6, in_zp=33, seed=46),
    Case("dsp_k3_cout7", C, (1, 4, 2, 3), 7, act=A.RELU, in_zp=-128, seed=47),
    # cin 3: whole-column windows gathered a word at a time (reads past a row stay inside the input, else bytewise)
    Case("dsp_cin3_batch2_dil_h", C, (2, 7, 6, 3), 5, (3, 2), dilation=(2, 1), padding=SAME, in_zp=-5, seed=48),
    Case("dsp_cin3_5x5_s1", C, (1, 6, 9, 3), 4, (5, 5), padding=VALID, in_zp=64, seed=49),
    Case("dsp_fc_5_units_k7", F, (1, 7), 5, in_zp=-128, seed=41),
    Case("dsp_fc_6_units_k9", F, (2, 9), 6, per_channel=False, in_zp=127, seed=42),
    Case("dsp_fc_7_units_k64", F, (1, 64), 7, act=A.RELU, seed=43),
    Case("dsp_fc_1_in", F, (1, 1), 3, in_zp=-128, seed=44),
]
DSP_CASES = [c for c in CASES if c.kind in (C, F)] + ODD


@pytest.mark.parametrize("case", DSP_CASES, ids=lambda c: c.id)
def test_dsp_path_bit_exact(case: Case) -> None:
    g = build_graph(case)
    x = random_inputs(case)
    x[0] = -128  # extremes: the folded sums at their largest
    x[1] = 127
    cm = mcuq.compile_model(g, kernels="dsp", sanitize=True, prefix=case.id)
    (layer,) = cm.layers
    fast = case.kind == C or case.w_zp == 0
    want_kernel = {C: "mcuq_conv2d_s8", F: "mcuq_fully_connected_s8"}[case.kind] + ("_dsp" if fast else "")
    assert layer.kernel_name == want_kernel
    (got,) = cm.run([x])
    want = reference_outputs(g, [x])["y"]
    np.testing.assert_array_equal(got, want.reshape(got.shape), err_msg=case.id)


def test_fc_weight_layout() -> None:
    w = np.arange(6 * 5, dtype=np.int64).reshape(6, 5).astype(np.int8)  # 6 units (4 + 2), rows padded to 8

    class P:
        output_size, input_size = 6, 5

    got = fc_dsp_weights(w, P)
    assert got.size == 6 * 8
    assert list(got[:4]) == [0, 1, 2, 3] and list(got[4:8]) == [5, 6, 7, 8]  # units 0, 1 of inputs 0..3
    assert list(got[16:20]) == [4, 0, 0, 0]  # unit 0, inputs 4..7 (padded)
    assert list(got[32:40]) == [20, 21, 22, 23, 25, 26, 27, 28]  # the 2-wide group


# -- the overlap contract: output at input + D in one buffer --------------------------------------------------------

OVERLAP = [
    Case("ov_3x3_same", C, (1, 9, 8, 5), 6, (3, 3), padding=SAME, in_zp=-128, seed=51),
    Case("ov_1x1_expand", C, (1, 6, 5, 8), 12, in_zp=3, seed=52),
    Case("ov_1x1_shrink", C, (1, 6, 5, 16), 4, in_zp=-9, seed=53),
    Case("ov_3x3_s2", C, (1, 11, 10, 4), 8, (3, 3), (2, 2), padding=SAME, in_zp=17, seed=54),
    Case("ov_10x4_s2_cin1", C, (1, 13, 7, 1), 16, (10, 4), (2, 2), padding=SAME, seed=55),
]


def _overlap_program(layer, g: ir.Graph, x: np.ndarray, shifts: list[int]) -> str:
    arrays: list[str] = []

    def ref(path: str, arr: np.ndarray) -> str:
        name = f"a{len(arrays)}"
        ctype = "int32_t" if arr.dtype == np.int32 else "int8_t"
        arrays.append(f"static const {ctype} {name}[] = {{{', '.join(str(int(v)) for v in arr.reshape(-1))}}};")
        return name

    w = ref("w", np.asarray(g.tensors["w"].data, dtype=np.int8))
    b = ref("b", np.asarray(layer.consts[layer.args[2]].data, dtype=np.int32))
    xin = ref("x", x.astype(np.int8))
    init = "\n".join(initializer(layer.params, ref))
    n_in, n_out = x.size, int(np.prod(g.tensors["y"].shape))
    scratch = conv2d_dsp_scratch(layer.params)
    lo = min(0, *shifts)
    span = max(n_in, max(shifts) + n_out) - lo
    body = []
    for d in shifts:
        body.append(
            f"    memset(buf, 0x5a, sizeof buf);\n    memcpy(buf + {-lo}, {xin}, {n_in});\n"
            f"    st = mcuq_conv2d_s8_dsp(&ctx, &p, buf + {-lo}, {w}, {b}, buf + {-lo + d});\n"
            f'    printf("%d", (int)st);\n'
            f'    for (i = 0; i < {n_out}; ++i) printf(" %d", (int)buf[{-lo + d} + i]);\n    printf("\\n");'
        )
    return (
        '#include <stdio.h>\n#include <string.h>\n#include "mcuq.h"\n'
        + "\n".join(arrays)
        + f"\nstatic const mcuq_conv2d_params p = {{\n{init}\n}};\n"
        + f"static int8_t buf[{span}];\nstatic uint32_t scratch[{(scratch + 3) // 4}];\n"
        + "int main(void)\n{\n    int i;\n    mcuq_status st;\n"
        + f"    const mcuq_context ctx = {{scratch, {scratch}}};\n"
        + "\n".join(body)
        + "\n    return 0;\n}\n"
    )


def test_conv_overlap_contract(tmp_path) -> None:
    """The kernel gives the same bits with output == input + d for d = D (the registry's overlap) and a few below,
    including in place when D >= 0."""
    srcs = [RUNTIME_C / "src" / "conv" / "mcuq_conv2d_s8_dsp.c"]
    for case in OVERLAP:
        g = build_graph(case)
        (layer,) = specialize(g, lower(g), "dsp")
        assert layer.kernel_name == "mcuq_conv2d_s8_dsp"
        d_max = layer.kernel.overlaps(layer.params, 3)[0]
        assert d_max is not None
        n_in = int(np.prod(case.in_shape))
        d_max = min(d_max, n_in)  # beyond the input's end nothing overlaps
        shifts = sorted({d_max, d_max - 1, d_max - BLOCK * case.out_c, min(0, d_max)})
        x = random_int8(case.in_shape, 1, 2000 + case.seed)[0]
        want = reference_outputs(g, [x[None]])["y"].reshape(-1)
        (tmp_path / "t.c").write_text(_overlap_program(layer, g, x, shifts))
        exe = tmp_path / "t"
        cmd = [host_cc(), "-std=c99", "-Wall", "-Wextra", "-Werror", *SANITIZE_FLAGS, f"-I{RUNTIME_C / 'include'}"]
        subprocess.run([*cmd, str(tmp_path / "t.c"), *map(str, srcs), "-o", str(exe)], check=True)
        lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines()
        for d, line in zip(shifts, lines, strict=True):
            status, *vals = (int(v) for v in line.split())
            assert status == 0, f"{case.id}, d={d}: status {status}"
            np.testing.assert_array_equal(np.array(vals), want, err_msg=f"{case.id}: output at input + {d}")


# -- the requantization forms ----------------------------------------------------------------------------------------


def _rescaled(case: Case, factor: float) -> ir.Graph:
    """case's graph with the output scale divided by factor: large factors push the shift to >= 0 (the general
    requantization), tiny ones below -23."""
    g = build_graph(case)
    y = g.tensors["y"]
    q = dataclasses.replace(y.qparams, scale=(y.qparams.scale[0] / factor,))
    return dataclasses.replace(g, tensors={**g.tensors, "y": dataclasses.replace(y, qparams=q)})


@pytest.mark.parametrize("factor", [300.0, 3000.0, 1e-6], ids=["some_shift_0", "shift_gt_0", "shift_lt_-23"])
@pytest.mark.parametrize(
    "case",
    [
        Case("rq_conv", C, (1, 5, 6, 8), 5, (3, 3), padding=SAME, in_zp=-3, out_zp=7, seed=61),
        Case("rq_conv_relu", C, (1, 4, 6, 4), 6, (1, 3), act=A.RELU, in_zp=9, out_zp=-20, seed=63),
        Case("rq_fc", F, (2, 24), 6, per_channel=False, in_zp=5, out_zp=-9, seed=62),
    ],
    ids=lambda c: c.id,
)
def test_general_requantization_paths(case: Case, factor: float) -> None:
    g = _rescaled(case, factor)
    x = random_inputs(case)
    cm = mcuq.compile_model(g, kernels="dsp", sanitize=True, prefix=case.id)
    (layer,) = cm.layers
    assert layer.kernel_name.endswith("_dsp")
    shift = np.asarray(layer.params.quant.shift)
    assert (shift >= 0).any() or (shift < -23).any()  # not every channel in the fast form
    (got,) = cm.run([x])
    np.testing.assert_array_equal(got, reference_outputs(g, [x])["y"].reshape(got.shape))


_FAST_PROGRAM = r"""
#include <stdio.h>
#include "%(src)s"
static uint32_t s = 12345u;
static uint32_t rnd32(void) { s = s * 1664525u + 1013904223u; return s ^ (s >> 15); }
int main(void)
{
    static const int32_t edge[] = {INT32_MIN, INT32_MIN + 1, -1073741825, -65536, -1, 0, 1, 65535, 1073741824, INT32_MAX};
    long bad = 0;
    for (long i = 0; i < 400000; ++i) {
        const int32_t m = (i & 7) == 0 ? (int32_t)(1u << 30) : (i & 7) == 1 ? INT32_MAX : (int32_t)((rnd32() >> 1) | (1u << 30));
        const int32_t shift = -(int32_t)(1 + rnd32() %% 23);
        const int32_t zp = (int32_t)(rnd32() %% 256) - 128;
        int32_t lo = (int32_t)(rnd32() %% 256) - 128, hi = (int32_t)(rnd32() %% 256) - 128;
        if ((i & 3) == 0) { lo = -128; hi = 127; }
        if (lo > hi) { const int32_t t = lo; lo = hi; hi = t; }
        const uint32_t acc = (i %% 5) == 0 ? (uint32_t)edge[rnd32() %% 10] : rnd32() >> (rnd32() %% 32);
        %(params)s p;
        memset(&p, 0, sizeof p);
        p.output_zp = zp;
        p.activation.min = lo;
        p.activation.max = hi;
        const int8_t want = finish(acc, m, shift, &p);
        %(check)s
    }
    printf("%%ld\n", bad);
    return 0;
}
"""


@pytest.mark.parametrize("kind", ["conv", "fc"])
def test_fast_requantization_is_the_general_one(tmp_path, kind: str) -> None:
    """The fast form (SMMLAR-style high multiply, QADD with output_zp folded into the rounding, clamp) equals the
    general MultiplyByQuantizedMultiplier + zp + clamp for every multiplier >= 2^30 and shift in [-23, -1], edge
    accumulators included (plain-C fallback, ASan/UBSan; the ARM path runs in tests/qemu/test_kernel_paths.py)."""
    if kind == "conv":
        src, params = "mcuq_conv2d_s8_dsp.c", "mcuq_conv2d_params"
        check = (
            "fast_quant q; q.m2 = (uint32_t)m << 1; q.right = -shift;"
            " q.rnd = (int32_t)((1u << (q.right - 1)) + ((uint32_t)zp << q.right));"
            " bad += fast_finish(acc, q, CLAMP_ANY, lo, hi) != want;"
            " if (lo == -128 && hi == 127) bad += fast_finish(acc, q, CLAMP_FULL, lo, hi) != want;"
        )
    else:
        src, params = "mcuq_fully_connected_s8_dsp.c", "mcuq_fully_connected_params"
        check = (
            "const fast_quant q = fast_of(m, shift, zp); bad += !is_fast(m, shift);"
            " bad += fast_finish(acc, q, lo, hi) != want;"
            " if (lo == -128 && hi == 127) bad += fast_finish8(acc, q) != want;"
        )
    path = RUNTIME_C / "src" / "conv" / src
    (tmp_path / "t.c").write_text(_FAST_PROGRAM % {"src": path, "params": params, "check": check})
    exe = tmp_path / "t"
    cmd = [host_cc(), "-std=c99", *SANITIZE_FLAGS, f"-I{RUNTIME_C / 'include'}", "-Wno-unused-function"]
    subprocess.run([*cmd, str(tmp_path / "t.c"), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "0"


_MIXED_PROGRAM = r"""
#include <stdio.h>
#include "%(src)s"
static uint32_t s = 777u;
static uint32_t rnd32(void) { s = s * 1664525u + 1013904223u; return s ^ (s >> 15); }
int main(void)
{
    static const int32_t edge[] = {INT32_MIN, INT32_MIN + 1, -1073741825, -65536, -1, 0, 1, 65535, 1073741824, INT32_MAX};
    long bad = 0;
    for (long i = 0; i < 400000; ++i) {
        const int dead = (i & 15) == 0;
        const int32_t m = dead ? 0 : (i & 7) == 1 ? INT32_MAX : (int32_t)((rnd32() >> 1) | (1u << 30));
        const int32_t shift = dead ? (int32_t)(rnd32() %% 40) - 31 : -(int32_t)(1 + rnd32() %% 31);
        const uint32_t acc = (i %% 5) == 0 ? (uint32_t)edge[rnd32() %% 10] : rnd32() >> (rnd32() %% 32);
        mcuq_conv2d_params p;
        memset(&p, 0, sizeof p);
        p.output_zp = (int32_t)(rnd32() %% 256) - 128;
        p.activation.min = -128;
        p.activation.max = 127;
        p.output.c = 1;
        p.quant.multiplier = &m;
        p.quant.shift = &shift;
        const int8_t want = finish(acc, m, shift, &p);
        const uint32_t block[8] = {0};
        const int8_t w[4] = {0};
        const int32_t bias = (int32_t)acc;
        int8_t out[4];
        bad += !is_fast_mixed(m, shift);
        block_outputs(out, block, w, &bias, &p, 4, CLAMP_MIXED, BLOCK, 0);
        bad += out[0] != want;
    }
    printf("%%ld\n", bad);
    return 0;
}
"""


def test_mixed_requantization_large_shifts_and_dead_channels(tmp_path) -> None:
    """CLAMP_MIXED's fast form also takes shifts in [-31, -24] (t >> (r - 23) first) and dead channels (multiplier
    0, any shift: output_zp): the same bits as the general form (plain C, ASan/UBSan)."""
    path = RUNTIME_C / "src" / "conv" / "mcuq_conv2d_s8_dsp.c"
    (tmp_path / "t.c").write_text(_MIXED_PROGRAM % {"src": path})
    exe = tmp_path / "t"
    cmd = [host_cc(), "-std=c99", *SANITIZE_FLAGS, f"-I{RUNTIME_C / 'include'}", "-Wno-unused-function"]
    subprocess.run([*cmd, str(tmp_path / "t.c"), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "0"
