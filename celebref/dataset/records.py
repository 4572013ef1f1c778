"""Per-file records of a build: their fields, the decision vocabulary and the funnel.

A record is a ``dict`` with the manifest's keys (see :mod:`celebref.dataset.manifest`) plus private keys
starting with ``_`` (``_abs``: the path to read; ``_ovr``, ``_trusted``, ``_pending``: decision state).
``decision`` is ``accepted``, ``rejected`` (an input file that is not used, ``reason`` says why) or ``skipped``
(a file that is not an input at all, see :mod:`celebref.dataset.scan`).
"""

from __future__ import annotations

from .scan import SKIP_REASONS, ScanItem, ScanSkip

REASONS = (
    "unreadable", "analysis_error", "no_face", "multiple_faces_ambiguous", "face_too_small", "blurry", "extreme_pose",
    "identity_outlier", "exact_duplicate", "near_duplicate", "identity_collision", "over_identity_limit",
    "under_identity_limit", "manual_reject", "other_face",
) + SKIP_REASONS
# funnel stage at which each reason removes an input file
REASON_STAGE = {
    "unreadable": "decoded", "analysis_error": "decoded",
    "no_face": "faces", "multiple_faces_ambiguous": "faces",
    "face_too_small": "quality", "blurry": "quality", "extreme_pose": "quality",
    "identity_outlier": "identity", "identity_collision": "identity",
    "exact_duplicate": "dedup", "near_duplicate": "dedup",
    "over_identity_limit": "final", "under_identity_limit": "final", "manual_reject": "final",
}
FUNNEL = ("raw", "decoded", "faces", "quality", "identity", "dedup", "final")


def new_record(item: ScanItem, sha: str) -> dict:
    """The record of an input file (``sha``: its content hash, ``""`` when it could not be read)."""
    return {
        "source_path": item.source_path, "source_path_hex": item.source_path_hex, "sha256": sha,
        "identity_folder": item.identity_folder, "assigned_folder": item.identity_folder, "file_size": int(item.size),
        "is_primary": True, "face_index": None, "n_faces": 0, "decision": "", "reason": "", "error": "",
        "duplicate_of": "", "duplicate_distance": None, "duplicate_hash_bits": None, "identity_distance": None,
        "collision_with": "", "same_image_in": "", "override": "", "flags": [], "_abs": str(item.abs_path),
    }


def skipped_record(s: ScanSkip) -> dict:
    """The manifest record of a file that is not an input."""
    return {"source_path": s.source_path, "source_path_hex": s.source_path_hex, "identity_folder": s.identity_folder,
            "assigned_folder": s.identity_folder, "is_primary": True, "decision": "skipped", "reason": s.reason,
            "error": s.detail, "flags": []}


def reject(r: dict, reason: str) -> None:
    """Reject ``r`` for ``reason`` unless an earlier stage already did (the first reason is kept)."""
    if not r["reason"]:
        r["reason"] = reason
        r["decision"] = "rejected"


def alive(r: dict) -> bool:
    return not r["reason"]


def analysis_of(analyses: dict, r: dict) -> dict:
    """The analysis record of ``r`` (keyed by content hash, or by ``_akey`` when set)."""
    return analyses[r.get("_akey") or r["sha256"]]


def face_of(r: dict, an: dict) -> dict | None:
    i = r["face_index"]
    return None if i is None else an["faces"][i]


def funnel(records: list[dict]) -> dict[str, int]:
    """Ordered ``{stage: files still in}`` over the primary records of input files (skipped files excluded)."""
    prim = [r for r in records if r["is_primary"] and r["decision"] != "skipped"]
    out = {"raw": len(prim)}
    gone = 0
    for stage in FUNNEL[1:]:
        gone += sum(1 for r in prim if r["decision"] == "rejected" and REASON_STAGE.get(r["reason"]) == stage)
        out[stage] = len(prim) - gone
    return out
