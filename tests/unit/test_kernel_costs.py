"""The measured instruction table of the budgeted solver (mcuq.quant.costs.INSTRUCTIONS, benchmarks/kernel_costs.py):

- it covers every kernel the registry can pick on the Cortex-M4 (portable and dsp kernels) and the Cortex-M55
  (portable, mve and the dsp fallbacks), every weight width of the kernels that serve several;
- a kernel missing from it is estimated by a stated fallback, never silently;
- its block in costs.py is the tool's rendering (sorted, between the markers);
- on the digits CNN at several precisions the estimate is within TOLERANCE of the exact QEMU count (qemu).
"""

from __future__ import annotations

import dataclasses
import re
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from mcuq.kernels import KERNELS
from mcuq.kernels.variants import VARIANTS
from mcuq.quant import costs
from tests.conftest import ROOT, have_arm_toolchain

sys.path.insert(0, str(ROOT / "benchmarks"))
import kernel_costs  # noqa: E402

TOLERANCE = 0.15  # estimate vs measured instructions of one inference of the digits CNN
PATHS = {"cortex-m4": ("dsp",), "cortex-m55": ("mve", "dsp")}
BAND = "mcuq_band_conv_s8"  # estimated as the sum of the layers it runs


def _width_fields(kernel) -> list[str]:
    return [f.name for f in dataclasses.fields(kernel.params) if f.name in ("bits", "weight_bits")]


def pickable(cpu: str) -> set[str]:
    """Table keys the compiler can ask for on ``cpu``: every portable kernel (each weight width of one that serves
    several) and the fast variants of the CPU's paths (an mve board falls back to dsp variants)."""
    keys: set[str] = set()
    for k in KERNELS.values():
        if k.variant != "portable" or k.name == BAND:
            continue
        widths = _width_fields(k)
        if not widths:
            keys.add(k.name)
            continue
        keys |= {f"{k.name}/w{b}" for b in (4, 2, 1)}
        if widths[0] == "weight_bits":  # the 16x8 kernels serve 8-bit weights too (``bits``: packed only)
            keys.add(k.name)
    keys |= {v.kernel.name for v in VARIANTS if v.path in PATHS[cpu]}
    return keys


def _covered(key: str, table: dict) -> bool:
    """``key`` is in the table; a fast variant counts when it is there for at least one weight width."""
    return key in table or any(k.startswith(key + "/w") for k in table)


@pytest.mark.parametrize("cpu", sorted(PATHS))
def test_table_covers_every_kernel_the_compiler_can_pick(cpu: str) -> None:
    table = costs.INSTRUCTIONS.get(cpu, {})
    missing = sorted(k for k in pickable(cpu) if not _covered(k, table))
    assert not missing, f"{cpu}: not measured (run `{kernel_costs.COMMAND}`): {missing}"
    for key, c in table.items():
        assert min(c.per_mac, c.per_output, c.per_input, c.per_call) >= 0.0, key
        assert c.samples >= 1 and c.estimate(0, 1, 1) > 0, key


def test_table_block_is_the_tools_rendering() -> None:
    text = (ROOT / "mcuq" / "quant" / "costs.py").read_text()
    block = re.search(rf"^{re.escape(kernel_costs.BEGIN)}.*?^{re.escape(kernel_costs.END)}$", text, re.S | re.M)
    assert block is not None and text.count(kernel_costs.BEGIN) == 1
    fits = {
        cpu: {k: kernel_costs.Fit(c.per_mac, c.per_output, c.per_input, c.per_call, c.max_err, c.rms_err, c.samples)
              for k, c in t.items()}
        for cpu, t in costs.INSTRUCTIONS.items()
    }  # fmt: skip
    boards = re.search(r"benchmarks/kernel_costs.py on (.*?), kernel paths", block.group(0).replace("\n# ", " "))
    assert boards is not None
    assert kernel_costs.render_block(fits, tuple(boards.group(1).split(", "))) == block.group(0)


def test_missing_kernel_falls_back_with_a_note(monkeypatch) -> None:
    """A kernel absent from the table: the same kernel on another CPU, else its portable kernel, else the
    placeholder rates, each with a note naming the kernel."""
    from mcuq.kernels.conv import CONV2D_S8

    fake = costs.KernelCost(1.0, 2.0, 0.0, 10.0, 0.0, 0.0, 3)
    monkeypatch.setattr(costs, "INSTRUCTIONS", {"cortex-m4": {"mcuq_conv2d_s8": fake}})
    monkeypatch.setattr(costs, "_NOTES", {})

    y = SimpleNamespace(size=5, shape=(1, 5), is_const=False)
    g = SimpleNamespace(tensors={"y": y})
    common = dict(params=None, parts=(), macs=100, outputs=("y",), inputs=(), consts={})
    base = SimpleNamespace(kernel=CONV2D_S8, kernel_name=CONV2D_S8.name, base=None, **common)
    fast = SimpleNamespace(kernel=KERNELS["mcuq_conv2d_s8_dsp"], kernel_name="mcuq_conv2d_s8_dsp", base=base, **common)
    assert costs.layer_instructions(base, g, "cortex-m55") == fake.estimate(100, 5, 0)
    assert costs.layer_instructions(fast, g, "cortex-m4") == fake.estimate(100, 5, 0)
    notes = costs.instruction_notes()
    assert any("mcuq_conv2d_s8 is not in the cortex-m55 table, estimated from the cortex-m4" in n for n in notes)
    assert any("mcuq_conv2d_s8_dsp is not in the cortex-m4 table, estimated as mcuq_conv2d_s8" in n for n in notes)
    monkeypatch.setattr(costs, "INSTRUCTIONS", {})
    assert costs.layer_instructions(base, g, "cortex-m4") == 100 * costs.DEFAULT_PER_MAC
    assert any("re-run benchmarks/kernel_costs.py" in n for n in costs.instruction_notes())


def test_cost_key_names_the_weight_width() -> None:
    from mcuq.kernels.lowbit import CONV2D_S8_LOWBIT, LowbitConv2DParams

    params = object.__new__(LowbitConv2DParams)
    object.__setattr__(params, "bits", 2)
    assert (
        costs.cost_key(SimpleNamespace(kernel_name=CONV2D_S8_LOWBIT.name, params=params))
        == CONV2D_S8_LOWBIT.name + "/w2"
    )
    assert costs.cost_key(SimpleNamespace(kernel_name="mcuq_conv2d_s16", params=None)) == "mcuq_conv2d_s16"


PRECISIONS = ((8, "int8"), (4, "int8"), (2, "int8"), (8, "int16"), (4, "int16"))


@pytest.mark.qemu
@pytest.mark.skipif(not have_arm_toolchain(), reason="arm-none-eabi-gcc or qemu-system-arm not installed")
def test_digits_estimate_within_tolerance_of_qemu() -> None:
    pytest.importorskip("sklearn", reason="scikit-learn (the `examples` extra) provides the digits data set")
    import mcuq
    from mcuq.firmware.profile import profile
    from mcuq.quant.ptq import Quantizer
    from tests.util import digits_float as df

    tr = df.train()
    q = Quantizer(df.float_graph(tr.params), tr.x_train[:64].astype(np.float32)[:, None])
    rows = []
    for bits, act in PRECISIONS:
        qm = q.quantize(weight_bits=bits, activations=act, rounding="nearest")
        for board in kernel_costs.BOARDS:
            cm = mcuq.compile_model(qm, board=board, sanitize=False)
            cpu = costs.cpu_of(board)
            est = sum(costs.layer_instructions(la, cm.graph, cpu) for la in cm.layers)
            got = profile(cm, cm.target).instructions
            rows.append((bits, act, board, round(est), got, est / got - 1.0))
    bad = [r for r in rows if abs(r[-1]) > TOLERANCE]
    assert not bad, f"estimates off by more than {TOLERANCE:.0%}: {bad} (all: {rows})"
