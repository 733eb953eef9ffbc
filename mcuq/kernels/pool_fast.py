"""Fast pooling variants (runtime_c/include/mcuq_pool.h): AVERAGE_POOL_2D over four channels at a time."""

from __future__ import annotations

from .pool import Pool2DParams
from .registry import Kernel, c_define, register
from .variants import Variant, variant

AVG_POOL_DSP_MAX_TAPS = c_define("MCUQ_AVG_POOL_DSP_MAX_TAPS", 255)

AVERAGE_POOL2D_S8_DSP = register(
    Kernel(
        "mcuq_average_pool2d_s8_dsp",
        Pool2DParams,
        ("pool/mcuq_average_pool2d_s8_dsp.c",),
        code_bytes=1652,
        variant="dsp",
        context=True,
    )
)
# Any window: larger than MCUQ_AVG_POOL_DSP_MAX_TAPS taps, the kernel runs the portable loop itself. The mve path
# takes it too (the Cortex-M55 has the DSP extension).
variant(Variant(replaces="mcuq_average_pool2d_s8", path="dsp", kernel=AVERAGE_POOL2D_S8_DSP))
