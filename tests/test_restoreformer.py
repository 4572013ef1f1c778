"""RestoreFormer / RestoreFormer++: state-dict layout, golden parity with the official code (outputs within the
golden's tolerance, codebook indices identical), the methods (batching, per-image errors), checkpoint loading
(GFPGAN ``params_ema``/``params``; Lightning ``state_dict`` with ``vqvae.`` prefix) and ``evaluate`` through the CLI.

Goldens: ``tests/golden/restoreformer`` and ``tests/golden/restoreformerpp`` (README.md in each). Salt, scale
adjustment, the input recipe (a celebref-mini file + deterministic ops) and every tolerance come from their
``meta.json``; the face itself is rebuilt from ``$CELEBREF_MINI_DIR`` (skipped when absent).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.base import STATUS_ERROR, STATUS_OK, RestoreItem
from baselines.gfpgan.faces import faces_to_tensor
from baselines.registry import create_method
from baselines.restoreformer.arch import RESTOREFORMER, RESTOREFORMER_PP, RestoreFormerNet
from baselines.restoreformer.method import RestoreFormerMethod, RestoreFormerPPMethod, lightning_network_state
from celebref.errors import WeightError
from celebref.imageio import read_image

GOLDEN = Path(__file__).parent / "golden"
CASES = {"restoreformer": (RestoreFormerMethod, RESTOREFORMER), "restoreformerpp": (RestoreFormerPPMethod, RESTOREFORMER_PP)}


def _meta(folder: str) -> dict:
    return json.loads((GOLDEN / folder / "meta.json").read_text())


def golden_state_dict(synth_weights, folder: str) -> dict[str, torch.Tensor]:
    """Synthetic weights of the golden's ``spec.json`` with its salt and scale adjustments; digest checked."""
    meta = _meta(folder)
    sd = synth_weights.synth_state_dict(synth_weights.load_spec(GOLDEN / folder / "spec.json"), meta["salt"])
    for key_part, factor in meta.get("scale_adjust", {}).items():
        hits = [k for k in sd if key_part in k]
        assert hits, f"scale adjustment {key_part!r} matches no key"
        for k in hits:
            sd[k] = sd[k] * factor
    assert synth_weights.digest(sd) == meta["synth_digest_sha256_after_scale_adjust"]
    return sd


def golden_input(mini_dir: Path, folder: str) -> np.ndarray:
    """The golden's input face, RGB uint8 (512, 512, 3), rebuilt from the fixture by the recipe in meta.json."""
    recipe = _meta(folder)["input"]
    img = read_image(mini_dir / recipe["fixture_file"])
    assert img.shape == tuple(recipe["shape_hwc"])
    assert hashlib.sha256(img.tobytes()).hexdigest() == recipe["rgb_uint8_sha256"], "fixture image changed"
    return img


@pytest.fixture(scope="module", params=sorted(CASES))
def golden(request, synth_weights, mini_dir):
    """(meta, arrays, loaded method, input uint8) of one golden; the network is built once per module."""
    folder = request.param
    meta = _meta(folder)
    arrays = dict(np.load(GOLDEN / folder / meta["arrays"]))
    method = CASES[folder][0].from_state_dict(golden_state_dict(synth_weights, folder))
    return meta, arrays, method, golden_input(mini_dir, folder)


@pytest.mark.parametrize("folder", sorted(CASES))
def test_state_dict_layout_matches_official_spec(folder):
    spec = json.loads((GOLDEN / folder / "spec.json").read_text())
    net = RestoreFormerNet(CASES[folder][1])
    ours = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in net.state_dict().items()]
    assert ours == spec["entries"]
    assert sum(p.numel() for p in net.parameters()) == spec["num_parameter_elements"]
    assert len(list(net.buffers())) == spec["num_buffer_tensors"]


@pytest.mark.golden
def test_golden_forward_and_codebook_indices(golden):
    meta, arrays, method, lq = golden
    tol = meta["tolerances"]
    x = faces_to_tensor([lq])
    assert hashlib.sha256(x.numpy().tobytes()).hexdigest() == meta["input"]["tensor_float32_sha256"]
    with torch.inference_mode():
        out, extras = method.net(x, return_extras=True)
    assert torch.equal(extras["indices"], torch.from_numpy(arrays["indices"]))  # every code choice identical
    dz = (extras["z"] - torch.from_numpy(arrays["z"])).abs()
    diff = (out - torch.from_numpy(arrays["output"])).abs()
    print(f"{meta['net']} golden: max|d|={diff.max().item():.3g} mean|d|={diff.mean().item():.3g} "
          f"z max|d|={dz.max().item():.3g}")
    assert dz.max().item() <= tol["z_max_abs"]
    assert diff.max().item() <= tol["output_max_abs"]
    assert diff.mean().item() <= tol["output_mean_abs"]


@pytest.mark.golden
def test_method_batch_matches_golden_and_isolates_bad_items(golden):
    meta, arrays, method, lq = golden
    tol = meta["tolerances"]
    m = type(method)()
    m.net, m.loaded = method.net, True  # share the loaded network
    items = [RestoreItem("x", lq), RestoreItem("gray", lq[:, :, 0]), RestoreItem("small", lq[:256, :256])]
    res = m.restore(items)
    assert [r.status for r in res] == [STATUS_OK, STATUS_ERROR, STATUS_ERROR]
    assert "RGB uint8" in res[1].reason and "512" in res[2].reason
    off = np.abs(res[0].image.astype(int) - arrays["output_rgb_uint8"].astype(int))
    assert off.max() <= tol["uint8_max_abs"] and (off > 0).mean() <= tol["uint8_frac_differing"]


@pytest.mark.golden
def test_batch_of_two_equals_single_images(golden):
    """Batching changes nothing: a batch of (face, flipped face) gives each image's own codes."""
    _, arrays, method, lq = golden
    x = faces_to_tensor([lq, np.ascontiguousarray(lq[:, ::-1])])
    with torch.inference_mode():
        out, extras = method.net(x, return_extras=True)
        single, ex1 = method.net(x[1:], return_extras=True)
    assert torch.equal(extras["indices"][0], torch.from_numpy(arrays["indices"][0]))
    assert torch.equal(extras["indices"][1], ex1["indices"][0])
    assert (out[1] - single[0]).abs().max().item() <= 1e-4


@pytest.mark.golden
def test_bf16_autocast_keeps_the_code_choice_in_float32(golden):
    from celebref.precision import precision_context

    _, arrays, method, lq = golden
    x = faces_to_tensor([lq])
    with torch.inference_mode():
        q32, z32, idx32, _ = method.net.encode(x)
        with precision_context("cpu", "bf16"):
            q16, z16, idx16, skips = method.net.encode(x)
    assert torch.equal(idx16, torch.from_numpy(arrays["indices"])) and torch.equal(idx16, idx32)
    assert torch.equal(z16, z32) and torch.equal(q16, q32)  # the island is exact float32
    for t in (q16, z16, *skips.values()):
        assert t.dtype == torch.float32 and bool(torch.isfinite(t).all())


def test_nearest_code_is_the_argmin_of_true_distances():
    """Quantization picks the nearest code (first one on ties) and returns exactly ``z + (e - z)``."""
    net = RestoreFormerNet(RESTOREFORMER)
    cb = net.quantize
    with torch.no_grad():
        cb.embedding.weight.copy_(torch.randn(1024, 256, generator=torch.Generator().manual_seed(1)))
        cb.embedding.weight[7] = cb.embedding.weight[3]  # a tie: index 3 must win
        z = torch.randn(2, 256, 4, 4, generator=torch.Generator().manual_seed(2))
        z[1, :, 0, 0] = cb.embedding.weight[3] + 1e-3
        quant, idx = cb(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 256).double()
    want = torch.cdist(flat, cb.embedding.weight.double()).argmin(dim=1).view(2, 16)
    assert torch.equal(idx, want) and idx[1, 0].item() == 3
    e = cb.embedding.weight[idx.view(-1)].view(2, 4, 4, 256).permute(0, 3, 1, 2)
    assert (quant - e).abs().max().item() <= 1e-6


def test_registry_labels_and_aliases():
    assert isinstance(create_method("restoreformer"), RestoreFormerMethod)
    m = create_method("rf++", device="cpu", precision="fp32", landmark_policy="skip")
    assert isinstance(m, RestoreFormerPPMethod) and m.label == "restoreformer++"
    assert RestoreFormerMethod.alignment == RestoreFormerPPMethod.alignment == "ffhq5"


def test_missing_weights_raise_weight_error():
    with pytest.raises(WeightError, match="RestoreFormer.pth"):
        RestoreFormerMethod().load()
    with pytest.raises(WeightError, match=r"RestoreFormer\+\+.ckpt"):
        RestoreFormerPPMethod().load()


def test_gfpgan_release_checkpoint_keys(monkeypatch):
    """``RestoreFormer.pth``: ``params_ema``, else ``params`` (GFPGANer), strict."""
    from celebref import weights as store

    sd = RestoreFormerNet(RESTOREFORMER).state_dict()
    for key in ("params_ema", "params"):
        monkeypatch.setattr(store, "load_torch_checkpoint", lambda name, key=key: {key: sd})
        m = RestoreFormerMethod()
        m.load()
        assert torch.equal(m.net.quantize.embedding.weight, sd["quantize.embedding.weight"])
    monkeypatch.setattr(store, "load_torch_checkpoint", lambda name, **kw: {"state_dict": sd})
    with pytest.raises(WeightError, match="neither 'params_ema' nor 'params'"):
        RestoreFormerMethod().load()
    pp = RestoreFormerNet(RESTOREFORMER_PP).state_dict()  # RF++ weights do not fit RestoreFormer
    with pytest.raises(WeightError, match="decoder.up.4.attn"):
        RestoreFormerMethod.from_state_dict(pp)


def test_lightning_checkpoint_loading(monkeypatch):
    """``RestoreFormer++.ckpt``: ``state_dict`` entries under ``vqvae.`` (prefix removed), training-loss entries
    dropped as the official ``strict=False`` does, but a missing network key is an error."""
    from celebref import weights as store

    sd = RestoreFormerNet(RESTOREFORMER_PP).state_dict()
    ckpt = {"epoch": 3, "state_dict": {**{f"vqvae.{k}": v for k, v in sd.items()},
                                       "loss.discriminator.main.0.weight": torch.zeros(2)}}
    assert list(lightning_network_state(ckpt, "x")) == list(sd)
    monkeypatch.setattr(store, "load_torch_checkpoint", lambda name, **kw: ckpt)
    m = RestoreFormerPPMethod()
    m.load()
    assert torch.equal(m.net.decoder.up[4].attn[0].q.weight, sd["decoder.up.4.attn.0.q.weight"])
    ckpt["state_dict"].pop("vqvae.post_quant_conv.bias")
    with pytest.raises(WeightError, match="1 missing keys \\(post_quant_conv.bias\\)"):
        RestoreFormerPPMethod().load()
    for bad, msg in (({"params_ema": sd}, "no 'state_dict'"), ({"state_dict": dict(sd)}, "no 'vqvae.' entries")):
        monkeypatch.setattr(store, "load_torch_checkpoint", lambda name, bad=bad, **kw: bad)
        with pytest.raises(WeightError, match=msg):
            RestoreFormerPPMethod().load()


def _install_synthetic_checkpoints() -> None:
    """Write both checkpoints in their official layouts into the (test-isolated) weight store: small random
    weights (finite activations), GFPGAN ``{"params_ema": sd}`` and Lightning ``{"state_dict": {"vqvae.*"}}``."""
    from celebref import weights

    for name, cfg, wrap in (("restoreformer", RESTOREFORMER, lambda sd: {"params_ema": sd}),
                            ("restoreformer++", RESTOREFORMER_PP,
                             lambda sd: {"state_dict": {f"vqvae.{k}": v for k, v in sd.items()}})):
        net = RestoreFormerNet(cfg)
        torch.manual_seed(0)
        for mod in net.modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.normal_(mod.weight, std=0.02)
        dest = weights.default_path(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        torch.save(wrap(net.state_dict()), dest)


@pytest.mark.slow
def test_evaluate_both_methods_with_synthetic_weights(tmp_path, mini_dir, capsys):
    """``celebref evaluate --methods restoreformer,restoreformer++`` on a one-image degrade output with synthetic
    checkpoints in the official layouts (``--allow-unverified-weights``: no published sha256) -> exit 0."""
    import shutil

    import pandas as pd

    from celebref.app.cli import main

    _install_synthetic_checkpoints()
    src = tmp_path / "hq" / "p"
    src.mkdir(parents=True)
    shutil.copy(mini_dir / "hq" / "00075" / "0.png", src / "0.png")
    assert main(["degrade", "--preset", "dfdnet", "--refs", "none", "--seed", "1", "--input", str(tmp_path / "hq"),
                 "--out", str(tmp_path / "deg")]) == 0
    code = main(["evaluate", "--data", str(tmp_path / "deg"), "--methods", "restoreformer,restoreformer++",
                 "--metrics", "psnr", "--out", str(tmp_path / "ev"), "--device", "cpu", "--allow-unverified-weights"])
    assert code == 0, capsys.readouterr().err
    df = pd.read_parquet(tmp_path / "ev" / "per_image.parquet")
    assert set(df["method"]) >= {"restoreformer", "restoreformer++"}
    assert df["psnr"].notna().all()


@pytest.mark.slow
def test_restore_whole_photo_with_both_methods(tmp_path, mini_dir):
    """``celebref restore --whole-photo``: one real face in a larger photo, detected, FFHQ-5 aligned (the official
    scripts' facexlib alignment), restored by both methods and pasted back -> exit 0."""
    import cv2

    from celebref.app.cli import main
    from celebref.face import backend_status
    from celebref.imageio import write_image
    from celebref.tabular import read_table

    if backend_status()["dlib"] != "ok":
        pytest.skip("the dlib face-analysis backend cannot run here")
    _install_synthetic_checkpoints()
    photo = np.full((480, 560, 3), 96, np.uint8)
    face = cv2.resize(read_image(mini_dir / "hq" / "00075" / "0.png"), (320, 320), interpolation=cv2.INTER_AREA)
    photo[80:400, 120:440] = face
    write_image(tmp_path / "in" / "one.png", photo)
    out = tmp_path / "out"
    assert main(["restore", "--whole-photo", "--methods", "restoreformer,restoreformer++", "--input",
                 str(tmp_path / "in"), "--out", str(out), "--device", "cpu", "--allow-unverified-weights"]) == 0
    df = read_table(out / "faces.csv")
    assert sorted(df["method"]) == ["restoreformer", "restoreformer++"]
    assert (df["status"] == "ok").all() and (df["alignment"] == "ffhq5").all()
    for label in ("restoreformer", "restoreformer++"):
        restored = read_image(out / label / "one.png")  # --upscale 1: the photo's size, face replaced
        assert restored.shape == photo.shape and not np.array_equal(restored[80:400, 120:440], face)
