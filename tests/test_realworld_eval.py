"""A real-world test set without ground truth, scored the NTIRE 2025 way (issue 20, acceptance): ``celebref evaluate
--lq DIR --methods lq,bicubic --profile ntire2025 --skip-unavailable`` runs and exits 0 when the only metrics skipped
are the optional pyiqa extras; NIQE, identity to the input (AdaFace) and FID against stored FFHQ-format statistics
are computed (synthetic weights through the weight store); the report shows the real-world section."""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from celebref import weights
from celebref.app.cli import main
from celebref.imageio import read_image, write_image


@pytest.fixture
def real_world_weights(golden_dir, synth_weights, tmp_path, monkeypatch):
    """Synthetic Inception and AdaFace checkpoints, BasicSR-format FFHQ statistics, BasicSR's NIQE parameters."""
    from pathlib import Path

    from _metrics_golden import load_json, load_synth, metrics_dir
    from test_fid_reference import _basicsr_save

    mdir = metrics_dir(golden_dir)
    f = load_json(mdir / "fid" / "fid.json")["features"]
    torch.save(load_synth(synth_weights, mdir / f["spec"], f["salt"], f["synth_digest"]), tmp_path / "inception.pth")
    monkeypatch.setenv(weights.env_var("fid-inception"), str(tmp_path / "inception.pth"))
    monkeypatch.setenv(weights.env_var("niqe-params"), str(mdir / "niqe" / "niqe_pris_params.npz"))
    golden = Path(__file__).parent / "golden" / "adaface"
    meta = json.loads((golden / "meta.json").read_text())
    spec = json.loads((golden / meta["weights"]["spec"]).read_text())["spec"]
    sd = synth_weights.synth_state_dict([(k, tuple(s), d) for k, s, d in spec], meta["salt"])
    torch.save({"state_dict": {f"model.{k}": v for k, v in sd.items()}, "hyper_parameters": argparse.Namespace()},
               tmp_path / "adaface.ckpt")
    monkeypatch.setenv(weights.env_var("adaface-ir50-ms1mv2"), str(tmp_path / "adaface.ckpt"))
    rng = np.random.default_rng(3)
    stats = tmp_path / "inception_FFHQ_512-f7b384ab.pth"
    _basicsr_save(stats, rng.normal(size=(16, 2048)).astype(np.float32))  # any statistics in the published format
    monkeypatch.setenv(weights.env_var("fid-stats-ffhq-512-basicsr"), str(stats))


def test_ntire2025_profile_on_real_lq_without_ground_truth(mini_dir, tmp_path, real_world_weights):
    lq = tmp_path / "Wider-Test"  # the challenge's set name, so its identity threshold applies
    for p in sorted((mini_dir / "lq").glob("*.png")):
        write_image(lq / p.name, read_image(p))
    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # synthetic weights differ from the published sha256; FID at small N
        rc = main(["evaluate", "--lq", str(lq), "--methods", "lq,bicubic", "--profile", "ntire2025", "--skip-unavailable",
                   "--allow-unverified-weights", "--device", "cpu", "--out", str(run)])
    assert rc == 0
    per = pd.read_csv(run / "per_image.csv", keep_default_na=False)
    n = len(list(lq.glob("*.png")))
    assert len(per) == 2 * n and (per["gt_path"] == "").all()
    for col in ("niqe", "identity_input_cos"):
        assert pd.to_numeric(per[col]).notna().all(), col
    # lq's output is its input, and so is bicubic's without a native LQ: identity to the input is 1
    assert np.allclose(pd.to_numeric(per["identity_input_cos"]), 1.0, atol=1e-6)
    rj = json.loads((run / "run.json").read_text())
    assert sorted(s["name"] for s in rj["skipped"]) == ["clip-iqa", "maniqa", "musiq"]  # pyiqa is not installed
    assert all(s["optional"] for s in rj["skipped"])
    fid = [d for d in rj["dataset_metrics"] if d["metric"] == "fid"]
    assert len(fid) == 2 and all(np.isfinite(d["value"]) for d in fid)
    # the challenge's total needs CLIP-IQA, MANIQA and MUSIQ: without pyiqa it is not computed (said in one line)
    assert not (run / "ntire2025_score.json").exists()
    assert main(["report", str(run)]) == 0
    html = (run / "report" / "index.html").read_text(encoding="utf-8")
    assert 'id="real-world"' in html and 'id="real-world-fid"' in html
