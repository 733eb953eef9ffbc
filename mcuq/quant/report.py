"""The quantization report: per layer, the output quantization chosen and what it cost.

Each row is one tensor of the int8 graph that an op (or the model input) produces: its scale and zero point, how
they were chosen (a calibration method, "fixed" by TFLite's spec, or tied to an input the op cannot requantize),
the fraction of the float model's values that fall outside the int8 range (clipped), and the SQNR in dB of the
int8 pipeline's value against the float model's for that tensor on the calibration data. The int8 pipeline runs
all the layers before it, so a row's SQNR includes every earlier layer's error, as on the device. The report ends
with the end-to-end SQNR of the model's outputs (the lowest, when there are several). SQNR is ``None`` (shown as
"exact") when the int8 result equals the float one. The rows with the lowest SQNR are marked ``worst``: the
three lowest, or the lowest one in a model of three layers or fewer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from ..errors import printable

WORST_COUNT = 3


@dataclass(frozen=True)
class LayerReport:
    tensor: str
    op: str  # the op that produces it (``op.where``), or "input"
    kind: str  # its type name (CONV_2D, ...), or INPUT
    scale: float
    zero_point: int
    method: str
    clipped: float  # fraction of the float values outside the int8 range
    sqnr_db: float | None  # None: exact
    worst: bool = False
    activations: str = "int8"  # the tensor's integer type: "int8" or "int16"
    weight_bits: int | None = None  # layers (conv, depthwise, fully connected): the weights' width
    rounding: str | None = None  # layers: "nearest", "gptq" or "adaround"
    sqnr_nearest_db: float | None = None  # layers with another rounding: this SQNR with round-to-nearest weights

    @property
    def rounding_gain_db(self) -> float | None:
        """What the rounding gained over round-to-nearest at this layer's output (dB; None: nothing to compare)."""
        if self.rounding in (None, "nearest") or self.sqnr_db is None or self.sqnr_nearest_db is None:
            return None
        return self.sqnr_db - self.sqnr_nearest_db


@dataclass(frozen=True)
class QuantReport:
    layers: tuple[LayerReport, ...]
    outputs: tuple[tuple[str, float | None], ...]  # (output tensor, end-to-end SQNR dB)
    method: str
    bias_correction: bool
    samples: int
    rounding: str = "auto"
    notes: tuple[str, ...] = ()  # fixed quantization: edges resolved from a neighbour, requantizes inserted

    @property
    def sqnr_db(self) -> float | None:
        """The model's end-to-end SQNR: the lowest over its outputs (None when every output is exact)."""
        values = [v for _, v in self.outputs if v is not None]
        return min(values) if values else None

    @staticmethod
    def build(
        layers: Sequence[LayerReport],
        outputs: Sequence[tuple[str, float | None]],
        *,
        method: str,
        bias_correction: bool,
        samples: int,
        rounding: str = "auto",
    ) -> QuantReport:
        rows = list(layers)
        scored = sorted((r.sqnr_db, i) for i, r in enumerate(rows) if r.sqnr_db is not None)
        count = WORST_COUNT if len(rows) > WORST_COUNT else 1
        for _, i in scored[:count]:
            rows[i] = replace(rows[i], worst=True)
        return QuantReport(tuple(rows), tuple(outputs), method, bias_correction, samples, rounding)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "bias_correction": self.bias_correction,
            "samples": self.samples,
            "rounding": self.rounding,
            "layers": [{**asdict(r), "rounding_gain_db": r.rounding_gain_db} for r in self.layers],
            "outputs": [{"tensor": n, "sqnr_db": v} for n, v in self.outputs],
            "sqnr_db": self.sqnr_db,
            "notes": list(self.notes),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def table(self) -> str:
        """The report as an aligned text table (names made printable), then the end-to-end line."""
        head = ("layer", "op", "act", "weights", "scale", "zp", "method", "clipped", "SQNR dB", "rounding gain", "")
        rows = [
            (
                printable(r.tensor, 40),
                r.kind,
                r.activations,
                "" if r.weight_bits is None else f"{r.weight_bits}b {r.rounding}",
                f"{r.scale:.6g}",
                str(r.zero_point),
                printable(r.method, 40),
                f"{100 * r.clipped:.3f}%",
                _db(r.sqnr_db) if self.samples else "-",
                "" if r.rounding_gain_db is None else f"{r.rounding_gain_db:+.2f} dB",
                "<- worst" if r.worst else "",
            )
            for r in self.layers
        ]
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
        right = {4, 5, 7, 8, 9}

        def line(cells: Sequence[str]) -> str:
            return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        out = [line(head).rstrip(), line(["-" * w for w in widths]).rstrip()]
        out += [line(r).rstrip() for r in rows]
        outs = ", ".join(f"{printable(n, 40)} {_db(v)} dB" for n, v in self.outputs)
        if not self.samples:  # fixed quantization without calibration data: nothing to measure
            out.append(f"given quantization, no calibration data: no SQNR measured; method {self.method}")
        else:
            out.append(
                f"end-to-end SQNR against the float model: {_db(self.sqnr_db)} dB ({outs}); "
                f"{self.samples} calibration sample(s), method {self.method}, "
                f"bias correction {'on' if self.bias_correction else 'off'}, rounding {self.rounding}"
            )
        out += [f"note: {printable(n, 400)}" for n in self.notes]
        return "\n".join(out)


def _db(v: float | None) -> str:
    if v is None:
        return "exact"
    if math.isinf(v):
        return "-inf" if v < 0 else "inf"
    return f"{v:.2f}"
