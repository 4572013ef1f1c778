"""Paper-style tables from one or more ``celebref evaluate`` run folders.

Rows are methods (in order of first appearance), column groups are runs (test sets or settings, e.g. generic
vs specific restoration), and each group has one column per metric with its better-direction arrow. Column
headers are the run's display labels (``summary.csv`` ``label``): identity and landmark columns name their face
backend (``IDS(ArcFace)``, ``ID(dlib)``), since numbers from different backends are not comparable.

In every column the best value among the restoration methods is bold and the second best underlined (ties
share the mark); the reference rows (the LQ input ``lq`` and ``bicubic``) are never marked unless
``rank_references=True``, and the caption says which rows were left out. A mean over finite values that left
out images with an infinite value (PSNR of a result identical to the ground truth) carries a dagger explained
in the caption. The caption names the metric profile so that a number is never ambiguous. Group names default
to the degradation preset or the test set's folder name; runs that would share a name get the shortest
distinguishing tail of their test-set path (or of their run folder). Formats: LaTeX (booktabs), Markdown, CSV
(long form).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from celebref.errors import ConfigError

from .labels import METRIC_LABELS, REFERENCE_METHODS, is_reference, labels_from_run, stem

FORMATS = ("latex", "markdown", "csv")
__all__ = ["FORMATS", "METRIC_LABELS", "RunSummary", "load_run", "distinct_names", "make_table"]


@dataclass
class RunSummary:
    name: str
    profile: str
    summary: pd.DataFrame  # method, metric, mean, std, n, n_failed, higher_is_better (+ label, n_inf, inf_ids, note)
    labels: dict[str, str] = field(default_factory=dict)  # metric column -> display label
    data_path: str = ""  # the test set the run evaluated (for telling runs apart)
    path: str = ""  # the run folder
    named: bool = False  # the name was given by the user (never changed)
    precision: str = ""  # the precision the methods ran in (run.json); fp32 is the exact default


def load_run(path: str | Path, name: str | None = None) -> RunSummary:
    path = Path(path)
    if not (path / "summary.csv").is_file():
        raise ConfigError(f"{path} is not an evaluate run folder (no summary.csv)")
    summary = pd.read_csv(path / "summary.csv")
    profile, label, data_path, meta = "", name, "", {}
    precision = ""
    if (path / "run.json").is_file():
        meta = json.loads((path / "run.json").read_text(encoding="utf-8"))
        prof = meta.get("profile")
        profile = (prof.get("profile") or prof.get("name", "")) if isinstance(prof, dict) else (prof or "")
        data = meta.get("data") or {}
        data_path = str(data.get("path") or data.get("lq") or "")
        precision = str(meta.get("precision") or "")
        if label is None:
            degrade = meta.get("degrade") or {}
            preset = data.get("preset") or degrade.get("preset") or (degrade.get("config") or {}).get("preset")
            label = preset or Path(data_path or path).name
    return RunSummary(name=label or path.name, profile=profile, summary=summary, labels=labels_from_run(summary, meta),
                      data_path=data_path, path=str(path.resolve()), named=name is not None, precision=precision)


def _tail(p: str, k: int) -> str:
    parts = Path(p).parts
    return "/".join(parts[-k:]) if parts else ""


def distinct_names(runs: list[RunSummary]) -> list[str]:
    """Group names, made distinct: runs sharing a default name get the shortest tail of their test-set path
    that tells them apart (e.g. ``generic/test`` vs ``specific/test``), else of their run folder, else a number.
    Names the user gave are kept as they are."""
    names = [r.name for r in runs]
    by_name: dict[str, list[int]] = {}
    for i, r in enumerate(runs):
        by_name.setdefault(r.name, []).append(i)
    for name, idx in by_name.items():
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
    seen: dict[str, int] = {}
    for i, n in enumerate(names):  # anything still shared (a new name equal to an old one): number it
        seen[n] = seen.get(n, 0) + 1
        if seen[n] > 1 and not runs[i].named:
            names[i] = f"{n} #{seen[n]}"
    return names


def _collect(runs: list[RunSummary], metrics: list[str] | None):
    methods: list[str] = []
    for r in runs:
        for m in r.summary["method"]:
            if m not in methods:
                methods.append(m)
    if metrics is None:
        metrics = []
        for r in runs:
            for m in r.summary["metric"]:
                if m not in metrics:
                    metrics.append(m)
    higher: dict[str, bool] = {}
    for r in runs:
        for _, row in r.summary.iterrows():
            higher.setdefault(row["metric"], bool(row["higher_is_better"]))
    unknown = [m for m in metrics if m not in higher]
    if unknown:
        raise ConfigError(f"metric(s) not in any run: {', '.join(unknown)} (available: {', '.join(higher)})")
    values: dict[tuple[int, str, str], dict] = {}
    for gi, r in enumerate(runs):
        for _, row in r.summary.iterrows():
            n_inf = row.get("n_inf", 0)
            values[(gi, row["method"], row["metric"])] = {
                "mean": float(row["mean"]), "n": row.get("n"), "n_inf": 0 if pd.isna(n_inf) else int(n_inf)}
    return methods, metrics, higher, values


def _ranks(col: dict[str, float], higher: bool) -> dict[str, int]:
    """1 = best, 2 = second best (distinct finite values; ties share a rank), 0 = neither."""
    distinct = sorted({v for v in col.values() if math.isfinite(v)}, reverse=higher)
    return {m: (distinct.index(v) + 1 if math.isfinite(v) and distinct.index(v) < 2 else 0) for m, v in col.items()}


def _fmt(v: float, precision: int) -> str:
    return "--" if not math.isfinite(v) else f"{v:.{precision}f}"


def _caption(runs: list[RunSummary], methods: list[str], metrics: list[str], labels: list[dict[str, str]],
             refs: list[str], daggers: int, dashes: bool) -> str:
    profiles = sorted({r.profile for r in runs if r.profile})
    text = ("Metric profile: " + ", ".join(profiles) + ". " if profiles else "")
    if refs:
        text += (f"Best in bold, second best underlined among the restoration methods ({', '.join(refs)}: "
                 f"reference row{'s' if len(refs) > 1 else ''}, not ranked); arrows give the better direction.")
    else:
        text += "Best in bold, second best underlined; arrows give the better direction."
    backends = sorted({stem(lab[m])[1] for lab in labels for m in metrics if stem(lab.get(m, ""))[1]})
    if backends:
        text += (" Brackets name the face model behind identity and landmark numbers; IDS(ArcFace) is the papers' "
                 "identity score, ID(dlib) a different model and scale.")
    if daggers:
        text += (" †: mean over finite values only; images with an infinite value (PSNR of a result identical to "
                 "the ground truth) left out (listed in the run's summary.csv).")
    if dashes:
        text += " --: no value."
    reduced = sorted({r.precision for r in runs if r.precision and r.precision != "fp32"})
    if reduced:  # fp32 (exact, TF32 off) is the default and goes unsaid; anything else is stated
        text += f" Networks run in {', '.join(reduced)} (not the exact fp32 of the reference implementations)."
    return text


def make_table(runs: list[RunSummary], fmt: str = "latex", metrics: list[str] | None = None,
               precision: int = 4, exclude_from_ranking: tuple[str, ...] | None = None,
               rank_references: bool = False) -> str:
    """Render the table. ``exclude_from_ranking``: method names never marked best/second (default: the LQ input
    ``lq`` and ``bicubic``; a row ``bicubic:scale=4`` matches ``bicubic``); ``rank_references=True`` ranks
    every row."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}")
    methods, metrics, higher, values = _collect(runs, metrics)
    names = distinct_names(runs)
    excluded = () if rank_references else tuple(REFERENCE_METHODS if exclude_from_ranking is None else exclude_from_ranking)
    refs = [m for m in methods if excluded and is_reference(m, excluded)]
    labels = [{met: r.labels.get(met) or METRIC_LABELS.get(met, met) for met in metrics} for r in runs]
    nan = {"mean": float("nan"), "n": None, "n_inf": 0}
    cells: dict[tuple[int, str, str], tuple[str, int, bool]] = {}
    for gi in range(len(runs)):
        for met in metrics:
            col = {m: values.get((gi, m, met), nan) for m in methods}
            ranks = _ranks({m: v["mean"] for m, v in col.items() if m not in refs}, higher[met])
            for m in methods:
                cells[(gi, m, met)] = (_fmt(col[m]["mean"], precision), ranks.get(m, 0), col[m]["n_inf"] > 0)
    daggers = sum(1 for c in cells.values() if c[2])
    dashes = any(c[0] == "--" for c in cells.values())
    caption = _caption(runs, methods, metrics, labels, refs, daggers, dashes)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["method", "group", "metric", "value", "higher_is_better", "label", "n", "n_inf"])
        for gi, name in enumerate(names):
            for m in methods:
                for met in metrics:
                    v = values.get((gi, m, met), nan)
                    n = v["n"]
                    w.writerow([m, name, met, repr(v["mean"]) if math.isfinite(v["mean"]) else "", str(higher[met]).lower(),
                                labels[gi][met], "" if n is None or pd.isna(n) else int(n), v["n_inf"]])
        return buf.getvalue()
    if fmt == "markdown":
        head = ["Method"] + [f"{name} {labels[gi][met]} {'↑' if higher[met] else '↓'}"
                             for gi, name in enumerate(names) for met in metrics]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join([" --- "] + [" ---: "] * (len(head) - 1)) + "|"]
        for m in methods:
            row = [m]
            for gi in range(len(runs)):
                for met in metrics:
                    text, rank, dag = cells[(gi, m, met)]
                    text += "†" if dag else ""
                    row.append(f"**{text}**" if rank == 1 else f"<u>{text}</u>" if rank == 2 else text)
            lines.append("| " + " | ".join(row) + " |")
        return "\n".join(lines) + f"\n\n{caption}\n"
    # latex (booktabs)
    def esc(s: str) -> str:
        for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                     ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\textasciicircum{}")):
            s = s.replace(a, b)
        return s

    k = len(metrics)
    caption_tex = esc(caption).replace("†", r"$^\dagger$")
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{caption_tex}}}",
             r"\begin{tabular}{l" + "c" * (k * len(runs)) + "}",
             r"\toprule"]
    if len(runs) > 1:
        groups = " & ".join(rf"\multicolumn{{{k}}}{{c}}{{{esc(name)}}}" for name in names)
        lines.append(f" & {groups} \\\\")
        lines.append(" ".join(rf"\cmidrule(lr){{{2 + gi * k}-{1 + (gi + 1) * k}}}" for gi in range(len(runs))))
    arrow = {True: r"$\uparrow$", False: r"$\downarrow$"}
    heads = " & ".join(esc(labels[gi][met]) + arrow[higher[met]] for gi in range(len(runs)) for met in metrics)
    lines.append(rf"Method & {heads} \\")
    lines.append(r"\midrule")
    for m in methods:
        row = [esc(m)]
        for gi in range(len(runs)):
            for met in metrics:
                text, rank, dag = cells[(gi, m, met)]
                text += r"$^\dagger$" if dag else ""
                row.append(rf"\textbf{{{text}}}" if rank == 1 else rf"\underline{{{text}}}" if rank == 2 else text)
        lines.append(" & ".join(row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
