"""HTML report of a ``celebref evaluate`` run folder (self-contained; opens offline from disk).

Sections: what was evaluated, summary table (mean +- std, bootstrap 95% interval, n, failures; best bold),
plots (distributions, metric vs each degradation factor, identity similarity), a gallery (LQ | methods | GT
with eye/mouth detail crops, sortable, paginated) and the failures list. File names from crawls are untrusted:
every template autoescapes, and gallery data is inserted with ``textContent`` only.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from celebref.errors import ConfigError
from celebref.fsutil import atomic_write_text
from celebref.progress import progress
from celebref.tabular import read_table

from . import assets
from .render import render, copy_static

PAGE_SIZE = 20
FACTORS = ("deg_blur_sigma", "deg_scale", "deg_noise_sigma", "deg_jpeg_quality")


def _num(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return f


def _landmarks_for(row: dict) -> np.ndarray | None:
    """GT landmarks for detail crops: the degrade manifest's landmark file beside the GT, when any."""
    path = row.get("landmarks_path")
    if isinstance(path, str) and path and Path(path).is_file():
        try:
            arr = np.loadtxt(path, dtype=np.float64).reshape(-1, 2)
            return arr if arr.shape == (68, 2) else None
        except ValueError:
            return None
    return None


def build_run_report(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir / "report"
    if not (run_dir / "summary.csv").is_file() or not (run_dir / "per_image.parquet").is_file():
        raise ConfigError(f"{run_dir} is not an evaluate run folder (needs summary.csv and per_image.parquet)")
    meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8")) if (run_dir / "run.json").is_file() else {}
    summary = pd.read_csv(run_dir / "summary.csv")
    per = read_table(run_dir / "per_image.parquet")
    (out / "assets").mkdir(parents=True, exist_ok=True)
    copy_static(out / "assets")
    A = out / "assets"

    methods = list(dict.fromkeys(summary["method"])) or list(dict.fromkeys(per["method"]))
    metric_cols = list(dict.fromkeys(summary["metric"]))
    higher = {r["metric"]: bool(r["higher_is_better"]) for _, r in summary.iterrows()}
    arrow = {m: ("↑" if higher[m] else "↓") for m in metric_cols}

    # summary table: the numbers are summary.csv's, formatted once; CI from per-image values
    table = []
    best: dict[str, str] = {}
    for met in metric_cols:
        cand = summary[(summary["metric"] == met) & (summary["method"] != "lq")].dropna(subset=["mean"])
        if len(cand):
            best[met] = cand.sort_values("mean", ascending=not higher[met]).iloc[0]["method"]
    for method in methods:
        cells = []
        sub = summary[summary["method"] == method]
        for met in metric_cols:
            r = sub[sub["metric"] == met]
            if not len(r):
                cells.append({"text": "–", "best": False})
                continue
            r = r.iloc[0]
            vals = per[(per["method"] == method)][met].map(_num).to_numpy() if met in per.columns else np.array([])
            lo, hi = assets.bootstrap_ci(vals) if len(vals) else (float("nan"), float("nan"))
            cells.append({"mean": f"{r['mean']:.4f}", "std": "" if pd.isna(r["std"]) else f"{r['std']:.4f}",
                          "ci": "" if math.isnan(lo) else f"[{lo:.4f}, {hi:.4f}]", "n": int(r["n"]),
                          "failed": int(r["n_failed"]), "best": best.get(met) == method, "text": None})
        n_fail = int((per[per["method"] == method]["status"] != "ok").sum()) if len(per) else 0
        table.append({"method": method, "cells": cells, "failures": n_fail})

    # plots
    plots = []
    for met in metric_cols:
        if met not in per.columns:
            continue
        data = {m: per[per["method"] == m][met].map(_num).to_numpy() for m in methods}
        name = assets.asset_name("dist", met, ext=".png")
        assets.plot_distributions(data, met, arrow[met], A / name)
        plots.append({"src": f"assets/{name}", "title": f"{met} per method"})
    for factor in FACTORS:
        if factor not in per.columns or per[factor].map(_num).notna().sum() == 0:
            continue
        for met in metric_cols:
            if met not in per.columns:
                continue
            series = {m: (per[per["method"] == m][factor].map(_num).to_numpy(), per[per["method"] == m][met].map(_num).to_numpy()) for m in methods}
            name = assets.asset_name("factor", factor, met, ext=".png")
            assets.plot_against_factor(series, factor.removeprefix("deg_"), met, A / name)
            plots.append({"src": f"assets/{name}", "title": f"{met} vs {factor.removeprefix('deg_')}"})
    if "identity_cos" in per.columns:
        data = {m: per[per["method"] == m]["identity_cos"].map(_num).to_numpy() for m in methods}
        name = assets.asset_name("idhist", ext=".png")
        assets.plot_histograms(data, "identity cosine similarity to GT", A / name)
        plots.append({"src": f"assets/{name}", "title": "identity similarity"})

    # gallery
    shown = [m for m in methods if m != "lq"]
    ids = list(dict.fromkeys(per["id"]))
    by = {(r["id"], r["method"]): r for r in per.to_dict("records")}
    per_metrics = [m for m in metric_cols if m in per.columns]
    rows = []
    for i in progress(ids, desc="report gallery"):
        base = by.get((i, "lq")) or next(by[(i, m)] for m in methods if (i, m) in by)
        lms = _landmarks_for(base)
        cols = [("LQ", Path(base["lq_path"]) if base.get("lq_path") else None)]
        for m in shown:
            r = by.get((i, m))
            cols.append((m, run_dir / r["output_path"] if r is not None and r.get("output_path") else None))
        cols.append(("GT", Path(base["gt_path"]) if base.get("gt_path") else None))
        cells = []
        for label, src in cols:
            t = assets.thumbnail(src, A) if src is not None and src.is_file() else None
            d = assets.detail_crops(src, lms, A) if t and lms is not None else None
            r = by.get((i, label))
            cells.append({"label": label, "thumb": f"assets/{t}" if t else None, "detail": f"assets/{d}" if d else None,
                          "status": (r or {}).get("status", "") if label not in ("LQ", "GT") else "",
                          "reason": (r or {}).get("reason", "") if label not in ("LQ", "GT") else ""})
        values = {m: {k: (None if math.isnan(_num(by[(i, m)].get(k))) else round(_num(by[(i, m)].get(k)), 4))
                      for k in per_metrics} for m in methods if (i, m) in by}
        rows.append({"id": str(i), "identity": str(base.get("identity") or ""), "cells": cells, "values": values})
    sort_keys = [f"{m}:{k}" for m in (shown or methods) for k in per_metrics]
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
               "sort_keys": sort_keys, "default_sort": default_key, "higher": higher, "page_size": PAGE_SIZE}
    atomic_write_text(A / "gallery-data.js", "window.CELEBREF_GALLERY = " + json.dumps(gallery, ensure_ascii=True) + ";\n")

    failures = [{"id": r["id"], "method": r["method"], "status": r["status"], "reason": r["reason"]}
                for r in per.to_dict("records") if r["status"] != "ok"]
    html = render("run.html", meta=meta, table=table, metric_cols=metric_cols, arrow=arrow, plots=plots,
                  gallery=gallery, first_page=rows[:PAGE_SIZE], failures=failures, n_images=len(ids),
                  methods=meta.get("methods", []), skipped=meta.get("skipped", []))
    atomic_write_text(out / "index.html", html)
    return out / "index.html"
