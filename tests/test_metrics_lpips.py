"""LPIPS v0.1 (alex, vgg) against the official lpips package: synthetic ImageNet backbone (salt from the
fixture metadata), the real v0.1 linear layers, value and per-layer distances."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from evaluation.lpips import LPIPS, LPIPSVGG, LPIPSNet, load_linear_weights
from evaluation.registry import create_metric

from _metrics_golden import image_sha, load_json, load_synth, metrics_dir, read_checked, tolerance, within

CLASSES = {"alex": LPIPS, "vgg": LPIPSVGG}


@pytest.fixture(scope="module")
def lpips_golden(golden_dir):
    mdir = metrics_dir(golden_dir)
    return mdir, load_json(mdir / "lpips" / "lpips.json")


@pytest.fixture(scope="module")
def nets(lpips_golden, synth_weights):
    mdir, data = lpips_golden
    out = {}
    for net, nd in data["nets"].items():
        sd = load_synth(synth_weights, mdir / nd["spec"], data["salt"], nd["synth_digest"])
        model = LPIPSNet(net)
        model.backbone.load_torchvision_state_dict(sd)
        model.load_linear(load_linear_weights(mdir / nd["lin_weights"]["file"]))
        out[net] = (model, sd)
    return out


def _check(mdir, data, net, model, rows):
    atol, rtol = tolerance(mdir, "lpips")
    sha = image_sha(mdir)
    pred = torch.stack([read_checked(mdir, r["dist"], sha[r["dist"]]) for r in rows])
    target = torch.stack([read_checked(mdir, r["gt"], sha[r["gt"]]) for r in rows])
    metric = CLASSES[net]().set_model(model)
    layers = metric.per_layer(pred, target).numpy()
    value = metric.compute(pred, target)[metric.columns[0]].numpy()
    golden_layers = np.array([r["per_layer"] for r in rows])
    golden = np.array([r["lpips"] for r in rows])
    assert within(layers, golden_layers, atol, rtol).all(), f"{net} per-layer rel diff {np.max(np.abs(layers - golden_layers) / golden_layers):.3g}"
    assert within(value, golden, atol, rtol).all(), f"{net} rel diff {np.max(np.abs(value - golden) / golden):.3g}"
    return pred, target, value


@pytest.mark.golden
def test_lpips_alex_matches_official(lpips_golden, nets):
    mdir, data = lpips_golden
    pred, target, value = _check(mdir, data, "alex", nets["alex"][0], data["nets"]["alex"]["rows"])
    # symmetric in its arguments; a batch equals its images one by one (internal chunking included)
    m = LPIPS(max_batch=3).set_model(nets["alex"][0])
    assert np.allclose(m.compute(target[:2], pred[:2])["lpips"].numpy(), value[:2], rtol=1e-6, atol=0)
    assert np.allclose(m.compute(pred, target)["lpips"].numpy(), value, rtol=1e-6, atol=0)


@pytest.mark.golden
def test_lpips_vgg_matches_official_first_pair(lpips_golden, nets):
    mdir, data = lpips_golden
    _check(mdir, data, "vgg", nets["vgg"][0], data["nets"]["vgg"]["rows"][:1])


@pytest.mark.golden
def test_lpips_loads_torchvision_checkpoint_from_weight_store(lpips_golden, nets, tmp_path, monkeypatch):
    """The production path: a torchvision-format backbone checkpoint (with classifier keys, which are
    ignored) and the official linear-layer .pth, found through the weight store."""
    from celebref.weights import env_var

    mdir, data = lpips_golden
    model, sd = nets["alex"]
    ckpt = dict(sd)
    ckpt["classifier.1.weight"] = torch.zeros(4096, 9216)
    torch.save(ckpt, tmp_path / "alexnet.pth")
    lin = {k: v.clone() for k, v in load_linear_weights(mdir / data["nets"]["alex"]["lin_weights"]["file"]).items()}
    torch.save(lin, tmp_path / "alex.pth")
    monkeypatch.setenv(env_var("alexnet"), str(tmp_path / "alexnet.pth"))
    monkeypatch.setenv(env_var("lpips-alex-v0.1"), str(tmp_path / "alex.pth"))
    m = create_metric("lpips")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the synthetic files do not match the declared sha256
        m.load()
    row = data["nets"]["alex"]["rows"][5]
    pred = read_checked(mdir, row["dist"])[None]
    target = read_checked(mdir, row["gt"])[None]
    got = m.compute(pred, target)["lpips"].numpy()
    assert within(got, [row["lpips"]], *tolerance(mdir, "lpips")).all()


def test_backbone_rejects_wrong_checkpoint():
    from celebref.errors import WeightError

    model = LPIPSNet("alex")
    with pytest.raises(WeightError, match="missing"):
        model.backbone.load_torchvision_state_dict({"features.0.weight": torch.zeros(64, 3, 11, 11)})
    with pytest.raises(WeightError, match="missing lin0"):
        model.load_linear({})
