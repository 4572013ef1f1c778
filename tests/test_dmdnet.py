"""DMDNet (generic + specific) against the goldens made with the official code and synthetic weights.

Fixture root: ``CELEBREF_GOLDEN_DIR`` (``golden_dir`` fixture), sub-folder ``dmdnet``. The salt, the
weight digest and the key layout come from ``spec.json``; the ``.npz`` files are recognised by the
arrays they hold (see ``dmdnet/README.md``, "Files"), not by their names.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.base import (
    STATUS_FALLBACK_GENERIC,
    STATUS_FALLBACK_INPUT,
    STATUS_LANDMARKS_REJECTED,
    STATUS_OK,
    STATUS_SKIPPED,
    ReferenceSet,
    RestoreItem,
)
from baselines.dmdnet.components import component_locations
from baselines.dmdnet.method import DMDNetGeneric, DMDNetSpecific, from_dmdnet_tensor, to_dmdnet_tensor
from baselines.dmdnet.network import DMDNet, check_boxes

from _golden_acceptance import dmdnet_acceptance
from conftest import skip_without_shared

pytestmark = pytest.mark.golden


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gdir(golden_dir: Path) -> Path:
    d = golden_dir / "dmdnet"
    if not (d / "spec.json").is_file():
        skip_without_shared(f"no DMDNet goldens at {d}")
    return d


@pytest.fixture(scope="module")
def tol(golden_dir: Path, gdir: Path) -> dict[str, float]:
    """dmdnet/README.md, "Suggested pass criteria for a float32 re-implementation" (read at run time): bounds on
    generic_out/specific_out, on (specific - generic) and on the debug specific dictionary."""
    return dmdnet_acceptance(golden_dir)


@pytest.fixture(scope="module")
def meta(gdir: Path) -> dict:
    return json.loads((gdir / "spec.json").read_text())


@pytest.fixture(scope="module")
def fixtures(gdir: Path) -> dict[str, dict[str, np.ndarray]]:
    """The npz files by role, recognised from their arrays."""
    roles: dict[str, dict[str, np.ndarray]] = {}
    for f in sorted(gdir.glob("*.npz")):
        z = dict(np.load(f))
        if "specific_out" in z:
            roles["specific"] = z
        elif "generic_out" in z:
            roles["generic"] = z
        elif "locations" in z:
            roles["components"] = z
        elif any(k.startswith("spdict_") for k in z):
            roles["debug"] = z
    return roles


@pytest.fixture(scope="module")
def net(gdir: Path, meta: dict, synth_weights) -> DMDNet:
    """DMDNet loaded with the synthetic weights named by spec.json (generated once per module)."""
    src = Path(synth_weights.__file__).read_bytes()
    assert hashlib.sha256(src).hexdigest() == meta["synth_weights_py_sha256"], "synth_weights.py is not the generator spec.json was made with"
    spec = synth_weights.load_spec(str(gdir / "spec.json"))
    sd = synth_weights.synth_state_dict(spec, meta["synth_salt"])
    assert synth_weights.digest(sd) == meta["synth_digest_sha256"]
    model = DMDNet()
    model.load_state_dict(sd, strict=True)
    del sd
    return model.eval()


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.fixture(scope="module")
def sp_dict(net, fixtures):
    S = fixtures["specific"]
    with torch.no_grad():
        return net.generate_specific_dictionary(_t(S["ref_imgs"]), _t(S["ref_locs"]))


def _maxdiff(a: torch.Tensor, b: np.ndarray) -> float:
    return float((a.detach().float() - _t(b)).abs().max())


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Exact uint8 source of a golden tensor made by read_img_tensor (x/255, then (x-0.5)/0.5)."""
    img = np.rint((x.astype(np.float64) * 0.5 + 0.5) * 255).astype(np.uint8)
    return img.transpose(1, 2, 0)


# -- layout and boxes (cheap) -----------------------------------------------------------------------
def test_state_dict_layout_is_official(meta):
    entries = meta["entries"]
    assert len(entries) == meta["num_entries"]
    model = DMDNet()
    mine = [(k, list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in model.state_dict().items()]
    assert mine == [(k, list(s), d) for k, s, d in entries]  # keys, shapes, dtypes and order
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == meta["num_parameter_elements"]


def test_component_locations_exact(fixtures):
    C = fixtures["components"]
    assert len(C["names"]) == C["locations"].shape[0] > 0
    for name, lm, expected in zip(C["names"], C["landmarks"], C["locations"]):
        before = lm.copy()
        got = component_locations(lm)
        assert got.dtype == np.float32 and got.shape == (4, 4)
        assert np.array_equal(got, expected), name
        assert np.array_equal(lm, before), f"{name}: the caller's landmarks were modified"
    S = fixtures["specific"]
    assert np.array_equal(component_locations(S["lq_landmarks"]), S["lq_locs"])
    for lm, loc in zip(S["ref_landmarks"], S["ref_locs"]):
        assert np.array_equal(component_locations(lm), loc)


def test_check_boxes_flags_boxes_the_official_forward_cannot_use(fixtures):
    C = fixtures["components"]
    reasons = check_boxes(C["locations"])
    # a box with a negative corner gives an empty (wrapped) slice or a paste-size mismatch
    neg = [(n, r) for n, r, loc in zip(C["names"], reasons, C["locations"]) if (loc[[0, 1, 3]] < 0).any()]
    assert neg and all(r for _, r in neg)
    S = fixtures["specific"]
    assert check_boxes(S["lq_locs"][None]) == [""]
    flat = np.full((68, 2), 200.0)  # all points equal: zero-size eye boxes
    assert check_boxes(component_locations(flat)[None])[0]


def test_io_conversions_follow_the_official_scripts(fixtures):
    import cv2

    S = fixtures["specific"]
    lq = S["lq"][0]
    img = _to_uint8(lq)
    assert torch.equal(to_dmdnet_tensor(img), _t(S["lq"]))  # bit-exact read_img_tensor recipe
    for r in S["ref_imgs"]:
        assert torch.equal(to_dmdnet_tensor(_to_uint8(r))[0], _t(r))
    # output: clip((y*0.5+0.5), 0, 1)*255 written by cv2.imwrite -> OpenCV rounds half to even
    y = torch.from_numpy(np.linspace(-1.1, 1.1, 3 * 40 * 41, dtype=np.float32).reshape(3, 40, 41))
    y[0, 0, :4] = torch.tensor([(0.5 / 255 - 0.5) / 0.5, (2.5 / 255 - 0.5) / 0.5, 0.0, 1.0])
    ours = from_dmdnet_tensor(y)
    f = np.clip((y * 0.5 + 0.5).permute(1, 2, 0).numpy(), 0, 1) * 255.0
    ok, buf = cv2.imencode(".png", f)
    assert ok and np.array_equal(ours, cv2.imdecode(buf, cv2.IMREAD_UNCHANGED))


# -- network against the goldens --------------------------------------------------------------------
def test_generic_forward_matches_golden(net, fixtures, tol):
    G = fixtures["generic"]
    with torch.no_grad():
        g, s = net(_t(G["lq"]), _t(G["lq_locs"])[None])
    assert s is None
    assert _maxdiff(g, G["generic_out"]) <= tol["out"]


def test_specific_dictionary_matches_debug(sp_dict, fixtures, tol):
    D = fixtures.get("debug")
    if D is None:
        pytest.skip("no debug intermediates in this golden set")
    n = 0
    for mem in sp_dict:
        for k, v in mem.items():
            assert _maxdiff(v, D[f"spdict_{k}"]) <= tol["dict"], k
            n += 1
    assert n == len([k for k in D if k.startswith("spdict_")])


def test_specific_forward_matches_golden(net, sp_dict, fixtures, tol):
    S = fixtures["specific"]
    with torch.no_grad():
        g, s = net(_t(S["lq"]), _t(S["lq_locs"])[None], *sp_dict)
    assert _maxdiff(g, S["generic_out"]) <= tol["out"]
    assert _maxdiff(s, S["specific_out"]) <= tol["out"]
    assert _maxdiff(s - g, S["specific_out"] - S["generic_out"]) <= tol["out_diff"]
    assert float((s - g).abs().max()) > 10 * tol["out"]  # the specific branch really moved the output


def test_batch_mixes_identities_and_box_sizes(net, sp_dict, fixtures, tol):
    """Images 0 and 2: the LQ with the 3-reference dictionary (read together); image 1: another
    face with other boxes and a 2-reference dictionary (its own softmax temperature sqrt(2)).
    Batched == one image at a time."""
    S = fixtures["specific"]
    refs, rlocs = _t(S["ref_imgs"]), _t(S["ref_locs"])
    with torch.no_grad():
        other = net.generate_specific_dictionary(refs[1:], rlocs[1:])
        lq = torch.cat([_t(S["lq"]), refs[:1], _t(S["lq"])], 0)
        loc = torch.stack([_t(S["lq_locs"]), rlocs[0], _t(S["lq_locs"])]).numpy()  # host boxes
        sp = [[a, b, a] for a, b in zip(sp_dict, other)]
        g, s = net(lq, loc, *sp, generic=False)
        _, single = net(refs[:1], rlocs[:1], *other, generic=False)
    assert g is None and s.shape == (3, 3, 512, 512)
    assert _maxdiff(s[0:1], S["specific_out"]) <= tol["out"]
    assert _maxdiff(s[2:3], S["specific_out"]) <= tol["out"]
    assert float((s[1:2] - single).abs().max()) <= tol["out"]
    assert float((s[1:2] - _t(S["specific_out"])).abs().max()) > 1e-2  # really a different image


# -- the restoration methods ------------------------------------------------------------------------
def _refset(S, key="id-00005") -> ReferenceSet:
    return ReferenceSet(key, [_to_uint8(r) for r in S["ref_imgs"]], [lm for lm in S["ref_landmarks"]])


def test_specific_method_builds_dictionary_once_and_matches_golden(net, fixtures):
    S = fixtures["specific"]
    m = DMDNetSpecific.from_network(net, landmark_policy="input")
    lq = _to_uint8(S["lq"][0])
    refs = _refset(S)
    bad = RestoreItem("bad", lq, landmarks=np.full((68, 2), 200.0), references=refs)
    first = m.restore([RestoreItem("a", lq, landmarks=S["lq_landmarks"], references=refs), bad])
    second = m.restore([RestoreItem("b", lq, landmarks=S["lq_landmarks"], references=_refset(S))])
    assert m.dictionary_builds == 1  # one identity -> one dictionary across calls
    expected = from_dmdnet_tensor(_t(S["specific_out"]))
    for r in (first[0], second[0]):
        assert r.status == STATUS_OK and r.image is not None and r.image.shape == (512, 512, 3)
        assert int(np.abs(r.image.astype(int) - expected).max()) <= 1  # float 1e-5 may flip a rounding
    assert first[1].status == STATUS_FALLBACK_INPUT and np.array_equal(first[1].image, lq)
    assert "landmarks_rejected" in first[1].reason


def test_policies_without_forward(net, fixtures):
    S = fixtures["specific"]
    lq = _to_uint8(S["lq"][0])
    bad = RestoreItem("bad", lq, landmarks=np.full((68, 2), 200.0))
    skip = DMDNetGeneric.from_network(net, landmark_policy="skip").restore([bad])[0]
    assert skip.status == STATUS_LANDMARKS_REJECTED and skip.image is None and skip.reason
    gen = DMDNetGeneric.from_network(net, landmark_policy="generic").restore([bad])[0]
    assert gen.status == STATUS_FALLBACK_INPUT and np.array_equal(gen.image, lq)
    norefs = RestoreItem("norefs", lq, landmarks=S["lq_landmarks"])
    r = DMDNetSpecific.from_network(net, landmark_policy="skip").restore([norefs])[0]
    assert r.status == STATUS_SKIPPED and r.image is None
    one_bad = ReferenceSet("x", [_to_uint8(S["ref_imgs"][0])] * 2, [S["ref_landmarks"][0], np.full((68, 2), 200.0)])
    m = DMDNetSpecific.from_network(net, landmark_policy="skip")
    r = m.restore([RestoreItem("onebad", lq, landmarks=S["lq_landmarks"], references=one_bad)])[0]
    assert r.status == STATUS_LANDMARKS_REJECTED and "1 usable" in r.reason and m.dictionary_builds == 0


def test_specific_method_generic_fallback(net, fixtures):
    """Too few usable references + policy 'generic' -> the generic DMDNet output."""
    S = fixtures["specific"]
    lq = _to_uint8(S["lq"][0])
    refs = ReferenceSet("single", [_to_uint8(S["ref_imgs"][0])], [S["ref_landmarks"][0]])
    m = DMDNetSpecific.from_network(net, landmark_policy="generic")
    r = m.restore([RestoreItem("g", lq, landmarks=S["lq_landmarks"], references=refs)])[0]
    assert r.status == STATUS_FALLBACK_GENERIC and r.reason
    assert int(np.abs(r.image.astype(int) - from_dmdnet_tensor(_t(S["generic_out"]))).max()) <= 1
