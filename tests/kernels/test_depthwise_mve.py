"""The MVE depthwise kernel (mcuq_depthwise_conv2d_s8_mve), on the host through its plain-C path (ASan/UBSan):
the same bits as the numpy mirror of the portable kernel on the depthwise cases of test_conv.py and on odd channel
counts, whole-model through ``compile_model(kernels="mve")``, and in place, with its output at exactly input + D
(D from ``Kernel.overlap``) in a C program that calls the kernel directly."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import mcuq
from mcuq._paths import RUNTIME_C
from mcuq.build import SANITIZE_FLAGS, host_cc
from mcuq.frontend.tflite_writer import write
from mcuq.kernels import initializer
from mcuq.kernels.depthwise_mve import DEPTHWISE_CONV2D_S8_MVE, supports
from mcuq.lower import lower
from mcuq.lower.specialize import specialize
from tests.kernels.test_conv import CASES, Case, build_graph, random_inputs
from tests.util.harness import reference_outputs

A = CASES[0].act.__class__
D_CASES = [c for c in CASES if c.id.startswith("dw_")]
D = D_CASES[0].kind
SAME, VALID = CASES[1].padding, CASES[3].padding
ODD = [
    Case("dwm_c4_3x3_same", D, (1, 6, 7, 4), 4, (3, 3), padding=SAME, in_zp=-128, out_zp=3, seed=31),
    Case("dwm_c6_3x3_s2_same", D, (2, 9, 8, 6), 6, (3, 3), (2, 2), padding=SAME, act=A.RELU, in_zp=40, seed=32),
    Case("dwm_c5_3x3_valid_relu6", D, (1, 7, 9, 5), 5, (3, 3), act=A.RELU6, in_zp=-5, out_zp=-128, seed=33),
    Case("dwm_c17_3x3_same", D, (1, 5, 6, 17), 17, (3, 3), padding=SAME, in_zp=127, out_zp=-7, seed=34),
    Case("dwm_c8_3x3_s2_w10", D, (1, 10, 10, 8), 8, (3, 3), (2, 2), padding=SAME, in_zp=-1, seed=35),
    Case("dwm_c4_5x3_s1x2", D, (1, 9, 11, 4), 4, (5, 3), (1, 2), padding=SAME, in_zp=9, seed=36),
    Case("dwm_c16_4x4_s3", D, (1, 12, 13, 16), 16, (4, 4), (3, 3), padding=SAME, in_zp=-77, seed=37),
    Case("dwm_c6_1x1", D, (1, 3, 5, 6), 6, (1, 1), in_zp=20, seed=38),
    Case("dwm_c9_3x3_w1", D, (1, 6, 1, 9), 9, (3, 3), padding=SAME, in_zp=-20, seed=39),
    Case("dwm_c7_no_bias", D, (1, 8, 6, 7), 7, (3, 3), padding=SAME, bias=False, in_zp=-50, seed=40),
]
ALL = D_CASES + ODD


def _layer(case: Case):
    g = build_graph(case)
    (layer,) = specialize(g, lower(g), "mve")
    return g, layer


@pytest.mark.parametrize("case", ALL, ids=lambda c: c.id)
def test_mve_depthwise_host_bit_exact(case: Case) -> None:
    g, layer = _layer(case)
    base = layer.base or layer
    assert (layer.kernel is DEPTHWISE_CONV2D_S8_MVE) == supports(base.params)
    if case in ODD:
        assert layer.kernel is DEPTHWISE_CONV2D_S8_MVE, case.id
    xs = [random_inputs(case)]
    want = reference_outputs(g, xs)["y"]
    compiled = mcuq.compile_model(write(g), prefix=case.id, sanitize=True, kernels="mve")
    (got,) = compiled.run(xs)
    np.testing.assert_array_equal(got, want.reshape(got.shape), err_msg=case.id)


# -- in place: output at input + d, called directly -----------------------------------------------------------------

_MAIN = r"""
#include <stdio.h>
#include <string.h>
#include "mcuq.h"
%(arrays)s
static const mcuq_conv2d_params params = {
%(init)s
};
static int8_t buf[%(buf)d];
static int8_t scratch[%(scratch)d + 1];

int main(void)
{
    static const int32_t offsets[] = {%(offsets)s};
    int bad = mcuq_depthwise_conv2d_s8_mve_scratch_size(&params) != %(scratch)d;
    if (bad) {
        printf("scratch size %%ld, Python says %(scratch)d\n", (long)mcuq_depthwise_conv2d_s8_mve_scratch_size(&params));
    }
    for (unsigned k = 0; k < sizeof offsets / sizeof offsets[0]; ++k) {
        const int32_t d = offsets[k];
        const int32_t in_at = d < 0 ? -d : 0;
        memset(buf, 0x55, sizeof buf);
        memcpy(buf + in_at, x, sizeof x);
        const mcuq_context ctx = {scratch, %(scratch)d};
        const mcuq_status s = mcuq_depthwise_conv2d_s8_mve(&ctx, &params, buf + in_at, w, b, buf + in_at + d);
        if (s != MCUQ_OK || memcmp(buf + in_at + d, want, sizeof want) != 0) {
            printf("mismatch at d=%%ld (status %%d)\n", (long)d, (int)s);
            bad = 1;
        }
    }
    if (!bad) {
        printf("PASS\n");
    }
    return bad;
}
"""


def _c_array(ctype: str, name: str, values: np.ndarray) -> str:
    return f"static const {ctype} {name}[{max(values.size, 1)}] = {{{', '.join(str(int(v)) for v in values.reshape(-1))}}};"


IN_PLACE = [
    Case("ip_3x3_same", D, (1, 9, 10, 8), 8, (3, 3), padding=SAME, in_zp=-128, out_zp=-128, act=A.RELU, seed=51),
    Case("ip_3x3_s2_same", D, (1, 12, 10, 5), 5, (3, 3), (2, 2), padding=SAME, in_zp=25, seed=52),
    Case("ip_3x3_s2_odd", D, (1, 11, 9, 7), 7, (3, 3), (2, 2), padding=SAME, in_zp=-3, seed=53),
    Case("ip_3x3_valid", D, (2, 7, 8, 17), 17, (3, 3), in_zp=7, seed=54),
    Case("ip_dilated", D, (1, 10, 10, 5), 5, (3, 3), dilation=(2, 2), padding=SAME, seed=55),
    Case("ip_batch_same", D, (3, 5, 4, 4), 4, (3, 3), padding=SAME, in_zp=100, seed=56),
]


@pytest.mark.parametrize("case", IN_PLACE, ids=lambda c: c.id)
def test_mve_depthwise_in_place(case: Case, tmp_path: Path) -> None:
    g, layer = _layer(case)
    assert layer.kernel is DEPTHWISE_CONV2D_S8_MVE
    p = layer.params
    (d_max, w_d, b_d) = DEPTHWISE_CONV2D_S8_MVE.overlaps(p, 3)
    assert w_d is None and b_d is None and d_max >= 0, (case.id, d_max)
    x = random_inputs(case)[:1]
    want = reference_outputs(g, [x])["y"].reshape(-1)
    consts = {**g.tensors, **layer.consts}
    w = np.asarray(consts[layer.args[1]].data)
    b = np.asarray(consts[layer.args[2]].data)
    arrays = []

    def ref(path: str, arr: np.ndarray) -> str:
        name = f"q{len(arrays)}"
        arrays.append(_c_array("int32_t", name, np.asarray(arr)))
        return name

    init = "\n".join(initializer(p, ref))
    arrays += [
        _c_array("int8_t", "x", x.reshape(-1)),
        _c_array("int8_t", "w", w),
        _c_array("int32_t", "b", b),
        _c_array("int8_t", "want", want),
    ]
    in_row = p.input.w * p.input.c
    offsets = sorted({d_max, 0, min(d_max, 1), -in_row, -(x.size + 3)})
    size = x.size + want.size + max(abs(o) for o in offsets) + 8
    src = _MAIN % dict(
        arrays="\n".join(arrays),
        init=init,
        buf=size,
        scratch=DEPTHWISE_CONV2D_S8_MVE.scratch_bytes(p),
        offsets=", ".join(str(o) for o in offsets),
    )
    (tmp_path / "t.c").write_text(src)
    exe = tmp_path / "t"
    cc = [host_cc(), *SANITIZE_FLAGS, f"-I{RUNTIME_C / 'include'}", str(tmp_path / "t.c")]
    cc += [str(RUNTIME_C / "src" / s) for s in DEPTHWISE_CONV2D_S8_MVE.sources] + ["-o", str(exe)]
    build = subprocess.run(cc, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True)
    assert run.returncode == 0 and "PASS" in run.stdout, run.stdout + run.stderr[-3000:]


def test_overlap_is_tight() -> None:
    """D for a stride-1 SAME 3x3 layer: output row r is written once input row r + 1 is in the ring."""
    _, layer = _layer(IN_PLACE[0])
    p = layer.params
    (d,) = DEPTHWISE_CONV2D_S8_MVE.overlaps(p, 1)
    assert d == p.input.w * p.input.c  # stride 1, SAME 3x3: output row r is written once input row r + 1 is read
    q = replace(p, depth_multiplier=2)
    assert not supports(q)
