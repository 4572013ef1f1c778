"""The evaluate report's gallery: per image, LQ | each method | GT thumbnails with eye/mouth detail crops (set
apart under each face), the per-image metric values for sorting (worst first), paginated in the browser by
``static/gallery.js``; a click on a face shows LQ | that face | GT side by side, enlarged (at least their own size).

The data goes to ``assets/gallery-data.js`` as JSON (strings are inserted with ``textContent`` only: ids and
identities come from crawls). Values are rounded to 4 decimals; NaN becomes ``null`` (shown as n/a, sorted
first); +inf (PSNR of a result identical to the ground truth) stays ``Infinity`` (shown as ∞).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from celebref.face.landmark_io import LandmarkFileError, read_landmarks
from celebref.fsutil import atomic_write_text
from celebref.progress import progress

from . import assets

PAGE_SIZE = 20


def num(v) -> float:
    """``v`` as a float (NaN when it is not a number)."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _landmarks_for(row: dict) -> np.ndarray | None:
    """GT landmarks for detail crops: the degrade manifest's landmark file beside the GT, when any."""
    path = row.get("landmarks_path")
    if isinstance(path, str) and path and Path(path).is_file():
        try:
            return read_landmarks(path)
        except LandmarkFileError:
            return None
    return None


def build_gallery(run_dir: Path, per: pd.DataFrame, methods: list[str], per_metrics: list[str],
                  labels: dict[str, str], higher: dict[str, bool], assets_dir: Path) -> dict:
    """Thumbnails and crops under ``assets_dir``, ``gallery-data.js`` beside them; returns the gallery dict
    (columns, rows sorted worst first by the default key, sort keys with their display names)."""
    shown = [m for m in methods if m != "lq"]
    ids = list(dict.fromkeys(per["id"]))
    by = {(r["id"], r["method"]): r for r in per.to_dict("records")}
    has_gt = any(isinstance(r.get("gt_path"), str) and r["gt_path"].strip() for r in by.values())
    rows = []
    for i in progress(ids, desc="report gallery"):
        base = by.get((i, "lq")) or next(by[(i, m)] for m in methods if (i, m) in by)
        lms = _landmarks_for(base)
        cols = [("LQ", Path(base["lq_path"]) if base.get("lq_path") else None)]
        for m in shown:
            r = by.get((i, m))
            cols.append((m, run_dir / r["output_path"] if r is not None and r.get("output_path") else None))
        if has_gt:  # a run on real photos has no ground truth: no empty GT column
            cols.append(("GT", Path(base["gt_path"]) if base.get("gt_path") else None))
        cells = []
        for label, src in cols:
            t = assets.thumbnail(src, assets_dir) if src is not None and src.is_file() else None
            d = assets.detail_crops(src, lms, assets_dir) if t and lms is not None else None
            f = assets.full_image(src, assets_dir) if t else None
            r = by.get((i, label))
            cells.append({"label": label, "thumb": f"assets/{t}" if t else None, "detail": f"assets/{d}" if d else None,
                          "full": f"assets/{f}" if f else None,
                          "status": (r or {}).get("status", "") if label not in ("LQ", "GT") else "",
                          "reason": (r or {}).get("reason", "") if label not in ("LQ", "GT") else ""})
        values = {m: {k: (None if math.isnan(num(by[(i, m)].get(k))) else round(num(by[(i, m)].get(k)), 4))
                      for k in per_metrics} for m in methods if (i, m) in by}
        rows.append({"id": str(i), "identity": str(base.get("identity") or ""), "cells": cells, "values": values})
    sort_keys = [f"{m}:{k}" for m in (shown or methods) for k in per_metrics]
    key_labels = {k: f"{k.split(':', 1)[0]} {labels.get(k.split(':', 1)[1], k.split(':', 1)[1])}" for k in sort_keys}
    default_key = sort_keys[0] if sort_keys else ""

    def sort_value(row, key):
        if not key:
            return 0.0
        m, k = key.split(":", 1)
        v = row["values"].get(m, {}).get(k)
        if v is None:
            return -math.inf  # failures first: they are the worst
        return v if higher.get(k, True) else -v

    rows.sort(key=lambda r: (sort_value(r, default_key), r["id"]))
    gallery = {"columns": [c["label"] for c in rows[0]["cells"]] if rows else [], "rows": rows,
               "has_detail": any(c["detail"] for r in rows for c in r["cells"]),
               "sort_keys": sort_keys, "key_labels": key_labels, "default_sort": default_key, "higher": higher,
               "page_size": PAGE_SIZE}
    atomic_write_text(assets_dir / "gallery-data.js",
                      "window.CELEBREF_GALLERY = " + json.dumps(gallery, ensure_ascii=True) + ";\n")
    return gallery
