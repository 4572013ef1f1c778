"""The worker side of the one-pass runner: one session object per engine worker, owned by the engine.

For each batch of :class:`Job`\\ s (one per input record) a :class:`PassSession` decodes the record's inputs once
(LQ, native LQ, references, ground truth, earlier outputs being rescored; on a thread pool, ahead of use when
the engine gives the plan), runs every method on them (:class:`~celebref.app.restore_worker.MethodBatcher`),
and feeds every output -- the uint8 RGB array exactly as its PNG stores it -- to every metric
(:mod:`celebref.app.metric_worker`). It writes nothing: results (status, output array or the PNG bytes to write
as they are, per-image values, per-batch dataset-level states) go back to the driver, which writes the files and
alone journals (:mod:`celebref.app.onepass`).

:class:`PassSpec` is the engine's session factory. It holds the driver's method and metric instances (used as
they are when the engine runs the session in this process) and their specs: pickled for a worker process or a
Ray actor, the instances are dropped and the worker rebuilds them from the specs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from baselines.base import STATUS_ERROR, RestorationMethod
from celebref.engine import describe_error
from celebref.testset import InputRecord

from .metric_worker import MetricSpec, dataset_states, reference_states, score_per_image
from .pipeline import Prefetcher, StageClock
from .restore_worker import Inputs, MethodBatcher, MethodSpec, ReferenceCache, load_inputs, restore_item


@dataclass(frozen=True)
class Job:
    """One record's work: the methods to run (labels), earlier outputs to rescore (``{label: (file,
    per-image metric names still missing)}``) and whether the ground truth is needed."""

    rec: InputRecord
    run: tuple[str, ...]
    reuse: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    gt: bool = False
    lq: bool = False  # decode the LQ even when no method runs (a needs_input metric rescores earlier outputs)


@dataclass
class Output:
    """One (record, method) result. ``image``: uint8 RGB HWC as its PNG stores it (``None``: no output, or not
    sent back because images are not saved); ``encoded``: PNG bytes that decode to it (written as they are);
    ``content_sha``: sha256 of the pixels (shape + bytes), the key of the metric journal."""

    label: str
    status: str = ""
    reason: str = ""
    seconds: float = 0.0
    image: np.ndarray | None = None
    encoded: bytes | None = None
    content_sha: str = ""
    values: dict[str, float] = field(default_factory=dict)
    metric_reasons: dict[str, str] = field(default_factory=dict)  # metric name -> why it has no value
    transient: set[str] = field(default_factory=set)  # metrics that raised (not journalled: a rerun retries)
    reused: bool = False  # an earlier run's output, rescored (its status is in the journal)


@dataclass
class BatchInfo:
    """What belongs to a whole batch (sent with its first record): dataset-level states per (label, metric)
    and of the ground truth per metric, stage seconds, forward-pass sizes per label, files decoded."""

    states: dict[tuple[str, str], Any] = field(default_factory=dict)
    references: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)
    forward_sizes: dict[str, list[int]] = field(default_factory=dict)
    decoded: int = 0


@dataclass
class JobResult:
    id: str
    outputs: list[Output]
    batch: BatchInfo | None = None


def content_sha(image: np.ndarray) -> str:
    """sha256 of a uint8 image's shape and pixels (the key under which its metric values are journalled)."""
    a = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{a.shape}|{a.dtype}|".encode())
    h.update(a.data)
    return h.hexdigest()


@dataclass(frozen=True)
class MethodEntry:
    label: str
    spec: MethodSpec
    forward_size: int = 1
    max_forward: int = 1
    grow: bool = False


class PassSpec:
    """The session factory handed to ``Engine.map(session=...)`` (see the module docstring)."""

    def __init__(self, methods: Sequence[tuple[RestorationMethod, MethodEntry]], metrics: Sequence[tuple[Any, MetricSpec]],
                 landmark_source: str = "detect", threads: int | None = None, max_cached_references: int = 8,
                 send_images: bool = True, stored_references: Sequence[str] = ()):
        self.entries = [e for _, e in methods]
        self.metric_specs = [s for _, s in metrics]
        self.landmark_source, self.threads, self.max_refs = landmark_source, threads, max_cached_references
        self.send_images = send_images
        self.stored_references = tuple(stored_references)  # dataset-level metrics whose reference is a file
        self._methods: list[RestorationMethod] | None = [m for m, _ in methods]
        self._metrics: list[Any] | None = [m for m, _ in metrics]

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_methods", "_metrics")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _methods=None, _metrics=None)

    def __call__(self, plan: Sequence[Job] | None) -> "PassSession":
        methods = self._methods if self._methods is not None else [e.spec.build() for e in self.entries]
        for m in methods:
            if not m.loaded:
                m.load()
        metrics = self._metrics if self._metrics is not None else [s.build() for s in self.metric_specs]
        return PassSession(self, methods, [m.load() for m in metrics], plan)


class PassSession:
    """One worker's methods, metrics, reference cache, decoder threads and clock (see the module docstring)."""

    def __init__(self, spec: PassSpec, methods: list[RestorationMethod], metrics: list[Any], plan: Sequence[Job] | None):
        self.spec = spec
        self.clock = StageClock()
        self.batchers = {e.label: MethodBatcher(m, e.forward_size, e.max_forward, e.grow, self.clock)
                         for e, m in zip(spec.entries, methods)}
        self.metrics = metrics
        self._read_by_methods = 0
        self.refs = ReferenceCache(spec.max_refs) if any(m.needs_references for m in methods) else None
        ahead = max(8, 2 * max([e.max_forward for e in spec.entries] + [1]))
        self.loader = Prefetcher(self._load, [(j.rec.id, j) for j in plan or []], threads=spec.threads,
                                 ahead=ahead, clock=self.clock, stage="decode")

    def _load(self, job: Job) -> Inputs:
        return load_inputs(job.rec, self.spec.landmark_source, self.refs, job.gt,
                           {label: path for label, path, _ in job.reuse}, restore=bool(job.run), lq=job.lq)

    def run(self, jobs: list[Job]) -> list[JobResult]:
        """One result per job, in order (see the module docstring)."""
        inputs = self.loader.get_many([(j.rec.id, j) for j in jobs])
        outs: list[dict[str, Output]] = [{} for _ in jobs]
        for label, batcher in self.batchers.items():
            self._restore(label, batcher, jobs, inputs, outs)
        for k, j in enumerate(jobs):
            inp = inputs[k]
            for label, _, _ in j.reuse:
                got = inp.reused.get(label) if isinstance(inp, Inputs) else inp
                o = outs[k][label] = Output(label, reused=True)
                if isinstance(got, np.ndarray):
                    o.image = got
                    o.content_sha = content_sha(got)
                else:
                    o.metric_reasons = {"*": f"cannot read the earlier output: {describe_error(got)}"}
        gts = [inp.gt if isinstance(inp, Inputs) else None for inp in inputs]
        lqs = [(inp.lq if inp.lq_error is None else inp.lq_error) if isinstance(inp, Inputs) else inp for inp in inputs]
        need = [{label: set(names) for label, _, names in j.reuse} for j in jobs]
        with self.clock.time("metrics"):
            score_per_image(self.metrics, outs, gts, need, lqs)
            info = BatchInfo(states=dataset_states(self.metrics, outs),
                             references=reference_states(self.metrics, gts, self.spec.stored_references))
        info.decoded = sum(inp.decoded for inp in inputs if isinstance(inp, Inputs)) + self._read_by_methods
        self._read_by_methods = 0
        info.forward_sizes = {label: b.forward_sizes[:] for label, b in self.batchers.items()}
        for b in self.batchers.values():
            b.forward_sizes.clear()
        results = []
        for k, j in enumerate(jobs):
            for o in outs[k].values():
                if o.reused or not self.spec.send_images:
                    o.image = None  # the driver writes only new outputs
            results.append(JobResult(j.rec.id, [outs[k][lb] for lb in self._labels(j) if lb in outs[k]]))
        info.stages = self.clock.take()
        if results:
            results[0].batch = info
        return results

    def _labels(self, job: Job) -> list[str]:
        order = list(self.batchers)
        return [lb for lb in order if lb in job.run or any(lb == r[0] for r in job.reuse)]

    def _restore(self, label: str, batcher: MethodBatcher, jobs: list[Job], inputs: list[Any],
                 outs: list[dict[str, Output]]) -> None:
        items, where = [], []
        for k, j in enumerate(jobs):
            if label not in j.run:
                continue
            inp = inputs[k]
            err = inp if isinstance(inp, BaseException) else inp.lq_error
            reason = j.rec.reason or (describe_error(err) if err is not None else "")
            if not reason:
                try:
                    items.append(restore_item(j.rec, inp, batcher.method))
                    where.append(k)
                    continue
                except Exception as exc:  # noqa: BLE001 - recorded for this image
                    reason = describe_error(exc)
            outs[k][label] = Output(label, STATUS_ERROR, reason)
        results = batcher.restore_items(items) if items else {}
        for k, it in zip(where, items):
            r = results[it.id]
            o = Output(label, r.status, r.reason, r.seconds, r.image, r.encoded)
            self._read_by_methods += r.encoded is not None  # a result file the method read (external)
            if r.image is not None:
                lq_png = inputs[k].lq_png
                if o.encoded is None and lq_png is not None and np.array_equal(r.image, it.image):
                    o.encoded = lq_png  # the output is the input: its PNG is written as it is
                with self.clock.time("metrics"):
                    o.content_sha = content_sha(r.image)
            outs[k][label] = o

    def close(self) -> None:
        self.loader.close()


def run_jobs(session: PassSession, jobs: list[Job]) -> list[JobResult]:
    """The engine's batch function (``Engine.map(run_jobs, jobs, session=PassSpec(...))``)."""
    return session.run(jobs)
