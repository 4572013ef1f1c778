"""The build's tables: the manifest (one row per file and per extra detected face) and the distance sample.

Manifest columns are documented in docs/FORMATS.md; ``source_path_hex`` (last) holds the raw bytes of a path that
is not valid UTF-8 (see :mod:`celebref.dataset.scan`), empty otherwise. Floats are NaN when absent, integers
nullable, strings ``''``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .records import analysis_of

MANIFEST_COLUMNS = [
    "source_path", "sha256", "identity_folder", "assigned_folder", "face_index", "n_faces", "is_primary",
    "decision", "reason", "error", "duplicate_of", "duplicate_distance", "duplicate_hash_bits", "identity_id",
    "identity_distance", "collision_with", "same_image_in", "box_x1", "box_y1", "box_x2", "box_y2", "det_score",
    "landmarks", "landmarks_source", "landmarks_aligned_from", "face_size", "outside_fraction", "blur_var", "yaw",
    "quality", "phash", "width", "height", "file_size", "output_path", "landmarks_path", "split", "role",
    "override", "flags", "backend", "source_path_hex",
]
_FLOAT = {"duplicate_distance", "identity_distance", "box_x1", "box_y1", "box_x2", "box_y2", "det_score", "face_size",
          "outside_fraction", "blur_var", "yaw", "quality"}
_INT = {"face_index", "n_faces", "duplicate_hash_bits", "width", "height", "file_size"}


def manifest_row(r: dict, an: dict, face_index, primary: bool, backend: str) -> dict:
    """One manifest row: the record's fields plus the chosen face's measurements."""
    f = an["faces"][face_index] if (an.get("status") == "ok" and face_index is not None) else {}
    box = f.get("box") or [None] * 4
    row = {k: r.get(k) for k in MANIFEST_COLUMNS if k in r}
    row.update({
        "face_index": face_index, "is_primary": primary,
        "box_x1": box[0], "box_y1": box[1], "box_x2": box[2], "box_y2": box[3], "det_score": f.get("score"),
        "landmarks": json.dumps(f["landmarks_aligned"], separators=(",", ":")) if "landmarks_aligned" in f else "",
        "landmarks_source": json.dumps(f["landmarks_source"], separators=(",", ":")) if "landmarks_source" in f else "",
        "landmarks_aligned_from": f.get("landmarks_aligned_from", ""),
        "face_size": f.get("face_size"), "outside_fraction": f.get("outside_fraction"), "blur_var": f.get("blur_var"),
        "yaw": f.get("yaw"), "quality": f.get("quality"), "phash": f.get("phash", ""),
        "flags": ";".join(r.get("flags", [])), "backend": backend,
    })
    return row


def manifest_frame(rows: list[dict]) -> pd.DataFrame:
    """A manifest DataFrame with the documented columns and dtypes (floats NaN, ints nullable, strings '')."""
    df = pd.DataFrame(rows)
    for c in MANIFEST_COLUMNS:
        if c not in df.columns:
            df[c] = None
    df = df[MANIFEST_COLUMNS + [c for c in df.columns if c not in MANIFEST_COLUMNS]]
    for c in df.columns:
        if c in _FLOAT:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        elif c in _INT:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
        elif c == "is_primary":
            df[c] = df[c].astype(bool)
        else:
            df[c] = df[c].fillna("").astype(str)
    return df


def build_manifest(records: list[dict], analyses: dict, backend: str, centroids: dict,
                   skipped: list[dict] | None = None) -> pd.DataFrame:
    """Rows of every input file (and of every other detected face) and of every skipped file, in sorted
    ``source_path`` order (a file's extra faces follow it)."""
    rows = []
    for r in sorted(records + list(skipped or []), key=lambda r: r["source_path"]):
        if r["decision"] == "skipped":
            rows.append(manifest_row(r, {}, None, True, backend))
            continue
        an = analysis_of(analyses, r)
        rows.append(manifest_row(r, an, r["face_index"], True, backend))
        if an.get("status") == "ok" and len(an["faces"]) > 1:
            c = centroids.get(r["assigned_folder"])
            for i, f in enumerate(an["faces"]):
                if i == r["face_index"]:
                    continue
                extra = {k: r[k] for k in ("source_path", "source_path_hex", "sha256", "identity_folder",
                                           "assigned_folder", "n_faces", "width", "height", "file_size") if k in r}
                extra.update(decision="rejected", reason="other_face", flags=[])
                if c is not None and "embedding" in f:
                    extra["identity_distance"] = round(float(np.linalg.norm(np.asarray(f["embedding"], np.float32) - c)), 6)
                rows.append(manifest_row(extra, an, i, False, backend))
    return manifest_frame(rows)


def distance_sample(records: list[dict], analyses: dict, seed: int, cap: int = 20000) -> pd.DataFrame:
    """Pair distances among accepted faces: every same-identity pair (sampled down to ``cap``) and as many
    seeded random different-identity pairs."""
    acc = [r for r in records if r["decision"] == "accepted"]
    emb = np.array([analysis_of(analyses, r)["faces"][r["face_index"]]["embedding"] for r in acc], np.float32).reshape(len(acc), -1)
    ids = [r["identity_id"] for r in acc]
    rng = np.random.default_rng(seed)
    same = [(i, j) for i in range(len(acc)) for j in range(i + 1, len(acc)) if ids[i] == ids[j]]
    if len(same) > cap:
        same = [same[k] for k in sorted(rng.choice(len(same), cap, replace=False))]
    diff = []
    if len(set(ids)) > 1:
        tries = 0
        while len(diff) < len(same) and tries < 20 * max(len(same), 1):
            i, j = (int(v) for v in rng.integers(0, len(acc), 2))
            tries += 1
            if ids[i] != ids[j]:
                diff.append((min(i, j), max(i, j)))
    rows = []
    for kind, pairs in (("same", same), ("different", diff)):
        for i, j in pairs:
            rows.append({"kind": kind, "distance": float(np.linalg.norm(emb[i] - emb[j])), "identity_a": ids[i],
                         "identity_b": ids[j], "source_a": acc[i]["source_path"], "source_b": acc[j]["source_path"]})
    return pd.DataFrame(rows, columns=["kind", "distance", "identity_a", "identity_b", "source_a", "source_b"])
