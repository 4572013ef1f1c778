"""The evaluate report's real-world section: runs on photos without ground truth (``per_image`` ``gt_path`` empty).

It shows what such a run can say (issue 20): the no-reference metrics per method (every per-image metric of a run
without ground truth is one), FID against the named reference statistics (``run.json`` ``fid_reference`` and the
``dataset_metrics`` rows), identity to the input (column :data:`IDENTITY_COLUMN`: cosine between the embeddings of
the LQ input's face and the restored face), how many restored faces fall below the low-identity threshold, and the
input/output pairs sorted by that score, lowest first.

Threshold: ``run.json`` ``low_identity_threshold``, else a ``threshold`` recorded in the identity-input metric's
description, else :data:`DEFAULT_LOW_IDENTITY` = 0.30, the lowest of the NTIRE 2025 real-world face restoration
challenge's per-set AdaFace thresholds (0.30 WIDER/WebPhoto, 0.50 CelebA, 0.60 LFW/CelebChild). The section says
which one it used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import assets
from .gallery import num
from .labels import is_reference

IDENTITY_COLUMN = "identity_input_cos"
DEFAULT_LOW_IDENTITY = 0.30
#: most input/output pairs shown (the lowest identity scores first)
MAX_PAIRS = 40


def is_real_world(per: pd.DataFrame) -> bool:
    """Whether the run had no ground truth at all (every ``gt_path`` empty or missing)."""
    if "gt_path" not in per.columns:
        return True
    return not per["gt_path"].fillna("").astype(str).str.strip().astype(bool).any()


def low_identity_threshold(meta: dict) -> tuple[float, str]:
    """The threshold and where it came from (module docstring)."""
    v = meta.get("low_identity_threshold")
    if isinstance(v, (int, float)) and np.isfinite(v):
        return float(v), "run.json low_identity_threshold"
    for d in meta.get("metrics") or []:
        if not isinstance(d, dict) or IDENTITY_COLUMN not in (d.get("columns") or []):
            continue
        for holder in (d, d.get("params") or {}, d.get("options") or {}):
            t = holder.get("threshold") if isinstance(holder, dict) else None
            if isinstance(t, (int, float)) and np.isfinite(t):
                return float(t), f"the {d.get('name', 'identity-input')} metric's threshold"
    return DEFAULT_LOW_IDENTITY, ("default: the lowest NTIRE 2025 real-world face restoration threshold "
                                  "(0.30 WIDER/WebPhoto; 0.50 CelebA; 0.60 LFW/CelebChild)")


def fid_reference(meta: dict, methods: list[str]) -> dict:
    """FID rows against the reference statistics, and the reference's name."""
    ref = meta.get("fid_reference")
    if isinstance(ref, dict):
        name = str(ref.get("name") or ref.get("path") or "")
        extra = ", ".join((f"{ref[k]} images" if k == "n" else f"{k} {ref[k]}") for k in ("n", "extractor", "resize")
                          if ref.get(k) not in (None, ""))
        name += f" ({extra})" if extra else ""
    else:
        name = str(ref or "")
    rows = [{"method": d.get("method"), "value": num(d.get("value")), "n": d.get("n")}
            for d in meta.get("dataset_metrics") or [] if isinstance(d, dict) and d.get("metric") == "fid"]
    order = {m: k for k, m in enumerate(methods)}
    rows.sort(key=lambda r: order.get(r["method"], len(order)))
    return {"reference": name, "rows": [dict(r, text=f"{r['value']:.2f}" if np.isfinite(r["value"]) else "n/a")
                                        for r in rows]}


def real_world_section(run_dir: Path, per: pd.DataFrame, meta: dict, methods: list[str], labels: dict[str, str],
                       nr_columns: list[str], assets_dir: Path) -> dict | None:
    """The section's data (None for runs with ground truth): NR metric means per method, FID rows, identity to
    the input per method with the low-identity count, and up to :data:`MAX_PAIRS` input/output pairs."""
    if not is_real_world(per):
        return None
    threshold, source = low_identity_threshold(meta)
    has_id = IDENTITY_COLUMN in per.columns
    table = []
    for m in methods:
        g = per[per["method"] == m]
        cells = []
        for c in nr_columns:
            v = g[c].map(num).to_numpy() if c in g.columns else np.array([])
            v = v[np.isfinite(v)]
            cells.append(f"{v.mean():.4f} (n={len(v)})" if len(v) else "n/a")
        low = None
        if has_id and not is_reference(m, ("lq",)):
            ids = g[IDENTITY_COLUMN].map(num).to_numpy()
            ok = ids[np.isfinite(ids)]
            low = {"count": int((ok < threshold).sum()), "of": len(ok)}
        table.append({"method": m, "cells": cells, "low": low})
    pairs = []
    if has_id:
        cand = per[(per["method"] != "lq") & per[IDENTITY_COLUMN].map(num).map(np.isfinite)]
        cand = cand.assign(_s=cand[IDENTITY_COLUMN].map(num)).sort_values(["_s", "id", "method"])
        for r in cand.head(MAX_PAIRS).to_dict("records"):
            lq = Path(r["lq_path"]) if r.get("lq_path") else None
            out = run_dir / r["output_path"] if r.get("output_path") else None
            t_in = assets.thumbnail(lq, assets_dir) if lq is not None and lq.is_file() else None
            t_out = assets.thumbnail(out, assets_dir) if out is not None and out.is_file() else None
            pairs.append({"id": str(r["id"]), "method": str(r["method"]), "score": f"{r['_s']:.4f}",
                          "low": r["_s"] < threshold, "input": f"assets/{t_in}" if t_in else None,
                          "output": f"assets/{t_out}" if t_out else None})
        n_scored = len(cand)
    else:
        n_scored = 0
    return {"columns": [labels.get(c, c) for c in nr_columns], "table": table, "fid": fid_reference(meta, methods),
            "has_identity": has_id, "identity_label": labels.get(IDENTITY_COLUMN, "identity to input"),
            "threshold": f"{threshold:.2f}", "threshold_source": source, "pairs": pairs, "n_scored": n_scored}
