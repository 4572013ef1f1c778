"""Face analysis (celebref.face): the dlib backend on celebref-mini, landmark files, backend selection, and the
weight-free parts of the insightface backend (geometry, decoding, errors)."""

from __future__ import annotations

import csv
import logging
import warnings

import cv2
import numpy as np
import pytest

from celebref.errors import CelebrefError, UnknownNameError
from celebref.face import Detection, available_backends, backend_status, clear_cache, get_backend
from celebref.face.base import FaceAnalysisError
from celebref.face.landmark_io import (
    LandmarkFileError,
    format_landmarks,
    landmark_path_for,
    parse_landmarks,
    read_landmarks,
    write_landmarks,
)
from celebref.imageio import read_image

dlib = pytest.importorskip("dlib", reason="the dlib extra is not installed (pip install 'celebref[dlib]')")


# --- helpers ---------------------------------------------------------------------------------------

def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve for scores where positives should be higher (ties count one half)."""
    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    scores = np.concatenate([pos, neg])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks of ties (1-based)
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    r_pos = ranks[: len(pos)].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def nme(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean point error divided by the outer-eye-corner distance (points 36 and 45) of the reference."""
    return float(np.linalg.norm(pred - ref, axis=1).mean() / np.linalg.norm(ref[36] - ref[45]))


def test_roc_auc_known_answers():
    assert roc_auc([3, 4], [1, 2]) == 1.0
    assert roc_auc([1, 2], [3, 4]) == 0.0
    assert roc_auc([1, 1], [1, 1]) == 0.5
    # one of four (pos, neg) pairs misordered: 3/4
    assert roc_auc([2, 4], [1, 3]) == pytest.approx(0.75)


# --- celebref-mini, computed once ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def mini(mini_dir):
    """Every hq and lq face of celebref-mini through the dlib backend (detection, 68 points, embeddings)."""
    be = get_backend("dlib")
    with open(mini_dir / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    hq = [r for r in rows if r["kind"] == "hq"]
    lq = [r for r in rows if r["kind"] == "lq"]
    assert len(hq) >= 20 and len({r["identity"] for r in hq}) >= 2
    hq_imgs = [read_image(mini_dir / r["path"]) for r in hq]
    lq_imgs = [read_image(mini_dir / r["path"]) for r in lq]
    hq_dets = be.detect_batch(hq_imgs)
    lq_dets = be.detect_batch(lq_imgs)
    faces = [max(d, key=lambda x: x.area) if d else None for d in hq_dets]
    ok = [i for i, d in enumerate(faces) if d is not None]
    lms = {i: be.landmarks68(hq_imgs[i], faces[i]) for i in ok}
    refs = [read_landmarks(mini_dir / r["landmarks"]) for r in hq]
    emb = be.embed_batch([hq_imgs[i] for i in ok], [faces[i] for i in ok])
    return {
        "be": be, "hq": hq, "hq_imgs": hq_imgs, "lq_imgs": lq_imgs, "hq_dets": hq_dets, "lq_dets": lq_dets,
        "faces": faces, "ok": ok, "lms": lms, "refs": refs, "emb": emb,
        "ids": np.array([hq[i]["identity"] for i in ok]),
    }


def test_dlib_detects_every_face(mini):
    missing = [mini["hq"][i]["path"] for i, d in enumerate(mini["hq_dets"]) if not d]
    assert not missing, f"no face found in {missing}"
    assert all(mini["lq_dets"]), "no face found in some lq image"
    for img, dets in zip(mini["hq_imgs"] + mini["lq_imgs"], mini["hq_dets"] + mini["lq_dets"]):
        d = max(dets, key=lambda x: x.area)
        x1, y1, x2, y2 = d.box
        h, w = img.shape[:2]
        # a face box, not the whole frame: 30-95 % of the side, centred within the middle half
        assert 0.3 * w < x2 - x1 < 0.95 * w
        assert w * 0.25 < (x1 + x2) / 2 < w * 0.75 and h * 0.25 < (y1 + y2) / 2 < h * 0.85
        assert d.backend == "dlib" and d.model == "hog" and np.isfinite(d.score)
        assert d.points5.shape == (5, 2)
        assert d.points5[0, 0] < d.points5[1, 0]  # eye on the image's left first
        assert d.points5[3, 1] > d.points5[0, 1]  # mouth below the eyes


def test_dlib_landmarks_match_reference_files(mini):
    """Mean NME (outer-eye-corner normalised) of dlib's 68 points vs the FAN landmark files <= 0.06."""
    errors = [nme(mini["lms"][i], mini["refs"][i]) for i in mini["ok"]]
    assert len(errors) == len(mini["hq"])
    assert np.mean(errors) <= 0.06, np.mean(errors)
    assert np.max(errors) < 0.2  # no wild failure on any face
    lm = mini["lms"][mini["ok"][0]]
    assert lm.shape == (68, 2) and lm.dtype == np.float64


def test_detect_landmarks68_uses_largest_face(mini):
    be, i = mini["be"], mini["ok"][0]
    np.testing.assert_array_equal(be.detect_landmarks68(mini["hq_imgs"][i]), mini["lms"][i])
    assert be.detect_landmarks68(np.zeros((200, 200, 3), np.uint8)) is None


def test_landmarks_from_five_point_box(mini):
    """The insightface path: dlib's 68-point predictor on a box made from 5 points (here taken from the reference
    landmark files instead of RetinaFace) still lands within NME 0.06 of the references."""
    from celebref.face.dlib_backend import DlibBackend, box_from_points5

    be = mini["be"]
    errors = []
    for i in mini["ok"][::3]:
        ref = mini["refs"][i]
        box = box_from_points5(DlibBackend.points5_from_68(ref))
        errors.append(nme(be.landmarks68(mini["hq_imgs"][i], Detection(box, 1.0)), ref))
    assert np.mean(errors) <= 0.06, np.mean(errors)


def _pair_distances(mini):
    emb, ids = mini["emb"], mini["ids"]
    d = np.linalg.norm(emb[:, None, :].astype(np.float64) - emb[None, :, :], axis=2)
    iu = np.triu_indices(len(ids), 1)
    same = (ids[:, None] == ids[None, :])[iu]
    return d[iu], same


def test_embeddings_separate_identities(mini):
    emb = mini["emb"]
    assert emb.dtype == np.float32 and emb.shape == (len(mini["ok"]), 128)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    dist, same = _pair_distances(mini)
    assert same.any() and (~same).any()
    auc = roc_auc(-dist[same], -dist[~same])
    assert auc >= 0.99, auc
    assert dist[same].mean() < dist[~same].mean() - 0.2
    thr = mini["be"].same_identity_threshold
    assert (dist[same] < thr).mean() >= 0.95  # true-match rate at the documented threshold
    assert (dist[~same] < thr).mean() <= 0.02  # false-match rate


def test_distance_convention(mini):
    be, emb = mini["be"], mini["emb"]
    assert be.distance(emb[0], emb[0]) == pytest.approx(0.0, abs=1e-6)
    assert be.distance(emb[0], emb[1]) == pytest.approx(float(np.linalg.norm(emb[0].astype(float) - emb[1])), abs=1e-5)
    # raw dlib descriptors: not unit norm; the normalised embedding is their direction
    i = mini["ok"][0]
    raw = be.raw_descriptor(mini["hq_imgs"][i], mini["faces"][i])
    assert 1.2 < np.linalg.norm(raw) < 1.9
    np.testing.assert_allclose(raw / np.linalg.norm(raw), emb[0], atol=1e-6)


def test_embed_batch_equals_single(mini):
    be = mini["be"]
    for k in (0, 5):
        i = mini["ok"][k]
        np.testing.assert_allclose(be.embed(mini["hq_imgs"][i], mini["faces"][i]), mini["emb"][k], atol=1e-6)


def test_embed_aligned_and_its_fallback(mini):
    """embed_aligned detects the face; when detection fails it uses the mean aligned-face box, whose embedding is
    still the same person (distance below the threshold) for these aligned faces."""
    from celebref.face.dlib_backend import ALIGNED_FACE_BOX

    be = mini["be"]
    for k in (0, 20, 40):
        i = mini["ok"][k]
        img = mini["hq_imgs"][i]
        np.testing.assert_allclose(be.embed_aligned(img), mini["emb"][k], atol=1e-6)
        box = tuple(f * 512 for f in ALIGNED_FACE_BOX)
        prior = be.embed(img, Detection(box, float("nan")))
        assert be.distance(prior, mini["emb"][k]) < be.same_identity_threshold / 2
    blank = np.full((512, 512, 3), 127, np.uint8)  # no face: the prior box is used, no error
    assert be.aligned_detection(blank).model == "aligned-prior"
    assert be.embed_aligned(blank).shape == (128,)


def test_provenance_recorded(mini):
    be = mini["be"]
    info = be.describe()
    assert info["backend"] == "dlib"
    assert set(info["models"]) == {"detector", "landmarks5", "landmarks68", "embedding"}
    assert "shape_predictor_68_face_landmarks.dat@sha256:" in info["models"]["landmarks68"]
    assert info["models"]["embedding"].startswith("dlib_face_recognition_resnet_model_v1.dat@sha256:")


def test_cnn_detector_agrees_with_hog(mini):
    be = get_backend("dlib", detector="cnn")
    img = mini["hq_imgs"][0]
    dets = be.detect(img)
    assert len(dets) == 1 and dets[0].model == "mmod"
    a, b = np.array(dets[0].box), np.array(mini["faces"][0].box)
    inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
    union = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter
    assert inter / union > 0.4
    assert "mmod_human_face_detector.dat@sha256:" in be.models["detector"]


def test_bad_input_is_a_typed_error():
    be = get_backend("dlib")
    with pytest.raises(FaceAnalysisError, match="RGB uint8"):
        be.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(FaceAnalysisError, match="RGB uint8"):
        be.detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(FaceAnalysisError, match="2 images but 1 detections"):
        be.embed_batch([np.zeros((8, 8, 3), np.uint8)] * 2, [Detection((0, 0, 4, 4), 1.0)])
    with pytest.raises(FaceAnalysisError, match="unknown dlib detector"):
        get_backend("dlib", detector="haar")


# --- backend selection ---------------------------------------------------------------------------------

def test_auto_falls_back_to_dlib_and_says_why(caplog):
    # the test CELEBREF_HOME is empty, so buffalo_l is missing
    status = backend_status()
    assert status["dlib"] == "ok"
    assert status["insightface"] != "ok"
    assert available_backends() == ["dlib"]
    with caplog.at_level(logging.INFO, logger="celebref.face"):
        be = get_backend(None)
    assert be.name == "dlib"
    assert "auto -> dlib" in be.selection and "insightface unavailable" in be.selection
    assert any("auto -> dlib" in r.getMessage() for r in caplog.records)
    assert get_backend("auto").name == "dlib"


def test_insightface_missing_files_is_a_clear_error():
    pytest.importorskip("onnxruntime")
    with pytest.raises(CelebrefError) as err:
        get_backend("insightface")
    msg = str(err.value)
    assert "insightface-buffalo_l" in msg and "buffalo_l" in msg


def test_unknown_backend_name():
    with pytest.raises(UnknownNameError, match="did you mean 'dlib'"):
        get_backend("dlbi")


# --- insightface maths without weights ----------------------------------------------------------------

def test_umeyama_matches_skimage():
    from skimage.transform import SimilarityTransform

    from celebref.face.insightface_backend import ARCFACE_TEMPLATE, umeyama_similarity

    rng = np.random.default_rng(0)
    cases = [(rng.uniform(0, 500, (5, 2)), ARCFACE_TEMPLATE + rng.normal(0, 3, (5, 2))) for _ in range(4)]
    cases.append((ARCFACE_TEMPLATE * [-1, 1], ARCFACE_TEMPLATE))  # mirrored: best proper similarity, no reflection
    for src, dst in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            t = SimilarityTransform()
            t.estimate(src, dst)
        np.testing.assert_allclose(umeyama_similarity(src, dst), t.params[:2], atol=1e-9)


def test_arcface_crop_puts_points_on_template():
    from celebref.face.insightface_backend import ARCFACE_TEMPLATE, arcface_crop, arcface_matrix

    a = np.radians(12.0)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = ARCFACE_TEMPLATE @ rot.T * 2.5 + (140.0, 90.0)
    np.testing.assert_allclose(arcface_matrix(pts) @ np.c_[pts, np.ones(5)].T, ARCFACE_TEMPLATE.T, atol=1e-9)
    img = np.zeros((500, 500, 3), np.uint8)
    for k, (x, y) in enumerate(pts):
        cv2.circle(img, (int(round(x)), int(round(y))), 6, (255, 40 * k, 0), -1)
    crop = arcface_crop(img, pts)
    assert crop.shape == (112, 112, 3)
    for k, (x, y) in enumerate(ARCFACE_TEMPLATE):
        assert crop[int(round(y)), int(round(x)), 0] > 200
    assert arcface_crop(img, pts, 224).shape == (224, 224, 3)


def test_retinaface_decoding_known_answer():
    from celebref.face.insightface_backend import anchor_centres, decode_retinaface, nms

    c = anchor_centres(2, 3, 8)
    np.testing.assert_array_equal(c[:4], [[0, 0], [0, 0], [8, 0], [8, 0]])
    np.testing.assert_array_equal(c[-1], [16, 8])

    h = w = 64
    outs = []
    for stride in (8, 16, 32):
        n = (h // stride) * (w // stride) * 2
        outs.append(np.zeros((n, 1), np.float32))
    for stride in (8, 16, 32):
        n = (h // stride) * (w // stride) * 2
        outs.append(np.ones((n, 4), np.float32))
    for stride in (8, 16, 32):
        n = (h // stride) * (w // stride) * 2
        outs.append(np.zeros((n, 10), np.float32))
    # stride 16, cell (x=2, y=1), second anchor: index (1*4 + 2)*2 + 1 = 13; centre (32, 16)
    outs[1][13] = 0.9
    outs[4][13] = [1.0, 0.5, 2.0, 3.0]  # distances in stride units
    outs[7][13] = np.arange(10) / 10
    boxes, scores, points = decode_retinaface(outs, (h, w), 0.5)
    np.testing.assert_allclose(boxes, [[32 - 16, 16 - 8, 32 + 32, 16 + 48]])
    np.testing.assert_allclose(scores, [0.9], rtol=1e-6)
    np.testing.assert_allclose(points[0], (np.array([32, 16]) + (np.arange(10) / 10 * 16).reshape(5, 2)), rtol=1e-6)

    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], float)
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), 0.4) == [0, 2]
    assert nms(boxes, np.array([0.7, 0.8, 0.9]), 0.4) == [2, 1]


def test_letterbox():
    from celebref.face.insightface_backend import letterbox

    img = np.full((300, 600, 3), 200, np.uint8)
    canvas, scale = letterbox(img, (640, 640))
    assert canvas.shape == (640, 640, 3) and scale == pytest.approx(320 / 300)
    assert (canvas[:320, :640] == 200).all() and (canvas[320:] == 0).all()


# --- landmark files ---------------------------------------------------------------------------------

def test_landmark_file_round_trip_is_byte_identical(mini_dir, tmp_path):
    files = sorted((mini_dir / "landmarks").rglob("*.txt"))
    assert len(files) >= 20
    for src in files[:: max(len(files) // 10, 1)]:
        pts = read_landmarks(src)
        assert pts.shape == (68, 2) and pts.dtype == np.float64
        np.testing.assert_array_equal(pts, np.loadtxt(src))
        out = tmp_path / src.name
        write_landmarks(out, pts)
        assert out.read_bytes() == src.read_bytes()


def test_landmark_format():
    pts = np.zeros((68, 2))
    pts[0] = (1.23456, -0.0001)
    pts[67] = (511.9996, 7)
    text = format_landmarks(pts)
    lines = text.split("\n")
    assert len(lines) == 69 and lines[-1] == "" and "\r" not in text
    assert lines[0] == "1.235 0.000" and lines[67] == "512.000 7.000"
    np.testing.assert_allclose(parse_landmarks(text), np.round(pts, 3), atol=1e-12)
    assert landmark_path_for("/a/b/0.png").as_posix() == "/a/b/0.png.txt"
    assert landmark_path_for("/a/b/0.png", "/c").as_posix() == "/c/0.png.txt"


def test_bad_landmark_files(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("1 2\n" * 67)
    with pytest.raises(LandmarkFileError, match="67 points, expected 68"):
        read_landmarks(short)
    words = tmp_path / "words.txt"
    words.write_text("1 2\n" * 10 + "a b\n" + "1 2\n" * 57)
    with pytest.raises(LandmarkFileError, match="line 11"):
        read_landmarks(words)
    with pytest.raises(LandmarkFileError, match="not found"):
        read_landmarks(tmp_path / "absent.txt")
    with pytest.raises(ValueError):
        format_landmarks(np.zeros((5, 2)))


# --- insightface backend end to end, with tiny hand-written ONNX stand-ins for the buffalo_l files ----------
# (no onnx package here: the protobuf is written directly; the networks are trivial but have the real
# input/output layout, so the backend's pre/post-processing runs exactly as with the real files)

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, payload: bytes | int | str) -> bytes:
    if isinstance(payload, int):
        return _varint(num << 3) + _varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, dims) -> bytes:
    shape = b"".join(_field(1, _field(2, d) if isinstance(d, str) else _field(1, d)) for d in dims)
    return _field(1, name) + _field(2, _field(1, _field(1, 1) + _field(2, shape)))


def _tensor(name: str, arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr, dtype="<f4")
    return b"".join(_field(1, int(d)) for d in arr.shape) + _field(2, 1) + _field(8, name) + _field(9, arr.tobytes())


def _node(op: str, inputs, outputs, ints: dict | None = None) -> bytes:
    out = b"".join(_field(1, i) for i in inputs) + b"".join(_field(2, o) for o in outputs) + _field(4, op)
    for k, v in (ints or {}).items():
        out += _field(5, _field(1, k) + _field(3, v) + _field(20, 2))
    return out


def _model(nodes, inputs, outputs, inits) -> bytes:
    graph = (b"".join(_field(1, n) for n in nodes) + _field(2, "g") + b"".join(_field(5, t) for t in inits)
             + b"".join(_field(11, v) for v in inputs) + b"".join(_field(12, v) for v in outputs))
    return _field(1, 8) + _field(8, _field(1, "") + _field(2, 13)) + _field(7, graph)


def _fake_detector(size: int = 640) -> tuple[bytes, dict]:
    """det_10g layout: input (1, 3, size, size); outputs scores/boxes/points for strides 8, 16, 32 (constants).
    One face at stride 16, cell (x=10, y=12), anchor 0, score 0.9; a weaker duplicate (anchor 1, 0.7) that NMS
    must drop; a sub-threshold candidate (0.3) elsewhere."""
    tensors = {}
    for s in (8, 16, 32):
        n = (size // s) ** 2 * 2
        tensors[f"score{s}"] = np.zeros((n, 1))
        tensors[f"bbox{s}"] = np.ones((n, 4))
        tensors[f"kps{s}"] = np.zeros((n, 10))
    i = (12 * (size // 16) + 10) * 2  # centre (160, 192) in network pixels
    tensors["score16"][i] = 0.9
    tensors["bbox16"][i] = [3, 4, 3, 4]
    tensors["kps16"][i] = [-1, -1, 1, -1, 0, 0, -0.8, 1.5, 0.8, 1.5]
    tensors["score16"][i + 1] = 0.7
    tensors["bbox16"][i + 1] = [3, 4, 3.2, 4]
    tensors["score8"][5] = 0.3
    names = [f"{k}{s}" for k in ("score", "bbox", "kps") for s in (8, 16, 32)]
    nodes = [_node("Identity", [f"c_{n}"], [n]) for n in names]
    inits = [_tensor(f"c_{n}", tensors[n]) for n in names]
    outputs = [_value_info(n, tensors[n].shape) for n in names]
    expected = {"box": (2 * 112.0, 2 * 128.0, 2 * 208.0, 2 * 256.0), "centre": np.array([160.0, 192.0])}
    return _model(nodes, [_value_info("input.1", [1, 3, size, size])], outputs, inits), expected


def _fake_recogniser() -> bytes:
    """w600k_r50 layout: input (N, 3, 112, 112) -> per-channel means, shape (N, 3)."""
    nodes = [_node("GlobalAveragePool", ["input.1"], ["gap"]), _node("Flatten", ["gap"], ["683"], {"axis": 1})]
    return _model(nodes, [_value_info("input.1", ["N", 3, 112, 112])], [_value_info("683", ["N", 3])], [])


@pytest.fixture()
def fake_buffalo(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from celebref.weights import env_var, get

    root = tmp_path / "buffalo_l"
    root.mkdir()
    det, expected = _fake_detector()
    (root / "det_10g.onnx").write_bytes(det)
    (root / "w600k_r50.onnx").write_bytes(_fake_recogniser())
    for member in get("insightface-buffalo_l").members:  # the unused members only need to exist
        if not (root / member).exists():
            (root / member).write_bytes(b"")
    monkeypatch.setenv(env_var("insightface-buffalo_l"), str(root))
    yield root, expected
    clear_cache()  # no stand-in backend may outlive this test


def test_insightface_backend_pipeline_with_stand_in_models(fake_buffalo, caplog):
    from celebref.face.insightface_backend import InsightFaceBackend

    root, expected = fake_buffalo
    be = InsightFaceBackend(root=root)
    img = np.zeros((960, 1280, 3), np.uint8)  # letterboxed into 640x480: everything scales back by 2
    img[:, :] = (255, 0, 0)
    dets = be.detect(img)
    assert len(dets) == 1  # the duplicate is suppressed, the weak candidate thresholded away
    d = dets[0]
    np.testing.assert_allclose(d.box, expected["box"], atol=1e-4)
    assert d.score == pytest.approx(0.9) and d.backend == "insightface" and d.model == "det_10g.onnx"
    c = 2 * expected["centre"]
    np.testing.assert_allclose(d.points5, c + 32 * np.array([[-1, -1], [1, -1], [0, 0], [-0.8, 1.5], [0.8, 1.5]]),
                               atol=1e-4)
    # ArcFace input: RGB, (x - 127.5) / 127.5. A pure red crop -> channel means (1, -1, -1) -> normalised
    emb = be.embed(img, d)
    np.testing.assert_allclose(emb, np.array([1, -1, -1]) / np.sqrt(3), atol=1e-5)
    green = np.zeros_like(img)
    green[:, :] = (0, 255, 0)
    batch = be.embed_batch([img, green], [d, d])
    np.testing.assert_allclose(batch[1], np.array([-1, 1, -1]) / np.sqrt(3), atol=1e-5)
    lm = be.landmarks68(img, d)
    assert lm.shape == (68, 2)
    assert set(be.models) == {"detector", "embedding", "landmarks68"}
    assert be.models["detector"].startswith("det_10g.onnx@sha256:")

    # with the files present, "auto" picks insightface and says so
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stand-ins do not match buffalo_l's published hashes
        with caplog.at_level(logging.INFO, logger="celebref.face"):
            auto = get_backend(None)
    assert auto.name == "insightface" and "auto -> insightface" in auto.selection
    assert available_backends()[0] == "insightface"


def test_thread_safe_lazy_loading_and_calls(mini):
    """A fresh backend used from 4 threads at once: models load once and every thread gets the same answer."""
    from concurrent.futures import ThreadPoolExecutor

    from celebref.face.dlib_backend import DlibBackend

    be = DlibBackend()
    i = mini["ok"][3]
    img = mini["hq_imgs"][i]

    def work(_):
        d = max(be.detect(img), key=lambda x: x.area)
        return be.landmarks68(img, d), be.embed(img, d)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(4)))
    for lm, emb in results:
        np.testing.assert_array_equal(lm, mini["lms"][i])
        np.testing.assert_allclose(emb, mini["emb"][3], atol=1e-6)
    rec = mini["faces"][i].to_dict()
    assert rec["backend"] == "dlib" and len(rec["box"]) == 4 and len(rec["points5"]) == 5
