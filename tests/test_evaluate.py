"""`celebref evaluate`: pairing by id, every image accounted for, resume, and the celebref-mini end-to-end run."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from celebref.app.cli import main
from celebref.errors import ConfigError
from celebref.imageio import read_image, write_image
from celebref.testset import pair_folders


def _pair(tmp: Path, names_lq: list[str], names_gt: list[str]) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    for n in names_lq:
        write_image(tmp / "lq" / f"{n}.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    for n in names_gt:
        write_image(tmp / "gt" / f"{n}.png", rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return tmp / "lq", tmp / "gt"


def test_pairing_refuses_mismatched_stems_with_a_list(tmp_path: Path) -> None:
    lq, gt = _pair(tmp_path, ["a", "b", "x"], ["a", "b", "y", "z"])
    with pytest.raises(ConfigError) as e:
        pair_folders(lq, gt)
    msg = str(e.value)
    assert "1 LQ image(s) without ground truth: x" in msg and "2 ground-truth image(s) without LQ: y, z" in msg


def test_pairing_is_by_stem_not_by_sorted_listing(tmp_path: Path) -> None:
    lq, gt = _pair(tmp_path, ["10", "9"], ["9", "10"])
    recs = pair_folders(lq, gt)
    assert [(r.id, r.lq_path.stem, r.gt_path.stem) for r in recs] == [("10", "10", "10"), ("9", "9", "9")]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def test_evaluate_rows_summary_resume(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for i in range(5):
        gt = cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), (0, 0), 2)
        write_image(tmp_path / "gt" / f"{i}.png", gt)
        write_image(tmp_path / "lq" / f"{i}.png", cv2.GaussianBlur(gt, (0, 0), 1.5))
        if i != 4:  # the external method has no output for image 4: a failure, not a dropped row
            write_image(tmp_path / "ext" / f"{i}.png", gt)
    run = tmp_path / "run"
    argv = ["evaluate", "--lq", str(tmp_path / "lq"), "--gt", str(tmp_path / "gt"), "--methods", f"external:perfect={tmp_path / 'ext'}",
            "--metrics", "psnr,ssim", "--device", "cpu", "--out", str(run)]
    assert main(argv) == 3  # finished, but image 4 has no result: the exit status says so (issue 12.2)
    per = pd.read_parquet(run / "per_image.parquet")
    assert len(per) == 5 * 2 and set(per["method"]) == {"lq", "perfect"}
    lq_rows = per[per["method"] == "lq"].set_index("id")
    for i in range(5):
        expected = _psnr(read_image(tmp_path / "lq" / f"{i}.png"), read_image(tmp_path / "gt" / f"{i}.png"))
        assert lq_rows.loc[str(i), "psnr"] == pytest.approx(expected, abs=1e-6)
    perfect = per[per["method"] == "perfect"].set_index("id")
    assert perfect.loc["4", "status"] != "ok" and np.isnan(perfect.loc["4", "psnr"])
    assert (perfect.drop(index="4")["ssim"] == 1.0).all()
    summary = pd.read_csv(run / "summary.csv")
    row = summary[(summary["method"] == "perfect") & (summary["metric"] == "ssim")].iloc[0]
    assert (row["n"], row["n_failed"]) == (4, 1)
    meta = json.loads((run / "run.json").read_text())
    assert meta["data"]["n_images"] == 5 and [m["label"] for m in meta["methods"]] == ["lq", "perfect"]
    # resume: metric journals are reused, outputs unchanged
    before = {p: p.stat().st_mtime_ns for p in (run / "cache").rglob("*.jsonl")}
    assert main(argv + ["--fail-on", "none"]) == 0
    assert {p: p.stat().st_mtime_ns for p in (run / "cache").rglob("*.jsonl")} == before
    pd.testing.assert_frame_equal(pd.read_parquet(run / "per_image.parquet"), per)


def test_evaluate_on_celebref_mini_dfdnet_preset(mini_dir: Path, tmp_path: Path) -> None:
    """The issue's end-to-end target: the mini set degraded with the dfdnet preset, evaluated with the lq row."""
    src = tmp_path / "hq"
    for ident in ("00005", "00022"):
        for p in sorted((mini_dir / "hq" / ident).glob("*.png"))[:3]:
            (src / ident).mkdir(parents=True, exist_ok=True)
            (src / ident / p.name).write_bytes(p.read_bytes())
    assert main(["degrade", "--preset", "dfdnet", "--seed", "0", "--input", str(src), "--out", str(tmp_path / "test")]) == 0
    run = tmp_path / "run"
    man = pd.read_csv(tmp_path / "test" / "manifest.csv", keep_default_na=False)
    scaled = man[man["scale_applied"].astype(str) == "True"]
    assert len(scaled) and all(  # the native LQ is kept beside the upsampled one, at its recorded size
        read_image(tmp_path / "test" / r["lq_native_path"]).shape[:2] == (int(r["lq_native_height"]), int(r["lq_native_width"]))
        for _, r in scaled.iterrows())
    assert main(["evaluate", "--data", str(tmp_path / "test"), "--methods", "bicubic", "--metrics", "psnr,ssim,identity",
                 "--device", "cpu", "--out", str(run)]) == 0
    per = pd.read_parquet(run / "per_image.parquet")
    assert len(per) == 12 and set(per["method"]) == {"lq", "bicubic"}
    bic = per[(per["method"] == "bicubic")].set_index("id")
    assert (bic.loc[scaled["id"], "status"] == "ok").all()
    per = per[per["method"] == "lq"]
    assert len(per) == 6 and (per["status"] == "ok").all()
    assert per["psnr"].between(10, 60).all() and per["identity_cos"].notna().all()
    assert {"deg_scale", "deg_noise_sigma"} <= set(per.columns)


def test_evaluate_fid_per_method_against_the_ground_truth(golden_dir: Path, synth_weights, tmp_path: Path, monkeypatch) -> None:
    """The dataset-level path: FID per method from the weight store's Inception (synthetic weights of the
    golden spec, pointed at through the override variable), reference = the test set's ground truth."""
    import warnings

    import torch

    from _metrics_golden import load_json, load_synth, metrics_dir
    from celebref.weights import env_var
    from evaluation.registry import create_metric

    mdir = metrics_dir(golden_dir)
    f = load_json(mdir / "fid" / "fid.json")["features"]
    torch.save(load_synth(synth_weights, mdir / f["spec"], f["salt"], f["synth_digest"]), tmp_path / "inception.pth")
    monkeypatch.setenv(env_var("fid-inception"), str(tmp_path / "inception.pth"))
    rng = np.random.default_rng(3)
    for i in range(3):
        gt = cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), (0, 0), 2)
        write_image(tmp_path / "gt" / f"{i}.png", gt)
        write_image(tmp_path / "lq" / f"{i}.png", cv2.GaussianBlur(gt, (0, 0), 2.0))
    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # synthetic file != declared sha256; N < 2048
        assert main(["evaluate", "--lq", str(tmp_path / "lq"), "--gt", str(tmp_path / "gt"),
                     "--methods", f"external:same={tmp_path / 'gt'}", "--metrics", "fid", "--device", "cpu",
                     "--out", str(run)]) == 0
        m = create_metric("fid", device="cpu")
        m.load()
        load = lambda d: torch.from_numpy(np.stack([read_image(tmp_path / d / f"{i}.png") for i in range(3)])).permute(0, 3, 1, 2)  # noqa: E731
        expected = m.score(m.features(load("lq")), m.features(load("gt")))
    summary = pd.read_csv(run / "summary.csv").set_index(["method", "metric"])
    # synthetic weights make features nearly image-independent (README), so FIDs are tiny but not zero
    assert expected > 0 and summary.loc[("lq", "fid"), "n"] == 3
    assert summary.loc[("lq", "fid"), "mean"] == pytest.approx(expected, rel=1e-9)
    assert abs(summary.loc[("same", "fid"), "mean"]) < 1e-3 * expected  # the ground truth against itself


def test_fid_feature_moments_equal_the_direct_computation() -> None:
    """The float64 accumulation evaluate uses for FID (in input order, or merged from parts with other shifts)
    gives np.mean/np.cov to float64 precision, and the FID from it equals the FID from the feature arrays."""
    from evaluation.fid import FID, frechet_distance, statistics
    from evaluation.moments import FeatureMoments

    def fid_score(metric, state, ref):
        return metric.compute_dataset(state, ref)

    rng = np.random.default_rng(5)
    x = rng.gamma(2.0, 0.3, (300, 48)) + 1.0  # positive, offset: cancellation would show without the shift
    y = rng.gamma(2.2, 0.3, (250, 48)) + 1.0
    whole, parts = FeatureMoments(keep=0), [FeatureMoments(keep=0) for _ in range(3)]
    for i in range(0, 300, 7):
        whole.add(x[i:i + 7])
        parts[(i // 7) % 3].add(x[i:i + 7])
    merged = parts[0]
    merged.merge(parts[1]), merged.merge(parts[2])
    mu, sigma = statistics(x)
    for acc in (whole, merged):
        m, s = acc.statistics()
        np.testing.assert_allclose(m, mu, rtol=1e-13)
        np.testing.assert_allclose(s, sigma, rtol=1e-11, atol=1e-15)
    ref = FeatureMoments(keep=0)
    ref.add(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # N < 2048
        direct = frechet_distance(*statistics(x), *statistics(y))
        assert fid_score(FID(), whole, ref) == pytest.approx(direct, rel=1e-10)
        kept, kept_ref = FeatureMoments(), FeatureMoments()
        kept.add(x), kept_ref.add(y)
        assert fid_score(FID(), kept, kept_ref) == FID().score(x, y)  # small sets: exactly the metric's own path


def test_feature_moments_do_not_depend_on_batching() -> None:
    """FID's state merged from per-batch states (any batch boundaries, as different engines or a restart give)
    equals, bit for bit, the state of the whole sequence -- past the kept-features limit too."""
    from evaluation.moments import FeatureMoments

    rng = np.random.default_rng(7)
    x = rng.normal(3.0, 1.0, (700, 16))
    whole = FeatureMoments(keep=64)
    whole.add(x)
    for cuts in ([1, 5, 300, 301, 699], list(range(0, 700, 13)), [256, 512]):
        merged = FeatureMoments(keep=64)
        for a, b in zip([0] + cuts, cuts + [700]):
            part = FeatureMoments(keep=64)
            part.add(x[a:b])
            merged.merge(part)
        for got, want in zip(merged.statistics(), whole.statistics()):
            assert np.array_equal(got, want)
