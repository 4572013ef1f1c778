"""celebref.fsutil: atomic writes honour the umask (files and folders), temporary names are unique per process,
and temporary files left by a killed writer are cleaned up."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from celebref import fsutil
from celebref.imageio import write_image
from celebref.tabular import write_table


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def umask():
    old = os.umask(0o022)
    os.umask(old)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_files_and_folders_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    out = tmp_path / "out"
    fsutil.atomic_write_bytes(out / "new" / "deep" / "a.bin", b"x")
    fsutil.atomic_write_text(out / "b.txt", "y")
    fsutil.atomic_write_json(out / "c.json", {"k": 1})
    write_image(out / "img" / "d.png", np.zeros((4, 4, 3), np.uint8))
    write_table(pd.DataFrame({"id": ["1"]}), out / "tables" / "t")
    files = [out / "new" / "deep" / "a.bin", out / "b.txt", out / "c.json", out / "img" / "d.png",
             out / "tables" / "t.parquet", out / "tables" / "t.csv"]
    for f in files:
        assert _mode(f) == 0o666 & ~mask, f"{f.name}: {oct(_mode(f))} under umask {oct(mask)}"
    for d in (out / "new", out / "new" / "deep", out / "img", out / "tables"):
        assert _mode(d) == 0o777 & ~mask, f"{d.name}: {oct(_mode(d))} under umask {oct(mask)}"


def test_replacing_a_private_file_gives_the_umask_mode(tmp_path, umask):
    umask(0o022)
    p = tmp_path / "x.txt"
    p.write_text("old")
    p.chmod(0o600)
    fsutil.atomic_write_text(p, "new")
    assert p.read_text() == "new" and _mode(p) == 0o644


def test_temporary_names_are_unique_per_process_and_call(tmp_path):
    a, b = fsutil.temp_path(tmp_path / "x.png"), fsutil.temp_path(tmp_path / "x.png")
    assert a != b and a.parent == tmp_path
    assert f".{os.getpid()}." in a.name and a.name.startswith(".x.png.") and a.name.endswith(".tmp")
    long = fsutil.temp_path(tmp_path / ("n" * 250 + ".png"))
    assert len(long.name.encode()) < 255


def test_two_processes_writing_one_file_never_collide(tmp_path):
    """Issue 13 item 5: two writers of the same path each use their own temporary file; both finish."""
    target = tmp_path / "refs" / "6.png"
    script = textwrap.dedent(f"""
        import sys
        from celebref.fsutil import atomic_write_bytes
        for i in range(300):
            atomic_write_bytes({str(target)!r}, sys.argv[1].encode() * 1000)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, tag], stderr=subprocess.PIPE, text=True) for tag in "ab"]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert target.read_bytes() in (b"a" * 1000, b"b" * 1000)
    assert sorted(os.listdir(target.parent)) == ["6.png"]  # no temporary file left behind


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "lq").mkdir()
    stale = tmp_path / "lq" / f".1.png.{dead.pid}.0123abcd.tmp"
    mine = tmp_path / f".2.png.{os.getpid()}.0123abcd.tmp"
    other = tmp_path / ".3.png.tmp"  # not ours: left alone
    for p in (stale, mine, other):
        p.write_bytes(b"partial")
    assert fsutil.remove_stale_temps(tmp_path) == 1
    assert not stale.exists() and mine.exists() and other.exists()
