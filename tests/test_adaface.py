"""AdaFace IR-50 (issue 20.3) against the official mk-minchul/AdaFace code run with synthetic weights
(``tests/golden/adaface``: arrays, recipe and tolerances in ``meta.json``; inputs rebuilt from celebref-mini)."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from celebref.errors import WeightError
from evaluation.adaface import AdaFaceEmbedder, AdaFaceIR50, load_adaface, ntire_align, ntire_similarity

GOLDEN = Path(__file__).parent / "golden" / "adaface"


@pytest.fixture(scope="module")
def meta():
    return json.loads((GOLDEN / "meta.json").read_text())


@pytest.fixture(scope="module")
def arrays(meta):
    return np.load(GOLDEN / f"case_{meta['case']}.npz")


@pytest.fixture(scope="module")
def net(meta, synth_weights):
    spec = json.loads((GOLDEN / meta["weights"]["spec"]).read_text())["spec"]
    model = AdaFaceIR50()
    assert list(model.state_dict()) == [k for k, _, _ in spec]  # official names and order
    sd = synth_weights.synth_state_dict([(k, tuple(s), d) for k, s, d in spec], meta["salt"])
    model.load_state_dict(sd, strict=True)
    return model.eval()


def _points(case, img, recipe):
    if case["points"] == "landmarks":
        lm = np.loadtxt(case["_mini"] / case["landmarks"])
        return np.stack([lm[idx].mean(0) for idx in recipe["landmark_groups"].values()])
    return np.asarray(recipe["prior_fractions"]) * np.array([img.shape[1], img.shape[0]])


@pytest.fixture(scope="module")
def inputs(meta, mini_dir):
    recipe = meta["recipe"]
    out = []
    for case in recipe["cases"]:
        img = np.array(Image.open(mini_dir / case["image"]).convert("RGB"))
        out.append((img, _points({**case, "_mini": mini_dir}, img, recipe)))
    return out


def test_points_and_alignment_match_official(meta, arrays, inputs):
    tol = meta["tolerances"]
    from evaluation.adaface import NTIRE_REFERENCE_112

    assert np.allclose(NTIRE_REFERENCE_112, meta["recipe"]["reference_112"], atol=1e-7)
    for i, (img, p5) in enumerate(inputs):
        assert np.allclose(p5, arrays["points5"][i], atol=1e-9)
        assert np.abs(ntire_similarity(p5) - arrays["tfm"][i]).max() <= tol["tfm_atol"]
        crop = ntire_align(img, p5)
        assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
        if tol["crop_exact"]:
            assert hashlib.sha256(crop.tobytes()).hexdigest() == str(arrays["crop_sha256"][i]), f"case {i}"


def test_reflection_quirk_is_reproduced():
    """The reference scores both fits against the mirrored template; a mirrored face gets the reflective fit."""
    from evaluation.adaface import NTIRE_REFERENCE_112

    t = ntire_similarity(NTIRE_REFERENCE_112)
    assert np.allclose(t, [[1, 0, 0], [0, 1, 0]], atol=1e-5)  # identity points map to themselves
    mirrored = NTIRE_REFERENCE_112 * [-1, 1] + [112, 0]
    assert np.linalg.det(ntire_similarity(mirrored)[:, :2]) < 0


def test_features_match_official(meta, arrays, inputs, net):
    tol = meta["tolerances"]
    crops = [ntire_align(img, p5) for img, p5 in inputs]
    feats = AdaFaceEmbedder(net).embed_crops(crops)
    for ref in ("feature_f32", "feature_f64"):
        assert np.abs(feats - arrays[ref]).max() <= tol["feature_atol"], ref
    cos = feats.astype(np.float64) @ feats.T.astype(np.float64)
    assert np.abs(cos - arrays["cos_f64"]).max() <= tol["cos_atol"]
    with torch.no_grad():
        from evaluation.adaface import to_input

        _, norms = net(to_input(crops))
    assert np.allclose(norms.numpy()[:, 0], arrays["norm_f64"], rtol=tol["norm_rtol"], atol=0)
    # the cases differ from each other by far more than the tolerance
    assert np.abs(arrays["cos_f64"][0, 1:]).max() < 1 - 100 * tol["cos_atol"]


class _LightningLikeState:
    """A class a real Lightning checkpoint would name outside its tensors (e.g. a callback's state)."""

    built = 0

    def __init__(self, k):
        self.k = k

    def __setstate__(self, state):
        type(self).built += 1
        self.__dict__.update(state)


def test_checkpoint_layout_loads_unchanged(net, tmp_path, meta, arrays, inputs):
    """A Lightning-style file (``state_dict`` with ``model.``/``head.`` keys and Namespace hyper-parameters)."""
    sd = {f"model.{k}": v for k, v in net.state_dict().items()}
    sd["head.kernel"] = torch.zeros(512, 3)
    path = tmp_path / "adaface_ir50_ms1mv2.ckpt"
    torch.save({"epoch": 1, "state_dict": sd, "hyper_parameters": argparse.Namespace(arch="ir_50"),
                "callbacks": {"ModelCheckpoint": _LightningLikeState(3)}}, path)
    _LightningLikeState.built = 0
    loaded = load_adaface(path)
    assert _LightningLikeState.built == 0  # the file's own classes are never imported or run
    img, p5 = inputs[0]
    f = AdaFaceEmbedder(loaded).embed_crops([ntire_align(img, p5)])
    assert np.abs(f[0] - arrays["feature_f64"][0]).max() <= meta["tolerances"]["feature_atol"]


def test_bad_checkpoints_give_clear_errors(tmp_path):
    """A file that is no checkpoint gets the weight store's standard message (size and sha256, "truncated
    download?"), prefixed by what was being read; files of the wrong layout get one line each."""
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightError, match=r"cannot read the AdaFace checkpoint: .*not a valid checkpoint \(truncated download\?\)") as e:
        load_adaface(bad)
    assert str(bad) in str(e.value) and "16 bytes" in str(e.value)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(1)}}, other)
    with pytest.raises(WeightError, match="no 'model.' keys"):
        load_adaface(other)
    wrong = tmp_path / "wrong.ckpt"
    torch.save({"state_dict": {"model.input_layer.0.weight": torch.zeros(1)}}, wrong)
    with pytest.raises(WeightError, match="does not fit IR-50"):
        load_adaface(wrong)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_features_on_cuda_match_official(meta, arrays, inputs, net):  # pragma: no cover - GPU only
    crops = [ntire_align(img, p5) for img, p5 in inputs]
    feats = AdaFaceEmbedder(net, "cuda").embed_crops(crops)
    assert np.abs(feats - arrays["feature_f64"]).max() <= meta["tolerances"]["feature_atol"]
