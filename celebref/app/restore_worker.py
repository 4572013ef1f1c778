"""The per-batch work of ``restore``, as an engine worker runs it: the model lives in the worker.

The engine's ``initializer`` (:func:`init_restore_worker`) creates the worker state once per worker: the method
(model) -- the driver's own instance when the engine runs inline (``--engine local``: the model stays in the main
process, no extra process), or rebuilt and loaded from a picklable :class:`MethodSpec` on a Ray actor (one per GPU
or per CPU slot) -- a reference-set cache, a decode :class:`~celebref.app.pipeline.Prefetcher` and an output
:class:`~celebref.app.pipeline.AsyncWriter`. :func:`restore_batch` then runs on each batch of
:class:`~celebref.testset.InputRecord`\\ s and returns one status row per record.

Outputs are written by the worker (atomically; the output folder must be shared by all workers of a cluster).
The resume journal stays with the driver: on a remote worker a batch returns only after its files are written,
and the driver journals the rows; inline, writes run behind the model on a thread pool and each batch's rows are
journalled (by the driver process, through ``sink``) as soon as its files are durably written.

Out of memory: a forward pass that raises a CUDA out-of-memory error (or whose method reports it for an image)
is retried on the same images at half the size, which then stays for the rest of the run; results are only
written once every image of the batch has one, so nothing is lost or written twice.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from baselines.base import STATUS_ERROR, ReferenceSet, RestorationMethod, RestoreItem, RestoreResult
from celebref.engine import describe_error
from celebref.errors import CelebrefError
from celebref.face.landmark_io import read_landmarks
from celebref.imageio import read_image, write_image
from celebref.testset import InputRecord, reference_files, reference_key

from .pipeline import AdaptiveBatch, AsyncWriter, Prefetcher, StageClock, free_device_memory, is_out_of_memory

#: environment variables a remote worker takes over from the driver (weight store locations and overrides)
ENV_PREFIX = "CELEBREF_"


def safe_id_path(root: Path, item_id: str, suffix: str = ".png") -> Path:
    """``root/<id>.png`` refusing ids that would escape ``root`` (ids come from file names)."""
    rel = Path(item_id + suffix)
    if rel.is_absolute() or ".." in rel.parts:
        raise CelebrefError(f"image id {item_id!r} is not a safe relative path")
    return root / rel


def status_row(item_id, label, status, reason, seconds, out_rel, wsha) -> dict:
    """One row of a restore journal / status table."""
    return {"id": item_id, "method": label, "status": status, "reason": reason or "", "seconds": float(seconds),
            "output_path": out_rel or "", "weights_sha256": wsha}


def driver_environment() -> dict[str, str]:
    """The ``CELEBREF_*`` variables of this process (weight-store home, per-file overrides, offline mode)."""
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}


def apply_environment(env: dict[str, str], allow_unverified: bool | None) -> None:
    """In a remote worker: take over the driver's weight-store settings before anything is loaded."""
    from celebref.weights import set_allow_unverified

    os.environ.update(env)
    set_allow_unverified(allow_unverified)


@dataclass(frozen=True)
class MethodSpec:
    """What a remote worker needs to rebuild a method: its class, constructor arguments and the driver's
    weight-store settings. CUDA devices become plain ``cuda`` (the GPU Ray gave the actor)."""

    cls: type
    kwargs: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    allow_unverified: bool | None = None

    @classmethod
    def of(cls, method: RestorationMethod) -> "MethodSpec":
        from baselines.external import ExternalMethod
        from celebref.weights import allow_unverified

        dev = method.device
        kwargs: dict[str, Any] = {"device": "cuda" if dev.type == "cuda" else str(dev), "precision": method.precision,
                                  "landmark_policy": method.landmark_policy}
        if isinstance(method, ExternalMethod):
            kwargs.update(label=method.label, folder=method.params["folder"])
        else:
            kwargs.update(method.params)
        return cls(type(method), kwargs, driver_environment(), allow_unverified())

    def build(self) -> RestorationMethod:
        apply_environment(self.env, self.allow_unverified)
        method = self.cls(**self.kwargs)
        method.load()
        return method


@dataclass(frozen=True)
class WorkerConfig:
    """Per-method settings of the restore workers (picklable)."""

    folder: str  # <out>/<label>
    out_dir: str  # paths in rows are relative to this
    label: str
    weights_sha256: str
    landmark_source: str = "detect"
    forward_size: int = 1  # images per forward pass at the start
    max_forward: int = 1  # --batch-size auto: grow up to this
    grow: bool = False
    threads: int | None = None
    max_cached_references: int = 8


class ReferenceCache:
    """Reference sets (images + landmarks) of recent identities, keyed by their files (LRU, thread-safe)."""

    def __init__(self, size: int = 8):
        self._refs: OrderedDict[str, ReferenceSet] = OrderedDict()
        self._size = max(1, int(size))
        self._lock = threading.Lock()

    def get(self, rec: InputRecord) -> ReferenceSet | None:
        if rec.ref_dir is None:
            return None
        pairs = reference_files(rec.ref_dir, rec.ref_landmark_dir)
        key = reference_key(pairs)
        with self._lock:
            if key in self._refs:
                self._refs.move_to_end(key)
                return self._refs[key]
        refs = ReferenceSet(key=key, images=[read_image(p) for p, _ in pairs], landmarks=[read_landmarks(lm) for _, lm in pairs])
        with self._lock:
            refs = self._refs.setdefault(key, refs)
            while len(self._refs) > self._size:
                self._refs.popitem(last=False)
        return refs


def load_item(rec: InputRecord, method: RestorationMethod, landmark_source: str, refs: ReferenceCache) -> RestoreItem:
    """Decode one input (LQ image, landmarks, references, native LQ) for ``method``."""
    image = read_image(rec.lq_path)
    landmarks = None
    if landmark_source == "gt" and rec.gt_landmarks_path is not None:
        landmarks = read_landmarks(rec.gt_landmarks_path)
    ref_set = refs.get(rec) if method.needs_references else None
    if method.needs_references and (ref_set is None or len(ref_set.images) < 2):
        where = f" in {rec.ref_dir} (landmarks from {rec.ref_landmark_dir or rec.ref_dir})" if rec.ref_dir else ""
        raise CelebrefError(
            f"{method.name} needs >= 2 references with landmarks for {rec.id!r}{where} "
            "(give a SpecificLists.txt or an identity-grouped test set)"
        )
    native = read_image(rec.native_path) if rec.native_path is not None else None
    return RestoreItem(id=rec.id, image=image, landmarks=landmarks, identity=rec.identity, references=ref_set, native=native, meta=rec.extra)


class RestoreWorker:
    """The state of one worker: the loaded method and its pipeline (see the module docstring)."""

    def __init__(self, method: RestorationMethod, cfg: WorkerConfig, plan: list[InputRecord] | None = None,
                 sink: Callable[[list[dict]], None] | None = None):
        self.method, self.cfg, self.sink = method, cfg, sink
        self.folder, self.out_dir = Path(cfg.folder), Path(cfg.out_dir)
        self.clock = StageClock()
        self.batch = AdaptiveBatch(cfg.forward_size, cfg.max_forward, grow=cfg.grow)
        self.refs = ReferenceCache(cfg.max_cached_references)
        ahead = 2 * max(cfg.max_forward, cfg.forward_size)
        self.loader = Prefetcher(self._load, [(r.id, r) for r in plan or [] if not r.reason], threads=cfg.threads,
                                 ahead=ahead, clock=self.clock, stage="decode")
        self.writer = AsyncWriter(cfg.threads, clock=self.clock, stage="write")
        self.forward_sizes: list[int] = []  # images per forward pass, in order (tests, records)

    def _load(self, rec: InputRecord) -> RestoreItem:
        return load_item(rec, self.method, self.cfg.landmark_source, self.refs)

    # -- the model, with out-of-memory recovery ------------------------------------------------------
    def _forward(self, chunk: list[RestoreItem]) -> list[RestoreResult]:
        self.forward_sizes.append(len(chunk))
        with self.clock.time("restore"):
            return self.method.restore(chunk)

    def restore_items(self, items: list[RestoreItem]) -> dict[str, RestoreResult]:
        """A result for every item: forward passes of at most ``self.batch.size`` images; an out-of-memory
        pass is redone on the same images at half the size; any other failing pass is redone image by image."""
        out: dict[str, RestoreResult] = {}
        remaining = deque(items)
        solo = 0  # items at the front to run one by one (after a pass failed for another reason)
        while remaining:
            n = 1 if solo else self.batch.size  # taken now: a shrink or growth applies to what is left
            chunk = [remaining.popleft() for _ in range(min(n, len(remaining)))]
            try:
                results = self._forward(chunk)
            except Exception as exc:  # noqa: BLE001 - recorded per image below
                if is_out_of_memory(exc) and len(chunk) > 1:
                    self.batch.shrink(len(chunk))
                    free_device_memory()
                    remaining.extendleft(reversed(chunk))
                elif len(chunk) > 1:  # one bad image must not fail the others: retry one by one
                    remaining.extendleft(reversed(chunk))
                    solo = len(chunk)
                else:
                    out[chunk[0].id] = RestoreResult(chunk[0].id, None, STATUS_ERROR, describe_error(exc))
                    solo = max(0, solo - 1)
                continue
            solo = max(0, solo - len(chunk))
            ids = {it.id for it in chunk}
            results = [r for r in results if r.id in ids]  # ids the batch did not hold are ignored
            oom = {r.id for r in results if r.status == STATUS_ERROR and is_out_of_memory(r.reason)}
            if oom and len(chunk) > 1:  # the method caught the error itself: redo those images smaller
                self.batch.shrink(len(chunk))
                free_device_memory()
                remaining.extendleft(reversed([it for it in chunk if it.id in oom]))
                results = [r for r in results if r.id not in oom]
            else:
                self.batch.fitted(len(chunk))
            for r in results:
                out.setdefault(r.id, r)
        return out

    # -- one batch ---------------------------------------------------------------------------------------
    def run(self, chunk: list[InputRecord]) -> list[dict]:
        cfg = self.cfg
        label, wsha = cfg.label, cfg.weights_sha256
        rows: dict[str, dict] = {}
        todo = [rec for rec in chunk if not rec.reason]
        for rec in chunk:
            if rec.reason:  # rejected while reading the test set (the reason names the path tried)
                rows[rec.id] = status_row(rec.id, label, STATUS_ERROR, rec.reason, 0.0, None, wsha)
        items: list[RestoreItem] = []
        for rec, got in zip(todo, self.loader.get_many([(r.id, r) for r in todo])):
            if isinstance(got, BaseException):
                rows[rec.id] = status_row(rec.id, label, STATUS_ERROR, describe_error(got), 0.0, None, wsha)
            else:
                items.append(got)
        results = self.restore_items(items) if items else {}
        writes = []
        for it in items:
            res = results.get(it.id)
            if res is None:
                continue  # accounted for below
            if res.image is not None and (res.image.shape != it.image.shape or res.image.dtype != np.uint8):
                res = RestoreResult(res.id, None, STATUS_ERROR, f"method returned {res.image.shape} {res.image.dtype}, "
                                    f"expected {it.image.shape} uint8", res.seconds)
            if res.image is None:
                rows[res.id] = status_row(res.id, label, res.status, res.reason, res.seconds, None, wsha)
                continue
            path = safe_id_path(self.folder, res.id)
            rows[res.id] = status_row(res.id, label, res.status, res.reason, res.seconds,
                                      path.relative_to(self.out_dir).as_posix(), wsha)
            writes.append((res.id, self.writer.submit(write_image, path, res.image)))

        def final() -> list[dict]:
            for item_id, fut in writes:
                exc = fut.exception()
                if exc is not None:
                    rows[item_id] = status_row(item_id, label, STATUS_ERROR, f"writing the output failed: {describe_error(exc)}",
                                               rows[item_id]["seconds"], None, wsha)
            return final_shape(rows, chunk, label, wsha)

        if self.sink is not None:  # inline: journal once the files are on disk, while the model goes on
            sink = self.sink
            self.writer.when_done([f for _, f in writes], lambda: sink(final()))
            out = [dict(r, _journalled=True) for r in final_shape(rows, chunk, label, wsha)]
        else:
            for _, fut in writes:
                fut.exception()  # wait: the driver journals these rows as soon as they return
            out = final()
        if out:
            out[0] = dict(out[0], _stages=self.clock.take())
        return out

    def close(self) -> dict[str, float]:
        """Finish pending writes (and their journal lines); returns the stage seconds not yet reported."""
        try:
            self.writer.close()
        finally:
            self.loader.close()
        return self.clock.take()


def final_shape(rows: dict[str, dict], chunk: list[InputRecord], label: str, wsha: str) -> list[dict]:
    """The rows of ``chunk`` as known now (before the writes finished), in ``chunk`` order."""
    return [rows.get(rec.id) or status_row(rec.id, label, STATUS_ERROR, "method returned no result for this image", 0.0,
                                           None, wsha) for rec in chunk]


# -- the engine's entry points (module level: picklable by reference) --------------------------------------
_WORKER: RestoreWorker | None = None


def init_restore_worker(method: RestorationMethod | MethodSpec, cfg: WorkerConfig, plan: list[InputRecord] | None = None,
                        sink: Callable[[list[dict]], None] | None = None) -> None:
    """Engine initializer: the driver's method instance (inline) or one built and loaded from a spec (remote)."""
    global _WORKER
    if _WORKER is not None:
        _WORKER.close()
    m = method.build() if isinstance(method, MethodSpec) else method
    if not m.loaded:
        m.load()
    _WORKER = RestoreWorker(m, cfg, plan, sink)


def restore_batch(chunk: list[InputRecord]) -> list[dict]:
    """Engine batch function: one status row per record of ``chunk`` (see :meth:`RestoreWorker.run`)."""
    if _WORKER is None:
        raise CelebrefError("internal error: restore worker not initialised")
    return _WORKER.run(chunk)


def close_restore_worker() -> tuple[RestoreWorker | None, dict[str, float]]:
    """Inline engine, after its ``map``: finish the writes; returns (the worker, its remaining stage seconds)."""
    global _WORKER
    w, _WORKER = _WORKER, None
    if w is None:
        return None, {}
    return w, w.close()
