"""One sanitizer for every C identifier mcuq generates (STYLE.md: `\\W` -> `_`, no leading digit, no keyword)."""

from __future__ import annotations

import re

C_KEYWORDS = frozenset(
    """auto break case char const continue default do double else enum extern float for goto if inline int long
    register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
    _Bool _Complex _Imaginary main""".split()
)


def c_identifier(name: str, max_len: int = 48) -> str:
    s = re.sub(r"\W", "_", name, flags=re.ASCII)
    s = re.sub(r"_+", "_", s).strip("_") or "t"
    if s[0].isdigit():
        s = "t_" + s
    s = s[:max_len].rstrip("_") or "t"
    if s in C_KEYWORDS:
        s += "_"
    return s


class Namer:
    """Hands out unique identifiers, de-duplicating with a numeric suffix (deterministic: first come first served)."""

    def __init__(self, reserved: tuple[str, ...] = ()) -> None:
        self._used: set[str] = set(reserved)

    def __call__(self, name: str, max_len: int = 48) -> str:
        base = c_identifier(name, max_len)
        s, n = base, 1
        while s in self._used:
            n += 1
            s = f"{base}_{n}"
        self._used.add(s)
        return s
