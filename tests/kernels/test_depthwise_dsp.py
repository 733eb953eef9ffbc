"""mcuq_depthwise_conv2d_s8_dsp (the dsp path of DEPTHWISE_CONV_2D): the same bits as the portable kernel.

Two levels, both on the host with ASan/UBSan (the plain-C path of the same algorithm as on the Cortex-M4):
  * graph level: test_conv.py's depthwise CASES and a table of odd shapes, merged into one graph (one build), compiled
    with kernels="dsp" and compared bit for bit with the numpy reference; every 3x3 multiplier-1 layer must run the
    dsp kernel (the others keep the portable one);
  * kernel level: a small C program runs the portable kernel and the dsp kernel on the same random data, the dsp
    kernel with its output overlapping its input at ``input + D`` (D from Kernel.overlap), ``input + D - 7``,
    ``input + 0`` and apart, with scratch at an odd address, and with extreme quantization (left shifts, right
    shifts above 20, multiplier 0, accumulators near the int32 limits).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq._paths import RUNTIME_C
from mcuq.build import SANITIZE_FLAGS, host_cc
from mcuq.frontend.tflite_writer import write
from mcuq.kernels.depthwise_dsp import depthwise_dsp_overlap, depthwise_dsp_scratch, depthwise_dsp_weights
from tests.kernels.test_conv import CASES, Case, build_graph
from tests.util.harness import reference_outputs
from tests.util.paths import inputs_for, merge

A = ir.Activation
D = ir.OpKind.DEPTHWISE_CONV2D
SAME, VALID = ir.Padding.SAME, ir.Padding.VALID
DSP, PORTABLE = "mcuq_depthwise_conv2d_s8_dsp", "mcuq_depthwise_conv2d_s8"

EXTRA = [
    Case("dwd_c1_same", D, (1, 6, 5, 1), 1, (3, 3), padding=SAME, in_zp=-128, seed=201),
    Case("dwd_c3_s2_odd", D, (1, 9, 7, 3), 3, (3, 3), (2, 2), padding=SAME, in_zp=17, out_zp=5, seed=202),
    Case("dwd_c5_valid", D, (1, 7, 9, 5), 5, (3, 3), act=A.RELU6, in_zp=127, seed=203),
    Case("dwd_c17_same_relu", D, (1, 5, 6, 17), 17, (3, 3), padding=SAME, act=A.RELU, in_zp=-3, seed=204),
    Case("dwd_c8_s2_even", D, (1, 8, 10, 8), 8, (3, 3), (2, 2), padding=SAME, in_zp=-128, out_zp=-128, seed=205),
    Case("dwd_c4_s2_valid_odd", D, (2, 9, 11, 4), 4, (3, 3), (2, 2), in_zp=60, seed=206),
    Case("dwd_c12_s1x2", D, (1, 7, 8, 12), 12, (3, 3), (1, 2), padding=SAME, in_zp=-60, seed=207),
    Case("dwd_c16_w1", D, (1, 5, 1, 16), 16, (3, 3), padding=SAME, in_zp=9, seed=208),
    Case("dwd_kws_like", D, (1, 25, 5, 64), 64, (3, 3), padding=SAME, act=A.RELU, in_zp=-128, seed=209),
    Case("dwd_nobias_c6", D, (1, 6, 6, 6), 6, (3, 3), (2, 2), padding=SAME, bias=False, seed=210),
]


def _dw_supported(c: Case) -> bool:
    return c.kernel == (3, 3) and c.dilation == (1, 1) and c.out_c == c.in_shape[-1] and max(c.stride) <= 2


def test_graph_level_dsp_equals_reference() -> None:
    cases = [c for c in CASES if c.kind == D] + EXTRA
    graph = merge({c.id: build_graph(c) for c in cases}, "dw_dsp")
    xs = inputs_for(graph, 2, 7)
    want = reference_outputs(graph, xs)
    compiled = mcuq.compile_model(write(graph), prefix="dw_dsp", sanitize=True, kernels="dsp")
    kernels = {layer.outputs[0]: layer.kernel_name for layer in compiled.layers}
    for c in cases:
        assert kernels[f"{c.id}_y"] == (DSP if _dw_supported(c) else PORTABLE), c.id
    got = compiled.run(xs)
    for name, g in zip(graph.outputs, got, strict=True):
        np.testing.assert_array_equal(g, want[name].reshape(g.shape), err_msg=name)


# -- kernel level ---------------------------------------------------------------------------------------------------

_DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mcuq_conv.h"

static const unsigned char *at;
static int32_t i32(void) { int32_t v; memcpy(&v, at, 4); at += 4; return v; }
static const void *take(size_t n) { const void *p = at; at += (n + 3) & ~(size_t)3; return p; }

int main(int argc, char **argv)
{
    FILE *f = fopen(argv[argc - 1], "rb");
    static unsigned char data[1 << 24];
    size_t got = fread(data, 1, sizeof data, f);
    fclose(f);
    (void)got;
    at = data;
    const int32_t cases = i32();
    for (int32_t k = 0; k < cases; ++k) {
        mcuq_conv2d_params p;
        memset(&p, 0, sizeof p);
        p.input.n = p.output.n = i32(); p.input.h = i32(); p.input.w = i32(); p.input.c = p.output.c = i32();
        p.output.h = i32(); p.output.w = i32();
        p.window.filter.h = p.window.filter.w = 3; p.window.dilation.h = p.window.dilation.w = 1;
        p.window.stride.h = i32(); p.window.stride.w = i32(); p.window.pad.h = i32(); p.window.pad.w = i32();
        p.depth_multiplier = 1;
        p.input_zp = i32(); p.output_zp = i32(); p.activation.min = i32(); p.activation.max = i32();
        const int32_t d = i32();
        const int32_t c = p.input.c;
        p.quant.multiplier = take(4 * (size_t)c); p.quant.shift = take(4 * (size_t)c);
        const int32_t *bias = take(4 * (size_t)c), *folded = take(4 * (size_t)c);
        const int8_t *w = take(9 * (size_t)c), *wd = take(32 * (size_t)c);
        const size_t in_bytes = (size_t)p.input.n * p.input.h * p.input.w * c;
        const size_t out_bytes = (size_t)p.output.n * p.output.h * p.output.w * c;
        const int8_t *x = take(in_bytes);

        mcuq_context none = {NULL, 0};
        int8_t *want = malloc(out_bytes + 1);
        const int s_ref = mcuq_depthwise_conv2d_s8(&none, &p, x, w, bias, want);

        const int32_t ss = mcuq_depthwise_conv2d_s8_dsp_scratch_size(&p);
        char *scratch = malloc((size_t)ss + 1);
        mcuq_context ctx = {scratch + 1, ss}; /* an odd address: the kernel aligns its accumulators */
        const long lo = d < 0 ? d : 0;
        const long hi = (long)in_bytes > d + (long)out_bytes ? (long)in_bytes : d + (long)out_bytes;
        int8_t *buf = malloc((size_t)(hi - lo) + 1);
        int8_t *in = buf - lo;
        memcpy(in, x, in_bytes);
        const int s_dsp = mcuq_depthwise_conv2d_s8_dsp(&ctx, &p, in, wd, folded, in + d);
        long bad = 0;
        for (size_t i = 0; i < out_bytes; ++i) {
            bad += in[d + (long)i] != want[i];
        }
        printf("%d %d %d %ld\n", (int)k, s_ref, s_dsp, bad);
        free(buf);
        free(scratch);
        free(want);
    }
    return 0;
}
"""


def _out(size: int, stride: int, same: bool) -> tuple[int, int]:
    """(output size, padding before) as TFLite computes them for a 3-tap window."""
    if same:
        out = -(-size // stride)
        return out, max((out - 1) * stride + 3 - size, 0) // 2
    return (size - 3) // stride + 1, 0


def _params(n, h, w, c, sh, sw, same):
    oh, ph = _out(h, sh, same)
    ow, pw = _out(w, sw, same)
    hw = SimpleNamespace
    return SimpleNamespace(
        input=hw(n=n, h=h, w=w, c=c),
        output=hw(n=n, h=oh, w=ow, c=c),
        window=hw(filter=hw(h=3, w=3), stride=hw(h=sh, w=sw), dilation=hw(h=1, w=1), pad=hw(h=ph, w=pw)),
        depth_multiplier=1,
    )


def _kernel_cases(rng: np.random.Generator) -> list[tuple]:
    shapes = [  # n, h, w, c, stride h, stride w, SAME
        (1, 25, 5, 64, 1, 1, True),  # KWS
        (1, 12, 12, 8, 1, 1, True),
        (1, 12, 12, 16, 2, 2, True),  # VWW-like stride 2, even size: no top padding
        (1, 9, 7, 3, 2, 2, True),
        (1, 7, 9, 5, 1, 1, False),
        (2, 9, 11, 4, 2, 2, False),
        (1, 6, 5, 1, 1, 1, True),
        (1, 5, 6, 17, 1, 1, True),
        (2, 6, 8, 12, 1, 2, True),
        (1, 3, 3, 7, 2, 1, True),
        (1, 4, 1, 9, 1, 1, True),
        (1, 11, 4, 20, 2, 2, False),
    ]
    cases = []
    for i, (n, h, w, c, sh, sw, same) in enumerate(shapes):
        p = _params(n, h, w, c, sh, sw, same)
        big = i % 4 == 3  # extreme quantization and accumulators
        mult = rng.integers(1 << 30, 1 << 31, size=c, dtype=np.int64)
        shift = rng.integers(-12, 1, size=c)
        bias = rng.integers(-40000, 40000, size=c)
        if big:
            shift[::4] = rng.integers(-31, -20, size=shift[::4].size)  # beyond the fast rounding
            shift[1::5] = rng.integers(1, 4, size=shift[1::5].size)  # left shifts
            mult[2::6] = 0
            bias[3::4] = rng.choice([-1, 1], size=bias[3::4].size) * ((1 << 31) - 400000)  # |acc| near 2^31
            shift[3::4] = rng.integers(-3, 0, size=shift[3::4].size)
        in_zp, out_zp = (int(v) for v in rng.integers(-128, 128, size=2))
        p.quant, p.output_zp = SimpleNamespace(multiplier=mult, shift=shift), out_zp  # for depthwise_dsp_weights
        lo = int(rng.integers(-128, 0))
        act = (lo, int(rng.integers(lo, 128))) if i % 3 else (-128, 127)
        wts = rng.integers(-127, 128, size=(1, 3, 3, c)).astype(np.int8)
        x = rng.integers(-128, 128, size=(n, h, w, c)).astype(np.int8)
        folded = bias - in_zp * wts.astype(np.int64).reshape(9, c).sum(axis=0)
        folded = ((folded + 2**31) % 2**32 - 2**31).astype(np.int32)
        big_d = depthwise_dsp_overlap(p)[0]
        out_bytes = n * p.output.h * p.output.w * c
        for d in sorted({big_d, big_d - 7, 0, -out_bytes - 5} - ({0} if big_d < 0 else set())):
            cases.append((p, in_zp, out_zp, act, d, mult, shift, bias, folded, wts, x))
    return cases


def _pack(cases: list[tuple]) -> bytes:
    parts = [np.int32(len(cases)).tobytes()]

    def add(a, dtype):
        b = np.ascontiguousarray(a, dtype=dtype).tobytes()
        parts.append(b + b"\0" * (-len(b) % 4))

    for p, in_zp, out_zp, act, d, mult, shift, bias, folded, wts, x in cases:
        i, o, win = p.input, p.output, p.window
        hdr = [i.n, i.h, i.w, i.c, o.h, o.w, win.stride.h, win.stride.w, win.pad.h, win.pad.w, in_zp, out_zp, *act, d]
        add(hdr, np.int32)
        add(mult, np.int32)
        add(shift, np.int32)
        add(bias, np.int32)
        add(folded, np.int32)
        add(wts.reshape(-1), np.int8)
        add(depthwise_dsp_weights(wts, p), np.int8)
        add(x.reshape(-1), np.int8)
    return b"".join(parts)


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("dw_dsp")
    src = tmp / "driver.c"
    src.write_text(_DRIVER)
    exe = tmp / "driver"
    conv = RUNTIME_C / "src" / "conv"
    cmd = [host_cc(), "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", *SANITIZE_FLAGS,
           f"-I{RUNTIME_C / 'include'}", "-o", str(exe), str(src),
           str(conv / "mcuq_depthwise_conv2d_s8.c"), str(conv / "mcuq_depthwise_conv2d_s8_dsp.c")]  # fmt: skip
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    return exe


def test_kernel_level_overlap_and_quantization(driver: Path, tmp_path: Path) -> None:
    cases = _kernel_cases(np.random.default_rng(5))
    data = tmp_path / "cases.bin"
    data.write_bytes(_pack(cases))
    run = subprocess.run([str(driver), str(data)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.split("\n")[:-1]
    assert len(lines) == len(cases)
    for line, case in zip(lines, cases, strict=True):
        k, s_ref, s_dsp, bad = (int(v) for v in line.split())
        p, d = case[0], case[4]
        where = f"case {k}: in {vars(p.input)}, stride {vars(p.window.stride)}, pad {vars(p.window.pad)}, d={d}"
        assert (s_ref, s_dsp) == (0, 0), where
        assert bad == 0, f"{where}: {bad} outputs differ from the portable kernel"


def test_in_place_for_the_mlperf_shapes() -> None:
    """D >= 0 (output == input works) for the KWS and VWW depthwise shapes, and the scratch is a few rows."""
    for n, h, w, c, s in [(1, 25, 5, 64, 1), (1, 48, 48, 8, 1), (1, 48, 48, 16, 2), (1, 6, 6, 128, 1)]:
        p = _params(n, h, w, c, s, s, True)
        assert depthwise_dsp_overlap(p)[0] >= 0
        assert depthwise_dsp_scratch(p) <= 4 * w * c + 4 * p.output.w + 3 + 3 * 4 * c


def test_scratch_size_mirrors_c(driver: Path) -> None:
    """The Python scratch mirror equals the C function (through the error-returns entry's figure and two shapes)."""
    assert depthwise_dsp_scratch(_params(1, 4, 4, 2, 1, 1, False)) == 55
    p = _params(1, 25, 5, 64, 1, 1, True)  # KWS: 33 regions of 4 channels x 7 columns: under 1,000 bytes
    assert depthwise_dsp_scratch(p) == 3 + 33 * 4 * 7 + 4 <= 1000
