"""The execution seam: every command's per-item work (build, degrade, restore, evaluate) goes through one small
interface, so that the local worker pool, a GPU pipeline and a Ray cluster are interchangeable.

::

    from celebref.engine import get_engine
    engine = get_engine("local", workers=4)
    for r in engine.map(process_batch, items, keys=[it.id for it in items], batch_size=16, desc="degrade",
                        initializer=init_worker, initargs=(cfg,), skip=already_done):
        if r.ok: record(r.key, r.value)
        else:    record_failure(r.key, r.error)      # one bad item never stops the run

Contract of :meth:`Engine.map`:

* ``fn(batch)`` takes a list of items and returns a list of the same length; an element that is an
  ``Exception`` instance is that item's error. If ``fn`` raises, every item of the batch gets that error
  (:class:`~celebref.errors.CelebrefError` messages as they are, other exceptions as ``"Type: message"``).
* results come back **in input order**, one :class:`ItemResult` per item, errors as values; items whose key is
  in ``skip`` are not run and come back with ``skipped=True`` (resume).
* ``fn``, ``initializer`` and the items must be picklable for a pool with workers (module-level functions).
  ``initializer(*initargs)`` runs once per worker process (load models there), and once in-process when the
  engine runs inline (``workers <= 1``).
* worker processes exit when their parent dies (``PR_SET_PDEATHSIG`` on Linux, plus a parent watch thread), so
  a killed run leaves nothing writing behind it.
* progress: one bar per ``map`` call (``desc``), on stderr.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Container, Generic, Iterable, Iterator, Sequence, TypeVar

from .errors import CelebrefError, ConfigError
from .progress import progress
from .registry import Registry

__all__ = ["ENGINES", "Engine", "ItemResult", "LocalEngine", "describe_error", "get_engine", "watch_parent"]

T = TypeVar("T")

ENGINES = Registry("engine", group="celebref.engines")


@dataclass(frozen=True)
class ItemResult(Generic[T]):
    """What happened to one item: ``value`` when ``ok``, else ``error`` (a one-line reason)."""

    index: int
    key: str
    value: T | None = None
    error: str | None = None
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.skipped


def describe_error(exc: BaseException) -> str:
    """A one-line reason for ``exc``: a :class:`CelebrefError`'s message as is, anything else ``"Type: message"``."""
    if isinstance(exc, CelebrefError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class Engine:
    """Interface of an execution engine (see the module docstring for the contract)."""

    name = "abstract"

    def map(self, fn: Callable[[list[Any]], Sequence[Any]], items: Sequence[Any], *, keys: Sequence[str] | None = None,
            batch_size: int = 1, desc: str = "", unit: str = "img", initializer: Callable[..., None] | None = None,
            initargs: tuple = (), skip: Container[str] = ()) -> Iterator[ItemResult]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What to record in run files."""
        return {"engine": self.name}

    def close(self) -> None:
        """Release workers (an engine may keep a pool between ``map`` calls)."""

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# -- worker side ------------------------------------------------------------------------------------------
def watch_parent(poll_s: float = 0.5) -> None:
    """Make this (worker) process exit when its parent dies: ``PR_SET_PDEATHSIG`` = SIGKILL on Linux, and a
    daemon thread that polls the parent pid elsewhere (and as a second guard)."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def _watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=_watch, name="celebref-parent-watch", daemon=True).start()


def _worker_init(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    watch_parent()
    if initializer is not None:
        initializer(*initargs)


def _run_batch(fn: Callable[[list[Any]], Sequence[Any]], batch: list[Any]) -> list[tuple[bool, Any]]:
    """Run ``fn`` on a batch; returns ``[(ok, value_or_reason)]`` (errors as strings, so they always pickle)."""
    try:
        values = list(fn(batch))
    except Exception as exc:  # noqa: BLE001 - one bad batch is recorded, never fatal
        reason = describe_error(exc)
        return [(False, reason)] * len(batch)
    if len(values) != len(batch):
        reason = f"internal error: {getattr(fn, '__name__', fn)} returned {len(values)} results for {len(batch)} items"
        return [(False, reason)] * len(batch)
    return [(False, describe_error(v)) if isinstance(v, BaseException) else (True, v) for v in values]


# -- local engine -----------------------------------------------------------------------------------------
class LocalEngine(Engine):
    """Today's worker pool: inline for ``workers <= 1``, else a spawn-context process pool with up to
    ``prefetch`` batches in flight per worker. Results are yielded in input order as soon as they are ready."""

    name = "local"

    def __init__(self, workers: int = 1, prefetch: int = 2):
        if int(workers) < 0:
            raise ConfigError(f"workers must be >= 0, got {workers}")
        self.workers = int(workers)
        self.prefetch = max(1, int(prefetch))

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "workers": self.workers}

    def map(self, fn, items, *, keys=None, batch_size=1, desc="", unit="img", initializer=None, initargs=(),
            skip=()):
        items = list(items)
        keys = [str(k) for k in keys] if keys is not None else [str(i) for i in range(len(items))]
        if len(keys) != len(items):
            raise ConfigError(f"{len(keys)} keys for {len(items)} items")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        todo = [i for i in range(len(items)) if keys[i] not in skip]
        batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
        bar = progress(range(len(items)), desc=desc, total=len(items), unit=unit)
        bar_it = iter(bar)
        results: dict[int, ItemResult] = {}
        next_out = 0

        def emit() -> Iterator[ItemResult]:
            nonlocal next_out
            while next_out < len(items):
                if keys[next_out] in skip:
                    r = ItemResult(next_out, keys[next_out], skipped=True)
                elif next_out in results:
                    r = results.pop(next_out)
                else:
                    return
                next(bar_it, None)
                next_out += 1
                yield r

        def store(batch: list[int], out: list[tuple[bool, Any]]) -> None:
            for i, (ok, v) in zip(batch, out):
                results[i] = ItemResult(i, keys[i], value=v) if ok else ItemResult(i, keys[i], error=v)

        try:
            if self.workers <= 1 or len(batches) <= 1:
                if initializer is not None and batches:
                    initializer(*initargs)
                yield from emit()
                for b in batches:
                    store(b, _run_batch(fn, [items[i] for i in b]))
                    yield from emit()
                return
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=min(self.workers, len(batches)), mp_context=ctx,
                                     initializer=_worker_init, initargs=(initializer, initargs)) as ex:
                pending: deque[tuple[list[int], Future]] = deque()
                queue = deque(batches)
                window = self.workers * self.prefetch
                yield from emit()
                while queue or pending:
                    while queue and len(pending) < window:
                        b = queue.popleft()
                        pending.append((b, ex.submit(_run_batch, fn, [items[i] for i in b])))
                    b, fut = pending.popleft()
                    try:
                        out = fut.result()
                    except Exception as exc:  # noqa: BLE001 - a worker died (killed, out of memory)
                        out = [(False, f"worker failed: {describe_error(exc)}")] * len(b)
                    store(b, out)
                    yield from emit()
        finally:
            close = getattr(bar, "close", None)
            if close:
                close()


ENGINES.register("local", "celebref.engine:LocalEngine", description="worker processes on this machine (default)")


def get_engine(name: str | Engine | None = "local", **options: Any) -> Engine:
    """An engine by name (``local``; ``ray`` when the ``.[ray]`` extra is installed) or an engine instance as is."""
    if isinstance(name, Engine):
        return name
    cls = ENGINES.get(name or "local")
    return cls(**options)


def iter_batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive chunks of at most ``size`` items from any iterable."""
    batch: list[T] = []
    for it in items:
        batch.append(it)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
