"""The build's decisions: a pure function of the per-file records, their cached analyses and the thresholds.

Decisions are taken per input file in this order (the first that applies is the file's ``reason``):

1. ``unreadable`` (the shared reader refused it) / ``analysis_error``;
2. ``manual_reject`` (overrides);
3. ``exact_duplicate`` of an earlier file (sorted order) with the same content in the same person folder;
4. ``no_face``; several significant faces and none or several match the folder's identity:
   ``multiple_faces_ambiguous`` (one match: that face is used);
5. quality gates on the source face: ``face_too_small``, ``blurry``, ``extreme_pose``;
6. ``identity_outlier`` (farther than the threshold from the folder's dominant identity);
7. two folders holding the same person (centroids closer than ``merge_threshold``), by ``th["on_collision"]``:
   ``merge`` (one identity, named after the folder with the larger core), ``flag`` (both kept, flagged
   ``identity_collision``) or ``reject`` (the smaller folder's files: ``identity_collision``);
8. ``exact_duplicate`` across folders (the same content kept once, in its first surviving folder);
9. ``near_duplicate`` within the identity (the copy kept: see :func:`duplicate_rank`);
10. ``under_identity_limit`` / ``over_identity_limit`` (the best faces kept: see :func:`limit_rank`).

Everything is deterministic and independent of worker count, engine and completion order: records are in sorted
``source_path`` order. The decisions need only the records (per-folder work, folder centroids across folders,
never an N x N matrix over the crawl). Where the work runs: steps 1-2 and 7-8 on the driver (cheap, or across
folders); steps 3-6 (:func:`folder_identity`) and 9-10 (:func:`folder_dedup`) per assigned folder, through the
execution engine when one is given (:func:`decide_folders_batch`: a folder's records and analyses go to a worker,
its decided records come back), else in this process. Both give the same decisions.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from .dedup import group_and_keep, near_duplicate_pairs
from .identity import collision_components, dominant_identity, find_collisions
from .overrides import OverrideTable
from .records import alive, analysis_of, face_of, reject

LOSSY_EXTENSIONS = (".jpg", ".jpeg", ".webp")


# --- ranks ----------------------------------------------------------------------------------------------

def _lossy(r: dict) -> bool:
    return os.path.splitext(r["source_path"])[1].lower() in LOSSY_EXTENSIONS


def _size_bin(f: dict) -> int:
    return math.floor(math.log2(max(f["face_size"], 1.0)) * 16)  # bins of ~4.4%


def _blur_bin(f: dict) -> int:
    return math.floor(math.log2(1.0 + max(f["blur_var"], 0.0)) * 4)  # bins of ~19% in Laplacian variance


def limit_rank(r: dict, f: dict) -> tuple:
    """Which faces of an identity to keep under ``max_per_identity`` (smallest first): a manual ``accept``, then
    the larger source face, a lossless file over a lossy one (JPEG/WebP), the sharper face, the source path."""
    return (r.get("_ovr") != "accept", -_size_bin(f), _lossy(r), -_blur_bin(f), r["source_path"])


def duplicate_rank(r: dict, f: dict) -> tuple:
    """Which copy of a near-duplicate group to keep (smallest first): a manual ``accept``, then the **source
    resolution** (pixels of the decoded file, bins of ~9%: an original photo has more pixels than its own aligned
    crop, a crop of it or a downscaled copy, even when the crop's face was upsampled to look larger), then the
    larger source face, a lossless file, the sharper face (among equal sources), the source path. Limitation: an
    *upscaled* copy has more pixels than its original and is kept."""
    px = max(int(r.get("width") or 0) * int(r.get("height") or 0), 1)
    return (r.get("_ovr") != "accept", -math.floor(math.log2(px) * 8), -_size_bin(f), _lossy(r), -_blur_bin(f),
            r["source_path"])


# --- stages ---------------------------------------------------------------------------------------------

def _status_and_overrides(records: list[dict], analyses: dict, table: OverrideTable | None) -> None:
    for r in records:
        o = table.lookup(r["source_path"]) if table else None
        r["_ovr"] = o.action if o else ""
        r["_trusted"] = bool(o and o.action == "identity" and not o.source_path.endswith("/"))
        if o:
            r["override"] = o.action if o.action != "identity" else f"identity:{o.identity}"
            if o.action == "identity":
                r["assigned_folder"] = o.identity
        an = analysis_of(analyses, r)
        if an["status"] != "ok":
            r["error"] = an.get("error", "")
            reject(r, "unreadable" if an["status"] == "unreadable" else "analysis_error")
            continue
        r["width"], r["height"] = an["width"], an["height"]
        r["n_faces"] = len(an["faces"])
        if r["_ovr"] == "reject":
            reject(r, "manual_reject")


def _exact_duplicates_within_folders(records: list[dict]) -> None:
    first: dict[tuple[str, str], str] = {}
    for r in records:
        if not alive(r):
            continue
        k = (r["assigned_folder"], r["sha256"])
        if k in first:
            r["duplicate_of"] = first[k]
            reject(r, "exact_duplicate")
        else:
            first[k] = r["source_path"]


def _choose_faces(records: list[dict], analyses: dict) -> None:
    """One significant face: use it; several: ``_pending`` until the folder's identity is known."""
    for r in records:
        if not alive(r):
            continue
        faces = analysis_of(analyses, r)["faces"]
        sig = [i for i, f in enumerate(faces) if f.get("significant")]
        if not faces:
            reject(r, "no_face")
        elif len(sig) == 1:
            r["face_index"] = sig[0]
        else:
            r["face_index"] = sig[0]
            r["_pending"] = sig


def _quality_gates(r: dict, analyses: dict, th: dict) -> None:
    f = face_of(r, analysis_of(analyses, r))
    fails = []
    if f["face_size"] < th["min_face_size"]:
        fails.append("face_too_small")
    if f["blur_var"] < th["min_blur"]:
        fails.append("blurry")
    if abs(f["yaw"]) > th["max_yaw"]:
        fails.append("extreme_pose")
    if fails and r["_ovr"] == "accept":
        r["flags"] += [f"overridden:{x}" for x in fails]
    elif fails:
        reject(r, fails[0])


def _group(records: list[dict]) -> dict[str, list[dict]]:
    by_folder: dict[str, list[dict]] = {}
    for r in records:
        by_folder.setdefault(r["assigned_folder"], []).append(r)
    return by_folder


def _resolve_pending(r: dict, an: dict, c: np.ndarray, analyses: dict, th: dict) -> bool:
    """Choose the face of a file with several significant faces: the one that matches the folder's identity.
    Returns False when the file is rejected as ambiguous."""
    t_id = th["identity_threshold"]
    d = {i: float(np.linalg.norm(np.asarray(an["faces"][i]["embedding"], np.float32) - c)) for i in r["_pending"]}
    match = [i for i in r["_pending"] if d[i] < t_id]
    if len(match) == 1:
        r["face_index"] = match[0]
    elif r["_ovr"] == "accept" or r["_trusted"]:
        r["face_index"] = min(r["_pending"], key=lambda i: (d[i], i)) if match else r["_pending"][0]
        r["flags"].append("overridden:multiple_faces_ambiguous")
    else:
        r["face_index"] = min(r["_pending"], key=lambda i: (d[i], i))
        r["identity_distance"] = round(d[r["face_index"]], 6)
        reject(r, "multiple_faces_ambiguous")
        return False
    _quality_gates(r, analyses, th)
    return True


def _verify_identities(records: list[dict], analyses: dict, th: dict) -> tuple[dict, dict]:
    """Each folder's dominant identity; resolves multi-face files and rejects outliers.
    Returns ``(identity info by folder, centroid by folder)``."""
    t_id = th["identity_threshold"]
    idinfo: dict[str, dict] = {}
    centroids: dict[str, np.ndarray] = {}
    for folder, rs in sorted(_group(records).items()):
        cand = [r for r in rs if alive(r) and "_pending" not in r and not r["_trusted"]]
        if not cand:  # only trusted moves: use them
            cand = [r for r in rs if alive(r) and "_pending" not in r]
        dom = None
        if cand:  # a folder may have no usable face at all (every file rejected earlier)
            emb = np.array([face_of(r, analysis_of(analyses, r))["embedding"] for r in cand], dtype=np.float32).reshape(len(cand), -1)
            dom = dominant_identity(emb, t_id)
        info = {"n_files": len(rs), "n_candidates": len(cand), "core": 0, "core_fraction": None, "anchor": ""}
        if dom is not None:
            centroids[folder] = dom.centroid
            info.update(core=len(dom.core), core_fraction=round(dom.core_fraction, 6), anchor=cand[dom.anchor]["source_path"])
        idinfo[folder] = info
        c = centroids.get(folder)
        for r in rs:
            an = analysis_of(analyses, r)
            if an["status"] != "ok" or c is None:
                continue
            if "_pending" in r and alive(r) and not _resolve_pending(r, an, c, analyses, th):
                continue
            f = face_of(r, an)
            if f is None or "embedding" not in f:
                continue
            r["identity_distance"] = round(float(np.linalg.norm(np.asarray(f["embedding"], np.float32) - c)), 6)
            if alive(r) and r["identity_distance"] >= t_id:
                if r["_ovr"] == "accept" or r["_trusted"]:
                    r["flags"].append("overridden:identity_outlier")
                else:
                    reject(r, "identity_outlier")
    for r in records:  # multi-face files of folders without any identity
        if "_pending" in r and alive(r) and r["assigned_folder"] not in centroids:
            if r["_ovr"] == "accept":
                _quality_gates(r, analyses, th)
            else:
                reject(r, "multiple_faces_ambiguous")
    return idinfo, centroids


def _collisions(records: list[dict], idinfo: dict, centroids: dict, th: dict) -> list:
    """Folders whose centroids collide; the same person twice (``merge`` suggestion) is handled by policy."""
    policy = th.get("on_collision", "merge")
    folders = sorted(centroids)
    cents = np.stack([centroids[f] for f in folders]) if folders else np.zeros((0, 1), np.float32)
    collisions = find_collisions(folders, cents, th["collision_threshold"], th["merge_threshold"])
    by_folder = _group(records)
    for comp in collision_components(folders, collisions, kind="merge"):
        if len(comp) < 2:
            continue
        keep = min(comp, key=lambda f: (-idinfo[f]["core"], f))
        for f in comp:
            if f == keep:
                continue
            idinfo[f]["merge_into"] = keep
            for r in by_folder[f]:
                r["collision_with"] = keep
                if policy == "merge":
                    r["assigned_folder"] = keep
                    r["flags"].append("merged_identity")
                elif not alive(r):
                    continue
                elif policy == "flag":
                    r["flags"].append("identity_collision")
                elif r["_ovr"] == "accept":
                    r["flags"].append("overridden:identity_collision")
                else:
                    reject(r, "identity_collision")
    return collisions


def _exact_duplicates_across_folders(records: list[dict]) -> None:
    sha_folders: dict[str, set[str]] = {}
    for r in records:
        if r["sha256"]:
            sha_folders.setdefault(r["sha256"], set()).add(r["assigned_folder"])
    kept: dict[str, str] = {}
    for r in records:
        if not r["sha256"]:
            continue
        others = sorted(sha_folders[r["sha256"]] - {r["assigned_folder"]})
        if others:
            r["same_image_in"] = ";".join(others)
            r["flags"].append("same_image_in_other_folder")
        if alive(r):
            if r["sha256"] in kept:
                r["duplicate_of"] = kept[r["sha256"]]
                reject(r, "exact_duplicate")
            else:
                kept[r["sha256"]] = r["source_path"]


def _near_duplicates(records: list[dict], analyses: dict, th: dict) -> None:
    for folder, rs in sorted(_group(records).items()):
        live = [r for r in rs if alive(r)]
        if len(live) < 2:
            continue
        fs = [face_of(r, analysis_of(analyses, r)) for r in live]
        emb = np.array([f["embedding"] for f in fs], dtype=np.float32)
        pairs = near_duplicate_pairs(emb, [f["phash"] for f in fs], [f["phash_mirror"] for f in fs],
                                     th["near_dup_distance"], th["near_dup_hash_bits"])
        pd_ = {(i, j): (d, h) for i, j, d, h in pairs}
        dropped = group_and_keep(len(live), pairs, [duplicate_rank(r, f) for r, f in zip(live, fs)])
        for i in sorted(dropped):
            k = dropped[i]
            r = live[i]
            r["duplicate_of"] = live[k]["source_path"]
            d, h = pd_.get((min(i, k), max(i, k)), (None, None))
            r["duplicate_distance"] = None if d is None else round(d, 6)
            r["duplicate_hash_bits"] = h
            if r["_ovr"] == "accept":
                r["flags"].append("overridden:near_duplicate")
            else:
                reject(r, "near_duplicate")


def _identity_limits(records: list[dict], analyses: dict, th: dict) -> None:
    for folder, rs in sorted(_group(records).items()):
        live = [r for r in rs if alive(r)]
        if not live:
            continue
        if len(live) < th["min_per_identity"]:
            for r in live:
                reject(r, "under_identity_limit")
        elif len(live) > th["max_per_identity"]:
            for r in sorted(live, key=lambda r: limit_rank(r, face_of(r, analysis_of(analyses, r))))[th["max_per_identity"]:]:
                reject(r, "over_identity_limit")


# --- per-folder work (what an engine runs) ---------------------------------------------------------------

def folder_identity(rs: list[dict], analyses: dict, th: dict) -> tuple[dict, np.ndarray | None]:
    """Steps 3-6 for the records of one assigned folder (mutated): exact duplicates within the folder, face choice,
    quality gates, the folder's dominant identity and its outliers. Returns ``(identity info, centroid or None)``."""
    _exact_duplicates_within_folders(rs)
    _choose_faces(rs, analyses)
    for r in rs:
        if alive(r) and "_pending" not in r:
            _quality_gates(r, analyses, th)
    idinfo, centroids = _verify_identities(rs, analyses, th)
    folder = rs[0]["assigned_folder"]
    return idinfo[folder], centroids.get(folder)


def folder_dedup(rs: list[dict], analyses: dict, th: dict) -> None:
    """Steps 9-10 for the records of one assigned folder (after merges; mutated): near duplicates, then limits."""
    _near_duplicates(rs, analyses, th)
    _identity_limits(rs, analyses, th)


def decide_folders_batch(tasks: list[tuple[str, list[dict], dict, dict]]) -> list[Any]:
    """Engine function: each ``(step, records of one folder, their analyses, thresholds)`` -> ``(records, info,
    centroid)`` for step ``"identity"`` (:func:`folder_identity`), ``records`` for ``"dedup"``
    (:func:`folder_dedup`). The records come back decided (copies when the engine runs elsewhere)."""
    out: list[Any] = []
    for step, rs, an, th in tasks:
        if step == "identity":
            info, c = folder_identity(rs, an, th)
            out.append((rs, info, c))
        else:
            folder_dedup(rs, an, th)
            out.append(rs)
    return out


FOLDER_BATCH = 128  # folders per engine task: per-folder work takes milliseconds (a small crawl: one task)


def _per_folder(step: str, records: list[dict], analyses: dict, th: dict, engine) -> dict[str, Any]:
    """Run ``step`` on every assigned folder (in this process, or through ``engine``); decided records are copied
    back into ``records`` in place (the caller's dicts stay the same objects). A folder whose work failed has its
    live files rejected ``analysis_error`` with the error. Returns ``{folder: result}`` for ``identity``."""
    groups = sorted(_group(records).items())
    if engine is None:
        out: dict[str, Any] = {}
        for folder, rs in groups:
            if step == "identity":
                out[folder] = folder_identity(rs, analyses, th)
            else:
                folder_dedup(rs, analyses, th)
        return out
    tasks = [(step, rs, {k: analyses[k] for k in {r.get("_akey") or r["sha256"] for r in rs}}, th) for _, rs in groups]
    out = {}
    for (folder, rs), res in zip(groups, engine.map(decide_folders_batch, tasks, keys=[f for f, _ in groups],
                                                    batch_size=FOLDER_BATCH, desc=f"decide ({step})", unit="folder")):
        if not res.ok:
            for r in rs:
                if alive(r):
                    r["error"] = f"decision failed ({res.error})"
                    reject(r, "analysis_error")
            if step == "identity":
                out[folder] = ({"n_files": len(rs), "n_candidates": 0, "core": 0, "core_fraction": None, "anchor": ""},
                               None)
            continue
        new = res.value[0] if step == "identity" else res.value
        for r, n in zip(rs, new):
            if n is not r:
                r.clear()
                r.update(n)
        if step == "identity":
            out[folder] = res.value[1:]
    return out


def decide(records: list[dict], analyses: dict[str, dict], th: dict, table: OverrideTable | None,
           engine: Any = None) -> dict:
    """Take every decision (mutates ``records``, which must be in sorted ``source_path`` order). Returns
    ``{"identities": {folder: info}, "collisions": [...], "centroids": {folder: unit vector}}``.
    ``engine``: a :class:`celebref.engine.Engine` for the per-folder steps (``None``: in this process)."""
    _status_and_overrides(records, analyses, table)
    per = _per_folder("identity", records, analyses, th, engine)
    idinfo = {f: info for f, (info, _) in per.items()}
    centroids = {f: c for f, (_, c) in per.items() if c is not None}
    collisions = _collisions(records, idinfo, centroids, th)
    _exact_duplicates_across_folders(records)
    _per_folder("dedup", records, analyses, th, engine)
    for r in records:
        if alive(r):
            r["decision"] = "accepted"
    return {"identities": idinfo, "collisions": collisions, "centroids": centroids}
