"""Values written into generated Makefiles and CMakeLists.txt as data, never as code.

A board file comes from elsewhere: its flags, QEMU machine and names must not run anything in ``make``, the
shell or CMake. Each value is one word: in a Makefile it is quoted for the shell and ``$`` is doubled (so make
expands nothing), in CMake it is a quoted argument with ``\\``, ``"`` and ``$`` escaped. Control characters
(a newline would end the line) are refused, and in CMake ``;``, ``\\``, ``[`` and ``]`` too (they split or join
list items). Names in comments only lose their control characters.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from ..errors import McuqError


def _control(s: str) -> bool:
    return any(ord(c) < 32 or c == "\x7f" for c in s)


def unsafe_word(words: Iterable[str], cmake: bool = False) -> str | None:
    """The first of ``words`` that cannot be written as one word: a control character; for CMake also ``;``,
    ``\\``, ``[`` or ``]`` (a list splits on ``;`` unless a backslash or brackets hide it)."""
    for w in words:
        if not isinstance(w, str) or _control(w) or (cmake and any(c in w for c in ";\\[]")):
            return w
    return None


def _refuse(words: Iterable[str], cmake: bool, what: str) -> None:
    bad = unsafe_word(words, cmake)
    if bad is not None:
        raise McuqError(f"{str(bad)[:60]!r} cannot be written into a {what} as one word")


_MAKE_HASH = re.compile(r"(\\*)#")


def _hash(m: re.Match[str]) -> str:
    """k backslashes and a literal ``#`` in a make line: 2k+1 backslashes, then ``#`` (make halves the run)."""
    return "\\" * (2 * len(m.group(1)) + 1) + "#"


def make_words(words: Iterable[str]) -> str:
    """``words`` as the value of a make variable that a recipe passes to the shell as exactly these words:
    each quoted for the shell (``shlex.quote``), ``$`` doubled and ``#`` escaped for make."""
    words = list(words)
    _refuse(words, False, "Makefile")
    return " ".join(_MAKE_HASH.sub(_hash, shlex.quote(w).replace("$", "$$")) for w in words)


def cmake_items(words: Iterable[str]) -> str:
    """``words`` as CMake quoted arguments (``set(VAR <items>)`` makes a list of exactly these items)."""
    words = list(words)
    _refuse(words, True, "CMakeLists.txt")
    esc = {"\\": "\\\\", '"': '\\"', "$": "\\$"}
    return " ".join('"' + "".join(esc.get(c, c) for c in w) + '"' for w in words)


def comment_text(s: object) -> str:
    """``s`` for a ``#`` comment in a Makefile or CMakeLists.txt: control characters become ``?``; a trailing
    backslash (make's line continuation) gets a space after it."""
    text = "".join("?" if ord(c) < 32 or c == "\x7f" else c for c in str(s))
    return text + " " if text.endswith("\\") else text


FILTERS = {"make_words": make_words, "cmake_items": cmake_items, "comment": comment_text}
