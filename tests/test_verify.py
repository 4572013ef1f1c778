"""``celebref verify``: audit a CelebRef-HQ-layout dataset (real faces from celebref-mini, dlib backend)."""

from __future__ import annotations

import importlib.util
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest

from celebref.dataset.verify import _layout, reflect_padding_score
from celebref.face.align import ffhq_align
from celebref.fsutil import sha256_file
from celebref.imageio import read_image, write_image

pytestmark = pytest.mark.skipif(importlib.util.find_spec("dlib") is None, reason="dlib is not installed")


def _padded_face(mini_dir, ident: str, n: str, cut: int = 140):
    """Re-align a celebref-mini face from a photo cropped through its left side: FFHQ alignment must reflect-pad."""
    img = read_image(mini_dir / "hq" / ident / f"{n}.png")
    lm = np.loadtxt(mini_dir / "landmarks" / ident / f"{n}.png.txt")
    al = ffhq_align(np.ascontiguousarray(img[:, cut:]), lm - [cut, 0], output_size=512)
    return al


def test_reflect_padding_check_known_answers(mini_dir):
    al = _padded_face(mini_dir, "00082", "5")
    assert al.padded
    s = reflect_padding_score(al.image)
    assert s["flag"] and s["side"] == "left" and s["segments"] >= 3
    # the same face aligned from the whole photo has no padding; this one scored clean when measured here
    clean = reflect_padding_score(read_image(mini_dir / "hq" / "00022" / "9.png"))
    assert not clean["flag"]
    # a smooth random texture with no mirror structure is not flagged either
    rng = np.random.default_rng(0)
    tex = cv2.resize(rng.integers(0, 256, (16, 16, 3)).astype(np.uint8), (512, 512), interpolation=cv2.INTER_CUBIC)
    assert not reflect_padding_score(tex)["flag"]
    # an exact mirror band along the top (np.pad reflect) blurred like FFHQ's padding is flagged
    core = read_image(mini_dir / "hq" / "00022" / "9.png")[100:, :]
    pad = np.pad(core, ((100, 0), (0, 0), (0, 0)), mode="reflect")
    blurred = cv2.GaussianBlur(pad, (0, 0), 10)
    pad[:100] = blurred[:100]
    s = reflect_padding_score(pad)
    assert s["flag"] and s["side"] == "top" and abs(s["depth"] - 50) <= 4


@pytest.fixture(scope="module")
def audited(mini_dir, tmp_path_factory):
    from celebref.app.cli import main

    base = tmp_path_factory.mktemp("verify")
    ds = base / "ds"
    picks = {"00005": ["0", "1", "2", "3"], "00022": ["0", "1", "3", "9"], "00075": ["0", "1", "2", "4"]}
    for ident, ns in picks.items():
        for n in ns:
            (ds / "images" / ident).mkdir(parents=True, exist_ok=True)
            (ds / "landmarks" / ident).mkdir(parents=True, exist_ok=True)
            shutil.copy(mini_dir / "hq" / ident / f"{n}.png", ds / "images" / ident / f"{n}.png")
            shutil.copy(mini_dir / "landmarks" / ident / f"{n}.png.txt", ds / "landmarks" / ident / f"{n}.png.txt")
    shutil.copy(mini_dir / "hq" / "00086" / "0.png", ds / "images" / "00005" / "90.png")  # a stranger, no landmark file
    shutil.copy(ds / "images" / "00005" / "0.png", ds / "images" / "00005" / "91.png")  # exact duplicate
    write_image(ds / "images" / "00022" / "92.png", np.ascontiguousarray(read_image(ds / "images" / "00022" / "0.png")[:, ::-1]))
    write_image(ds / "images" / "00075" / "93.png", _padded_face(mini_dir, "00075", "5").image)
    write_image(ds / "images" / "00075" / "94.png", cv2.GaussianBlur(read_image(mini_dir / "hq" / "00075" / "6.png"), (0, 0), 4))
    before = {p: sha256_file(p) for p in sorted(ds.rglob("*")) if p.is_file()}
    rc = main(["verify", str(ds), "--out", str(base / "report"), "--backend", "dlib"])
    after = {p: sha256_file(p) for p in sorted(ds.rglob("*")) if p.is_file()}
    return {"rc": rc, "before": before, "after": after, "report": base / "report",
            "man": pd.read_parquet(base / "report" / "manifest.parquet").set_index("source_path")}


def test_verify_flags_each_planted_problem(audited):
    assert audited["rc"] == 0
    assert audited["before"] == audited["after"]  # the dataset is not changed
    m = audited["man"]
    assert len(m) == 17
    assert m.loc["images/00005/90.png", "reason"] == "identity_outlier"
    assert m.loc["images/00005/90.png", "identity_distance"] > 0.4
    assert m.loc["images/00005/91.png", "reason"] == "exact_duplicate"
    assert m.loc["images/00005/91.png", "duplicate_of"] == "images/00005/0.png"
    assert m.loc["images/00022/92.png", "reason"] == "near_duplicate"
    assert m.loc["images/00022/92.png", "duplicate_of"] == "images/00022/0.png"
    assert m.loc["images/00075/94.png", "reason"] == "blurry"
    assert "reflect_padding" in m.loc["images/00075/93.png", "flags"]
    assert m.loc["images/00075/93.png", "reflect_side"] == "left"
    assert "reflect_padding" not in m.loc["images/00022/9.png", "flags"]
    planted = {"images/00005/90.png", "images/00005/91.png", "images/00022/92.png", "images/00075/94.png"}
    assert set(m.index[m.decision == "rejected"]) == planted
    assert m.loc["images/00005/1.png", "landmarks_aligned_from"] == "file"
    assert m.loc["images/00005/90.png", "landmarks_aligned_from"] == "detected"
    meta = __import__("json").loads((audited["report"] / "verify.json").read_text(encoding="utf-8"))
    assert meta["images"] == 17 and meta["accepted"] + meta["rejected"] == 17 and meta["reflect_padding"] >= 1
    assert pd.read_csv(audited["report"] / "collisions.csv").empty


def test_layout_detection(tmp_path):
    (tmp_path / "a" / "images").mkdir(parents=True)
    assert _layout(tmp_path / "a") == (tmp_path / "a" / "images", None)
    (tmp_path / "b" / "00001").mkdir(parents=True)  # the released CelebRef-HQ: identity folders at the root
    assert _layout(tmp_path / "b") == (tmp_path / "b", None)
