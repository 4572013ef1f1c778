"""Curation report of a ``celebref build`` output: what reviewers read before trusting a dataset.

Sections: the funnel (raw -> decoded -> faces -> quality -> identity -> dedup -> final) with rejections by
reason; per-identity galleries (accepted, and rejected with reasons); duplicate groups side by side with the
copy that was kept; identity outliers with their distance; identity collisions between folders; histograms of
images per identity and of same- vs different-identity distances with the threshold drawn. It also writes
``overrides_template.csv`` (every input file, with its decision) that ``celebref build --overrides`` reads back:
fill the ``action`` column (accept | reject | identity) of the rows to change; rows left blank change nothing.

The same report is made of a ``celebref verify`` output folder (``verify.json``, the audit of an existing
dataset): there "rejected" means flagged by the audit, the pictures come from the audited dataset, and there is
no overrides template (verify never changes a dataset).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from celebref.errors import ConfigError
from celebref.fsutil import atomic_write_text
from celebref.progress import progress
from celebref.tabular import read_table

from . import assets
from . import plots as plots_mod
from .render import copy_static, render

FUNNEL_ORDER = ("raw", "decoded", "faces", "quality", "identity", "dedup", "final")
OVERRIDE_COLUMNS = ["source_path", "action", "identity", "note", "decision", "reason", "identity_folder", "identity_distance"]


def _s(v) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def write_overrides_template(manifest: pd.DataFrame, path: Path) -> None:
    """One row per input file (its primary face), action left blank for the reviewer."""
    prim = manifest[manifest["is_primary"].fillna(True).astype(bool)] if "is_primary" in manifest.columns else manifest
    rows = pd.DataFrame({
        "source_path": prim["source_path"].map(_s), "action": "", "identity": "", "note": "",
        "decision": prim["decision"].map(_s), "reason": prim["reason"].map(_s),
        "identity_folder": prim["identity_folder"].map(_s),
        "identity_distance": prim["identity_distance"].map(lambda v: "" if pd.isna(v) else f"{float(v):.4f}")
        if "identity_distance" in prim.columns else "",
    }, columns=OVERRIDE_COLUMNS).sort_values("source_path", kind="stable")
    atomic_write_text(path, rows.to_csv(index=False, lineterminator="\n"))


STAGES = {
    "raw": "files found in the crawl", "decoded": "readable as images", "faces": "with a usable face",
    "quality": "passing the face-size, blur and pose gates", "identity": "matching their folder's identity",
    "dedup": "left after removing duplicates", "final": "in the dataset (after the per-identity limits)",
}
#: fewest pair distances for a histogram (fewer: listed in words)
MIN_DISTANCES = 5


def _settings(meta: dict) -> dict:
    """The backend's models and the thresholds as small tables (rows of name, value)."""
    backend = meta.get("backend") if isinstance(meta.get("backend"), dict) else {"name": meta.get("backend")}
    models = backend.get("models") if isinstance(backend.get("models"), dict) else {}
    thresholds = meta.get("thresholds") if isinstance(meta.get("thresholds"), dict) else {}
    items = [(k, _s(v)) for k, v in thresholds.items()]
    cols = min(3, max(1, len(items)))
    rows = -(-len(items) // cols)  # the thresholds side by side in up to 3 (setting, value) column pairs
    return {"backend": _s(backend.get("name")) or "?", "models": [(k, _s(v)) for k, v in models.items()],
            "threshold_cols": cols, "threshold_rows": [[items[c * rows + r] for c in range(cols) if c * rows + r < len(items)]
                                                       for r in range(rows)]}


def _glossary(rows: list[dict], threshold) -> dict[str, str]:
    out = {}
    if any(isinstance(r.get("identity_distance"), (int, float)) and np.isfinite(r["identity_distance"]) for r in rows):
        out["d"] = ("identity distance: Euclidean distance between the face's unit-norm identity embedding and its "
                    "folder's dominant-identity centroid (0 = same face, 2 = opposite)"
                    + (f"; faces farther than the identity threshold {threshold} are rejected as identity outliers"
                       if threshold is not None else ""))
    out["green / red frame"] = "accepted (or the copy kept) / rejected (or removed as a duplicate)"
    return out


def _plots(build_dir: Path, meta: dict, A: Path) -> tuple[list[dict], list[str]]:
    """The plots that have something to show, each with its own caption, and a line for each one left out."""
    plots, notes = [], []
    ids_csv = build_dir / "identities.csv"
    if ids_csv.is_file():
        counts = pd.read_csv(ids_csv, dtype={"identity_id": str})["count"].value_counts().sort_index()
        if len(counts) >= 2:
            name = assets.asset_name("per-identity", ext=".png")
            plots_mod.plot_count_bars({int(k): int(v) for k, v in counts.items()}, "images per identity", "identities", A / name)
            plots.append({"src": f"assets/{name}", "title": "identities by number of images", "caption": ""})
        elif len(counts) == 1:
            k, v = int(counts.index[0]), int(counts.iloc[0])
            notes.append(f"Images per identity: not plotted: all {v} identit{'ies' if v != 1 else 'y'} have {k} image{'s' if k != 1 else ''}.")
    dist_path = build_dir / "distances.parquet"
    threshold = (meta.get("thresholds") or {}).get("identity_threshold")
    if dist_path.is_file():
        d = pd.read_parquet(dist_path)
        if len(d) >= MIN_DISTANCES:
            name = assets.asset_name("distances", ext=".png")
            plots_mod.plot_histograms({k: d[d["kind"] == k]["distance"].to_numpy(float) for k in ("same", "different")},
                                      "identity distance", A / name, threshold=threshold)
            plots.append({"src": f"assets/{name}", "title": "same- vs different-identity distances",
                          "caption": f"dashed line: identity threshold {threshold}" if threshold is not None else ""})
        else:
            notes.append(f"Identity distances: not plotted: {len(d)} pair distance{'s' if len(d) != 1 else ''} "
                         f"(a histogram needs at least {MIN_DISTANCES}).")
    return plots, notes


def build_build_report(build_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write ``<out_dir or build_dir/report>/index.html`` (with ``assets/``) for a build output folder
    (``build.json``) or a verify output folder (``verify.json``); returns its path."""
    build_dir = Path(build_dir)
    out = Path(out_dir) if out_dir else build_dir / "report"
    audit = not (build_dir / "build.json").is_file() and (build_dir / "verify.json").is_file()
    if not audit and not (build_dir / "build.json").is_file():
        raise ConfigError(f"{build_dir} is neither a build output folder (build.json) nor a verify output (verify.json)")
    meta = json.loads((build_dir / ("verify.json" if audit else "build.json")).read_text(encoding="utf-8"))
    if audit:  # the audit's words for the same facts
        meta.setdefault("n_identities", len(meta.get("identities") or {}))
        meta.setdefault("inputs", meta.get("images"))
    man = read_table(build_dir / "manifest.parquet")
    crawl = Path(meta.get("dataset" if audit else "crawl", ""))
    A = out / "assets"
    A.mkdir(parents=True, exist_ok=True)
    copy_static(A)

    def thumb_of(row: dict) -> str | None:
        if row.get("decision") == "skipped":  # not an input, never opened (FIFOs, links leaving the crawl)
            return None
        if row.get("decision") == "accepted" and _s(row.get("output_path")):
            src = build_dir / row["output_path"]
        else:
            src = crawl / _s(row.get("source_path"))
        name = assets.thumbnail(src, A, width=128) if src.is_file() else None
        return f"assets/{name}" if name else None

    rows = man.to_dict("records")
    prim = [r for r in rows if r.get("is_primary", True) in (True, 1, None) or r.get("is_primary") is np.True_]
    for r in progress(prim, desc="report thumbnails"):
        r["thumb"] = thumb_of(r)

    # per identity folder: accepted then rejected
    groups: dict[str, dict[str, list]] = defaultdict(lambda: {"accepted": [], "rejected": []})
    for r in prim:
        folder = _s(r.get("assigned_folder")) or _s(r.get("identity_folder"))
        groups[folder]["accepted" if r["decision"] == "accepted" else "rejected"].append(r)
    identities = [{"folder": f, "identity_id": next((_s(r.get("identity_id")) for r in g["accepted"]), ""),
                   "accepted": sorted(g["accepted"], key=lambda r: _s(r.get("output_path"))),
                   "rejected": sorted(g["rejected"], key=lambda r: _s(r.get("source_path")))}
                  for f, g in sorted(groups.items())]

    # duplicate groups: the kept copy and what was removed as its duplicate
    by_src = {_s(r["source_path"]): r for r in prim}
    dup: dict[str, list] = defaultdict(list)
    for r in prim:
        if _s(r.get("duplicate_of")) and r.get("reason") in ("exact_duplicate", "near_duplicate"):
            dup[_s(r["duplicate_of"])].append(r)
    duplicates = [{"kept": by_src.get(k, {"source_path": k, "thumb": None}), "removed": v} for k, v in sorted(dup.items())]
    outliers = sorted([r for r in prim if r.get("reason") == "identity_outlier"],
                      key=lambda r: -float(r.get("identity_distance") or 0))
    coll_path = build_dir / "collisions.csv"
    collisions = pd.read_csv(coll_path).to_dict("records") if coll_path.is_file() and coll_path.stat().st_size else []

    plots, plot_notes = _plots(build_dir, meta, A)
    threshold = (meta.get("thresholds") or {}).get("identity_threshold")

    if not audit:
        write_overrides_template(man, out / "overrides_template.csv")
    raw_funnel = meta.get("funnel", {})
    funnel = {k: raw_funnel[k] for k in FUNNEL_ORDER if k in raw_funnel}
    funnel.update({k: v for k, v in raw_funnel.items() if k not in funnel})
    html = render("build.html", meta=meta, funnel=funnel, reasons=meta.get("reasons", {}),
                  identities=identities, duplicates=duplicates, outliers=outliers, collisions=collisions, plots=plots,
                  plot_notes=plot_notes, threshold=threshold, n_inputs=meta.get("inputs", len(prim)),
                  settings=_settings(meta), stages={k: STAGES[k] for k in funnel if k in STAGES},
                  glossary=_glossary(prim, threshold), audit=audit)
    atomic_write_text(out / "index.html", html)
    return out / "index.html"
