"""The frontend registry picks a model's frontend by suffix and defaults to TFLite."""

from __future__ import annotations

import pytest

from mcuq import frontend
from mcuq.errors import ModelError
from tests.util.tiny import tiny_fc_bytes


def test_suffix_picks_the_frontend_and_bytes_go_to_the_default(tmp_path) -> None:
    assert frontend.frontend_for("m.tflite").name == "tflite"
    assert frontend.frontend_for("M.TFLITE").name == "tflite"
    assert frontend.frontend_for(b"bytes").name == frontend.DEFAULT == "tflite"
    p = tmp_path / "model.tflite"
    p.write_bytes(tiny_fc_bytes())
    g = frontend.load(p)
    assert [op.origin for op in g.ops] == ["FULLY_CONNECTED"]
    assert frontend.load(tiny_fc_bytes()).ops[0].kind == g.ops[0].kind


def test_a_registered_frontend_is_used_for_its_suffix(tmp_path, monkeypatch) -> None:
    fe = frontend.Frontend("fake", (".fake",), "tflite")  # a stand-in module: the TFLite reader
    monkeypatch.setitem(frontend.FRONTENDS, "fake", fe)
    assert frontend.frontend_for(tmp_path / "m.fake") is fe
    with pytest.raises(AssertionError, match="registered twice"):
        frontend.register(frontend.Frontend("tflite", (".x",), "tflite"))


def test_unknown_suffix_falls_back_to_tflite_with_its_error(tmp_path) -> None:
    p = tmp_path / "model.bin"
    p.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="model.bin"):
        frontend.load(p)
