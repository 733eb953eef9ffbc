"""Seeded byte-level mutants of a valid .tflite model.

``mutant(model, seed)`` is a pure function of the model's bytes and the seed. Most edits land inside the
flatbuffer's content (weights, scales, zero points, shapes, tensor indices, the inline fields of tables, names:
see ``regions``), so that many mutants still parse and reach the lowering, the planner and the C; a few land
anywhere, and a few change the structure (truncate, copy a range over another, insert a copy of a range).

Edits: flip one bit, overwrite a byte, overwrite a whole element with an interesting value of its width (0, 0xff,
0x7f, 0x80, int32 and int64 extremes, NaN, infinities and denormals for scales), add a small delta to an element,
and write hostile characters into a name (NUL, newline, ESC, ``*/``, the ``??/`` trigraph, quotes). A metadata
buffer (the ``mcuq_weight_bits`` JSON of a packed-weight model) gets same-length text edits instead.
"""

from __future__ import annotations

import functools
import struct

import numpy as np

from .regions import Span, find_spans

# label -> weight; "anywhere" is the whole file
REGION_WEIGHTS = {
    "weights": 0.3,
    "scale": 0.1,
    "zero_point": 0.08,
    "shape": 0.12,
    "index": 0.07,
    "fields": 0.16,
    "name": 0.07,
    "anywhere": 0.1,
    "metadata": 0.12,  # last: a model without metadata draws exactly as before
}
STRUCTURAL = 0.08  # probability of one structural edit (truncate, copy over, insert)

INTERESTING = {
    1: (0, 1, 0x7F, 0x80, 0xFF, 0x10, 0x40),
    2: (0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x100),
    4: (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE),
    8: (0, 1, 0xFF, 0x80, 2**31, 2**32, 2**31 - 1, 2**63 - 1, 2**63, 2**64 - 1, 70_000_000_000_000),
}
SCALES = (0.0, -1.0, 1.0, 1e-45, 1e-30, 1e30, 3.4e38, float("nan"), float("inf"), float("-inf"), 256.0, 1 / 256)
# Same-length rewrites of a metadata JSON text (mcuq_weight_bits): other widths, indices, types, nesting, bad bytes.
JSON_TOKENS = (b"0", b"3", b"8", b"9", b"-", b"99999", b"NaN", b"1e9", b"true", b"null", b"[", b"{", b'"', b"\xff",
               b"\x00", b"-1", b"4.0", b"}", b"]", b",")  # fmt: skip
HOSTILE = (b"\x00", b"\n", b"\x1b[31m", b"*/", b"??/", b'"', b"\\", b"\r", b"\t", b"%s", b"\x7f", b"\xff\xfe")


@functools.lru_cache(maxsize=8)
def spans_of(model: bytes) -> dict[str, tuple[Span, ...]]:
    return {k: tuple(v) for k, v in find_spans(model).items()}


def _pick_span(rng: np.random.Generator, model: bytes) -> Span:
    spans = spans_of(model)
    labels = [k for k in REGION_WEIGHTS if k == "anywhere" or k in spans]
    w = np.array([REGION_WEIGHTS[k] for k in labels])
    label = labels[int(rng.choice(len(labels), p=w / w.sum()))]
    if label == "anywhere":
        return Span("anywhere", 0, len(model), 1)
    options = spans[label]
    return options[int(rng.integers(len(options)))]


def _element(rng: np.random.Generator, span: Span, width: int) -> int:
    """A position inside ``span`` aligned to its element size, with ``width`` bytes available."""
    width = min(width, span.length)
    slots = max(1, (span.length - width) // max(span.elem, 1) + 1)
    return span.start + int(rng.integers(slots)) * max(span.elem, 1)


def _edit(rng: np.random.Generator, buf: bytearray, span: Span) -> str:
    """One in-place edit inside ``span``; returns a short description."""
    if span.label == "metadata":
        return _json_edit(rng, buf, span)
    kind = ("flip", "byte", "interesting", "interesting", "arith", "hostile")[int(rng.integers(6))]
    if kind == "hostile" and span.label != "name":
        kind = "interesting"
    if kind == "interesting" and span.label == "scale":
        pos = _element(rng, span, 4)
        value = SCALES[int(rng.integers(len(SCALES)))]
        buf[pos : pos + 4] = struct.pack("<f", value)
        return f"scale@{pos}={value}"
    if kind == "interesting":
        widths = [w for w in (1, 2, 4, 8) if w <= span.length] or [1]
        width = span.elem if span.elem > 1 and rng.random() < 0.8 else widths[int(rng.integers(len(widths)))]
        width = min(width, span.length)
        pos = _element(rng, span, width)
        values = INTERESTING[width] if width in INTERESTING else INTERESTING[1]
        value = values[int(rng.integers(len(values)))]
        buf[pos : pos + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
        return f"set{width}@{pos}={value:#x}"
    if kind == "arith":
        width = span.elem if span.elem in (1, 4, 8) else 1
        pos = _element(rng, span, width)
        delta = int(rng.integers(1, 17)) * (1 if rng.random() < 0.5 else -1)
        old = int.from_bytes(buf[pos : pos + width], "little", signed=True)
        lo, hi = -(1 << (8 * width - 1)), (1 << (8 * width - 1)) - 1
        buf[pos : pos + width] = int(np.clip(old + delta, lo, hi)).to_bytes(width, "little", signed=True)
        return f"add{width}@{pos}{delta:+d}"
    if kind == "hostile":
        text = HOSTILE[int(rng.integers(len(HOSTILE)))][: span.length]
        pos = span.start + int(rng.integers(span.length - len(text) + 1))
        buf[pos : pos + len(text)] = text
        return f"name@{pos}={text!r}"
    pos = span.start + int(rng.integers(span.length))
    if kind == "flip":
        bit = int(rng.integers(8))
        buf[pos] ^= 1 << bit
        return f"flip@{pos}.{bit}"
    value = int(rng.integers(256))
    buf[pos] = value
    return f"byte@{pos}={value:#x}"


def _json_edit(rng: np.random.Generator, buf: bytearray, span: Span) -> str:
    """One same-length edit of a metadata text: a digit changed (another width or tensor index), a JSON token
    written over it, or a bit flipped."""
    text = bytes(buf[span.start : span.start + span.length])
    digits = [i for i, c in enumerate(text) if chr(c).isdigit()]
    r = rng.random()
    if r < 0.45 and digits:
        pos = span.start + digits[int(rng.integers(len(digits)))]
        value = b"0123456789-"[int(rng.integers(11))]
        buf[pos] = value
        return f"meta@{pos}={chr(value)}"
    if r < 0.9:
        token = JSON_TOKENS[int(rng.integers(len(JSON_TOKENS)))][: span.length]
        pos = span.start + int(rng.integers(span.length - len(token) + 1))
        buf[pos : pos + len(token)] = token
        return f"meta@{pos}={token!r}"
    pos = span.start + int(rng.integers(span.length))
    bit = int(rng.integers(8))
    buf[pos] ^= 1 << bit
    return f"metaflip@{pos}.{bit}"


def _structural(rng: np.random.Generator, buf: bytearray) -> str:
    n = len(buf)
    kind = ("truncate", "copy", "copy", "insert")[int(rng.integers(4))]
    if kind == "truncate":
        cut = int(rng.integers(n // 2, n)) if rng.random() < 0.7 else int(rng.integers(0, n))
        del buf[cut:]
        return f"truncate@{cut}"
    length = int(rng.integers(1, min(64, n) + 1))
    src = int(rng.integers(0, n - length + 1))
    dst = int(rng.integers(0, n - length + 1))
    chunk = bytes(buf[src : src + length])
    if kind == "copy":
        buf[dst : dst + length] = chunk
    else:
        buf[dst:dst] = chunk
    return f"{kind}{length}:{src}->{dst}"


def mutant(model: bytes, seed: int) -> tuple[bytes, str]:
    """The mutant of ``model`` for ``seed`` and a description of its edits (the same for the same inputs)."""
    rng = np.random.default_rng([0x6D637571, seed])
    buf = bytearray(model)
    edits = []
    count = min(int(rng.geometric(0.55)), 6) if rng.random() < 0.9 else 8
    for _ in range(count):
        edits.append(_edit(rng, buf, _pick_span(rng, model)))
    if rng.random() < STRUCTURAL:
        edits.append(_structural(rng, buf))
    return bytes(buf), " ".join(edits)
