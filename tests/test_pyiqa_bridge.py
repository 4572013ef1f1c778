"""No-reference metrics through the optional pyiqa extra (issue 20.4): registry entries, weight resolution through
our store, and the missing-file / missing-extra messages. pyiqa itself cannot be installed here (it pulls
torchvision), so nothing below runs a pyiqa network; the routing of our files into pyiqa is checked against
pyiqa's own module layout (``default_model_urls`` tables, read from IQA-PyTorch@01ae427f)."""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest

from celebref import weights
from celebref.app import cli
from celebref.errors import WeightError
from evaluation import pyiqa_bridge as B
from evaluation.registry import METRICS, create_metric, resolve_name

NAMED = {"musiq": ("pyiqa-musiq-koniq", "pyiqa_musiq"), "maniqa": ("pyiqa-maniqa-koniq", "pyiqa_maniqa"),
         "clip-iqa": ("clip-rn50", "pyiqa_clipiqa")}
NO_PYIQA = importlib.util.find_spec("pyiqa") is None


def test_registry_entries_declare_weights_licence_and_columns():
    for name, (weight, column) in NAMED.items():
        e = METRICS.entry(name)
        assert e.weights == (weight,) and "non-commercial" in e.tags and "NON-COMMERCIAL" in e.description
        m = create_metric(name)  # never imports pyiqa
        assert m.name == name and m.columns == (column,) and not m.needs_reference
        assert m.higher_is_better == {column: True} and m.weights == (weight,)
        d = m.describe()
        assert d["noncommercial"] is True and "PolyForm Noncommercial" in d["licence"]
        w = weights.get(weight)
        assert w.urls and w.licence
    assert "pyiqa" not in sys.modules
    assert resolve_name("pyiqa:clipiqa") == "clip-iqa" and resolve_name("clipiqa") == "clip-iqa"
    # the published names carry pyiqa's file names (what pyiqa's default_model_urls download)
    assert weights.get("pyiqa-musiq-koniq").filename == "musiq_koniq_ckpt-e95806b9.pth"
    assert weights.get("pyiqa-maniqa-koniq").filename == "ckpt_koniq10k.pt"
    assert weights.get("clip-rn50").sha256 == "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"


def test_missing_files_are_each_named():
    with pytest.raises(weights.WeightsUnavailableError) as e:
        B.resolve_weights("musiq")
    msg = str(e.value)
    assert "musiq_koniq_ckpt-e95806b9.pth" in msg and "huggingface.co/chaofengc/IQA-PyTorch-Weights" in msg
    assert str(weights.default_path("pyiqa-musiq-koniq")) in msg and "e95806b9" in msg
    assert B.resolve_weights("brisque") == ({}, {})  # not routed: pyiqa fetches it itself


@pytest.mark.skipif(not NO_PYIQA, reason="pyiqa is installed here")
def test_load_without_the_extra_names_the_install_line_and_every_missing_file():
    m = create_metric("maniqa")
    with pytest.raises(WeightError) as e:  # a WeightError: --skip-unavailable skips the metric
        m.load()
    msg = str(e.value)
    assert "pip install 'celebref[pyiqa]'" in msg and "non-commercial" in msg
    assert "ckpt_koniq10k.pt" in msg and str(weights.default_path("pyiqa-maniqa-koniq")) in msg


def test_present_files_are_routed_to_pyiqa(tmp_path, monkeypatch):
    for name in ("pyiqa-musiq-koniq", "pyiqa-maniqa-koniq", "clip-rn50"):
        p = tmp_path / weights.get(name).filename
        p.write_bytes(b"stand-in for " + name.encode())
        monkeypatch.setenv(weights.env_var(name), str(p))
    with pytest.warns(weights.UnverifiedWeightWarning):  # user-pointed files that are not the published ones
        urls, opts = B.resolve_weights("musiq")
    assert urls == {("pyiqa.archs.musiq_arch", "koniq10k"): str(tmp_path / "musiq_koniq_ckpt-e95806b9.pth")}
    assert opts == {}
    with pytest.warns(weights.UnverifiedWeightWarning):
        urls, opts = B.resolve_weights("clipiqa")
    assert urls == {} and opts == {"backbone": str(tmp_path / "RN50.pt")}  # pyiqa's CLIP loader accepts a path


def test_pointing_at_swaps_and_restores_pyiqa_tables(monkeypatch):
    # pyiqa's arch modules keep `default_model_urls` as a module-level dict read when the network is built
    arch = types.ModuleType("fake_pyiqa_arch")
    arch.default_model_urls = {"koniq": "https://example.invalid/ckpt_koniq10k.pt", "pipal": "https://x/y.pth"}
    timm = types.ModuleType("timm")
    calls = []
    timm.create_model = lambda name, pretrained=False, **kw: calls.append((name, pretrained))
    monkeypatch.setitem(sys.modules, "fake_pyiqa_arch", arch)
    monkeypatch.setitem(sys.modules, "timm", timm)
    original = timm.create_model
    with B.pointing_at({("fake_pyiqa_arch", "koniq"): "/store/ckpt_koniq10k.pt"}, "vit_base_patch8_224"):
        assert arch.default_model_urls["koniq"] == "/store/ckpt_koniq10k.pt"
        assert arch.default_model_urls["pipal"] == "https://x/y.pth"
        timm.create_model("vit_base_patch8_224", pretrained=True)
        timm.create_model("other", pretrained=True)
    assert calls == [("vit_base_patch8_224", False), ("other", True)]
    assert arch.default_model_urls["koniq"] == "https://example.invalid/ckpt_koniq10k.pt"
    assert timm.create_model is original
    with pytest.raises(RuntimeError):
        with B.pointing_at({("fake_pyiqa_arch", "koniq"): "/a"}):
            raise RuntimeError("restored even on errors")
    assert arch.default_model_urls["koniq"].startswith("https://")


def test_weights_list_shows_the_pyiqa_files_and_their_users(capsys):
    assert cli.main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "metric:musiq" in out and "metric:clip-iqa" in out and "metric:maniqa" in out
    assert "its file name carries the prefix e95806b9" in out
