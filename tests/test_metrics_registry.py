"""Metric registry, aliases, profiles and the uniform metric description."""

from __future__ import annotations

import json

import pytest

from celebref.errors import ConfigError, UnknownNameError
from evaluation.profiles import get_profile, profile_names
from evaluation.registry import create_metric, metric_names, resolve_name


def test_names_and_aliases():
    assert {"psnr", "ssim", "lpips", "lpips-vgg", "fid", "niqe", "identity", "lmd"} <= set(metric_names())
    assert resolve_name("PSNR") == "psnr"
    assert resolve_name("lpips_alex") == "lpips"
    assert resolve_name("LPIPS_VGG") == "lpips-vgg"
    assert resolve_name("idd") == "identity"
    assert resolve_name("pyiqa:BRISQUE") == "pyiqa:brisque"
    assert resolve_name("pyiqa:MUSIQ") == "musiq"  # the named entry: weights from our store
    with pytest.raises(UnknownNameError, match="did you mean 'psnr'"):
        resolve_name("psrn")


def test_every_metric_declares_its_contract():
    for name in metric_names():
        m = create_metric(name)
        assert m.name == name
        assert m.columns and set(m.higher_is_better) == set(m.columns)
        d = m.describe()
        json.dumps(d)  # recordable in run.json
        assert d["name"] == name and d["columns"] == list(m.columns)
    assert create_metric("fid").dataset_level and not create_metric("psnr").dataset_level
    assert not create_metric("niqe").needs_reference
    assert create_metric("lpips").higher_is_better == {"lpips": False}
    assert create_metric("lpips-vgg").weights == ("vgg16", "lpips-vgg-v0.1")


def test_profiles_pin_conventions_and_options_override():
    assert {"default", "basicsr", "sr-y"} <= set(profile_names())
    sr = get_profile("sr-y")
    m = create_metric("psnr", profile=sr)
    assert m.options == {"crop_border": 4, "y_channel": True}
    assert create_metric("psnr", profile=sr, crop_border=0).options["crop_border"] == 0
    # the basicsr profile reads the generic "lpips" as LPIPS-VGG
    assert create_metric("lpips", profile="basicsr").name == "lpips-vgg"
    assert create_metric("lpips", profile="default").name == "lpips"
    d = get_profile("basicsr").describe()
    assert d["profile"] == "basicsr" and d["aliases"]["lpips"] == "lpips-vgg"
    assert "psnr" in get_profile("default").summary()
    with pytest.raises(UnknownNameError):
        get_profile("nope")


def test_unknown_option_and_missing_weights(monkeypatch):
    with pytest.raises(ConfigError, match="no option"):
        create_metric("psnr", crop=4)
    from celebref.errors import WeightError

    with pytest.raises(WeightError):
        create_metric("lpips").load()  # the temp CELEBREF_HOME has no weights
    with pytest.raises(WeightError):
        create_metric("niqe").load()


def test_pyiqa_bridge_error_is_clear():
    import importlib.util

    if importlib.util.find_spec("pyiqa") is not None:
        pytest.skip("pyiqa is installed here")
    with pytest.raises(ConfigError, match="pip install 'celebref\\[pyiqa\\]'"):
        create_metric("pyiqa:brisque")  # the named pyiqa metrics (musiq, ...) fail at load: tests/test_pyiqa_bridge.py


def test_metric_options_on_the_name_like_methods():
    """``NAME:k=v`` sets a metric's options (typed; unknown or badly typed ones are clear errors)."""
    from celebref.errors import ConfigError
    from evaluation.registry import create_metric

    m = create_metric("ssim:crop_border=4,y_channel=true")
    assert m.options["crop_border"] == 4 and m.options["y_channel"] is True
    assert create_metric("id-input:backend=dlib").options["backend"] == "dlib"
    with pytest.raises(ConfigError, match="crop_border.*must be int"):
        create_metric("ssim:crop_border=four")
    with pytest.raises(ConfigError, match="unknown parameter 'nope'"):
        create_metric("psnr:nope=1")
