"""celebref.engine: the execution seam's contract (order, errors as values, skip, initializer), a worker killed
mid-run costs only its own batch, and workers exit when their parent is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from celebref.engine import LocalEngine, get_engine

sys.path.insert(0, str(Path(__file__).parent))
import _engine_probe as probe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("workers", [1, 2])
def test_results_in_order_with_errors_as_values_and_skips(workers):
    items = list(range(12))
    res = list(get_engine("local", workers=workers).map(probe.square, items, keys=[f"k{i}" for i in items], batch_size=3,
                                                       initializer=probe.init, initargs=("t",), skip={"k2"}))
    assert [r.key for r in res] == [f"k{i}" for i in items] and [r.index for r in res] == items
    assert res[2].skipped and not res[2].ok and res[2].value is None
    assert not res[7].ok and res[7].error == "ValueError: seven is bad"
    assert [r.value for r in res if r.ok] == [("t", i * i) for i in items if i not in (2, 7)]


def test_a_raising_batch_fails_only_its_items():
    res = list(LocalEngine(workers=1).map(probe.raising, [1, 2, 3], batch_size=2))
    assert [r.error for r in res] == ["RuntimeError: the whole batch fails"] * 3


def test_a_worker_killed_mid_run_costs_only_its_own_item():
    """Item 5 kills its worker every time: it alone is reported failed; every other item is computed."""
    items = [(i, "") for i in range(16)]
    res = list(LocalEngine(workers=2).map(probe.kill_on, items, batch_size=1))
    assert [r.ok for r in res] == [i != 5 for i in range(16)]
    assert "worker process died" in res[5].error
    assert [r.value for r in res if r.ok] == [i + 100 for i in range(16) if i != 5]


def test_a_transient_worker_death_loses_nothing(tmp_path):
    """A worker dies once (killed from outside, out of memory): the batches in flight are run again."""
    items = [(i, str(tmp_path / "died-once")) for i in range(16)]
    res = list(LocalEngine(workers=2).map(probe.kill_on, items, batch_size=2))
    assert (tmp_path / "died-once").exists()
    assert all(r.ok for r in res) and [r.value for r in res] == [i + 100 for i in range(16)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_their_parent_is_killed(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import _engine_probe as probe
        from celebref.engine import LocalEngine
        items = [(i, {str(tmp_path)!r}) for i in range(40)]
        for r in LocalEngine(workers=2).map(probe.slow_pid, items, batch_size=1):
            pass
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("pid-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = {int(p.name.split("-")[1]) for p in tmp_path.glob("pid-*")}
        assert len(workers) == 2 and workers <= probe.children(parent.pid)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 5  # "within ~2 s": PR_SET_PDEATHSIG acts at once, the watch thread within 0.5 s
    while any(probe.alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(probe.alive(w) for w in workers), "worker processes outlived their parent"
    snapshot = sorted(p.name for p in tmp_path.iterdir())
    time.sleep(0.7)  # longer than one item's work: a surviving writer would add a file
    assert sorted(p.name for p in tmp_path.iterdir()) == snapshot
