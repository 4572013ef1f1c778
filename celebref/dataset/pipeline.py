"""``celebref build``: crawl folder -> CelebRef-HQ-layout dataset, with a reason for every file.

Stages (see :mod:`celebref.dataset`): scan -> hash -> analyse (cached, worker processes) -> decide -> split ->
write. Decisions are taken per input file in this order (the first that applies is the file's ``reason``):

1. ``unreadable`` (the shared reader refused it) / ``analysis_error``;
2. ``manual_reject`` (overrides);
3. ``exact_duplicate`` of an earlier file (sorted order) with the same content in the same person folder;
4. ``no_face``; several significant faces and none or several match the folder's identity:
   ``multiple_faces_ambiguous`` (one match: that face is used);
5. quality gates on the source face: ``face_too_small``, ``blurry``, ``extreme_pose``;
6. ``identity_outlier`` (farther than the threshold from the folder's dominant identity);
7. ``identity_collision`` (the folder's identity is the same person as a larger folder's: merge suggested);
8. ``exact_duplicate`` across folders (the same content kept once, in its first surviving folder);
9. ``near_duplicate`` within the identity (the best-quality copy is kept);
10. ``under_identity_limit`` / ``over_identity_limit``.

Everything after the analysis is deterministic and independent of worker count and completion order: records are
kept in sorted ``source_path`` order, and output numbering follows that order.

Scaling: the analysis is a pure per-file function (:func:`celebref.dataset.stages.analyze_file`: path + settings ->
JSON record) run by local worker processes, so a distributed engine (e.g. Ray Data ``map`` over the file list)
can run it behind the same command; the decisions need only the records (per-folder work, folder centroids
across folders, never an N x N matrix over the crawl). Records are held in memory (~10 KB per file).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ConfigError
from ..fsutil import sha256_file
from ..progress import progress
from .cache import StageCache, settings_key
from .dedup import group_and_keep, near_duplicate_pairs
from .identity import collision_components, dominant_identity, find_collisions
from .overrides import OverrideTable, read_overrides
from .scan import scan_crawl
from .split import leakage_check
from .stages import AnalysisSettings, backend_info, run_analysis

REASONS = (
    "unreadable", "analysis_error", "no_face", "multiple_faces_ambiguous", "face_too_small", "blurry", "extreme_pose",
    "identity_outlier", "exact_duplicate", "near_duplicate", "identity_collision", "over_identity_limit",
    "under_identity_limit", "manual_reject", "other_face",
)
# funnel stage at which each reason removes a file
REASON_STAGE = {
    "unreadable": "decoded", "analysis_error": "decoded",
    "no_face": "faces", "multiple_faces_ambiguous": "faces",
    "face_too_small": "quality", "blurry": "quality", "extreme_pose": "quality",
    "identity_outlier": "identity", "identity_collision": "identity",
    "exact_duplicate": "dedup", "near_duplicate": "dedup",
    "over_identity_limit": "final", "under_identity_limit": "final", "manual_reject": "final",
}
FUNNEL = ("raw", "decoded", "faces", "quality", "identity", "dedup", "final")


class BuildInterrupted(KeyboardInterrupt):
    """Raised by the test hook ``CELEBREF_BUILD_INTERRUPT=<stage>:<n>`` (stage ``analyze`` or ``write``) after
    ``n`` items of that stage, to simulate a kill at a chosen point."""


def interrupt_hook(stage: str) -> Callable[[int], None]:
    spec = os.environ.get("CELEBREF_BUILD_INTERRUPT", "")
    want = None
    if spec.startswith(stage + ":"):
        want = int(spec.split(":", 1)[1])

    def check(done: int) -> None:
        if want is not None and done >= want:
            raise BuildInterrupted(f"test interrupt after {done} {stage} items")

    return check


@dataclass
class BuildConfig:
    """Settings of one build. Thresholds left at ``None`` take the backend's calibrated defaults:
    ``identity_threshold`` = ``backend.same_identity_threshold`` (dlib: 0.40 on normalised descriptors =
    dlib's 0.6 on raw descriptors), ``collision_threshold`` = identity threshold, ``merge_threshold`` = half of it,
    ``near_dup_distance`` = half of it. Distances are Euclidean between unit-norm embeddings."""

    crawl: Path
    out: Path
    backend: str | None = None
    workers: int = 1
    overrides: Path | None = None
    seed: int = 0
    identity_threshold: float | None = None
    collision_threshold: float | None = None
    merge_threshold: float | None = None
    near_dup_distance: float | None = None
    near_dup_hash_bits: int = 10
    min_face_size: float = 256.0
    min_blur: float = 25.0
    max_yaw: float = 70.0
    min_per_identity: int = 3
    max_per_identity: int = 21
    test_fraction: float = 0.1
    probes_per_identity: int = 1
    cache_dir: Path | None = None
    use_cache: bool = True
    command: str | None = None
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)

    def resolved(self, be) -> dict:
        t = float(self.identity_threshold if self.identity_threshold is not None else be.same_identity_threshold)
        return {
            "identity_threshold": t,
            "collision_threshold": float(self.collision_threshold if self.collision_threshold is not None else t),
            "merge_threshold": float(self.merge_threshold if self.merge_threshold is not None else 0.5 * t),
            "near_dup_distance": float(self.near_dup_distance if self.near_dup_distance is not None else 0.5 * t),
            "near_dup_hash_bits": int(self.near_dup_hash_bits),
            "min_face_size": float(self.min_face_size),
            "min_blur": float(self.min_blur),
            "max_yaw": float(self.max_yaw),
            "min_per_identity": int(self.min_per_identity),
            "max_per_identity": int(self.max_per_identity),
            "test_fraction": float(self.test_fraction),
            "probes_per_identity": int(self.probes_per_identity),
            "seed": int(self.seed),
        }

    def validate(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.min_per_identity < 1 or self.max_per_identity < self.min_per_identity:
            raise ConfigError(f"need 1 <= --min-per-identity <= --max-per-identity, got {self.min_per_identity}, {self.max_per_identity}")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ConfigError(f"--test-fraction must be in [0, 1), got {self.test_fraction}")


# --- records ----------------------------------------------------------------------------------------

def _new_record(item, sha: str) -> dict:
    return {
        "source_path": item.source_path, "sha256": sha, "identity_folder": item.identity_folder,
        "assigned_folder": item.identity_folder, "file_size": int(item.size), "is_primary": True,
        "face_index": None, "n_faces": 0, "decision": "", "reason": "", "error": "", "duplicate_of": "",
        "duplicate_distance": None, "duplicate_hash_bits": None, "identity_distance": None, "collision_with": "",
        "same_image_in": "", "override": "", "flags": [], "_abs": str(item.abs_path),
    }


def _reject(r: dict, reason: str) -> None:
    if not r["reason"]:
        r["reason"] = reason
        r["decision"] = "rejected"


def _alive(r: dict) -> bool:
    return not r["reason"]


def _face(r: dict, an: dict) -> dict | None:
    i = r["face_index"]
    return None if i is None else an["faces"][i]


def decide(records: list[dict], analyses: dict[str, dict], th: dict, table: OverrideTable | None) -> dict:
    """Take every decision (mutates ``records``, which must be in sorted ``source_path`` order). Returns
    ``{"identities": {folder: info}, "collisions": [...]}``."""
    t_id = th["identity_threshold"]
    # overrides, unreadable, manual reject
    for r in records:
        o = table.lookup(r["source_path"]) if table else None
        r["_ovr"] = o.action if o else ""
        r["_trusted"] = bool(o and o.action == "identity" and not o.source_path.endswith("/"))
        if o:
            r["override"] = o.action if o.action != "identity" else f"identity:{o.identity}"
            if o.action == "identity":
                r["assigned_folder"] = o.identity
        an = analyses[r["sha256"]]
        if an["status"] != "ok":
            r["error"] = an.get("error", "")
            _reject(r, "unreadable" if an["status"] == "unreadable" else "analysis_error")
            continue
        r["width"], r["height"] = an["width"], an["height"]
        r["n_faces"] = len(an["faces"])
        if r["_ovr"] == "reject":
            _reject(r, "manual_reject")
    # exact duplicates within a folder
    first: dict[tuple[str, str], str] = {}
    for r in records:
        if not _alive(r):
            continue
        k = (r["assigned_folder"], r["sha256"])
        if k in first:
            r["duplicate_of"] = first[k]
            _reject(r, "exact_duplicate")
        else:
            first[k] = r["source_path"]
    # faces
    pending: list[dict] = []
    for r in records:
        if not _alive(r):
            continue
        faces = analyses[r["sha256"]]["faces"]
        sig = [i for i, f in enumerate(faces) if f.get("significant")]
        if not faces:
            _reject(r, "no_face")
        elif len(sig) == 1:
            r["face_index"] = sig[0]
        else:
            r["face_index"] = sig[0]
            r["_pending"] = sig
            pending.append(r)

    def quality_gates(r: dict) -> None:
        f = _face(r, analyses[r["sha256"]])
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
            _reject(r, fails[0])

    for r in records:
        if _alive(r) and "_pending" not in r:
            quality_gates(r)
    # identity per folder
    by_folder: dict[str, list[dict]] = {}
    for r in records:
        by_folder.setdefault(r["assigned_folder"], []).append(r)
    idinfo: dict[str, dict] = {}
    centroids: dict[str, np.ndarray] = {}
    for folder in sorted(by_folder):
        rs = by_folder[folder]
        cand = [r for r in rs if _alive(r) and "_pending" not in r and not r["_trusted"]]
        if not cand:  # only trusted moves: use them
            cand = [r for r in rs if _alive(r) and "_pending" not in r]
        dom = None
        if cand:  # a folder may have no usable face at all (every file rejected earlier)
            emb = np.array([_face(r, analyses[r["sha256"]])["embedding"] for r in cand], dtype=np.float32).reshape(len(cand), -1)
            dom = dominant_identity(emb, t_id)
        info = {"n_files": len(rs), "n_candidates": len(cand), "core": 0, "core_fraction": None, "anchor": ""}
        if dom is not None:
            centroids[folder] = dom.centroid
            info.update(core=len(dom.core), core_fraction=round(dom.core_fraction, 6), anchor=cand[dom.anchor]["source_path"])
        idinfo[folder] = info
        c = centroids.get(folder)
        for r in rs:
            an = analyses[r["sha256"]]
            if an["status"] != "ok" or c is None:
                continue
            if "_pending" in r and _alive(r):
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
                    _reject(r, "multiple_faces_ambiguous")
                    continue
                quality_gates(r)
            f = _face(r, an)
            if f is None or "embedding" not in f:
                continue
            r["identity_distance"] = round(float(np.linalg.norm(np.asarray(f["embedding"], np.float32) - c)), 6)
            if _alive(r) and r["identity_distance"] >= t_id:
                if r["_ovr"] == "accept" or r["_trusted"]:
                    r["flags"].append("overridden:identity_outlier")
                else:
                    _reject(r, "identity_outlier")
    for r in records:  # pending files of folders without any identity
        if "_pending" in r and _alive(r) and r["assigned_folder"] not in centroids:
            if r["_ovr"] == "accept":
                quality_gates(r)
            else:
                _reject(r, "multiple_faces_ambiguous")
    # collisions between folders (centroids only)
    folders = sorted(centroids)
    cents = np.stack([centroids[f] for f in folders]) if folders else np.zeros((0, 1), np.float32)
    collisions = find_collisions(folders, cents, th["collision_threshold"], th["merge_threshold"])
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
                if _alive(r):
                    if r["_ovr"] == "accept":
                        r["flags"].append("overridden:identity_collision")
                    else:
                        _reject(r, "identity_collision")
    # the same content in several folders
    sha_folders: dict[str, set[str]] = {}
    for r in records:
        sha_folders.setdefault(r["sha256"], set()).add(r["assigned_folder"])
    kept: dict[str, str] = {}
    for r in records:
        others = sorted(sha_folders[r["sha256"]] - {r["assigned_folder"]})
        if others:
            r["same_image_in"] = ";".join(others)
            r["flags"].append("same_image_in_other_folder")
        if _alive(r):
            if r["sha256"] in kept:
                r["duplicate_of"] = kept[r["sha256"]]
                _reject(r, "exact_duplicate")
            else:
                kept[r["sha256"]] = r["source_path"]
    # near duplicates within each identity

    def rank(r: dict):
        return keep_rank(r, _face(r, analyses[r["sha256"]]))

    for folder in sorted(by_folder):
        alive = [r for r in by_folder[folder] if _alive(r)]
        if len(alive) < 2:
            continue
        fs = [_face(r, analyses[r["sha256"]]) for r in alive]
        emb = np.array([f["embedding"] for f in fs], dtype=np.float32)
        pairs = near_duplicate_pairs(emb, [f["phash"] for f in fs], [f["phash_mirror"] for f in fs],
                                     th["near_dup_distance"], th["near_dup_hash_bits"])
        pd_ = {(i, j): (d, h) for i, j, d, h in pairs}
        dropped = group_and_keep(len(alive), pairs, [rank(r) for r in alive])
        for i in sorted(dropped):
            k = dropped[i]
            r = alive[i]
            r["duplicate_of"] = alive[k]["source_path"]
            d, h = pd_.get((min(i, k), max(i, k)), (None, None))
            r["duplicate_distance"] = None if d is None else round(d, 6)
            r["duplicate_hash_bits"] = h
            if r["_ovr"] == "accept":
                r["flags"].append("overridden:near_duplicate")
            else:
                _reject(r, "near_duplicate")
    # per-identity limits
    for folder in sorted(by_folder):
        alive = [r for r in by_folder[folder] if _alive(r)]
        if not alive:
            continue
        if len(alive) < th["min_per_identity"]:
            for r in alive:
                _reject(r, "under_identity_limit")
        elif len(alive) > th["max_per_identity"]:
            for r in sorted(alive, key=rank)[th["max_per_identity"]:]:
                _reject(r, "over_identity_limit")
    for r in records:
        if _alive(r):
            r["decision"] = "accepted"
    return {"identities": idinfo, "collisions": collisions, "centroids": centroids}


LOSSY_EXTENSIONS = (".jpg", ".jpeg", ".webp")


def keep_rank(r: dict, f: dict) -> tuple:
    """Sort key choosing which copy of a near-duplicate group to keep (smallest first): a manual ``accept`` first,
    then the larger source face (bins of ~4.4%), then a lossless file over a lossy one (JPEG/WebP), then the
    sharper face (bins of ~19% in Laplacian variance), then the source path."""
    import math

    size_bin = math.floor(math.log2(max(f["face_size"], 1.0)) * 16)
    blur_bin = math.floor(math.log2(1.0 + max(f["blur_var"], 0.0)) * 4)
    lossy = os.path.splitext(r["source_path"])[1].lower() in LOSSY_EXTENSIONS
    return (r.get("_ovr") != "accept", -size_bin, lossy, -blur_bin, r["source_path"])


def funnel(records: list[dict]) -> dict[str, int]:
    """Ordered ``{stage: files still in}`` over primary records."""
    prim = [r for r in records if r["is_primary"]]
    out = {"raw": len(prim)}
    gone = 0
    for stage in FUNNEL[1:]:
        gone += sum(1 for r in prim if r["decision"] == "rejected" and REASON_STAGE.get(r["reason"]) == stage)
        out[stage] = len(prim) - gone
    return out


# --- the build ----------------------------------------------------------------------------------------

def build_dataset(cfg: BuildConfig, log: Callable[[str], None] | None = None) -> dict:
    """Run the whole build; returns the ``build.json`` content. See the module docstring."""
    from ..face import get_backend
    from . import writer

    log = log or (lambda s: print(s, file=sys.stderr))
    cfg.validate()
    crawl, out = Path(cfg.crawl).resolve(), Path(cfg.out).resolve()
    be = get_backend(cfg.backend)
    log(f"face backend: {be.name} ({'chosen' if cfg.backend else 'auto: insightface when its model files are present, else dlib'})")
    th = cfg.resolved(be)
    table = OverrideTable(read_overrides(cfg.overrides)) if cfg.overrides else None
    items, ignored = scan_crawl(crawl, exclude=[out])
    if not items:
        raise ConfigError(f"no image files found under person folders of {str(crawl)!r}")
    cache = StageCache(Path(cfg.cache_dir) if cfg.cache_dir else out / "cache", enabled=cfg.use_cache)
    binfo = backend_info(be)
    akey = cfg.analysis.key(binfo)

    records = [_new_record(it, sha256_file(it.abs_path)) for it in progress(items, "hash", unit="file")]
    analyses: dict[str, dict] = {}
    todo: list[tuple[str, str]] = []
    seen: set[str] = set()
    for r in records:
        sha = r["sha256"]
        if sha in seen:
            continue
        seen.add(sha)
        hit = cache.get("analyze", settings_key("analyze", sha, akey))
        if hit is not None:
            analyses[sha] = hit
        else:
            todo.append((sha, r["_abs"]))
    log(f"{len(items)} input files, {len({r['sha256'] for r in records})} distinct contents, {len(todo)} to analyse")

    check = interrupt_hook("analyze")

    def on_result(sha: str, rec: dict) -> None:
        analyses[sha] = rec
        if rec["status"] != "error":
            cache.put("analyze", settings_key("analyze", sha, akey), rec)

    done = 0
    for _ in progress(run_analysis(todo, cfg.analysis, be.name, be, cfg.workers, on_result), "analyse", total=len(todo)):
        done += 1
        check(done)

    result = decide(records, analyses, th, table)
    plan = writer.plan_outputs(records, analyses, result, th)
    rep = leakage_check([r for r in records if r["decision"] == "accepted"], plan["centroids_by_id"], th["identity_threshold"])
    fun = funnel(records)
    prim = [r for r in records if r["is_primary"]]
    n_acc = sum(r["decision"] == "accepted" for r in prim)
    n_rej = sum(r["decision"] == "rejected" for r in prim)
    if n_acc + n_rej != len(items):
        raise RuntimeError(f"internal error: accepted {n_acc} + rejected {n_rej} != {len(items)} inputs")
    reasons: dict[str, int] = {}
    for r in prim:
        if r["reason"]:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    meta = {
        "backend": binfo, "thresholds": th, "analysis": akey, "seed": cfg.seed,
        "funnel": fun, "reasons": dict(sorted(reasons.items())),
        "inputs": len(items), "accepted": n_acc, "rejected": n_rej, "ignored_files": ignored,
        "identities": {f: result["identities"][f] for f in sorted(result["identities"])},
        "n_identities": len(plan["identities"]), "leakage": rep.to_dict(),
        "overrides": {"file": str(cfg.overrides) if cfg.overrides else None,
                      "unmatched": table.unmatched() if table else []},
        "specific_lists_skipped": plan["skipped_probes"],
    }
    writer.write_dataset(out, crawl, records, analyses, result, plan, meta, cfg, be, cache)
    log(format_summary(meta))
    return meta


def format_summary(meta: dict) -> str:
    f = meta["funnel"]
    lines = ["funnel: " + " -> ".join(f"{k} {v}" for k, v in f.items())]
    if meta["reasons"]:
        lines.append("rejected by reason: " + ", ".join(f"{k} {v}" for k, v in meta["reasons"].items()))
    lines.append(f"accepted {meta['accepted']} + rejected {meta['rejected']} = {meta['accepted'] + meta['rejected']} = inputs {meta['inputs']}: "
                 + ("OK" if meta["accepted"] + meta["rejected"] == meta["inputs"] else "MISMATCH"))
    lines.append(f"identities: {meta['n_identities']}; leakage check: {'OK' if meta['leakage']['ok'] else 'FAILED ' + json.dumps(meta['leakage'])}")
    return "\n".join(lines)
