"""Restoring a batch inside an engine worker: the method specs workers rebuild models from, input decoding and
the forward passes with out-of-memory recovery. The worker's state lives in the session object of
:mod:`celebref.app.session` (owned by the engine); nothing here is module-global.

Out of memory: a forward pass that raises a CUDA out-of-memory error (or whose method reports it for an image)
is retried on the same images at half the size, which then stays for the rest of the run (:class:`MethodBatcher`);
every image of the batch gets exactly one result.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from baselines.base import STATUS_ERROR, ReferenceSet, RestorationMethod, RestoreItem, RestoreResult
from celebref.engine import describe_error
from celebref.errors import CelebrefError
from celebref.face.landmark_io import read_landmarks
from celebref.imageio import decode_image, read_image
from celebref.testset import InputRecord, reference_files, reference_key

from .pipeline import AdaptiveBatch, StageClock, free_device_memory, is_out_of_memory

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


@dataclass
class Inputs:
    """One record's inputs, decoded once per run and shared by every method and metric (RGB uint8 HWC)."""

    lq: np.ndarray | None  # None when no method runs on the record (only earlier outputs are rescored)
    lq_png: bytes | None  # the LQ file's bytes when it is a PNG (an output equal to the input is written as is)
    native: np.ndarray | None = None
    landmarks: np.ndarray | None = None  # (68, 2) from the ground truth (landmark_source "gt")
    references: ReferenceSet | None = None
    gt: np.ndarray | BaseException | None = None  # an exception: the ground truth could not be read
    reused: dict[str, np.ndarray | BaseException] = field(default_factory=dict)  # label -> earlier output
    decoded: int = 0  # files decoded for this record
    lq_error: BaseException | None = None  # the LQ could not be read: every method fails, the rest still runs


def load_inputs(rec: InputRecord, landmark_source: str, refs: ReferenceCache | None, gt: bool,
                reused: dict[str, str], restore: bool = True, lq: bool = False) -> Inputs:
    """Decode ``rec``'s inputs once: with ``restore``, the LQ (and native LQ, GT landmarks, references when
    ``refs`` is given); else with ``lq`` the LQ image alone (for metrics scored against the input); the ground
    truth when ``gt``; earlier outputs ``{label: file}``. A bad input is kept as its exception (``lq_error``, or
    in place of the GT / earlier output): it fails only what needs it."""
    inp = Inputs(lq=None, lq_png=None)
    try:
        if restore:
            _load_lq(inp, rec, landmark_source, refs)
        elif lq:
            inp.lq = read_image(rec.lq_path)
            inp.decoded = 1
    except Exception as exc:  # noqa: BLE001 - recorded for every method of this record
        inp.lq_error = exc
    if gt and rec.gt_path is not None:
        inp.gt = _read_or_error(rec.gt_path)
        inp.decoded += 1
    for label, path in reused.items():
        inp.reused[label] = _read_or_error(path)
        inp.decoded += 1
    return inp


def _load_lq(inp: Inputs, rec: InputRecord, landmark_source: str, refs: ReferenceCache | None) -> None:
    """The method inputs of ``rec`` into ``inp`` (LQ bytes and pixels, GT landmarks, references, native LQ)."""
    data = Path(rec.lq_path).read_bytes() if Path(rec.lq_path).is_file() else None
    inp.lq = decode_image(data, str(rec.lq_path)) if data is not None else read_image(rec.lq_path)
    inp.lq_png = data if Path(rec.lq_path).suffix.lower() == ".png" else None
    inp.decoded = 1
    if landmark_source == "gt" and rec.gt_landmarks_path is not None:
        inp.landmarks = read_landmarks(rec.gt_landmarks_path)
    if refs is not None and rec.ref_dir is not None:
        inp.references = refs.get(rec)
    if rec.native_path is not None:
        inp.native = read_image(rec.native_path)
        inp.decoded += 1


def _read_or_error(path) -> np.ndarray | BaseException:
    try:
        return read_image(path)
    except Exception as exc:  # noqa: BLE001 - kept as the value: it fails only what needs this image
        return exc


def restore_item(rec: InputRecord, inp: Inputs, method: RestorationMethod) -> RestoreItem:
    """The method's input for ``rec``; a :class:`CelebrefError` when it needs references the record lacks."""
    if method.needs_references and (inp.references is None or len(inp.references.images) < 2):
        where = f" in {rec.ref_dir} (landmarks from {rec.ref_landmark_dir or rec.ref_dir})" if rec.ref_dir else ""
        raise CelebrefError(
            f"{method.name} needs >= 2 references with landmarks for {rec.id!r}{where} "
            "(give a SpecificLists.txt or an identity-grouped test set)"
        )
    return RestoreItem(id=rec.id, image=inp.lq, landmarks=inp.landmarks, identity=rec.identity,
                       references=inp.references if method.needs_references else None, native=inp.native,
                       meta=rec.extra)


class MethodBatcher:
    """One method's forward passes in a worker: at most ``batch.size`` images per pass (``--batch-size auto``
    grows it on CUDA), out-of-memory passes redone at half the size, any other failing pass redone image by
    image. ``forward_sizes``: images per pass, in order (tests, records)."""

    def __init__(self, method: RestorationMethod, forward_size: int = 1, max_forward: int = 1, grow: bool = False,
                 clock: StageClock | None = None):
        self.method = method
        self.batch = AdaptiveBatch(forward_size, max_forward, grow=grow)
        self.clock = clock or StageClock()
        self.forward_sizes: list[int] = []

    def _forward(self, chunk: list[RestoreItem]) -> list[RestoreResult]:
        self.forward_sizes.append(len(chunk))
        with self.clock.time("restore"):
            return self.method.restore(chunk)

    def restore_items(self, items: list[RestoreItem]) -> dict[str, RestoreResult]:
        """A result for every item (see the class docstring); results of the wrong shape or dtype become errors."""
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
        by_id = {it.id: it for it in items}
        for k, r in out.items():
            want = by_id[k].image.shape
            if r.image is not None and (r.image.shape != want or r.image.dtype != np.uint8):
                out[k] = RestoreResult(r.id, None, STATUS_ERROR, f"method returned {r.image.shape} {r.image.dtype}, "
                                       f"expected {want} uint8", r.seconds)
        for it in items:
            out.setdefault(it.id, RestoreResult(it.id, None, STATUS_ERROR, "method returned no result for this image"))
        return out
