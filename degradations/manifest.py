"""The manifest of an LQ test set: its columns and types, the files' layout, and the resume journal.

Layout of ``<out>`` (``docs/FORMATS.md``, "celebref degrade output")::

    lq/<id>.png                   one LQ image per accepted input (ids may contain '/')
    lq_native/<id>.png            the LQ at its native low resolution (when a downscale was applied)
    manifest.parquet, .csv        one row per input, sorted by id (columns: MANIFEST_COLUMNS, then plugin-op params)
    degrade.json                  preset, seed, pipeline (as data), overrides, lq size, versions, untouched images
    GenericLists.txt              DMDNet list: one LQ path per line (relative to <out>)
    SpecificLists.txt             DMDNet list: LQ<TAB>RefDir<TAB>RefLandmarkDir (identity-grouped input)
    refs/<id>/images/, landmarks/ per-LQ reference folders for SpecificLists (the LQ's own GT left out)

``untouched`` is true for an image that drew no degradation (every ``*_applied`` false); ``redraws`` is the
redraw used for its parameters (0: its own draw; see :class:`~degradations.job.Job`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from celebref.journal import Journal

from .factors import PARAM_NAMES

__all__ = ["JOURNAL", "MANIFEST_COLUMNS", "json_default", "lq_relpath", "manifest_frame", "native_relpath", "read_previous"]

JOURNAL = ".degrade-journal.jsonl"
MANIFEST_COLUMNS = (
    "id", "identity", "status", "reason", "gt_path", "gt_path_abs", "gt_sha256", "gt_width", "gt_height", "landmarks_path",
    "preset", "seed", "lq_path", "lq_sha256", "lq_size", "lq_width", "lq_height", "lq_native_width", "lq_native_height", "lq_native_path", "lq_native_sha256",
    *PARAM_NAMES, "untouched", "redraws", "ref_dir", "ref_landmark_dir", "n_refs",
)
_STR_COLUMNS = ("id", "identity", "status", "reason", "gt_path", "gt_path_abs", "gt_sha256", "landmarks_path", "preset", "lq_path",
                "lq_sha256", "lq_size", "lq_native_path", "lq_native_sha256", "blur_kernel", "blur_type", "noise_kind", "color_order", "ref_dir",
                "ref_landmark_dir")
_INT_COLUMNS = ("seed", "n_refs", "redraws")


def lq_relpath(image_id: str) -> str:
    """``lq/<id>.png`` (POSIX separators)."""
    return f"lq/{image_id}.png"


def native_relpath(image_id: str) -> str:
    """``lq_native/<id>.png``: the LQ before it is upsampled back (written when a downscale was applied)."""
    return f"lq_native/{image_id}.png"


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def manifest_frame(rows: Iterable[dict]) -> pd.DataFrame:
    """The manifest table of ``rows`` with stable column types: flags bool, names str, counts int64, the rest
    float64. Columns beyond :data:`MANIFEST_COLUMNS` (parameters of plugin ops) follow in sorted order."""
    rows = list(rows)
    extra = sorted({k for r in rows for k in r} - set(MANIFEST_COLUMNS))
    df = pd.DataFrame(rows, columns=[*MANIFEST_COLUMNS, *extra])
    for c in df.columns:
        if c.endswith("_applied") or c in ("noise_gray", "untouched"):
            df[c] = df[c].map(lambda v: bool(v) if not _missing(v) else False).astype(bool)
        elif c in _STR_COLUMNS:
            df[c] = df[c].map(lambda v: "" if _missing(v) else str(v)).astype(object)
        elif c in _INT_COLUMNS:
            df[c] = df[c].fillna(0).astype("int64")
        elif c in extra and df[c].map(lambda v: isinstance(v, str)).any():
            df[c] = df[c].map(lambda v: "" if _missing(v) else str(v)).astype(object)
        else:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return df


def read_previous(out: Path) -> dict[str, dict]:
    """Rows of an earlier run in ``out`` (its manifest, then its journal), by id; damaged parts are ignored."""
    rows: dict[str, dict] = {}
    manifest = out / "manifest.parquet"
    if manifest.is_file():
        try:
            for r in pd.read_parquet(manifest).to_dict("records"):
                rows[str(r["id"])] = r
        except Exception:  # noqa: BLE001 - a damaged manifest just means recomputing
            rows = {}
    for r in Journal(out / JOURNAL).rows():  # a line cut by an interruption is not a row
        if "id" in r:
            rows[str(r["id"])] = r
    return rows


def json_default(v: Any) -> Any:
    """JSON for NumPy scalars (journal lines)."""
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return str(v)
