"""``celebref evaluate`` orchestration: restore with each method, then score every image, paired by id.

Run folder layout (docs/FORMATS.md): ``restored/<method>/<id>.png``, ``per_image.parquet`` (+csv),
``summary.csv``, ``run.json``. Per-image metric values are journalled in ``cache/metrics/*.jsonl`` after
each batch, keyed by the output file's sha256 and the metric's full description, so an interrupted run
resumes and a rerun recomputes only what changed. ``lq`` (the degraded input itself) is always a row.

Engines (``EvalConfig.engine``): restoring (:mod:`celebref.app.restore`) and scoring
(:mod:`celebref.app.metric_worker`) run in engine workers -- inline by default, or on Ray actors that load the
method / metric model themselves. Per-image values are journalled here, as they come back; FID features are
accumulated here in input order (float64), so every engine gives the same numbers. Seconds per stage
(decode, restore, metrics, write) are printed and recorded in ``run.json`` (``stage_seconds``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from baselines.registry import create_method
from celebref.app.outcome import Outcome
from celebref.app.metric_worker import (
    FeatureMoments,
    MetricSpec,
    ScoreTask,
    close_metric_worker,
    features_batch,
    fid_score,
    init_metric_worker,
    score_batch,
)
from celebref.app.pipeline import StageClock
from celebref.app.restore import (
    DONE_STATUSES,
    RestoreOptions,
    RestoreRunner,
    batch_plan,
    check_weights,
    is_inline,
    unverified_weights,
)
from celebref.app.summary import summarize
from celebref.params import split_spec_list
from celebref.device import resolve_device
from celebref.engine import Engine, get_engine
from celebref.errors import ConfigError, WeightError
from celebref.fsutil import atomic_write_json, atomic_write_text, sha256_file
from celebref.journal import Journal
from celebref.lock import lock_folder
from celebref.provenance import command_line, now, versions
from celebref.tabular import write_table
from celebref.testset import InputRecord, reference_files
from celebref.weights import allowing_unverified

DEG_FACTORS = ("blur_sigma", "scale", "noise_sigma", "jpeg_quality")
SKIP_HINT = ("To run without them, rerun with --skip-unavailable (API: skip_unavailable=True): those methods and "
             "metrics are then skipped and recorded in run.json.")


@dataclass
class EvalConfig:
    """The inputs of an evaluation (what happened is in :class:`EvalResult`)."""

    out: Path
    methods: list[str]
    metrics: list[str]
    profile: str | None = None
    device: str = RestoreOptions.device
    precision: str = RestoreOptions.precision
    batch_size: int | str = RestoreOptions.batch_size  # or "auto" (celebref.app.restore)
    landmark_policy: str = RestoreOptions.landmark_policy
    landmark_source: str = RestoreOptions.landmark_source
    skip_unavailable: bool = False  # methods/metrics whose weights are missing are skipped (recorded), not fatal
    allow_unverified_weights: bool = False  # use weight files that differ from the published sha256 (each recorded)
    fid_reference: Path | None = None
    argv: list[str] | None = None
    common_images: bool = False  # summary means over the images every method scored (celebref.app.summary)
    engine: Any = None  # an Engine instance, or "local" (default: inline, the models in this process) / "ray"


@dataclass
class EvalResult:
    """What an evaluation produced: the summary and per-image tables (also written to the run folder), what was
    skipped (``{"kind", "name", "reason"}``) and the :class:`~celebref.app.outcome.Outcome` (exit status)."""

    summary: pd.DataFrame
    per_image: pd.DataFrame
    skipped: list[dict] = field(default_factory=list)
    outcome: Outcome = field(default_factory=Outcome)
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage (decode, restore, metrics, write)


# --- metric journal ----------------------------------------------------------------------------

def _key(metric_desc: dict) -> str:
    return hashlib.sha256(json.dumps(metric_desc, sort_keys=True, default=str).encode()).hexdigest()[:16]


class MetricJournal:
    """Append-only per-(method, metric) store of per-image values keyed by (id, output sha256)."""

    def __init__(self, path: Path):
        self.path = path
        self._journal = Journal(path)  # torn last lines (a kill mid-write) are dropped, never merged
        self.values: dict[tuple[str, str], dict] = {}
        for row in self._journal.rows():
            if isinstance(row.get("values"), dict) and "id" in row and "sha" in row:
                self.values[(row["id"], row["sha"])] = row["values"]

    def append(self, rows: list[dict]) -> None:
        self._journal.append(rows)
        for r in rows:
            self.values[(r["id"], r["sha"])] = r["values"]


# --- evaluation --------------------------------------------------------------------------------

def evaluate(records: list[InputRecord], data_info: dict, cfg: EvalConfig) -> EvalResult:
    """Restore ``records`` with every method of ``cfg`` and score them; holds the lock on ``cfg.out`` meanwhile."""
    allow = allowing_unverified(True) if cfg.allow_unverified_weights else contextlib.nullcontext()
    with allow, lock_folder(cfg.out, command=command_line(cfg.argv)):
        return _evaluate(records, data_info, cfg)


def _evaluate(records: list[InputRecord], data_info: dict, cfg: EvalConfig) -> EvalResult:
    from evaluation.profiles import get_profile
    from evaluation.registry import create_metric

    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    skipped: list[dict] = []
    started = now()
    profile = get_profile(cfg.profile)  # None -> "default": every convention is recorded, never implied
    if not records:
        raise ConfigError("the test set is empty")
    missing_gt = [r.id for r in records if r.gt_path is None]

    # methods (lq is always a reference row)
    specs = split_spec_list(",".join(cfg.methods)) if cfg.methods else []
    if "lq" not in [s.split(":")[0] for s in specs]:
        specs = ["lq"] + specs
    common = dict(device=cfg.device, precision=cfg.precision, landmark_policy=cfg.landmark_policy)
    engine = _engine(cfg)
    runner = RestoreRunner(out / "restored", batch_size=cfg.batch_size, landmark_source=cfg.landmark_source, engine=engine)
    clock = runner.stages  # one clock for restore and metrics
    methods = [create_method(spec, **common) for spec in specs]
    metric_objs = [create_metric(name, device=cfg.device, profile=profile) for name in cfg.metrics]
    if not cfg.skip_unavailable:  # before any work: one message lists every missing file of every method and metric
        check_weights(methods, metric_objs, hint=SKIP_HINT)
    runs = []
    for method in methods:
        try:
            runs.append(runner.prepare(method))
        except WeightError as e:
            if not cfg.skip_unavailable:
                raise
            skipped.append({"kind": "method", "name": method.label, "reason": str(e)})
    # metrics
    metrics = []
    for m in metric_objs:
        try:
            m.load()
        except WeightError as e:
            if not cfg.skip_unavailable:
                raise
            skipped.append({"kind": "metric", "name": m.name, "reason": str(e)})
            continue
        if m.needs_reference and missing_gt:
            raise ConfigError(f"metric {m.name} needs ground truth but {len(missing_gt)} image(s) have none (e.g. {missing_gt[0]})")
        metrics.append(m)

    rec_by_id = {r.id: r for r in records}
    metric_batch = max(batch_plan(cfg.batch_size, resolve_device(cfg.device))[0], 16)
    rows: list[dict] = []
    dataset_rows: list[dict] = []
    references: dict[str, object] = {}  # dataset-level metric name -> reference features/statistics, made once
    for run in runs:
        status = runner.run_method(run, records)
        label = run.method.label
        ok = [s for s in status if s["output_path"]]
        out_paths = {s["id"]: out / "restored" / s["output_path"] for s in ok}
        shas = {i: sha256_file(p) for i, p in out_paths.items()}
        values: dict[str, dict] = {s["id"]: {} for s in status}
        metric_errors: dict[str, list[str]] = {}
        for m in metrics:
            if m.dataset_level:
                continue
            desc = m.describe()
            journal = MetricJournal(out / "cache" / "metrics" / f"{_safe(label)}__{m.name}__{_key(desc)}.jsonl")
            todo = [ScoreTask(i, str(out_paths[i]), str(rec_by_id[i].gt_path) if m.needs_reference else None, shas[i])
                    for i in out_paths if (i, shas[i]) not in journal.values]
            for i, errs in _score(engine, m, cfg, todo, journal, metric_batch, f"{m.name} {label}", clock).items():
                metric_errors.setdefault(i, []).extend(errs)
            for i in out_paths:
                if (i, shas[i]) in journal.values:
                    values[i].update(journal.values[(i, shas[i])])
        for m in metrics:
            if not m.dataset_level:
                continue
            if len(out_paths) < 2:
                dataset_rows.append({"method": label, "metric": m.name, "value": float("nan"), "n": len(out_paths)})
                continue
            feats = _features(engine, m, cfg, [str(out_paths[i]) for i in sorted(out_paths)], metric_batch,
                              f"{m.name} {label}", clock)
            if m.name not in references:
                references[m.name] = _fid_reference(engine, m, records, cfg, metric_batch, clock)
            score = fid_score(m, feats, references[m.name])
            dataset_rows.append({"method": label, "metric": m.name, "value": score, "n": len(out_paths)})
        for s in status:
            rec = rec_by_id[s["id"]]
            row = {"id": s["id"], "identity": rec.identity or "", "method": label, "status": s["status"],
                   "reason": "; ".join([s["reason"]] * bool(s["reason"]) + metric_errors.get(s["id"], [])),
                   "restore_seconds": s["seconds"],
                   "output_path": ("restored/" + s["output_path"]) if s["output_path"] else "",
                   "lq_path": str(rec.lq_path), "gt_path": str(rec.gt_path or ""),
                   "landmarks_path": str(rec.gt_landmarks_path or "")}
            for m in metrics:
                if not m.dataset_level:
                    for c in m.columns:
                        row[c] = values[s["id"]].get(c, float("nan"))
            for f in DEG_FACTORS:
                if f in rec.extra:
                    row["deg_" + f] = rec.extra[f]
            if run.method.needs_references:
                row.update(reference_columns(rec))
            rows.append(row)
    runner.finish()

    per_image = pd.DataFrame(rows)
    write_table(per_image, out / "per_image")
    summary = summarize(per_image, metrics, dataset_rows, common_images=cfg.common_images)
    atomic_write_text(out / "summary.csv", summary.to_csv(index=False, lineterminator="\n"))
    atomic_write_json(out / "run.json", {
        "command": command_line(cfg.argv), "argv": cfg.argv, "started": started, "finished": now(),
        "versions": versions(), "profile": profile.describe(),
        "metrics": [m.describe() for m in metrics], "methods": [
            {"label": r.method.label, "name": r.method.name, "params": r.method.params, "weights": r.weights} for r in runs],
        "skipped": skipped, "data": {k: v for k, v in data_info.items() if k != "degrade"},
        "degrade": data_info.get("degrade"), "device": str(resolve_device(cfg.device)), "precision": cfg.precision,
        "batch_size": cfg.batch_size, "landmark_source": cfg.landmark_source, "landmark_policy": cfg.landmark_policy,
        "dataset_metrics": dataset_rows, "allow_unverified_weights": cfg.allow_unverified_weights,
        "unverified_weights": unverified_weights({w for r in runs for w in r.weights}
                                                 | {w for m in metrics for w in getattr(m, "weights", ())}),
        "engine": engine.describe(), "stage_seconds": clock.as_dict(),
    })
    outcome = _outcome(per_image, metrics, dataset_rows, skipped, cfg)
    return EvalResult(summary=summary, per_image=per_image, skipped=skipped, outcome=outcome, stages=clock.as_dict())


def _outcome(per_image: pd.DataFrame, metrics, dataset_rows: list[dict], skipped: list[dict], cfg: EvalConfig) -> Outcome:
    """Failures: rows not restored, or without a value for a per-image metric; dataset-level metrics that could not
    be computed; skipped methods and metrics. Nothing was done when every requested method or metric was skipped."""
    columns = [c for m in metrics if not m.dataset_level for c in m.columns]
    bad = ~per_image["status"].isin(DONE_STATUSES)
    for c in columns:
        bad |= pd.to_numeric(per_image[c], errors="coerce").isna()
    details = [f"{meth}: {int(n)} of {int((per_image['method'] == meth).sum())} image(s) without a restored output or a "
               f"metric value (see per_image.csv, columns status and reason)" for meth, n in per_image[bad].groupby("method").size().items()]
    nan_dataset = [d for d in dataset_rows if not np.isfinite(d["value"])]
    details += [f"{d['metric']} for {d['method']}: not computed from {d['n']} output(s)" for d in nan_dataset]
    requested_methods = [s for s in (split_spec_list(",".join(cfg.methods)) if cfg.methods else []) if s.split(":")[0] != "lq"]
    n_skipped = {k: sum(1 for s in skipped if s["kind"] == k) for k in ("method", "metric")}
    all_skipped = (bool(requested_methods) and n_skipped["method"] >= len(requested_methods)) or \
        (bool(cfg.metrics) and n_skipped["metric"] >= len(cfg.metrics))
    return Outcome(items=len(per_image) + len(dataset_rows), failed=int(bad.sum()) + len(nan_dataset),
                   skipped=[f"{s['kind']} {s['name']}" for s in skipped], details=details, all_skipped=all_skipped)


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in label)


def _engine(cfg: EvalConfig) -> Engine:
    """``cfg.engine`` as an engine: an instance as is; ``"local"``/``None``: inline (the models in this process)."""
    if isinstance(cfg.engine, Engine):
        return cfg.engine
    name = cfg.engine or "local"
    return get_engine("local", workers=1) if name == "local" else get_engine(name)


def _initargs(engine: Engine, m, cfg: EvalConfig, mode: str, plan: list) -> tuple:
    """Inline: the driver's metric and the decode plan; remote: a spec the worker builds the metric from."""
    if is_inline(engine):
        return (m, mode, None, plan)
    return (MetricSpec.of(m, cfg.profile), mode, None, None)


def _score(engine: Engine, m, cfg: EvalConfig, tasks: list[ScoreTask], journal: MetricJournal, batch: int, desc: str,
           clock: StageClock) -> dict[str, list[str]]:
    """Per-image values of ``tasks`` journalled as they come back; returns ``{id: [errors]}``."""
    errors: dict[str, list[str]] = {}
    pending: list[dict] = []
    try:
        for r in engine.map(score_batch, tasks, keys=[t.id for t in tasks], batch_size=batch, desc=desc,
                            initializer=init_metric_worker, initargs=_initargs(engine, m, cfg, "score", tasks)):
            if r.ok:
                row = dict(r.value)
                clock.merge(row.pop("_stages", None))
                pending.append(row)
                if len(pending) >= batch:
                    journal.append(pending)
                    pending = []
            elif not r.skipped:  # a failing batch or file is recorded per image
                errors.setdefault(r.key, []).append(f"{m.name}: {r.error}")
    finally:
        if pending:
            journal.append(pending)
        if is_inline(engine):
            clock.merge(close_metric_worker())
    return errors


def _features(engine: Engine, m, cfg: EvalConfig, paths: list[str], batch: int, desc: str, clock: StageClock) -> FeatureMoments:
    """A dataset-level metric's features of image files, accumulated in input order (any engine: same numbers)."""
    acc = FeatureMoments()
    try:
        for r in engine.map(features_batch, paths, batch_size=batch, desc=desc, initializer=init_metric_worker,
                            initargs=_initargs(engine, m, cfg, "features", paths)):
            if not r.ok:
                raise ConfigError(f"{m.name}: no features for {paths[r.index]}: {r.error}")
            v = r.value
            if isinstance(v, dict):
                clock.merge(v.get("_stages"))
                v = v["features"]
            acc.add(v)
    finally:
        if is_inline(engine):
            clock.merge(close_metric_worker())
    return acc


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


def _fid_reference(engine: Engine, metric, records: list[InputRecord], cfg: EvalConfig, batch: int, clock: StageClock):
    if cfg.fid_reference is not None:
        from evaluation.fid import load_statistics

        return load_statistics(cfg.fid_reference)
    gts = [str(r.gt_path) for r in sorted(records, key=lambda r: r.id)]
    return _features(engine, metric, cfg, gts, batch, f"{metric.name} ground truth", clock)
