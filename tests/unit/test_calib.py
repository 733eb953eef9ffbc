"""Calibration data (mcuq.quant.calib) and the .npz reader under it (mcuq.npyio.load_npz): every accepted form gives
the same float32 set, and every bad or hostile input is one McuqError line that names the file and the input."""

from __future__ import annotations

import dataclasses
import io
import os
import struct
import zipfile
import zlib

import numpy as np
import pytest
from numpy.lib import format as npy_format

from mcuq import ir
from mcuq.errors import McuqError
from mcuq.npyio import load_npz
from mcuq.quant.calib import MAX_BYTES_ENV, CalibrationSet, load_calibration

F32 = ir.DType.FLOAT32


def graph(**inputs: tuple[int, ...]) -> ir.Graph:
    """A graph with just these float32 inputs: all that load_calibration reads."""
    tensors = {name: ir.Tensor(name, shape, F32) for name, shape in inputs.items()}
    return ir.Graph("g", tensors, (), tuple(inputs), ())


IMG = graph(x=(1, 4, 4, 1))  # an input with a batch dimension of 1
TWO = graph(a=(1, 3), b=(2,))  # two inputs; 'b' has no batch dimension of 1


def data(n: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 1, 4, 4, 1)).astype(np.float32)


def error(source, g: ir.Graph = IMG, **kw) -> str:
    with pytest.raises(McuqError) as e:
        load_calibration(source, g, **kw)
    text = str(e.value)
    assert "\n" not in text
    return text


def check_set(cs: CalibrationSet, expect: list[np.ndarray]) -> None:
    assert len(cs) == expect[0].shape[0]
    for a, want in zip(cs.arrays, expect):
        assert a.dtype == np.float32 and a.flags.c_contiguous and not a.flags.writeable
        np.testing.assert_array_equal(a, want)


# -- the accepted forms -----------------------------------------------------------------------------------------


def test_npy_with_or_without_the_batch_dimension_gives_the_same_set(tmp_path):
    x = data()
    np.save(tmp_path / "full.npy", x)
    np.save(tmp_path / "short.npy", x[:, 0])  # (N, 4, 4, 1): each sample omits the 1
    for source in (tmp_path / "full.npy", str(tmp_path / "short.npy"), x, x[:, 0]):
        cs = load_calibration(source, IMG)
        check_set(cs, [x])
        assert cs.names == ("x",) and cs.sample(3)[0].shape == (1, 4, 4, 1)
        np.testing.assert_array_equal(cs.sample(3)[0], x[3])
    assert load_calibration(tmp_path / "full.npy", IMG).source == str(tmp_path / "full.npy")
    assert load_calibration(x, IMG).source == "<array>"


def test_the_set_is_frozen_and_independent_of_the_callers_array():
    x = data()
    cs = load_calibration(x, IMG)
    x[:] = 0  # the caller's array changes; the set does not
    assert np.abs(cs.arrays[0]).sum() > 0
    with pytest.raises(ValueError):
        cs.arrays[0][0] = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        cs.source = "other"
    assert load_calibration(cs, IMG) is cs
    assert "made for inputs ['x']" in error(cs, TWO)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32, np.float16, np.float64])
def test_integer_and_float_data_become_float32(dtype):
    x = np.arange(2 * 16).reshape(2, 4, 4, 1).astype(dtype)
    check_set(load_calibration(x, IMG), [x.astype(np.float32).reshape(2, 1, 4, 4, 1)])


@pytest.mark.parametrize(
    "array, name",
    [
        (np.zeros((2, 4, 4, 1), bool), "bool"),
        (np.zeros((2, 4, 4, 1), np.complex64), "complex64"),
        (np.full((2, 4, 4, 1), "a"), "<U1"),
        (np.zeros((2, 4, 4, 1), "datetime64[s]"), "datetime64[s]"),
        (np.full((2, 4, 4, 1), None, object), "object"),
    ],
)
def test_other_dtypes_are_refused(array, name):
    assert (
        error(array) == f"--calib <array>: input 'x': dtype {name}; calibration data must be float or integer numbers"
    )


def test_npz_by_name_in_any_order(tmp_path):
    a, b = np.ones((4, 1, 3), np.float32), np.arange(8, dtype=np.float32).reshape(4, 2)
    np.savez(tmp_path / "named.npz", b=b, a=a[:, 0])  # keys out of input order, 'a' without its 1
    check_set(load_calibration(tmp_path / "named.npz", TWO), [a, b])
    check_set(load_calibration({"b": b, "a": a}, TWO), [a, b])


def test_npz_positional_in_numpy_order_or_file_order(tmp_path):
    a, b = np.ones((4, 1, 3), np.float32), np.arange(8, dtype=np.float32).reshape(4, 2)
    np.savez(tmp_path / "pos.npz", a, b)  # arr_0, arr_1
    check_set(load_calibration(tmp_path / "pos.npz", TWO), [a, b])
    check_set(load_calibration({"arr_1": b, "arr_0": a}, TWO), [a, b])  # numpy's names: by their number
    np.savez(tmp_path / "other.npz", first=a, second=b)  # no input names: file order
    check_set(load_calibration(tmp_path / "other.npz", TWO), [a, b])
    np.savez(tmp_path / "one.npz", images=data())  # a single input under any name
    check_set(load_calibration(tmp_path / "one.npz", IMG), [data()])


def test_npz_key_errors(tmp_path):
    a, b = np.ones((4, 3)), np.ones((4, 2))
    np.savez(tmp_path / "mixed.npz", a=a, bb=b)
    assert error(tmp_path / "mixed.npz", TWO) == (
        f"--calib {tmp_path / 'mixed.npz'}: unknown input name(s) ['bb']; the model's inputs are ['a', 'b'] "
        "(key every array by input name, or none of them, in input order)"
    )
    assert "no array for input 'b'" in error({"a": a}, TWO)
    assert "3 array(s) ['p', 'q', 'r'], the model has 2 input(s) ['a', 'b']" in error({"p": a, "q": b, "r": b}, TWO)
    assert "the inputs have different numbers of samples ('a' 4, 'b' 5)" in error({"a": a, "b": np.ones((5, 2))}, TWO)
    assert "a .npy holds one array; the model has 2 inputs ['a', 'b']: give a .npz" in error(
        _saved(tmp_path / "x.npy", a), TWO
    )


def _saved(path, array):
    np.save(path, array)
    return path


def test_folder_of_npy_files_one_sample_each_sorted_by_name(tmp_path):
    x = data(5)
    for i in (3, 0, 4, 1, 2):  # written out of order; read by name
        np.save(tmp_path / f"s{i:02d}.npy", x[i] if i % 2 else x[i, 0])  # both sample forms
    (tmp_path / "README.txt").write_text("ignored")
    np.save(tmp_path / ".hidden.npy", np.zeros(3))  # ignored: a hidden file
    (tmp_path / "sub.npy").mkdir()  # ignored: subfolders are not entered
    np.save(tmp_path / "sub.npy" / "deep.npy", np.zeros(3))
    cs = load_calibration(tmp_path, IMG)
    check_set(cs, [x])
    assert cs.source == str(tmp_path)


def test_folder_of_npz_files_for_a_multi_input_model(tmp_path):
    a, b = np.random.default_rng(1).normal(size=(3, 1, 3)), np.random.default_rng(2).normal(size=(3, 2))
    for i in range(3):
        np.savez(tmp_path / f"{i}.npz", b=b[i], a=a[i] if i else a[i, 0])
    check_set(load_calibration(tmp_path, TWO), [a.astype(np.float32), b.astype(np.float32)])
    np.save(tmp_path / "9.npy", np.zeros(3))
    assert error(tmp_path, TWO) == (
        f"--calib {tmp_path / '9.npy'}: a .npy holds one array; the model has 2 inputs: give one .npz per sample"
    )


def test_iterables_of_samples_like_tflites_representative_dataset():
    x = data(4)

    def representative_dataset():  # TFLite style: the generator function, each sample a list in input order
        for s in x:
            yield [s]

    for source in (
        representative_dataset,
        representative_dataset(),
        list(x),
        [(s[0],) for s in x],
        [{"x": s} for s in x],
    ):
        cs = load_calibration(source, IMG)
        check_set(cs, [x])
        assert cs.source == "<iterable>"
    a, b = np.ones((2, 1, 3)), np.zeros((2, 2))
    check_set(load_calibration(zip(a, b), TWO), [a.astype(np.float32), b.astype(np.float32)])
    check_set(load_calibration([{"b": b[i], "a": a[i, 0]} for i in range(2)], TWO), [a.astype(np.float32), b])


def test_iterable_sample_errors():
    x = data(3)
    assert error([x]) == (
        "--calib <iterable>: sample 0: input 'x': shape [3, 1, 4, 4, 1]; one sample has shape [1, 4, 4, 1] or "
        "[4, 4, 1] (3 samples in one array? that is a whole set, not one sample)"
    )
    assert error([x[0], x[1], np.zeros((2, 2))]).startswith("--calib <iterable>: sample 2: input 'x': shape [2, 2]")
    assert "sample 1: 1 array(s), the model has 2 input(s)" in error([(np.ones(3), np.ones(2)), (np.ones(3),)], TWO)
    assert "sample 0: one array, the model has 2 inputs" in error([np.ones(3)], TWO)
    assert "sample 0: unknown input name(s) ['c']" in error([{"a": np.ones(3), "c": np.ones(2)}], TWO)
    assert error(iter([])) == "--calib <iterable>: no samples; calibration needs at least one"
    assert error(lambda: 5).endswith("an iterable of samples; got int")
    assert error(b"x.npy").endswith("got bytes")


def test_a_user_generator_that_raises_is_not_hidden():
    def broken():
        yield data(1)[0]
        raise RuntimeError("the user's own bug")

    with pytest.raises(RuntimeError, match="the user's own bug"):
        load_calibration(broken, IMG)


# -- shapes, values, sizes --------------------------------------------------------------------------------------


def test_wrong_shape_says_both_accepted_forms():
    assert error(np.zeros((5, 4, 4))) == (
        "--calib <array>: input 'x': shape [5, 4, 4]; wanted [N, 1, 4, 4, 1] or [N, 4, 4, 1] for N samples"
    )
    # 'b' (shape [2]) has no batch dimension of 1: one form only
    assert "input 'b': shape [4]; wanted [N, 2] for N samples" in error({"a": np.ones((4, 3)), "b": np.ones(4)}, TWO)


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "inf"), (1e300, "inf")])
def test_nan_or_inf_names_the_first_bad_sample(tmp_path, bad, word):
    x = data(10).astype(np.float64)
    x[7, 0, 2, 1, 0] = bad
    x[9, 0, 0, 0, 0] = np.nan
    want = f"sample 7: input 'x': holds {word}"
    assert error(x).startswith(f"--calib <array>: {want}")
    assert error(_saved(tmp_path / "x.npy", x)).startswith(f"--calib {tmp_path / 'x.npy'}: {want}")
    assert error(list(x)).startswith(f"--calib <iterable>: {want}")
    folder = tmp_path / "folder"
    folder.mkdir()
    for i, s in enumerate(x):
        np.save(folder / f"{i:03d}.npy", s)
    assert error(folder).startswith(f"--calib {folder / '007.npy'}: input 'x': holds {word}")


def test_nan_far_into_a_large_set_is_found():
    x = np.zeros((300, 1, 64, 64, 1), np.float32)  # several chunks of the NaN scan
    x[271, 0, 63, 63, 0] = np.nan
    assert error(x, graph(x=(1, 64, 64, 1))).startswith("--calib <array>: sample 271: input 'x': holds NaN")


def test_empty_sets(tmp_path):
    assert error(np.zeros((0, 4, 4, 1))) == "--calib <array>: no samples; calibration needs at least one"
    assert error(_saved(tmp_path / "e.npy", np.zeros((0, 1, 4, 4, 1)))).endswith(
        "no samples; calibration needs at least one"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a sample")
    assert error(empty) == (
        f"--calib {empty}: no .npy or .npz files in the folder (each file is one sample; other files are ignored)"
    )


def test_size_limit_is_checked_before_reading(tmp_path, monkeypatch):
    x = data(10)  # 640 bytes of float32
    np.save(tmp_path / "x.npy", x)
    monkeypatch.setenv(MAX_BYTES_ENV, "600")
    assert error(tmp_path / "x.npy").endswith(
        "the file takes 768 bytes, more than the limit of 600 bytes (set MCUQ_CALIB_MAX_BYTES to raise it)"
    )
    assert "the calibration set takes 640 bytes, more than the limit of 600" in error(x)
    monkeypatch.setenv(MAX_BYTES_ENV, "1000")
    np.save(tmp_path / "i8.npy", x.astype(np.int8))  # 160 bytes on disk, 640 as float32: fine under 1000
    assert len(load_calibration(tmp_path / "i8.npy", IMG)) == 10
    assert "the calibration set takes 1,280 bytes" in error(np.zeros((20, 4, 4, 1), np.int8))

    def endless():
        while True:
            yield x[0]

    assert error(endless) == (
        "--calib <iterable>: at sample 15, the calibration set takes 1,024 bytes, more than the limit of 1,000 bytes "
        "(set MCUQ_CALIB_MAX_BYTES to raise it)"
    )
    monkeypatch.setenv(MAX_BYTES_ENV, "lots")
    assert error(x) == "MCUQ_CALIB_MAX_BYTES='lots': give a positive number of bytes"


def test_folder_size_limit_counts_the_files_before_reading_any(tmp_path, monkeypatch):
    for i in range(4):
        np.save(tmp_path / f"{i}.npy", np.zeros((4, 4, 1), np.float32))  # 64 bytes of data + 128 of header each
    monkeypatch.setenv(MAX_BYTES_ENV, "700")
    assert error(tmp_path) == (
        f"--calib {tmp_path}: the sample files take 768 bytes, more than the limit of 700 bytes "
        "(set MCUQ_CALIB_MAX_BYTES to raise it)"
    )


def test_a_folder_of_ten_thousand_small_files(tmp_path):
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (4, 4, 1)})
    x = np.arange(10_000 * 16, dtype=np.float32).reshape(10_000, 1, 4, 4, 1)
    for i in range(10_000):
        (tmp_path / f"{i:05d}.npy").write_bytes(header.getvalue() + x[i].tobytes())
    cs = load_calibration(tmp_path, IMG)
    check_set(cs, [x])


def test_missing_or_unreadable_paths(tmp_path):
    assert error(tmp_path / "nope.npy") == f"--calib {tmp_path / 'nope.npy'}: no such file or folder"
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    assert f"{tmp_path / 'bad.npy'}: not a readable .npy file" in error(tmp_path / "bad.npy")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    assert f"{tmp_path / 'bad.npz'}: not a readable .npz file" in error(tmp_path / "bad.npz")
    assert error(np.zeros((2, 4, 4)), what="calib").startswith("calib <array>: input 'x': shape [2, 4, 4]")


# -- hostile files --------------------------------------------------------------------------------------------


def test_a_symlink_out_of_the_folder_is_refused_by_name(tmp_path):
    secret = tmp_path / "outside.npy"
    np.save(secret, np.zeros((4, 4, 1)))
    folder = tmp_path / "calib"
    folder.mkdir()
    np.save(folder / "a.npy", np.zeros((4, 4, 1)))
    os.symlink(secret, folder / "b.npy")
    assert error(folder) == (
        f"--calib {folder / 'b.npy'}: is a symbolic link (to {secret}); calibration files are read only from inside "
        "the folder, and links are not followed"
    )
    (folder / "b.npy").unlink()
    os.symlink("a.npy", folder / "c.npy")  # inside, but still a link: refused, not followed
    assert f"{folder / 'c.npy'}: is a symbolic link (to a.npy)" in error(folder)
    (folder / "c.npy").unlink()
    os.symlink(secret, folder / "notes.txt")  # not a sample file: ignored, never opened
    assert len(load_calibration(folder, IMG)) == 1


def test_a_fifo_in_the_folder_does_not_hang(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 4, 1)))
    os.mkfifo(tmp_path / "b.npy")
    assert error(tmp_path) == f"--calib {tmp_path / 'b.npy'}: is not a regular file"
    assert error(tmp_path / "b.npy").endswith("b.npy: is not a regular file (a .npy or .npz file, or a folder of them)")


def test_npz_with_a_pickled_object_array_is_refused(tmp_path):
    np.savez(tmp_path / "p.npz", x=np.array([{"evil": 1}, None], dtype=object))
    assert error(tmp_path / "p.npz") == (
        f"{tmp_path / 'p.npz'}[x]: holds Python objects (dtype object); mcuq reads numeric arrays and never unpickles"
    )


def test_npy_header_claiming_2_40_elements_is_refused_before_allocating(tmp_path):
    with open(tmp_path / "big.npy", "wb") as f:
        npy_format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (2**40, 4, 4, 1)})
    assert "the header says shape [1099511627776, 4, 4, 1]" in error(tmp_path / "big.npy")
    folder = tmp_path / "f"
    folder.mkdir()
    with open(folder / "s.npy", "wb") as f:
        npy_format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (2**40,)})
    assert error(folder).startswith(f"{folder / 's.npy'}: the header says shape [1099511627776]")


def _npz_member_header_only(path, shape):
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", header.getvalue())


def test_npz_member_header_is_checked_against_the_member_size(tmp_path):
    _npz_member_header_only(tmp_path / "h.npz", (2**40, 4, 4, 1))
    assert error(tmp_path / "h.npz") == (
        f"{tmp_path / 'h.npz'}[x]: the header says shape [1099511627776, 4, 4, 1] (17,592,186,044,416 elements of "
        "float32, 70,368,744,177,664 bytes) but the member holds 0 bytes of data"
    )


def test_zip_bomb_members_are_refused_before_decompressing(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:  # 16 MiB of zeros in ~16 KiB
        with z.open("x.npy", "w") as m:
            np.save(m, np.zeros((2**20, 4, 4, 1), np.uint8))
    assert bomb.stat().st_size < 100_000
    monkeypatch.setenv(MAX_BYTES_ENV, str(2**20))
    assert error(bomb) == (
        f"{bomb}: its arrays take 16,777,344 bytes uncompressed, more than the limit of 1,048,576 bytes"
    )


def test_a_forged_uncompressed_size_bounds_what_is_decompressed(tmp_path):
    """The zip directory claims a small member whose deflated stream is 16 MiB: at most the claimed size is ever
    decompressed, so the header's claim fails against it, before any allocation."""
    path = tmp_path / "forged.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("x.npy", "w") as m:
            np.save(m, np.zeros((2**20, 4, 4, 1), np.uint8))
    with zipfile.ZipFile(path) as z, z.open("x.npy") as m:
        crc = zlib.crc32(m.read(200))  # a valid CRC for the 200 bytes the directory will claim
    raw = bytearray(path.read_bytes())
    for sig, at_crc in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):  # local and central header
        at = raw.find(sig)
        struct.pack_into("<LLL", raw, at + at_crc, crc, struct.unpack_from("<L", raw, at + at_crc + 4)[0], 200)
    path.write_bytes(bytes(raw))
    text = error(path)
    assert "the header says shape [1048576, 4, 4, 1]" in text and "but the member holds 72 bytes of data" in text


def test_npz_with_too_many_members_is_refused_from_its_end_record(tmp_path):
    path = tmp_path / "many.npz"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(1100):
            z.writestr(f"a{i}.npy", b"")
    assert error(path) == f"{path}: holds more than 1,024 arrays; mcuq reads at most that many"


# -- load_npz itself --------------------------------------------------------------------------------------------


def test_load_npz_reads_what_numpy_writes(tmp_path):
    arrays = {"a": np.arange(6.0).reshape(2, 3), "b": np.asfortranarray(np.arange(6).reshape(2, 3)), "c": np.int8(5)}
    np.savez(tmp_path / "p.npz", **arrays)
    np.savez_compressed(tmp_path / "c.npz", **arrays)
    for name in ("p.npz", "c.npz"):
        got = load_npz(tmp_path / name)
        assert list(got) == ["a", "b", "c"]
        for k, v in arrays.items():
            assert got[k].dtype == v.dtype
            np.testing.assert_array_equal(got[k], v)


def test_load_npz_refuses_members_that_are_not_arrays_and_bad_crcs(tmp_path):
    with zipfile.ZipFile(tmp_path / "t.npz", "w") as z:
        z.writestr("notes.txt", "hello")
    with pytest.raises(McuqError, match=r"member 'notes.txt' is not a .npy array"):
        load_npz(tmp_path / "t.npz")
    np.savez(tmp_path / "crc.npz", x=np.arange(100, dtype=np.float32))
    raw = bytearray((tmp_path / "crc.npz").read_bytes())
    raw[raw.find(b"\x93NUMPY") + 200] ^= 0xFF  # one data byte (stored, not compressed)
    (tmp_path / "crc.npz").write_bytes(bytes(raw))
    with pytest.raises(McuqError, match=r"crc\.npz: not a readable \.npz file \(Bad CRC-32"):
        load_npz(tmp_path / "crc.npz")
    with pytest.raises(McuqError, match="is a folder, not a .npz file"):
        load_npz(tmp_path)
