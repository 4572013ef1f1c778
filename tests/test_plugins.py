"""A plugin distribution adds a restoration method and a metric through entry points, with no edit to celebref:
they appear in `celebref list` and run in `celebref evaluate`.

The plugin is a real distribution: built from a pyproject.toml in tmp_path and installed by pip into a
folder of its own (``--target``), which the celebref processes started here get on their PYTHONPATH, so the
test environment itself is never changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from celebref.imageio import read_image, write_image

PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "celebref-plugin-example"
version = "0.1"

[project.entry-points."celebref.methods"]
flip = "celebref_plugin_example:Flip"

[project.entry-points."celebref.metrics"]
mad = "celebref_plugin_example:MeanAbsDiff"

[tool.setuptools]
py-modules = ["celebref_plugin_example"]
"""

MODULE = '''\
"""A method and a metric living outside celebref."""
from dataclasses import dataclass

import numpy as np
import torch

from baselines.base import RestorationMethod, RestoreResult
from evaluation.base import Metric


@dataclass(frozen=True)
class FlipParams:
    axis: int = 1
    "0: upside down, 1: mirror"


class Flip(RestorationMethod):
    """Mirror the input (a plugin method)."""

    name = "flip"
    description = "mirror the input (example plugin)"
    Params = FlipParams
    input_size = None

    def _restore(self, items):
        return [RestoreResult(it.id, np.ascontiguousarray(np.flip(it.image, axis=self.params["axis"])))
                for it in items]


class MeanAbsDiff(Metric):
    """Mean absolute pixel difference (a plugin metric)."""

    name = "mad"
    columns = ("mad",)
    higher_is_better = {"mad": False}
    aliases = ("mean-abs-diff",)

    def _compute(self, pred, target):
        return {"mad": (pred.to(torch.float64) - target.to(torch.float64)).abs().mean(dim=(1, 2, 3))}
'''


def _celebref(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "celebref", *args], env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("plugin")
    src, site = root / "src", root / "site"
    src.mkdir()
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "celebref_plugin_example.py").write_text(MODULE)
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--no-index", "--target", str(site), str(src)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert list(site.glob("celebref_plugin_example-0.1.dist-info/entry_points.txt"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(Path(__file__).resolve().parents[1]),
                                        env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def test_plugin_entries_are_listed(plugin_env):
    res = _celebref(["list", "methods", "--json"], plugin_env)
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["flip"]["source"] == "celebref-plugin-example"
    assert rows["flip"]["description"] == "mirror the input (example plugin)"
    assert [(p["name"], p["type"], p["default"]) for p in rows["flip"]["parameters"]] == [("axis", "int", 1)]
    assert rows["dmdnet"]["source"] == "celebref"
    res = _celebref(["list", "metrics"], plugin_env)
    assert res.returncode == 0, res.stderr
    (line,) = [ln for ln in res.stdout.splitlines() if ln.startswith("mad ")]
    assert "mean-abs-diff" in line and "celebref-plugin-example" in line


def test_plugin_method_and_metric_run_in_evaluate(plugin_env, tmp_path):
    rng = np.random.default_rng(0)
    expected = {}
    for i in range(3):
        lq = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
        gt = rng.integers(0, 256, (8, 12, 3), dtype=np.uint8)
        write_image(tmp_path / "lq" / f"im{i}.png", lq)
        write_image(tmp_path / "gt" / f"im{i}.png", gt)
        expected[("flip:axis=0", f"im{i}")] = np.abs(lq[::-1].astype(float) - gt).mean()
        expected[("lq", f"im{i}")] = np.abs(lq.astype(float) - gt).mean()
    out = tmp_path / "run"
    res = _celebref(["evaluate", "--lq", str(tmp_path / "lq"), "--gt", str(tmp_path / "gt"),
                     "--methods", "flip:axis=0", "--metrics", "mean-abs-diff", "--device", "cpu", "--out", str(out)],
                    plugin_env)
    assert res.returncode == 0, res.stderr
    per_image = pd.read_csv(out / "per_image.csv")
    assert set(per_image["method"]) == {"lq", "flip:axis=0"}
    for _, row in per_image.iterrows():
        assert row["mad"] == pytest.approx(expected[(row["method"], row["id"])], abs=1e-12)
    flipped = read_image(out / "restored" / "flip:axis=0" / "im1.png")
    np.testing.assert_array_equal(flipped, read_image(tmp_path / "lq" / "im1.png")[::-1])
