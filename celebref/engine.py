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
* ``session`` (instead of ``initializer``): a picklable factory ``session(plan)`` the engine calls once per
  worker; the object it returns is the worker's state (models, decoders), owned by the engine -- no module
  globals in the caller -- and ``fn(state, batch)`` is called with it. ``plan`` is the list of items that
  worker will get, in order, when the engine knows it (inline: all of them), else ``None``; the object's
  ``close()`` (if any) runs when the engine is done with it. A factory that holds live objects (a loaded
  model) can drop them in ``__getstate__``: inline they are used as they are, a remote worker rebuilds them.
* worker processes exit when their parent dies (``PR_SET_PDEATHSIG`` on Linux, plus a parent watch thread), so
  a killed run leaves nothing writing behind it; they also hold the folder locks of their parent
  (:func:`celebref.lock.hold_worker_locks`), so a rerun that takes over a dead run's lock waits for them.
* a worker that dies (killed, out of memory) costs only the batch it was running: the pool is restarted and
  the batches in flight at that moment are run again one at a time; the one that kills a worker on its own
  gets the error ``worker process died ...``. An interrupted ``map`` (Ctrl-C, the consumer stops iterating)
  kills its workers before returning.
* progress: one bar per ``map`` call (``desc``), on stderr.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Container, Generic, Iterable, Iterator, Sequence, TypeVar

from .errors import CelebrefError, ConfigError
from .lock import hold_worker_locks
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
            initargs: tuple = (), skip: Container[str] = (), route: Sequence[str] | None = None,
            session: Callable[[Sequence[Any] | None], Any] | None = None) -> Iterator[ItemResult]:
        """See the module docstring. ``route`` (one key per item) is a placement hint: items with the same key
        go to the same worker where the engine can do so (Ray); the local engine ignores it."""
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
def watch_parent(poll_s: float = 0.5, parent: int | None = None) -> None:
    """Make this (worker) process exit when its parent dies: ``PR_SET_PDEATHSIG`` = SIGKILL on Linux, and a
    daemon thread that polls the parent pid elsewhere (and as a second guard). ``parent`` is the pid the
    worker was started by (default: the current parent); a worker whose parent already died exits at once.
    (On Linux the signal follows the parent *thread* that started the worker: start pools from a thread that
    lives as long as the pool.)"""
    parent = os.getppid() if parent is None else int(parent)
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


#: the session object of this worker process (process pools; see ``Engine.map(session=...)``)
_SESSION: Any = None


def _worker_init(parent: int, initializer: Callable[..., None] | None, initargs: tuple,
                 session: Callable[[Sequence[Any] | None], Any] | None = None) -> None:
    global _SESSION
    watch_parent(parent=parent)
    hold_worker_locks()  # a takeover of our parent's folder lock waits for this process to exit
    if initializer is not None:
        initializer(*initargs)
    if session is not None:
        _SESSION = session(None)


def _run_session_batch(fn: Callable[[Any, list[Any]], Sequence[Any]], batch: list[Any]) -> list[tuple[bool, Any]]:
    """In a pool worker: ``fn(session, batch)`` with this process's session object."""
    return _run_batch(functools.partial(fn, _SESSION), batch)


def close_session(obj: Any) -> None:
    """Call ``obj.close()`` when the session object has one."""
    close = getattr(obj, "close", None)
    if callable(close):
        close()


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


class OrderedResults:
    """Puts batch results back in input order, for every engine: ``store`` what finished, ``emit`` what can go out
    now (skipped items in their place), one progress tick per item. ``prepare`` validates a map's arguments."""

    def __init__(self, keys: list[str], skip: Container[str], desc: str = "", unit: str = "img"):
        self.keys, self.skip = keys, skip
        self.results: dict[int, ItemResult] = {}
        self.next = 0
        self.bar = progress(range(len(keys)), desc=desc, total=len(keys), unit=unit)
        self._ticks = iter(self.bar)

    @staticmethod
    def prepare(items: Iterable[Any], keys: Sequence[str] | None, batch_size: int, skip: Container[str]
                ) -> tuple[list[Any], list[str], list[int]]:
        """``(items, keys as strings, indices to run)``; a :class:`ConfigError` for bad arguments."""
        items = list(items)
        keys = [str(k) for k in keys] if keys is not None else [str(i) for i in range(len(items))]
        if len(keys) != len(items):
            raise ConfigError(f"{len(keys)} keys for {len(items)} items")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        return items, keys, [i for i in range(len(items)) if keys[i] not in skip]

    def store(self, batch: list[int], out: list[tuple[bool, Any]]) -> None:
        for i, (ok, v) in zip(batch, out):
            self.results[i] = ItemResult(i, self.keys[i], value=v) if ok else ItemResult(i, self.keys[i], error=v)

    def emit(self) -> Iterator[ItemResult]:
        while self.next < len(self.keys):
            i = self.next
            if self.keys[i] in self.skip:
                r = ItemResult(i, self.keys[i], skipped=True)
            elif i in self.results:
                r = self.results.pop(i)
            else:
                return
            next(self._ticks, None)
            self.next += 1
            yield r

    def close(self) -> None:
        close = getattr(self.bar, "close", None)
        if close:
            close()


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
            skip=(), route=None, session=None):
        items, keys, todo = OrderedResults.prepare(items, keys, batch_size, skip)
        batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
        order = OrderedResults(keys, skip, desc, unit)
        state = None
        try:
            if self.workers <= 1 or len(batches) <= 1:
                if initializer is not None and batches:
                    initializer(*initargs)
                if session is not None and batches:
                    state = session([items[i] for b in batches for i in b])
                    fn = functools.partial(fn, state)
                yield from order.emit()
                for b in batches:
                    order.store(b, _run_batch(fn, [items[i] for i in b]))
                    yield from order.emit()
                return
            yield from order.emit()
            for b, out in self._pool_map(fn, items, batches, initializer, initargs, session):
                order.store(b, out)
                yield from order.emit()
        finally:
            if state is not None:
                close_session(state)
            order.close()

    def _pool(self, n: int, initializer: Callable[..., None] | None, initargs: tuple,
              session: Callable | None = None) -> ProcessPoolExecutor:
        import multiprocessing

        # spawn, never fork: a process that already ran OpenCV's or torch's thread pools can deadlock when forked
        ctx = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_worker_init,
                                   initargs=(os.getpid(), initializer, initargs, session))

    def _pool_map(self, fn: Callable, items: list, batches: list[list[int]], initializer: Callable[..., None] | None,
                  initargs: tuple, session: Callable | None = None) -> Iterator[tuple[list[int], list[tuple[bool, Any]]]]:
        """``(batch, results)`` in batch order from a worker pool. When a worker dies (killed, out of memory),
        the pool is restarted and the batches that were in flight are run again one at a time, so only the
        batch that kills a worker on its own is reported failed; the other items are not lost."""
        n = min(self.workers, len(batches))
        window = n * self.prefetch
        queue = deque(batches)
        suspects: deque[list[int]] = deque()  # in flight when a worker died: re-run alone, in order
        pending: deque[tuple[list[int], Future, bool]] = deque()
        ex = self._pool(n, initializer, initargs, session)
        run = _run_session_batch if session is not None else _run_batch
        ok = False
        try:
            while queue or suspects or pending:
                try:
                    if suspects:
                        if not pending:
                            b = suspects[0]
                            fut = ex.submit(run, fn, [items[i] for i in b])
                            pending.append((suspects.popleft(), fut, True))
                    else:
                        while queue and len(pending) < window:
                            b = queue[0]
                            fut = ex.submit(run, fn, [items[i] for i in b])
                            pending.append((queue.popleft(), fut, False))
                except BrokenProcessPool:  # a worker died between two results
                    suspects.extendleft(reversed([pb for pb, _, _ in pending]))
                    pending.clear()
                    ex = self._restart(ex, n, initializer, initargs, session)
                    continue
                b, fut, alone = pending.popleft()
                try:
                    out = fut.result()
                except BrokenProcessPool:
                    if not alone:
                        suspects.extendleft(reversed([b] + [pb for pb, _, _ in pending]))
                        pending.clear()
                        ex = self._restart(ex, n, initializer, initargs, session)
                        continue
                    out = [(False, "worker process died while processing this item (killed, or out of memory?)")] * len(b)
                    ex = self._restart(ex, n, initializer, initargs, session)
                except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled
                    out = [(False, f"worker failed: {describe_error(exc)}")] * len(b)
                yield b, out
            ok = True
        finally:
            if not ok:  # interrupted (Ctrl-C, consumer stopped early): nothing keeps writing after we return
                _kill_workers(ex)
            ex.shutdown(wait=True, cancel_futures=True)

    def _restart(self, ex: ProcessPoolExecutor, n: int, initializer: Callable[..., None] | None,
                 initargs: tuple, session: Callable | None = None) -> ProcessPoolExecutor:
        _kill_workers(ex)
        ex.shutdown(wait=True, cancel_futures=True)
        return self._pool(n, initializer, initargs, session)


def _kill_workers(ex: ProcessPoolExecutor) -> None:
    """Terminate the worker processes of ``ex`` now (they only ever write atomically)."""
    for proc in list((getattr(ex, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            proc.kill()
    for proc in list((getattr(ex, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            proc.join(5)


ENGINES.register("local", "celebref.engine:LocalEngine", description="worker processes on this machine (default)")
ENGINES.register("ray", "celebref.engine_ray:RayEngine",
                 description="Ray actors on a Ray cluster or a local Ray (optional extra: celebref[ray])")


def get_engine(name: str | Engine | None = "local", **options: Any) -> Engine:
    """An engine by name (``local``; ``ray`` when the ``.[ray]`` extra is installed) or an engine instance as is."""
    if isinstance(name, Engine):
        return name
    cls = ENGINES.get(name or "local")
    return cls(**options)
