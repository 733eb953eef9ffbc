"""Every model-derived string that reaches generated C goes through one of these:

* :func:`c_identifier` (and :class:`Namer`) for identifiers: ``\\W`` -> ``_``, no leading digit, no keyword;
* :func:`c_comment` for text inside ``/* ... */``;
* :func:`c_string` for the contents of a ``"..."`` literal;
* :func:`choose_prefix` for the model's prefix, which also names files and macros.

Invariants (tested on hostile names: NUL, newlines, ``*/``, ``/*``, ``??/``, quotes, backslashes, ESC, unicode,
very long names): the results are ASCII, one line, hold no trigraph (``??``), and a comment's text holds neither
``*/`` nor ``/*`` and does not end in a backslash (no line splice into the next line).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .._paths import RUNTIME_C, TEMPLATES
from ..errors import join_within

C_KEYWORDS = frozenset(
    """auto break case char const continue default do double else enum extern float for goto if inline int long
    register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
    _Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic _Noreturn _Static_assert _Thread_local main""".split()
)

COMMENT_LIMIT = 200  # characters of escaped text in one comment line
_NAMED = {"\n": "n", "\t": "t", "\r": "r"}


def c_identifier(name: str, max_len: int = 48) -> str:
    """A C identifier from ``name``: ASCII letters, digits and ``_`` only (anything else, NUL and non-ASCII
    included, becomes ``_``), no leading digit or underscore (so never a reserved ``_X``/``__x`` name), at most
    ``max_len`` characters, never a keyword."""
    s = re.sub(r"\W", "_", name, flags=re.ASCII)
    s = re.sub(r"_+", "_", s).strip("_") or "t"
    if s[0].isdigit():
        s = "t_" + s
    s = s[:max_len].rstrip("_") or "t"
    if s in C_KEYWORDS:
        s += "_"
    return s


def _comment_token(ch: str, prev: str) -> str:
    if ch == "\\":
        return "\\\\"
    if (ch == "?" and prev == "?") or (ch == "/" and prev == "*") or (ch == "*" and prev == "/"):
        return "\\" + ch  # breaks trigraphs (??/ and friends), */ and /*
    if ch in _NAMED:
        return "\\" + _NAMED[ch]
    o = ord(ch)
    if o < 0x20 or o == 0x7F:
        return f"\\x{o:02x}"
    if o > 0x7F:
        return f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}"
    return ch


def c_comment(s: str, limit: int = COMMENT_LIMIT) -> str:
    """``s`` as text that is safe inside ``/* ... */`` on one line: control characters, NUL, backslashes and
    non-ASCII are shown as C-style escapes (``\\n``, ``\\x1b``, ``\\\\``, ``\\u00e9``), ``*/``, ``/*`` and
    ``??`` are broken with a backslash (``*\\/``, ``/\\*``, ``?\\?``), and a text longer than ``limit`` loses its
    middle to ``...``. The result never ends in a backslash."""
    tokens = [_comment_token(ch, s[i - 1] if i else "") for i, ch in enumerate(s)]
    if tokens and tokens[-1] == "\\\\":  # a backslash before the newline would splice the next line
        tokens[-1] = "\\x5c"
    return join_within(tokens, limit)  # ends with the last token or with "..."


def c_string(s: str) -> str:
    """The contents of a C string literal whose bytes are ``s`` in UTF-8: ``\\``, ``"`` and a ``?`` after a ``?``
    (trigraphs) are escaped, newline and tab are ``\\n``/``\\t``, every other control, NUL or non-ASCII byte is a
    three-digit octal escape (which cannot take in a following digit, unlike ``\\x``)."""
    out = []
    prev = 0
    for b in s.encode("utf-8", "backslashreplace"):
        c = chr(b)
        if c in '\\"' or (c == "?" and prev == ord("?")):
            out.append("\\" + c)
        elif c in "\n\t":
            out.append("\\" + _NAMED[c])
        elif b < 0x20 or b >= 0x7F:
            out.append(f"\\{b:03o}")
        else:
            out.append(c)
        prev = b
    return "".join(out)


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


# -- the model's prefix ----------------------------------------------------------------------------------------
# Names of files that the generated projects write or build besides <prefix>.c/.h (the rest come from the
# template and runtime folders, see project_stems()), and the C standard's headers plus those that the C
# libraries' standard headers include by a bare name (glibc, newlib): a <prefix>.h of one of these names next to
# the sources, on an -I path, would shadow it.
PROJECT_STEMS = ("runner", "main", "startup", "linker", "build")
C_HEADERS = frozenset(
    """assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal stdalign stdarg
    stdatomic stdbit stdbool stdckdint stddef stdint stdio stdlib stdnoreturn string tgmath threads time uchar
    wchar wctype features syslimits alloca strings endian malloc memory unistd newlib ieeefp reent
    arm_acle arm_cmse arm_fp16 arm_bf16 arm_mve arm_neon""".split()
)
RESERVED_START = "mcuq"  # mcuq's runtime, firmware files, markers and I/O files


@functools.lru_cache(maxsize=1)
def project_stems() -> frozenset[str]:
    """Lower-cased stems that a prefix must not take: every file of runtime_c/, every template (as the file it
    renders to: ``main.c.j2`` -> ``main``) and :data:`PROJECT_STEMS`. Computed from the folders, so a new runtime
    file or template is reserved without a change here."""
    stems = {s.lower() for s in PROJECT_STEMS}
    stems |= {p.name.split(".")[0].lower() for p in RUNTIME_C.rglob("*") if p.is_file()}
    stems |= {p.name.split(".")[0].lower() for p in TEMPLATES.rglob("*.j2") if p.parent != TEMPLATES}
    stems.add("host_main")  # templates/host_main.c.j2 (the host runner, written as runner.c)
    return frozenset(stems)


@dataclass(frozen=True)
class Prefix:
    """The prefix chosen for a requested one: ``name`` is a C identifier that names no runtime or project file
    (case-insensitively) and is used for ``<name>.c``, ``<name>.h``, ``<name>_invoke`` and ``<NAME>_*`` macros.
    ``note`` says why the request was rewritten ("" when it was used as given)."""

    name: str
    note: str = ""


def _clash(name: str) -> str:
    low = name.lower()
    if low.startswith(RESERVED_START):
        return f"names starting with '{RESERVED_START}' are mcuq's own"
    if low in C_HEADERS:
        return f"{low}.h would shadow the C header <{low}.h>"
    if low in project_stems():
        return f"'{name}' names a file of the generated project or of mcuq's runtime"
    return ""


def choose_prefix(requested: str, explicit: bool = True) -> Prefix:
    """A usable prefix for ``requested``: :func:`c_identifier` of it, and ``model_<it>`` when that clashes with
    a reserved name (:func:`project_stems`, the C headers, anything starting with ``mcuq``).

    A rewrite gets a note, except, when the prefix was not ``explicit`` (it comes from the model's file name),
    the plain replacement of characters that C identifiers cannot hold (``my-model`` -> ``my_model``)."""
    name = c_identifier(requested)
    reason = ""
    if name != requested:
        plain = re.sub(r"_+", "_", re.sub(r"\W", "_", requested, flags=re.ASCII)).strip("_")
        if not requested.strip():
            reason = "it is empty"
        elif name == plain + "_":
            reason = "main is the program's entry point" if plain == "main" else "it is a C keyword"
        elif name.startswith("t_") and plain[:1].isdigit():
            reason = "a C identifier cannot start with a digit"
        elif len(plain) > len(name):
            reason = f"it is longer than {len(name)} characters"
        elif explicit:
            reason = "a prefix holds only ASCII letters, digits and single '_' between them"
    clash = _clash(name)
    if clash:
        name = c_identifier(f"model_{name}")
        reason = f"{reason}; {clash}" if reason else clash
    if not reason:
        return Prefix(name)
    shown = c_comment(requested, 60)  # one line, ASCII, escaped: safe on a terminal as it is in C
    return Prefix(name, f"prefix '{shown}' is not usable ({reason}); using '{name}'")
