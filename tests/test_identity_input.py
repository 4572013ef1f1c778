"""identity-input (issue 20.3): cosine between the restored face and its LQ input (AdaFace IR-50 as NTIRE 2025,
ArcFace, dlib), NTIRE's per-set thresholds and below-threshold count."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from celebref.errors import ConfigError, WeightError
from evaluation.identity import (NTIRE2025_ID_THRESHOLDS, NTIRE2025_SET_SIZES, identity_threshold,
                                 low_identity_counts)
from evaluation.registry import create_metric

GOLDEN = Path(__file__).parent / "golden" / "adaface"


def _t(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)


@pytest.fixture(scope="module")
def adaface_ckpt(tmp_path_factory, synth_weights):
    """The golden's synthetic AdaFace weights in the official checkpoint layout."""
    meta = json.loads((GOLDEN / "meta.json").read_text())
    spec = json.loads((GOLDEN / meta["weights"]["spec"]).read_text())["spec"]
    sd = synth_weights.synth_state_dict([(k, tuple(s), d) for k, s, d in spec], meta["salt"])
    path = tmp_path_factory.mktemp("adaface") / "adaface_ir50_ms1mv2.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in sd.items()}, "hyper_parameters": argparse.Namespace()},
               path)
    return path, meta


@pytest.fixture
def adaface_metric(adaface_ckpt, monkeypatch):
    monkeypatch.setenv("CELEBREF_WEIGHT_ADAFACE_IR50_MS1MV2", str(adaface_ckpt[0]))
    return create_metric("identity-input").load()


def test_contract_and_labels():
    m = create_metric("identity-input")
    assert m.needs_input and not m.needs_reference and m.columns == ("identity_input_cos",)
    assert m.column_labels() == {"identity_input_cos": "ID-LQ(AdaFace)"}
    assert create_metric("identity-input", backend="dlib").column_labels() == {"identity_input_cos": "ID-LQ(dlib)"}
    assert create_metric("id-sim", backend="arcface").column_labels() == {"identity_input_cos": "ID-LQ(ArcFace)"}
    d = m.describe()
    assert d["needs_input"] is True and d["weights"] == ["adaface-ir50-ms1mv2"]
    with pytest.raises(ConfigError, match="backend must be one of"):
        create_metric("identity-input", backend="vgg")
    assert "needs_input" not in create_metric("psnr").describe()  # other metrics' cache keys are unchanged


def test_missing_checkpoint_is_a_weight_error(monkeypatch, tmp_path):
    monkeypatch.setenv("CELEBREF_WEIGHT_ADAFACE_IR50_MS1MV2", str(tmp_path / "absent.ckpt"))
    with pytest.raises(WeightError, match="weight 'adaface-ir50-ms1mv2' is not available") as e:
        create_metric("identity-input").load()
    assert "NON-COMMERCIAL" in str(e.value)  # the licence is flagged where the user is told to fetch it


def test_adaface_equals_official_similarity(adaface_metric, adaface_ckpt, mini_dir):
    """The golden's LQ cases use the prior points the metric uses: its cosine between two LQ faces is the official
    code's ``lq_feature @ pred_feature.T`` for that pair."""
    meta = adaface_ckpt[1]
    g = np.load(GOLDEN / f"case_{meta['case']}.npz")
    cases = [(k, c) for k, c in enumerate(meta["recipe"]["cases"]) if c["points"] == "prior"]
    imgs = [np.array(Image.open(mini_dir / c["image"]).convert("RGB")) for _, c in cases]
    pred = torch.stack([_t(imgs[i]) for i in range(len(imgs))])
    lq = torch.stack([_t(imgs[(i + 1) % len(imgs)]) for i in range(len(imgs))])
    got = adaface_metric.compute(pred, lq)["identity_input_cos"].numpy()
    want = np.array([g["cos_f64"][cases[i][0], cases[(i + 1) % len(cases)][0]] for i in range(len(cases))])
    assert np.abs(got - want).max() <= meta["tolerances"]["cos_atol"]
    assert np.ptp(want) > 0.05  # the pairs really differ


def test_adaface_self_and_smaller_lq(adaface_metric, mini_dir):
    img = np.array(Image.open(mini_dir / "hq" / "00005" / "0.png").convert("RGB"))
    small = np.array(Image.fromarray(img).resize((256, 256), Image.BICUBIC))
    other = np.array(Image.open(mini_dir / "hq" / "00022" / "0.png").convert("RGB"))
    out = adaface_metric.compute(torch.stack([_t(img), _t(img)]), torch.stack([_t(img), _t(other)]))
    assert abs(float(out["identity_input_cos"][0]) - 1.0) < 1e-6
    assert float(out["identity_input_cos"][1]) < 0.99
    # an LQ input half the size: points scale with the image, the crops nearly agree
    half = adaface_metric.compute(_t(img)[None], _t(small)[None])["identity_input_cos"]
    assert float(half[0]) > float(out["identity_input_cos"][1])
    with pytest.raises(ConfigError, match="needs the LQ input as its second argument"):
        adaface_metric.compute(_t(img)[None])
    with pytest.raises(ConfigError, match="2 restored images but 1 LQ"):
        adaface_metric.compute(torch.stack([_t(img), _t(img)]), _t(img)[None])


def test_dlib_backend_same_identity_closer(mini_dir):
    from celebref import face

    status = face.backend_status()["dlib"]
    if status != "ok":
        pytest.skip(f"dlib backend unavailable: {status}")
    m = create_metric("identity-input", backend="dlib").load()
    a0, a1, b0 = (np.array(Image.open(mini_dir / "hq" / p).convert("RGB")) for p in
                  ("00005/0.png", "00005/1.png", "00086/0.png"))
    out = m.compute(torch.stack([_t(a0), _t(a0)]), torch.stack([_t(a1), _t(b0)]))["identity_input_cos"].numpy()
    assert np.isfinite(out).all() and out[0] > out[1]
    assert m.describe()["face"]["backend"] == "dlib"


def test_ntire_thresholds_and_low_count():
    """Known answer from eval.py's rule: a value strictly below its set's threshold counts; NaN never does."""
    assert NTIRE2025_ID_THRESHOLDS["CelebA"] == 0.5 and NTIRE2025_ID_THRESHOLDS["Wider-Test"] == 0.3
    assert sum(NTIRE2025_SET_SIZES.values()) == 450
    values = {"CelebA": [0.49, 0.5, 0.8, math.nan], "LFW-Test": [0.59, 0.61], "Wider-Test": [0.31, 0.2, 0.1]}
    assert low_identity_counts(values) == {"CelebA": 1, "LFW-Test": 1, "Wider-Test": 2, "All": 4}
    assert low_identity_counts({"mine": [0.1, 0.9]}, {"mine": 0.5}) == {"mine": 1, "All": 1}
    assert identity_threshold("CelebChild-Test") == 0.6
    with pytest.raises(ConfigError, match="no identity threshold for test set 'FFHQ'"):
        low_identity_counts({"FFHQ": [0.1]})


def test_evaluate_scores_identity_to_the_input_without_ground_truth(mini_dir, tmp_path):
    """Through ``celebref evaluate --lq DIR`` (no ground truth): the runner hands each metric with ``needs_input``
    the record's LQ image. Known answers: ``lq``'s output is its input (cosine 1 on every detected face); an
    external method's values equal the metric computed directly on (output, LQ); a resumed run that rescores earlier
    outputs reads the LQ again and gives the same values."""
    import pandas as pd

    from celebref import face
    from celebref.app.cli import main
    from celebref.imageio import read_image, write_image

    status = face.backend_status()["dlib"]
    if status != "ok":
        pytest.skip(f"dlib backend unavailable: {status}")
    lq_dir, ext = tmp_path / "lq", tmp_path / "mirrored"
    names = sorted(p.name for p in (mini_dir / "lq").glob("*.png"))[:3]
    for n in names:
        img = read_image(mini_dir / "lq" / n)
        write_image(lq_dir / n, img)
        write_image(ext / n, np.ascontiguousarray(img[:, ::-1]))  # a mirrored face: same person, cosine < 1
    argv = ["evaluate", "--lq", str(lq_dir), "--methods", f"external:mirror={ext}", "--metrics",
            "identity-input:backend=dlib", "--device", "cpu", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    per = pd.read_csv(tmp_path / "run" / "per_image.csv").set_index(["method", "id"])
    m = create_metric("identity-input", backend="dlib").load()
    for n in names:
        i = Path(n).stem
        assert per.loc[("lq", i), "identity_input_cos"] == pytest.approx(1.0, abs=1e-9)
        lq, out = read_image(lq_dir / n), read_image(ext / n)
        direct = m.compute(_t(out)[None], _t(lq)[None])["identity_input_cos"][0].item()
        assert per.loc[("mirror", i), "identity_input_cos"] == direct < 1.0
    # a rerun with a new metric column rescores the earlier outputs: the LQ is read again for identity-input
    (tmp_path / "run" / "cache" / "metrics").mkdir(exist_ok=True)
    for f in (tmp_path / "run" / "cache" / "metrics").glob("*identity-input*"):
        f.unlink()
    assert main(argv) == 0
    again = pd.read_csv(tmp_path / "run" / "per_image.csv").set_index(["method", "id"])
    pd.testing.assert_series_equal(again["identity_input_cos"], per["identity_input_cos"])
