"""``evaluate``'s set-up: the methods (``lq`` always first) and metrics of a run, what is skipped and why.

Test sets without ground truth (``evaluate --lq DIR`` alone, whole photos): no-reference metrics (NIQE, ...) run;
reference metrics cannot. Requested explicitly (``EvalConfig.metrics_explicit``, ``--metrics``) each is skipped
with one line and recorded in ``run.json``'s ``skipped`` (the run exits 3, as for any skipped request); taken
from the profile's defaults they are left out silently (recorded in ``run.json``'s ``not_applicable``), so
``evaluate --lq DIR`` with the default metrics exits 0. Records of a set where only some have ground truth get
a per-row reason for each reference metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from baselines.registry import create_method
from celebref.errors import WeightError
from celebref.params import split_spec_list
from celebref.testset import InputRecord

from .onepass import MethodRun
from .restore import RestoreRunner, check_weights

SKIP_HINT = ("To run without them, rerun with --skip-unavailable (API: skip_unavailable=True): those methods and "
             "metrics are then skipped and recorded in run.json.")
NO_GT_REASON = "needs ground truth, and the test set has none (no-reference metrics only, e.g. niqe)"


@dataclass
class Setup:
    runs: list[MethodRun]
    metrics: list[Any]
    skipped: list[dict] = field(default_factory=list)  # {"kind", "name", "reason"}
    not_applicable: list[dict] = field(default_factory=list)  # profile defaults that cannot run on this set


def method_specs(methods: list[str]) -> list[str]:
    """The requested method specs with ``lq`` first (always a reference row)."""
    specs = split_spec_list(",".join(methods)) if methods else []
    return specs if "lq" in [s.split(":")[0] for s in specs] else ["lq"] + specs


def prepare(records: list[InputRecord], cfg: Any, profile: Any, runner: RestoreRunner) -> Setup:
    """Create, check and load what ``cfg`` asks for (see the module docstring); raises when weights are missing
    unless ``cfg.skip_unavailable``."""
    from evaluation.registry import create_metric

    common = dict(device=cfg.device, precision=cfg.precision, landmark_policy=cfg.landmark_policy)
    methods = [create_method(spec, **common) for spec in method_specs(cfg.methods)]
    metric_objs = [create_metric(name, device=cfg.device, profile=profile) for name in cfg.metrics]
    setup = Setup([], [])
    if not any(r.gt_path is not None for r in records):
        kept = []
        for m in metric_objs:
            if not m.needs_reference or (m.dataset_level and cfg.fid_reference is not None and loads_stored_reference(m)):
                kept.append(m)  # no-reference, or a dataset-level metric scored against stored statistics
            elif getattr(cfg, "metrics_explicit", True):
                setup.skipped.append({"kind": "metric", "name": m.name, "reason": NO_GT_REASON})
            else:
                setup.not_applicable.append({"kind": "metric", "name": m.name, "reason": NO_GT_REASON})
        metric_objs = kept
    if not cfg.skip_unavailable:  # before any work: one message lists every missing file of every method and metric
        check_weights(methods, metric_objs, hint=SKIP_HINT)
    for method in methods:
        try:
            setup.runs.append(runner.prepare(method))
        except WeightError as e:
            if not cfg.skip_unavailable:
                raise
            setup.skipped.append({"kind": "method", "name": method.label, "reason": str(e)})
    for m in metric_objs:
        try:
            m.load()
        except WeightError as e:
            if not cfg.skip_unavailable:
                raise
            setup.skipped.append({"kind": "metric", "name": m.name, "reason": str(e), "optional": is_optional(m)})
            continue
        setup.metrics.append(m)
    return setup


def loads_stored_reference(metric: Any) -> bool:
    """Whether a dataset-level metric can score against stored reference statistics (``load_reference``: FID)."""
    from evaluation.base import Metric

    return type(metric).load_reference is not Metric.load_reference


def is_optional(metric: Any) -> bool:
    """Whether a metric comes from an optional extra (registry tag ``optional-extra``: the pyiqa metrics). Skipped
    under ``--skip-unavailable``, such a metric is recorded but does not make the run's exit status 3."""
    from evaluation.registry import METRICS

    try:
        return "optional-extra" in METRICS.entry(metric.name).tags
    except Exception:  # noqa: BLE001 - pyiqa:<name> forms have no entry of their own
        return metric.name.startswith("pyiqa:")
