"""The Ray engine keeps the engine contract (ordered results, errors as values, resume, routing) and survives an
actor killed mid-run. Runs on a local Ray with 2 CPUs; CI installs the `.[ray]` extra."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray engine needs the optional extra: pip install 'celebref[ray]'")

sys.path.insert(0, str(Path(__file__).parent))
import _ray_probe as probe  # noqa: E402

from celebref.engine import get_engine  # noqa: E402
from celebref.errors import ConfigError  # noqa: E402


def _expected(n: int, skip: set[str]) -> list[tuple]:
    out = []
    for i in range(n):
        if str(i) in skip:
            out.append((str(i), None, None, True))
        elif i == 3:
            out.append((str(i), None, "ValueError: bad item 3", False))
        else:
            out.append((str(i), i * 2, None, False))
    return out


def _rows(results) -> list[tuple]:
    return [(r.key, r.value[0] if r.ok else None, r.error, r.skipped) for r in results]


def test_same_results_as_local_engine(ray_engine):
    items = list(range(11))
    ray_rows = _rows(ray_engine.map(probe.double, items, batch_size=2, skip={"5"}, initializer=probe.init,
                                    initargs=("t",)))
    local_rows = _rows(get_engine("local", workers=1).map(probe.double, items, batch_size=2, skip={"5"},
                                                          initializer=probe.init, initargs=("t",)))
    assert ray_rows == local_rows == _expected(11, {"5"})


def test_initializer_runs_in_each_actor(ray_engine):
    res = list(ray_engine.map(probe.double, [0, 1, 2, 4], batch_size=1, initializer=probe.init, initargs=("model",)))
    assert all(r.ok and r.value[1] == "model" for r in res)


def test_routing_keeps_a_route_on_one_actor(ray_engine):
    items = list(range(12))
    route = [f"identity{i % 3}" for i in items]
    res = list(ray_engine.map(probe.double, items, batch_size=2, route=route))
    pids: dict[str, set[int]] = {}
    for r, key in zip(res, route):
        if r.ok:
            pids.setdefault(key, set()).add(r.value[2])
    assert all(len(p) == 1 for p in pids.values()), pids


def test_killed_actor_is_restarted_and_results_identical(ray_engine):
    items = list(range(16))
    it = ray_engine.map(probe.double, items, batch_size=1, initializer=probe.init, initargs=("t",))
    got = [next(it)]
    victim = ray_engine.actors[0]
    ray.kill(victim, no_restart=False)  # Ray restarts it and retries the batches it had
    got.extend(it)
    assert _rows(got) == _expected(16, set())


def test_missing_ray_names_the_extra(monkeypatch):
    """Without Ray installed (``import ray`` fails), asking for the engine names the extra to install."""
    import celebref.engine_ray as er

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError, as when it is absent
    with pytest.raises(ConfigError, match=r"pip install 'celebref\[ray\]'"):
        er.ray_module()
