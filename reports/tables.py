"""Paper-style tables from one or more ``celebref evaluate`` run folders.

Rows are methods (in order of first appearance), column groups are runs (test sets or settings, e.g. generic
vs specific restoration), and each group has one column per metric with its better-direction arrow. In every
column the best value is bold and the second best underlined (ties share the mark). The caption names the
metric profile so that a number is never ambiguous. Formats: LaTeX (booktabs), Markdown, CSV (long form).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from celebref.errors import ConfigError

FORMATS = ("latex", "markdown", "csv")

# Display names for metric columns (anything else is shown as written).
METRIC_LABELS = {
    "psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS", "lpips_vgg": "LPIPS-VGG", "fid": "FID", "niqe": "NIQE",
    "identity_cos": "IDS", "identity_angle": "Deg", "lmd": "LMD",
}


@dataclass
class RunSummary:
    name: str
    profile: str
    summary: pd.DataFrame  # method, metric, mean, std, n, n_failed, higher_is_better


def load_run(path: str | Path, name: str | None = None) -> RunSummary:
    path = Path(path)
    if not (path / "summary.csv").is_file():
        raise ConfigError(f"{path} is not an evaluate run folder (no summary.csv)")
    summary = pd.read_csv(path / "summary.csv")
    profile, label = "", name
    if (path / "run.json").is_file():
        meta = json.loads((path / "run.json").read_text(encoding="utf-8"))
        prof = meta.get("profile")
        profile = (prof.get("profile") or prof.get("name", "")) if isinstance(prof, dict) else (prof or "")
        if label is None:
            data = meta.get("data") or {}
            label = (meta.get("degrade") or {}).get("preset") or Path(str(data.get("path") or path)).name
    return RunSummary(name=label or path.name, profile=profile, summary=summary)


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
    values = {}
    for gi, r in enumerate(runs):
        for _, row in r.summary.iterrows():
            values[(gi, row["method"], row["metric"])] = float(row["mean"])
    return methods, metrics, higher, values


def _ranks(col: dict[str, float], higher: bool) -> dict[str, int]:
    """1 = best, 2 = second best (distinct values; ties share a rank), 0 = neither."""
    distinct = sorted({v for v in col.values() if not math.isnan(v)}, reverse=higher)
    return {m: (distinct.index(v) + 1 if not math.isnan(v) and distinct.index(v) < 2 else 0) for m, v in col.items()}


def _fmt(v: float, precision: int) -> str:
    return "--" if math.isnan(v) else f"{v:.{precision}f}"


def make_table(runs: list[RunSummary], fmt: str = "latex", metrics: list[str] | None = None,
               precision: int = 4, exclude_from_ranking: tuple[str, ...] = ("lq",)) -> str:
    """Render the table. ``exclude_from_ranking``: rows never marked best/second (the LQ input row)."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}")
    methods, metrics, higher, values = _collect(runs, metrics)
    nan = float("nan")
    cells: dict[tuple[int, str, str], tuple[str, int]] = {}
    for gi in range(len(runs)):
        for met in metrics:
            col = {m: values.get((gi, m, met), nan) for m in methods}
            ranks = _ranks({m: v for m, v in col.items() if m not in exclude_from_ranking}, higher[met])
            for m in methods:
                cells[(gi, m, met)] = (_fmt(col[m], precision), ranks.get(m, 0))
    profiles = sorted({r.profile for r in runs if r.profile})
    caption = ("Metric profile: " + ", ".join(profiles) + ". " if profiles else "") + \
        "Best in bold, second best underlined; arrows give the better direction."
    if fmt == "csv":
        lines = ["method,group,metric,value,higher_is_better"]
        for gi, r in enumerate(runs):
            for m in methods:
                for met in metrics:
                    v = values.get((gi, m, met), nan)
                    lines.append(f"{m},{r.name},{met},{'' if math.isnan(v) else repr(v)},{str(higher[met]).lower()}")
        return "\n".join(lines) + "\n"
    if fmt == "markdown":
        head = ["Method"] + [f"{r.name} {METRIC_LABELS.get(met, met)} {'↑' if higher[met] else '↓'}" for r in runs for met in metrics]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join([" --- "] + [" ---: "] * (len(head) - 1)) + "|"]
        for m in methods:
            row = [m]
            for gi in range(len(runs)):
                for met in metrics:
                    text, rank = cells[(gi, m, met)]
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
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{esc(caption)}}}",
             r"\begin{tabular}{l" + "c" * (k * len(runs)) + "}",
             r"\toprule"]
    if len(runs) > 1:
        groups = " & ".join(rf"\multicolumn{{{k}}}{{c}}{{{esc(r.name)}}}" for r in runs)
        lines.append(f" & {groups} \\\\")
        lines.append(" ".join(rf"\cmidrule(lr){{{2 + gi * k}-{1 + (gi + 1) * k}}}" for gi in range(len(runs))))
    arrow = {True: r"$\uparrow$", False: r"$\downarrow$"}
    heads = " & ".join(esc(METRIC_LABELS.get(met, met)) + arrow[higher[met]] for _ in runs for met in metrics)
    lines.append(rf"Method & {heads} \\")
    lines.append(r"\midrule")
    for m in methods:
        row = [esc(m)]
        for gi in range(len(runs)):
            for met in metrics:
                text, rank = cells[(gi, m, met)]
                row.append(rf"\textbf{{{text}}}" if rank == 1 else rf"\underline{{{text}}}" if rank == 2 else text)
        lines.append(" & ".join(row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
