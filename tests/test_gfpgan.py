"""GFPGAN v1.4: state-dict layout, golden parity with the official code, BasicSR conversions, the method
(batching, per-image errors, seeded noise) and weight loading errors.

Goldens: ``$CELEBREF_GOLDEN_DIR/gfpgan`` (see its README). Salt, scale adjustment and file names come from
``case_*.report.json`` / ``spec.json``; tolerances are the README's "Recommended acceptance".
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _restoration_golden import first_golden_case

from baselines.base import STATUS_ERROR, STATUS_OK, RestoreItem
from baselines.gfpgan.arch import GFPGANv14
from baselines.gfpgan.faces import faces_to_tensor, tensor_to_faces
from baselines.gfpgan.method import GFPGANMethod, seeded_noise
from baselines.registry import create_method
from celebref.errors import ConfigError, WeightError

from _golden_acceptance import gfpgan_acceptance


@pytest.fixture(scope="module")
def tol(golden_dir) -> dict[str, float]:
    """The README's "Recommended acceptance" for a float32 re-implementation (read at run time)."""
    return gfpgan_acceptance(golden_dir)


@pytest.fixture(scope="module")
def golden(golden_dir, synth_weights):
    """(report, arrays, loaded method) of the first golden case; the network is built once per module."""
    return first_golden_case(golden_dir / "gfpgan", GFPGANMethod, synth_weights)


def test_state_dict_layout_matches_official_spec(golden_dir):
    spec = json.loads((golden_dir / "gfpgan" / "spec.json").read_text())
    net = GFPGANv14()
    ours = [(k, list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in net.state_dict().items()]
    assert ours == [(k, list(s), d) for k, s, d in spec["entries"]]
    assert sum(1 for _ in net.parameters()) == spec["num_parameter_tensors"]
    assert sum(p.numel() for p in net.parameters()) == spec["num_parameter_elements"]
    assert [f"stylegan_decoder.{n}" for n, _ in net.stylegan_decoder.named_buffers()] == spec["buffer_keys"]


@pytest.mark.golden
def test_golden_forward(golden, tol):
    report, arrays, method = golden
    with torch.inference_mode():
        out, extras = method.net(torch.from_numpy(arrays["input"]), return_extras=True)
    diff = (out - torch.from_numpy(arrays["output"])).abs()
    print(f"gfpgan golden output max|d|={diff.max().item():.3g} mean|d|={diff.mean().item():.3g}")
    assert diff.max().item() <= tol["output_max"] and diff.mean().item() <= tol["output_mean"]
    assert (extras["style_code"] - torch.from_numpy(arrays["style_code"])).abs().max().item() <= tol["style_code"]
    rgb_keys = sorted((k for k in arrays if k.startswith("out_rgb_")), key=lambda k: int(k.rsplit("_", 1)[1]))
    assert len(rgb_keys) == len(extras["out_rgbs"])
    for key, ours in zip(rgb_keys, extras["out_rgbs"]):
        assert (ours - torch.from_numpy(arrays[key])).abs().max().item() <= tol["output_max"], key


@pytest.mark.golden
def test_conversions_reproduce_basicsr_bit_exactly(golden):
    _, arrays, _ = golden
    x = faces_to_tensor([arrays["lq_rgb_uint8"]])
    assert x.dtype == torch.float32 and torch.equal(x, torch.from_numpy(arrays["input"]))
    (img,) = tensor_to_faces(torch.from_numpy(arrays["output"]))
    np.testing.assert_array_equal(img, arrays["output_rgb_uint8"])


@pytest.mark.golden
def test_method_batch_matches_golden_and_isolates_bad_items(golden, tol):
    _, arrays, method = golden
    lq = arrays["lq_rgb_uint8"]
    items = [RestoreItem("a/1", lq), RestoreItem("bad", lq[:256, :256]), RestoreItem("b", np.ascontiguousarray(lq[:, ::-1]))]
    res = method.restore(items)
    assert [r.id for r in res] == ["a/1", "bad", "b"]
    assert [r.status for r in res] == [STATUS_OK, STATUS_ERROR, STATUS_OK]
    assert "512x512" in res[1].reason and res[1].image is None
    off = np.abs(res[0].image.astype(int) - arrays["output_rgb_uint8"].astype(int))
    assert off.max() <= 1 and (off > 0).mean() <= tol["uint8_frac_off_by_one"]
    assert res[2].image.shape == lq.shape and not np.array_equal(res[2].image, res[0].image)
    assert all(r.seconds > 0 for r in res)


@pytest.mark.golden
def test_seeded_noise_is_reproducible_and_differs_from_stored_noise(golden):
    _, arrays, method = golden
    lq = arrays["lq_rgb_uint8"]
    shapes = method.net.noise_shapes()
    a, b, c = seeded_noise(shapes, 7, "x"), seeded_noise(shapes, 7, "x"), seeded_noise(shapes, 7, "y")
    assert [tuple(t.shape) for t in a] == shapes
    assert all(torch.equal(s, t) for s, t in zip(a, b)) and not torch.equal(a[-1], c[-1])
    seeded = GFPGANMethod(seed=7)
    seeded.net, seeded.loaded = method.net, True  # share the loaded network
    r1 = seeded.restore([RestoreItem("x", lq)])[0].image
    r2 = seeded.restore([RestoreItem("x", lq)])[0].image
    np.testing.assert_array_equal(r1, r2)
    assert np.abs(r1.astype(int) - arrays["output_rgb_uint8"].astype(int)).max() > 1


def test_registry_names_and_params():
    m = create_method("gfpgan", device="cpu", precision="fp32", landmark_policy="skip")
    assert isinstance(m, GFPGANMethod) and m.label == "gfpgan" and m.weights == ("gfpgan-v1.4",)
    assert create_method("gfpgan:seed=3").label == "gfpgan:seed=3"
    with pytest.raises(ConfigError):
        create_method("gfpgan:seed=abc")
    with pytest.raises(ConfigError):
        create_method("gfpgan:w=0.5")


def test_missing_weights_raise_weight_error():
    with pytest.raises(WeightError, match="GFPGANv1.4.pth"):
        GFPGANMethod().load()


def test_mismatched_checkpoint_is_a_clear_weight_error():
    sd = GFPGANv14().state_dict()
    sd.pop("final_linear.bias")
    sd["final_conv.weight"] = torch.zeros(3, 3)
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightError) as e:
        GFPGANMethod.from_state_dict(sd)
    msg = str(e.value)
    assert "final_linear.bias" in msg and "final_conv.weight" in msg and "extra.weight" in msg


def test_checkpoint_key_choice_params_ema_then_params(monkeypatch):
    from celebref import weights as store

    sd = GFPGANv14().state_dict()
    ckpts = {"ema": {"params_ema": sd, "params": {"junk": torch.zeros(1)}}, "plain": {"params": sd}, "none": {"state": sd}}
    for kind, expect_ok in (("ema", True), ("plain", True), ("none", False)):
        monkeypatch.setattr(store, "load_torch_checkpoint", lambda name, _c=ckpts[kind]: _c)
        m = GFPGANMethod()
        if expect_ok:
            m.load()
            assert m.loaded and torch.equal(m.net.final_linear.bias, sd["final_linear.bias"])
        else:
            with pytest.raises(WeightError, match="params_ema"):
                m.load()
