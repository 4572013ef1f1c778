"""Blur kernels and the elementary operations (known answers against OpenCV / SciPy / Pillow)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from PIL import Image

from degradations import blur, jpeg, kernels, noise, resize
from degradations.rng import image_rng, seed_sequence

scipy_stats = pytest.importorskip("scipy.stats")
ndimage = pytest.importorskip("scipy.ndimage")


def _grid_points(k):
    ax = np.arange(k) - k // 2
    xx, yy = np.meshgrid(ax, ax)
    return np.stack([xx, yy], axis=-1).astype(np.float64)


ALL_KERNELS = [
    ("iso", lambda: kernels.bivariate_gaussian(21, 2.5)),
    ("aniso", lambda: kernels.bivariate_gaussian(41, 7.0, 1.5, 0.6)),
    ("generalized", lambda: kernels.generalized_gaussian(21, 3.0, 1.0, -1.0, 0.7)),
    ("generalized_iso", lambda: kernels.generalized_gaussian(21, 3.0, None, 0.0, 4.0)),
    ("plateau", lambda: kernels.plateau(21, 2.0, 4.0, 2.0, 1.5)),
    ("cv2", lambda: kernels.gaussian_kernel_cv2(35, 2.0)),
    ("motion", lambda: kernels.motion_kernel(23, 7)),
    ("tiny_sigma", lambda: kernels.bivariate_gaussian(41, 0.1, 0.1, 1.0)),
]


@pytest.mark.parametrize("name,make", ALL_KERNELS, ids=[n for n, _ in ALL_KERNELS])
def test_kernels_sum_to_one_and_are_non_negative(name, make):
    k = make()
    assert k.ndim == 2 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert np.all(k >= 0)
    assert abs(k.sum() - 1.0) < 1e-12


def test_isotropic_gaussian_equals_scipy_pdf_and_cv2_kernel():
    for ksize, sigma in [(41, 3.7), (21, 0.8), (35, 2.0), (7, 1.1)]:
        ours = kernels.bivariate_gaussian(ksize, sigma)
        pdf = scipy_stats.multivariate_normal([0, 0], np.eye(2) * sigma**2).pdf(_grid_points(ksize))
        np.testing.assert_allclose(ours, pdf / pdf.sum(), rtol=1e-10, atol=1e-15)
        g = cv2.getGaussianKernel(ksize, sigma, ktype=cv2.CV_64F)
        np.testing.assert_allclose(ours, g @ g.T, rtol=1e-9, atol=1e-15)


def test_cv2_gaussian_kernel_is_what_gaussianblur_applies():
    for ksize, sigma in [(3, 0.3), (11, 1.5), (35, 2.0)]:
        k = kernels.gaussian_kernel_cv2(ksize, sigma)
        delta = np.zeros((ksize * 3, ksize * 3), np.float64)
        c = (3 * ksize) // 2
        delta[c, c] = 1.0
        response = cv2.GaussianBlur(delta, (ksize, ksize), sigma)
        r = ksize // 2
        np.testing.assert_allclose(response[c - r : c + r + 1, c - r : c + r + 1], k, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("sx,sy,theta", [(2.0, 5.0, 0.3), (6.0, 1.5, -2.0), (3.0, 3.0, 1.0), (4.0, 1.0, math.pi / 2)])
def test_anisotropic_covariance_matches_sigmas_and_angle(sx, sy, theta):
    k = kernels.bivariate_gaussian(61, sx, sy, theta)
    pts = _grid_points(61)
    # exact match with SciPy's density for the requested covariance
    cov = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]) @ np.diag([sx**2, sy**2])
    cov = cov @ np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    pdf = scipy_stats.multivariate_normal([0, 0], cov).pdf(pts)
    np.testing.assert_allclose(k, pdf / pdf.sum(), rtol=1e-9, atol=1e-15)
    # the kernel's second moments are the covariance (61x61 holds > 5 sigma)
    m = np.einsum("ij,ija,ijb->ab", k, pts, pts)
    np.testing.assert_allclose(m, cov, rtol=2e-3, atol=2e-3)
    evals, evecs = np.linalg.eigh(m)
    np.testing.assert_allclose(sorted(np.sqrt(evals)), sorted([sx, sy]), rtol=2e-3)
    if abs(sx - sy) > 0.5:
        major = evecs[:, np.argmax(evals)]
        angle = math.atan2(major[1], major[0])
        want = theta if sx > sy else theta + math.pi / 2
        diff = (angle - want) % math.pi
        assert min(diff, math.pi - diff) < 1e-3


def test_generalized_and_plateau_known_answers():
    np.testing.assert_allclose(kernels.generalized_gaussian(21, 2.0, 3.0, 0.4, 1.0), kernels.bivariate_gaussian(21, 2.0, 3.0, 0.4), rtol=1e-12)
    s, beta = 2.0, 1.5
    p = kernels.plateau(21, s, None, 0.0, beta)
    c = 10
    # ratio between the centre and a pixel at distance 1 along x: 1 / (1 + (1/s^2)^beta)
    assert p[c, c + 1] / p[c, c] == pytest.approx(1.0 / (1.0 + (1.0 / s**2) ** beta), rel=1e-12)
    g = kernels.generalized_gaussian(21, s, None, 0.0, beta)
    assert g[c, c + 2] / g[c, c] == pytest.approx(math.exp(-0.5 * (4.0 / s**2) ** beta), rel=1e-12)


@pytest.mark.parametrize("ksize", [7, 13, 21, 35])
def test_motion_kernels_connected_non_negative_normalised(ksize):
    structure = np.ones((3, 3), int)
    extents = []
    for seed in range(40):
        k = kernels.motion_kernel(ksize, seed)
        assert k.shape == (ksize, ksize)
        assert np.all(k >= 0) and abs(k.sum() - 1.0) < 1e-12
        _, n = ndimage.label(k > 0, structure=structure)
        assert n == 1, f"seed {seed}: support has {n} components"
        ys, xs = np.nonzero(k)
        extents.append(max(xs.max() - xs.min(), ys.max() - ys.min()) + 1)
        np.testing.assert_array_equal(k, kernels.motion_kernel(ksize, seed))  # pure function of the seed
    assert not np.array_equal(kernels.motion_kernel(ksize, 1), kernels.motion_kernel(ksize, 2))
    # trajectories have a real length (not a point), and stay within the grid
    assert min(extents) >= ksize // 2 and max(extents) <= ksize


def test_convolution_and_blur_match_opencv_calls():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    k = kernels.motion_kernel(9, 3)
    np.testing.assert_array_equal(blur.convolve(img, k), cv2.filter2D(img, -1, k))
    delta = np.zeros((5, 5))
    delta[2, 2] = 1
    np.testing.assert_array_equal(blur.convolve(img, delta), img)
    np.testing.assert_array_equal(blur.gaussian_blur_cv2(img, 7, 1.3), cv2.GaussianBlur(img, (7, 7), 1.3))


def test_resize_backends_and_size_rules():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    pil = np.asarray(Image.fromarray(img).resize((20, 27), Image.BICUBIC))
    np.testing.assert_array_equal(resize.resize(img, (20, 27), "pil_bicubic"), pil)
    np.testing.assert_array_equal(resize.resize(img, (20, 27), "cv2_bicubic"), cv2.resize(img, (20, 27), interpolation=cv2.INTER_CUBIC))
    assert not np.array_equal(resize.resize(img, (20, 27), "pil_bicubic"), resize.resize(img, (20, 27), "cv2_bicubic"))
    f = img.astype(np.float32) / 255
    out = resize.resize(f, (20, 27), "pil_bicubic")
    assert out.dtype == np.float32 and out.shape == (27, 20, 3)
    assert resize.downscaled_size(512, 512, 2.5, "dfdnet") == (int(512 / 25.0 * 10.0),) * 2
    assert resize.downscaled_size(512, 512, 3.3, "floordiv") == (int(512 // 3.3),) * 2
    assert resize.downscaled_size(512, 300, 8.0, "floordiv") == (64, 37)
    with pytest.raises(ValueError):
        resize.resize(img, (10, 10), "magic_bicubic")


def test_noise_rules():
    img = np.full((16, 16, 3), 100, np.uint8)
    rng = np.random.default_rng(5)
    out = noise.add_gaussian_noise(img, 5.0, np.random.default_rng(5), rounding="truncate")
    field = rng.standard_normal((16, 16, 3), dtype=np.float32) * np.float32(5.0)
    np.testing.assert_array_equal(out, np.clip(100 + field, 0, 255).astype(np.uint8))
    f = np.full((8, 8, 3), 0.999, np.float32)
    out = noise.add_gaussian_noise(f, 20.0, np.random.default_rng(1))
    assert out.dtype == np.float32 and out.max() <= 1.0 and len(np.unique(out)) > 20  # clipped, not rounded
    gray = noise.add_gaussian_noise(f * 0.5, 10.0, np.random.default_rng(1), gray=True)
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
    # Poisson: BasicSR's formula written out (vals = 2**ceil(log2(#unique values)))
    ramp = np.tile(np.arange(0, 256, 4, dtype=np.uint8)[None, :, None], (8, 1, 3))
    pois = noise.add_poisson_noise(ramp, 0.5, np.random.default_rng(2))
    base = ramp.astype(np.float64) / 255.0
    vals = 2 ** np.ceil(np.log2(len(np.unique(base))))
    diff = (np.random.default_rng(2).poisson(base * vals) / vals - base).astype(np.float32)
    expected = np.rint(np.clip(ramp.astype(np.float32) / 255 + diff * np.float32(0.5), 0, 1) * 255.0).astype(np.uint8)
    np.testing.assert_array_equal(pois, expected)
    assert vals == 64 and not np.array_equal(pois, ramp)


def test_jpeg_matches_opencv_and_channel_quirk():
    rng = np.random.default_rng(3)
    img = cv2.GaussianBlur(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (5, 5), 2)
    ref = cv2.imdecode(cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 50])[1], 1)[:, :, ::-1]
    np.testing.assert_array_equal(jpeg.jpeg_compress(img, 50), ref)
    quirk = cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 50])[1], 1)
    np.testing.assert_array_equal(jpeg.jpeg_compress(img, 50, treat_rgb_as_bgr=True), quirk)
    f = img.astype(np.float32) / 255
    np.testing.assert_array_equal(jpeg.jpeg_compress(f, 50), ref.astype(np.float32) / np.float32(255))
    with pytest.raises(ValueError):
        jpeg.jpeg_compress(img, 101)


def test_rng_is_keyed_by_seed_id_and_stream_only():
    a = image_rng(0, "00005/3", "blur").random(4)
    np.testing.assert_array_equal(a, image_rng(0, "00005/3", "blur").random(4))
    assert not np.array_equal(a, image_rng(1, "00005/3", "blur").random(4))
    assert not np.array_equal(a, image_rng(0, "00005/4", "blur").random(4))
    assert not np.array_equal(a, image_rng(0, "00005/3", "noise").random(4))
    assert not np.array_equal(image_rng(2**40, "x").random(2), image_rng(0, "x").random(2))
    # a known answer: the stream is defined by SHA-256 words, not Python's salted hash()
    assert seed_sequence(0, "a").entropy == seed_sequence(0, "a").entropy
    with pytest.raises(ValueError):
        image_rng(-1, "x")
