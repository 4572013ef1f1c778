"""``celebref build`` on a synthetic dirty crawl made from celebref-mini (real faces, dlib backend).

The crawl (:func:`celebref.dataset.synthetic.make_crawl`) has a known right answer for every file: clean photos,
an exact copy, near duplicates (JPEG q70, 90% resize, crop/shift, mirror), a stranger, a two-stranger composite,
a composite with the person, a 96-px face, a blurred face, a non-face, a 0-byte file, a truncated PNG, an HTML page
named .jpg, a grayscale and an EXIF-rotated photo, one person under two folder names, one image in two folders.
The build runs once per module (about 40 files); later tests reuse its stage cache.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from celebref.dataset import BuildConfig, build_dataset
from celebref.dataset.pipeline import BuildInterrupted
from celebref.dataset.synthetic import ALIAS, make_crawl
from celebref.imageio import read_image

pytestmark = pytest.mark.skipif(importlib.util.find_spec("dlib") is None, reason="dlib is not installed")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(mini_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("build")
    crawl = base / "crawl"
    expected = make_crawl(mini_dir / "hq", crawl, per_identity=4)
    (crawl / "README.txt").write_text("not an input\n", encoding="utf-8")
    logs: list[str] = []
    cfg = BuildConfig(crawl=crawl, out=base / "out", backend="dlib", workers=2, cache_dir=base / "cache")
    meta = build_dataset(cfg, log=logs.append)
    man = pd.read_parquet(base / "out" / "manifest.parquet")
    return {"base": base, "crawl": crawl, "out": base / "out", "cache": base / "cache", "expected": expected,
            "meta": meta, "logs": logs, "man": man, "prim": man[man.is_primary].set_index("source_path")}


def test_every_input_gets_the_right_decision_and_reason(built):
    prim, exp = built["prim"], built["expected"]
    assert sorted(prim.index) == sorted([*exp, "README.txt"])  # every file once, README.txt too ...
    assert prim.loc["README.txt", ["decision", "reason"]].tolist() == ["skipped", "outside_person_folder"]  # ... not an input
    wrong = {p: (d, r, prim.loc[p, "decision"], prim.loc[p, "reason"]) for p, (d, r) in exp.items()
             if (prim.loc[p, "decision"], prim.loc[p, "reason"]) != (d, r)}
    assert not wrong
    meta = built["meta"]
    assert meta["accepted"] + meta["rejected"] == meta["inputs"] == len(exp)
    assert meta["accepted"] == sum(d == "accepted" for d, _ in exp.values())
    assert meta["ignored_files"] == ["README.txt"]
    assert list(meta["funnel"]) == ["raw", "decoded", "faces", "quality", "identity", "dedup", "final"]
    assert meta["funnel"]["raw"] == len(exp) and meta["funnel"]["final"] == meta["accepted"]
    assert meta["funnel"]["decoded"] == len(exp) - 3  # 0-byte, truncated, HTML
    text = "\n".join(built["logs"])
    assert "face backend: dlib" in text
    assert f"accepted {meta['accepted']} + rejected {meta['rejected']} = {len(exp)} = inputs {len(exp)}: OK" in text
    assert "funnel: raw" in text


def test_reasons_carry_their_evidence(built):
    prim, man = built["prim"], built["man"]
    A = "Åsa Öberg"
    assert prim.loc[f"{A}/photo_0_copy.png", "duplicate_of"] == f"{A}/photo_0.png"
    for v in ("q70.jpg", "small.png", "crop.png", "mirror.png"):
        row = prim.loc[f"{A}/photo_1_{v}"]
        assert row["duplicate_of"] == f"{A}/photo_1.png"  # the best-quality copy is kept
        assert row["duplicate_hash_bits"] <= 10 and row["duplicate_distance"] < 0.2
    assert prim.loc[f"{A}/photo_1_small.png", "face_size"] < 0.93 * prim.loc[f"{A}/photo_1.png", "face_size"]
    assert prim.loc["Bob Stone/tiny.png", "face_size"] < 128
    assert prim.loc["Dana Ruiz/blurred.png", "blur_var"] < 25 <= prim.loc["Dana Ruiz/photo_0.png", "blur_var"]
    assert prim.loc["Bob Stone/stranger.png", "identity_distance"] > 0.4 > prim.loc["Bob Stone/photo_0.png", "identity_distance"]
    assert prim.loc["Chen Wei/shared.png", "same_image_in"] == "Eve Kim"
    assert "same_image_in_other_folder" in prim.loc["Eve Kim/photo_2.png", "flags"]
    assert "cannot" in prim.loc["Dana Ruiz/page.jpg", "error"] or "HTML" in prim.loc["Dana Ruiz/page.jpg", "error"]
    assert all(prim.loc[f"{ALIAS}/img_{k}.png", "collision_with"] == "Chen Wei" for k in range(3))
    # the same person under two folder names: merged into one identity (default on_collision=merge), both names kept
    assert all(prim.loc[f"{ALIAS}/img_{k}.png", "assigned_folder"] == "Chen Wei" for k in range(3))
    assert all(prim.loc[f"{ALIAS}/img_{k}.png", "identity_folder"] == ALIAS for k in range(3))
    ids = pd.read_csv(built["out"] / "identities.csv", dtype=str, keep_default_na=False).set_index("folder_name")
    assert ids.loc["Chen Wei", "merged_folders"] == ALIAS and int(ids.loc["Chen Wei", "count"]) == 7
    assert built["meta"]["identities"][ALIAS]["merge_into"] == "Chen Wei"
    col = pd.read_csv(built["out"] / "collisions.csv")
    assert col[["folder_a", "folder_b", "suggestion"]].values.tolist() == [["Chen Wei", ALIAS, "merge"]]
    # composites: one row per detected face; the person's own face is the one used
    group = man[man.source_path == "Bob Stone/group.png"]
    assert len(group) == 2 and sorted(group.reason) == ["multiple_faces_ambiguous", "other_face"]
    friend = man[man.source_path == "Dana Ruiz/with friend.png"].set_index("is_primary")
    assert friend.loc[True, "identity_distance"] < 0.4 < friend.loc[False, "identity_distance"]
    assert friend.loc[True, "box_x1"] < friend.loc[False, "box_x1"]  # the left face is Dana's (see make_crawl)
    # the EXIF-rotated photo was read upright: its face box is in the displayed (rotated) frame
    assert prim.loc[f"{A}/rotated.jpg", "width"] == prim.loc[f"{A}/rotated.jpg", "height"]
    assert prim.loc[f"{A}/rotated.jpg", "decision"] == "accepted"


def test_output_is_in_celebref_hq_layout_and_dmdnet_list_format(built):
    out, prim = built["out"], built["prim"]
    acc = prim[prim.decision == "accepted"]
    ids = pd.read_csv(out / "identities.csv", dtype={"identity_id": str})
    assert list(ids.columns) == ["identity_id", "folder_name", "count", "n_references", "n_probes", "split", "merged_folders"]
    assert ids.identity_id.tolist() == [f"{k:05d}" for k in range(len(ids))]
    assert ids["count"].sum() == len(acc)
    assert set(ids.split) == {"train", "test"}
    for row in ids.itertuples():
        refs = sorted((out / "images" / row.identity_id).glob("*.png"))
        assert len(refs) == row.n_references
        for p in refs:
            lm = np.loadtxt(out / "landmarks" / row.identity_id / (p.name + ".txt"))
            assert lm.shape == (68, 2)
    for path, r in acc.iterrows():
        img = read_image(out / r["output_path"])
        assert img.shape == (512, 512, 3)
        assert r["split"] in ("train", "test") and r["identity_id"] == r["output_path"].split("/")[1][:5]
        assert len(__import__("json").loads(r["landmarks"])) == 68
    # the manifest's CSV and Parquet agree
    csv_df = pd.read_csv(out / "manifest.csv", keep_default_na=False, dtype=str)
    assert csv_df.source_path.tolist() == built["man"].source_path.tolist()
    # SpecificLists.txt read the way DMDNet's main_test.py reads it
    lines = [ln.strip() for ln in (out / "SpecificLists.txt").read_text(encoding="utf-8").split("\n") if len(ln)]
    test_ids = ids[ids.split == "test"]
    assert len(lines) == int(test_ids.n_probes.sum()) >= 1
    for ln in lines:
        lq, refdir, landdir = ln.split("\t")
        assert (out / lq).is_file() and (out / refdir).is_dir() and (out / landdir).is_dir()
        refs = os.listdir(out / refdir)
        assert len(refs) >= 2
        assert all((out / landdir / (n + ".txt")).is_file() for n in refs)
        iid = refdir.split("/")[-1]
        assert Path(lq).name.startswith(iid + "_")
        assert Path(lq).name.split("_")[1] not in refs  # the probe is not among its own references
    dist = pd.read_parquet(out / "distances.parquet")
    assert set(dist.kind) == {"same", "different"}
    assert dist[dist.kind == "same"].distance.mean() < 0.4 < dist[dist.kind == "different"].distance.mean()
    assert built["meta"]["leakage"]["ok"]


def test_killed_and_resumed_build_is_byte_identical(built, monkeypatch):
    base = built["base"]
    cache = base / "cache_resume"
    shutil.copytree(built["cache"], cache)
    entries = sorted((cache / "analyze").rglob("*.json"))
    for p in entries[:5]:  # as if the first run had been killed before these were analysed
        p.unlink()
    shutil.rmtree(cache / "aligned")
    out = base / "resumed"
    cfg = BuildConfig(crawl=built["crawl"], out=out, backend="dlib", workers=1, cache_dir=cache)
    monkeypatch.setenv("CELEBREF_BUILD_INTERRUPT", "analyze:2")
    with pytest.raises(BuildInterrupted):
        build_dataset(cfg, log=lambda s: None)
    assert len(list((cache / "analyze").rglob("*.json"))) == len(entries) - 3
    monkeypatch.setenv("CELEBREF_BUILD_INTERRUPT", "write:3")
    with pytest.raises(BuildInterrupted):
        build_dataset(cfg, log=lambda s: None)
    assert len(list((out / "images").rglob("*.png"))) == 3 and not (out / "manifest.csv").exists()
    # debris of a hard kill and of an older build: a temporary file and a stale image
    (out / "images" / "00000" / ".9.png.x1y2.tmp").write_bytes(b"partial")
    (out / "images" / "00042").mkdir(parents=True)
    (out / "images" / "00042" / "0.png").write_bytes(b"stale")
    monkeypatch.delenv("CELEBREF_BUILD_INTERRUPT")
    build_dataset(cfg, log=lambda s: None)
    a, b = _files(built["out"]), _files(out)
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []


def test_rebuild_with_new_thresholds_and_overrides_reuses_the_analysis(built, monkeypatch, capsys):
    from celebref.app.cli import main

    ov = built["base"] / "overrides.csv"
    with open(ov, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["source_path", "action", "identity", "note"])
        w.writerow(["Bob Stone/photo_0.png", "reject", "", "watermark"])
        w.writerow(["Dana Ruiz/blurred.png", "accept", "", "keep anyway"])
        w.writerow([f"{ALIAS}/", "identity", "Chen Wei", "same person"])
        w.writerow(["Nobody/x.png", "reject", "", ""])
    out = built["base"] / "rebuilt"
    monkeypatch.setenv("CELEBREF_BUILD_INTERRUPT", "analyze:1")  # any re-analysis would raise
    rc = main(["build", str(built["crawl"]), "--out", str(out), "--cache-dir", str(built["cache"]), "--overrides", str(ov),
               "--min-face-size", "512", "--seed", "3"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "face backend: dlib" in text and "= inputs" in text
    prim = pd.read_parquet(out / "manifest.parquet").query("is_primary").set_index("source_path")
    assert prim.loc["Bob Stone/photo_0.png", "reason"] == "manual_reject"
    assert prim.loc["Dana Ruiz/blurred.png", "decision"] == "accepted"
    assert "overridden:blurry" in prim.loc["Dana Ruiz/blurred.png", "flags"]
    merged = prim[prim.identity_folder == ALIAS]
    assert set(merged.assigned_folder) == {"Chen Wei"} and "identity_collision" not in set(merged.reason)
    small = prim[(prim.face_size < 512) & (prim.decision == "rejected")]
    assert len(small) > 0 and "face_too_small" in set(small.reason)  # the new threshold re-decided
    meta = __import__("json").loads((out / "build.json").read_text(encoding="utf-8"))
    assert meta["thresholds"]["min_face_size"] == 512 and meta["overrides"]["unmatched"] == ["Nobody/x.png"]
    assert meta["accepted"] + meta["rejected"] == meta["inputs"]


def test_verify_accepts_what_build_accepted(built):
    from celebref.dataset import VerifyConfig, verify_dataset

    meta = verify_dataset(VerifyConfig(dataset=built["out"], out=built["base"] / "audit", backend="dlib"), log=lambda s: None)
    ids = pd.read_csv(built["out"] / "identities.csv", dtype={"identity_id": str})
    assert meta["images"] == int(ids.n_references.sum())  # images/ only; the held-out probes are not references
    assert meta["rejected"] == 0 and meta["collisions"] == 0
    m = pd.read_parquet(built["base"] / "audit" / "manifest.parquet")
    assert set(m.landmarks_aligned_from) == {"file"}
