"""Whole photos as first-class runs (issues 21.4, 22.3, 22.6, 22.14, 23.4): alignments as registry entries, one
duplicate-id rule with ``degrade --whole-photo``, photos too large for memory refused up front (and the paste-back
done region by region, byte-identical), and ``evaluate --whole-photo`` as an evaluate run like any other (registry
metrics, ``--skip-unavailable``, run.json, per-item reasons, ``report``/``tables``)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from celebref.errors import ConfigError
from celebref.imageio import read_image, write_image
from celebref.tabular import read_table

from test_whole_photo import MINI, _background, compose, needs_dlib, needs_mini

ROOT = Path(__file__).resolve().parents[1]


def _registered(registry, name: str, target, description: str):
    """Fixture body: ``target`` registered as ``name`` (as a plugin would add it) for one test, then removed."""
    registry.register(name, target, description=description)
    try:
        yield name
    finally:
        registry._entries.pop(name, None)


# -- alignments are registry entries ----------------------------------------------------------------------
def box_align(img, points5, landmarks68, size=512):
    """A test alignment: no rotation, the eye centres' midpoint at the crop centre, eyes 128 px apart."""
    p = np.asarray(points5, np.float64)
    scale = 128.0 / max(np.hypot(*(p[1] - p[0])), 1e-6)
    centre = (p[0] + p[1]) / 2
    m = np.array([[scale, 0.0, size / 2 - scale * centre[0]], [0.0, scale, size / 2 - scale * centre[1]]])
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT), m


@pytest.fixture
def test_alignment():
    from baselines.alignments import ALIGNMENTS

    yield from _registered(ALIGNMENTS, "test-box", box_align, "test: eyes level, 128 px apart")


def test_every_method_declares_a_registered_alignment():
    from baselines.alignments import ALIGNMENTS, alignment_of
    from baselines.registry import METHODS

    declared = {name: alignment_of(METHODS.get(name)) for name in METHODS.names()}
    assert {declared[m] for m in ("gfpgan", "codeformer")} == {"ffhq5"}
    assert declared["dmdnet"] == "ffhq68" and declared["dfdnet"] == "dfdnet"
    assert set(declared.values()) <= set(ALIGNMENTS.names())

    class Odd:
        name, alignment = "odd", "ffhq-5"  # a typo: refused with the known names
    with pytest.raises(ConfigError, match="ffhq5"):
        alignment_of(Odd())
    source = (ROOT / "celebref" / "app" / "whole_photo.py").read_text()
    assert "baselines.dfdnet" not in source and 'kind == "' not in source  # no if-chain, no DFDNet internals


@needs_mini
@needs_dlib
def test_runner_uses_a_registered_alignment(tmp_path, test_alignment):
    """A method declaring an alignment registered from outside gets exactly that alignment's crops."""
    from baselines.classical import LQMethod
    from celebref.app.whole_photo import WholePhotoRunner

    class LQBox(LQMethod):
        name = "lqbox"
        alignment = test_alignment

    two = compose(2)
    write_image(tmp_path / "two.png", two)
    df = WholePhotoRunner(tmp_path / "out", [LQBox()]).run([("two", str(tmp_path / "two.png"))])
    faces = df[df["face"] >= 0]
    assert len(faces) == 2 and (faces["alignment"] == "test-box").all() and (faces["status"] == "ok").all()
    for _, r in faces.iterrows():
        m = np.array(json.loads(r["matrix"]))
        assert m[0, 1] == 0.0 and m[1, 0] == 0.0  # the test alignment's own matrix (no rotation)
        expected = cv2.warpAffine(two, m, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        np.testing.assert_array_equal(read_image(tmp_path / "out" / r["input_path"]), expected)


# -- one duplicate-id rule with degrade --whole-photo --------------------------------------------------------
@needs_mini
@needs_dlib
def test_duplicate_photo_ids_are_rejected_as_in_degrade(tmp_path):
    from celebref.app.cli import main

    src = tmp_path / "photos"
    write_image(src / "dup.png", compose(1))
    write_image(src / "dup.jpg", compose(2))
    out = tmp_path / "out"
    assert main(["restore", "--whole-photo", "--methods", "lq", "--input", str(src), "--out", str(out)]) == 3
    df = read_table(out / "faces.csv")
    dup = df[df["status"] == "duplicate_id"]
    assert len(dup) == 1 and dup["face"].iloc[0] == -1 and dup["output_path"].isna().all()
    kept = df[df["status"] != "duplicate_id"]
    assert set(kept["source_path"]) == {str(src / "dup.jpg")} and len(kept) == 2  # the two faces of dup.jpg only
    assert dup["source_path"].iloc[0] == str(src / "dup.png") and "dup.jpg" in dup["reason"].iloc[0]
    assert list((out / "lq").glob("dup*.png")) == [out / "lq" / "dup.png"]
    # degrade --whole-photo keeps the same file and rejects the same one
    assert main(["degrade", "--whole-photo", "--preset", "gfpgan", "--input", str(src), "--out", str(tmp_path / "deg")]) == 3
    man = read_table(tmp_path / "deg" / "manifest.csv")
    assert man.loc[man["status"] == "ok", "gt_path_abs"].tolist() == [str(src / "dup.jpg")]
    assert man.loc[man["reason"] == "duplicate_id", "gt_path_abs"].tolist() == [str(src / "dup.png")]


# -- memory: refuse up front, paste region by region ---------------------------------------------------------
def test_region_paste_is_byte_identical_to_the_full_canvas_paste():
    from celebref.app.whole_photo_canvas import paste_in_regions
    from celebref.face.paste import paste_faces

    rng = np.random.default_rng(3)
    canvas = rng.integers(0, 256, (900, 1400, 3), np.uint8)
    faces = [rng.integers(0, 256, (512, 512, 3), np.uint8) for _ in range(4)]
    mats = [np.array([[0.6, 0.1, 20.0], [-0.1, 0.6, 30.0]]),  # overlaps the next one
            np.array([[0.5, 0.0, 200.3], [0.0, 0.5, 120.7]]),
            np.array([[0.4, -0.2, 1100.5], [0.2, 0.4, 500.25]]),  # partly outside the canvas
            np.array([[0.3, 0.0, 700.0], [0.0, 0.3, 50.0]])]
    for upscale in (1, 2):
        c = cv2.resize(canvas, None, fx=upscale, fy=upscale) if upscale > 1 else canvas.copy()
        m = [a * upscale for a in mats]
        expected, placed_full = paste_faces(c, faces, m, upscale)
        got = c.copy()
        placed = paste_in_regions(got, faces, m, upscale)
        np.testing.assert_array_equal(got, expected)
        for a, b in zip(placed, placed_full):
            assert (a.x0, a.y0, a.w_edge) == (b.x0, b.y0, b.w_edge)
            np.testing.assert_array_equal(a.soft, b.soft)


def test_memory_estimate_and_reason():
    from celebref.app.whole_photo_canvas import GIB, MEMORY_ENV, memory_limit, needed_bytes, too_large_reason

    need = needed_bytes(3000, 4000, 8)
    assert need > 5 * GIB  # 768 Mpx of output: the canvas and its encoding alone
    why = too_large_reason(3000, 4000, 8, 2 * GIB)
    assert "32000x24000" in why and f"{need / GIB:.2f} GiB" in why and "2.00 GiB" in why and "--upscale" in why
    assert too_large_reason(3000, 4000, 1, 2 * GIB) == ""
    assert memory_limit(1.5) == int(1.5 * GIB)
    import os

    os.environ[MEMORY_ENV] = "0.25"
    try:
        assert memory_limit() == GIB // 4
    finally:
        del os.environ[MEMORY_ENV]


@needs_dlib
def test_huge_upscale_is_refused_before_allocating(tmp_path):
    """A 4000x3000 photo at --upscale 8 (768 Mpx of output) with 2 GiB allowed: status too_large with the size it
    would need, exit 3, nothing written for it, and no large allocation (tracemalloc peak well under the canvas)."""
    import tracemalloc

    from celebref.app.cli import main

    big = np.zeros((3000, 4000, 3), np.uint8)
    big[:, :, 1] = 90
    write_image(tmp_path / "in" / "big.png", big)
    out = tmp_path / "out"
    tracemalloc.start()
    try:
        code = main(["restore", "--whole-photo", "--methods", "lq", "--input", str(tmp_path / "in"), "--out", str(out),
                     "--upscale", "8", "--max-memory-gib", "2"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 3
    df = read_table(out / "faces.csv")
    assert df["status"].tolist() == ["too_large"] and "32000x24000" in df["reason"].iloc[0]
    assert not (out / "lq" / "big.png").exists()
    assert peak < 400 * 1024 ** 2  # the input photo (36 MB) and detection, never the 2.3 GB canvas
    assert main(["restore", "--whole-photo", "--methods", "lq", "--input", str(tmp_path / "in"), "--out", str(out),
                 "--upscale", "2", "--max-memory-gib", "0"]) == 2  # a bad limit is a usage error


@needs_mini
@needs_dlib
def test_refused_after_detection_when_the_face_regions_do_not_fit(tmp_path):
    """The second check counts the float32 blending regions of the restored faces: a limit between the canvas alone
    and canvas + regions refuses the photo after restoration, before the canvas is made; a rerun with more memory
    does it (too_large is not journalled as done)."""
    from baselines.classical import LQMethod
    from celebref.app.whole_photo import WholePhotoRunner
    from celebref.app.whole_photo_canvas import GIB, needed_bytes

    two = compose(2)
    write_image(tmp_path / "two.png", two)
    h, w = two.shape[:2]
    limit = (needed_bytes(h, w, 2) + 1000) / GIB
    df = WholePhotoRunner(tmp_path / "out", [LQMethod()], upscale=2, max_memory_gib=limit).run([("two", str(tmp_path / "two.png"))])
    photo = df[df["face"] < 0]
    assert photo["status"].tolist() == ["too_large"] and "GiB" in photo["reason"].iloc[0]
    assert (df.loc[df["face"] >= 0, "paste_order"] == -1).all() and not (tmp_path / "out" / "lq" / "two.png").exists()
    df = WholePhotoRunner(tmp_path / "out", [LQMethod()], upscale=2, max_memory_gib=4.0).run([("two", str(tmp_path / "two.png"))])
    assert (df["status"] == "ok").all() and (tmp_path / "out" / "lq" / "two.png").is_file()


# -- evaluate --whole-photo: an evaluate run like any other ---------------------------------------------------
def _refs(folder: Path, people: int = 2) -> Path:
    """Reference faces of the first ``people`` identities (images other than the ones composed into photos)."""
    idents = sorted(p.name for p in (MINI / "hq").iterdir() if p.is_dir())
    for ident in idents[:people]:
        for f in sorted((MINI / "hq" / ident).glob("*.png"))[2:4]:
            write_image(folder / ident / f.name, read_image(f))
    return folder


@pytest.fixture
def no_niqe(monkeypatch):
    """NIQE's parameter file unavailable (the isolated, offline weight home of conftest, and no override)."""
    from celebref.weights import env_var

    monkeypatch.delenv(env_var("niqe-params"), raising=False)


@needs_mini
@needs_dlib
def test_evaluate_whole_photo_is_an_evaluate_run_without_niqe(tmp_path, no_niqe, capsys):
    from celebref.app.cli import main

    src, refs = tmp_path / "photos", _refs(tmp_path / "refs")
    write_image(src / "two.png", compose(2))
    base = ["evaluate", "--whole-photo", "--data", str(src), "--methods", "lq", "--identity-refs", str(refs), "--device", "cpu"]
    # identity alone needs no NIQE weights
    ev = tmp_path / "ev"
    assert main(base + ["--metrics", "identity", "--out", str(ev)]) == 0
    run = json.loads((ev / "run.json").read_text())
    assert [m["name"] for m in run["metrics"]] == ["identity-refs"] and run["engine"]["engine"] == "local"
    assert run["data"]["kind"] == "whole-photo" and run["data"]["n_faces"] == 2
    assert run["profile"]["aliases"]["identity"] == "identity-refs"
    df = read_table(ev / "per_image.csv")
    assert sorted(df["id"]) == ["two_face0", "two_face1"] and (df["status"] == "ok").all()
    assert np.isfinite(df["identity_ref_cos"]).all()
    summary = read_table(ev / "summary.csv")
    assert summary[["method", "metric", "label", "n"]].values.tolist() == [["lq", "identity_ref_cos", "ID-ref(dlib)", 2]]
    capsys.readouterr()
    assert main(["tables", str(ev)]) == 0 and "ID-ref(dlib)" in capsys.readouterr().out
    assert main(["report", str(ev), "--out", str(tmp_path / "rep")]) == 0
    # the default metrics (niqe + identity): missing NIQE is a usage error before any work ...
    assert main(base + ["--out", str(tmp_path / "ev2")]) == 2 and not (tmp_path / "ev2" / "photos").exists()
    # ... or skipped and recorded with --skip-unavailable
    assert main(base + ["--out", str(tmp_path / "ev3"), "--skip-unavailable"]) == 3
    run = json.loads((tmp_path / "ev3" / "run.json").read_text())
    assert [(s["kind"], s["name"]) for s in run["skipped"]] == [("metric", "niqe")]
    assert np.isfinite(read_table(tmp_path / "ev3" / "per_image.csv")["identity_ref_cos"]).all()
    # a full-reference metric has no ground truth here: refused up front
    assert main(base + ["--metrics", "psnr", "--out", str(tmp_path / "ev4")]) == 2


@pytest.fixture
def nan_metric():
    """A test plugin metric (no reference): NaN for every image, as NIQE gives on a flat or tiny image."""
    from evaluation.base import Metric
    from evaluation.registry import METRICS

    class WPNaN(Metric):
        name = "wp-nan"
        columns = ("wp_nan",)
        higher_is_better = {"wp_nan": False}
        needs_reference = False

        def _compute(self, pred, target):
            return {"wp_nan": torch.full((pred.shape[0],), float("nan"), dtype=torch.float64)}

    yield from _registered(METRICS, "wp-nan", WPNaN, "test: always NaN")


@needs_mini
@needs_dlib
def test_whole_photo_failures_are_rows_with_reasons(tmp_path, no_niqe, nan_metric):
    """Photos without a face (1x1, 3x2000, a plain background) are failed rows with the reason, and a face a metric
    cannot score (NaN) is ``metric_failed`` with the column named: never ``ok`` with an empty reason."""
    from celebref.app.cli import main

    src, refs = tmp_path / "photos", _refs(tmp_path / "refs")
    write_image(src / "two.png", compose(2))
    write_image(src / "tiny.png", np.full((1, 1, 3), 120, np.uint8))
    write_image(src / "thin.png", np.full((3, 2000, 3), 120, np.uint8))
    write_image(src / "flat.png", _background(300, 400, 7))
    out = tmp_path / "ev"
    assert main(["evaluate", "--whole-photo", "--data", str(src), "--methods", "lq", "--identity-refs", str(refs),
                 "--metrics", f"{nan_metric},identity", "--out", str(out), "--device", "cpu"]) == 3
    df = read_table(out / "per_image.csv").set_index("id")
    assert sorted(df.index) == ["flat", "thin", "tiny", "two_face0", "two_face1"]
    for pid in ("flat", "thin", "tiny"):
        assert df.loc[pid, "status"] == "error" and df.loc[pid, "reason"] == "no_face: no face detected"
    for fid in ("two_face0", "two_face1"):
        assert df.loc[fid, "status"] == "metric_failed" and df.loc[fid, "reason"] == "wp_nan: no value (NaN)"
        assert np.isfinite(df.loc[fid, "identity_ref_cos"])
    assert (df["reason"].fillna("") != "").all()


@needs_mini
@needs_dlib
def test_identity_refs_metric_known_answers(tmp_path):
    """``identity-refs`` is a registry metric: aligned mode = the crop's cosine to its closest reference; detect mode =
    the mean over the detected faces, NaN with a recorded reason when there is none; no refs: a clear error."""
    from celebref.face import get_backend
    from evaluation.registry import create_metric

    refs = _refs(tmp_path / "refs")
    be = get_backend("dlib")
    ref = []
    for p in sorted(refs.rglob("*.png")):
        img = read_image(p)
        d = max(be.detect(img), key=lambda d: d.area)
        ref.append(np.asarray(be.embed(img, d), np.float64))
    ref = np.stack(ref)
    idents = sorted(p.name for p in (MINI / "hq").iterdir() if p.is_dir())
    crop = read_image(sorted((MINI / "hq" / idents[0]).glob("*.png"))[1])
    photo, flat = compose(2), _background(300, 400, 7)

    def batch(*imgs):
        return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()

    aligned = create_metric("identity-refs", refs=str(refs), backend="dlib").load()
    got = aligned.compute(batch(crop))["identity_ref_cos"]
    assert got[0].item() == pytest.approx(float(np.max(ref @ np.asarray(be.embed_aligned(crop), np.float64))), abs=1e-12)
    detect = create_metric("id-refs", refs=str(refs), backend="dlib", mode="detect").load()
    vals = detect.compute(batch(photo))["identity_ref_cos"]
    faces = be.detect(photo)
    assert len(faces) == 2
    expected = np.mean([np.max(ref @ np.asarray(be.embed(photo, d), np.float64)) for d in faces])
    assert vals[0].item() == pytest.approx(expected, abs=1e-12)
    out = detect.compute(batch(flat))["identity_ref_cos"]
    assert np.isnan(out[0].item()) and detect.last_failures == {0: "no face detected"}
    d = detect.describe()
    assert d["labels"] == {"identity_ref_cos": "ID-ref(dlib)"} and d["references"]["n_used"] == 4
    with pytest.raises(ConfigError, match="refs="):
        create_metric("identity-refs").load()
    with pytest.raises(ConfigError, match="not a folder"):
        create_metric("identity-refs", refs=str(tmp_path / "nowhere"), backend="dlib").load()


def test_method_labels_become_external_names():
    from celebref.app.whole_photo_eval import external_label

    assert external_label("gfpgan") == "gfpgan" and external_label("codeformer:w=0.7") == "codeformer_w_0.7"
    assert external_label("dfdnet:channels_last=False,matching=reference") == "dfdnet_channels_last_False_matching_reference"
    from baselines.registry import parse_method_spec

    assert parse_method_spec(f"external:{external_label('codeformer:w=0.7')}=/x") == \
        ("external", {"label": "codeformer_w_0.7", "folder": "/x"})


@pytest.fixture
def blur_method():
    """A test plugin method: Gaussian blur (sigma 2) of its crop, declaring DMDNet's alignment (ffhq68)."""
    from baselines.classical import LQMethod
    from baselines.registry import METHODS

    class WPBlur(LQMethod):
        name = "wp-blur"
        alignment = "ffhq68"

        def _restore(self, items):
            from baselines.base import RestoreResult

            return [RestoreResult(it.id, cv2.GaussianBlur(np.asarray(it.image), (0, 0), 2.0)) for it in items]

    yield from _registered(METHODS, "wp-blur", WPBlur, "test: blur")


@pytest.fixture
def failing_method():
    """A test plugin method that restores no face (a per-image error with a fixed reason)."""
    from baselines.classical import LQMethod
    from baselines.registry import METHODS

    class WPFail(LQMethod):
        name = "wp-fail"

        def _restore(self, items):
            from baselines.base import STATUS_ERROR, RestoreResult

            return [RestoreResult(it.id, None, STATUS_ERROR, "this method restores nothing") for it in items]

    yield from _registered(METHODS, "wp-fail", WPFail, "test: always fails")


@needs_mini
@needs_dlib
def test_evaluate_whole_photo_methods_through_external_folders(tmp_path, no_niqe, blur_method, failing_method):
    """Each method's restored crops (its own alignment) are scored as an ``external:`` folder of the run, the values
    equal the metric on those crops, and a method that restores nothing keeps the whole-photo reason per face."""
    from celebref.app.cli import main
    from evaluation.registry import create_metric

    src, refs = tmp_path / "photos", _refs(tmp_path / "refs")
    write_image(src / "two.png", compose(2))
    out = tmp_path / "ev"
    assert main(["evaluate", "--whole-photo", "--data", str(src), "--methods", f"{blur_method},wp-fail", "--identity-refs",
                 str(refs), "--metrics", "identity", "--out", str(out), "--device", "cpu"]) == 3
    df = read_table(out / "per_image.csv")
    assert sorted(set(df["method"])) == ["lq", "wp-blur", "wp-fail"]
    faces = read_table(out / "photos" / "faces.csv")
    metric = create_metric("identity-refs", refs=str(refs), backend="dlib").load()
    blur = df[df["method"] == "wp-blur"].set_index("id")
    for _, f in faces[(faces["method"] == "wp-blur") & (faces["face"] >= 0)].iterrows():
        assert f["alignment"] == "ffhq68"
        crop = read_image(out / "photos" / f["restored_path"])
        fid = f"two_face{f['face']}"
        np.testing.assert_array_equal(read_image(out / blur.loc[fid, "output_path"]), crop)  # the run scored this crop
        expected = metric.compute(torch.from_numpy(crop.transpose(2, 0, 1)[None].copy()))["identity_ref_cos"][0].item()
        assert blur.loc[fid, "status"] == "ok" and blur.loc[fid, "identity_ref_cos"] == expected
    failed = df[df["method"] == "wp-fail"]
    assert (failed["status"] == "error").all()
    assert (failed["reason"] == "whole-photo restore: this method restores nothing").all()
    run = json.loads((out / "run.json").read_text())
    assert [m["label"] for m in run["methods"]] == ["lq", "wp-blur", "wp-fail"]
