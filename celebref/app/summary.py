"""Summary of an evaluate run: one row per method x metric column, as written to ``summary.csv`` and printed.

Conventions (docs/FORMATS.md):

* ``mean`` and ``std`` (sample, ddof=1) are over the **finite** per-image values only; ``n`` counts them.
* ``n_inf``: images whose value is infinite, left out of the mean and listed in ``inf_ids`` (``;``-separated).
  PSNR is +inf when the image equals the ground truth (BasicSR's convention), e.g. an LQ image that the dfdnet
  preset left untouched: one such image would otherwise make the whole method's mean ``inf``.
* ``n_failed``: images with no value at all (no output, or the metric could not score them: NaN).
  ``n + n_inf + n_failed`` = the method's rows.
* ``label``: the display name (``PSNR``, ``IDS(ArcFace)``, ``ID(dlib)``, ...; face metrics name their backend).
* ``note``: why a mean is NaN or leaves images out, in words (empty otherwise).
* ``n_common``: images with a finite value for **every** method that scored any (per metric column). A row whose
  ``n`` differs from ``n_common`` is a mean over another image set than the other methods' (tables and reports
  flag it); ``summarize(..., common_images=True)`` (``evaluate --common-images``) restricts every method's mean
  to those images instead, and sets ``common_only``. A method without any value is not counted in the
  intersection (its mean is n/a and says so).

Dataset-level metrics (FID): ``mean`` is the value, ``n`` the number of images behind it, ``n_common`` the images
every method restored; they are never restricted (the value is computed once per method during the run).
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd

from reports.labels import METRIC_LABELS, evaluated_profile_lines, odd_n, unequal_n

SUMMARY_COLUMNS = ["method", "metric", "mean", "std", "n", "n_failed", "higher_is_better",
                   "label", "n_inf", "inf_ids", "note", "n_common", "common_only"]
FID_MIN_N = 2048
_SHOW_IDS = 5


def column_labels(metric) -> dict[str, str]:
    """Display label of each of ``metric``'s columns (its own ``column_labels()`` when it has one)."""
    own = getattr(metric, "column_labels", None)
    labels = own() if callable(own) else {}
    return {c: labels.get(c) or METRIC_LABELS.get(c, c) for c in metric.columns}


def _ids(ids: list[str]) -> str:
    return ", ".join(ids[:_SHOW_IDS]) + (f", ... ({len(ids)} in all)" if len(ids) > _SHOW_IDS else "")


def _note(label: str, n: int, n_failed: int, inf_ids: list[str]) -> str:
    failed = f"{n_failed} image(s) without a value" if n_failed else ""
    if inf_ids:
        why = " (result identical to the ground truth)" if label.upper().startswith("PSNR") else ""
        infs = f"{len(inf_ids)} image(s) with infinite {label}{why}"
        if n == 0:
            return f"no finite value: {infs}: {_ids(inf_ids)}" + (f"; {failed}" if failed else "")
        return f"mean over {n} finite value(s); {infs} left out: {_ids(inf_ids)}"
    if n == 0:
        return f"no value: {failed}" if failed else "no images"
    return ""


def _values(g: pd.DataFrame, c: str) -> np.ndarray:
    return pd.to_numeric(g[c], errors="coerce").to_numpy(np.float64) if c in g.columns else np.full(len(g), np.nan)


def _ids_of(g: pd.DataFrame) -> np.ndarray:
    return g["id"].astype(str).to_numpy() if "id" in g.columns else np.array([str(k) for k in range(len(g))])


def common_ids(per_image: pd.DataFrame, column: str) -> set[str]:
    """Ids with a finite ``column`` value for every method that has at least one (module docstring)."""
    sets = []
    for _, g in per_image.groupby("method", sort=False):
        v = _values(g, column)
        ok = set(_ids_of(g)[np.isfinite(v)])
        if ok:
            sets.append(ok)
    return set.intersection(*sets) if sets else set()


def _restored_ids(g: pd.DataFrame) -> set[str]:
    if "output_path" in g.columns:
        done = g["output_path"].fillna("").astype(str) != ""
    elif "status" in g.columns:
        done = g["status"] == "ok"
    else:
        done = pd.Series(True, index=g.index)
    return set(_ids_of(g)[done.to_numpy()])


def summarize(per_image: pd.DataFrame, metrics, dataset_rows: list[dict], common_images: bool = False) -> pd.DataFrame:
    """``per_image`` (one row per image x method, with ``id``, ``method`` and every metric column), the metric
    objects, and the dataset-level rows ``{method, metric, value, n}`` -> the summary table (module docstring).
    ``common_images``: every per-image mean over the images every method scored (``evaluate --common-images``)."""
    out = []
    columns = [c for m in metrics if not m.dataset_level for c in m.columns]
    common = {c: common_ids(per_image, c) for c in columns}
    for method, g in per_image.groupby("method", sort=False):
        ids = _ids_of(g)
        for m in metrics:
            if m.dataset_level:
                continue
            labels = column_labels(m)
            for c in m.columns:
                vals = _values(g, c)
                finite, inf = np.isfinite(vals), np.isinf(vals)
                inf_ids = [str(i) for i in ids[inf]]
                n, n_failed = int(finite.sum()), int(len(g) - finite.sum() - inf.sum())
                note = _note(labels[c], n, n_failed, inf_ids)
                if common_images:
                    keep = finite & np.isin(ids, list(common[c]))
                    dropped = n - int(keep.sum())
                    finite, n = keep, int(keep.sum())
                    if dropped:
                        note = "; ".join(x for x in (f"restricted to the {len(common[c])} image(s) every method "
                                                     f"scored: {dropped} other finite value(s) left out", note) if x)
                good = vals[finite]
                std = float(np.std(good, ddof=1)) if n > 1 else float("nan")
                out.append({"method": method, "metric": c, "mean": float(good.mean()) if n else float("nan"),
                            "std": std, "n": n, "n_failed": n_failed, "higher_is_better": bool(m.higher_is_better[c]),
                            "label": labels[c], "n_inf": len(inf_ids), "inf_ids": ";".join(inf_ids),
                            "note": note, "n_common": len(common[c]), "common_only": bool(common_images)})
    restored = [_restored_ids(g) for _, g in per_image.groupby("method", sort=False)]
    restored = [r for r in restored if r]
    n_restored_common = len(set.intersection(*restored)) if restored else 0
    for d in dataset_rows:
        m = next(x for x in metrics if x.name == d["metric"])
        total = int((per_image["method"] == d["method"]).sum())
        label = column_labels(m)[m.columns[0]]
        value = float(d["value"])
        note = ""
        if not np.isfinite(value):
            note = f"{label} needs at least 2 restored images (had {d['n']})" if d["n"] < 2 else f"{label} could not be computed"
        elif d["n"] < FID_MIN_N:
            note = f"from {d['n']} images (< {FID_MIN_N}): biased upwards, compare only at equal n"
        if common_images:
            note = "; ".join(x for x in (note, f"not restricted to common images (a dataset-level value, computed "
                                               f"over this method's {d['n']} restored images)") if x)
        out.append({"method": d["method"], "metric": d["metric"], "mean": value, "std": float("nan"), "n": d["n"],
                    "n_failed": total - d["n"], "higher_is_better": bool(m.higher_is_better[m.columns[0]]),
                    "label": label, "n_inf": 0, "inf_ids": "", "note": note, "n_common": n_restored_common,
                    "common_only": False})
        if np.isfinite(value) and d["n"] < FID_MIN_N:
            warnings.warn(f"FID for {d['method']} from only {d['n']} images (< {FID_MIN_N}): biased upwards, "
                          "compare only at equal N", stacklevel=2)
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


def _usual_n(summary: pd.DataFrame) -> dict:
    """Row index -> the usual n of its metric, for the rows whose mean is over another image set
    (:func:`reports.labels.odd_n`: the n differs from the metric's most common one, not only by infinite values)."""
    out = {}
    for _, g in summary.groupby("metric", sort=False):
        col = {k: {"n": r["n"], "n_inf": r.get("n_inf", 0) if pd.notna(r.get("n_inf", 0)) else 0, "unequal": unequal_n(r)}
               for k, r in g.iterrows()}
        odd = odd_n(col)
        ns = [int(v["n"]) for k, v in col.items() if k in odd and not odd[k]]
        for k, flagged in odd.items():
            if flagged:
                out[k] = max(ns) if ns else int(g.loc[k, "n_common"])
    return out


def format_row(r, usual_n: int | None = None) -> str:
    """One summary row as printed: ``method label arrow mean ± std (n=..., failed=...; why)``; a mean over another
    image set than the other methods' says so: ``n=75 ≠ 76`` (``usual_n``: the n of the other methods' means, given
    by :func:`print_summary` when this row's mean is over another image set)."""
    arrow = "↑" if r["higher_is_better"] else "↓"
    label = r["label"] if isinstance(r.get("label"), str) and r.get("label") else r["metric"]
    mean = float(r["mean"])
    value = f"{mean:.4f}" if np.isfinite(mean) else "n/a"
    std = "" if pd.isna(r["std"]) or not np.isfinite(mean) else f" ± {r['std']:.4f}"
    n_inf = int(r.get("n_inf", 0) or 0)
    counts = f"n={int(r['n'])}" + (f" ≠ {usual_n}" if usual_n is not None else "")
    counts += (f", inf={n_inf}" if n_inf else "") + f", failed={int(r['n_failed'])}"
    note = r.get("note")
    note = f"; {note}" if isinstance(note, str) and note else ""
    return f"  {r['method']:<20} {label:<16}{arrow} {value}{std}  ({counts}{note})"


def print_summary(summary: pd.DataFrame, stream=None, profile: str | None = None) -> None:
    """The summary, followed by the metric profile's conventions for the metrics in it (a number is never printed
    without them; metrics that were not run are not listed). ``stream`` defaults to the current ``sys.stderr``
    (looked up at call time)."""
    stream = sys.stderr if stream is None else stream
    usual = _usual_n(summary)
    for k, r in summary.iterrows():
        print(format_row(r, usual.get(k)), file=stream)
    if "n_inf" in summary.columns and (summary["n_inf"].fillna(0) > 0).any():
        print("  (means over finite values: images with an infinite value, e.g. PSNR of a result identical to the "
              "ground truth, are counted in inf= and listed in summary.csv's inf_ids)", file=stream)
    if usual:
        print("  (n=X ≠ Y: that mean is over another image set than the other methods' means of the metric (Y: their "
              "n, or the images all methods scored); --common-images restricts every mean to the images all methods "
              "scored)", file=stream)
    from evaluation.profiles import get_profile

    prof = get_profile(profile)
    columns = [str(c) for c in dict.fromkeys(summary["metric"])]
    for line in evaluated_profile_lines(prof.name, prof.description, prof.aliases, prof.options, columns):
        print(line, file=stream)
