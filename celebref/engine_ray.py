"""The Ray engine: the same :class:`~celebref.engine.Engine` contract, run on a Ray cluster (or a local Ray).

::

    celebref degrade ... --engine ray                           # a local Ray (all CPUs of this machine)
    celebref evaluate ... --engine ray --ray-address auto       # join the running cluster
    celebref evaluate ... --engine ray --ray-address ray://head:10001

How it maps the contract:

* a ``map`` call starts ``actors`` Ray actors (default: one per CPU the cluster has, or one per GPU with
  ``gpus_per_actor=1``); each runs ``initializer(*initargs)`` once (a model is loaded once per actor) and then
  ``fn`` on the batches sent to it (with ``session``: the actor builds the session object once and holds it).
  The actors stay up for the next ``map`` with the same ``initializer``, ``initargs`` and ``session``, or with
  none (a build's stages share one set; starting actors costs seconds), and are killed when another set is
  needed (they hold the cluster's CPUs), when a ``map`` is interrupted, and by :meth:`RayEngine.close`.
  Batches are streamed with a bounded window and results come back in input order, errors as values, exactly
  as with the local engine.
* ``route``: items with the same route key (e.g. the identity) go to the same actor, so a per-identity
  dictionary is built once, in the actor that restores that identity.
* failures: actors are created with ``max_restarts`` and ``max_task_retries``: an actor killed mid-task is
  restarted (its initializer runs again) and its pending batches are retried; results are the same because
  every item's work is a pure function of the item.
* Ray's own INFO logs are off (``logging_level=ERROR``, no log forwarding); one progress bar per ``map``.

Ray is an optional extra (``pip install 'celebref[ray]'``), imported only when this engine is asked for.
"""

from __future__ import annotations

import functools
import os
import zlib
from collections import deque
from typing import Any, Sequence

from .engine import Engine, OrderedResults, _run_batch, describe_error
from .errors import ConfigError

__all__ = ["RayEngine", "ray_module"]


def ray_module():
    """``import ray`` or a :class:`ConfigError` naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("engine 'ray' needs Ray: pip install 'celebref[ray]' "
                          f"(import failed: {exc})") from None
    return ray


def _ensure_ray(address: str | None, num_cpus: int | None):
    ray = ray_module()
    if not ray.is_initialized():
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        kwargs: dict[str, Any] = dict(log_to_driver=False, logging_level="ERROR", include_dashboard=False,
                                      configure_logging=True, ignore_reinit_error=True)
        if address:
            kwargs["address"] = address
        elif num_cpus is not None:
            kwargs["num_cpus"] = int(num_cpus)
        ray.init(**kwargs)
    return ray


class _Worker:
    """The actor body: per-actor state is the session object (``Engine.map(session=...)``), or whatever
    ``initializer`` sets up."""

    def __init__(self, initializer, initargs, session=None):
        if initializer is not None:
            initializer(*initargs)
        self.session = session(None) if session is not None else None

    def run(self, fn, batch):
        if self.session is not None:
            return _run_batch(functools.partial(fn, self.session), batch)
        return _run_batch(fn, batch)

    def pid(self) -> int:
        return os.getpid()


def _stable_hash(key: str) -> int:
    return zlib.crc32(key.encode("utf-8", "surrogatepass"))


class RayEngine(Engine):
    """Engine on Ray actors. ``address``: ``None`` (start a local Ray, or use the one already initialised),
    ``"auto"`` or ``"ray://HOST:10001"``; ``actors``: how many (default: CPUs of the cluster / ``gpus_per_actor``);
    ``num_cpus``: CPUs of a local Ray started here; ``max_restarts``/``max_task_retries``: failure handling."""

    name = "ray"

    def __init__(self, address: str | None = None, actors: int | None = None, num_cpus: int | None = None,
                 gpus_per_actor: float = 0.0, cpus_per_actor: float = 1.0, prefetch: int = 2,
                 max_restarts: int = 3, max_task_retries: int = 3, workers: int | None = None):
        self.address = address
        self.ray = _ensure_ray(address, num_cpus)
        res = self.ray.cluster_resources()
        if actors is None and workers:
            actors = workers
        if actors is None:
            if gpus_per_actor:
                actors = max(1, int(res.get("GPU", 0) // gpus_per_actor))
            else:
                actors = max(1, int(res.get("CPU", 1) // max(cpus_per_actor, 1e-9)))
        self.n_actors = int(actors)
        self.gpus_per_actor = float(gpus_per_actor)
        self.cpus_per_actor = float(cpus_per_actor)
        self.prefetch = max(1, int(prefetch))
        self.max_restarts = int(max_restarts)
        self.max_task_retries = int(max_task_retries)
        self.actors: list[Any] = []  # the live actors of the running map (tests kill one through this)
        self._pool: list[Any] = []  # actors kept between maps, started with self._pool_key
        self._pool_key: tuple | None = None

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "address": self.address or "local", "actors": self.n_actors,
                "gpus_per_actor": self.gpus_per_actor, "ray": self.ray.__version__}

    def _start(self, n: int, initializer, initargs, session=None) -> list[Any]:
        """``n`` actors set up with ``initializer(*initargs)``: the kept ones when they were started the same way
        or ``initializer`` is None (more are added when needed, set up as the kept ones), else new ones (the kept
        ones are killed first: they hold the CPUs)."""
        key = (initializer, initargs, session)
        try:  # a map without an initializer or session needs no per-actor state: any kept actors will do
            same = self._pool_key is not None and ((initializer is None and session is None) or self._pool_key == key)
        except Exception:  # noqa: BLE001 - initargs that cannot be compared: never reuse
            same = False
        if not same:
            self._kill_pool()
            self._pool_key = key
        initializer, initargs, session = self._pool_key
        if len(self._pool) < n:
            cls = self.ray.remote(num_cpus=self.cpus_per_actor, num_gpus=self.gpus_per_actor,
                                  max_restarts=self.max_restarts, max_task_retries=self.max_task_retries)(_Worker)
            self._pool.extend(cls.remote(initializer, initargs, session) for _ in range(n - len(self._pool)))
        return self._pool[:n]

    def _kill_pool(self) -> None:
        for a in self._pool:
            try:
                self.ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        self._pool = []
        self._pool_key = None

    def close(self) -> None:
        """Kill the actors kept between maps (Ray itself stays up for the rest of the process)."""
        self._kill_pool()

    def map(self, fn, items, *, keys=None, batch_size=1, desc="", unit="img", initializer=None, initargs=(),
            skip=(), route: Sequence[str] | None = None, session=None):
        items, keys, todo = OrderedResults.prepare(items, keys, batch_size, skip)
        n = max(1, min(self.n_actors, len(todo))) if todo else 0
        # a routed item always goes to the same actor (lane); unrouted batches go to the least busy actor
        lanes: dict[int | None, deque[list[int]]] = {}
        if route is not None:
            for i in todo:
                lane = _stable_hash(str(route[i])) % max(n, 1)
                q = lanes.setdefault(lane, deque())
                if q and len(q[-1]) < batch_size and route[q[-1][-1]] == route[i]:
                    q[-1].append(i)
                else:
                    q.append([i])
        else:
            lanes[None] = deque(todo[j:j + batch_size] for j in range(0, len(todo), batch_size))
        order = OrderedResults(keys, skip, desc, unit)
        finished = False
        try:
            yield from order.emit()
            if not todo:
                finished = True
                return
            self.actors = self._start(n, initializer, initargs, session)
            fn_ref = self.ray.put(fn)
            busy = [0] * n
            pending: dict[Any, tuple[int, list[int]]] = {}

            def submit() -> None:
                for lane, q in lanes.items():
                    while q:
                        actor = lane if lane is not None else min(range(n), key=busy.__getitem__)
                        if busy[actor] >= self.prefetch:
                            break
                        idx = q.popleft()
                        busy[actor] += 1
                        pending[self.actors[actor].run.remote(fn_ref, [items[i] for i in idx])] = (actor, idx)

            submit()
            while pending:
                done, _ = self.ray.wait(list(pending), num_returns=1)
                for ref in done:
                    actor, idx = pending.pop(ref)
                    busy[actor] -= 1
                    try:
                        out = self.ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - retries exhausted: recorded per item
                        out = [(False, f"ray worker failed: {describe_error(exc)}")] * len(idx)
                    order.store(idx, out)
                submit()
                yield from order.emit()
            finished = True
        finally:
            if not finished:  # interrupted: nothing keeps running for this map
                self._kill_pool()
            self.actors = []
            order.close()
