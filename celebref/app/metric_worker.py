"""The per-batch work of ``evaluate``'s metrics, as an engine worker runs it: the metric's model lives in the worker.

Per-image metrics (PSNR, SSIM, LPIPS, identity, ...): :func:`score_batch` decodes a batch of (restored, ground
truth) pairs on a thread pool (ahead of use when the engine runs inline), computes the metric on its device
(PSNR/SSIM take their torch path there on CUDA) and returns ``{"id", "sha", "values"}`` per image; the driver
journals them. The metric is the driver's instance inline, or rebuilt and loaded from a :class:`MetricSpec` on a
remote worker (Ray actor).

Dataset-level metrics (FID): :func:`features_batch` returns each image's feature vector (2048 float32 = 8 kB,
a hundredth of the image); the driver accumulates them **in input order** into :class:`FeatureMoments`
(float64 shifted sums: count, sum, sum of outer products), so the statistics -- and the FID -- are the same
for any engine, number of workers or actor restarts (a per-worker accumulator would lose its share when its
actor is killed and restarted, and would make the float64 summation order depend on the scheduling). Up to
:data:`KEEP_FEATURES` features per set are also kept, so small sets are scored exactly as
:meth:`evaluation.fid.FID.score` scores feature arrays (the nuclear-norm form, exact when N < 2048).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from celebref.errors import CelebrefError, ConfigError
from celebref.imageio import read_image

from .pipeline import Prefetcher, StageClock
from .restore_worker import apply_environment, driver_environment

#: features kept per set beside the moments (2048 x 2048 x 8 bytes = 32 MB at most)
KEEP_FEATURES = 2048


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


@dataclass(frozen=True)
class ScoreTask:
    """One image to score: its id, restored file, ground truth (``None`` for no-reference metrics), output sha."""

    id: str
    pred: str
    gt: str | None
    sha: str


class MetricWorker:
    """One worker's metric and decoder. ``mode``: ``"score"`` (batches of :class:`ScoreTask`) or ``"features"``
    (batches of image paths); ``plan``: the batches' items in the order they will come (inline engine)."""

    def __init__(self, metric, mode: str = "score", threads: int | None = None, plan: Sequence[Any] | None = None):
        self.metric, self.mode = metric, mode
        self.clock = StageClock()
        load, keyed = (self._load_pair, [(t.id, t) for t in plan or []]) if mode == "score" else \
            (read_image, [(p, p) for p in plan or []])
        self.loader = Prefetcher(load, keyed, threads=threads, ahead=32, clock=self.clock, stage="decode")

    @staticmethod
    def _load_pair(task: ScoreTask) -> tuple[np.ndarray, np.ndarray | None]:
        return read_image(task.pred), (read_image(task.gt) if task.gt is not None else None)

    def score(self, tasks: list[ScoreTask]) -> list[Any]:
        out: list[Any] = [None] * len(tasks)
        groups: dict[tuple, list[int]] = {}
        loaded = self.loader.get_many([(t.id, t) for t in tasks])
        for k, got in enumerate(loaded):
            if isinstance(got, BaseException):
                out[k] = got
            else:
                groups.setdefault((got[0].shape, None if got[1] is None else got[1].shape), []).append(k)
        m = self.metric
        for idx in groups.values():  # one stacked batch per image size
            pred = _stack([loaded[k][0] for k in idx])
            target = _stack([loaded[k][1] for k in idx]) if m.needs_reference else None
            with self.clock.time("metrics"):
                res = m.compute(pred, target)
                cols = {c: res[c].tolist() for c in m.columns}  # one host copy per batch
            for j, k in enumerate(idx):
                out[k] = {"id": tasks[k].id, "sha": tasks[k].sha, "values": {c: float(cols[c][j]) for c in m.columns}}
        return _with_stages(out, self.clock)

    def features(self, paths: list[str]) -> list[Any]:
        out: list[Any] = [None] * len(paths)
        groups: dict[tuple, list[int]] = {}
        loaded = self.loader.get_many([(p, p) for p in paths])
        for k, got in enumerate(loaded):
            if isinstance(got, BaseException):
                out[k] = got
            else:
                groups.setdefault(got.shape, []).append(k)
        for idx in groups.values():
            with self.clock.time("metrics"):
                feats = np.asarray(self.metric.features(_stack([loaded[k] for k in idx])), np.float64)
            for j, k in enumerate(idx):
                out[k] = feats[j].astype(np.float32)  # the extractor's own precision: lossless
        return _with_stages(out, self.clock)

    def close(self) -> dict[str, float]:
        self.loader.close()
        return self.clock.take()


def _stack(arrays: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _with_stages(out: list[Any], clock: StageClock) -> list[Any]:
    """The batch's stage seconds ride on its first successful value (``"_stages"``; popped by the driver)."""
    for k, v in enumerate(out):
        if isinstance(v, dict):
            out[k] = dict(v, _stages=clock.take())
            break
        if isinstance(v, np.ndarray):
            out[k] = {"features": v, "_stages": clock.take()}
            break
    return out


# -- engine entry points ----------------------------------------------------------------------------------
_WORKER: MetricWorker | None = None


def init_metric_worker(metric, mode: str = "score", threads: int | None = None, plan: Sequence[Any] | None = None) -> None:
    """Engine initializer: the driver's metric instance (inline) or one built from a :class:`MetricSpec`."""
    global _WORKER
    if _WORKER is not None:
        _WORKER.close()
    m = metric.build() if isinstance(metric, MetricSpec) else metric.load()
    _WORKER = MetricWorker(m, mode, threads, plan)


def _worker() -> MetricWorker:
    if _WORKER is None:
        raise CelebrefError("internal error: metric worker not initialised")
    return _WORKER


def score_batch(tasks: list[ScoreTask]) -> list[Any]:
    """Engine batch function: ``{"id", "sha", "values"}`` per task (an exception value for an unreadable file)."""
    return _worker().score(tasks)


def features_batch(paths: list[str]) -> list[Any]:
    """Engine batch function: the feature vector (float32) of each image file of a dataset-level metric."""
    return _worker().features(paths)


def close_metric_worker() -> dict[str, float]:
    global _WORKER
    w, _WORKER = _WORKER, None
    return w.close() if w is not None else {}


# -- FID statistics -----------------------------------------------------------------------------------------
class FeatureMoments:
    """Float64 count, sum and sum of outer products of feature vectors, shifted by the first vector seen (so the
    covariance does not lose digits to cancellation). :meth:`merge` combines two accumulators (any shifts); the
    first :data:`KEEP_FEATURES` vectors are kept too (``keep=0`` keeps none)."""

    def __init__(self, keep: int = KEEP_FEATURES):
        self.n = 0
        self.shift: np.ndarray | None = None
        self.s1: np.ndarray | None = None
        self.s2: np.ndarray | None = None
        self.keep = int(keep)
        self._kept: list[np.ndarray] | None = []

    def add(self, x: np.ndarray) -> None:
        x = np.atleast_2d(np.asarray(x, np.float64))
        if not len(x):
            return
        if self.shift is None:
            self.shift = x[0].copy()
            d = x.shape[1]
            self.s1, self.s2 = np.zeros(d), np.zeros((d, d))
        c = x - self.shift
        self.s1 += c.sum(axis=0)
        self.s2 += c.T @ c
        self.n += len(x)
        if self._kept is not None:
            if self.n <= self.keep:
                self._kept.append(x.copy())
            else:
                self._kept = None

    def merge(self, other: "FeatureMoments") -> None:
        if other.n == 0:
            return
        if self.shift is None:
            self.n, self.shift, self.s1, self.s2 = other.n, other.shift.copy(), other.s1.copy(), other.s2.copy()
            self._kept = None
            return
        delta = other.shift - self.shift  # re-express the other's sums about our shift
        s1 = other.s1 + other.n * delta
        self.s2 += other.s2 + np.outer(delta, other.s1) + np.outer(other.s1, delta) + other.n * np.outer(delta, delta)
        self.s1 += s1
        self.n += other.n
        self._kept = None

    @property
    def features(self) -> np.ndarray | None:
        """The vectors themselves while there are at most ``keep`` of them (else ``None``)."""
        if self._kept is None or self.n > self.keep or not self._kept:
            return None
        return np.concatenate(self._kept, axis=0)

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mu, sigma)`` with sigma = ``np.cov(X, rowvar=False)`` (ddof 1), float64."""
        if self.n < 2:
            raise ConfigError(f"FID needs at least 2 images per set, got {self.n}")
        mu = self.shift + self.s1 / self.n
        sigma = (self.s2 - np.outer(self.s1, self.s1) / self.n) / (self.n - 1)
        return mu, (sigma + sigma.T) / 2.0


def fid_score(metric, pred: FeatureMoments, reference) -> float:
    """FID of the accumulated features against ``reference`` (:class:`FeatureMoments` of the ground truth, or
    :class:`evaluation.fid.FIDStatistics`). With both feature sets kept this is exactly ``metric.score`` on
    the arrays; otherwise the covariance form on the accumulated statistics (equal to float64 precision)."""
    from evaluation.fid import MIN_RECOMMENDED_N, FIDStatistics, frechet_distance

    x = pred.features
    if isinstance(reference, FeatureMoments):
        y = reference.features
        if x is not None and y is not None:
            return float(metric.score(x, y))
        mu2, s2 = reference.statistics()
        n_ref, meta = reference.n, {}
    elif isinstance(reference, FIDStatistics):
        if x is not None:
            return float(metric.score(x, reference))
        mu2, s2, n_ref, meta = reference.mu, reference.sigma, reference.n, reference.meta
    else:
        raise ConfigError(f"unsupported FID reference {type(reference).__name__}")
    mu1, s1 = pred.statistics()
    value = frechet_distance(mu1, s1, mu2, s2)
    metric.last_score = {"fid": value, "n": pred.n, "n_reference": int(n_ref), "reference_meta": meta}
    small = [f"{what}={k}" for what, k in (("N", pred.n), ("reference N", n_ref)) if 0 <= k < MIN_RECOMMENDED_N]
    if small:
        warnings.warn(f"FID from {', '.join(small)} images (< {MIN_RECOMMENDED_N}): biased upwards; "
                      "compare only values computed at equal N", stacklevel=2)
    return value

