"""HTML report of a ``celebref evaluate`` run folder: a folder (index.html + assets/) that opens offline from disk.

Sections: what was evaluated (test set, degradation, the metric profile's and the face backends' settings as
small tables, methods), summary table (mean ± std over finite values, bootstrap 95% interval from
:data:`MIN_CI_N` values, n, infinite values and failures; the best restoration method bold, the reference rows
``lq``/``bicubic`` not ranked unless asked; a mean over another image set than the rest of its column marked ‡,
see :func:`reports.labels.odd_n`), for runs without ground truth the real-world section
(:mod:`reports.realworld`), images left out of means (infinite values, with their ids), plots
(distribution per method; metrics against each degradation factor that has at least
:data:`reports.plots.MIN_DISTINCT` distinct values, exact values or labelled quantile bins; otherwise one line
saying why not), a gallery (LQ | methods | GT with eye/mouth detail crops set apart, sortable, paginated, a
click enlarging a face beside LQ and GT), the failures
list, and the abbreviations used, each explained once. Sections with nothing to show are left out.
File names from crawls are untrusted: every template autoescapes, and gallery data is inserted with
``textContent`` only. Column headers are ``summary.csv``'s labels, which name the face backend of identity
and landmark columns (``IDS(ArcFace)``, ``ID(dlib)``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from celebref.errors import ConfigError
from celebref.fsutil import atomic_write_text
from celebref.tabular import read_table

from . import assets, plots
from .gallery import PAGE_SIZE, build_gallery, num
from .labels import evaluated_description, explain, is_reference, labels_from_run, metric_was_run, odd_n, unequal_n
from .realworld import IDENTITY_COLUMN, real_world_section
from .render import copy_static, render

FACTORS = ("deg_blur_sigma", "deg_scale", "deg_noise_sigma", "deg_jpeg_quality")
#: fewest finite values for a bootstrap interval in the summary table
MIN_CI_N = 5
_MAX_IDS = 50


def _f(v, digits: int = 4) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) and np.isfinite(v) else ""


def _options(d) -> str:
    """``{"a": 1, "b": "x"}`` -> ``a=1, b=x`` (nested values as compact JSON)."""
    if not isinstance(d, dict):
        return "" if d is None else str(d)
    return ", ".join(f"{k}={v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v)}"
                     for k, v in d.items())


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _settings(meta: dict, metric_names: list[str], labels: dict[str, str]) -> dict:
    """The run's conventions as small tables: profile options of the evaluated metrics, face backends (with
    their models listed once per backend), methods."""
    prof = meta.get("profile") if isinstance(meta.get("profile"), dict) else {}
    evaluated = [d.get("name") for d in meta.get("metrics") or [] if isinstance(d, dict)] or metric_names
    profile_rows = [{"metric": m, "options": _options(o)} for m, o in (prof.get("metrics") or {}).items() if m in evaluated]
    aliases = [f"{k} = {v}" for k, v in (prof.get("aliases") or {}).items() if k != v and metric_was_run(v, metric_names)]
    backends, models = [], {}
    for d in meta.get("metrics") or []:
        face = d.get("face") if isinstance(d, dict) else None
        if isinstance(face, dict):
            name = str(face.get("backend", ""))
            chosen = str(face.get("selection", ""))
            backends.append({"metric": d.get("name", ""), "backend": name, "chosen": _short(chosen), "chosen_full": chosen,
                             "labels": ", ".join(labels.get(c, c) for c in d.get("columns") or [])})
            if isinstance(face.get("models"), dict):
                models.setdefault(name, list(face["models"].items()))
    methods = [{"label": m.get("label", ""), "params": _options(m.get("params") or {}),
                "weights": [f"{w}: {sha}" for w, sha in (m.get("weights") or {}).items()]} for m in meta.get("methods") or []]
    return {"profile_name": prof.get("profile") or (meta.get("profile") if isinstance(meta.get("profile"), str) else "default"),
            "profile_description": evaluated_description(prof.get("description", ""), metric_names), "profile_rows": profile_rows, "aliases": aliases,
            "backends": backends, "models": models, "methods": methods}


def _summary_table(summary: pd.DataFrame, per: pd.DataFrame, methods: list[str], metric_cols: list[str],
                   higher: dict[str, bool], rank_references: bool) -> tuple[list, dict, list]:
    """Rows of the summary table, the best method per metric, and the notes (why a mean is n/a or leaves
    images out)."""
    best: dict[str, str] = {}
    for met in metric_cols:
        cand = summary[(summary["metric"] == met) & summary["mean"].map(lambda v: np.isfinite(num(v)))]
        if not rank_references:
            cand = cand[~cand["method"].map(is_reference)]
        if len(cand):
            best[met] = cand.sort_values("mean", ascending=not higher[met]).iloc[0]["method"]
    odd = {met: odd_n({r["method"]: {"n": r["n"], "n_inf": num(r.get("n_inf")) if np.isfinite(num(r.get("n_inf"))) else 0,
                                      "unequal": unequal_n(r)} for _, r in summary[summary["metric"] == met].iterrows()})
           for met in metric_cols}
    table, notes = [], []
    for method in methods:
        cells = []
        sub = summary[summary["method"] == method]
        for met in metric_cols:
            r = sub[sub["metric"] == met]
            if not len(r):
                cells.append({"text": "–", "best": False})
                continue
            r = r.iloc[0]
            n = int(r["n"])
            vals = per[per["method"] == method][met].map(num).to_numpy() if met in per.columns else np.array([])
            lo, hi = assets.bootstrap_ci(vals) if n >= MIN_CI_N and len(vals) else (float("nan"), float("nan"))
            n_inf = int(num(r.get("n_inf"))) if np.isfinite(num(r.get("n_inf"))) else 0
            note = r.get("note") if isinstance(r.get("note"), str) else ""
            if note:
                notes.append({"method": method, "metric": met, "text": note})
            cells.append({"mean": _f(num(r["mean"])) or "n/a", "std": _f(num(r["std"])), "n": n, "n_inf": n_inf,
                          "ci": f"[{lo:.4f}, {hi:.4f}]" if np.isfinite(lo) else "",
                          "failed": int(r["n_failed"]), "best": best.get(met) == method, "text": None,
                          "noted": bool(note), "odd": odd[met].get(method, False)})
        n_fail = int((per[per["method"] == method]["status"] != "ok").sum()) if len(per) else 0
        table.append({"method": method, "cells": cells, "failures": n_fail})
    grouped: dict[tuple[str, str], list[str]] = {}
    for n in notes:  # the same words for several methods (e.g. FID from few images): one line
        grouped.setdefault((n["metric"], n["text"]), []).append(n["method"])
    return table, best, [{"metric": met, "text": text, "methods": ms} for (met, text), ms in grouped.items()]


def _left_out(summary: pd.DataFrame, labels: dict[str, str]) -> list[dict]:
    """Images with an infinite value, per method and metric (from summary.csv's inf_ids)."""
    out = []
    if "n_inf" not in summary.columns:
        return out
    for _, r in summary.iterrows():
        if num(r["n_inf"]) > 0:
            ids = [i for i in str(r.get("inf_ids") or "").split(";") if i]
            out.append({"method": r["method"], "metric": labels.get(r["metric"], r["metric"]), "count": int(r["n_inf"]),
                        "ids": ids[:_MAX_IDS], "more": max(0, len(ids) - _MAX_IDS)})
    return out


def _plots(per: pd.DataFrame, methods: list[str], per_metrics: list[str], labels: dict[str, str],
           arrow: dict[str, str], A: Path) -> tuple[list, list, list]:
    """Distribution plots, factor plots, and one line per factor that is not plotted (with the reason)."""
    dist, factor_plots, factor_notes = [], [], []
    for met in per_metrics:
        data = {m: per[per["method"] == m][met].map(num).to_numpy() for m in methods}
        if not any(np.isfinite(v).any() for v in data.values()):
            continue
        name = assets.asset_name("dist", met, ext=".png")
        plots.plot_distributions(data, f"{labels[met]} {arrow[met]}", A / name)
        dist.append({"src": f"assets/{name}", "title": f"{labels[met]} per method"})
    first = per[per["method"] == methods[0]] if methods else per
    plotted = [m for m in per_metrics if per[m].map(num).map(np.isfinite).any()]
    for factor in FACTORS:
        if factor not in per.columns:
            continue
        short = factor.removeprefix("deg_")
        x = first[factor].map(num).to_numpy()
        distinct = np.unique(x[np.isfinite(x)])
        if len(distinct) == 0:
            factor_notes.append(f"{short}: not plotted: not applied to any image.")
            continue
        if len(distinct) < plots.MIN_DISTINCT:
            shown = ", ".join(f"{v:g}" for v in distinct)
            factor_notes.append(f"{short}: not plotted: {len(distinct)} distinct value{'s' if len(distinct) > 1 else ''} "
                                f"({shown}); a trend needs at least {plots.MIN_DISTINCT}.")
            continue
        if not plotted:
            continue
        x_by = {m: per[per["method"] == m][factor].map(num).to_numpy() for m in methods}
        panels = {f"{labels[met]} {arrow[met]}": {m: per[per["method"] == m][met].map(num).to_numpy() for m in methods}
                  for met in plotted}
        name = assets.asset_name("factor", factor, *plotted, ext=".png")
        kind = plots.plot_against_factor(short, x_by, panels, A / name)
        how = f"{plots.BINS} quantile bins of the drawn values" if kind == "bins" else "each drawn value"
        factor_plots.append({"src": f"assets/{name}",
                             "title": f"metrics against {short}: mean per method at {how} ({len(distinct)} distinct values)"})
    return dist, factor_plots, factor_notes


def _dist_caption(per: pd.DataFrame, methods: list[str], per_metrics: list[str]) -> str:
    """What the distribution plots draw, for the numbers of values this run has."""
    counts = [int(per[(per["method"] == m)][met].map(num).map(np.isfinite).sum()) for m in methods for met in per_metrics]
    counts = [c for c in counts if c] or [0]
    parts = []
    if min(counts) <= plots.MAX_POINTS:
        parts.append("points: one per image" + (f" (drawn up to {plots.MAX_POINTS} values per method)" if max(counts) > plots.MAX_POINTS else ""))
    if max(counts) >= plots.MIN_BOX:
        parts.append(f"boxes (drawn for methods with at least {plots.MIN_BOX} values): quartiles, whiskers to 1.5 IQR, "
                     "circles beyond, triangle the mean")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def build_run_report(run_dir: str | Path, out_dir: str | Path | None = None, rank_references: bool = False) -> Path:
    """Write ``<out_dir or run_dir/report>/index.html`` (with ``assets/``); returns its path.
    ``rank_references``: also mark the reference rows (lq, bicubic) best when they are."""
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir / "report"
    if not (run_dir / "summary.csv").is_file() or not (run_dir / "per_image.parquet").is_file():
        raise ConfigError(f"{run_dir} is not an evaluate run folder (needs summary.csv and per_image.parquet)")
    meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8")) if (run_dir / "run.json").is_file() else {}
    summary = pd.read_csv(run_dir / "summary.csv")
    per = read_table(run_dir / "per_image.parquet")
    A = out / "assets"
    A.mkdir(parents=True, exist_ok=True)
    copy_static(A)

    methods = list(dict.fromkeys(summary["method"])) or list(dict.fromkeys(per["method"]))
    metric_cols = list(dict.fromkeys(summary["metric"]))
    higher = {r["metric"]: bool(r["higher_is_better"]) for _, r in summary.iterrows()}
    arrow = {m: ("↑" if higher[m] else "↓") for m in metric_cols}
    labels = labels_from_run(summary, meta)
    per_metrics = [m for m in metric_cols if m in per.columns]

    table, best, notes = _summary_table(summary, per, methods, metric_cols, higher, rank_references)
    refs = [m for m in methods if is_reference(m)] if not rank_references else []
    dist, factor_plots, factor_notes = _plots(per, methods, per_metrics, labels, arrow, A)
    gallery = build_gallery(run_dir, per, methods, per_metrics, labels, higher, A)
    real_world = real_world_section(run_dir, per, meta, methods, labels,
                                    [m for m in per_metrics if m != IDENTITY_COLUMN], A)
    failures = [{"id": r["id"], "method": r["method"], "status": r["status"], "reason": r["reason"]}
                for r in per.to_dict("records") if r["status"] != "ok"]
    glossary_terms = [labels[m] for m in metric_cols] + ["LQ"] + ([] if real_world else ["GT"]) + (["bicubic"] if any(is_reference(m, ("bicubic",)) for m in methods) else [])
    glossary = explain(glossary_terms)
    glossary.update({
        "↑ / ↓": "higher / lower is better",
        "n": "images with a finite value (the mean is over these)",
        "∞": "images with an infinite value (PSNR of a result identical to the ground truth), left out of the mean",
        "no value": "images without a value for this metric (not restored, or the metric could not score them, "
                    "e.g. no face found)",
        "not restored": "images the method produced no result for (listed under Failures)",
    })
    if any(c.get("odd") for row in table for c in row["cells"]):
        glossary["‡"] = ("a mean over another image set than the rest of its column (n differs: some images have "
                         "no value for one method); evaluate --common-images restricts every mean to the images "
                         "all methods scored")
    if real_world and "FID" in glossary:
        glossary["FID"] = ("Fréchet Inception distance between the restored set and the reference statistics named "
                           "in the real-world section (one value per method)")
    if any(c.get("ci") for row in table for c in row["cells"]):
        glossary["[a, b]"] = f"bootstrap 95% interval of the mean (2000 resamples, seed 0), shown from n = {MIN_CI_N}"
    ranked = [m for m in methods if m not in refs]
    html = render("run.html", meta=meta, table=table, metric_cols=metric_cols, labels=labels, arrow=arrow,
                  glossary=glossary, notes=notes, left_out=_left_out(summary, labels), dist_plots=dist,
                  factor_plots=factor_plots, factor_notes=factor_notes, gallery=gallery,
                  first_page=gallery["rows"][:PAGE_SIZE], page_size=PAGE_SIZE, failures=failures,
                  n_images=len(gallery["rows"]), settings=_settings(meta, metric_cols, labels), skipped=meta.get("skipped", []),
                  real_world=real_world, refs=refs, ranked=ranked, any_odd=any(c.get("odd") for row in table for c in row["cells"]),
                  common_only=bool(summary.get("common_only", pd.Series(dtype=bool)).fillna(False).astype(bool).any()), dist_caption=_dist_caption(per, methods, per_metrics), any_best=bool(best))
    atomic_write_text(out / "index.html", html)
    return out / "index.html"
