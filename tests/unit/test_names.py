"""The escapers of mcuq.codegen.names (model-derived text -> C) and mcuq.errors.printable (text -> terminal)."""

from __future__ import annotations

import logging
import random
import shutil
import subprocess

import pytest

from mcuq.codegen.names import (
    C_KEYWORDS,
    Namer,
    c_comment,
    c_identifier,
    c_string,
    choose_prefix,
    project_stems,
)
from mcuq.errors import OneLineWarnings, join_within, printable

NASTY = (
    "nul\x00byte",
    "new\nline\r\n",
    "end*/comment",
    "open/*comment",
    "//line comment\\",
    "tri??/graph??=??(??)??'??<??!??>??-",
    "????/",
    'quote"d',
    "back\\slash\\",
    "esc\x1b[2J\x1b]0;title\x07",
    "csi\x9b31m",
    "bidi\u202eevil",
    "unicodé ☃ 😀",
    "surrogate\udcff",
    "/*/",
    "*//**/",
    "x" * 300,
    "",
    "\\",
    "?",
    "*",
    "/",
)


def _random_strings(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    alphabet = "?/*\\\"'\n\r\t\x00\x1b\x7f\x9b aZ09_-.é☃\U0001f600\u202e"
    return [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        + rng.choice(["", "\\", "?", "*", "/", "?" * 2])
        for _ in range(n)
    ]


CASES = [*NASTY, *_random_strings(300)]


@pytest.mark.parametrize("limit", [200, 16])
def test_c_comment_cannot_end_or_open_a_comment_or_hold_a_trigraph(limit: int) -> None:
    for s in CASES:
        out = c_comment(s, limit)
        assert out.isascii() and out.isprintable(), (s, out)  # no NUL, newline, ESC or non-ASCII
        assert "*/" not in out and "/*" not in out and "??" not in out, (s, out)
        assert not out.endswith("\\"), (s, out)  # a backslash before the newline would splice the next line
        assert len(out) <= limit, (s, out)


def test_c_comment_keeps_ordinary_names_as_they_are() -> None:
    for s in ("conv1/weights [8, 3, 3, 1]", "model_1/dense/MatMul;model_1/dense/BiasAdd", "a-b c:0"):
        assert c_comment(s) == s


def test_c_string_is_one_line_ascii_without_trigraphs() -> None:
    for s in CASES:
        out = c_string(s)
        assert out.isascii() and out.isprintable() and "??" not in out, (s, out)
        body = out.replace("\\\\", "")  # every remaining backslash starts an escape; no bare quote
        assert '"' not in body.replace('\\"', ""), (s, out)


def test_c_string_octal_escape_does_not_swallow_following_digits() -> None:
    assert c_string("\x001") == "\\0001"  # three octal digits, then the '1'
    assert c_string("é9") == "\\303\\2519"


@pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler")
def test_escaped_text_compiles_strictly_and_c_string_gives_back_the_utf8_bytes(tmp_path) -> None:
    """Every case inside a comment and as a string literal, compiled with -std=c99 -Wall -Wextra -Werror
    -Wtrigraphs -pedantic: the program prints each literal's bytes, which must be the name's UTF-8."""
    cases = [s for s in CASES if "\udcff" not in s]  # a lone surrogate has no UTF-8
    lines = ["#include <stdio.h>", "static const char *const names[] = {"]
    for s in cases:
        lines += [f"    /* {c_comment(s)} */", f'    "{c_string(s)}",']
    lines += [
        "};",
        "static const unsigned long sizes[] = {",
        *(f'    sizeof("{c_string(s)}") - 1u,' for s in cases),
        "};",
        "int main(void)",
        "{",
        "    unsigned long i, j;",
        "    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); ++i) {",
        '        for (j = 0; j < sizes[i]; ++j) printf("%02x", (unsigned char)names[i][j]);',
        '        printf("\\n");',
        "    }",
        "    return 0;",
        "}",
    ]
    src = tmp_path / "names.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "names"
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-Wtrigraphs", "-Wcomment", "-pedantic"]
    proc = subprocess.run(["cc", *flags, str(src), "-o", str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [s.encode().hex() for s in cases]


def test_c_identifier_is_ascii_and_never_a_keyword_or_reserved() -> None:
    for s in [*CASES, *C_KEYWORDS, "_Bool", "__x", "_X", "9lives", "main"]:
        out = c_identifier(s)
        assert out.isascii() and out.isidentifier(), (s, out)
        assert out not in C_KEYWORDS and not out.startswith("_") and not out[0].isdigit(), (s, out)
        assert len(out) <= 48


def test_namer_gives_unique_names_for_names_that_sanitize_alike() -> None:
    n = Namer(reserved=("m_invoke",))
    got = [n(s) for s in ("a b", "a_b", "a\x00b", "a/b", "m_invoke")]
    assert len(set(got)) == len(got) and "m_invoke" not in got


# -- the prefix --------------------------------------------------------------------------------------------------
CLASHING = ("runner", "mcuq", "mcuq_conv", "mcuq_fixedpoint", "startup", "mcuq_firmware", "mcuq_profile_dwt")
CLASHING += ("mcuq_types", "MCUQ_CONV", "Mcuq_Util", "main", "linker", "build", "Makefile", "stdint", "string")


@pytest.mark.parametrize("name", CLASHING)
def test_prefix_clashing_with_runtime_or_project_files_is_rewritten_and_noted(name: str) -> None:
    for explicit in (True, False):
        p = choose_prefix(name, explicit=explicit)
        assert p.name != name and p.name.lower() not in project_stems() and not p.name.lower().startswith("mcuq")
        assert p.note.startswith(f"prefix '{name}' is not usable (") and p.note.endswith(f"; using '{p.name}'")
        assert choose_prefix(p.name) == type(p)(p.name)  # the rewritten prefix is usable as it is


def test_reserved_stems_come_from_the_runtime_and_template_folders() -> None:
    stems = project_stems()
    for s in ("mcuq_conv2d_s8", "mcuq_fixedpoint", "mcuq_types", "startup", "mcuq_firmware", "linker", "runner"):
        assert s in stems
    assert "model" not in stems  # templates/model.c.j2 renders to <prefix>.c: "model" is a fine prefix
    assert choose_prefix("model").note == ""


def test_prefix_rewrites_say_why() -> None:
    assert choose_prefix("1abc") == choose_prefix("1abc", explicit=False)
    assert choose_prefix("1abc").name == "t_1abc" and "digit" in choose_prefix("1abc").note
    assert "keyword" in choose_prefix("int").note
    assert "longer than" in choose_prefix("x" * 60).note
    assert choose_prefix("my-model").name == "my_model" and choose_prefix("my-model").note
    assert choose_prefix("my-model", explicit=False).note == ""  # a file name's '-' -> '_' is expected
    assert choose_prefix("digits_cnn").note == ""
    note = choose_prefix("a\x1b[2J\nb*/").note
    assert note.isascii() and note.isprintable()


# -- the terminal --------------------------------------------------------------------------------------------------
def test_printable_escapes_controls_and_keeps_one_line() -> None:
    for s in CASES:
        out = printable(s)
        assert out.isprintable() and len(out) <= 300, (s, out)
    assert printable("a\x1b[31mb\nc\x00") == "a\\x1b[31mb\\nc\\x00"
    assert printable("bidi\u202e") == "bidi\\u202e"
    assert printable("naïve ☃ C:\\path") == "naïve ☃ C:\\path"  # printable text (and backslashes) as it is


def test_printable_cuts_the_middle_and_keeps_both_ends() -> None:
    msg = "model.tflite: op 3 (CONV_2D '" + "x" * 5000 + "'): the weight zero point must be 0"
    out = printable(msg)
    assert len(out) <= 300 and "..." in out
    assert out.startswith("model.tflite: op 3") and out.endswith("the weight zero point must be 0")
    assert printable("\x1b" * 1000, 40).count("\\x1b") <= 10  # escapes are kept whole
    assert join_within(["ab", "cd"], 4) == "abcd"


def test_warnings_print_once_each_on_one_line_or_not_at_all_on_error() -> None:
    h = OneLineWarnings()
    log = logging.getLogger("mcuq.test_names")
    log.addHandler(h)
    log.propagate = False
    try:
        for _ in range(3):
            log.warning("op 1 (AVERAGE_POOL_2D '%s'): quantization differs", "a\x1b[2J\nb")
        log.info("not shown")
    finally:
        log.removeHandler(h)
        log.propagate = True

    class Out:
        text = ""

        def write(self, s: str) -> None:
            Out.text += s

    h.flush_to(Out())
    (line,) = Out.text.splitlines()
    assert line.isprintable() and "\x1b" not in line and line.endswith("(3 times)")
    assert line.startswith("mcuq: warning: op 1")
    h.counts["x"] = 1
    h.discard()
    assert not h.counts
