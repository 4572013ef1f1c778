"""Identity similarity and landmark distance on real faces (celebref-mini) with the offline dlib backend."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from celebref.imageio import read_image

face = pytest.importorskip("celebref.face", reason="celebref.face is not available")


def _dlib_ready():
    status = face.backend_status()["dlib"]
    if status != "ok":
        pytest.skip(f"dlib backend unavailable: {status}")


@pytest.fixture(scope="module")
def faces(mini_dir):
    rows = list(csv.DictReader(open(mini_dir / "manifest.csv")))
    by_id: dict[str, list] = {}
    for r in rows:
        if r["kind"] == "hq":
            by_id.setdefault(r["identity"], []).append(mini_dir / r["path"])
    ids = sorted(by_id)[:3]

    def t(p):
        return torch.from_numpy(read_image(p).copy()).permute(2, 0, 1)

    return {i: [t(p) for p in by_id[i][:2]] for i in ids}


def test_same_identity_is_more_similar_than_different(faces):
    _dlib_ready()
    from evaluation.registry import create_metric

    m = create_metric("identity", backend="dlib").load()
    ids = sorted(faces)
    pred, target, same = [], [], []
    for k, i in enumerate(ids):
        j = ids[(k + 1) % len(ids)]
        pred += [faces[i][0], faces[i][0]]
        target += [faces[i][1], faces[j][0]]
        same += [True, False]
    out = m.compute(torch.stack(pred), torch.stack(target))
    cos, angle = out["identity_cos"].numpy(), out["identity_angle"].numpy()
    same = np.array(same)
    assert np.isfinite(cos).all()
    assert cos[same].min() > cos[~same].max(), (cos[same], cos[~same])
    assert np.allclose(np.degrees(np.arccos(cos)), angle)
    d = m.describe()["face"]
    assert d["backend"] == "dlib" and d["models"]
    # an image against itself: cosine 1, angle 0
    selfv = m.compute(torch.stack(pred[:1]), torch.stack(pred[:1]))
    assert abs(float(selfv["identity_cos"][0]) - 1.0) < 1e-6 and float(selfv["identity_angle"][0]) < 0.1


def test_landmark_distance_known_shift(faces):
    _dlib_ready()
    from evaluation.registry import create_metric

    m = create_metric("lmd", backend="dlib").load()
    img = next(iter(faces.values()))[0]
    shifted = torch.roll(img, shifts=(6, 0), dims=(1, 2))  # 6 px down
    out = m.compute(torch.stack([img, shifted]), torch.stack([img, img]))["lmd"].numpy()
    assert out[0] == 0.0
    assert 4.0 < out[1] < 8.0, out  # landmarks follow the face: ~6 px
    # no face: NaN with a recorded reason, the rest of the batch is still scored
    blank = torch.zeros_like(img)
    out = m.compute(torch.stack([blank, img]), torch.stack([img, img]))["lmd"].numpy()
    assert np.isnan(out[0]) and out[1] == 0.0 and "restored" in m.last_failures[0]


def test_labels_name_the_backend_and_the_fallback_is_said_once(capsys):
    """Issue 12 item 4: dlib numbers are never labelled like the papers' ArcFace IDS/Deg, and an automatic
    fallback to dlib prints exactly one line."""
    _dlib_ready()
    from evaluation.registry import create_metric

    m = create_metric("identity", backend="dlib").load()
    assert m.column_labels() == {"identity_cos": "ID(dlib)", "identity_angle": "Deg(dlib)"}
    assert m.describe()["labels"] == m.column_labels()
    assert capsys.readouterr().err == ""  # dlib asked for by name: nothing to warn about
    arc = create_metric("identity", backend="insightface")  # not loaded: labels follow the requested backend
    assert arc.column_labels() == {"identity_cos": "IDS(ArcFace)", "identity_angle": "Deg(ArcFace)"}
    assert create_metric("lmd", backend="dlib").load().column_labels() == {"lmd": "LMD(dlib)"}
    capsys.readouterr()
    if face.backend_status()["insightface"] == "ok":
        pytest.skip("insightface is installed here: backend='auto' picks ArcFace, no fallback to observe")
    auto = create_metric("identity", backend="auto").load()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "fell back to the dlib face backend" in err[0] and "ID(dlib), Deg(dlib)" in err[0]
    assert "not the papers' ArcFace IDS/Deg" in err[0] and "insightface" in err[0]
    assert auto.column_labels()["identity_cos"] == "ID(dlib)"
