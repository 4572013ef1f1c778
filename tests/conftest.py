"""Shared test fixtures.

``golden_dir`` reads ``CELEBREF_GOLDEN_DIR`` (default ``../shared/golden`` next to the project);
``mini_dir`` is ``../shared/fixtures/celebref-mini`` (``CELEBREF_MINI_DIR`` overrides). Tests that need
them skip with a clear reason when they are absent (a user's fresh clone), never fail.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _golden_root() -> Path:
    return Path(os.environ.get("CELEBREF_GOLDEN_DIR", str(SHARED / "golden"))).resolve()


def _mini_root() -> Path:
    return Path(os.environ.get("CELEBREF_MINI_DIR", str(SHARED / "fixtures" / "celebref-mini"))).resolve()


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    root = _golden_root()
    if not root.is_dir():
        pytest.skip(f"golden fixtures not found at {root} (set CELEBREF_GOLDEN_DIR or put shared/ beside the project)")
    return root


@pytest.fixture(scope="session")
def mini_dir() -> Path:
    root = _mini_root()
    if not (root / "manifest.csv").is_file():
        pytest.skip(f"celebref-mini fixture not found at {root} (put shared/ beside the project or set CELEBREF_MINI_DIR)")
    return root


@pytest.fixture(scope="session")
def synth_weights(golden_dir):
    """The shared deterministic weight generator module (``synth_weights.py`` in the golden root)."""
    path = golden_dir / "synth_weights.py"
    if not path.is_file():
        pytest.skip(f"{path} not found")
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
