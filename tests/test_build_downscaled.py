"""Detection on a downscaled copy (issue 15, build speed): the same decisions on the celebref-mini crawl.

The crawl's photos are 704 px (composites 1216 px) and the default ``detect_max_side`` (1024) leaves most of them at
full size, so this build uses 600: every photo with a face is searched on a copy 0.5-0.85 times its size, the boxes
mapped back, landmarks and embeddings computed at full size. The tiny face (96 px) is below the limit and the
no-face image is searched again at full size. Per-stage speed: ``benchmarks/bench_build.py --stages``.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from celebref.dataset import BuildConfig, build_dataset
from celebref.dataset.stages import AnalysisSettings, analyze_image
from celebref.dataset.synthetic import make_crawl
from celebref.imageio import read_image

pytestmark = pytest.mark.skipif(importlib.util.find_spec("dlib") is None, reason="dlib is not installed")


def test_downscaled_detection_gives_the_crawls_decisions(mini_dir, tmp_path):
    expected = make_crawl(mini_dir / "hq", tmp_path / "crawl", per_identity=4)
    cfg = BuildConfig(crawl=tmp_path / "crawl", out=tmp_path / "out", backend="dlib", workers=2,
                      analysis=AnalysisSettings(detect_max_side=600))
    meta = build_dataset(cfg, log=lambda s: None)
    assert meta["analysis"]["detect_max_side"] == 600  # part of the cache key
    man = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    prim = man[man.is_primary].set_index("source_path")
    got = {p: (prim.loc[p, "decision"], prim.loc[p, "reason"]) for p in expected}
    assert {p: (g, expected[p]) for p, g in got.items() if g != expected[p]} == {}
    assert meta["accepted"] == sum(d == "accepted" for d, _ in expected.values())
    # composites still show both faces, each box in the photo's own coordinates
    assert sorted(man[man.source_path == "Bob Stone/group.png"].reason) == ["multiple_faces_ambiguous", "other_face"]


def test_boxes_are_mapped_back_to_the_photo(mini_dir):
    from celebref.face import get_backend

    be = get_backend("dlib")
    face = read_image(sorted((mini_dir / "hq").rglob("*.png"))[0])
    photo = np.pad(face, ((300, 300), (500, 500), (0, 0)), mode="edge")  # 1112 x 1512: face in the middle
    full = analyze_image(photo, be, AnalysisSettings(detect_max_side=0))
    small = analyze_image(photo, be, AnalysisSettings(detect_max_side=512))
    assert len(full["faces"]) == len(small["faces"]) == 1
    bf, bs = np.array(full["faces"][0]["box"]), np.array(small["faces"][0]["box"])
    assert np.abs(bf - bs).max() < 0.15 * (bf[2] - bf[0])  # the same face, at the photo's scale (not 1/3 of it)
    lf, ls = np.array(full["faces"][0]["landmarks_source"]), np.array(small["faces"][0]["landmarks_source"])
    assert np.abs(lf - ls).max() < 0.05 * (bf[2] - bf[0])  # landmarks from the full-size photo
    assert np.linalg.norm(np.subtract(full["faces"][0]["embedding"], small["faces"][0]["embedding"])) < 0.1
