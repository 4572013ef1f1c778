"""The evaluate summary never shows ``inf`` or ``nan`` as a mean without saying why (issue 12, item 7)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd
import pytest

from celebref.app.summary import SUMMARY_COLUMNS, print_summary, summarize


def _metric(name, columns, labels=None, dataset=False):
    m = SimpleNamespace(name=name, columns=tuple(columns), higher_is_better=dict(columns), dataset_level=dataset)
    if labels:
        m.column_labels = lambda: dict(labels)
    return m


PSNR = _metric("psnr", {"psnr": True})
IDENT = _metric("identity", {"identity_cos": True, "identity_angle": False},
                {"identity_cos": "ID(dlib)", "identity_angle": "Deg(dlib)"})
FID = _metric("fid", {"fid": False}, dataset=True)


def _per() -> pd.DataFrame:
    inf, nan = float("inf"), float("nan")
    rows = [("a", "lq", inf, 0.9, 25.0), ("b", "lq", 20.0, 0.8, 36.0), ("c", "lq", 22.0, nan, nan),
            ("a", "m", nan, nan, nan), ("b", "m", nan, nan, nan), ("c", "m", nan, nan, nan)]
    return pd.DataFrame(rows, columns=["id", "method", "psnr", "identity_cos", "identity_angle"])


def test_infinite_values_are_left_out_counted_and_named() -> None:
    s = summarize(_per(), [PSNR, IDENT, FID], [{"method": "lq", "metric": "fid", "value": float("nan"), "n": 1}])
    assert list(s.columns) == SUMMARY_COLUMNS
    r = s[(s["method"] == "lq") & (s["metric"] == "psnr")].iloc[0]
    assert r["mean"] == pytest.approx(21.0) and r["std"] == pytest.approx(np.std([20.0, 22.0], ddof=1))
    assert (r["n"], r["n_inf"], r["n_failed"], r["inf_ids"]) == (2, 1, 0, "a")
    assert "mean over 2 finite value(s)" in r["note"] and "infinite PSNR" in r["note"] and r["note"].endswith(": a")
    # every value missing: the mean is NaN and the note says why
    r = s[(s["method"] == "m") & (s["metric"] == "psnr")].iloc[0]
    assert np.isnan(r["mean"]) and (r["n"], r["n_inf"], r["n_failed"]) == (0, 0, 3)
    assert r["note"] == "no value: 3 image(s) without a value"
    # labels name the backend; a metric without its own labels gets the generic name
    labels = dict(zip(s["metric"], s["label"]))
    assert labels == {"psnr": "PSNR", "identity_cos": "ID(dlib)", "identity_angle": "Deg(dlib)", "fid": "FID"}
    r = s[s["metric"] == "fid"].iloc[0]
    assert np.isnan(r["mean"]) and "at least 2" in r["note"]


def test_all_infinite_is_not_a_mean() -> None:
    per = pd.DataFrame({"id": ["x", "y"], "method": ["same", "same"], "psnr": [float("inf")] * 2})
    r = summarize(per, [PSNR], []).iloc[0]
    assert np.isnan(r["mean"]) and (r["n"], r["n_inf"], r["inf_ids"]) == (0, 2, "x;y")
    assert r["note"].startswith("no finite value: 2 image(s) with infinite PSNR")


def test_printed_summary_explains_every_non_number() -> None:
    s = summarize(_per(), [PSNR, IDENT], [])
    buf = io.StringIO()
    print_summary(s, stream=buf)
    text = buf.getvalue()
    lines = [ln for ln in text.splitlines() if ln.startswith("  lq") or ln.startswith("  m ")]
    assert len(lines) == 6
    for ln in lines:
        assert not re.search(r"\b(inf|nan)\b", ln.split("(")[0]), ln  # never as the number
        if "n/a" in ln:
            assert "no value" in ln
    lq_psnr = next(ln for ln in lines if "PSNR" in ln and ln.startswith("  lq"))
    assert "21.0000" in lq_psnr and "inf=1" in lq_psnr and ": a" in lq_psnr
    assert any("ID(dlib)" in ln for ln in lines)
    assert "means over finite values" in text


def test_evaluate_writes_finite_means_with_the_untouched_image_named(tmp_path: Path) -> None:
    """A real evaluate run where one LQ image equals its GT (the dfdnet preset drew no degradation)."""
    from celebref.app.cli import main
    from celebref.imageio import write_image

    rng = np.random.default_rng(0)
    for i in range(3):
        gt = cv2.GaussianBlur(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8), (0, 0), 2)
        write_image(tmp_path / "gt" / f"{i}.png", gt)
        write_image(tmp_path / "lq" / f"{i}.png", gt if i == 0 else cv2.GaussianBlur(gt, (0, 0), 1.5))
    run = tmp_path / "run"
    rc = main(["evaluate", "--lq", str(tmp_path / "lq"), "--gt", str(tmp_path / "gt"), "--metrics", "psnr",
               "--device", "cpu", "--out", str(run)])
    assert rc in (0, 3)  # exit-status policy is another item's; the numbers are this test's subject
    s = pd.read_csv(run / "summary.csv", dtype={"inf_ids": str}).set_index(["method", "metric"])
    r = s.loc[("lq", "psnr")]
    assert np.isfinite(r["mean"]) and (r["n"], r["n_inf"], r["inf_ids"]) == (2, 1, "0")
    per = pd.read_parquet(run / "per_image.parquet").set_index("id")
    assert r["mean"] == pytest.approx(per.loc[["1", "2"], "psnr"].mean())


# --- means over different image sets are flagged; --common-images restricts them (issue 21, item 1) ----------

def _uneven() -> pd.DataFrame:
    nan = float("nan")
    rows = [("a", "lq", 20.0), ("b", "lq", 22.0), ("c", "lq", 30.0),
            ("a", "bicubic", 21.0), ("b", "bicubic", 23.0), ("c", "bicubic", nan),
            ("a", "none", nan), ("b", "none", nan), ("c", "none", nan)]  # a method without any value
    return pd.DataFrame(rows, columns=["id", "method", "psnr"])


def test_unequal_image_sets_are_flagged_in_the_summary() -> None:
    s = summarize(_uneven(), [PSNR], []).set_index("method")
    assert (s.loc["lq", "n"], s.loc["lq", "n_common"]) == (3, 2)
    assert (s.loc["bicubic", "n"], s.loc["bicubic", "n_common"]) == (2, 2)
    assert s.loc["lq", "mean"] == pytest.approx(24.0) and not s["common_only"].any()
    lines = io.StringIO()
    print_summary(s.reset_index(), stream=lines)
    text = lines.getvalue()
    lq = next(ln for ln in text.splitlines() if ln.startswith("  lq"))
    bic = next(ln for ln in text.splitlines() if ln.startswith("  bicubic"))
    assert "n=2 ≠ 3" in bic and "≠" not in lq  # bicubic lacks an image the others scored
    assert "another image set than the other methods'" in text and "--common-images" in text


def test_common_images_restricts_every_mean_to_the_images_all_methods_scored() -> None:
    s = summarize(_uneven(), [PSNR], [], common_images=True).set_index("method")
    assert s.loc["lq", "mean"] == pytest.approx(21.0) and s.loc["lq", "n"] == 2  # a and b only
    assert s.loc["bicubic", "mean"] == pytest.approx(22.0) and s.loc["bicubic", "n"] == 2
    assert s["common_only"].all()
    assert s.loc["lq", "note"].startswith("restricted to the 2 image(s) every method scored: 1 other finite value")
    assert s.loc["none", "n"] == 0 and "no value" in s.loc["none", "note"]
    fid = summarize(_uneven(), [PSNR, FID], [{"method": "lq", "metric": "fid", "value": 10.0, "n": 3}],
                    common_images=True)
    assert "not restricted to common images" in fid[fid["metric"] == "fid"].iloc[0]["note"]


def test_printed_profile_lists_only_the_metrics_that_were_run() -> None:
    buf = io.StringIO()
    print_summary(summarize(_uneven(), [PSNR], []), stream=buf)
    tail = buf.getvalue().split("profile default:", 1)[1]
    assert "PSNR" in tail and "psnr:" in tail
    for absent in ("LPIPS", "FID", "NIQE", "identity", "lmd:", "niqe:"):
        assert absent not in tail, absent


def test_evaluate_common_images_flag(tmp_path: Path) -> None:
    """``evaluate --common-images`` on a real run where one method has no result for one image."""
    from celebref.app.cli import main
    from celebref.imageio import write_image

    rng = np.random.default_rng(1)
    for i in range(3):
        gt = cv2.GaussianBlur(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8), (0, 0), 2)
        lq = cv2.GaussianBlur(gt, (0, 0), 1.0 + i)
        write_image(tmp_path / "gt" / f"{i}.png", gt)
        write_image(tmp_path / "lq" / f"{i}.png", lq)
        if i:
            write_image(tmp_path / "part" / f"{i}.png", cv2.addWeighted(gt, 0.5, lq, 0.5, 0))
    base = ["evaluate", "--lq", str(tmp_path / "lq"), "--gt", str(tmp_path / "gt"), "--metrics", "psnr",
            "--methods", f"external:part={tmp_path / 'part'}", "--device", "cpu"]
    assert main([*base, "--out", str(tmp_path / "own")]) in (0, 3)
    assert main([*base, "--out", str(tmp_path / "common"), "--common-images"]) in (0, 3)
    own = pd.read_csv(tmp_path / "own" / "summary.csv").set_index("method")
    common = pd.read_csv(tmp_path / "common" / "summary.csv").set_index("method")
    per = pd.read_parquet(tmp_path / "own" / "per_image.parquet")
    lq = per[per["method"] == "lq"].set_index("id")["psnr"]
    assert (own.loc["lq", "n"], own.loc["lq", "n_common"]) == (3, 2)
    assert own.loc["lq", "mean"] == pytest.approx(lq.mean())
    assert common.loc["lq", "n"] == 2 and common.loc["lq", "mean"] == pytest.approx(lq.loc[["1", "2"]].mean())
    assert bool(common.loc["lq", "common_only"]) and not bool(own.loc["lq", "common_only"])
