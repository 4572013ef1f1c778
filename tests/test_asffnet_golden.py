"""ASFFNet against the golden made with the official csxmli2016/ASFFNet512 code and synthetic weights
(``tests/golden/asffnet``: README.md, meta.json, spec.json, golden.npz).

Everything -- the salt, the weight digest, the input recipe (fixture files + OpenCV ops), the case list, array
names and tolerances -- comes from ``meta.json``; the face images are rebuilt from ``../shared/fixtures/celebref-mini``
(never stored here) and the test skips with a reason when that fixture is absent.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from baselines.asffnet.method import ASFFNetMethod, to_tensor
from baselines.asffnet.network import ASFFNet
from baselines.asffnet.selection import select_reference
from baselines.asffnet.warp import landmark_mask, mls_affine_grid, mls_affine_positions
from baselines.base import ReferenceSet, RestoreItem

GOLDEN = Path(__file__).parent / "golden" / "asffnet"
META = json.loads((GOLDEN / "meta.json").read_text())
TOL = META["tolerances"]

pytestmark = pytest.mark.golden


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    return dict(np.load(GOLDEN / "golden.npz"))


@pytest.fixture(scope="module")
def net(synth_weights) -> ASFFNet:
    src = Path(synth_weights.__file__).read_bytes()
    assert hashlib.sha256(src).hexdigest() == META["synth_weights_py_sha256"], "synth_weights.py is not the one the golden used"
    sd = synth_weights.synth_state_dict(synth_weights.load_spec(str(GOLDEN / "spec.json")), META["synth_salt"])
    assert synth_weights.digest(sd) == META["synth_digest_sha256"]
    model = ASFFNet()
    model.load_state_dict(sd, strict=True)
    return model.eval()


def _lq(mini: Path, case: dict) -> np.ndarray:
    """The LQ of ``case`` by the recipe in meta.json (RGB uint8 512x512)."""
    assert META["input_recipe"]["lq"].startswith("cv2.imread(lq_source, IMREAD_COLOR) (BGR) -> cv2.resize(., (128, 128), INTER_AREA)")
    img = cv2.imread(str(mini / case["lq_source"]), cv2.IMREAD_COLOR)
    small = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(cv2.resize(small, (512, 512), interpolation=cv2.INTER_CUBIC), cv2.COLOR_BGR2RGB)


def _case_inputs(mini: Path, case: dict) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray], list[str]]:
    lq = _lq(mini, case)
    lq_lm = np.loadtxt(mini / case["lq_landmarks"]).astype(np.float32).astype(np.float64)  # FAN's dtype
    refs = [cv2.cvtColor(cv2.imread(str(mini / p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in case["references"]]
    ref_lms = [np.loadtxt(mini / p) for p in case["reference_landmarks"]]
    return lq, lq_lm, refs, ref_lms, [Path(p).name for p in case["references"]]


@pytest.mark.parametrize("mls", sorted(META["mls_cases"]))
def test_mls_positions_match_the_official_function(arrays, mls: str) -> None:
    spec = META["mls_cases"][mls]
    p, q, want = (arrays[k] for k in spec["arrays"])
    got = mls_affine_positions(p, q, spec["size"])
    assert np.abs(got - want).max() <= TOL["mls_positions_max_abs"]


@pytest.mark.parametrize("case", META["cases"], ids=[c["case"] for c in META["cases"]])
def test_selection_grid_and_mask_match(mini_dir: Path, arrays, case: dict) -> None:
    lq, lq_lm, _, ref_lms, names = _case_inputs(mini_dir, case)
    idx, scores = select_reference(lq_lm, ref_lms)
    assert names[idx] == case["selected_reference"]  # the discrete choice: identical
    for n, s in zip(names, scores):
        assert s == pytest.approx(case["scores"][n], rel=TOL["score_rel"])
    pre = case["case"] + "__"
    grid = mls_affine_grid(ref_lms[idx][17:] / 4, lq_lm[17:] / 4, 128)
    assert np.abs(grid - arrays[pre + "grid"][0]).max() <= TOL["grid_max_abs"]
    mask = np.unpackbits(arrays[pre + "mask_packed"])[: 512 * 512].reshape(1, 1, 512, 512)
    np.testing.assert_array_equal(landmark_mask(lq_lm), mask.astype(np.float32))


@pytest.mark.parametrize("case", META["cases"], ids=[c["case"] for c in META["cases"]])
def test_method_output_matches_the_official_code(mini_dir: Path, arrays, net: ASFFNet, case: dict) -> None:
    """Through the whole method (selection, mask, warp, forward, uint8 conversion) and, where the golden holds it,
    the float output of the network."""
    lq, lq_lm, refs, ref_lms, names = _case_inputs(mini_dir, case)
    method = ASFFNetMethod.from_network(net)
    item = RestoreItem("x", lq, landmarks=lq_lm, references=ReferenceSet("k", refs, ref_lms))
    (res,) = method.restore([item])
    assert res.status == "ok"
    chosen = int(res.reason.split()[1].split("/")[0]) - 1
    assert names[chosen] == case["selected_reference"]
    pre = case["case"] + "__"
    differing = int((res.image != arrays[pre + "output_rgb_uint8"]).sum())
    assert differing <= TOL["output_uint8_values_differing"]
    if pre + "output" in arrays:
        ref = refs[chosen]
        with torch.inference_mode():
            out = net(to_tensor(lq), to_tensor(ref), torch.from_numpy(landmark_mask(lq_lm)), lq_lm[None], ref_lms[chosen][None])
        d = np.abs(out.numpy() - arrays[pre + "output"])
        assert d.max() <= TOL["output_max_abs"] and d.mean() <= TOL["output_mean_abs"], (d.max(), d.mean())
