"""Fast same-shape ADD and SUB (mcuq_add_s8_dsp, mcuq_add_s8_mve; plain C on the host) against the portable kernels.

One host C program (ASan/UBSan) runs random parameter sets, including extreme multipliers, every output shift and
sizes 0..33 (vector tails), through the portable mcuq_add_s8 / mcuq_sub_s8 and both fast kernels, the fast ones also
in place on either input, and through every (x1, x2) pair for a few parameter sets; the numpy mirror is checked
against the same outputs. Then compile_model picks the variants on one-op models (broadcast stays portable).
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mcuq._paths import RUNTIME_C
from mcuq.build import host_cc
from mcuq.kernels.elementwise import AddParams, Broadcast
from mcuq.kernels.elementwise_fast import ADD_S8_DSP, ADD_S8_MVE, add_fast, fast_params, same_shape
from mcuq.kernels.types import ActivationRange
from mcuq.reference import run_graph
from tests.conftest import have_arm_toolchain

N_RANDOM = 160
ALL_PAIRS = 65536  # x1 = i & 255, x2 = i >> 8


def _multiplier(rng: np.random.Generator) -> int:
    kind = rng.integers(0, 6)
    if kind == 0:
        return 0
    if kind == 1:
        return 2**31 - 1
    if kind == 2:
        return 2**30
    return int(rng.integers(2**30, 2**31))


def _params(rng: np.random.Generator, size: int) -> AddParams:
    lo, hi = sorted(int(v) for v in rng.integers(-128, 128, 2))
    if rng.random() < 0.4:
        lo, hi = -128, 127
    elif rng.random() < 0.3:
        lo, hi = lo, 127
    out_shift = int(rng.choice([0, -1, -22, -23, -31])) if rng.random() < 0.3 else int(rng.integers(-31, 1))
    one = np.array([1, 1, 1, 1, 1, size], dtype=np.int32)
    stride = np.array([0, 0, 0, 0, 0, 1], dtype=np.int32)
    return AddParams(
        input1_zp=int(rng.integers(-128, 128)),
        input2_zp=int(rng.integers(-128, 128)),
        output_zp=int(rng.integers(-128, 128)),
        left_shift=int(rng.choice([20, 20, int(rng.integers(0, 21))])),
        input1_multiplier=_multiplier(rng),
        input1_shift=int(rng.integers(-31, 1)) if rng.random() < 0.3 else int(rng.integers(-3, 1)),
        input2_multiplier=_multiplier(rng),
        input2_shift=int(rng.integers(-31, 1)) if rng.random() < 0.3 else int(rng.integers(-3, 1)),
        output_multiplier=_multiplier(rng),
        output_shift=out_shift,
        activation=ActivationRange(lo, hi),
        broadcast=Broadcast(one, stride, stride.copy()),
    )


def _ints(v) -> str:
    return ", ".join(str(int(x)) for x in np.asarray(v).reshape(-1)) or "0"


PROLOGUE = r"""
#include <stdio.h>
#include <string.h>
#include "mcuq.h"
typedef mcuq_status (*fast_fn)(const mcuq_add_fast_params *, const int8_t *, const int8_t *, int8_t *);
typedef mcuq_status (*slow_fn)(const mcuq_add_params *, const int8_t *, const int8_t *, int8_t *);
static const int32_t dims_all[6] = {1, 1, 1, 1, 1, 65536};
static const int32_t strides[6] = {0, 0, 0, 0, 0, 1};
static int8_t a[65536], b[65536], ref[65536], got[65536], tmp[65536];

/* fast kernel == portable kernel, out of place and in place on each input; returns the mismatches */
static long check(slow_fn slow, const mcuq_add_params *sp, const mcuq_add_fast_params *fp, int32_t n)
{
    static const fast_fn fns[2] = {mcuq_add_s8_dsp, mcuq_add_s8_mve};
    long bad = 0;
    if (slow(sp, a, b, ref) != MCUQ_OK) return -1;
    for (int k = 0; k < 2; ++k) {
        memset(got, 0x5a, sizeof got);
        if (fns[k](fp, a, b, got) != MCUQ_OK) return -1;
        bad += memcmp(got, ref, (size_t)n) != 0;
        memcpy(tmp, a, (size_t)n);
        if (fns[k](fp, tmp, b, tmp) != MCUQ_OK) return -1;
        bad += memcmp(tmp, ref, (size_t)n) != 0;
        memcpy(tmp, b, (size_t)n);
        if (fns[k](fp, a, tmp, tmp) != MCUQ_OK) return -1;
        bad += memcmp(tmp, ref, (size_t)n) != 0;
    }
    return bad;
}

static void print_ref(int32_t n)
{
    for (int32_t i = 0; i < n; ++i) printf(" %d", ref[i]);
    printf("\n");
}
"""


def _case(i: int, p: AddParams, sub: bool, x1: np.ndarray | None, x2: np.ndarray | None) -> tuple[str, str]:
    """C definitions and the main() statements of one case; x1 None: every (x1, x2) pair."""
    n = int(p.broadcast.out_dims[-1])
    fp = fast_params(p, negate2=sub)
    act = f"{{{p.activation.min}, {p.activation.max}}}"
    dims = f"d{i}" if x1 is not None else "dims_all"
    defs = f"static const int32_t d{i}[6] = {{1, 1, 1, 1, 1, {n}}};\n" if x1 is not None else ""
    defs += f"""
static const mcuq_add_params s{i} = {{{p.input1_zp}, {p.input2_zp}, {p.output_zp}, {p.left_shift},
    {p.input1_multiplier}, {p.input1_shift}, {p.input2_multiplier}, {p.input2_shift}, {p.output_multiplier},
    {p.output_shift}, {act}, {{{dims}, strides, strides}}}};
static const int32_t t1_{i}[256] = {{{_ints(fp.input1_table)}}};
static const int32_t t2_{i}[256] = {{{_ints(fp.input2_table)}}};
static const mcuq_add_fast_params f{i} = {{{fp.size}, {fp.output_zp}, {fp.output_multiplier}, {fp.output_shift},
    {act}, t1_{i}, t2_{i}}};
"""
    slow = "mcuq_sub_s8" if sub else "mcuq_add_s8"
    if x1 is None:
        fill = f"for (int32_t i = 0; i < {n}; ++i) {{ a[i] = (int8_t)(i & 255); b[i] = (int8_t)(i >> 8); }}"
        body = f'    {fill}\n    printf("%ld\\n", check({slow}, &s{i}, &f{i}, {n}));\n'
    else:
        defs += f"static const int8_t x1_{i}[] = {{{_ints(x1)}}};\nstatic const int8_t x2_{i}[] = {{{_ints(x2)}}};\n"
        body = (
            f"    memcpy(a, x1_{i}, {n}); memcpy(b, x2_{i}, {n});\n"
            f'    printf("%ld", check({slow}, &s{i}, &f{i}, {n})); print_ref({n});\n'
        )
    return defs, body


def _cases() -> list[tuple[AddParams, bool, np.ndarray | None, np.ndarray | None]]:
    rng = np.random.default_rng(2024)
    cases = []
    for k in range(N_RANDOM):
        n = k % 34
        p = _params(rng, n)
        x1 = rng.integers(-128, 128, n).astype(np.int8)
        x2 = rng.integers(-128, 128, n).astype(np.int8)
        cases.append((p, bool(k % 3 == 2), x1, x2))
    for k in range(6):  # every (x1, x2) pair: exact ties of both rounding steps
        p = _params(rng, ALL_PAIRS)
        if k < 2:  # ResNet-like scales: the folded path
            p = _with(p, left_shift=20, input1_shift=-2, input2_shift=0, output_shift=-17 - k)
        cases.append((p, bool(k % 2), None, None))
    return cases


def _with(p: AddParams, **kw) -> AddParams:
    return replace(p, **kw)


@pytest.fixture(scope="module")
def c_results(tmp_path_factory: pytest.TempPathFactory):
    cases = _cases()
    defs, body = [], []
    for i, (p, sub, x1, x2) in enumerate(cases):
        d, b = _case(i, p, sub, x1, x2)
        defs.append(d)
        body.append(b)
    src = PROLOGUE + "".join(defs) + "int main(void)\n{\n" + "".join(body) + "    return 0;\n}\n"
    d = tmp_path_factory.mktemp("add_fast")
    (d / "t.c").write_text(src)
    srcs = [RUNTIME_C / "src" / "elementwise" / f for f in ("mcuq_add_s8.c", "mcuq_sub_s8.c")]
    srcs += [RUNTIME_C / "src" / s for s in ADD_S8_DSP.sources + ADD_S8_MVE.sources]
    exe = d / "t"
    flags = ["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined", "-fno-sanitize-recover"]
    cmd = [host_cc(), *flags, f"-I{RUNTIME_C / 'include'}", str(d / "t.c"), *map(str, srcs), "-o", str(exe)]
    subprocess.run(cmd, check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True, timeout=60).stdout.splitlines()
    assert len(out) == len(cases)
    return cases, out


def test_fast_kernels_match_portable_bit_for_bit(c_results) -> None:
    cases, out = c_results
    for (p, sub, _, _), line in zip(cases, out, strict=True):
        bad = int(line.split()[0])
        assert bad == 0, f"{'sub' if sub else 'add'} size {p.broadcast.out_dims[-1]} {p}: {bad} mismatching runs"


def test_numpy_mirror_matches_portable_c(c_results) -> None:
    cases, out = c_results
    for (p, sub, x1, x2), line in zip(cases, out, strict=True):
        if x1 is None:
            continue
        ref = np.array([int(v) for v in line.split()[1:]], dtype=np.int8)
        np.testing.assert_array_equal(add_fast(fast_params(p, negate2=sub), x1, x2), ref, err_msg=str(p))


def test_tables_stay_in_range_and_broadcast_is_not_supported() -> None:
    for p, _, _, _ in _cases():
        fp = fast_params(p)
        assert np.abs(fp.input1_table).max() <= 2**29 and np.abs(fp.input2_table).max() <= 2**29
    col = Broadcast(np.array([1, 1, 1, 1, 4, 3], np.int32), np.array([0, 0, 0, 0, 3, 1], np.int32),
                    np.array([0, 0, 0, 0, 0, 1], np.int32))  # fmt: skip
    p = _with(_cases()[5][0], broadcast=col)
    assert not same_shape(p)
    assert ADD_S8_DSP.overlaps(fast_params(p), 2) == (0, 0)


# -- through compile_model: the variant is chosen, the bits are the portable kernel's ----------------------------


def _graph(kind, s1, s2):
    from tests.kernels.test_elementwise import A, binary

    return binary(kind, s1, s2, (0.08, -3), (0.11, 7), (0.15, -12), A.RELU)


@pytest.mark.parametrize("path", ["dsp", "mve"])
def test_compile_model_uses_the_variant(path: str) -> None:
    import mcuq
    from mcuq import ir
    from mcuq.frontend.tflite_writer import write

    rng = np.random.default_rng(7)
    same = _graph(ir.OpKind.ADD, (1, 5, 7, 3), (1, 5, 7, 3))
    sub = _graph(ir.OpKind.SUB, (1, 3, 11), (1, 3, 11))
    bcast = _graph(ir.OpKind.ADD, (1, 4, 6, 3), (3,))
    for g, fast in ((same, True), (sub, True), (bcast, False)):
        cm = mcuq.compile_model(write(g), prefix=f"t_{path}", kernels=path, sanitize=True)
        names = [la.kernel_name for la in cm.layers if la.kernel]
        want = f"mcuq_add_s8_{path}" if fast else "mcuq_add_s8"
        assert names == [want], names
        xs = [rng.integers(-128, 128, (3, *g.tensors[n].shape)).astype(np.int8) for n in g.inputs]
        got = cm.run(xs)[0]
        ref = np.stack([run_graph(g, [x[i] for x in xs])[g.outputs[0]] for i in range(3)])
        np.testing.assert_array_equal(got, ref.reshape(got.shape))


def test_sources_are_registered_with_the_right_overlap() -> None:
    assert Path(RUNTIME_C / "src" / ADD_S8_MVE.sources[0]).is_file()
    assert ADD_S8_MVE.in_place and ADD_S8_MVE.overlaps(None, 2) == (0, 0)


# -- on the Cortex-M targets (QEMU): every (x1, x2) pair, with a vector tail -----------------------------------------


@pytest.mark.qemu
@pytest.mark.skipif(not have_arm_toolchain(), reason="arm-none-eabi-gcc/qemu-system-arm not installed (make setup)")
@pytest.mark.parametrize("board, path", [("mps2-an386", "dsp"), ("mps3-an547", "mve")])
def test_all_pairs_in_qemu_match_portable(board: str, path: str) -> None:
    import mcuq
    from mcuq import ir
    from mcuq.frontend.tflite_writer import write
    from tests.kernels.test_elementwise import SUB_TIE_SCALES as t
    from tests.kernels.test_elementwise import A, binary

    j = np.arange(257 * 259)
    x1 = (j % 256 - 128).astype(np.int8).reshape(1, 257, 259)
    x2 = ((j // 256) % 256 - 128).astype(np.int8).reshape(1, 257, 259)
    graphs = [  # folded output rescale with a clamp; SUB's tie scales; the unfolded path (output shift -25)
        binary(ir.OpKind.ADD, (257, 259), (257, 259), (0.08, -3), (0.11, 7), (0.15, -12), A.RELU6),
        binary(ir.OpKind.SUB, (257, 259), (257, 259), (t[0], -128), (t[1], 127), (t[2], 0)),
        binary(ir.OpKind.SUB, (257, 259), (257, 259), (0.05, 3), (0.04, -9), (3.3, -100), A.RELU),
    ]
    for k, g in enumerate(graphs):
        model = write(g)
        want = mcuq.compile_model(model, board=board, kernels="portable", prefix=f"p{k}").run([x1, x2])[0]
        fast = mcuq.compile_model(model, board=board, kernels=path, prefix=f"p{k}")
        assert [la.kernel_name for la in fast.layers] == [f"mcuq_add_s8_{path}"]
        np.testing.assert_array_equal(fast.run([x1, x2])[0], want, err_msg=f"case {k} on {board}")
