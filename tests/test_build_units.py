"""Unit tests of the build's pure stages on synthetic embeddings (no face backend, no shared fixtures)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from celebref.dataset.cache import StageCache, settings_key
from celebref.dataset.dedup import group_and_keep, hamming, near_duplicate_pairs, phash
from celebref.dataset.identity import collision_components, dominant_identity, find_collisions
from celebref.dataset.neighbors import UnionFind, cdist, lsh_radius_pairs, nearest_other, radius_pairs
from celebref.dataset.overrides import OverrideTable, read_overrides
from celebref.dataset.decide import decide
from celebref.dataset.records import funnel
from celebref.dataset.quality import outside_fraction, quad_size, yaw_degrees
from celebref.dataset.split import leakage_check, split_groups
from celebref.face.landmark_io import format_landmarks as landmarks_text
from celebref.errors import ConfigError


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def around(center, n, spread, rng):
    """``n`` unit vectors at roughly Euclidean distance ``spread`` from ``center``."""
    d = len(center)
    noise = rng.standard_normal((n, d))
    noise -= (noise @ center)[:, None] * center[None]
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    return unit(center[None] + spread * noise)


# --- neighbours ---------------------------------------------------------------------------------------

def test_radius_pairs_equals_brute_force():
    rng = np.random.default_rng(1)
    c = unit(rng.standard_normal(32))
    x = np.concatenate([around(c, 30, 0.3, rng), unit(rng.standard_normal((50, 32)))])
    got = radius_pairs(x, 0.5, block=7)
    d = cdist(x, x)
    want = [(i, j) for i in range(len(x)) for j in range(i + 1, len(x)) if d[i, j] < 0.5]
    assert [(int(i), int(j)) for i, j, _ in got] == want
    assert len(want) > 100
    np.testing.assert_allclose(got[:, 2], [d[i, j] for i, j in want], atol=1e-5)


def test_lsh_finds_planted_near_duplicates_and_nothing_false():
    rng = np.random.default_rng(2)
    base = unit(rng.standard_normal((3000, 128)))
    dup = unit(base[:200] + 0.012 * rng.standard_normal((200, 128)))
    x = np.concatenate([base, dup])
    got = lsh_radius_pairs(x, 0.2)
    pairs = {(int(i), int(j)) for i, j, _ in got}
    planted = {(k, 3000 + k) for k in range(200)}
    assert pairs <= set(map(tuple, radius_pairs(x, 0.2)[:, :2].astype(int).tolist()))  # precision 1
    assert len(pairs & planted) >= 190  # recall >= 95%


def test_nearest_other_and_union_find():
    x = unit(np.array([[1, 0, 0], [0.99, 0.1, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64))
    idx, dist = nearest_other(x, block=2)
    assert idx[0] == 1 and idx[1] == 0
    assert dist[0] == pytest.approx(np.linalg.norm(x[0] - x[1]), abs=1e-6)
    uf = UnionFind(5)
    uf.union(3, 1)
    uf.union(4, 3)
    assert uf.groups() == [[0], [1, 3, 4], [2]]


# --- identity -------------------------------------------------------------------------------------------

def test_dominant_identity_resists_a_minority_of_strangers():
    rng = np.random.default_rng(3)
    me = unit(rng.standard_normal(128))
    strangers_c = unit(rng.standard_normal(128))
    emb = np.concatenate([around(me, 7, 0.25, rng), around(strangers_c, 4, 0.25, rng)])  # 4 of 11 are one stranger
    dom = dominant_identity(emb, threshold=0.4)
    assert sorted(dom.core) == list(range(7))
    assert np.all(dom.distances[:7] < 0.4) and np.all(dom.distances[7:] > 0.4)
    assert np.linalg.norm(dom.centroid - me) < 0.15
    mean = unit(emb.mean(axis=0))
    assert np.linalg.norm(mean - me) > np.linalg.norm(dom.centroid - me) + 0.1  # the mean is pulled away


def test_collisions_between_folder_centroids():
    rng = np.random.default_rng(4)
    a, b = unit(rng.standard_normal(64)), unit(rng.standard_normal(64))
    a2 = around(a, 1, 0.1, rng)[0]
    a3 = around(a, 1, 0.3, rng)[0]
    cols = find_collisions(["A", "B", "A2", "A3"], np.stack([a, b, a2, a3]), threshold=0.4, merge_threshold=0.2)
    got = {(c.folder_a, c.folder_b): c.suggestion for c in cols}
    assert got[("A", "A2")] == "merge"
    assert got[("A", "A3")] == "review"
    assert not any("B" in k for k in got)
    comps = collision_components(["A", "B", "A2", "A3"], cols, kind="merge")
    assert ["A", "A2"] in comps and ["A3"] in comps


# --- duplicates ---------------------------------------------------------------------------------------

def _textured(seed: int, size: int = 128) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3)).astype(np.float32)
    import cv2

    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


def test_phash_known_properties():
    import cv2

    a = _textured(0)
    assert len(phash(a)) == 16
    assert phash(a) == phash(a.copy())
    assert hamming(phash(a), phash(cv2.resize(a, (100, 100), interpolation=cv2.INTER_AREA))) <= 4
    assert hamming(phash(a[:, ::-1]), phash(a)) > 10  # a mirror is a different image ...
    assert hamming(phash(a[:, ::-1]), phash(np.ascontiguousarray(a[:, ::-1]))) == 0  # ... matched by the mirror hash
    assert hamming(phash(a), phash(_textured(1))) > 16
    assert hamming("ff", "0f") == 4


def test_near_duplicates_need_both_embedding_and_hash():
    rng = np.random.default_rng(5)
    me = unit(rng.standard_normal(128))
    emb = np.concatenate([around(me, 1, 0.05, rng), around(me, 1, 0.05, rng), around(me, 1, 0.05, rng), around(me, 1, 0.35, rng)])
    h = [phash(_textured(0)), phash(_textured(0)), phash(_textured(9)), phash(_textured(0))]
    hm = [phash(np.ascontiguousarray(_textured(s)[:, ::-1])) for s in (0, 0, 9, 0)]
    pairs = near_duplicate_pairs(emb, h, hm, embed_threshold=0.2, hash_bits=10)
    assert [(i, j) for i, j, _, _ in pairs] == [(0, 1)]  # 2: other picture; 3: embedding too far
    # a mirrored copy matches through the mirror hash
    h2 = [h[0], hm[0]]
    pairs = near_duplicate_pairs(emb[:2], h2, [hm[0], h[0]], embed_threshold=0.2, hash_bits=10)
    assert len(pairs) == 1 and pairs[0][3] == 0
    dropped = group_and_keep(4, [(0, 1, 0.1, 0), (1, 2, 0.1, 0)], rank=[3, 1, 2, 0])
    assert dropped == {0: 1, 2: 1}


# --- split and leakage ------------------------------------------------------------------------------------

def test_split_is_seeded_disjoint_and_keeps_groups_together():
    groups = [[f"p{i:02d}"] for i in range(20)] + [["x", "y"]]
    s1 = split_groups(groups, 0.25, seed=7)
    assert s1 == split_groups(list(reversed(groups)), 0.25, seed=7)  # order-independent
    assert s1["x"] == s1["y"]
    n_test = sum(v == "test" for v in s1.values())
    assert 5 <= n_test <= 6
    assert any(split_groups(groups, 0.25, seed=s) != s1 for s in range(8, 12))
    assert set(split_groups([["a"]], 0.5, 0).values()) == {"train"}
    assert list(split_groups([["a"], ["b"]], 0.1, 0).values()).count("test") == 1


def test_leakage_check_finds_shared_content_and_identity():
    rng = np.random.default_rng(6)
    c = unit(rng.standard_normal((3, 16)))
    cents = {"00000": c[0], "00001": c[1], "00002": unit(c[0] + 0.01)}
    rows = [{"identity_id": "00000", "split": "train", "sha256": "s1"},
            {"identity_id": "00001", "split": "test", "sha256": "s2"},
            {"identity_id": "00002", "split": "test", "sha256": "s1"}]
    rep = leakage_check(rows, cents, 0.4)
    assert not rep.ok
    assert rep.shared_sha256 == ["s1"]
    assert [p[:2] for p in rep.close_identity_pairs] == [("00000", "00002")]
    ok = leakage_check(rows[:2], cents, 0.4)
    assert ok.ok and ok.to_dict()["ok"]


# --- overrides, cache, small formats ------------------------------------------------------------------------

def test_overrides_parse_and_lookup(tmp_path):
    p = tmp_path / "o.csv"
    with open(p, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["source_path", "action", "identity", "note"])
        w.writerow(["Åsa/a.png", "reject", "", "watermark"])
        w.writerow(["Wei/", "identity", "Chen", "same person"])
        w.writerow(["Wei/keep.png", "accept", "", ""])
    t = OverrideTable(read_overrides(p))
    assert t.lookup("Åsa/a.png").action == "reject"
    assert t.lookup("Wei/sub/x.png").identity == "Chen"
    assert t.lookup("Wei/keep.png").action == "accept"  # the file row wins over the folder row
    assert t.lookup("Other/x.png") is None
    assert t.unmatched() == []
    bad = tmp_path / "bad.csv"
    bad.write_text("source_path,action\nx.png,delete\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="action must be one of"):
        read_overrides(bad)
    bad.write_text("source_path,action\nx.png,identity\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="needs an identity"):
        read_overrides(bad)


def test_stage_cache_roundtrip_and_keys(tmp_path):
    c = StageCache(tmp_path / "cache")
    k = settings_key("analyze", "abc", {"t": 1})
    assert k != settings_key("analyze", "abc", {"t": 2}) and k != settings_key("analyze", "abd", {"t": 1})
    assert c.get("analyze", k) is None
    v = {"x": [float(np.float32(0.1)), 1e-30], "s": "é"}
    c.put("analyze", k, v)
    assert c.get("analyze", k) == v
    assert np.float32(c.get("analyze", k)["x"][0]) == np.float32(0.1)
    assert [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()] == [f"{k}.json"]  # no temp files left
    assert StageCache(tmp_path / "cache", enabled=False).get("analyze", k) is None


def test_landmark_text_and_geometry():
    lm = np.arange(136, dtype=np.float64).reshape(68, 2) / 3
    txt = landmarks_text(lm)
    assert txt.count("\n") == 68 and txt.splitlines()[1] == "0.667 1.000"
    np.testing.assert_allclose(np.loadtxt(txt.splitlines()), lm, atol=5e-4)
    quad = np.array([[0, 0], [0, 100], [100, 100], [100, 0]], dtype=np.float64)
    assert quad_size(quad) == pytest.approx(100)
    assert outside_fraction(quad, 200, 200) == 0.0
    assert outside_fraction(quad - 50, 200, 200) == pytest.approx(0.75, abs=0.02)
    frontal = np.zeros((68, 2))
    frontal[0], frontal[16], frontal[30] = (0, 0), (100, 0), (50, 0)
    assert yaw_degrees(frontal) == pytest.approx(0.0)
    frontal[30] = (75, 0)
    assert yaw_degrees(frontal) == pytest.approx(30.0)


# --- decisions on fabricated analyses ---------------------------------------------------------------------------

def _face(emb, size=500.0, blur=100.0, yaw=0.0, h="0" * 16):
    return {"significant": True, "box": [0, 0, 1, 1], "score": 1.0, "face_size": size, "blur_var": blur, "yaw": yaw,
            "quality": 10.0, "embedding": [float(v) for v in emb], "phash": h, "phash_mirror": h,
            "landmarks_aligned": [[0.0, 0.0]] * 68, "landmarks_source": [[0.0, 0.0]] * 68}


def _rec(path, sha):
    return {"source_path": path, "sha256": sha, "identity_folder": path.split("/")[0], "assigned_folder": path.split("/")[0],
            "file_size": 1, "is_primary": True, "face_index": None, "n_faces": 0, "decision": "", "reason": "", "error": "",
            "duplicate_of": "", "duplicate_distance": None, "duplicate_hash_bits": None, "identity_distance": None,
            "collision_with": "", "same_image_in": "", "override": "", "flags": [], "_abs": path}


TH = {"identity_threshold": 0.4, "collision_threshold": 0.4, "merge_threshold": 0.2, "near_dup_distance": 0.2,
      "near_dup_hash_bits": 10, "min_face_size": 256.0, "min_blur": 25.0, "max_yaw": 70.0, "min_per_identity": 3,
      "max_per_identity": 4, "test_fraction": 0.1, "probes_per_identity": 1, "seed": 0}


def _world(tmp_path=None, overrides=None):
    rng = np.random.default_rng(11)
    people = {n: unit(rng.standard_normal(128)) for n in ("P", "Q", "R")}
    recs, an = [], {}
    k = 0

    def add(path, faces):
        nonlocal k
        sha = f"{k:064x}"
        k += 1
        recs.append(_rec(path, sha))
        an[sha] = {"status": "ok", "width": 800, "height": 800, "faces": faces}

    for i in range(6):  # P: 6 good photos (distinct hashes) -> over the limit of 4
        add(f"P/{i}.png", [_face(around(people["P"], 1, 0.25, rng)[0], size=300 + 10 * i, h=f"{(1 << (i * 10)) - 1:016x}"[-16:])])
    for i in range(2):  # Q: 2 photos -> under the limit of 3
        add(f"Q/{i}.png", [_face(around(people["Q"], 1, 0.25, rng)[0])])
    for i in range(4):  # R: 4 photos, one rejected by hand, one small face accepted by hand
        add(f"R/{i}.png", [_face(around(people["R"], 1, 0.25, rng)[0], size=100.0 if i == 2 else 500.0, h=f"{i:016x}")])
    add("R/stranger.png", [_face(around(people["P"], 1, 0.25, rng)[0])])
    an["bad"] = {"status": "unreadable", "error": "empty file (0 bytes)"}
    recs.append(_rec("R/zero.jpg", "bad"))
    recs.sort(key=lambda r: r["source_path"])
    table = OverrideTable(overrides) if overrides else None
    return recs, an, decide(recs, an, TH, table)


def test_decide_limits_outliers_and_funnel():
    recs, an, res = _world()
    by = {r["source_path"]: r for r in recs}
    assert [by[f"P/{i}.png"]["decision"] for i in range(6)].count("accepted") == 4
    over = [p for p in (f"P/{i}.png" for i in range(6)) if by[p]["reason"] == "over_identity_limit"]
    assert over == ["P/0.png", "P/1.png"]  # the two smallest faces go
    assert {by["Q/0.png"]["reason"], by["Q/1.png"]["reason"]} == {"under_identity_limit"}
    assert by["R/stranger.png"]["reason"] == "identity_outlier" and by["R/stranger.png"]["identity_distance"] > 0.4
    assert by["R/2.png"]["reason"] == "face_too_small"
    assert by["R/zero.jpg"]["reason"] == "unreadable" and "0 bytes" in by["R/zero.jpg"]["error"]
    assert by["R/0.png"]["decision"] == "accepted"  # 3 good photos left
    f = funnel(recs)
    assert list(f) == ["raw", "decoded", "faces", "quality", "identity", "dedup", "final"]
    assert f["raw"] == 14 and f["decoded"] == 13 and f["quality"] == 12 and f["identity"] == 11 and f["final"] == 7
    assert all(a >= b for a, b in zip(list(f.values()), list(f.values())[1:]))


def test_decide_applies_overrides():
    from celebref.dataset.overrides import Override

    ovr = [Override("R/2.png", "accept"), Override("R/1.png", "reject"), Override("R/stranger.png", "identity", "P"),
           Override("Q/", "identity", "Q2")]
    recs, an, res = _world(overrides=ovr)
    by = {r["source_path"]: r for r in recs}
    assert by["R/2.png"]["decision"] == "accepted" and "overridden:face_too_small" in by["R/2.png"]["flags"]
    assert by["R/1.png"]["reason"] == "manual_reject"
    assert by["R/stranger.png"]["assigned_folder"] == "P"
    assert by["R/stranger.png"]["decision"] == "accepted"  # a trusted move: P's face, now in P
    assert sum(r["decision"] == "accepted" for r in recs if r["assigned_folder"] == "P") == 4  # still limited
    assert by["Q/0.png"]["assigned_folder"] == "Q2" and by["Q/0.png"]["override"] == "identity:Q2"
