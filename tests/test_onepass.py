"""The one-pass runner (issue 23): a dataset-level plugin metric works with no change to the application, per-metric
failure reasons in the row (21.7), sets without ground truth (20.1), transient write failures and corrupted
outputs redone on a rerun (22.17), metric-only runs, and run.json's decoded/encoded counts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

import celebref.app.outputs as outputs
from baselines.base import RestorationMethod, RestoreResult
from baselines.registry import METHODS
from celebref.app.cli import main
from celebref.app.evaluate import EvalConfig, evaluate
from celebref.imageio import read_image, write_image
from celebref.testset import load_test_set
from evaluation.base import Metric
from evaluation.registry import METRICS


class Invert(RestorationMethod):
    """255 - input; counts the images it restores."""

    name = "onepass-invert"
    input_size = None
    restored: Counter = Counter()

    def _restore(self, items):
        type(self).restored.update(it.id for it in items)
        return [RestoreResult(it.id, 255 - it.image) for it in items]


class MeanGap(Metric):
    """Test plugin, dataset level with its own state: |mean pixel of the set - mean pixel of the reference|."""

    name = "meangap"
    columns = ("meangap",)
    higher_is_better = {"meangap": False}
    dataset_level = True

    class State:
        def __init__(self):
            self.total, self.count = 0.0, 0

        def merge(self, other):
            self.total += other.total
            self.count += other.count
            return self

    def new_state(self):
        return MeanGap.State()

    def update_state(self, state, images):
        state.total += float(images.to(torch.float64).sum())
        state.count += images.numel()

    def compute_dataset(self, state, reference):
        return abs(state.total / state.count - reference.total / reference.count)


class MaxFeature(Metric):
    """Test plugin, dataset level through the defaults (features + score): max over the set of per-image maxima
    minus the same for the reference."""

    name = "maxfeat"
    columns = ("maxfeat",)
    higher_is_better = {"maxfeat": False}
    dataset_level = True

    def features(self, images):
        return images.flatten(1).max(dim=1).values.to(torch.float64).numpy()[:, None]

    def score(self, pred_features, reference):
        return float(pred_features.max() - reference.max())


for _name, _target in ((Invert.name, "Invert"),):
    if _name not in METHODS.names():
        METHODS.register(_name, f"{__name__}:{_target}", description="test method", source="tests")
for _cls in (MeanGap, MaxFeature):
    if _cls.name not in METRICS.names():
        METRICS.register(_cls.name, f"{__name__}:{_cls.__name__}", description="test metric", tags=("dataset-level",))


@pytest.fixture()
def pairs(tmp_path: Path) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(2)
    for i in range(5):
        gt = cv2.GaussianBlur(rng.integers(0, 256, (192, 192, 3), dtype=np.uint8), (0, 0), 2)
        write_image(tmp_path / "gt" / f"{i}.png", gt)
        write_image(tmp_path / "lq" / f"{i}.png", cv2.GaussianBlur(gt, (0, 0), 1.5))
        write_image(tmp_path / "ext" / f"{i}.png", cv2.GaussianBlur(gt, (0, 0), 0.8))
    return tmp_path / "lq", tmp_path / "gt", tmp_path / "ext"


def _run(lq, gt, out, methods, metrics, **kw):
    ts = load_test_set(None, lq, gt)
    return evaluate(ts.records, ts.info, EvalConfig(out=out, methods=methods, metrics=metrics, device="cpu", **kw))


def _stack(paths):
    return np.stack([read_image(p) for p in paths]).astype(np.float64)


def test_dataset_level_plugin_metrics_need_no_application_change(pairs, tmp_path: Path) -> None:
    lq, gt, ext = pairs
    res = _run(lq, gt, tmp_path / "run", [f"external:ext={ext}"], ["meangap", "maxfeat", "psnr"], batch_size=2)
    assert res.outcome.exit_code() == 0
    s = res.summary.set_index(["method", "metric"])["mean"]
    g = _stack(sorted(gt.glob("*.png")))
    for method, folder in (("lq", lq), ("ext", ext)):
        x = _stack(sorted(folder.glob("*.png")))
        assert s[(method, "meangap")] == pytest.approx(abs(x.mean() - g.mean()), rel=1e-12)
        assert s[(method, "maxfeat")] == x.max() - g.max()


def test_metric_failure_reason_is_recorded_in_the_row(pairs, tmp_path: Path) -> None:
    """LMD on images without faces: NaN, and the row's reason names the metric and why (stderr points there)."""
    lq, gt, _ = pairs
    res = _run(lq, gt, tmp_path / "run", [], ["lmd", "psnr"])
    per = res.per_image
    assert per["lmd"].isna().all() and per["psnr"].notna().all()
    assert per["reason"].str.startswith("lmd: no face found in the ").all(), per["reason"].tolist()
    assert res.outcome.exit_code() == 3 and "column" in " ".join(res.outcome.details)
    # the reason is journalled with the value: a rerun (nothing rescored) gives the same rows
    again = _run(lq, gt, tmp_path / "run", [], ["lmd", "psnr"])
    pd.testing.assert_frame_equal(again.per_image, per)


@pytest.fixture()
def niqe_params(golden_dir: Path, monkeypatch) -> None:
    from celebref.weights import env_var

    monkeypatch.setenv(env_var("niqe-params"), str(golden_dir / "metrics" / "niqe" / "niqe_pris_params.npz"))


def test_no_ground_truth_reference_metric_requested_is_skipped_with_one_line(pairs, tmp_path: Path, niqe_params,
                                                                             capsys) -> None:
    lq, _, _ = pairs
    run = tmp_path / "run"
    rc = main(["evaluate", "--data", str(lq), "--metrics", "niqe,psnr", "--device", "cpu", "--out", str(run)])
    assert rc == 3
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("skipped")]
    assert len(err) == 1 and "ground truth" in err[0]
    per = pd.read_parquet(run / "per_image.parquet")
    assert per["niqe"].notna().all() and "psnr" not in per.columns
    assert [s["name"] for s in json.loads((run / "run.json").read_text())["skipped"]] == ["psnr"]


def test_no_ground_truth_profile_defaults_run_the_no_reference_metrics(pairs, tmp_path: Path, niqe_params) -> None:
    lq, _, _ = pairs
    ts = load_test_set(lq, None, None)
    res = evaluate(ts.records, ts.info, EvalConfig(out=tmp_path / "run", methods=[], metrics=["niqe", "psnr", "fid"],
                                                  device="cpu", metrics_explicit=False))
    assert res.outcome.exit_code() == 0 and res.per_image["niqe"].notna().all()
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["skipped"] == [] and [s["name"] for s in meta["not_applicable"]] == ["psnr", "fid"]


def test_disk_full_outputs_are_redone_and_a_corrupted_output_is_not_accepted(pairs, tmp_path: Path, monkeypatch) -> None:
    lq, gt, _ = pairs
    run = tmp_path / "run"
    real = outputs.atomic_write_bytes

    def full(path, data):
        if Path(path).stem in ("1", "3") and Path(path).parent.name == Invert.name:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(outputs, "atomic_write_bytes", full)
    Invert.restored = Counter()
    res = _run(lq, gt, run, [Invert.name], ["psnr"])
    rows = res.per_image.set_index(["method", "id"])
    assert res.outcome.exit_code() == 3
    for i in ("1", "3"):
        assert rows.loc[(Invert.name, i), "status"] == "error"
        assert rows.loc[(Invert.name, i), "reason"].startswith("writing the output failed: OSError: [Errno 28] No space")
    monkeypatch.setattr(outputs, "atomic_write_bytes", real)  # space again: only the failed ones are redone
    Invert.restored = Counter()
    res = _run(lq, gt, run, [Invert.name], ["psnr"])
    assert res.outcome.exit_code() == 0 and Invert.restored == Counter({"1": 1, "3": 1})
    first = res.per_image.copy()
    # a truncated output whose journal row says ok is redone, not accepted
    png = run / "restored" / Invert.name / "2.png"
    png.write_bytes(png.read_bytes()[:100])
    Invert.restored = Counter()
    res = _run(lq, gt, run, [Invert.name], ["psnr"])
    assert Invert.restored == Counter({"2": 1}) and res.outcome.exit_code() == 0
    np.testing.assert_array_equal(read_image(png), 255 - read_image(lq / "2.png"))
    cols = ["id", "method", "status", "psnr"]
    pd.testing.assert_frame_equal(res.per_image[cols], first[cols])


def test_metric_only_run_and_image_counts(pairs, tmp_path: Path) -> None:
    lq, gt, ext = pairs
    saved = _run(lq, gt, tmp_path / "saved", [f"external:ext={ext}", Invert.name], ["psnr", "ssim"])
    meta = json.loads((tmp_path / "saved" / "run.json").read_text())
    # 5 LQ + 5 GT + 5 external files read once; lq and external outputs written as the PNG bytes they were read as
    assert meta["images"] == {"decoded": 15, "encoded": 5, "copied": 10}
    assert (tmp_path / "saved" / "restored" / "lq" / "0.png").read_bytes() == (lq / "0.png").read_bytes()
    assert (tmp_path / "saved" / "restored" / "ext" / "0.png").read_bytes() == (ext / "0.png").read_bytes()
    assert set(meta["stage_seconds"]) >= {"decode", "restore", "metrics", "write"}
    bare = _run(lq, gt, tmp_path / "bare", [f"external:ext={ext}", Invert.name], ["psnr", "ssim"], save_images=False)
    assert not list((tmp_path / "bare").rglob("*.png"))
    cols = ["id", "method", "status", "psnr", "ssim"]
    pd.testing.assert_frame_equal(bare.per_image[cols], saved.per_image[cols])
    assert (bare.per_image["output_path"] == "").all()
