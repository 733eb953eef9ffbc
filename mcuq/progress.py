"""A progress bar for the slow loops (calibration, reading a folder of samples), through tqdm.

The bar is for a person watching a terminal, so it stays off whenever nobody is: when stderr is not a terminal
(a pipe, a log file, pytest's capture), or when ``MCUQ_PROGRESS=0``. It appears only once a loop has run for a
second (tqdm's ``delay``), so fast runs print nothing, and it erases itself when the loop ends (``leave=False``),
so that the command's own output and its one-line errors read as if it had never been there. stdout is never
touched: it may carry the command's results.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

DELAY_S = 1.0  # seconds a loop runs before its bar appears


def enabled(stream: object | None = None) -> bool:
    """Whether a bar may be drawn on ``stream`` (default: the current sys.stderr)."""
    if os.environ.get("MCUQ_PROGRESS", "").strip() == "0":
        return False
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # a closed or detached stream
        return False


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "sample") -> Iterator[T]:
    """The items of ``iterable``, in order, with a bar on stderr while the loop takes longer than a second.

    ``total`` (default ``len(iterable)`` where it has one) lets the bar show a fraction and a time left."""
    stream = sys.stderr  # looked up per call: tests and the CLI may replace it
    if not enabled(stream):
        return iter(iterable)
    from tqdm import tqdm  # imported only when a bar may be drawn

    bar = tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        file=stream,
        delay=DELAY_S,
        leave=False,
        dynamic_ncols=True,
        disable=False,
    )
    return iter(bar)
