"""Host-side pipelining for ``restore`` and ``evaluate``: keep the model busy while the CPU decodes and encodes.

* :class:`Prefetcher` decodes inputs on a thread pool, ahead of their use: given the order in which items will
  be asked for (the *plan*), it keeps up to ``ahead`` items decoded past the last one asked for, so the next
  batch is ready when the model finishes the current one. Without a plan it still decodes a batch's items in
  parallel. Errors are returned as values (one bad file never stops a batch).
* :class:`AsyncWriter` encodes and writes outputs on a thread pool (PNG encoding is ~20 ms per 512x512 image)
  and calls back once every file of a batch is durably written (atomic write + fsync), so a journal line is
  only ever appended for outputs that exist.
* :class:`StageClock` adds up seconds per stage (``decode``, ``restore``, ``metrics``, ``write``), summed over
  threads and workers, so a slow stage is visible at the end of a run (printed, and recorded in
  ``restore.json`` / ``run.json``).
* :class:`AdaptiveBatch`: images per forward pass for ``--batch-size auto`` and out-of-memory recovery.

Thread counts default to :func:`default_threads` (CPUs of this machine, at most 8).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Hashable, Iterator, Sequence

STAGES = ("decode", "restore", "metrics", "write")


def default_threads(cap: int = 8) -> int:
    """Threads for decoding / encoding: the CPUs this process may use, at most ``cap``."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(cap, n))


class StageClock:
    """Seconds per stage, summed over threads (thread-safe). ``take()`` returns and clears what was added."""

    def __init__(self) -> None:
        self._s: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._s[stage] = self._s.get(stage, 0.0) + float(seconds)

    @contextlib.contextmanager
    def time(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t0)

    def merge(self, other: dict[str, float] | None) -> None:
        for k, v in (other or {}).items():
            self.add(k, v)

    def take(self) -> dict[str, float]:
        with self._lock:
            out, self._s = self._s, {}
        return out

    def as_dict(self) -> dict[str, float]:
        """``{stage: seconds}`` rounded to ms, the known stages first (each present, 0 when unused)."""
        with self._lock:
            s = dict(self._s)
        keys = list(STAGES) + sorted(k for k in s if k not in STAGES)
        return {k: round(s.get(k, 0.0), 3) for k in keys}

    def line(self) -> str:
        """``decode 1.20 s, restore 3.41 s, metrics 0.50 s, write 0.80 s`` (seconds summed over threads/workers)."""
        return ", ".join(f"{k} {v:.2f} s" for k, v in self.as_dict().items())


class Prefetcher:
    """Loads items with ``load(arg)`` on ``threads`` threads, ahead of use.

    ``plan``: ``[(key, arg), ...]`` in the order :meth:`get_many` will ask for them (or ``None``). After each
    call the next ``ahead`` planned items past the furthest key asked for so far are loading. Keys asked for
    that were not prefetched are loaded at once (in parallel). Returns values or the exceptions raised."""

    def __init__(self, load: Callable[[Any], Any], plan: Sequence[tuple[Hashable, Any]] | None = None,
                 threads: int | None = None, ahead: int = 8, clock: StageClock | None = None, stage: str = "decode"):
        self._load = load
        self._plan = list(plan or [])
        self._pos = {k: i for i, (k, _) in enumerate(self._plan)}
        self._next = 0
        self._cursor = 0
        self.ahead = max(0, int(ahead))
        self._pending: dict[Hashable, Future] = {}
        self._pool = ThreadPoolExecutor(max_workers=threads or default_threads(), thread_name_prefix="celebref-decode")
        self._clock, self._stage = clock, stage

    def _timed(self, arg: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self._load(arg)
        finally:
            if self._clock is not None:
                self._clock.add(self._stage, time.perf_counter() - t0)

    def _fill(self) -> None:
        self._next = max(self._next, self._cursor)
        while self._next < len(self._plan) and self._next < self._cursor + self.ahead:
            key, arg = self._plan[self._next]
            self._next += 1
            if key not in self._pending:
                self._pending[key] = self._pool.submit(self._timed, arg)

    def get_many(self, pairs: Sequence[tuple[Hashable, Any]]) -> list[Any]:
        futs = []
        for key, arg in pairs:
            fut = self._pending.pop(key, None)
            futs.append(fut if fut is not None else self._pool.submit(self._timed, arg))
            if key in self._pos:
                self._cursor = max(self._cursor, self._pos[key] + 1)
        self._fill()  # the next items load while the caller works on these
        out = []
        for fut in futs:
            try:
                out.append(fut.result())
            except Exception as exc:  # noqa: BLE001 - returned as the item's value
                out.append(exc)
        return out

    def close(self) -> None:
        for fut in self._pending.values():
            fut.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)


class AsyncWriter:
    """Runs write jobs on a thread pool; :meth:`when_done` calls back once all futures of a batch finished."""

    def __init__(self, threads: int | None = None, clock: StageClock | None = None, stage: str = "write"):
        self._pool = ThreadPoolExecutor(max_workers=threads or default_threads(), thread_name_prefix="celebref-write")
        self._clock, self._stage = clock, stage
        self._outstanding: set[Future] = set()
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        def job() -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args)
            finally:
                if self._clock is not None:
                    self._clock.add(self._stage, time.perf_counter() - t0)

        fut = self._pool.submit(job)
        with self._lock:
            self._outstanding.add(fut)
        fut.add_done_callback(self._forget)
        return fut

    def _forget(self, fut: Future) -> None:
        with self._lock:
            self._outstanding.discard(fut)

    def when_done(self, futures: Sequence[Future], callback: Callable[[], None]) -> Future:
        """A future that runs ``callback()`` after every one of ``futures`` finished (success or not)."""
        futures = list(futures)

        def wait_then_call() -> None:
            for f in futures:
                with contextlib.suppress(Exception):
                    f.result()
            callback()

        if not futures:
            done: Future = Future()
            try:
                callback()
                done.set_result(None)
            except Exception as exc:  # noqa: BLE001
                done.set_exception(exc)
            return done
        # a separate thread so that a pool thread never blocks on other pool jobs
        fut: Future = Future()

        def runner() -> None:
            try:
                wait_then_call()
                fut.set_result(None)
            except BaseException as exc:  # noqa: BLE001 - surfaced by drain()
                fut.set_exception(exc)

        with self._lock:
            self._outstanding.add(fut)
        fut.add_done_callback(self._forget)
        threading.Thread(target=runner, name="celebref-write-done", daemon=True).start()
        return fut

    def drain(self, raise_errors: bool = True) -> None:
        """Wait for every job and callback submitted so far; re-raises the first error unless ``raise_errors``
        is False (the caller reads each job's outcome from its future)."""
        while True:
            with self._lock:
                pending = list(self._outstanding)
            if not pending:
                return
            for f in pending:
                if raise_errors:
                    f.result()
                else:
                    f.exception()

    def close(self, raise_errors: bool = True) -> None:
        try:
            self.drain(raise_errors)
        finally:
            self._pool.shutdown(wait=True)


class AdaptiveBatch:
    """Images per forward pass. ``grow``: double after each pass that used the whole size, up to ``cap``
    (``--batch-size auto`` on CUDA: the largest batch that fits). :meth:`shrink` after an out-of-memory error:
    half the size that failed, and growth stops."""

    def __init__(self, size: int, cap: int | None = None, grow: bool = False):
        self.size = max(1, int(size))
        self.cap = max(self.size, int(cap or size))
        self.grow = bool(grow)
        self.shrinks = 0

    def fitted(self, n: int) -> None:
        if self.grow and n >= self.size and self.size < self.cap:
            self.size = min(self.cap, self.size * 2)

    def shrink(self, failed: int) -> None:
        self.size = max(1, int(failed) // 2)
        self.grow = False
        self.shrinks += 1


def is_out_of_memory(exc: BaseException | str) -> bool:
    """Whether an exception (or a recorded reason) is a device out-of-memory error."""
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return "OutOfMemoryError" in text or "out of memory" in text.lower()


def free_device_memory() -> None:
    """Return cached CUDA blocks after an out-of-memory error (no effect without CUDA)."""
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort
        pass
