"""NIQE against BasicSR's calculate_niqe (float32 MSCN stage reproduced); parameters from the fixture and,
in the production path, from the weight store as ``niqe-params``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluation.niqe import NIQE, imresize_matlab
from evaluation.registry import create_metric

from _metrics_golden import image_sha, load_json, metrics_dir, read_checked, tolerance, within


@pytest.fixture(scope="module")
def niqe_golden(golden_dir):
    mdir = metrics_dir(golden_dir)
    return mdir, load_json(mdir / "niqe" / "niqe.json")


@pytest.mark.golden
def test_niqe_matches_basicsr(niqe_golden, monkeypatch):
    from celebref.fsutil import sha256_file
    from celebref.weights import env_var

    mdir, data = niqe_golden
    params = mdir / "niqe" / "niqe_pris_params.npz"
    assert sha256_file(params) == data["npz_sha256"]
    monkeypatch.setenv(env_var("niqe-params"), str(params))  # the weight store's file is this file
    atol, rtol = tolerance(mdir, "niqe")
    sha = image_sha(mdir)
    images = torch.stack([read_checked(mdir, r["image"], sha[r["image"]]) for r in data["rows"]])
    m = create_metric("niqe").load()
    got = m.compute(images)["niqe"].numpy()
    golden = np.array([r["niqe"] for r in data["rows"]])
    assert within(got, golden, atol, rtol).all(), f"max abs diff {np.abs(got - golden).max():.3g}"
    # explicit parameter path gives the same numbers, and a single image equals its batch entry
    same = NIQE(params=str(params)).compute(images[1:2])["niqe"].numpy()
    assert same[0] == got[1]


def test_matlab_resize_known_answers():
    # a constant image stays constant; a linear ramp is resampled at the MATLAB pixel centres
    img = torch.full((96, 96), 7.0)
    assert torch.allclose(imresize_matlab(img, 0.5), torch.full((48, 48), 7.0), atol=1e-5)
    ramp = torch.arange(96, dtype=torch.float32).repeat(96, 1)
    out = imresize_matlab(ramp, 0.5)
    # interior output column j samples input position 2j + 0.5 (0-based) of a linear function
    assert torch.allclose(out[10, 5:40], torch.arange(5, 40, dtype=torch.float32) * 2 + 0.5, atol=1e-4)


def test_too_small_image_is_a_recorded_failure(tmp_path, niqe_golden):
    mdir, _ = niqe_golden
    m = NIQE(params=str(mdir / "niqe" / "niqe_pris_params.npz"))
    v = m.compute(torch.zeros((1, 3, 64, 64), dtype=torch.uint8))["niqe"]
    assert torch.isnan(v).all() and "96x96" in m.last_failures[0]
