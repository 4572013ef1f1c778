"""The NTIRE 2025 Real-World Face Restoration challenge score, as ``eval.py`` of
zhengchen1999/NTIRE2025_RealWorld_Face_Restoration computes it (read at commit 3b1903d3), as a pure function of
per-image values and one FID.

Protocol (``eval.py``):

* per image: NIQE, CLIP-IQA, MANIQA, MUSIQ (pyiqa's ``niqe``, ``clipiqa``, ``maniqa``, ``musiq``), Q-Align
  (``qalign``, only with ``--use_qalign True``) of the restored face, and ``ID_Sim``: the AdaFace IR-50 cosine between
  the LQ input and the restored face (both aligned to 112x112 with the challenge's 5 points);
* per test set: the mean of every value, and ``low_ID_Sim``: the number of images with ``ID_Sim < threshold``
  (strictly below; thresholds per set: :data:`THRESHOLDS`);
* overall (``All``): ``sum_s mean_s * count_s / sum_s count_s`` with the *declared* set sizes
  :data:`COUNTS` (CelebA 100, LFW-Test 100, CelebChild-Test 50, WebPhoto-Test 100, Wider-Test 100), the number of
  faces below threshold summed over sets, and FID of all outputs against the FFHQ 512 Inception statistics
  (``inception_FFHQ_512.pth``, first 3000 images);
* weighted score, summed into ``Total``: ``max(0, (100 - FID) / 100) + max(0, (10 - NIQE) / 10) + CLIP-IQA +
  MANIQA + MUSIQ / 100`` plus ``QALIGN / 5`` when Q-Align was computed. ``ID_Sim`` does not enter the score (it
  gates submissions through ``low_ID_Sim``). Without Q-Align the maximum is 5 instead of 6: results with and
  without it are not comparable, which :attr:`NtireScore.notes` says.

Differences we allow, each recorded in ``notes``: sets other than the challenge's (their threshold must be given),
sets absent from the run (the overall mean is then over the present sets only; ``eval.py`` would fail), and set
sizes that differ from the declared ones (``weights="declared"`` keeps ``eval.py``'s weights, ``"actual"`` weighs by
the images present).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from celebref.errors import ConfigError

#: per-set identity thresholds of eval.py (``ID_Sim < threshold`` counts as low identity)
THRESHOLDS: dict[str, float] = {"CelebA": 0.5, "LFW-Test": 0.6, "CelebChild-Test": 0.6, "Wider-Test": 0.3,
                                "WebPhoto-Test": 0.3}
#: declared set sizes of eval.py (the weights of the overall means)
COUNTS: dict[str, int] = {"CelebA": 100, "LFW-Test": 100, "CelebChild-Test": 50, "WebPhoto-Test": 100,
                          "Wider-Test": 100}
#: eval.py's metric keys -> our per-image columns (evaluation metrics ``niqe``, ``clip-iqa``, ``maniqa``,
#: ``musiq``, ``qalign``, ``identity-input``)
COLUMNS: dict[str, str] = {"NIQE": "niqe", "CLIP_IQA": "pyiqa_clipiqa", "MANIQA": "pyiqa_maniqa",
                           "MUSIQ": "pyiqa_musiq", "QALIGN": "pyiqa_qalign", "ID_Sim": "identity_input_cos"}
SCORED = ("FID", "NIQE", "CLIP_IQA", "MANIQA", "MUSIQ", "QALIGN")
REQUIRED = ("NIQE", "CLIP_IQA", "MANIQA", "MUSIQ", "ID_Sim")


def score_terms(overall: Mapping[str, float]) -> dict[str, float]:
    """eval.py's weighted-score terms of the overall means (keys of :data:`SCORED` that are present) plus ``Total``.

    ``FID -> max(0, (100 - FID) / 100)``, ``NIQE -> max(0, (10 - NIQE) / 10)``, ``CLIP_IQA``, ``MANIQA`` as they
    are, ``MUSIQ / 100``, ``QALIGN / 5``."""
    rules = {"FID": lambda v: max(0.0, (100.0 - v) / 100.0), "NIQE": lambda v: max(0.0, (10.0 - v) / 10.0),
             "CLIP_IQA": lambda v: v, "MANIQA": lambda v: v, "MUSIQ": lambda v: v / 100.0,
             "QALIGN": lambda v: v / 5.0}
    terms = {k: float(rules[k](float(overall[k]))) for k in SCORED if k in overall and overall[k] is not None}
    terms["Total"] = float(sum(terms.values()))
    return terms


@dataclass
class NtireScore:
    """Result of :func:`ntire2025_score`: ``per_set[set][key]`` means (plus ``low_ID_Sim`` and ``n``),
    ``overall`` (``All``: weighted means, ``FID``, ``low_ID_Sim``), ``weighted`` (score terms and ``Total``),
    ``notes`` (every difference from the challenge protocol, e.g. Q-Align absent)."""

    per_set: dict[str, dict[str, float]]
    overall: dict[str, float]
    weighted: dict[str, float]
    notes: list[str] = field(default_factory=list)
    qalign: bool = False

    @property
    def total(self) -> float:
        return self.weighted["Total"]

    def as_dict(self) -> dict[str, Any]:
        return {"per_set": self.per_set, "overall": self.overall, "weighted": self.weighted,
                "notes": list(self.notes), "qalign": self.qalign}


def _value(row: Mapping[str, Any], key: str) -> float | None:
    for k in (key, COLUMNS.get(key, key)):
        if k in row and row[k] is not None:
            v = float(row[k])
            return None if math.isnan(v) else v
    return None


def ntire2025_score(rows: Iterable[Mapping[str, Any]], fid: float | None, *,
                    thresholds: Mapping[str, float] | None = None, counts: Mapping[str, int] | None = None,
                    weights: str = "declared") -> NtireScore:
    """The challenge's per-set means, overall means and weighted score.

    ``rows``: one mapping per restored image with ``set`` (test-set name, e.g. ``LFW-Test``) and its values under
    eval.py's keys (``NIQE``, ``CLIP_IQA``, ``MANIQA``, ``MUSIQ``, optional ``QALIGN``, ``ID_Sim``) or our columns
    (:data:`COLUMNS`). ``fid``: FID of all outputs against the FFHQ 512 statistics (``None``: left out of the score,
    with a note). ``thresholds``/``counts`` override :data:`THRESHOLDS`/:data:`COUNTS` per set; ``weights``:
    ``"declared"`` (eval.py: the declared set sizes) or ``"actual"`` (the number of rows per set).
    """
    if weights not in ("declared", "actual"):
        raise ConfigError(f"weights must be 'declared' or 'actual', got {weights!r}")
    thr = {**THRESHOLDS, **(thresholds or {})}
    declared = {**COUNTS, **(counts or {})}
    notes: list[str] = []
    by_set: dict[str, list[dict[str, float]]] = {}
    for i, row in enumerate(rows):
        name = str(row.get("set") or row.get("Dataset") or "")
        if not name:
            raise ConfigError(f"row {i} has no test-set name ('set')")
        vals = {k: _value(row, k) for k in REQUIRED + ("QALIGN",)}
        missing = [k for k in REQUIRED if vals[k] is None]
        if missing:
            raise ConfigError(f"row {i} ({name}) lacks {', '.join(missing)} (needed by the ntire2025 score)")
        by_set.setdefault(name, []).append({k: v for k, v in vals.items() if v is not None})
    if not by_set:
        raise ConfigError("no images to score")
    unknown = sorted(s for s in by_set if s not in thr)
    if unknown:
        raise ConfigError(f"no identity threshold for test set(s) {', '.join(unknown)}; "
                          f"the challenge defines {', '.join(THRESHOLDS)}")
    with_q = [s for s, rs in by_set.items() if all("QALIGN" in r for r in rs)]
    qalign = len(with_q) == len(by_set)
    if not qalign:
        notes.append("Q-Align absent: the weighted score has no QALIGN/5 term (maximum 5, not 6); "
                     "not comparable with scores that include it")
    keys = [k for k in ("NIQE", "CLIP_IQA", "MANIQA", "MUSIQ", "QALIGN", "ID_Sim") if k != "QALIGN" or qalign]
    per_set: dict[str, dict[str, float]] = {}
    low_total = 0
    for name, rs in by_set.items():
        means = {k: float(sum(r[k] for r in rs) / len(rs)) for k in keys}
        low = sum(1 for r in rs if r["ID_Sim"] < thr[name])
        low_total += low
        per_set[name] = {**means, "low_ID_Sim": float(low), "n": float(len(rs)),
                         "threshold": float(thr[name])}
        if name in declared and declared[name] != len(rs):
            notes.append(f"{name}: {len(rs)} image(s), the challenge declares {declared[name]}")
    absent = [s for s in COUNTS if s not in by_set]
    if absent:
        notes.append(f"set(s) absent: {', '.join(absent)}; overall means are over the present sets only")
    if weights == "declared":
        extra = [s for s in by_set if s not in declared]
        if extra:
            raise ConfigError(f"no declared size for test set(s) {', '.join(extra)}: give counts= or weights='actual'")
        w = {s: float(declared[s]) for s in by_set}
    else:
        w = {s: float(len(rs)) for s, rs in by_set.items()}
    total_w = sum(w.values())
    overall: dict[str, float] = {k: float(sum(per_set[s][k] * w[s] for s in by_set) / total_w) for k in keys}
    overall["low_ID_Sim"] = float(low_total)
    overall["n"] = float(sum(len(rs) for rs in by_set.values()))
    if fid is not None:
        overall["FID"] = float(fid)
    else:
        notes.append("FID not computed: the weighted score has no FID term")
    weighted = score_terms(overall)
    return NtireScore(per_set, overall, weighted, notes, qalign)


def set_name(text: str) -> str:
    """The challenge's spelling of a test-set name (``lfw-test``, ``LFW_Test`` -> ``LFW-Test``; ``wider-test`` ->
    ``Wider-Test``; our dataset names included); other names are returned unchanged."""
    key = str(text).strip().lower().replace("_", "-")
    known = {k.lower(): k for k in THRESHOLDS}
    return known.get(key, known.get(key + "-test", str(text)))


def score_table(rows: Iterable[Mapping[str, Any]] | Any, fid_by_method: Mapping[str, float | None] | None = None,
                **kwargs: Any) -> dict[str, NtireScore]:
    """:func:`ntire2025_score` per method of a per-image table (``per_image.parquet`` rows or a DataFrame): rows need
    ``method``, the metric columns (:data:`COLUMNS`) and either ``set`` or ``lq_path`` (the set is then the name of
    the LQ image's folder, as in the challenge's ``test/<Set>/<image>.png`` layout). Rows whose ``status`` is not
    ``ok`` are left out (counted in the notes). ``kwargs`` go to :func:`ntire2025_score`."""
    from pathlib import PurePath

    records = rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)
    by_method: dict[str, list[dict[str, Any]]] = {}
    dropped: dict[str, int] = {}
    for r in records:
        method = str(r.get("method", ""))
        if str(r.get("status", "ok")) != "ok":
            dropped[method] = dropped.get(method, 0) + 1
            continue
        s = r.get("set") or (PurePath(str(r["lq_path"])).parent.name if r.get("lq_path") else "")
        by_method.setdefault(method, []).append({**r, "set": set_name(s)})
    out = {}
    for method, rs in by_method.items():
        res = ntire2025_score(rs, (fid_by_method or {}).get(method), **kwargs)
        if dropped.get(method):
            res.notes.append(f"{dropped[method]} image(s) not restored or not scored are left out")
        out[method] = res
    return out
