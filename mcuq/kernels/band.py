"""Band execution (runtime_c/include/mcuq_band.h): a 1x1 convolution and the convolution it feeds, run row band by
row band, so that the tensor between them never exists whole (MCUNetV2's patch-based inference, streamed with a
ring of rows instead of recomputed halos: no extra MACs)."""

from __future__ import annotations

from dataclasses import dataclass

from .conv import Conv2DParams
from .cstruct import CStruct, function, i32
from .overlap import NEVER
from .registry import Kernel, register


@dataclass(frozen=True, eq=False)
class BandConvParams(CStruct, c_name="mcuq_band_conv_params"):
    first: Conv2DParams
    second: Conv2DParams
    first_kernel: str = function("mcuq_conv_fn")
    second_kernel: str = function("mcuq_conv_fn")
    ring_rows: int = i32(1)
    kernel_scratch: int = i32(0)


def ring_bytes(p: BandConvParams) -> int:
    """The ring of rows, rounded up to 16 bytes (the kernels' scratch follows it, aligned as the arena is)."""
    return -(-p.ring_rows * p.first.output.w * p.first.output.c // 16) * 16


def rows_needed(p: BandConvParams, r: int) -> tuple[int, int]:
    """Rows [lo, hi) of the first convolution's output that output row r of the second reads."""
    b = p.second
    top = r * b.window.stride.h - b.window.pad.h
    return max(top, 0), min(top + b.window.filter.h, p.first.output.h)


def band_overlap(p: BandConvParams) -> tuple[int | None, ...]:
    """Output row r is written after the input rows below hi(r) were read, and no later: D = min over every row
    but the last of hi(r) * input row bytes - (r + 1) * output row bytes."""
    in_row = p.first.input.w * p.first.input.c
    out_row = p.second.output.w * p.second.output.c
    d = NEVER
    for r in range(p.second.output.h - 1):
        d = min(d, rows_needed(p, r)[1] * in_row - (r + 1) * out_row)
    return (d, None, None, None, None)


BAND_CONV_S8 = register(
    Kernel(
        "mcuq_band_conv_s8",
        BandConvParams,
        ("band/mcuq_band_conv_s8.c",),
        code_bytes=744,
        context=True,
        scratch=lambda p: ring_bytes(p) + p.kernel_scratch,
        overlap=band_overlap,
    )
)
