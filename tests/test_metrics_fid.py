"""FID: pytorch-fid Inception features (synthetic checkpoint, salt from the metadata) and the Frechet
distance on low-rank / singular covariances, against pytorch-fid + scipy goldens."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from evaluation.fid import (FID, FIDStatistics, frechet_distance, frechet_distance_from_features, load_statistics,
                            save_statistics, statistics)
from evaluation.inception import FIDInception

from _metrics_golden import image_sha, load_json, load_synth, metrics_dir, read_checked, tolerance, within



@pytest.fixture(scope="module")
def fid_golden(golden_dir):
    mdir = metrics_dir(golden_dir)
    return mdir, load_json(mdir / "fid" / "fid.json")


@pytest.fixture(scope="module")
def inception(fid_golden, synth_weights):
    mdir, data = fid_golden
    f = data["features"]
    sd = load_synth(synth_weights, mdir / f["spec"], f["salt"], f["synth_digest"])
    model = FIDInception()
    model.load_checkpoint_state_dict(sd)
    return model, sd


@pytest.fixture(scope="module")
def images(fid_golden):
    mdir, data = fid_golden
    sha = image_sha(mdir)
    return torch.stack([read_checked(mdir, p, sha[p]) for p in data["features"]["images"]])


@pytest.mark.golden
def test_features_match_pytorch_fid(fid_golden, inception, images, tmp_path):
    mdir, data = fid_golden
    atol, rtol = tolerance(mdir, "fid_features")
    golden = np.load(mdir / data["features"]["features"]).astype(np.float64)
    m = FID(cache_dir=tmp_path, max_batch=4).set_model(inception[0], extractor_id="synthetic-test")
    feats = m.features(images)
    assert feats.shape == golden.shape and feats.dtype == np.float64
    assert within(feats, golden, atol, rtol).all(), f"max abs diff {np.abs(feats - golden).max():.3g}"
    # second call is served from the content-hash cache (one file per image) and is identical
    files = sorted(tmp_path.rglob("*.npy"))
    assert len(files) == len(images)
    calls = []
    original = m._forward
    m._forward = lambda x: calls.append(len(x)) or original(x)
    assert np.array_equal(m.features(images), feats)
    assert calls == []
    # a changed image is a cache miss, the others still hit
    changed = images.clone()
    changed[0, :, 0, 0] ^= 1
    m.features(changed)
    assert calls == [1]


@pytest.mark.golden
def test_intermediate_blocks_match_debug_stats(fid_golden, inception, images):
    mdir, data = fid_golden
    dbg = data["features"]["debug"][0]
    model = inception[0]
    x = model.preprocess(images[:1].float() / 255.0)
    assert abs(float(x.double().mean()) - dbg["model_input_after_resize_normalize"]["mean"]) < 1e-6
    with torch.no_grad():
        blocks = model.blocks(x)
    for k, b in enumerate(blocks):
        ref = dbg["blocks"][str(k)]
        assert list(b.shape[1:]) == ref["shape"]
        assert abs(float(b.double().mean()) - ref["mean"]) < 1e-6


@pytest.mark.golden
@pytest.mark.parametrize("case", ["lowrank", "singular"])
def test_frechet_distance_from_features(fid_golden, case):
    mdir, data = fid_golden
    atol, rtol = tolerance(mdir, "frechet_distance")
    c = next(c for c in data["frechet"]["cases"] if c["name"] == case)
    a = np.load(mdir / c["a"]).astype(np.float64)
    b = np.load(mdir / c["b"]).astype(np.float64)
    assert len(a) == c["n_a"] and len(b) == c["n_b"]
    assert within(frechet_distance_from_features(a, b), c["fd"], atol, rtol)
    mu, sigma = statistics(a)
    assert within(np.trace(sigma), c["components"]["trace_sigma1"], 0, 1e-12)


@pytest.mark.golden
def test_frechet_distance_covariance_form_singular(fid_golden):
    """The statistics-file path (no features): eigenvalue-based trace on exactly singular covariances."""
    mdir, data = fid_golden
    atol, rtol = tolerance(mdir, "frechet_distance")
    c = next(c for c in data["frechet"]["cases"] if c["name"] == "singular")
    a, b = (np.load(mdir / c[k]).astype(np.float64) for k in ("a", "b"))
    assert within(frechet_distance(*statistics(a), *statistics(b)), c["fd"], atol, rtol)


def test_frechet_forms_agree_and_known_answers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 8)) @ rng.normal(size=(8, 8))
    y = rng.normal(size=(40, 8)) + 0.5
    d1 = frechet_distance_from_features(x, y)
    d2 = frechet_distance(*statistics(x), *statistics(y))
    assert abs(d1 - d2) < 1e-9 * max(1.0, abs(d1))
    assert abs(frechet_distance_from_features(x, x)) < 1e-9
    # 1-D Gaussians: (m1-m2)^2 + (s1-s2)^2
    assert abs(frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]])) - (4 + 1)) < 1e-12


def test_statistics_file_roundtrip_and_score(tmp_path):
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(50, 16))
    pred = rng.normal(size=(20, 16)) + 0.1
    stats = FIDStatistics.from_features(ref, extractor="test", resize="none")
    save_statistics(tmp_path / "ref.npz", stats)
    loaded = load_statistics(tmp_path / "ref.npz")
    assert loaded.n == 50 and loaded.meta["extractor"] == "test"
    assert np.array_equal(loaded.sigma, stats.sigma)
    m = FID()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        v_stats = m.score(pred, tmp_path / "ref.npz")
    assert any("2048" in str(x.message) for x in w)
    assert m.last_score["n"] == 20 and m.last_score["n_reference"] == 50
    with pytest.warns(UserWarning, match="2048"):
        assert abs(v_stats - m.score(pred, ref)) < 1e-9
    # pytorch-fid's own statistics files (mu, sigma only) load too, with a warning about N
    np.savez(tmp_path / "pf.npz", mu=stats.mu, sigma=stats.sigma)
    with pytest.warns(UserWarning, match="not recorded"):
        assert load_statistics(tmp_path / "pf.npz").n == -1


@pytest.mark.golden
def test_fid_loads_checkpoint_from_weight_store(inception, images, fid_golden, tmp_path, monkeypatch):
    from celebref.weights import env_var

    mdir, data = fid_golden
    state = {k: v for k, v in inception[1].items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "inception.pth")
    monkeypatch.setenv(env_var("fid-inception"), str(tmp_path / "inception.pth"))
    m = FID(cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # synthetic file: sha256 differs from the declared one
        m.load()
    assert m.describe()["extractor"].startswith("pt_inception-2015-12-05:")
    golden = np.load(mdir / data["features"]["features"]).astype(np.float64)
    assert within(m.features(images[:1]), golden[:1], *tolerance(mdir, "fid_features")).all()
