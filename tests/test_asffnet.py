"""ASFFNet's pieces with known answers (selection rule, MLS warp, landmark mask, state-dict layout, parameters),
and its failure policies. The golden comparison with the official code is in ``test_asffnet_golden.py``; the
official TestExamples layout through the CLI in ``test_asffnet_layout.py``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.asffnet.method import ASFFNetMethod
from baselines.asffnet.network import ASFFNet
from baselines.asffnet.selection import EYE_POINTS, MOUTH_POINTS, select_reference, selection_score
from baselines.asffnet.warp import landmark_mask, mls_affine_grid, mls_affine_positions
from baselines.base import STATUS_FALLBACK_INPUT, STATUS_LANDMARKS_REJECTED, STATUS_SKIPPED, ReferenceSet, RestoreItem
from baselines.registry import METHODS, create_method, parse_method_spec
from celebref.errors import ConfigError


def _face_landmarks(seed: int = 0) -> np.ndarray:
    """68 plausible, non-degenerate points on a 512 face (jitter on a fixed template)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    base = np.stack([256 + 150 * np.cos(t) * (1 + 0.2 * np.sin(3 * t)), 260 + 170 * np.sin(t)], 1)
    return base + rng.normal(0, 4, base.shape)


# -- selection --------------------------------------------------------------------------------------------------
def test_an_affine_copy_of_the_lq_scores_zero_and_is_chosen() -> None:
    lq = _face_landmarks(0)
    affine = lq.copy()
    m = np.array([[1.1, 0.05], [-0.08, 0.95]])
    affine[EYE_POINTS] = lq[EYE_POINTS] @ m + [12.0, -7.0]  # each region: its own exact affine map
    affine[MOUTH_POINTS] = lq[MOUTH_POINTS] @ m.T + [-3.0, 4.0]
    noisy = lq + np.random.default_rng(1).normal(0, 3, lq.shape)
    assert selection_score(lq, affine) == pytest.approx(0.0, abs=1e-8)
    assert selection_score(lq, noisy) > 1.0
    idx, scores = select_reference(lq, [noisy, affine, noisy + 1.0])
    assert idx == 1 and scores[1] == min(scores)
    # the official weights: eyes+brows 1.01, mouth 1.49 (a mouth error costs more than the same eye error)
    eye_err, mouth_err = lq.copy(), lq.copy()
    eye_err[EYE_POINTS[0]] += [6.0, 0.0]
    mouth_err[MOUTH_POINTS[0]] += [6.0, 0.0]
    assert selection_score(lq, mouth_err) / selection_score(lq, eye_err) == pytest.approx(1.49 / 1.01, rel=0.2)


def test_ties_take_the_first_and_rule_first_ignores_scores() -> None:
    lq, ref = _face_landmarks(0), _face_landmarks(5)
    assert select_reference(lq, [ref, ref, ref])[0] == 0
    assert select_reference(lq, [ref + 50 * np.random.default_rng(2).random(ref.shape), lq], rule="first")[0] == 0
    degenerate = np.zeros((68, 2))  # singular normal equations: never chosen over a usable reference
    idx, scores = select_reference(lq, [degenerate, ref])
    assert idx == 1 and scores[0] == float("inf")
    with pytest.raises(ValueError, match="unknown selection rule"):
        select_reference(lq, [ref], rule="best")


# -- MLS warp ---------------------------------------------------------------------------------------------------
def test_mls_identity_and_translation_are_exact() -> None:
    size = 32
    p = _face_landmarks(3)[17:] / 16  # 51 control points on a 32-pixel grid
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    ident = mls_affine_positions(p, p, size)
    # interior exact; on the last row/column a position a rounding error past size - 1 is sent to 0 (official clamp)
    np.testing.assert_allclose(ident[:, :-1, :-1], np.stack([rows, cols])[:, :-1, :-1], atol=1e-9)
    assert np.all(np.isin(ident[0, -1], [0.0]) | np.isclose(ident[0, -1], size - 1))
    t = np.array([3.0, -2.0])  # (x, y): q = p + t, so each LQ pixel samples the reference at v - t
    pos = mls_affine_positions(p, p + t, size)
    want_r, want_c = rows + 2.0, cols - 3.0
    inside = (want_r < size - 1) & (want_c > 0)  # a position exactly on the border may round past it (-> 0)
    np.testing.assert_allclose(pos[0][inside], want_r[inside], atol=1e-9)
    np.testing.assert_allclose(pos[1][inside], want_c[inside], atol=1e-9)
    # official clamping: below 0 -> 0, past size - 1 -> 0 (not size - 1)
    assert np.all(pos[0][want_r > size - 1] == 0) and np.all(pos[1][want_c < 0] == 0)
    grid = mls_affine_grid(p, p, size)
    assert grid.shape == (size, size, 2) and grid.dtype == np.float32
    np.testing.assert_allclose(grid[5, 9], [(9 - 16) / 16, (5 - 16) / 16], atol=1e-7)  # (x, y), official half-pixel offset


def test_mls_singular_system_takes_the_official_fallback() -> None:
    """All control points at one place: every 2x2 system is singular; the official fallback gives v + q* - p*."""
    size = 16
    p, q = np.full((51, 2), 5.0), np.full((51, 2), [7.0, 6.0])  # (x, y)
    pos = mls_affine_positions(p, q, size)
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    want = np.stack([rows + 1.0, cols + 2.0])
    inside = want < size - 1  # exactly on the border, rounding may push a position past it (-> 0)
    np.testing.assert_allclose(pos[inside], want[inside], atol=1e-9)
    assert np.all(pos[want > size - 1] == 0)


def test_landmark_mask_boxes() -> None:
    lm = np.full((68, 2), -10.0)  # outside: ignored
    lm[17] = [100.5, 200.5]  # floor-3 .. ceil+3 -> 7 x 7
    lm[30] = [300.0, 100.0]  # integer: 6 x 6
    lm[5] = [50.0, 50.0]  # jaw point: never marked
    m = landmark_mask(lm)
    assert m.shape == (1, 1, 512, 512) and m.dtype == np.float32
    assert m[0, 0, 197:204, 97:104].all() and m[0, 0, 97:103, 297:303].all()
    assert m.sum() == 49 + 36


# -- network and method -----------------------------------------------------------------------------------------
def test_state_dict_layout_is_the_official_one() -> None:
    sd = ASFFNet().state_dict()
    assert len(sd) == 599 and sum(v.numel() for k, v in sd.items() if not k.endswith(("_u", "_v"))) == 23_625_939
    assert list(sd)[:4] == ["sff_branch.0.sff0.MaskModel.0.weight_orig", "sff_branch.0.sff0.MaskModel.0.weight_u",
                            "sff_branch.0.sff0.MaskModel.0.weight_v", "sff_branch.0.sff0.MaskModel.2.weight"]
    assert "sff_branch.4.MaskModel.2.weight_orig" in sd and "Mask_CModel.model.8.weight" in sd
    assert "Mask_CModel.model.0.bias" not in sd and sd["UpModel.9.weight_orig"].shape == (3, 64, 3, 3)


def test_registry_entry_and_params() -> None:
    e = METHODS.entry("asffnet")
    assert e.weights == ("asffnet",) and e.load() is ASFFNetMethod and ASFFNetMethod.needs_references
    assert parse_method_spec("asffnet:selection=first,max_references=3") == ("asffnet", {"selection": "first", "max_references": 3})
    with pytest.raises(ConfigError, match="max_references"):
        create_method("asffnet:max_references=1")
    with pytest.raises(ConfigError):
        create_method("asffnet:selection=best")


@pytest.fixture(scope="module")
def tiny_method() -> ASFFNetMethod:
    torch.manual_seed(0)
    net = ASFFNet()
    sd = net.state_dict()
    for name, t in sd.items():  # any finite, stable weights: these tests are about the plumbing
        if not name.endswith(("_u", "_v")):
            t.copy_(torch.randn_like(t) * 0.02)
    for name in [k[: -len("_orig")] for k in sd if k.endswith("weight_orig")]:
        w = sd[name + "_orig"].reshape(sd[name + "_orig"].shape[0], -1)
        v = torch.nn.functional.normalize(torch.randn(w.shape[1]), dim=0)
        for _ in range(30):  # power iteration: sigma is the spectral norm, so W / sigma has gain <= 1
            u = torch.nn.functional.normalize(w @ v, dim=0)
            v = torch.nn.functional.normalize(w.T @ u, dim=0)
        sd[name + "_v"].copy_(v)
        sd[name + "_u"].copy_(torch.nn.functional.normalize(w @ v, dim=0))
    return ASFFNetMethod.from_network(net)


def _item(refs: int, lm_ok: bool = True) -> RestoreItem:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    lms = [_face_landmarks(10 + j) if lm_ok else np.zeros((5, 2)) for j in range(refs)]
    rs = ReferenceSet("k", [img.copy() for _ in range(refs)], lms) if refs else None
    return RestoreItem("a", img, landmarks=_face_landmarks(0), references=rs)


def test_records_the_chosen_reference(tiny_method: ASFFNetMethod) -> None:
    item = _item(3)
    (res,) = tiny_method.restore([item])
    assert res.status == "ok" and res.image.shape == (512, 512, 3) and res.image.dtype == np.uint8
    scores = [selection_score(item.landmarks, lm) for lm in item.references.landmarks]
    assert res.reason.startswith(f"reference {int(np.argmin(scores)) + 1}/3 (score ") and "LQ landmarks: given" in res.reason


def test_reference_failures_follow_the_policy(tiny_method: ASFFNetMethod) -> None:
    (none,) = tiny_method.restore([_item(0)])
    assert none.status == STATUS_SKIPPED and none.image is None and "0 usable reference(s)" in none.reason
    (bad,) = tiny_method.restore([_item(3, lm_ok=False)])
    assert bad.status == STATUS_LANDMARKS_REJECTED and "ref 1: landmarks must be 68" in bad.reason
    copy = ASFFNetMethod.from_network(tiny_method.net, landmark_policy="generic")
    (res,) = copy.restore([_item(1)])
    assert res.status == STATUS_FALLBACK_INPUT and "no reference-free mode" in res.reason
    np.testing.assert_array_equal(res.image, _item(1).image)
    item = _item(3)
    item.landmarks = np.zeros((10, 2))
    (rej,) = tiny_method.restore([item])
    assert rej.status == STATUS_LANDMARKS_REJECTED and "68 finite" in rej.reason
