"""FFHQ-style alignment and paste-back (celebref.face.align)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from celebref.errors import ConfigError
from celebref.face.align import (
    AlignResult,
    apply_affine,
    ffhq_align,
    ffhq_quad,
    invert_affine,
    paste_back,
    quad_matrix,
)
from celebref.face.landmark_io import read_landmarks
from celebref.imageio import read_image


def _synthetic_landmarks() -> np.ndarray:
    """Eyes centred at (100, 100) and (200, 100), mouth corners (120, 200) and (180, 200)."""
    lm = np.zeros((68, 2))
    lm[:] = (150.0, 150.0)
    lm[36:42] = (100.0, 100.0)
    lm[42:48] = (200.0, 100.0)
    lm[48] = (120.0, 200.0)
    lm[54] = (180.0, 200.0)
    return lm


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]])


def test_quad_known_answer():
    # eye_avg (150,100), eye_to_eye (100,0), eye_to_mouth (0,100): x = (100,0) - (-100,0) = (200,0) normalised and
    # scaled by max(2*100, 1.8*100) = 200; y = (0,200); centre = (150, 110); qsize = 400
    quad, qsize = ffhq_quad(_synthetic_landmarks())
    np.testing.assert_allclose(quad, [[-50, -90], [-50, 310], [350, 310], [350, -90]], atol=1e-12)
    assert qsize == pytest.approx(400.0)


def test_quad_is_similarity_equivariant():
    lm = _synthetic_landmarks() + np.random.default_rng(0).normal(0, 3, (68, 2))
    m = _similarity(23.0, 0.7, 40.0, -15.0)
    q1, s1 = ffhq_quad(lm)
    q2, s2 = ffhq_quad(apply_affine(m, lm))
    np.testing.assert_allclose(q2, apply_affine(m, q1), atol=1e-9)
    assert s2 == pytest.approx(0.7 * s1)


def test_matrix_maps_quad_corners_to_output_edges():
    img = np.full((600, 600, 3), 128, np.uint8)
    lm = _synthetic_landmarks() + 150
    r = ffhq_align(img, lm, output_size=256)
    # quad corners are the outer pixel edges of the output: (-0.5, -0.5) ... (255.5, 255.5)
    expected = np.array([[-0.5, -0.5], [-0.5, 255.5], [255.5, 255.5], [255.5, -0.5]])
    np.testing.assert_allclose(apply_affine(r.matrix, r.quad), expected, atol=1e-9)
    np.testing.assert_allclose(apply_affine(r.inverse, expected), r.quad, atol=1e-9)
    np.testing.assert_allclose(invert_affine(r.inverse), r.matrix, atol=1e-12)


def test_bad_landmarks_are_typed_errors():
    img = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ConfigError, match="68 landmarks"):
        ffhq_align(img, np.zeros((5, 2)))
    bad = _synthetic_landmarks()
    bad[3, 0] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        ffhq_align(img, bad)


def test_padding_recorded_only_when_needed():
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    lm = _synthetic_landmarks() + 350  # quad spans 300..700: inside with a wide margin
    inside = ffhq_align(big, lm, output_size=128)
    assert not inside.padded and inside.pad == (0, 0, 0, 0)
    edge = ffhq_align(big, _synthetic_landmarks() + 20, output_size=128)  # quad leaves the photo on the left/top
    qsize = 400.0
    assert edge.padded
    assert min(edge.pad) >= int(np.rint(0.3 * qsize))
    nopad = ffhq_align(big, _synthetic_landmarks() + 20, output_size=128, enable_padding=False)
    assert not nopad.padded
    # without padding the region outside the photo is black; with padding it is filled
    assert (nopad.image[:4, :4] == 0).all()
    assert edge.image[:4, :4].mean() > 5


def test_deterministic():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (700, 650, 3), dtype=np.uint8)
    lm = apply_affine(_similarity(10, 1.3, 100, 80), _synthetic_landmarks())
    a = ffhq_align(img, lm, 256)
    b = ffhq_align(img, lm, 256)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.to_dict() == b.to_dict()


@pytest.fixture(scope="module")
def mini_faces(mini_dir):
    """(path, image, landmarks) for every hq face of celebref-mini."""
    import csv

    rows = []
    with open(mini_dir / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["kind"] == "hq":
                rows.append((row["path"], read_image(mini_dir / row["path"]), read_landmarks(mini_dir / row["landmarks"])))
    assert rows, "manifest lists no hq images"
    return rows


def test_aligned_face_realigns_to_near_identity(mini_faces):
    """Tolerance: the mini faces are already FFHQ-style aligned at 512, so re-aligning them from their FAN
    landmarks must give nearly the identity map: for at least 95 % of faces scale within 1 +- 0.06, rotation
    within 4 degrees and the centre moved by at most 12 px (2.3 % of the side); medians within 2 %, 0.5 degrees
    and 3 px. (One face, 00082/2.png, has landmarks that give a 20 % smaller quad.)"""
    scales, angles, shifts = [], [], []
    for _, img, lm in mini_faces:
        quad, _ = ffhq_quad(lm)
        m = invert_affine(quad_matrix(quad, img.shape[0]))  # = ffhq_align(...).matrix, without rendering 76 faces
        size = img.shape[0]
        scales.append(math.sqrt(abs(np.linalg.det(m[:, :2]))))
        angles.append(math.degrees(math.atan2(m[1, 0], m[0, 0])))
        centre = (size - 1) / 2
        shifts.append(float(np.hypot(*(apply_affine(m, [[centre, centre]])[0] - centre))))
    scales, angles, shifts = map(np.array, (scales, angles, shifts))
    ok = (np.abs(scales - 1) <= 0.06) & (np.abs(angles) <= 4.0) & (shifts <= 12.0)
    assert ok.mean() >= 0.95, f"{(~ok).sum()} of {len(ok)} faces far from identity"
    assert abs(np.median(scales) - 1) <= 0.02
    assert abs(np.median(angles)) <= 0.5
    assert np.median(shifts) <= 3.0


def test_align_result_matches_quad_on_real_face(mini_faces):
    _, img, lm = mini_faces[0]
    r = ffhq_align(img, lm, 512)
    assert isinstance(r, AlignResult) and r.image.shape == (512, 512, 3) and r.image.dtype == np.uint8
    # an aligned face re-aligned: quad touches the photo's edges, so FFHQ's reflect padding kicks in
    assert r.padded
    np.testing.assert_allclose(r.matrix, invert_affine(quad_matrix(ffhq_quad(lm)[0], 512)), atol=1e-12)
    # centre of the output samples the photo's centre region: close pixels
    c = slice(160, 352)
    assert np.abs(r.image[c, c].astype(int) - img[c, c].astype(int)).mean() < 20


def test_unaligned_photo_aligns_back_and_pastes_back(mini_faces):
    """Known answer: put an aligned face into a bigger photo by a known similarity; aligning the photo with the
    moved landmarks must give the same transform (to 1e-9) and nearly the same face; paste_back restores the
    photo under the face and leaves the rest untouched."""
    _, img, lm = mini_faces[1]
    m = _similarity(18.0, 0.8, 260.0, 90.0)
    photo = cv2.warpAffine(img, m, (900, 760), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    lm_photo = apply_affine(m, lm)
    ref = ffhq_align(img, lm, 256)
    got = ffhq_align(photo, lm_photo, 256)
    m_full = np.vstack([m, [0, 0, 1]])
    np.testing.assert_allclose(got.matrix, (np.vstack([ref.matrix, [0, 0, 1]]) @ np.linalg.inv(m_full))[:2], atol=1e-9)
    c = slice(48, 208)
    diff = got.image[c, c].astype(float) - ref.image[c, c].astype(float)
    psnr = 10 * math.log10(255.0**2 / np.mean(diff**2))
    assert psnr > 25.0, psnr

    # paste back a modified face (+40 brightness) at a different size (512): only the face region changes
    brighter = np.clip(got.image.astype(int) + 40, 0, 255).astype(np.uint8)
    brighter512 = cv2.resize(brighter, (512, 512), interpolation=cv2.INTER_LINEAR)
    out = paste_back(photo, brighter512, got)
    assert out.shape == photo.shape and out.dtype == np.uint8
    inner = apply_affine(got.inverse, [[128 - 0.5, 128 - 0.5]])[0].round().astype(int)  # face centre in the photo
    y, x = inner[1], inner[0]
    patch = (out[y - 20 : y + 20, x - 20 : x + 20].astype(int) - photo[y - 20 : y + 20, x - 20 : x + 20].astype(int))
    assert 30 < patch.mean() <= 40
    # far outside the quad the photo is unchanged, exactly
    xs, ys = got.quad[:, 0], got.quad[:, 1]
    outside = np.ones(photo.shape[:2], bool)
    outside[max(int(ys.min()) - 2, 0) : int(ys.max()) + 3, max(int(xs.min()) - 2, 0) : int(xs.max()) + 3] = False
    assert outside.any()
    assert (out[outside] == photo[outside]).all()
    # unchanged face pasted back: photo nearly restored inside the face
    same = paste_back(photo, got.image, got)
    assert np.abs(same[y - 40 : y + 40, x - 40 : x + 40].astype(int) - photo[y - 40 : y + 40, x - 40 : x + 40]).mean() < 3.0


def test_paste_back_checks_inputs():
    photo = np.zeros((100, 100, 3), np.uint8)
    with pytest.raises(ConfigError, match="square"):
        paste_back(photo, np.zeros((64, 32, 3), np.uint8), np.eye(2, 3))
    with pytest.raises(ConfigError, match="2x3"):
        paste_back(photo, np.zeros((64, 64, 3), np.uint8), np.eye(3))
