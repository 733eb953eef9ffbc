"""Compile-time tables of TFLite 2.14's int16 (16x8) nonlinear kernels, computed in Python so that the C runtime
stays integer-only, bit-identical to the tables TFLite builds (tests/kernels/test_elementwise16.py sweeps every
int16 input of LOGISTIC and TANH and every exp-table point of SOFTMAX through the oracle).

* SOFTMAX (activations.cc, SoftmaxPrepare for int16): two 513-entry interpolation tables built by gen_lut
  (kernels/internal/common.h) in double: exp on [-10, 0] and 1 / (1 + x) on [0, 1], each value scaled by 32768 and
  rounded half away from zero; exp is the C library's ``exp``, which Python's math.exp calls, as TFLite does. Both
  tables are constants, independent of the model's scales.
* LOGISTIC and TANH: reference_integer_ops::Logistic / Tanh interpolate a 256-entry table of sigmoid(i / 24) in
  unsigned 0.16 fixed point (``sigmoid_table_uint16`` in common.h), stored here (``SIGMOID_TABLE_U16``) and in
  the C kernel.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

INT16_MIN, INT16_MAX = -32768, 32767
LUT16_SIZE = 513  # 512 segments and one end point (the last entry only gives the slope of the last segment)


def _round(v: float) -> float:
    """std::round on a double: half away from zero."""
    return math.copysign(math.floor(abs(v) + 0.5), v)


def gen_lut(fn: Callable[[float], float], lo: float, hi: float, num: int = LUT16_SIZE) -> np.ndarray:
    """TFLite's gen_lut (double): ``num - 1`` segments over [lo, hi], each entry the sample at the segment start in
    Q0.15, shifted by half the interpolation error at the segment's midpoint; the last entry the sample at ``hi``.
    Every step in double, ``fn`` the C library's double function, std::round half away from zero."""
    step = (hi - lo) / (num - 1)
    half_step = step / 2.0
    table = np.empty(num, dtype=np.int16)
    for i in range(num - 1):
        sample = _round(fn(lo + i * step) * 32768.0)
        midpoint_interp = _round((fn(lo + (i + 1) * step) * 32768.0 + _round(fn(lo + i * step) * 32768.0)) / 2.0)
        midpoint = _round(fn(lo + i * step + half_step) * 32768.0)
        bias = _round((midpoint_interp - midpoint) / 2.0)
        table[i] = min(max(sample - bias, -32768.0), 32767.0)
    table[num - 1] = min(max(_round(fn(hi) * 32768.0), -32768.0), 32767.0)
    return table


@functools.lru_cache(maxsize=1)
def softmax_luts() -> tuple[np.ndarray, np.ndarray]:
    """SoftmaxPrepare's (exp_lut, one_over_one_plus_x_lut) for int16: gen_lut of exp over [-10, 0] and of
    1 / (1 + x) over [0, 1]. Read-only int16[513] arrays. (LUTPopulate<int16_t> in float32, as newer TFLite builds
    them, differs in two entries of the second table; the exhaustive softmax test tells the two apart.)"""
    exp_lut = gen_lut(math.exp, -10.0, 0.0)
    recip = gen_lut(lambda v: 1.0 / (1.0 + v), 0.0, 1.0)
    exp_lut.setflags(write=False)
    recip.setflags(write=False)
    return exp_lut, recip


def lut16_lookup(value: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """TFLite's int16 LUTLookup (generic_int16_table_lookup): the table's segment ``256 + (value >> 7)`` and a
    linear interpolation with the low 7 bits, rounded; the sum wraps to int16 (TFLite casts it)."""
    v = np.asarray(value, dtype=np.int64)
    index = 256 + (v >> 7)
    offset = v & 0x7F
    lut64 = np.asarray(lut, dtype=np.int64)
    base = lut64[index]
    slope = ((lut64[index + 1] - base + 2**15) & 0xFFFF) - 2**15  # int16_t slope
    delta = (slope * offset + 64) >> 7
    return ((base + delta + 2**15) & 0xFFFF) - 2**15


# sigmoid(x) for x = i / 24, i in [0, 256), in unsigned 0.16 fixed point: TFLite's sigmoid_table_uint16 (common.h),
# which reference_integer_ops::Logistic and Tanh interpolate for int16. Its entries are within one of
# 65536 sigmoid(i / 24) but follow no rounding rule we could reproduce, so they are stored: read back from
# tflite-runtime 2.14 through int16 TANH at input scale 1/48, where each input x lands on table entry x
# exactly (tests/kernels/test_elementwise16.py re-derives them), and the last (65535) from its slope.
# fmt: off
SIGMOID_TABLE_U16 = (
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
)
# fmt: on


def sigmoid_table_u16() -> np.ndarray:
    """``SIGMOID_TABLE_U16`` as a read-only uint16 array (the C kernel holds the same table)."""
    t = np.array(SIGMOID_TABLE_U16, dtype=np.uint16)
    t.setflags(write=False)
    return t
