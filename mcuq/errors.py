"""Errors that the CLI turns into one-line messages and exit status 2, and the one function, :func:`printable`,
through which every string that reaches a terminal goes (messages, warnings, names in ``mcuq inspect``).

A message may hold model-derived text (tensor and op names, file names): escape sequences, NUL bytes and
newlines included. ``str(e)`` keeps it as raised (a compiler log stays readable in a traceback); whoever prints
one to a terminal passes it through :func:`printable` first, as the CLI does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

NAME_LIMIT = 300  # characters: one name, or one message, as shown on a terminal
MESSAGE_LIMIT = 1000  # characters: a ModelError's message (file, op, names and the reason, escaped)
ELLIPSIS = "..."


class McuqError(Exception):
    """Base class: a problem with the user's input or environment that mcuq explains in one line."""

    exit_code = 2


class ModelError(McuqError):
    """The model file is unreadable, malformed or uses something mcuq does not support.

    ``source`` is the model file; the message should name the op (``op.where``) and the reason.
    """

    def __init__(self, source: str, message: str) -> None:
        # Model-derived text (names, shapes) is made one printable line of bounded length here, so that the
        # exception itself is safe to show anywhere, not only through the CLI.
        self.source = source
        self.message = printable(message, MESSAGE_LIMIT)
        super().__init__(printable(f"{source}: {message}" if source else message, MESSAGE_LIMIT))


class BuildError(McuqError):
    """The C compiler or the generated program failed."""


class FitError(McuqError):
    """The model does not fit the board's flash or RAM."""


def join_within(tokens: Sequence[str], limit: int) -> str:
    """``"".join(tokens)``, or, when that is longer than ``limit``, its head and tail (whole tokens, about 2:1)
    around ``...``, at most ``limit`` characters in all. The middle goes so that both the start of a message (the
    file, the op) and its end (the reason) stay."""
    if sum(map(len, tokens)) <= limit:
        return "".join(tokens)
    room = max(limit - len(ELLIPSIS), 0)
    head: list[str] = []
    n = 0
    for t in tokens:
        if n + len(t) > room * 2 // 3:
            break
        head.append(t)
        n += len(t)
    tail: list[str] = []
    for t in reversed(tokens[len(head) :]):
        if n + len(t) > room:
            break
        tail.append(t)
        n += len(t)
    return "".join(head) + ELLIPSIS + "".join(reversed(tail))


_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _shown(ch: str) -> str:
    if ch.isprintable():  # False for C0/C1 controls (ESC, CSI), NUL, bidi and other format characters, surrogates
        return ch
    if ch in _NAMED:
        return _NAMED[ch]
    o = ord(ch)
    return f"\\x{o:02x}" if o <= 0xFF else f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}"


def printable(s: object, limit: int = NAME_LIMIT) -> str:
    """``s`` (``str(s)`` for anything else) as one line that is safe on a terminal: newline, tab and every other
    non-printable character (ESC and the other controls, NUL, bidi overrides, lone surrogates) shown escaped as
    ``\\n``, ``\\x1b``, ``\\u202e``; longer than ``limit`` characters, it loses its middle to ``...``."""
    text = s if isinstance(s, str) else str(s)
    if text.isprintable() and len(text) <= limit:
        return text
    return join_within([_shown(ch) for ch in text], limit)


class OneLineWarnings(logging.Handler):
    """The CLI's log handler: holds warnings back while a command runs, then :meth:`flush_to` writes each
    distinct message once, as one :func:`printable` line (a repeat count appended), or :meth:`discard` drops them
    when the command ends in an error, whose one line is then all the user sees."""

    def __init__(self, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = printable(f"mcuq: {record.levelname.lower()}: {record.getMessage()}")
        except Exception:  # a broken log call must not hide the command's own outcome
            self.handleError(record)
            return
        self.counts[text] = self.counts.get(text, 0) + 1

    def flush_to(self, stream) -> None:
        for text, n in self.counts.items():
            print(text + (f" ({n} times)" if n > 1 else ""), file=stream)
        self.counts.clear()

    def discard(self) -> None:
        self.counts.clear()
