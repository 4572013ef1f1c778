"""PSNR / SSIM against BasicSR's calculate_psnr / calculate_ssim goldens (and scikit-image's SSIM)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from celebref.errors import ConfigError
from evaluation.color import rgb_to_y
from evaluation.registry import create_metric
from evaluation.psnr import psnr_values
from evaluation.ssim import gaussian_kernel_1d, ssim_values

from _metrics_golden import image_sha, load_json, metrics_dir, read_checked, tolerance, within


@pytest.fixture(scope="module")
def pairs(golden_dir):
    mdir = metrics_dir(golden_dir)
    data = load_json(mdir / "psnr_ssim.json")
    sha = image_sha(mdir)
    pred = torch.stack([read_checked(mdir, r["dist"], sha[r["dist"]]) for r in data["rows"]])
    target = torch.stack([read_checked(mdir, r["gt"], sha[r["gt"]]) for r in data["rows"]])
    return mdir, data["rows"], pred, target


SETTINGS = [(0, False), (0, True), (4, False), (4, True)]


@pytest.mark.golden
@pytest.mark.parametrize("crop,y", SETTINGS)
def test_psnr_ssim_match_basicsr(pairs, crop, y):
    mdir, rows, pred, target = pairs
    tag = f"crop{crop}_{'y' if y else 'rgb'}"
    for metric, key in (("psnr", "psnr_db"), ("ssim", "ssim")):
        atol, rtol = tolerance(mdir, key)
        m = create_metric(metric, crop_border=crop, y_channel=y)
        got = m.compute(pred, target)[metric].numpy()
        golden = np.array([r[f"basicsr_{metric}_{tag}"] for r in rows])
        assert got.dtype == np.float64 and got.shape == (len(rows),)
        ok = within(got, golden, atol, rtol)
        assert ok.all(), f"{metric} {tag}: max diff {np.abs(got - golden).max():.3g} > atol {atol}"


@pytest.mark.golden
@pytest.mark.parametrize("crop,y", [(0, False), (4, True)])
def test_torch_implementation_matches_too(pairs, crop, y):
    """The torch path (used on CUDA) checked on the CPU against the same goldens."""
    mdir, rows, pred, target = pairs
    tag = f"crop{crop}_{'y' if y else 'rgb'}"
    got_p = psnr_values(pred[:3], target[:3], crop, y, impl="torch").numpy()
    got_s = ssim_values(pred[:3], target[:3], crop, y, impl="torch").numpy()
    assert within(got_p, [r[f"basicsr_psnr_{tag}"] for r in rows[:3]], *tolerance(mdir, "psnr_db")).all()
    assert within(got_s, [r[f"basicsr_ssim_{tag}"] for r in rows[:3]], *tolerance(mdir, "ssim")).all()


@pytest.mark.golden
def test_ssim_matches_skimage_column(pairs):
    mdir, rows, pred, target = pairs
    atol, rtol = tolerance(mdir, "ssim")
    got = create_metric("ssim").compute(pred, target)["ssim"].numpy()
    assert within(got, [r["skimage_ssim_rgb"] for r in rows], atol, rtol).all()
    got_p = create_metric("psnr").compute(pred, target)["psnr"].numpy()
    assert within(got_p, [r["skimage_psnr_rgb"] for r in rows], *tolerance(mdir, "psnr_db")).all()


@pytest.mark.golden
def test_batch_order_and_symmetry(pairs):
    _, _, pred, target = pairs
    for metric in ("psnr", "ssim"):
        m = create_metric(metric, crop_border=4, y_channel=True)
        batch = m.compute(pred[:3], target[:3])[metric]
        single = torch.cat([m.compute(pred[i:i + 1], target[i:i + 1])[metric] for i in range(3)])
        swapped = m.compute(target[:3], pred[:3])[metric]
        assert torch.equal(batch, single)
        assert torch.allclose(batch, swapped, rtol=0, atol=1e-12)


def test_y_channel_known_values():
    # white -> 235, black -> 16, pure red -> 16 + 65.481 (float32 of the reference computation)
    img = torch.tensor([[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0]], dtype=torch.uint8).T.reshape(1, 3, 1, 4)
    y = rgb_to_y(img).flatten()
    assert y.dtype == torch.float32
    expected = torch.tensor([235.0, 16.0, 81.481, 144.553], dtype=torch.float32)
    assert torch.allclose(y, expected, atol=2e-5)


def test_identical_images_and_known_mse():
    a = torch.full((2, 3, 16, 16), 100, dtype=torch.uint8)
    b = a.clone()
    b[1] += 5  # mse = 25 -> 10 log10(255^2 / 25)
    p = create_metric("psnr").compute(a, b)["psnr"]
    assert torch.isinf(p[0]) and p[0] > 0
    assert abs(float(p[1]) - 10 * np.log10(255.0 ** 2 / 25.0)) < 1e-12
    s = create_metric("ssim").compute(a, a)["ssim"]
    assert torch.allclose(s, torch.ones(2, dtype=torch.float64), atol=1e-12)


def test_gaussian_window_is_opencv_kernel():
    cv2 = pytest.importorskip("cv2")
    g = gaussian_kernel_1d().numpy()
    assert np.allclose(g, cv2.getGaussianKernel(11, 1.5).ravel(), rtol=0, atol=1e-16)


def test_bad_inputs_are_clear_errors():
    m = create_metric("psnr")
    a = torch.zeros((1, 3, 8, 8), dtype=torch.uint8)
    with pytest.raises(ConfigError, match="uint8"):
        m.compute(a.float(), a)
    with pytest.raises(ConfigError, match="shapes differ"):
        m.compute(a, torch.zeros((1, 3, 8, 9), dtype=torch.uint8))
    with pytest.raises(ConfigError, match="reference"):
        m.compute(a, None)
    with pytest.raises(ValueError, match="at least 11x11"):
        create_metric("ssim", crop_border=2).compute(torch.zeros((1, 3, 12, 12), dtype=torch.uint8),
                                                     torch.zeros((1, 3, 12, 12), dtype=torch.uint8))
