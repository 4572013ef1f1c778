"""Issue 23 acceptance, "same numbers": the one-pass runner scores in memory exactly what the file-based path
scored from the PNGs it wrote. Four celebref-mini faces degraded with the dfdnet preset, through ``lq``,
``bicubic`` and an external folder, with psnr, ssim, niqe, lmd (dlib) and LPIPS/FID on synthetic weights
(written by benchmarks/bench_evaluate.py, used with --allow-unverified-weights). The reference values are the
metrics' own functions applied to the files (what main 6a79174 computed: it re-read every restored PNG and its
ground truth): bitwise for psnr/ssim/niqe/lmd, FID to rtol 1e-9, LPIPS to 1e-6 (batched float32 convolutions).
Checked for the local engine, after a run killed (SIGKILL) mid-way and resumed, and on the Ray engine."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from celebref.app.cli import main
from celebref.imageio import read_image, write_image
from celebref.testset import load_test_set

ROOT = Path(__file__).resolve().parents[1]
METRICS = "psnr,ssim,niqe,lmd,lpips,fid"
BITWISE = ("psnr", "ssim", "niqe", "lmd")


@pytest.fixture(scope="module")
def env(golden_dir: Path, tmp_path_factory) -> dict[str, str]:
    """Weight-store overrides: NIQE's published parameters (golden), synthetic AlexNet/LPIPS/Inception files."""
    from celebref.weights import env_var

    spec = importlib.util.spec_from_file_location("bench_evaluate_eq", ROOT / "benchmarks" / "bench_evaluate.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    paths = bench.write_weights(["alexnet", "lpips-alex-v0.1", "fid-inception"], tmp_path_factory.mktemp("w"), dfdnet_k=8)
    out = {env_var(k): str(v) for k, v in paths.items()}
    out[env_var("niqe-params")] = str(golden_dir / "metrics" / "niqe" / "niqe_pris_params.npz")
    return out


@pytest.fixture()
def weights_env(env, monkeypatch) -> dict[str, str]:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture(scope="module")
def data(mini_dir: Path, tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("eqdata")
    for ident in ("00005", "00022"):
        for p in sorted((mini_dir / "hq" / ident).glob("*.png"))[:2]:
            (tmp / "hq" / ident).mkdir(parents=True, exist_ok=True)
            (tmp / "hq" / ident / p.name).write_bytes(p.read_bytes())
    assert main(["degrade", "--preset", "dfdnet", "--seed", "0", "--input", str(tmp / "hq"), "--out", str(tmp / "test")]) == 0
    for r in load_test_set(tmp / "test", None, None).records:  # an external method's results: blurred ground truth
        write_image(tmp / "ext" / f"{r.id}.png", cv2.GaussianBlur(read_image(r.gt_path), (0, 0), 1.5))
    return tmp / "test", tmp / "ext"


def _argv(data, out: Path, *extra: str) -> list[str]:
    test, ext = data
    return ["evaluate", "--data", str(test), "--methods", f"lq,bicubic,external:ext={ext}", "--metrics", METRICS,
            "--device", "cpu", "--out", str(out), "--allow-unverified-weights", "--fail-on", "none", *extra]


def _tensor(paths: list[Path]) -> torch.Tensor:
    return torch.from_numpy(np.stack([read_image(p) for p in paths])).permute(0, 3, 1, 2).contiguous()


def _check_against_files(run: Path) -> pd.DataFrame:
    """Every per-image value and FID equal the metric functions applied to the written PNGs and the GT files."""
    from evaluation.registry import create_metric

    per = pd.read_parquet(run / "per_image.parquet")
    summary = pd.read_csv(run / "summary.csv").set_index(["method", "metric"])
    ok = per[per["output_path"] != ""]
    assert len(ok) == 12, per[["method", "id", "status", "reason"]]
    metrics = {n: create_metric(n, device="cpu").load() for n in ("psnr", "ssim", "niqe", "lmd", "lpips", "fid")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, row in ok.iterrows():
            pred, gt = _tensor([run / row["output_path"]]), _tensor([Path(row["gt_path"])])
            for name in ("psnr", "ssim", "niqe", "lmd", "lpips"):
                m = metrics[name]
                want = float(m.compute(pred, gt if m.needs_reference else None)[m.columns[0]][0])
                got = float(row[m.columns[0]])
                if name in BITWISE:
                    assert got == want or (np.isnan(got) and np.isnan(want)), (name, row["method"], row["id"], got, want)
                else:
                    assert got == pytest.approx(want, rel=1e-6), (name, row["id"])
        fid = metrics["fid"]
        for method, g in ok.groupby("method"):
            g = g.sort_values("id")
            want = fid.score(fid.features(_tensor([run / p for p in g["output_path"]])),
                             fid.features(_tensor([Path(p) for p in g["gt_path"]])))
            assert summary.loc[(method, "fid"), "mean"] == pytest.approx(want, rel=1e-9), method
    for (method, metric), srow in summary.iterrows():  # summary rows are the means of those values
        if metric in ("psnr", "ssim", "niqe", "lmd", "lpips"):
            vals = pd.to_numeric(per.loc[per["method"] == method, metric]).to_numpy(np.float64)
            finite = vals[np.isfinite(vals)]
            assert srow["mean"] == pytest.approx(finite.mean(), rel=1e-12) and srow["n"] == len(finite)
    return per


def _table(per: pd.DataFrame) -> pd.DataFrame:
    cols = ["id", "method", "status", "reason", "output_path", "psnr", "ssim", "niqe", "lmd", "lpips"]
    return per[cols].sort_values(["method", "id"]).reset_index(drop=True)


def _same_as_local(run: Path, local: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Per-image rows identical to the local run's (bitwise) and FID to rtol 1e-9; outputs byte-identical."""
    per, summary = pd.read_parquet(run / "per_image.parquet"), pd.read_csv(run / "summary.csv")
    got, want = _table(per), _table(local[0])
    pd.testing.assert_frame_equal(got.drop(columns="lpips"), want.drop(columns="lpips"), check_exact=True)
    np.testing.assert_allclose(got["lpips"], want["lpips"], rtol=1e-6)  # float32 convolutions of another batch size
    got, want = summary.set_index(["method", "metric"])["mean"], local[1].set_index(["method", "metric"])["mean"]
    for key in want.index:
        rel = {"fid": 1e-9, "lpips": 1e-6}.get(key[1], 0)
        assert got[key] == pytest.approx(want[key], rel=rel, nan_ok=True), key


@pytest.fixture(scope="module")
def local_run(data, env, tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = tmp_path_factory.mktemp("local") / "run"
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        assert main(_argv(data, out)) == 0
        return _check_against_files(out), pd.read_csv(out / "summary.csv")


def test_local_engine_scores_what_the_files_hold(local_run) -> None:
    local_run = local_run[0]
    assert (local_run["status"] == "ok").all()
    assert local_run["lmd"].notna().sum() >= 8  # dlib found most faces (a miss is NaN with its reason)


def test_killed_then_resumed_run_gives_the_same_numbers(data, weights_env, local_run, tmp_path: Path) -> None:
    out = tmp_path / "run"
    journal = out / "restored" / "bicubic" / ".status.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "celebref", *_argv(data, out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 600
        while time.time() < deadline and proc.poll() is None:
            if journal.is_file() and len(journal.read_text().splitlines()) >= 1:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
    finally:
        proc.wait(60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    done = len(journal.read_text().splitlines())
    assert 1 <= done < 4
    assert main(_argv(data, out)) == 0  # the resume (lock taken over from the killed run)
    _same_as_local(out, local_run)


def test_ray_engine_gives_the_same_numbers(data, weights_env, local_run, ray_engine, tmp_path: Path) -> None:
    """On the session's Ray (``ray_engine``: 2 actors), batches of 2."""
    from celebref.app.evaluate import EvalConfig, evaluate

    out = tmp_path / "run"
    test, ext = data
    ts = load_test_set(test, None, None)
    cfg = EvalConfig(out=out, methods=[f"lq,bicubic,external:ext={ext}"], metrics=METRICS.split(","), device="cpu",
                     batch_size=2, engine=ray_engine, allow_unverified_weights=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluate(ts.records, ts.info, cfg)
    _same_as_local(out, local_run)
