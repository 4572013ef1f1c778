"""Paper-style tables from one or more ``celebref evaluate`` run folders.

Rows are methods (in order of first appearance), column groups are runs (test sets), and each group has one
column per metric **that run computed** (a run without identity numbers gets no identity columns), with its
better-direction arrow. Column headers are the run's display labels (``summary.csv`` ``label``): identity and
landmark columns name their face backend (``IDS(ArcFace)``, ``ID(dlib)``), since numbers from different backends
are not comparable. Groups are named after the test set, with the degradation preset in brackets
(``test (preset gfpgan)``), never the preset alone (it reads like a method); runs that would share a name get the
shortest distinguishing tail of their test-set path (or of their run folder).

Generic and specific restoration are laid out as in the DMDNet paper: when some method needs reference images of
the person (``needs_references``: ``dmdnet-specific``, ``asffnet``), there is one table per setting, generic
(methods without references) and specific (methods with references), the reference rows (LQ input, bicubic) in
both, and the specific table's caption states how many references each image had.

In every column the best value among the restoration methods is bold and the second best underlined (ties
share the mark); the reference rows are never marked unless ``rank_references=True``. A mean over finite values
that left out images with an infinite value (PSNR of a result identical to the ground truth) carries a dagger;
a mean over another image set than the rest of its column (``n`` differs) carries a double dagger and its ``n``;
the caption explains both, states the images per mean and names the metric profile. Formats: LaTeX (booktabs,
every label escaped), Markdown (``|`` in a label escaped), CSV (long form).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import pandas as pd

from celebref.errors import ConfigError
from celebref.tabular import read_table

from .labels import METRIC_LABELS, REFERENCE_METHODS, is_reference, labels_from_run, odd_n, stem, unequal_n
from .realworld import IDENTITY_COLUMN, fid_reference, is_real_world, low_identity_threshold
from .table_formats import latex_escape, markdown_escape, render_latex, render_markdown

FORMATS = ("latex", "markdown", "csv")
__all__ = ["FORMATS", "METRIC_LABELS", "RunSummary", "load_run", "distinct_names", "make_table", "latex_escape",
           "markdown_escape"]


@dataclass
class RunSummary:
    name: str
    profile: str
    summary: pd.DataFrame  # method, metric, mean, std, n, n_failed, higher_is_better (+ label, n_inf, inf_ids, note, n_common)
    labels: dict[str, str] = field(default_factory=dict)  # metric column -> display label
    data_path: str = ""  # the test set the run evaluated (for telling runs apart)
    path: str = ""  # the run folder
    named: bool = False  # the name was given by the user (never changed)
    precision: str = ""  # the precision the methods ran in (run.json); fp32 is the exact default
    preset: str = ""  # the degradation preset of the test set (shown in brackets after the name)
    needs_references: dict[str, bool] = field(default_factory=dict)  # method label -> uses reference images
    n_refs: list[int] = field(default_factory=list)  # reference images per LQ image (when recorded)
    real_world: str = ""  # a run without ground truth: what its FID is against and its low-identity counts


def _n_refs(path: Path, data_path: str) -> list[int]:
    """References per image: ``per_image``'s ``n_references`` (what the reference-based methods were given; or an
    ``n_refs`` column), else the degrade manifest's ``n_refs`` of the test set the run read (images with at least
    one reference)."""
    candidates = [path / "per_image.parquet", path / "per_image.csv"]
    if data_path:
        candidates += [Path(data_path) / "manifest.parquet", Path(data_path) / "manifest.csv"]
    for table in candidates:
        if not table.is_file():
            continue
        try:
            df = read_table(table)
        except (OSError, ValueError, ConfigError):
            continue
        col = next((c for c in ("n_references", "n_refs") if c in df.columns), None)
        if col is not None:
            df = df.assign(_n=pd.to_numeric(df[col], errors="coerce")).dropna(subset=["_n"])  # lq rows have none
            if "id" in df.columns:
                df = df.drop_duplicates("id")
            return [int(v) for v in df["_n"].astype(int) if v > 0]
    return []


def _real_world(path: Path, meta: dict) -> str:
    """For a run without ground truth: ``FID against <statistics>; ID-in below 0.30 (...): m 3 of 12, ...``."""
    table = path / "per_image.parquet"
    if not table.is_file():
        return ""
    try:
        per = read_table(table)
    except (OSError, ValueError):
        return ""
    if not is_real_world(per):
        return ""
    parts = ["no ground truth"]
    fid = fid_reference(meta, [])
    if fid["reference"]:
        parts.append(f"FID against {fid['reference']}")
    if IDENTITY_COLUMN in per.columns:
        threshold, source = low_identity_threshold(meta)
        counts = []
        for m, g in per[per["method"] != "lq"].groupby("method", sort=False):
            v = pd.to_numeric(g[IDENTITY_COLUMN], errors="coerce").dropna()
            counts.append(f"{m} {int((v < threshold).sum())} of {len(v)}")
        label = labels_from_run(pd.DataFrame({"metric": [IDENTITY_COLUMN]}), meta).get(IDENTITY_COLUMN, IDENTITY_COLUMN)
        parts.append(f"faces with {label} (identity to the input) below {threshold:.2f} ({source.split(':')[0]}): "
                     + ", ".join(counts))
    return "; ".join(parts)


def load_run(path: str | Path, name: str | None = None) -> RunSummary:
    path = Path(path)
    if not (path / "summary.csv").is_file():
        raise ConfigError(f"{path} is not an evaluate run folder (no summary.csv)")
    summary = pd.read_csv(path / "summary.csv")
    profile, data_path, meta, precision, preset, needs = "", "", {}, "", "", {}
    if (path / "run.json").is_file():
        meta = json.loads((path / "run.json").read_text(encoding="utf-8"))
        prof = meta.get("profile")
        profile = (prof.get("profile") or prof.get("name", "")) if isinstance(prof, dict) else (prof or "")
        data = meta.get("data") or {}
        data_path = str(data.get("path") or data.get("lq") or "")
        precision = str(meta.get("precision") or "")
        degrade = meta.get("degrade") or {}
        preset = str(data.get("preset") or degrade.get("preset") or (degrade.get("config") or {}).get("preset") or "")
        for m in meta.get("methods") or []:
            if isinstance(m, dict) and isinstance(m.get("needs_references"), bool):
                needs[str(m.get("label"))] = m["needs_references"]
    base = name or (Path(data_path).name if data_path else ("test set" if preset else path.name))
    return RunSummary(name=base, profile=profile, summary=summary, labels=labels_from_run(summary, meta),
                      data_path=data_path, path=str(path.resolve()), named=name is not None, precision=precision,
                      preset=preset, needs_references=needs, n_refs=_n_refs(path, data_path),
                      real_world=_real_world(path, meta))


def _tail(p: str, k: int) -> str:
    parts = Path(p).parts
    return "/".join(parts[-k:]) if parts else ""


def distinct_names(runs: list[RunSummary]) -> list[str]:
    """Group names, made distinct: runs sharing a default name get the shortest tail of their test-set path
    that tells them apart (e.g. ``generic/test`` vs ``specific/test``), else of their run folder, else a number;
    then the degradation preset in brackets. Names the user gave are kept as they are."""
    names = [r.name for r in runs]
    by_name: dict[str, list[int]] = {}
    for i, r in enumerate(runs):
        by_name.setdefault(r.name + "\0" + r.preset, []).append(i)
    for key, idx in by_name.items():
        name = key.split("\0")[0]
        auto = [i for i in idx if not runs[i].named]
        if len(idx) < 2 or not auto:
            continue
        done = False
        for attr in ("data_path", "path"):
            keys = [getattr(runs[i], attr) for i in idx]
            if any(not k for k in keys) or len(set(keys)) < len(keys):
                continue
            depth = max(len(Path(k).parts) for k in keys)
            for k in range(1, depth + 1):
                tails = [_tail(key, k) for key in keys]
                if len(set(tails)) == len(tails):
                    for i, t in zip(idx, tails):
                        if not runs[i].named:
                            names[i] = t if (attr == "data_path" and Path(t).name == name) else f"{name} ({t})"
                    done = True
                    break
            if done:
                break
        if not done:
            for n, i in enumerate(auto, 1):
                names[i] = f"{name} #{n}"
    names = [n if r.named or not r.preset else f"{n} (preset {r.preset})" for n, r in zip(names, runs)]
    seen: dict[str, int] = {}
    for i, n in enumerate(names):  # anything still shared (a new name equal to an old one): number it
        seen[n] = seen.get(n, 0) + 1
        if seen[n] > 1 and not runs[i].named:
            names[i] = f"{n} #{seen[n]}"
    return names


def _collect(runs: list[RunSummary], metrics: list[str] | None):
    """Methods in order of appearance, each group's metric columns (those its run computed, in ``metrics``
    order), better directions, and the cell values ``{(group, method, metric): {mean, n, n_inf, n_common}}``."""
    methods: list[str] = []
    for r in runs:
        for m in r.summary["method"]:
            if m not in methods:
                methods.append(m)
    higher: dict[str, bool] = {}
    for r in runs:
        for _, row in r.summary.iterrows():
            higher.setdefault(row["metric"], bool(row["higher_is_better"]))
    explicit = metrics is not None
    if metrics is None:
        metrics = list(higher)
    unknown = [m for m in metrics if m not in higher]
    if unknown:
        raise ConfigError(f"metric(s) not in any run: {', '.join(unknown)} (available: {', '.join(higher)})")
    values: dict[tuple[int, str, str], dict] = {}
    for gi, r in enumerate(runs):
        for _, row in r.summary.iterrows():
            n_inf = row.get("n_inf", 0)
            values[(gi, row["method"], row["metric"])] = {
                "mean": float(row["mean"]), "n": row.get("n"), "n_inf": 0 if pd.isna(n_inf) else int(n_inf),
                "unequal": unequal_n(row), "common": row.get("n_common")}
    given = metrics if explicit else None
    group_metrics = [[m for m in (given or dict.fromkeys(r.summary["metric"])) if m in set(r.summary["metric"]) and m in metrics]
                     for r in runs]
    return methods, group_metrics, higher, values


def _ranks(col: dict[str, float], higher: bool) -> dict[str, int]:
    """1 = best, 2 = second best (distinct finite values; ties share a rank), 0 = neither."""
    distinct = sorted({v for v in col.values() if math.isfinite(v)}, reverse=higher)
    return {m: (distinct.index(v) + 1 if math.isfinite(v) and distinct.index(v) < 2 else 0) for m, v in col.items()}


def _fmt(v: float, precision: int) -> str:
    return "--" if not math.isfinite(v) else f"{v:.{precision}f}"


def _images_per_mean(names: list[str], values: dict, methods: list[str], group_metrics: list[list[str]],
                     marked: bool) -> str:
    """"Each mean over n = 76 images" (the most common n of each group; per group when they differ)."""
    per_group = []
    for gi, name in enumerate(names):
        ns = [int(values[(gi, m, met)]["n"]) for m in methods for met in group_metrics[gi]
              if (gi, m, met) in values and not pd.isna(values[(gi, m, met)]["n"]) and int(values[(gi, m, met)]["n"]) > 0]
        if ns:
            counts = Counter(ns)
            per_group.append((name, max(counts, key=lambda n: (counts[n], n))))
    if not per_group:
        return ""
    unless = " unless marked ‡" if marked else ""
    if len({n for _, n in per_group}) == 1:
        return f" Each mean over n = {per_group[0][1]} images{unless}."
    return f" Images per mean{unless}: " + "; ".join(f"{name} n = {n}" for name, n in per_group) + "."


def _caption(runs: list[RunSummary], names: list[str], methods: list[str], group_metrics: list[list[str]],
             refs: list[str], values: dict, marks: dict) -> str:
    profiles = sorted({r.profile for r in runs if r.profile})
    text = ("Metric profile: " + ", ".join(profiles) + ". " if profiles else "")
    if refs:
        text += (f"Best in bold, second best underlined among the restoration methods ({', '.join(refs)}: "
                 f"reference row{'s' if len(refs) > 1 else ''}, not ranked); arrows give the better direction.")
    else:
        text += "Best in bold, second best underlined; arrows give the better direction."
    backends = sorted({stem(r.labels.get(m, ""))[1] for r, ms in zip(runs, group_metrics) for m in ms
                       if stem(r.labels.get(m, ""))[1]})
    if backends:
        text += (" Brackets name the face model behind identity and landmark numbers; IDS(ArcFace) is the papers' "
                 "identity score, ID(dlib) a different model and scale.")
    text += _images_per_mean(names, values, methods, group_metrics, any(c["ddagger"] for c in marks.values()))
    if any(r.summary.get("common_only", pd.Series(dtype=bool)).fillna(False).astype(bool).any() for r in runs):
        text += " Means restricted to the images every method scored (evaluate --common-images)."
    if any(c["dagger"] for c in marks.values()):
        text += (" †: mean over finite values only; images with an infinite value (PSNR of a result identical to "
                 "the ground truth) left out (listed in the run's summary.csv), so that mean is over fewer images.")
    if any(c["ddagger"] for c in marks.values()):
        text += (" ‡: mean over another image set than the rest of its column (its n in brackets: some images have "
                 "no value for one method); evaluate --common-images restricts every mean to the common images.")
    if any(c["text"] == "--" for c in marks.values()):
        text += " --: no value."
    for r, name in zip(runs, names):
        if r.real_world:
            text += f" {name}: {r.real_world}."
    reduced = sorted({r.precision for r in runs if r.precision and r.precision != "fp32"})
    if reduced:  # fp32 (exact, TF32 off) is the default and goes unsaid; anything else is stated
        text += f" Networks run in {', '.join(reduced)} (not the exact fp32 of the reference implementations)."
    return text


def _refs_text(runs: list[RunSummary], names: list[str]) -> str:
    """How many reference images each LQ image had, per run (``2 to 7 (median 4)``), or that it is unknown."""
    parts = []
    for r, name in zip(runs, names):
        if not r.n_refs:
            parts.append(f"{name}: not recorded")
            continue
        lo, hi = min(r.n_refs), max(r.n_refs)
        med = sorted(r.n_refs)[len(r.n_refs) // 2]
        count = f"{lo}" if lo == hi else f"{lo} to {hi} (median {med})"
        parts.append(f"{name}: {count} per image")
    return "references " + ("; ".join(parts) if len(runs) > 1 else parts[0].split(": ", 1)[1])


def _cells(runs, methods, group_metrics, higher, values, refs, precision) -> dict:
    """Per (group, method, metric): the value text, rank, † (infinite values left out), ‡ and n (another image
    set than the rest of the column)."""
    nan = {"mean": float("nan"), "n": None, "n_inf": 0, "unequal": False, "common": None}
    cells = {}
    for gi in range(len(runs)):
        for met in group_metrics[gi]:
            col = {m: values.get((gi, m, met), nan) for m in methods}
            ranks = _ranks({m: v["mean"] for m, v in col.items() if m not in refs}, higher[met])
            odd = odd_n(col)
            for m in methods:
                cells[(gi, m, met)] = {"text": _fmt(col[m]["mean"], precision), "rank": ranks.get(m, 0),
                                       "dagger": col[m]["n_inf"] > 0, "ddagger": odd.get(m, False), "n": col[m]["n"]}
    return cells


def make_table(runs: list[RunSummary], fmt: str = "latex", metrics: list[str] | None = None,
               precision: int = 4, exclude_from_ranking: tuple[str, ...] | None = None,
               rank_references: bool = False, needs_references: Mapping[str, bool] | None = None) -> str:
    """Render the table(s). ``exclude_from_ranking``: method names never marked best/second (default: the LQ input
    ``lq`` and ``bicubic``; a row ``bicubic:scale=4`` matches ``bicubic``); ``rank_references=True`` ranks
    every row. ``needs_references``: method label -> whether it restores from reference images (added to what
    the runs recorded); with any such method, one table per setting (generic, specific)."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}")
    methods, group_metrics, higher, values = _collect(runs, metrics)
    names = distinct_names(runs)
    keep = [gi for gi, g in enumerate(group_metrics) if g]
    if not keep:
        raise ConfigError("none of the runs computed any of the requested metrics")
    runs, names, group_metrics = [runs[i] for i in keep], [names[i] for i in keep], [group_metrics[i] for i in keep]
    values = {(keep.index(gi), m, met): v for (gi, m, met), v in values.items() if gi in keep}
    excluded = () if rank_references else tuple(REFERENCE_METHODS if exclude_from_ranking is None else exclude_from_ranking)
    refs = [m for m in methods if excluded and is_reference(m, excluded)]
    labels = [{met: r.labels.get(met) or METRIC_LABELS.get(met, met) for met in g} for r, g in zip(runs, group_metrics)]
    needs = {k: v for r in runs for k, v in r.needs_references.items()}
    needs.update(needs_references or {})
    specific = [m for m in methods if needs.get(m) and not is_reference(m)]
    if specific:
        generic = [m for m in methods if not needs.get(m)]
        settings = [("generic", generic)] if any(not is_reference(m) for m in generic) else []
        settings.append(("specific", [m for m in methods if is_reference(m)] + specific))
    else:
        settings = [("", methods)]
    out, rows = [], []
    for setting, ms in settings:
        cells = _cells(runs, ms, group_metrics, higher, values, [m for m in refs if m in ms], precision)
        caption = _caption(runs, names, ms, group_metrics, [m for m in refs if m in ms], values, cells)
        if setting == "generic":
            caption = "Generic restoration (methods without reference images). " + caption
        elif setting == "specific":
            caption = (f"Specific restoration (methods given reference images of the same person: {', '.join(specific)}; "
                       f"{_refs_text(runs, names)}). " + caption)
        if fmt == "markdown":
            out.append(render_markdown(names, ms, group_metrics, labels, higher, cells, caption))
        elif fmt == "latex":
            out.append(render_latex(names, ms, group_metrics, labels, higher, cells, caption))
        for gi, name in enumerate(names):
            for m in ms:
                for met in group_metrics[gi]:
                    v = values.get((gi, m, met), {"mean": float("nan"), "n": None, "n_inf": 0, "common": None})
                    n, common = v["n"], v["common"]
                    rows.append([m, name, met, repr(v["mean"]) if math.isfinite(v["mean"]) else "", str(higher[met]).lower(),
                                 labels[gi][met], "" if n is None or pd.isna(n) else int(n), v["n_inf"],
                                 "" if common is None or pd.isna(common) else int(common), setting])
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["method", "group", "metric", "value", "higher_is_better", "label", "n", "n_inf", "n_common", "setting"])
        w.writerows(rows)
        return buf.getvalue()
    return "\n".join(out)
