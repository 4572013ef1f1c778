"""The one landmark-file reader/writer (celebref.face.landmark_io): DMDNet's format, byte-identical to
``numpy.savetxt(fmt="%.3f")`` except ``-0.000``, values identical to ``numpy.loadtxt``."""

from __future__ import annotations

import io

import numpy as np
import pytest

from celebref.face.landmark_io import LandmarkFileError, format_landmarks, read_landmarks, write_landmarks


def _savetxt(pts: np.ndarray) -> str:
    buf = io.StringIO()
    np.savetxt(buf, pts, fmt="%.3f")
    return buf.getvalue()


def test_format_equals_savetxt_except_negative_zero():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-5, 600, size=(68, 2))
    pts[3] = (0.0005, 2.0005)  # binary values just above / below the decimal ties
    pts[4] = (1.0 / 3, 511.9996)
    assert format_landmarks(pts) == _savetxt(pts)
    pts[5] = (-0.0004, -0.0)  # round to zero from below: savetxt writes "-0.000"
    text = format_landmarks(pts)
    assert "-0.000" in _savetxt(pts) and "-0.000" not in text
    assert text.splitlines()[5] == "0.000 0.000"
    assert text.replace("0.000 0.000\n", "") == _savetxt(pts).replace("-0.000 -0.000\n", "")


def test_round_trip_and_loadtxt_values(tmp_path):
    pts = np.random.default_rng(1).uniform(0, 512, size=(68, 2))
    path = tmp_path / "0.png.txt"
    write_landmarks(path, pts)
    assert path.read_bytes() == _savetxt(pts).encode("ascii")
    got = read_landmarks(path)
    assert got.dtype == np.float64 and got.shape == (68, 2)
    np.testing.assert_array_equal(got, np.loadtxt(path))
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    np.testing.assert_array_equal(read_landmarks(bom), got)
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    np.testing.assert_array_equal(read_landmarks(crlf), got)


def test_bad_files_name_the_file_and_line(tmp_path):
    three = tmp_path / "three.txt"
    three.write_text("1 2 3\n" * 68)
    with pytest.raises(LandmarkFileError, match=r"three\.txt.*line 1 has 3 fields"):
        read_landmarks(three)
    nan = tmp_path / "nan.txt"
    nan.write_text("1 2\n" * 5 + "nan 2\n" + "1 2\n" * 62)
    with pytest.raises(LandmarkFileError, match="line 6 is not finite"):
        read_landmarks(nan)
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"1 2\n" * 67 + b"\xe9 2\n")
    with pytest.raises(LandmarkFileError, match="latin.txt"):
        read_landmarks(latin)
    with pytest.raises(ValueError, match="NaN"):
        format_landmarks(np.full((68, 2), np.nan))
