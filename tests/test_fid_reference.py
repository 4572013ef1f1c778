"""FID against published reference statistics (issue 20.2): BasicSR's ``inception_FFHQ_512`` .pth format (used by
GFPGAN/VQFR/NTIRE 2025) and clean-fid/pyiqa's ``ffhq_clean_trainval70k_512.npz`` format, read safely, named through
the weight store.

The statistics files here are written with the exact save calls of the reference code (read, not run: BasicSR's
``scripts/metrics/calculate_fid_stats_from_datasets.py`` at 8d56e3a0 needs an FFHQ lmdb and the basicsr package):
``mean = np.mean(features, 0); cov = np.cov(features, rowvar=False); torch.save(dict(name=..., size=..., mean=mean,
cov=cov), path, _use_new_zipfile_serialization=False)`` with float32 features (as ``extract_inception_features``
returns them), and clean-fid's ``np.savez_compressed(path, mu=mu, sigma=sigma)``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from celebref import weights
from celebref.errors import ConfigError, WeightError
from evaluation.fid import (FID, REFERENCES, frechet_distance_from_features, load_statistics, reference_name,
                            statistics)

D = 64


def _features(seed: int, n: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, D)) * rng.uniform(0.5, 2.0, size=D) + shift).astype(np.float32)


def _basicsr_save(path, feats: np.ndarray, numpy1_names: bool = False) -> None:
    mean = np.mean(feats, 0)
    cov = np.cov(feats, rowvar=False)
    torch.save(dict(name="FFHQ", size=512, mean=mean, cov=cov), path, _use_new_zipfile_serialization=False)
    if numpy1_names:  # the published file was pickled under numpy 1, whose module is numpy.core.multiarray
        data = path.read_bytes()
        assert b"numpy._core.multiarray" in data
        path.write_bytes(data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))


def _fid_quiet(pred, ref):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the small-N warning
        return FID().score(pred, ref)


@pytest.mark.parametrize("numpy1", [False, True])
def test_basicsr_pth_statistics_give_the_fid_of_the_features(tmp_path, numpy1):
    ref, pred = _features(0, 300, 0.0), _features(1, 120, 0.3)
    path = tmp_path / "inception_FFHQ_512.pth"
    _basicsr_save(path, ref, numpy1)
    with pytest.warns(UserWarning, match="not recorded"):
        stats = load_statistics(path)
    # the arrays are the file's, bit for bit (float32 mean, float64 cov as BasicSR saved them)
    assert np.array_equal(stats.mu, np.mean(ref, 0).astype(np.float64))
    assert np.array_equal(stats.sigma, np.cov(ref, rowvar=False))
    assert stats.meta["name"] == "FFHQ" and stats.meta["size"] == 512 and stats.meta["format"] == "basicsr-pth"
    from_features = frechet_distance_from_features(pred.astype(np.float64), ref.astype(np.float64))
    from_file = _fid_quiet(pred.astype(np.float64), stats)
    # only difference: BasicSR's mean is rounded to float32 (np.mean of float32 features), ~1e-7 relative per entry
    assert from_file == pytest.approx(from_features, rel=1e-6)
    assert from_file > 1.0  # a real distance, not a degenerate zero


def test_clean_fid_npz_statistics_give_the_fid_of_the_features(tmp_path):
    ref, pred = _features(2, 300, 0.0).astype(np.float64), _features(3, 120, -0.2).astype(np.float64)
    mu, sigma = statistics(ref)
    np.savez_compressed(tmp_path / "ffhq_clean_trainval70k_512.npz", mu=mu, sigma=sigma)
    with pytest.warns(UserWarning, match="not recorded"):
        stats = load_statistics(tmp_path / "ffhq_clean_trainval70k_512.npz")
    assert _fid_quiet(pred, stats) == pytest.approx(frechet_distance_from_features(pred, ref), rel=1e-9)


def test_pth_with_code_is_refused_by_weights_only(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    torch.save({"mean": Evil(), "cov": np.eye(2)}, tmp_path / "evil.pth", _use_new_zipfile_serialization=False)
    with pytest.raises(ConfigError, match="safely"):
        load_statistics(tmp_path / "evil.pth")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="needs 'mean' and 'cov'"):
        load_statistics(tmp_path / "other.pth")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    np.savez(tmp_path / "obj.npz", mu=np.array([{"a": 1}], dtype=object), sigma=np.eye(1))
    with pytest.raises(ConfigError, match="cannot read"):
        load_statistics(tmp_path / "obj.npz")


def test_named_references_resolve_through_the_weight_store(tmp_path, monkeypatch):
    assert reference_name("ffhq-512") == "ffhq-512"
    assert reference_name("inception_FFHQ_512.pth") == "ffhq-512"
    assert reference_name("FFHQ_clean_trainval70k_512") == "ffhq-512-clean"
    assert reference_name("imagenet") is None
    for info in REFERENCES.values():
        w = weights.get(info["weight"])
        assert w.noncommercial and "FFHQ" in w.licence
    assert weights.get("fid-stats-ffhq-512-basicsr").sha256_prefix == "f7b384ab"
    # missing: the weight store's message says which file to put where
    with pytest.raises(WeightError) as e:
        load_statistics("ffhq-512")
    assert "inception_FFHQ_512-f7b384ab.pth" in str(e.value) and "drive.google.com" in str(e.value)
    with pytest.raises(ConfigError, match="neither a statistics file nor a named reference"):
        load_statistics("imagenet")
    # present (pointed at a local copy): loaded with its convention recorded and N from the published table
    ref = _features(4, 200)
    _basicsr_save(tmp_path / "copy.pth", ref)
    monkeypatch.setenv(weights.env_var("fid-stats-ffhq-512-basicsr"), str(tmp_path / "copy.pth"))
    with pytest.warns(weights.UnverifiedWeightWarning):  # its sha256 does not start with f7b384ab
        stats = load_statistics("ffhq-512")
    assert stats.n == 50000 and stats.meta["reference"] == "ffhq-512" and stats.meta["compatible"] is True
    assert stats.meta["licence"].startswith("NON-COMMERCIAL") and stats.meta["file"] == "copy.pth"
    assert np.array_equal(stats.sigma, np.cov(ref, rowvar=False))


def test_clean_reference_warns_about_its_convention(tmp_path, monkeypatch):
    mu, sigma = statistics(_features(5, 100).astype(np.float64))
    np.savez_compressed(tmp_path / "ffhq_clean_trainval70k_512.npz", mu=mu, sigma=sigma)
    monkeypatch.setenv(weights.env_var("fid-stats-ffhq-512-clean"), str(tmp_path / "ffhq_clean_trainval70k_512.npz"))
    with pytest.warns(UserWarning, match="another feature convention"):
        stats = load_statistics("ffhq-512-clean")
    assert stats.n == 70000 and stats.meta["compatible"] is False


def test_sha256_prefix_is_checked(tmp_path, monkeypatch):
    p = tmp_path / "musiq_koniq_ckpt-e95806b9.pth"
    p.write_bytes(b"not the published file")
    dest = weights.default_path("pyiqa-musiq-koniq")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(p.read_bytes())
    st = weights.status("pyiqa-musiq-koniq")
    assert st.state == weights.BAD_HASH and "e95806b9" in st.detail
    dest.unlink()


def test_evaluate_fid_against_a_named_reference(golden_dir, synth_weights, tmp_path, monkeypatch):
    """`evaluate --fid-reference ffhq-512` end to end: the named reference resolves through the weight store to a
    BasicSR-format file (here: statistics of the ground truth's features, saved with BasicSR's call), and the run's
    FID equals the FID against those statistics computed directly, and nearly the FID against the features."""
    import cv2
    import pandas as pd

    from _metrics_golden import load_json, load_synth, metrics_dir
    from celebref.app.cli import main
    from celebref.imageio import read_image, write_image
    from evaluation.registry import create_metric

    mdir = metrics_dir(golden_dir)
    f = load_json(mdir / "fid" / "fid.json")["features"]
    torch.save(load_synth(synth_weights, mdir / f["spec"], f["salt"], f["synth_digest"]), tmp_path / "inception.pth")
    monkeypatch.setenv(weights.env_var("fid-inception"), str(tmp_path / "inception.pth"))
    rng = np.random.default_rng(7)
    for i in range(4):
        gt = cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), (0, 0), 2)
        write_image(tmp_path / "gt" / f"{i}.png", gt)
        write_image(tmp_path / "lq" / f"{i}.png", cv2.GaussianBlur(gt, (0, 0), 2.0))
    load = lambda d: torch.from_numpy(np.stack([read_image(tmp_path / d / f"{i}.png") for i in range(4)])).permute(0, 3, 1, 2)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # synthetic weights != declared sha256; N < 2048
        m = create_metric("fid", device="cpu")  # its feature cache serves the run below too
        m.load()
        gt_feats, lq_feats = m.features(load("gt")), m.features(load("lq"))
        _basicsr_save(tmp_path / "inception_FFHQ_512-f7b384ab.pth", gt_feats.astype(np.float32))
        monkeypatch.setenv(weights.env_var("fid-stats-ffhq-512-basicsr"), str(tmp_path / "inception_FFHQ_512-f7b384ab.pth"))
        run = tmp_path / "run"
        assert main(["evaluate", "--lq", str(tmp_path / "lq"), "--gt", str(tmp_path / "gt"), "--metrics", "fid",
                     "--fid-reference", "ffhq-512", "--device", "cpu", "--out", str(run)]) == 0
        expected = m.score(lq_feats, load_statistics("ffhq-512"))
        from_features = m.score(lq_feats, gt_feats)
    got = pd.read_csv(run / "summary.csv").set_index(["method", "metric"]).loc[("lq", "fid"), "mean"]
    # synthetic weights make features nearly image-independent, so the FID is a tiny difference of large terms:
    # compare on the scale of those terms (float64 round-off of tr S1 + tr S2 + |mu1|^2 + |mu2|^2)
    scale = sum(float(np.trace(np.atleast_2d(np.cov(x, rowvar=False))) + x.mean(0) @ x.mean(0)) for x in (gt_feats, lq_feats))
    print(f"FID vs file {expected!r}, vs features {from_features!r}, run {got!r}, scale {scale!r}")
    assert expected > 0 and abs(got - expected) <= 1e-12 * scale
    assert abs(expected - from_features) <= 1e-9 * scale  # the file's mean is float32 (BasicSR's np.mean)
