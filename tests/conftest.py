"""Shared test fixtures.

``golden_dir`` reads ``CELEBREF_GOLDEN_DIR`` (default ``../shared/golden`` next to the project);
``mini_dir`` is ``../shared/fixtures/celebref-mini`` (``CELEBREF_MINI_DIR`` overrides). Tests that need
them skip with a clear reason when they are absent (a user's fresh clone), never fail: the reason starts with
:data:`SHARED_TAG` (use :func:`skip_without_shared`), and the run ends with one line counting those skips and
saying what the missing data is, so a run that skipped every golden test never looks like a full pass.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
#: the start of every skip reason that means "the ../shared test data is not here"
SHARED_TAG = "[needs ../shared]"
SHARED_WHAT = ("golden outputs of the official DMDNet, DFDNet, GFPGAN and CodeFormer code and of the metrics' "
               "reference implementations, run with synthetic weights (../shared/golden, or CELEBREF_GOLDEN_DIR), and "
               "celebref-mini, 76 real aligned faces of 5 identities (../shared/fixtures/celebref-mini, or "
               "CELEBREF_MINI_DIR)")


def skip_without_shared(reason: str) -> None:
    """Skip the running test because shared test data is absent (counted in the run's closing line)."""
    pytest.skip(f"{SHARED_TAG} {reason}")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001 - pytest's signature
    """One line: how many tests skipped for missing ../shared data, and what that data is."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if SHARED_TAG in str(getattr(r, "longrepr", ""))]
    if skipped:
        terminalreporter.write_line(
            f"celebref: {len(skipped)} test(s) skipped because shared test data is missing: {SHARED_WHAT}. "
            "Put that folder beside the project to run them (README, 'Test data').", yellow=True, bold=True)
    elif terminalreporter.stats.get("passed"):
        terminalreporter.write_line(f"celebref: no test skipped for missing shared data ({_golden_root().parent})")


def _golden_root() -> Path:
    return Path(os.environ.get("CELEBREF_GOLDEN_DIR", str(SHARED / "golden"))).resolve()


def _mini_root() -> Path:
    return Path(os.environ.get("CELEBREF_MINI_DIR", str(SHARED / "fixtures" / "celebref-mini"))).resolve()


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    root = _golden_root()
    if not root.is_dir():
        skip_without_shared(f"golden fixtures not found at {root} (set CELEBREF_GOLDEN_DIR or put shared/ beside the project)")
    return root


@pytest.fixture(scope="session")
def mini_dir() -> Path:
    root = _mini_root()
    if not (root / "manifest.csv").is_file():
        skip_without_shared(f"celebref-mini fixture not found at {root} (put shared/ beside the project or set CELEBREF_MINI_DIR)")
    return root


@pytest.fixture(scope="session")
def synth_weights(golden_dir):
    """The shared deterministic weight generator module (``synth_weights.py`` in the golden root)."""
    path = golden_dir / "synth_weights.py"
    if not path.is_file():
        skip_without_shared(f"{path} not found")
    spec = importlib.util.spec_from_file_location("celebref_test_synth_weights", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Never touch the user's weight cache or the network from tests."""
    home = tmp_path_factory.getbasetemp() / "celebref-home"
    monkeypatch.setenv("CELEBREF_HOME", str(home))
    monkeypatch.setenv("CELEBREF_OFFLINE", "1")
    monkeypatch.setenv("CELEBREF_PROGRESS", "0")


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray (2 CPUs) for every Ray test of the session. Actors import test modules (method classes,
    probes) like the driver, so the tests folder goes on their PYTHONPATH."""
    ray = pytest.importorskip("ray", reason="the Ray engine needs the optional extra: pip install 'celebref[ray]'")
    from celebref.engine_ray import RayEngine

    os.environ["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    RayEngine(num_cpus=2).close()  # starts Ray
    yield ray
    ray.shutdown()


@pytest.fixture
def ray_engine(ray_session):
    """A Ray engine on the session's Ray; its actors (kept between maps) are killed after the test, so the next
    test's engines find the 2 CPUs free."""
    from celebref.engine import get_engine

    engine = get_engine("ray")
    yield engine
    engine.close()
