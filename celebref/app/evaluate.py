"""``celebref evaluate``: restore with each method and score every image in one pass, paired by id.

Run folder layout (docs/FORMATS.md): ``restored/<method>/<id>.png``, ``per_image.parquet`` (+csv),
``summary.csv``, ``run.json``. Each record's inputs (LQ, native LQ, references, ground truth) are decoded once;
every method runs on them and every metric scores the outputs in memory, as uint8 arrays exactly as their PNGs
store them (:mod:`celebref.app.onepass`, :mod:`celebref.app.session`); the PNGs are written on background threads
(``save_images=False`` / ``--no-save-images``: not at all) and never read back. Per-image metric values are
journalled in ``cache/metrics/*.jsonl`` once the output is on disk, keyed by the output's content (sha256 of its
pixels) and the metric's full description, so an interrupted run resumes and a rerun rescores only what changed.
``lq`` (the degraded input itself) is always a row. Dataset-level metrics (FID, or any plugin implementing the
state contract of :mod:`evaluation.base`) accumulate per-batch states merged in input order: every engine, worker
count and restart gives the same numbers.

The job of each module: :mod:`~celebref.app.eval_setup` (methods, metrics, what is skipped),
:mod:`~celebref.app.onepass` (the pass and its journals), :mod:`~celebref.app.eval_record` (tables, dataset values,
exit status), this module (the configuration and ``run.json``). Seconds per stage (decode, restore, metrics,
write; summed over threads and workers) and the numbers of images decoded (distinct input files read) and encoded
(PNG outputs encoded; ``copied``: written as the bytes they were read as) are recorded in ``run.json``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from celebref.device import resolve_device
from celebref.engine import Engine, get_engine
from celebref.errors import ConfigError
from celebref.fsutil import atomic_write_json, atomic_write_text
from celebref.lock import lock_folder
from celebref.provenance import command_line, now, versions
from celebref.tabular import write_table
from celebref.testset import InputRecord
from celebref.weights import allowing_unverified

from . import eval_record, eval_setup
from .metric_worker import MetricSpec
from .onepass import OnePass
from .outcome import Outcome
from .restore import RestoreOptions, RestoreRunner, batch_plan, unverified_weights
from .summary import summarize

SKIP_HINT = eval_setup.SKIP_HINT


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
    save_images: bool = True  # False: metric-only run, no restored PNGs written (--no-save-images)
    metrics_explicit: bool = True  # False: the profile's defaults (reference metrics dropped silently without GT)
    threads: int | None = None  # decode / encode threads (default: CPUs, at most 8)


@dataclass
class EvalResult:
    """What an evaluation produced: the summary and per-image tables (also written to the run folder), what was
    skipped (``{"kind", "name", "reason"}``) and the :class:`~celebref.app.outcome.Outcome` (exit status)."""

    summary: pd.DataFrame
    per_image: pd.DataFrame
    skipped: list[dict] = field(default_factory=list)
    outcome: Outcome = field(default_factory=Outcome)
    stages: dict[str, float] = field(default_factory=dict)  # seconds per stage (decode, restore, metrics, write)
    counts: dict[str, int] = field(default_factory=dict)  # images decoded / encoded / copied


def evaluate(records: list[InputRecord], data_info: dict, cfg: EvalConfig) -> EvalResult:
    """Restore ``records`` with every method of ``cfg`` and score them; holds the lock on ``cfg.out`` meanwhile."""
    allow = allowing_unverified(True) if cfg.allow_unverified_weights else contextlib.nullcontext()
    with allow, lock_folder(cfg.out, command=command_line(cfg.argv)):
        return _evaluate(records, data_info, cfg)


def _evaluate(records: list[InputRecord], data_info: dict, cfg: EvalConfig) -> EvalResult:
    from evaluation.profiles import get_profile

    if not records:
        raise ConfigError("the test set is empty")
    cfg.out.mkdir(parents=True, exist_ok=True)
    started = now()
    profile = get_profile(cfg.profile)  # None -> "default": every convention is recorded, never implied
    engine = _engine(cfg)
    runner = RestoreRunner(cfg.out / "restored", batch_size=cfg.batch_size, landmark_source=cfg.landmark_source,
                           engine=engine, threads=cfg.threads)
    setup = eval_setup.prepare(records, cfg, profile, runner)
    stored = {m.name: m.load_reference(cfg.fid_reference) for m in setup.metrics  # FID's (any that loads one)
              if cfg.fid_reference is not None and m.dataset_level and eval_setup.loads_stored_reference(m)}
    onepass = OnePass(runner.out_dir, setup.runs, setup.metrics, engine,
                      metric_specs=[MetricSpec.of(m, cfg.profile) for m in setup.metrics],
                      metric_dir=cfg.out / "cache" / "metrics", save_images=cfg.save_images,
                      landmark_source=cfg.landmark_source, threads=cfg.threads, stored_references=list(stored),
                      clock=runner.stages)
    batch = max([r.max_forward for r in setup.runs] + [batch_plan(cfg.batch_size, resolve_device(cfg.device))[0]])
    result = onepass.run(records, batch, desc="evaluate")
    runner.rows = [{k: result.cells[r.method.label][rec.id].row.get(k) for k in ("id", "method", "status", "reason",
                    "seconds", "output_path", "weights_sha256")} for r in setup.runs for rec in records]
    if cfg.save_images:
        runner.finish()

    per_image = pd.DataFrame(eval_record.per_image_rows(records, setup.runs, setup.metrics, result))
    write_table(per_image, cfg.out / "per_image")
    dataset = eval_record.dataset_rows(setup.runs, setup.metrics, result, per_image, stored)
    summary = summarize(per_image, setup.metrics, dataset, common_images=cfg.common_images)
    atomic_write_text(cfg.out / "summary.csv", summary.to_csv(index=False, lineterminator="\n"))
    counts = {"decoded": result.decoded, "encoded": result.encoded, "copied": result.copied}
    stages = runner.stages.as_dict()
    atomic_write_json(cfg.out / "run.json", {
        "command": command_line(cfg.argv), "argv": cfg.argv, "started": started, "finished": now(),
        "versions": versions(), "profile": profile.describe(),
        "metrics": [m.describe() for m in setup.metrics], "methods": [
            {"label": r.method.label, "name": r.method.name, "params": r.method.params, "weights": r.weights,
             "needs_references": bool(r.method.needs_references)} for r in setup.runs],
        "fid_reference": None if cfg.fid_reference is None else str(cfg.fid_reference),
        "skipped": setup.skipped, "not_applicable": setup.not_applicable,
        "data": {k: v for k, v in data_info.items() if k != "degrade"},
        "degrade": data_info.get("degrade"), "device": str(resolve_device(cfg.device)), "precision": cfg.precision,
        "batch_size": cfg.batch_size, "landmark_source": cfg.landmark_source, "landmark_policy": cfg.landmark_policy,
        "dataset_metrics": dataset, "allow_unverified_weights": cfg.allow_unverified_weights,
        "unverified_weights": unverified_weights({w for r in setup.runs for w in r.weights}
                                                 | {w for m in setup.metrics for w in getattr(m, "weights", ())}),
        "engine": engine.describe(), "stage_seconds": stages, "images": counts, "save_images": cfg.save_images,
    })
    out = eval_record.outcome(per_image, setup.metrics, dataset, setup.skipped, cfg)
    return EvalResult(summary=summary, per_image=per_image, skipped=setup.skipped, outcome=out, stages=stages,
                      counts=counts)


def _engine(cfg: EvalConfig) -> Engine:
    """``cfg.engine`` as an engine: an instance as is; ``"local"``/``None``: inline (the models in this process)."""
    if isinstance(cfg.engine, Engine):
        return cfg.engine
    name = cfg.engine or "local"
    return get_engine("local", workers=1) if name == "local" else get_engine(name)
