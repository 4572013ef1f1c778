"""``Engine.map(session=...)``: the worker state is an object the engine builds once per worker and owns (no module
globals in the caller); inline it gets the plan and is closed at the end; a pool builds one per process."""

from __future__ import annotations

from _session_probe import Factory, work

from celebref.engine import LocalEngine


def test_inline_session_is_built_once_with_the_plan_and_closed() -> None:
    factory = Factory()
    out = list(LocalEngine(workers=1).map(work, list(range(7)), batch_size=3, session=factory, skip={"4"}))
    assert [r.value[0] for r in out if r.ok] == [0, 2, 4, 6, 10, 12] and out[4].skipped
    (state,) = factory.built
    assert state.plan == [0, 1, 2, 3, 5, 6] and state.batches == 2 and state.closed
    assert [r.value[2] for r in out if r.ok] == [1, 1, 1, 2, 2, 2]  # the same object across batches


def test_pool_session_is_built_once_per_worker_process() -> None:
    out = list(LocalEngine(workers=2).map(work, list(range(12)), batch_size=2, session=Factory()))
    assert [r.value[0] for r in out] == [2 * i for i in range(12)]
    assert all(not r.value[3] for r in out)  # a worker process is not given the plan
    per_pid: dict[int, list[int]] = {}
    for r in out[::2]:
        per_pid.setdefault(r.value[1], []).append(r.value[2])
    assert 1 <= len(per_pid) <= 2 and sum(max(v) for v in per_pid.values()) == 6  # batches counted per process
