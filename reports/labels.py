"""Display labels of metric columns and the abbreviations a report or table explains once.

A metric column's label is written to ``summary.csv`` (column ``label``) when the run is evaluated; the
identity and landmark metrics name their face backend there (``IDS(ArcFace)``, ``ID(dlib)``, ``LMD(dlib)``),
because numbers from different backends are not comparable. Older run folders without that column get the
generic labels below (identity columns then name the backend recorded in ``run.json`` when there is one).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Mapping

import pandas as pd

# Generic display names (metric columns without a backend-specific label).
METRIC_LABELS = {
    "psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS", "lpips_vgg": "LPIPS-VGG", "fid": "FID", "niqe": "NIQE",
    "identity_cos": "IDS", "identity_angle": "Deg", "lmd": "LMD", "identity_input_cos": "ID-in",
}

#: rows that are references, not restoration methods: never marked best unless asked
REFERENCE_METHODS = ("lq", "bicubic")

# Abbreviation -> explanation (stems: "ID(dlib)" is explained under "ID").
ABBREVIATIONS = {
    "PSNR": "peak signal-to-noise ratio against the ground truth, in dB",
    "SSIM": "structural similarity index against the ground truth (0..1)",
    "LPIPS": "learned perceptual image patch similarity (AlexNet features; a distance)",
    "LPIPS-VGG": "LPIPS with VGG16 features",
    "FID": "Fréchet Inception distance between the restored set and the ground-truth set (one value per method)",
    "NIQE": "natural image quality evaluator (no reference; lower looks more natural)",
    "IDS": "identity score: cosine similarity of ArcFace embeddings of result and ground truth (the papers' metric)",
    "ID": "identity similarity: cosine similarity of this backend's face descriptors of result and ground truth "
          "(not the papers' ArcFace IDS: another model, another scale)",
    "Deg": "angle in degrees between the identity embeddings of result and ground truth (arccos of the cosine)",
    "LMD": "landmark distance: mean distance of the 68 facial landmarks of result and ground truth, in pixels at 512x512",
    "ID-in": "identity to the input: cosine similarity between the face embeddings of the LQ input and the restored "
             "face (no ground truth needed; low values: the restoration changed who it shows)",
    "LQ": "the low-quality (degraded) input, shown as a reference row",
    "GT": "ground truth (the high-quality original)",
    "bicubic": "bicubic upsampling of the LQ input, a reference row",
}

_STEM = re.compile(r"^([^(]+)(?:\((.*)\))?$")


def stem(label: str) -> tuple[str, str]:
    """``"IDS(ArcFace)"`` -> ``("IDS", "ArcFace")``; ``"PSNR"`` -> ``("PSNR", "")``."""
    m = _STEM.match(label.strip())
    return (m.group(1), m.group(2) or "") if m else (label, "")


def explain(labels: Iterable[str]) -> dict[str, str]:
    """The abbreviations among ``labels`` with their explanation, in first-seen order, each once; labels that
    name a backend add one line on what the parenthesis means."""
    out: dict[str, str] = {}
    backends: list[str] = []
    for label in labels:
        s, backend = stem(label)
        if s in ABBREVIATIONS and s not in out:
            out[s] = ABBREVIATIONS[s]
        if backend and backend not in backends:
            backends.append(backend)
    if backends:
        out["(" + ")/(".join(backends) + ")"] = "the face model behind an identity or landmark number; numbers " \
            "with different models in brackets are not comparable"
    return out


def labels_from_run(summary: pd.DataFrame, meta: Mapping | None = None) -> dict[str, str]:
    """Metric column -> display label for one run: ``summary.csv``'s ``label`` column when present, else the
    generic name (for face metrics, with the backend recorded in ``run.json``'s metric description)."""
    out: dict[str, str] = {}
    if "label" in summary.columns:
        for met, lab in zip(summary["metric"], summary["label"]):
            if isinstance(lab, str) and lab.strip():
                out.setdefault(str(met), lab.strip())
    backends: dict[str, str] = {}
    for d in (meta or {}).get("metrics") or []:
        if isinstance(d, dict):
            recorded = d.get("labels") or {}
            backend = (d.get("face") or {}).get("backend") if isinstance(d.get("face"), dict) else None
            for col in d.get("columns") or []:
                if col in recorded:
                    out.setdefault(col, recorded[col])
                elif backend:
                    backends[col] = str(backend)
    for met in dict.fromkeys(summary["metric"]):
        met = str(met)
        if met not in out:
            base = METRIC_LABELS.get(met, met)
            if met in backends and base == "IDS" and backends[met] != "insightface":
                base = "ID"  # IDS is the papers' ArcFace score; another backend's cosine is not that number
            out[met] = f"{base}({backends[met]})" if met in backends else base
    return out


def is_reference(method: str, references: Iterable[str] = REFERENCE_METHODS) -> bool:
    """Whether a method row (label such as ``bicubic`` or ``codeformer:w=0.7``) is a reference row."""
    return str(method).split(":", 1)[0] in tuple(references)


def unequal_n(row: Mapping) -> bool:
    """Whether a summary row's mean is over another image set than the other methods' (``n`` differs from
    ``n_common``, the images every method scored; rows of run folders without ``n_common`` never are)."""
    nc = row.get("n_common")
    try:
        return nc is not None and not pd.isna(nc) and int(row["n"]) != int(nc)
    except (TypeError, ValueError):
        return False


# Words of a profile description -> the metric key they describe (for leaving out metrics that were not run).
_DESCRIBED = {"psnr": "psnr", "ssim": "ssim", "lpips": "lpips", "fid": "fid", "niqe": "niqe", "identity": "identity",
              "lmd": "lmd"}


_OWN_COLUMNS = {"identity": ("identity_cos", "identity_angle")}


def metric_was_run(key: str, columns: Iterable[str]) -> bool:
    """Whether the metric ``key`` (a profile's metric name such as ``lpips-vgg`` or ``identity``) produced one of
    ``columns`` (``lpips_vgg``, ``identity_cos``, ...)."""
    k = str(key).lower().replace("-", "_")
    columns = [str(c).lower() for c in columns]
    if k in _OWN_COLUMNS:  # a prefix of another metric's columns (identity_input_cos is not the identity metric's)
        return any(c in _OWN_COLUMNS[k] for c in columns)
    return any(c == k or c.startswith(k + "_") for c in columns)


def evaluated_description(description: str, columns: Iterable[str]) -> str:
    """A profile description (``;``-separated parts) without the parts about metrics that were not run: a part is
    kept when it names a metric of ``columns`` or names none."""
    columns = list(columns)
    kept = []
    for part in str(description or "").split(";"):
        words = {_DESCRIBED[w] for w in re.findall(r"[a-z]+", part.lower()) if w in _DESCRIBED}
        if not words or any(metric_was_run(w, columns) for w in words):
            kept.append(part.strip())
    return "; ".join(p for p in kept if p)


def evaluated_profile_lines(name: str, description: str, aliases: Mapping, options: Mapping,
                            columns: Iterable[str]) -> list[str]:
    """The profile's conventions for the metrics that were run (``columns``: the summary's metric columns), one
    line each, as printed under a summary."""
    columns = list(columns)
    lines = [f"profile {name}: {evaluated_description(description, columns)}"]
    lines += [f"  {k} = {v}" for k, v in (aliases or {}).items() if metric_was_run(v, columns) and k != v]
    lines += [f"  {m}: " + ", ".join(f"{k}={v}" for k, v in (o or {}).items())
              for m, o in (options or {}).items() if metric_was_run(m, columns)]
    return lines


def odd_n(col: Mapping[str, Mapping]) -> dict[str, bool]:
    """Cells of one summary column (method -> ``{n, n_inf, unequal}``) whose mean is over another image set than
    the rest: ``n`` unlike the column's most common ``n`` (a mean short only by its infinite values is not: it
    carries its own mark), or every cell when all ``n`` are equal but the sets differ (:func:`unequal_n`)."""
    ns = {m: int(v["n"]) for m, v in col.items() if v.get("n") is not None and not pd.isna(v["n"]) and int(v["n"]) > 0}
    if not ns:
        return {}
    counts = Counter(ns.values())
    if len(counts) == 1:
        return {m: bool(col[m].get("unequal")) for m in ns}
    mode = max(counts, key=lambda n: (counts[n], n))
    return {m: n != mode and n + int(col[m].get("n_inf") or 0) != mode for m, n in ns.items()}
