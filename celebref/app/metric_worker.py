"""Scoring a batch of in-memory outputs inside an engine worker (:mod:`celebref.app.session`), through the
stateful metric contract of :mod:`evaluation.base`.

* Per-image metrics: for each method, the outputs of the batch (uint8 RGB, exactly as their PNGs store them) are
  stacked per image size with their ground truth and scored with ``metric.update(None, pred, target)``; a value
  the metric could not compute is NaN with its reason (``metric.last_failures``, or the error) recorded for
  that (image, metric) -- the driver puts it in the row's ``reason``.
* Dataset-level metrics: a fresh ``metric.new_state()`` per (method, batch) is updated with the outputs in input
  order, and one per batch with the ground truth (the reference); the driver merges them in input order, so the
  value is the same for any engine, number of workers or restart (:mod:`evaluation.moments`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from celebref.engine import describe_error

from .restore_worker import apply_environment, driver_environment

NO_GT = "no ground truth for this image"


@dataclass(frozen=True)
class MetricSpec:
    """What a remote worker needs to rebuild a metric (CUDA devices become plain ``cuda``)."""

    name: str
    device: str
    profile: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    allow_unverified: bool | None = None

    @classmethod
    def of(cls, metric, profile: str | None) -> "MetricSpec":
        from celebref.weights import allow_unverified

        dev = metric.device
        return cls(metric.name, "cuda" if dev.type == "cuda" else str(dev), profile, driver_environment(), allow_unverified())

    def build(self):
        from evaluation.registry import create_metric

        apply_environment(self.env, self.allow_unverified)
        return create_metric(self.name, device=self.device, profile=self.profile).load()


def stack(arrays: list[np.ndarray]) -> Any:
    """uint8 RGB HWC arrays -> one uint8 ``(N, 3, H, W)`` torch tensor (the metric input convention)."""
    import torch

    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _runs(keys: list[Any]) -> list[list[int]]:
    """Indices grouped into consecutive runs of equal keys (input order kept)."""
    runs: list[list[int]] = []
    for i, k in enumerate(keys):
        if runs and keys[runs[-1][-1]] == k:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _labels(outs: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for d in outs:
        seen.update(dict.fromkeys(d))
    return list(seen)


def score_per_image(metrics: Sequence[Any], outs: list[dict[str, Any]], gts: list[Any],
                    need: list[dict[str, set[str]]], lqs: list[Any] | None = None) -> None:
    """Fill ``values`` / ``metric_reasons`` of each output (:class:`celebref.app.session.Output`) with every
    per-image metric; an earlier output (``reused``) only with the metrics ``need`` lists for it. The outputs of
    every method of the batch go to the metric together (one call per image size: a per-image value never
    depends on the batch it is computed in, and a metric that spreads a batch over the cores gets all of them).
    A metric's second argument is the record's ground truth (``gts``), or its LQ input (``lqs``) for a metric
    with ``needs_input`` (e.g. ``identity-input``)."""
    labels = _labels(outs)
    lqs = lqs if lqs is not None else [None] * len(outs)
    for m in metrics:
        if m.dataset_level:
            continue
        groups: dict[tuple, list[tuple[Any, np.ndarray | None]]] = {}
        for label in labels:
            for k, d in enumerate(outs):
                o = d.get(label)
                if o is None or o.image is None or (o.reused and m.name not in need[k].get(label, ())):
                    continue
                second = _second(m, gts[k], lqs[k])
                if isinstance(second, str):  # why there is none
                    o.metric_reasons[m.name] = second
                    continue
                groups.setdefault((o.image.shape, None if second is None else second.shape), []).append((o, second))
        for group in groups.values():
            _score(m, [o for o, _ in group], None if group[0][1] is None else [sec for _, sec in group])


def _second(m: Any, gt: Any, lq: Any) -> np.ndarray | str | None:
    """A per-image metric's second argument for one record: the ground truth, the LQ input (``needs_input``) or
    ``None`` (no-reference); a string says why the one it needs is missing."""
    if m.needs_reference:
        return gt if isinstance(gt, np.ndarray) else (NO_GT if gt is None else f"ground truth: {describe_error(gt)}")
    if getattr(m, "needs_input", False):
        return lq if isinstance(lq, np.ndarray) else ("the LQ input was not read" if lq is None else f"LQ input: {describe_error(lq)}")
    return None


def _score(m: Any, outputs: list[Any], gts: list[np.ndarray] | None) -> None:
    try:
        res = m.update(None, stack([o.image for o in outputs]), stack(gts) if gts is not None else None)
        cols = {c: res[c].tolist() for c in m.columns}  # one host copy per batch
    except Exception as exc:  # noqa: BLE001 - recorded for each image of the group
        for o in outputs:
            o.metric_reasons[m.name] = describe_error(exc)
            o.transient.add(m.name)
        return
    failures = getattr(m, "last_failures", {}) or {}
    for j, o in enumerate(outputs):
        o.values.update({c: float(cols[c][j]) for c in m.columns})
        if j in failures:
            o.metric_reasons[m.name] = str(failures[j])


def _state_of(m: Any, images: list[np.ndarray]) -> Any:
    state = m.new_state()
    try:
        for run in _runs([a.shape for a in images]):  # consecutive same-size images: input order kept
            m.update(state, stack([images[i] for i in run]))
    except Exception as exc:  # noqa: BLE001 - the driver records the metric as not computed, with this reason
        return StateError(describe_error(exc))
    return state


@dataclass
class StateError:
    """A dataset-level state that could not be built (the reason is recorded; the value is NaN)."""

    reason: str
    n: int = field(default=0)

    def merge(self, other: Any) -> "StateError":
        return self


def dataset_states(metrics: Sequence[Any], outs: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """``{(label, metric name): state}`` of this batch's outputs (in input order) for each dataset-level metric."""
    states = {}
    for m in metrics:
        if not m.dataset_level:
            continue
        for label in _labels(outs):
            imgs = [d[label].image for d in outs if label in d and d[label].image is not None]
            states[(label, m.name)] = _state_of(m, imgs) if imgs else m.new_state()
    return states


def reference_states(metrics: Sequence[Any], gts: list[Any], stored: Sequence[str]) -> dict[str, Any]:
    """``{metric name: state}`` of this batch's ground truth, for dataset-level metrics that compare against it
    (not those whose reference is a stored file: ``stored``)."""
    imgs = [g for g in gts if isinstance(g, np.ndarray)]
    return {m.name: _state_of(m, imgs) if imgs else m.new_state() for m in metrics
            if m.dataset_level and m.needs_reference and m.name not in stored}
