"""``evaluate``'s records: the per-image table, the dataset-level values, ``run.json`` and the exit status.

Per-image rows (docs/FORMATS.md): one per record x method, with the restore status, ``reason`` (the restore
reason, then ``<metric>: <why>`` for every metric that has no value for that image, e.g. ``lmd: no face found in
the restored image``), the output path, the input paths, every metric column and the degradation factors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from celebref.errors import ConfigError
from celebref.testset import InputRecord, reference_files

from .metric_worker import StateError
from .onepass import MethodRun, PassResult
from .outcome import Outcome
from .restore import DONE_STATUSES

DEG_FACTORS = ("blur_sigma", "scale", "noise_sigma", "jpeg_quality")


def per_image_rows(records: list[InputRecord], runs: list[MethodRun], metrics: list[Any], result: PassResult) -> list[dict]:
    """The per-image table's rows, method by method, in ``records`` order."""
    rows = []
    columns = [c for m in metrics if not m.dataset_level for c in m.columns]
    for run in runs:
        label = run.method.label
        for rec in records:
            cell = result.cells[label][rec.id]
            s = cell.row
            reasons = [s["reason"]] * bool(s.get("reason")) + cell.reasons
            row = {"id": rec.id, "identity": rec.identity or "", "method": label, "status": s["status"],
                   "reason": "; ".join(reasons), "restore_seconds": s["seconds"],
                   "output_path": ("restored/" + s["output_path"]) if s.get("output_path") else "",
                   "lq_path": str(rec.lq_path), "gt_path": str(rec.gt_path or ""),
                   "landmarks_path": str(rec.gt_landmarks_path or "")}
            done = s["status"] in DONE_STATUSES and bool(s.get("output_path") or cell.values)
            for c in columns:
                row[c] = cell.values.get(c, float("nan")) if done else float("nan")
            for f in DEG_FACTORS:
                if f in rec.extra:
                    row["deg_" + f] = rec.extra[f]
            if run.method.needs_references:
                row.update(reference_columns(rec))
            rows.append(row)
    return rows


def reference_columns(rec: InputRecord) -> dict[str, object]:
    """What a reference-based method was given for ``rec`` (per_image columns, so that methods compared in the
    specific setting provably saw the same references): ``reference_dir``, ``n_references`` and ``references``
    (the image file names, ``;``-joined, in the order the methods receive them: sorted, those with landmarks)."""
    if rec.ref_dir is None:
        return {"reference_dir": "", "n_references": 0, "references": ""}
    try:
        pairs = reference_files(rec.ref_dir, rec.ref_landmark_dir)
    except ConfigError:
        pairs = []
    return {"reference_dir": str(rec.ref_dir), "n_references": len(pairs), "references": ";".join(p.name for p, _ in pairs)}


def dataset_rows(runs: list[MethodRun], metrics: list[Any], result: PassResult, per_image: pd.DataFrame,
                 stored: dict[str, Any]) -> list[dict]:
    """``{method, metric, value, n[, reason]}`` per method x dataset-level metric (NaN when not computable)."""
    out = []
    for run in runs:
        label = run.method.label
        n = int(per_image.loc[per_image["method"] == label, "status"].isin(DONE_STATUSES).sum())
        for m in metrics:
            if not m.dataset_level:
                continue
            state = result.states.get((label, m.name))
            ref = stored.get(m.name, result.references.get(m.name)) if m.needs_reference else None
            row = {"method": label, "metric": m.name, "value": float("nan"), "n": n}
            bad = next((s for s in (state, ref) if isinstance(s, StateError)), None)
            if bad is not None:
                row["reason"] = bad.reason
            elif n >= 2 and state is not None:
                row["value"] = float(m.compute_dataset(state, ref))
            out.append(row)
    return out


def outcome(per_image: pd.DataFrame, metrics: list[Any], dataset: list[dict], skipped: list[dict], cfg: Any) -> Outcome:
    """Failures: rows not restored, or without a value for a per-image metric; dataset-level metrics that could not
    be computed; skipped methods and metrics. Nothing was done when every requested method or metric was skipped."""
    from .eval_setup import method_specs

    columns = [c for m in metrics if not m.dataset_level for c in m.columns]
    bad = ~per_image["status"].isin(DONE_STATUSES)
    for c in columns:
        bad |= pd.to_numeric(per_image[c], errors="coerce").isna()
    details = [f"{meth}: {int(n)} of {int((per_image['method'] == meth).sum())} image(s) without a restored output or a "
               f"metric value (see per_image.csv, columns status and reason)" for meth, n in per_image[bad].groupby("method").size().items()]
    nan_dataset = [d for d in dataset if not np.isfinite(d["value"])]
    details += [f"{d['metric']} for {d['method']}: not computed from {d['n']} output(s)"
                + (f" ({d['reason']})" if d.get("reason") else "") for d in nan_dataset]
    requested_methods = [s for s in method_specs(cfg.methods) if s.split(":")[0] != "lq"] if cfg.methods else []
    n_skipped = {k: sum(1 for s in skipped if s["kind"] == k) for k in ("method", "metric")}
    # optional extras skipped on request (--skip-unavailable) are recorded, not failures
    skipped = [s for s in skipped if not (s.get("optional") and cfg.skip_unavailable)]
    all_skipped = (bool(requested_methods) and n_skipped["method"] >= len(requested_methods)) or \
        (bool(cfg.metrics) and n_skipped["metric"] >= len(cfg.metrics))
    return Outcome(items=len(per_image) + len(dataset), failed=int(bad.sum()) + len(nan_dataset),
                   skipped=[f"{s['kind']} {s['name']}" for s in skipped], details=details, all_skipped=all_skipped)
