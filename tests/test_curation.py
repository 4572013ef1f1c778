"""Curation decisions that must never throw good faces away (issue 13 items 9, 10, 11), on fabricated analyses
(no face backend), plus the pose gate's calibration on celebref-mini's real landmark files."""

from __future__ import annotations

import numpy as np
import pytest

from celebref.dataset.config import BuildConfig, default_of
from celebref.dataset.decide import decide
from celebref.dataset.quality import yaw_degrees
from celebref.errors import ConfigError


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def around(center, spread, rng):
    noise = rng.standard_normal(len(center))
    noise -= (noise @ center) * center
    return unit(center + spread * noise / np.linalg.norm(noise))


class _Backend:
    same_identity_threshold = 0.4


def thresholds(**kw) -> dict:
    """The thresholds of a build with the library's defaults (as ``build_dataset`` resolves them)."""
    return BuildConfig(crawl=".", out="out", **kw).resolved(_Backend())


def face(emb, size=500.0, blur=100.0, yaw=0.0, h="0" * 16):
    return {"significant": True, "box": [0, 0, 1, 1], "score": 1.0, "face_size": size, "blur_var": blur, "yaw": yaw,
            "quality": 10.0, "embedding": [float(v) for v in emb], "phash": h, "phash_mirror": h}


def rec(path, sha):
    folder = path.split("/")[0]
    return {"source_path": path, "sha256": sha, "identity_folder": folder, "assigned_folder": folder, "file_size": 1,
            "is_primary": True, "face_index": None, "n_faces": 0, "decision": "", "reason": "", "error": "",
            "duplicate_of": "", "duplicate_distance": None, "duplicate_hash_bits": None, "identity_distance": None,
            "collision_with": "", "same_image_in": "", "override": "", "flags": [], "_abs": path}


class Crawl:
    def __init__(self):
        self.recs, self.an = [], {}

    def add(self, path, faces, width=800, height=800):
        sha = f"{len(self.recs):064x}"
        self.recs.append(rec(path, sha))
        self.an[sha] = {"status": "ok", "width": width, "height": height, "faces": faces}

    def decide(self, th):
        self.recs.sort(key=lambda r: r["source_path"])
        res = decide(self.recs, self.an, th, None)
        return {r["source_path"]: r for r in self.recs}, res


def _random_hash(rng) -> str:
    return "".join(f"{int(v):x}" for v in rng.integers(0, 16, 16))


def _two_folders_one_person():
    rng = np.random.default_rng(0)
    me = unit(rng.standard_normal(128))
    c = Crawl()
    for i in range(5):  # distinct photos (random perceptual hashes: no near duplicates)
        c.add(f"Chen Wei/{i}.png", [face(around(me, 0.1, rng), h=_random_hash(rng))])
    for i in range(3):
        c.add(f"Wei Chen/{i}.png", [face(around(me, 0.1, rng), h=_random_hash(rng))])
    return c


# --- item 9: two folders holding the same person --------------------------------------------------------

def test_same_person_in_two_folders_is_merged_by_default_never_rejected():
    assert default_of(BuildConfig, "on_collision") == "merge"
    by, res = _two_folders_one_person().decide(thresholds())
    assert all(r["decision"] == "accepted" for r in by.values())  # unique good faces are kept
    alias = [by[f"Wei Chen/{i}.png"] for i in range(3)]
    assert {r["assigned_folder"] for r in alias} == {"Chen Wei"}  # one identity ...
    assert {r["identity_folder"] for r in alias} == {"Wei Chen"}  # ... recorded with both folder names
    assert all(r["collision_with"] == "Chen Wei" and "merged_identity" in r["flags"] for r in alias)
    assert res["identities"]["Wei Chen"]["merge_into"] == "Chen Wei"
    assert [(c.folder_a, c.folder_b, c.suggestion) for c in res["collisions"]] == [("Chen Wei", "Wei Chen", "merge")]


def test_on_collision_flag_keeps_both_folders_and_reject_keeps_the_old_behaviour():
    by, _ = _two_folders_one_person().decide(thresholds(on_collision="flag"))
    assert all(r["decision"] == "accepted" for r in by.values())
    alias = [by[f"Wei Chen/{i}.png"] for i in range(3)]
    assert {r["assigned_folder"] for r in alias} == {"Wei Chen"}  # two identities, the collision flagged
    assert all("identity_collision" in r["flags"] and r["collision_with"] == "Chen Wei" for r in alias)
    by, _ = _two_folders_one_person().decide(thresholds(on_collision="reject"))
    assert [by[f"Wei Chen/{i}.png"]["reason"] for i in range(3)] == ["identity_collision"] * 3
    with pytest.raises(ConfigError, match="on_collision must be one of merge, flag, reject"):
        BuildConfig(crawl=".", out="o", on_collision="drop").validate()


def test_cli_flag_on_collision_reads_the_library_default():
    from celebref.app.cli import build_parser

    args = build_parser().parse_args(["build", "crawl", "--out", "o"])
    assert args.on_collision == "merge" and args.max_yaw == default_of(BuildConfig, "max_yaw")
    args = build_parser().parse_args(["build", "crawl", "--out", "o", "--on-collision", "flag"])
    assert args.on_collision == "flag"


def test_library_errors_name_parameters_not_flags():
    with pytest.raises(ConfigError) as e:
        BuildConfig(crawl=".", out="o", workers=0).validate()
    assert "workers must be >= 1" in str(e.value) and "--" not in str(e.value)


# --- item 10: which copy of a near duplicate is kept -----------------------------------------------------

def test_near_duplicates_keep_the_original_photo_over_its_aligned_crop_and_downscaled_copy():
    rng = np.random.default_rng(1)
    me = unit(rng.standard_normal(128))
    c = Crawl()
    h = "0123456789abcdef"
    # the original photo: 1600x1200, face 300 px; its aligned crop saved at 512x512 looks larger (face upsampled to
    # ~520 px) and about as sharp; a half-size copy; all the same picture (same hash, close embeddings)
    c.add("P/original.jpg", [face(around(me, 0.02, rng), size=300.0, blur=120.0, h=h)], 1600, 1200)
    c.add("P/aligned_crop.png", [face(around(me, 0.02, rng), size=520.0, blur=110.0, h=h)], 512, 512)
    c.add("P/downscaled.png", [face(around(me, 0.02, rng), size=150.0, blur=60.0, h=h)], 800, 600)
    for i in range(2):
        c.add(f"P/other_{i}.png", [face(around(me, 0.3, rng), h=f"{0xFFFF << (16 * (i + 1)):016x}"[-16:])])
    by, _ = c.decide(thresholds(min_face_size=100.0))
    assert by["P/original.jpg"]["decision"] == "accepted"
    for p in ("P/aligned_crop.png", "P/downscaled.png"):
        assert (by[p]["reason"], by[p]["duplicate_of"]) == ("near_duplicate", "P/original.jpg")


def test_near_duplicates_of_equal_source_resolution_keep_the_sharper():
    rng = np.random.default_rng(2)
    me = unit(rng.standard_normal(128))
    c = Crawl()
    h = "fedcba9876543210"
    c.add("P/a_soft.png", [face(around(me, 0.02, rng), size=400.0, blur=40.0, h=h)], 1000, 1000)
    c.add("P/b_sharp.png", [face(around(me, 0.02, rng), size=400.0, blur=300.0, h=h)], 1000, 1000)
    for i in range(2):
        c.add(f"P/other_{i}.png", [face(around(me, 0.3, rng), h=f"{0xFFFF << (16 * (i + 1)):016x}"[-16:])])
    by, _ = c.decide(thresholds())
    assert by["P/b_sharp.png"]["decision"] == "accepted"
    assert (by["P/a_soft.png"]["reason"], by["P/a_soft.png"]["duplicate_of"]) == ("near_duplicate", "P/b_sharp.png")


# --- item 11: the extreme-pose gate -------------------------------------------------------------------------

def _landmarks_with_yaw(index_deg: float) -> np.ndarray:
    lm = np.zeros((68, 2))
    lm[0], lm[16] = (0.0, 0.0), (200.0, 0.0)
    s = np.sin(np.radians(index_deg))  # (a - b) / (a + b) = s with a + b = 200
    lm[30] = (100.0 * (1 + s), 0.0)
    return lm


def test_default_pose_gate_keeps_a_usable_three_quarter_face_and_removes_near_profiles():
    assert yaw_degrees(_landmarks_with_yaw(75.0)) == pytest.approx(75.0)
    rng = np.random.default_rng(3)
    me = unit(rng.standard_normal(128))
    c = Crawl()
    for i, yaw in enumerate((0.0, 20.0, 75.0, -75.0, 86.0)):
        c.add(f"P/{i}.png", [face(around(me, 0.15, rng), yaw=yaw, h=f"{0xFFF << (12 * i):016x}"[-16:])])
    by, _ = c.decide(thresholds())
    assert [by[f"P/{i}.png"]["decision"] for i in range(4)] == ["accepted"] * 4
    assert by["P/4.png"]["reason"] == "extreme_pose"


def test_default_pose_gate_is_far_above_every_released_reference(mini_dir):
    """celebref-mini's references (chosen by the CelebRef-HQ authors) must all pass the default gate with margin."""
    from celebref.face.landmark_io import read_landmarks

    files = sorted((mini_dir / "landmarks").rglob("*.png.txt"))
    yaws = np.abs([yaw_degrees(read_landmarks(p)) for p in files])
    assert len(files) == 76 and 50 < yaws.max() < default_of(BuildConfig, "max_yaw") - 15
