"""The MVE CONV_2D and FULLY_CONNECTED kernels (mcuq_conv2d_s8_mve, mcuq_fully_connected_s8_mve) on the host, where
they run their plain-C path (the same algorithm, scratch and memory order as on Helium), built with ASan/UBSan:
bit-exact with the numpy reference of the portable kernels, and with the output overlapping the input by the D the
registry claims. test_mve_models_match_portable_on_m55 (qemu marker) runs the Helium path on a Cortex-M55 in QEMU
on real models against the portable kernels."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import mcuq
from mcuq import ir
from mcuq._paths import RUNTIME_C
from mcuq.build import WARNINGS, host_cc
from mcuq.kernels.cstruct import initializer
from mcuq.kernels.nn_mve import CONV2D_S8_MVE, conv2d_mve_scratch, mve_weights
from mcuq.lower import lower
from mcuq.lower.specialize import specialize
from tests.conftest import have_arm_toolchain
from tests.kernels.test_conv import CASES, Case, build_graph, random_inputs
from tests.util.harness import reference_outputs
from tests.util.paths import Build, check_paths, inputs_for, merge

C, F = ir.OpKind.CONV2D, ir.OpKind.FULLY_CONNECTED
A = ir.Activation
SAME = ir.Padding.SAME

ODD = [
    # K = 16 exactly, odd pixel count (a one-pixel last block), output channels not a multiple of 4
    Case("mve_conv_k16_odd", C, (1, 3, 5, 16), 5, seed=31, in_zp=-9),
    # K = 17 (one value past a chunk), 2 images, 1 output channel
    Case("mve_conv_k17_batch", C, (2, 3, 3, 17), 1, seed=32, in_zp=100, out_zp=-5),
    # large K (3x3x40 = 360 = 22.5 chunks), stride 2, SAME padding, ReLU
    Case("mve_conv_3x3x40", C, (1, 7, 6, 40), 9, (3, 3), (2, 2), padding=SAME, act=A.RELU, in_zp=-128, seed=33),
    # the KWS first layer's shape: 10x4 filter, 1 input channel, stride 2, SAME
    Case("mve_conv_kws_first", C, (1, 49, 10, 1), 8, (10, 4), (2, 2), padding=SAME, in_zp=-30, seed=34),
    # dilation with SAME padding and many channels
    Case("mve_conv_dilated", C, (1, 9, 9, 12), 6, (3, 3), dilation=(2, 2), padding=SAME, in_zp=3, seed=35),
    # filter rows of 9 bytes (one predicated vector) in the padding on every side, odd output width (blocks that
    # straddle two output rows), 6 channels (a 2-channel tail after the asm groups), stride 1 and 2
    Case("mve_conv_3x3x3_same", C, (1, 7, 5, 3), 6, (3, 3), padding=SAME, in_zp=-77, seed=39),
    Case("mve_conv_3x3x3_s2", C, (1, 9, 9, 3), 8, (3, 3), (2, 2), padding=SAME, act=A.RELU6, in_zp=12, seed=40),
    # filter rows of exactly 16 bytes in the padding; a 5 x 1 filter taller than the input's padding allows
    Case("mve_conv_2x2x8_same", C, (1, 4, 3, 8), 4, (2, 2), padding=SAME, in_zp=-1, seed=41),
    Case("mve_conv_5x1x2_same", C, (1, 3, 4, 2), 7, (5, 1), padding=SAME, in_zp=127, seed=42),
    # dilated with small rows (the general border path), and 1x1 stride 2 with an odd pixel count
    Case("mve_conv_dilated_c2", C, (1, 6, 7, 2), 4, (2, 3), dilation=(2, 2), padding=SAME, in_zp=-50, seed=43),
    Case("mve_conv_1x1_s2", C, (1, 7, 7, 24), 12, (1, 1), (2, 2), in_zp=9, seed=44),
    Case("mve_fc_k8", F, (1, 8), 13, per_channel=False, in_zp=-128, seed=36),
    Case("mve_fc_k100_batches", F, (3, 100), 6, in_zp=60, out_zp=9, seed=37),
    Case("mve_fc_k1", F, (1, 1), 16, per_channel=False, in_zp=5, seed=38),
]
HOST_CASES = [c for c in CASES if c.kind in (C, F) and c.w_zp == 0] + ODD


def _kernel_of(g: ir.Graph, kernels: str = "mve"):
    (layer,) = specialize(g, lower(g), kernels)
    return layer


@pytest.mark.parametrize("case", HOST_CASES, ids=lambda c: c.id)
def test_mve_kernels_match_reference_on_host(case: Case) -> None:
    g = build_graph(case)
    assert _kernel_of(g).kernel.name.endswith("_mve"), "no MVE variant chosen"
    x = random_inputs(case)
    want = reference_outputs(g, [x])["y"]
    cm = mcuq.compile_model(g, prefix=case.id, sanitize=True, kernels="mve")
    assert cm.layers[0].kernel.name.endswith("_mve")
    (got,) = cm.run([x])
    np.testing.assert_array_equal(got, want.reshape(got.shape), err_msg=case.id)


def test_fc_with_weight_zero_point_keeps_the_portable_kernel() -> None:
    case = next(c for c in CASES if c.w_zp != 0)
    assert _kernel_of(build_graph(case)).kernel.name == "mcuq_fully_connected_s8"


def test_weight_layout() -> None:
    w = np.arange(5 * 20, dtype=np.int64).reshape(5, 20).astype(np.int8)  # 5 rows, K = 20 -> KP = 32, 8 rows
    got = mve_weights(w, 5)
    assert got.shape == (2 * 4 * 32,)
    g0 = got[: 4 * 32].reshape(2, 4, 16)  # group 0: chunk, row, value
    np.testing.assert_array_equal(g0[0, 1], w[1, :16])
    np.testing.assert_array_equal(g0[1, 3, :4], w[3, 16:])
    assert not g0[1, :, 4:].any()
    g1 = got[4 * 32 :].reshape(2, 4, 16)
    np.testing.assert_array_equal(g1[0, 0], w[4, :16])
    assert not g1[:, 1:].any()


# -- output overlapping the input by D (the registry's overlap), in a standalone C program ---------------------------

OVERLAP_CASES = [c for c in HOST_CASES if c.kind == C]


def _c_array(name: str, ctype: str, values: np.ndarray) -> str:
    vals = ", ".join(str(int(v)) for v in np.asarray(values).reshape(-1))
    return f"static const {ctype} {name}[] = {{{vals}}};\n"


def _overlap_program(layer, x: np.ndarray, d: int) -> str:
    p = layer.params
    arrays: list[str] = []

    def array_ref(path: str, a: np.ndarray) -> str:
        name = "arr_" + path.replace(".", "_")
        arrays.append(_c_array(name, "int32_t", a))
        return name

    init = "\n".join(initializer(p, array_ref))
    w = layer.consts[layer.args[1]].data
    b = layer.consts[layer.args[2]].data
    n_in, n_out = x.size, int(np.prod((p.output.n, p.output.h, p.output.w, p.output.c)))
    lo = min(0, d)
    size = max(n_in, d + n_out) - lo
    return (
        '#include <stdio.h>\n#include <string.h>\n#include "mcuq_conv.h"\n'
        + "".join(arrays)
        + _c_array("weights", "int8_t", w)
        + _c_array("bias", "int32_t", b)
        + _c_array("x", "int8_t", x)
        + f"static const mcuq_conv2d_params params = {{\n{init}\n}};\n"
        + f"static int8_t scratch[{conv2d_mve_scratch(p)}];\nstatic int8_t ref[{n_out}];\n"
        + f"static int8_t buf[{size}];\n"
        + "int main(void) {\n"
        + f"  mcuq_context ctx = {{scratch, {conv2d_mve_scratch(p)}}};\n"
        + "  if (mcuq_conv2d_s8_mve(&ctx, &params, x, weights, bias, ref) != MCUQ_OK) return 2;\n"
        + f"  memset(buf, 0x55, sizeof buf);\n  memcpy(buf + {-lo}, x, sizeof x);\n"
        + f"  if (mcuq_conv2d_s8_mve(&ctx, &params, buf + {-lo}, weights, bias, buf + {d - lo}) != MCUQ_OK) return 3;\n"
        + f"  return memcmp(ref, buf + {d - lo}, sizeof ref) != 0;\n}}\n"
    )


@pytest.mark.parametrize("case", OVERLAP_CASES, ids=lambda c: c.id)
def test_conv_output_may_overlap_input_by_d(case: Case, tmp_path: Path) -> None:
    g = build_graph(case)
    layer = _kernel_of(g)
    (d, *_) = CONV2D_S8_MVE.overlaps(layer.params, 3)
    assert d is not None
    n_out = int(np.prod(g.tensors["y"].shape))
    x = random_inputs(case)[0]
    d = min(d, x.size)  # beyond the input's end there is no overlap left to test
    src = tmp_path / "overlap.c"
    src.write_text(_overlap_program(layer, x, d))
    exe = tmp_path / "overlap"
    kernel_c = RUNTIME_C / "src" / "conv" / "mcuq_conv2d_s8_mve.c"
    cmd = [host_cc(), *WARNINGS, "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    subprocess.run([*cmd, "-I", str(RUNTIME_C / "include"), str(src), str(kernel_c), "-o", str(exe)], check=True)
    r = subprocess.run([str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, f"{case.id}: output at input + {d} differs ({r.returncode}) {r.stderr[-2000:]}"
    assert n_out > 0


# -- Cortex-M55 in QEMU: the intrinsic path gives the portable kernels' bits on real models ----------------------


MODELS = Path(os.environ.get("MCUQ_MODELS", Path(__file__).resolve().parents[3] / "shared" / "models"))


@pytest.mark.qemu
@pytest.mark.parametrize(
    "model", ["kws_ref_model.tflite", "pretrainedResnet_quant.tflite", "ad01_int8.tflite"], ids=lambda m: m[:6]
)
def test_mve_models_match_portable_on_m55(model: str) -> None:
    path = MODELS / "mlperf_tiny" / model
    if not path.exists():
        pytest.skip(f"{path} is absent")
    if not have_arm_toolchain():
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not installed")
    fast = mcuq.compile_model(path, board="mps3-an547", kernels="mve")
    assert any(lay.kernel_name == "mcuq_conv2d_s8_mve" for lay in fast.layers) or "ad01" in model
    slow = mcuq.compile_model(path, board="mps3-an547", kernels="portable")
    rng = np.random.default_rng(7)
    shape = fast.graph.tensors[fast.graph.inputs[0]].shape
    x = rng.integers(-128, 128, size=(3, *shape)).astype(np.int8)
    (a,) = fast.run([x])
    (b,) = slow.run([x])
    np.testing.assert_array_equal(a, b)


@pytest.mark.qemu
def test_mve_conv_shapes_match_reference_on_m55() -> None:
    """The Helium path (asm groups, predicated im2col rows, border masks, channel and pixel tails) on the shapes
    above, in one firmware on a Cortex-M55, bit for bit with the numpy reference."""
    if not have_arm_toolchain():
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not installed")
    g = merge({c.id: build_graph(c) for c in ODD if c.kind == C}, "mve_conv_shapes")
    xs = inputs_for(g, 2, seed=5)
    check_paths(g, xs, group="mve_conv_shapes", todo=[Build("mps3-an547", "mve")], reference=reference_outputs(g, xs))
