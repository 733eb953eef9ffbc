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
    band_rows: int = i32(1)  # output rows of second per call of second_kernel


def ring_bytes(p: BandConvParams) -> int:
    """The ring of rows, rounded up to 16 bytes (the kernels' scratch follows it, aligned as the arena is)."""
    return -(-p.ring_rows * p.first.output.w * p.first.output.c // 16) * 16


def rows_needed(p: BandConvParams, r: int) -> tuple[int, int]:
    """Rows [lo, hi) of the first convolution's output that output row r of the second reads."""
    b = p.second
    top = r * b.window.stride.h - b.window.pad.h
    return max(top, 0), min(top + b.window.filter.h, p.first.output.h)


def bands(p: BandConvParams) -> list[tuple[int, int, int, int]]:
    """(r0, r1, lo, hi) per call of the second kernel: output rows [r0, r1) read rows [lo, hi) of the first
    convolution's output (as the C computes them)."""
    out = []
    for r0 in range(0, p.second.output.h, p.band_rows):
        r1 = min(r0 + p.band_rows, p.second.output.h)
        out.append((r0, r1, rows_needed(p, r0)[0], rows_needed(p, r1 - 1)[1]))
    return out


def band_overlap(p: BandConvParams) -> tuple[int | None, ...]:
    """A band's output rows [r0, r1) are written after the input rows below hi were read, and no later: D = min
    over every band but the last of hi * input row bytes - r1 * output row bytes."""
    in_row = p.first.input.w * p.first.input.c
    out_row = p.second.output.w * p.second.output.c
    d = NEVER
    for _, r1, _, hi in bands(p)[:-1]:
        d = min(d, hi * in_row - r1 * out_row)
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
