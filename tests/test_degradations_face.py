"""Degradations of a real face (../shared/fixtures/celebref-mini), checked step by step against
references computed here with the OpenCV / Pillow / NumPy calls written out."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from celebref.imageio import read_image
from degradations.kernels import motion_kernel
from degradations.presets import get_preset
from degradations.synthesize import Job, synthesize


@pytest.fixture(scope="module")
def face(mini_dir):
    return read_image(mini_dir / "hq" / "00005" / "0.png")


def _noise_rng(params):
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(params["noise_seed"]))))


def test_fixed_degradation_of_a_real_face_step_by_step(face):
    pipe, overrides = get_preset("fixed", blur=2.0, scale=4.0, noise=5.0, jpeg=60)
    params = pipe.sample(0, "00005/0", overrides)
    trace: list = []
    lq = pipe.apply(face, params, trace=trace)
    assert [op for op, _ in trace] == ["blur", "downsample", "noise", "jpeg", "upsample"]
    steps = dict(trace)

    x = face.astype(np.float32) / np.float32(255.0)
    x = cv2.GaussianBlur(x, (13, 13), 2.0)                        # ksize 2 * ceil(3 * 2) + 1
    np.testing.assert_array_equal(steps["blur"], x)
    x = cv2.resize(x, (128, 128), interpolation=cv2.INTER_LINEAR)  # int(512 // 4)
    np.testing.assert_array_equal(steps["downsample"], x)
    n = _noise_rng(params).standard_normal((128, 128, 3), dtype=np.float32) * np.float32(5.0) / np.float32(255.0)
    x = np.clip(x + n, 0, 1)                                        # clipped, not rounded
    np.testing.assert_array_equal(steps["noise"], x)
    assert len(np.unique(np.round(x * 255, 3))) > 256
    u8 = np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)
    _, enc = cv2.imencode(".jpg", np.ascontiguousarray(u8[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 60])
    x = cv2.imdecode(enc, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / np.float32(255.0)
    np.testing.assert_array_equal(steps["jpeg"], x)
    x = cv2.resize(x, (512, 512), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(steps["upsample"], x)
    expected = np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(lq, expected)
    # sanity of the result itself: a degraded but recognisable image
    mse = np.mean((lq.astype(np.float64) - face) ** 2)
    psnr = 10 * np.log10(255.0**2 / mse)
    assert 18 < psnr < 32, psnr


def _find(pipe, kind: str):
    for i in range(2000):
        p = pipe.sample(0, f"probe{i}")
        if p["blur_kernel"] == kind and p["scale_applied"] and p["noise_applied"] and p["jpeg_applied"]:
            return p
    raise AssertionError("no draw with every step applied")


@pytest.mark.parametrize("kind", ["motion", "gaussian"])
def test_dfdnet_preset_on_a_real_face_step_by_step(face, kind):
    pipe, _ = get_preset("dfdnet")
    params = _find(pipe, kind)
    trace: list = []
    lq = pipe.apply(face, params, trace=trace)
    steps = dict(trace)
    assert list(steps) == ["blur", "downsample", "noise", "jpeg", "upsample"]

    ksize = int(params["blur_ksize"])
    if kind == "motion":
        k = motion_kernel(ksize, int(params["blur_motion_seed"])).astype(np.float32)
        k /= np.sum(k)
        x = cv2.filter2D(face, -1, k)
    else:
        x = cv2.GaussianBlur(face, (ksize, ksize), params["blur_sigma"])
    np.testing.assert_array_equal(steps["blur"], x)
    sampler = round(params["scale"] * 10)
    side = int(512 / float(sampler) * 10.0)
    x = np.asarray(Image.fromarray(x).resize((side, side), Image.BICUBIC))
    np.testing.assert_array_equal(steps["downsample"], x)
    n = _noise_rng(params).standard_normal(x.shape, dtype=np.float32) * np.float32(params["noise_sigma"])
    x = np.uint8(np.clip(x.astype(np.float32) + n, 0, 255))       # torch.clamp then np.uint8: truncation
    np.testing.assert_array_equal(steps["noise"], x)
    _, enc = cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, int(params["jpeg_quality"])])  # RGB handed over as is
    x = cv2.imdecode(enc, 1)
    np.testing.assert_array_equal(steps["jpeg"], x)
    x = np.asarray(Image.fromarray(x).resize((512, 512), Image.BICUBIC))
    np.testing.assert_array_equal(lq, x)


def test_gfpgan_preset_on_a_real_face_step_by_step(face):
    from degradations.kernels import bivariate_gaussian

    pipe, _ = get_preset("gfpgan")
    params = next(p for p in (pipe.sample(0, f"g{i}") for i in range(50)) if p["blur_kernel"] == "aniso")
    trace: list = []
    lq = pipe.apply(face, params, trace=trace)
    steps = dict(trace)
    x = face.astype(np.float32) / np.float32(255.0)
    k = bivariate_gaussian(41, params["blur_sigma_x"], params["blur_sigma_y"], params["blur_angle"])
    x = cv2.filter2D(x, -1, k)
    np.testing.assert_array_equal(steps["blur"], x)
    side = int(512 // params["scale"])
    x = cv2.resize(x, (side, side), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(steps["downsample"], x)
    x = np.clip(x + _noise_rng(params).standard_normal(x.shape, dtype=np.float32) * np.float32(params["noise_sigma"]) / np.float32(255.0), 0, 1)
    np.testing.assert_array_equal(steps["noise"], x)
    u8 = np.rint(x * 255).astype(np.uint8)
    _, enc = cv2.imencode(".jpg", np.ascontiguousarray(u8[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(params["jpeg_quality"])])
    x = cv2.imdecode(enc, 1)[:, :, ::-1].astype(np.float32) / np.float32(255.0)
    np.testing.assert_array_equal(steps["jpeg"], x)
    x = cv2.resize(x, (512, 512), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(lq, np.clip(np.rint(x * 255), 0, 255).astype(np.uint8))


def test_mini_layout_gives_specific_lists_without_the_own_image(mini_dir, tmp_path):
    from celebref.testset import read_hq_set

    inputs = read_hq_set(mini_dir)
    inputs.items = [i for i in inputs.items if i.identity in ("00075", "00086")]  # keep it small
    pipe, overrides = get_preset("dfdnet")
    df = synthesize(inputs, tmp_path / "out", Job(pipe, "dfdnet", 0, overrides), workers=1, refs="copy")
    assert (df["status"] == "ok").all() and len(df) == 10 + 11
    lines = (tmp_path / "out" / "SpecificLists.txt").read_text().splitlines()
    assert len(lines) == 21
    lq, ref_dir, lm_dir = lines[0].split("\t")
    assert lq == "lq/00075/0.png" and ref_dir == "refs/00075/0/images"
    refs = sorted((tmp_path / "out" / ref_dir).iterdir())
    assert "0.png" not in [p.name for p in refs] and len(refs) == 9
    assert sorted(p.name for p in (tmp_path / "out" / lm_dir).iterdir()) == sorted(f"{p.name}.txt" for p in refs)
