"""mcuq.progress: a bar on a terminal only, only after a second, erased at the end; every item passes through."""

from __future__ import annotations

import io
import itertools
import sys

import pytest
import tqdm.std

from mcuq.progress import enabled, progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def on_terminal(monkeypatch) -> FakeTerminal:
    """sys.stderr replaced by a fake terminal. Called in the test body: pytest's own capture sets sys.stderr again
    between a fixture's setup and the test call."""
    stream = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.delenv("MCUQ_PROGRESS", raising=False)
    assert enabled()
    return stream


@pytest.fixture
def slow_clock(monkeypatch) -> None:
    """tqdm's clock advances 0.7 s each time it is read: a loop that takes seconds, without waiting for it."""
    ticks = itertools.count(0.0, 0.7)
    monkeypatch.setattr(tqdm.std, "time", lambda: next(ticks))


def test_not_a_terminal_writes_nothing(capsys, slow_clock):
    assert list(progress(range(50), desc="calibrating")) == list(range(50))
    out, err = capsys.readouterr()
    assert (out, err) == ("", "")
    assert not enabled()


def test_a_fast_loop_on_a_terminal_writes_nothing(monkeypatch):
    terminal = on_terminal(monkeypatch)
    items = [object() for _ in range(1000)]
    assert list(progress(iter(items), total=len(items))) == items
    assert terminal.getvalue() == ""


def test_a_slow_loop_on_a_terminal_shows_a_bar_then_erases_it(monkeypatch, slow_clock):
    terminal = on_terminal(monkeypatch)
    assert list(progress(range(5), desc="calibrating", unit="op")) == list(range(5))
    text = terminal.getvalue()
    assert "calibrating" in text and "5/5" in text and "op" in text
    assert text.endswith("\r") and text.rsplit("\r", 2)[-2].strip() == ""  # leave=False: the last line is blank


def test_mcuq_progress_0_turns_it_off(monkeypatch, slow_clock):
    terminal = on_terminal(monkeypatch)
    monkeypatch.setenv("MCUQ_PROGRESS", "0")
    assert list(progress(range(5))) == list(range(5))
    assert terminal.getvalue() == "" and not enabled()


def test_a_closed_stream_is_not_a_terminal(tmp_path):
    with open(tmp_path / "log", "w") as stream:
        pass
    assert not enabled(stream)  # isatty() of a closed file raises ValueError
