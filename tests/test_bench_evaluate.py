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


def test_synthetic_state_dict_of_shape_only_spectral_norm_entries():
    """Issue 23.6: shape-only (meta) spectral-norm entries -- DFDNet's to_rgb head -- become expanded zeros and are
    never written into (torch 2.13 refused the in-place rank-1 update on them: 'more than one element of the
    written-to tensor refers to a single memory location')."""
    bench = _bench()
    from baselines.dmdnet.layers import SNConv2d

    with torch.device("meta"):
        layout = SNConv2d(8, 4).state_dict()
    sd = bench.synthetic_state_dict(layout, seed=1)
    assert list(sd) == list(layout) and all(tuple(sd[k].shape) == tuple(layout[k].shape) for k in sd)
    assert all(not v.is_meta and float(v.abs().sum()) == 0 for v in sd.values())


def test_dfdnet_generator_weights_are_written_and_load(tmp_path):
    """The default method list's DFDNet checkpoint (the one that crashed) is written and loads into the network."""
    bench = _bench()
    from baselines.dfdnet.network import DFDNetGenerator

    path = bench.write_weights(["dfdnet-generator"], tmp_path, dfdnet_k=8)["dfdnet-generator"]
    sd = torch.load(path, map_location="cpu", weights_only=True)
    DFDNetGenerator().load_state_dict(sd)


def test_bench_evaluate_smoke_cpu(tmp_path):
    """The benchmark script itself, as CI runs it (a subprocess, its own argument parsing and exit code)."""
    import os
    import subprocess

    out = tmp_path / "bench.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_evaluate.py"), "--device", "cpu", "--n", "2",
                           "--refs", "1", "--methods", "dmdnet", "--metrics", "psnr,ssim", "--precision", "fp32",
                           "--work", str(tmp_path / "work"), "--json", str(out)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
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
