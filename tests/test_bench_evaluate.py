"""Smoke run of benchmarks/bench_evaluate.py on CPU with N=2: synthetic DMDNet weights written as a real file and
loaded through the weight store (unverified, recorded), a synthetic CelebRef-HQ-shaped test set made by
``celebref degrade``, ``celebref evaluate`` end to end with the stage timings reported."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_evaluate", ROOT / "benchmarks" / "bench_evaluate.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_synthetic_state_dict_is_deterministic_and_spectral_norm_consistent():
    bench = _bench()
    from baselines.dmdnet.layers import SNConv2d

    layout = SNConv2d(8, 4).state_dict()
    a, b = bench.synthetic_state_dict(layout, seed=1), bench.synthetic_state_dict(layout, seed=1)
    assert list(a) == list(layout) and all(torch.equal(a[k], b[k]) for k in a)
    w = a["weight_orig"].reshape(4, -1)
    sigma = torch.dot(a["weight_u"], w @ a["weight_v"])
    assert float(sigma) > 0 and abs(float(a["weight_v"].norm()) - 1) < 1e-6


def test_bench_evaluate_smoke_cpu(tmp_path):
    bench = _bench()
    out = tmp_path / "bench.json"
    rc = bench.main(["--device", "cpu", "--n", "2", "--refs", "1", "--methods", "dmdnet", "--metrics", "psnr,ssim",
                     "--precision", "fp32", "--work", str(tmp_path / "work"), "--json", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["setup"]["weights"] == ["dmdnet"] and res["setup"]["hq_images"] == 2
    (run,) = res["runs"]
    assert run["exit_code"] == 0 and run["recorded_precision"] == "fp32"
    assert set(run["stages_s"]) == {"decode", "restore", "metrics", "write", "other"}
    assert run["stages_s"]["restore"] > 0 and run["stages_s"]["decode"] > 0 and run["stages_s"]["write"] > 0
    assert run["methods"]["dmdnet"]["images"] == 2 and run["methods"]["dmdnet"]["images_per_s"] > 0
    # the synthetic checkpoint went through the weight store as a real file and was recorded as unverified
    run_dir = tmp_path / "work" / "run-fp32"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["allow_unverified_weights"] is True and record["precision"] == "fp32"
    digest = hashlib.sha256((tmp_path / "work" / "weights" / "dmdnet.pth").read_bytes()).hexdigest()
    assert [m["weights"] for m in record["methods"] if m.get("weights")] == [{"dmdnet": digest}]
    restored = sorted((run_dir).rglob("*.png"))
    assert len([p for p in restored if "dmdnet" in str(p)]) == 2
    assert np.isfinite(run["wall_s"])
