"""Whole-photo restoration: FFHQ 5-point template (facexlib), the shared paste-back, round trips on photos composed
from the real celebref-mini faces and on scikit-image's astronaut, the seam check, and the orchestration
(``celebref restore --whole-photo``) with its faces table."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from celebref.face import backend_status
from celebref.face.paste import face_to_canvas_matrix, paste_faces, resize_background, soft_mask
from celebref.face.templates import FFHQ5_BORDER_RGB, FFHQ5_TEMPLATE_512, ffhq5_align, ffhq5_matrix, ffhq5_template
from celebref.imageio import read_image, write_image

ROOT = Path(__file__).resolve().parents[1]
MINI = Path(os.environ.get("CELEBREF_MINI_DIR", ROOT.parent / "shared" / "fixtures" / "celebref-mini"))
GOLDEN = Path(os.environ.get("CELEBREF_GOLDEN_DIR", ROOT.parent / "shared" / "golden"))
ALIGNMENTS = ("ffhq5", "ffhq68", "dfdnet")

needs_mini = pytest.mark.skipif(not (MINI / "hq").is_dir(), reason=f"celebref-mini fixture not found at {MINI}")
needs_dlib = pytest.mark.skipif(backend_status()["dlib"] != "ok", reason="the dlib face-analysis backend cannot run here")


# -- FFHQ 5-point template (facexlib) -------------------------------------------------------------------
def test_ffhq5_template_is_facexlibs():
    # facexlib/utils/face_restoration_helper.py, FaceRestoreHelper.__init__ (template_3points=False), face_size=512
    facexlib = [[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                [201.26117, 371.41043], [313.08905, 371.15118]]
    np.testing.assert_array_equal(FFHQ5_TEMPLATE_512, np.array(facexlib))
    np.testing.assert_array_equal(ffhq5_template(256), np.array(facexlib) * 0.5)  # face_template * (face_size / 512)
    assert FFHQ5_BORDER_RGB == (132, 133, 135)  # facexlib's grey (135, 133, 132) is BGR


def test_ffhq5_matrix_is_lmeds_partial_affine():
    """Points that are an exact similarity image of the template give back that similarity's inverse; noisy points
    give exactly what cv2.estimateAffinePartial2D(..., method=cv2.LMEDS) gives (the facexlib call)."""
    a, s, t = np.deg2rad(12.0), 0.45, np.array([310.0, 95.0])
    rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = FFHQ5_TEMPLATE_512 @ rot.T + t
    m = ffhq5_matrix(pts)
    np.testing.assert_allclose(pts @ m[:, :2].T + m[:, 2], FFHQ5_TEMPLATE_512, atol=1e-6)
    noisy = pts + np.random.default_rng(0).normal(0, 1.5, pts.shape)
    ref, _ = cv2.estimateAffinePartial2D(noisy, FFHQ5_TEMPLATE_512, method=cv2.LMEDS)
    np.testing.assert_array_equal(ffhq5_matrix(noisy), ref)
    img = np.full((200, 300, 3), 200, np.uint8)
    crop, _ = ffhq5_align(img, pts)
    assert crop.shape == (512, 512, 3) and tuple(crop[0, 0]) == FFHQ5_BORDER_RGB  # the photo ends: facexlib's grey
    with pytest.raises(Exception, match="degenerate|points5"):
        ffhq5_matrix(np.zeros((5, 2)))


# -- the paste-back against DFDNet's official reverse_align ------------------------------------------------
@pytest.fixture(scope="module")
def dfdnet_golden():
    path = GOLDEN / "dfdnet" / "alignment.npz"
    if not path.is_file():
        pytest.skip(f"DFDNet alignment golden not found at {path}")
    return np.load(path)


def _lm68_with(points5_dlib_order: np.ndarray) -> np.ndarray:
    lm = np.zeros((68, 2))
    lm[[45, 42, 36, 39, 33]] = points5_dlib_order  # DFDNet's five points (baselines.dfdnet.align.FIVE_FROM_68)
    return lm


def test_dfdnet_alignment_in_whole_photo_matches_golden(dfdnet_golden):
    from celebref.app.whole_photo import align

    z = dfdnet_golden
    crop, m = align("dfdnet", z["whole_uint8"], None, _lm68_with(z["whole_source_5pts"]))
    np.testing.assert_allclose(m, z["whole_M"], rtol=1e-9, atol=1e-9)
    assert np.abs(crop.astype(np.int16) - z["whole_crop_uint8"]).max() <= 1


@pytest.mark.parametrize("upscale", [1, 2])
def test_shared_paste_matches_dfdnet_official(dfdnet_golden, upscale):
    """Same inverse matrix, same mask maths: the shared paste equals DFDNet's official reverse_align up to its
    truncation (we round) -- at most 1 grey level, except a few pixels where OpenCV's fixed-point warp of our
    face-sized region differs from the full canvas's."""
    from baselines.dfdnet import align as dfd

    z = dfdnet_golden
    img, pts = z["whole_uint8"], z["whole_source_5pts"]
    crop, _ = dfd.align_face(img, pts)
    face = np.ascontiguousarray(cv2.GaussianBlur(crop, (0, 0), 2.0))  # a "restored" face that differs from the crop
    inv = dfd.inverse_matrix(pts, upscale, savetxt_rounding=False)
    official = dfd.paste_back(img, face, inv, upscale)
    ours, placed = paste_faces(cv2.resize(img, (img.shape[1] * upscale, img.shape[0] * upscale)), [face], [inv], upscale)
    diff = np.abs(ours.astype(np.int16) - official)
    assert diff.max() <= 2 and (diff <= 1).mean() > 0.9999
    assert placed[0].w_edge == int(float((cv2.erode(cv2.warpAffine(np.ones((512, 512), np.float32), inv, ours.shape[1::-1]),
                                                    np.ones((2 * upscale, 2 * upscale), np.uint8))).sum()) ** 0.5) // 20


def test_face_to_canvas_matrix_pixel_centres():
    m = np.array([[2.0, 0.0, -10.0], [0.0, 2.0, -30.0]])  # photo -> crop (crop = 2x zoom)
    inv = face_to_canvas_matrix(m, 512, 512, 1)
    np.testing.assert_allclose(inv @ [100.0, 50.0, 1.0], [55.0, 40.0])
    inv3 = face_to_canvas_matrix(m, 512, 1024, 3)  # a face returned at twice the crop size, canvas upscaled 3x
    crop_pt = np.array([100.0, 50.0])
    face_pt = 2 * crop_pt + 0.5  # pixel-centre rescale 512 -> 1024
    photo_pt = np.array([55.0, 40.0])
    np.testing.assert_allclose(inv3 @ [*face_pt, 1.0], 3 * photo_pt + 1.0)
    bg = resize_background(np.zeros((10, 20, 3), np.uint8), 3)
    assert bg.shape == (30, 60, 3)


# -- photos built from the real faces ---------------------------------------------------------------------
LAYOUTS = {  # canvas (h, w), face placements (x, y, side): faces of different sizes, two overlapping crops
    1: ((480, 640), [(200, 110, 240)]),
    2: ((480, 800), [(60, 120, 260), (430, 100, 200)]),
    4: ((768, 1024), [(20, 100, 230), (270, 400, 230), (520, 60, 200), (780, 420, 220)]),
}


def _background(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 40, (h, w, 3)).astype(np.float32), (0, 0), 3.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([90 + 60 * xx / w, 110 + 50 * yy / h, 140 - 40 * xx / w], -1)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def compose(n: int) -> np.ndarray:
    """A photo with ``n`` real celebref-mini faces (different identities) on a textured background."""
    (h, w), places = LAYOUTS[n]
    img = _background(h, w, n)
    idents = sorted(p.name for p in (MINI / "hq").iterdir() if p.is_dir())
    for (x, y, side), ident in zip(places, idents):
        face = read_image(sorted((MINI / "hq" / ident).glob("*.png"))[1])
        img[y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    return img


def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="module")
def analysed():
    """``{name: (photo, [(points5, landmarks68)])}`` for the test photos, detected once with dlib."""
    if backend_status()["dlib"] != "ok" or not (MINI / "hq").is_dir():
        pytest.skip("needs the dlib backend and the celebref-mini fixture")
    from celebref.face import get_backend

    be = get_backend("dlib")
    out = {}
    for name, img in [("1-face", compose(1)), ("2-face", compose(2)), ("4-face", compose(4)), ("astronaut", astronaut())]:
        dets = be.detect(img)
        out[name] = (img, [(d.points5, be.landmarks68(img, d)) for d in dets])
    return out


def test_detects_every_composed_face(analysed):
    for name, n in (("1-face", 1), ("2-face", 2), ("4-face", 4), ("astronaut", 1)):
        assert len(analysed[name][1]) == n, name


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.mark.parametrize("kind", ALIGNMENTS)
@pytest.mark.parametrize("name", ["1-face", "2-face", "4-face", "astronaut"])
def test_round_trip_reproduces_the_photo(analysed, name, kind):
    """Align every face, paste the unmodified crops back: >= 40 dB inside each face's mask, identical outside."""
    from celebref.app.whole_photo import align

    img, faces = analysed[name]
    crops, mats = [], []
    for p5, lm in faces:
        crop, m = align(kind, img, p5, lm, 512)
        crops.append(crop)
        mats.append(face_to_canvas_matrix(m, 512, 512, 1))
    out, placed = paste_faces(img, crops, mats, 1)
    union = np.zeros(img.shape[:2], bool)
    for pl in placed:
        inside = pl.full(img.shape[:2]) > 0
        union |= inside
        assert inside.sum() > 5000
        assert _psnr(out[inside], img[inside]) >= 40.0, (name, kind)
    np.testing.assert_array_equal(out[~union], img[~union])


# -- seam check -------------------------------------------------------------------------------------------
def _grad(img: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3))


def _changed(crop: np.ndarray, how: str) -> np.ndarray:
    if how == "blur":
        return cv2.GaussianBlur(crop, (0, 0), 1.5)
    if how == "sharpen":
        return cv2.addWeighted(crop, 1.6, cv2.GaussianBlur(crop, (0, 0), 2.0), -0.6, 0)
    if how == "bicubic":  # what the `bicubic` baseline makes of a 4x downscaled face
        return cv2.resize(cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA), (512, 512), interpolation=cv2.INTER_CUBIC)
    return np.clip(crop.astype(np.int16) + 30, 0, 255).astype(np.uint8)  # "brighter"


def _border_ratio(img, pasted, band) -> float:
    return float(_grad(pasted)[band].mean() / _grad(img)[band].mean())


@pytest.mark.parametrize("how", ["blur", "sharpen", "bicubic"])
@pytest.mark.parametrize("name", ["2-face", "4-face", "astronaut"])
def test_no_seam_along_the_mask_border(analysed, name, how):
    """Along the border of the pasted mask (the feathered band, 0.01 < soft mask < 0.99, where the restored face
    fades into the photo) the result has no gradient a seam would add:

    * its mean gradient magnitude is at most 10% above the photo's own there (a seam adds gradient; a blurring
      method legitimately lowers it, so that side is not bounded against the photo alone), and
    * it is within 10% of the gradient statistics the two joined images have there on their own (the photo's and
      the warped restored face's, weighted by the mask): no excess and no loss from the blending itself.

    A hard paste of the same face with a +30 brightness change, cut along the middle of that band, fails both."""
    from celebref.app.whole_photo import align

    img, faces = analysed[name]
    h, w = img.shape[:2]
    for p5, lm in faces:
        crop, m = align("ffhq5", img, p5, lm, 512)
        inv = face_to_canvas_matrix(m, 512, 512, 1)
        face = _changed(crop, how)
        out, placed = paste_faces(img, [face], [inv], 1)
        soft = placed[0].full(img.shape[:2])
        band = (soft > 0.01) & (soft < 0.99)
        assert band.sum() > 500
        joined = soft * _grad(cv2.warpAffine(face, inv, (w, h))) + (1 - soft) * _grad(img)
        g_out, g_img = _grad(out)[band].mean(), _grad(img)[band].mean()
        assert g_out <= 1.10 * g_img, (name, how, g_out / g_img)
        assert abs(g_out / joined[band].mean() - 1.0) <= 0.10, (name, how, g_out / joined[band].mean())
        # the middle of the band (where a hard cut would run) too, and the negative control: a hard cut there with
        # a colour change is a seam, which the same check sees
        mid = (soft > 0.3) & (soft < 0.7)
        assert _grad(out)[mid].mean() <= 1.10 * _grad(img)[mid].mean(), (name, how)
        seam = np.where((soft > 0.5)[:, :, None], cv2.warpAffine(_changed(crop, "brighter"), inv, (w, h)), img)
        assert _grad(seam)[mid].mean() > 1.10 * _grad(img)[mid].mean()


# -- the orchestration ------------------------------------------------------------------------------------
def _square_masks(df: pd.DataFrame, shape: tuple[int, int], upscale: int = 1) -> np.ndarray:
    """Union of the canvas areas the faces' 512 crops cover (their matrices from the faces table), dilated 2 px."""
    union = np.zeros(shape, np.uint8)
    for mat in df["matrix"]:
        if isinstance(mat, str) and mat:
            inv = face_to_canvas_matrix(np.array(json.loads(mat)), 512, 512, upscale)
            union |= (cv2.warpAffine(np.ones((512, 512), np.float32), inv, shape[::-1]) > 0).astype(np.uint8)
    return cv2.dilate(union, np.ones((5, 5), np.uint8)) > 0


@needs_mini
@needs_dlib
def test_restore_whole_photo_command(tmp_path):
    from celebref.app.cli import main
    from celebref.tabular import read_table

    src = tmp_path / "photos"
    two, empty = compose(2), _background(300, 400, 7)
    write_image(src / "two.png", two)
    write_image(src / "empty.png", empty)
    (src / "broken.png").write_bytes(b"this is not a png")
    out = tmp_path / "out"
    argv = ["restore", "--whole-photo", "--methods", "lq", "--input", str(src), "--out", str(out), "--device", "cpu"]
    assert main(argv) == 3  # a photo without faces and an unreadable file: finished, not everything done
    df = read_table(out / "faces.csv")
    by_photo = {p: g for p, g in df.groupby("photo")}
    assert set(by_photo) == {"two", "empty", "broken"}  # every input accounted for
    assert by_photo["broken"]["status"].tolist() == ["error"] and by_photo["broken"]["output_path"].isna().all()
    assert by_photo["empty"]["status"].tolist() == ["no_face"] and by_photo["empty"]["reason"].iloc[0] == "no face detected"
    np.testing.assert_array_equal(read_image(out / "lq" / "empty.png"), empty)  # still written
    assert not (out / "lq" / "broken.png").exists()
    faces = by_photo["two"].sort_values("face")
    assert faces["status"].tolist() == ["ok", "ok"] and faces["alignment"].tolist() == ["ffhq5", "ffhq5"]
    areas = ((faces["x2"] - faces["x1"]) * (faces["y2"] - faces["y1"])).to_numpy()
    assert faces["paste_order"].tolist() == list(np.argsort(np.argsort(areas)))  # largest last
    for _, r in faces.iterrows():
        assert len(json.loads(r["points5"])) == 5 and len(json.loads(r["landmarks68"])) == 68
        crop_in, crop_out = read_image(out / r["input_path"]), read_image(out / r["restored_path"])
        np.testing.assert_array_equal(crop_in, crop_out)  # lq returns its input
    # lq through the whole pipeline is the round trip: identical outside the crops, >= 40 dB inside the boxes
    restored = read_image(out / "lq" / "two.png")
    squares = _square_masks(faces, two.shape[:2])
    np.testing.assert_array_equal(restored[~squares], two[~squares])
    for _, r in faces.iterrows():
        box = (slice(int(r["y1"]), int(r["y2"])), slice(int(r["x1"]), int(r["x2"])))
        assert _psnr(restored[box], two[box]) >= 40.0
    # a rerun resumes: nothing is redone
    stamp = (out / "lq" / "two.png").stat().st_mtime_ns
    assert main(argv) == 3
    assert (out / "lq" / "two.png").stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(read_table(out / "faces.csv"), df)


@needs_mini
@needs_dlib
def test_runner_upscale_filters_and_per_method_alignment(tmp_path):
    from baselines.classical import LQMethod
    from celebref.app.whole_photo import WholePhotoRunner, collect_photos

    class LQ68(LQMethod):  # the same identity method, declaring DMDNet's alignment
        name = "lq68"
        alignment = "ffhq68"

    two = compose(2)
    write_image(tmp_path / "in" / "two.png", two)
    photos = collect_photos(tmp_path / "in")
    assert photos == [("two", str(tmp_path / "in" / "two.png"), "")]
    runner = WholePhotoRunner(tmp_path / "out", [LQMethod(), LQ68()], upscale=2, min_face_size=136, batch_size=2)
    df = runner.run(photos)
    for label, kind in (("lq", "ffhq5"), ("lq68", "ffhq68")):
        g = df[df["method"] == label].sort_values("face")
        assert (g["alignment"] == kind).all()
        sides = np.minimum(g["x2"] - g["x1"], g["y2"] - g["y1"]).to_numpy()
        assert sorted(g["status"]) == ["ok", "too_small"]
        assert (g["status"] == "too_small").tolist() == (sides < 136).tolist()
        assert (g.loc[g["status"] == "too_small", "paste_order"] == -1).all()
        restored = read_image(tmp_path / "out" / label / "two.png")
        assert restored.shape == (two.shape[0] * 2, two.shape[1] * 2, 3)
        bg = resize_background(two, 2)
        squares = _square_masks(g, bg.shape[:2], upscale=2)
        np.testing.assert_array_equal(restored[~squares], bg[~squares])
        ok = g[g["status"] == "ok"].iloc[0]
        box = (slice(int(ok["y1"]) * 2, int(ok["y2"]) * 2), slice(int(ok["x1"]) * 2, int(ok["x2"]) * 2))
        assert _psnr(restored[box], bg[box]) >= 35.0  # the crop is a 2x-upscaled face pasted on a 2x bilinear photo
    center = WholePhotoRunner(tmp_path / "center", [LQMethod()], only_center_face=True).run(photos)
    assert sorted(center["status"]) == ["not_center", "ok"]
    h, w = two.shape[:2]
    dist = np.hypot((center["x1"] + center["x2"]) / 2 - w / 2, (center["y1"] + center["y2"]) / 2 - h / 2)
    assert center.loc[dist.idxmin(), "status"] == "ok"


def test_overlaps_and_paste_order_cover():
    """Later faces cover earlier ones: the face pasted last wins where both masks are full."""
    from celebref.app.whole_photo import Face, _overlaps

    a, b, c = Face(0, (0, 0, 10, 10), 1.0), Face(1, (5, 5, 20, 20), 1.0), Face(2, (30, 30, 40, 40), 1.0)
    assert _overlaps([a, b, c]) == {0: [1], 1: [0], 2: []}
    bg = np.zeros((200, 200, 3), np.uint8)
    m = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    red, blue = np.zeros((120, 120, 3), np.uint8), np.zeros((120, 120, 3), np.uint8)
    red[..., 0], blue[..., 2] = 255, 255
    shift = np.array([[1.0, 0.0, 40.0], [0.0, 1.0, 40.0]])
    out, placed = paste_faces(bg, [red, blue], [m, shift])
    assert tuple(out[90, 90]) == (0, 0, 255) and tuple(out[30, 30]) == (255, 0, 0) and tuple(out[190, 5]) == (0, 0, 0)
    soft, inner, w_edge = soft_mask(m, (120, 120), (200, 200))
    assert w_edge == 120 // 20 and soft.max() == pytest.approx(1.0) and soft[199, 199] == 0.0


# -- degrade / evaluate on whole photos -------------------------------------------------------------------
@needs_mini
@needs_dlib
def test_degrade_and_evaluate_whole_photos(tmp_path, monkeypatch):
    from celebref.app.cli import main
    from celebref.tabular import read_table

    src = tmp_path / "photos"
    photos = {"one": compose(1), "two": compose(2)}
    for k, v in photos.items():
        write_image(src / f"{k}.png", v)
    runs = []
    for name in ("a", "b"):
        out = tmp_path / f"deg-{name}"
        assert main(["degrade", "--whole-photo", "--preset", "gfpgan", "--seed", "3", "--input", str(src), "--out", str(out)]) == 0
        runs.append(out)
    for k, v in photos.items():
        lq = read_image(runs[0] / "lq" / f"{k}.png")
        assert lq.shape == v.shape and not np.array_equal(lq, v)  # the photo's size, degraded
        assert (runs[0] / "lq" / f"{k}.png").read_bytes() == (runs[1] / "lq" / f"{k}.png").read_bytes()  # seeded
    assert not (runs[0] / "refs").exists()
    assert main(["degrade", "--whole-photo", "--lq-size", "512", "--input", str(src), "--out", str(tmp_path / "sq")]) == 2

    params = GOLDEN / "metrics" / "niqe" / "niqe_pris_params.npz"
    if not params.is_file():
        pytest.skip(f"NIQE parameters not found at {params}")
    from celebref.weights import env_var
    from evaluation.niqe import NIQE
    import torch

    monkeypatch.setenv(env_var("niqe-params"), str(params))
    ev = tmp_path / "eval"
    code = main(["evaluate", "--whole-photo", "--data", str(runs[0]), "--methods", "lq", "--out", str(ev), "--device", "cpu"])
    df = read_table(ev / "per_image.csv")
    faces = read_table(ev / "photos" / "faces.csv")
    lq_faces = faces[(faces["method"] == "lq") & (faces["face"] >= 0) & (faces["input_path"].fillna("") != "")]
    expected_ids = {f"{p}_face{k}" for p, k in zip(lq_faces["photo"], lq_faces["face"])}
    expected_ids |= {p for p in photos if p not in set(lq_faces["photo"])}  # a photo without a face: one failed row
    assert set(df["id"]) == expected_ids and set(df["method"]) == {"lq"}
    assert code == (0 if (df["status"] == "ok").all() else 3)
    assert (df.loc[df["status"] != "ok", "reason"].fillna("") != "").all()  # never a failure without a reason
    direct = NIQE(params=str(params))
    for _, r in df[df["status"] == "ok"].iterrows():  # NIQE of each face's aligned input crop, as the metric computes it
        crop = read_image(r["lq_path"])
        expected = float(direct.compute(torch.from_numpy(crop.transpose(2, 0, 1)[None].copy()))["niqe"][0])
        assert r["niqe"] == expected
    # the run folder is an evaluate run: degradation parameters carried per face, report and tables accept it
    assert "deg_blur_sigma" in df.columns or "deg_scale" in df.columns
    assert main(["tables", str(ev)]) == 0
    assert main(["report", str(ev), "--out", str(tmp_path / "rep")]) == 0


def test_evaluate_whole_photos_identity_against_references(tmp_path, monkeypatch):
    """Identity on whole photos (issue 16 item 3): every restored face is scored by its cosine similarity to the
    closest reference face. References of the people in the photos score higher than references of others, and a
    photo's value equals the same cosine computed directly with the backend."""
    if backend_status()["dlib"] != "ok" or not (MINI / "hq").is_dir():
        pytest.skip("needs the dlib backend and the celebref-mini fixture")
    params = GOLDEN / "metrics" / "niqe" / "niqe_pris_params.npz"
    if not params.is_file():
        pytest.skip(f"NIQE parameters not found at {params}")
    from celebref.app.cli import main
    from celebref.face import get_backend
    from celebref.tabular import read_table
    from celebref.weights import env_var

    monkeypatch.setenv(env_var("niqe-params"), str(params))
    src = tmp_path / "photos"
    write_image(src / "two.png", compose(2))  # faces of the first two identities (their image [1])
    idents = sorted(p.name for p in (MINI / "hq").iterdir() if p.is_dir())
    right, wrong = tmp_path / "refs_right", tmp_path / "refs_wrong"
    for folder, people in ((right, idents[:2]), (wrong, idents[3:5])):
        for ident in people:
            for f in sorted((MINI / "hq" / ident).glob("*.png"))[2:4]:  # other images than the composed ones
                write_image(folder / ident / f.name, read_image(f))
    scores = {}
    for name, refs in (("right", right), ("wrong", wrong)):
        out = tmp_path / f"ev_{name}"
        code = main(["evaluate", "--whole-photo", "--data", str(src), "--methods", "lq", "--identity-refs", str(refs),
                     "--out", str(out), "--device", "cpu"])
        assert code == 0
        df = read_table(out / "per_image.parquet")
        assert sorted(df["id"]) == ["two_face0", "two_face1"] and set(df["method"]) == {"lq"}
        scores[name] = df.set_index("id")["identity_ref_cos"]
        run = json.loads((out / "run.json").read_text())
        (desc,) = [m for m in run["metrics"] if m["name"] == "identity-refs"]
        assert desc["labels"] == {"identity_ref_cos": "ID-ref(dlib)"} and desc["references"]["n_used"] == 4
        if name == "right":  # the same numbers computed directly
            be = get_backend("dlib")

            def ref_emb(path):  # the largest detected face of a reference image
                img = read_image(path)
                d = max(be.detect(img), key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
                return np.asarray(be.embed(img, d), dtype=np.float64)

            ref = np.stack([ref_emb(p) for p in sorted(right.rglob("*.png"))])
            for _, r in df.iterrows():  # each face's aligned crop against its closest reference
                crop = np.asarray(be.embed_aligned(read_image(r["lq_path"])), np.float64)
                assert r["identity_ref_cos"] == pytest.approx(float(np.max(ref @ crop)), abs=1e-12)
    assert (scores["right"] > scores["wrong"] + 0.02).all(), (scores["right"], scores["wrong"])
    assert main(["evaluate", "--whole-photo", "--data", str(src), "--methods", "lq", "--metrics", "niqe,identity",
                 "--out", str(tmp_path / "x"), "--device", "cpu"]) == 2  # identity without references
