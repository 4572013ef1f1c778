"""A hostile crawl: every file under it gets a manifest row with a decision and a reason, nothing crashes.

The crawl is made here: a file name that is not valid UTF-8, a FIFO, symlinks inside and leaving the crawl, a
dangling symlink, symlink loops, an animated GIF, an image without extension, a text file, a file at the crawl
root and a hidden file (issue 13 items 3 and 6).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from celebref.dataset.scan import scan_crawl
from celebref.imageio import encode_image

posix_only = pytest.mark.skipif(sys.platform.startswith("win") or not hasattr(os, "mkfifo"),
                                reason="FIFOs, symlinks and byte file names need a POSIX file system")
BAD = b"P1/bad\xff\xfename.png"  # not valid UTF-8
BAD_TEXT = "P1/bad\\xff\\xfename.png"

# path in the manifest -> (decision, reason); "" = decided by the analysis (an input)
EXPECTED_SKIPS = {
    "root.png": "outside_person_folder",
    "P1/.hidden.png": "hidden",
    ".cache/thumb.png": "hidden",
    "P1/notes.txt": "not_an_image",
    "P1/anim.gif": "unsupported_format",
    "P1/fifo": "not_a_regular_file",
    "P1/dangling.png": "dangling_symlink",
    "P1/self": "symlink_loop",
    "P1/up": "symlink_loop",
    "P1/outside.png": "symlink_outside_crawl",
    "P2": "symlink_outside_crawl",
}
INPUTS = ("P1/a.png", "P1/b.png", "P1/noext", "P1/inside.png", BAD_TEXT)


def _img(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return encode_image(rng.integers(0, 256, (32, 32, 3)).astype(np.uint8), ".png")


def make_hostile_crawl(root: Path, outside: Path, faces: list[bytes] | None = None) -> None:
    """Write the hostile crawl under ``root`` (``outside``: a folder beside it that links point into).
    ``faces``: PNG bytes of 3 face photos for a.png, b.png and the undecodable name (else random images)."""
    faces = faces or [_img(k) for k in range(3)]
    (root / "P1").mkdir(parents=True)
    (root / ".cache").mkdir()
    outside.mkdir(parents=True)
    (root / "P1" / "a.png").write_bytes(faces[0])
    (root / "P1" / "b.png").write_bytes(faces[1])
    with open(os.fsencode(root) + b"/" + BAD, "wb") as f:
        f.write(faces[2])
    (root / "P1" / "noext").write_bytes(_img(10))  # a PNG saved without extension: an input
    (root / "P1" / "notes.txt").write_text("photographer: someone\n", encoding="utf-8")
    (root / "P1" / ".hidden.png").write_bytes(_img(11))
    (root / ".cache" / "thumb.png").write_bytes(_img(12))
    (root / "root.png").write_bytes(_img(13))
    frames = [Image.fromarray(np.full((16, 16, 3), v, np.uint8)) for v in (0, 255)]
    frames[0].save(root / "P1" / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    os.mkfifo(root / "P1" / "fifo")
    os.symlink(root / "P1" / "missing.png", root / "P1" / "dangling.png")
    os.symlink("self", root / "P1" / "self")  # a link to itself (ELOOP)
    os.symlink(root / "P1", root / "P1" / "up")  # a link to the folder above it
    os.symlink(root / "P1" / "a.png", root / "P1" / "inside.png")  # inside the crawl: followed
    (outside / "secret.png").write_bytes(_img(14))
    os.symlink(outside / "secret.png", root / "P1" / "outside.png")
    os.symlink(outside, root / "P2")  # a person folder that is a link leaving the crawl


@posix_only
def test_scan_accounts_for_every_entry_of_a_hostile_crawl(tmp_path):
    make_hostile_crawl(tmp_path / "crawl", tmp_path / "elsewhere")
    res = scan_crawl(tmp_path / "crawl")
    skipped = {s.source_path: s.reason for s in res.skipped}
    assert skipped == EXPECTED_SKIPS
    assert all(s.detail or s.reason == "hidden" for s in res.skipped)
    assert "animated, 2 frames" in next(s.detail for s in res.skipped if s.reason == "unsupported_format")
    items = {it.source_path: it for it in res.items}
    assert sorted(items) == sorted(INPUTS)
    bad = items[BAD_TEXT]
    assert bytes.fromhex(bad.source_path_hex) == BAD  # lossless
    assert os.fsencode(bad.abs_path).endswith(BAD) and bad.abs_path.is_file()  # read through its real name
    assert bad.identity_folder == "P1" and items["P1/a.png"].source_path_hex == ""
    assert not any("secret" in p for p in [*items, *skipped])  # nothing outside the crawl is listed or read


@posix_only
@pytest.mark.skipif(importlib.util.find_spec("dlib") is None, reason="dlib is not installed")
def test_build_of_a_hostile_crawl_records_every_file_with_a_reason(tmp_path, mini_dir):
    from celebref.dataset import BuildConfig, build_dataset
    from celebref.dataset.synthetic import _canvas
    from celebref.imageio import list_images, read_image

    faces = [encode_image(_canvas(read_image(p)), ".png") for p in list_images(mini_dir / "hq" / "00005")[:3]]
    make_hostile_crawl(tmp_path / "crawl", tmp_path / "elsewhere", faces)
    out = tmp_path / "out"
    meta = build_dataset(BuildConfig(crawl=tmp_path / "crawl", out=out, backend="dlib", workers=1, min_per_identity=1,
                                     test_fraction=0.0), log=lambda s: None)
    man = pd.read_parquet(out / "manifest.parquet")
    prim = man[man.is_primary].set_index("source_path")
    assert sorted(prim.index) == sorted([*EXPECTED_SKIPS, *INPUTS])  # every file, once
    assert (prim.decision != "").all() and (prim[prim.decision != "accepted"].reason != "").all()
    for path, reason in EXPECTED_SKIPS.items():
        assert prim.loc[path, ["decision", "reason"]].tolist() == ["skipped", reason], path
    # the undecodable name is an input like any other, recorded losslessly
    assert prim.loc[BAD_TEXT, "decision"] == "accepted"
    assert bytes.fromhex(prim.loc[BAD_TEXT, "source_path_hex"]) == BAD
    assert prim.loc["P1/inside.png", ["reason", "duplicate_of"]].tolist() == ["exact_duplicate", "P1/a.png"]
    assert prim.loc["P1/noext", "decision"] == "rejected" and prim.loc["P1/noext", "reason"] == "no_face"
    csv = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert BAD_TEXT in set(csv.source_path)
    assert meta["accepted"] + meta["rejected"] == meta["inputs"] == len(INPUTS)
    assert meta["skipped"] == len(EXPECTED_SKIPS) and meta["files"] == len(EXPECTED_SKIPS) + len(INPUTS)
    assert not (out / ".celebref.lock").exists()  # the output lock is released
