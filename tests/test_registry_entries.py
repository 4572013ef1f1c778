"""The registries of methods, metrics, profiles and face backends: what each entry declares agrees with the code
it names, `NAME:k=v` specs are typed by the params dataclasses, `celebref list` shows every entry, and the weight
store's "used by" is derived from the entries."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from baselines.registry import METHODS, create_method, method_class, parse_method_spec
from celebref import weights as W
from celebref.app.cli import main
from celebref.app.registries import KINDS, get_registry, weight_users
from celebref.errors import ConfigError, UnknownNameError
from celebref.face import FACE_BACKENDS, get_backend
from celebref.imageio import write_image
from evaluation.base import Metric
from evaluation.profiles import PROFILES, Profile
from evaluation.registry import METRICS, create_metric, resolve_name


# --- entries agree with their targets -------------------------------------------------------------

def test_method_entries_match_their_classes():
    assert set(METHODS.names(source="celebref")) == {"dmdnet", "dmdnet-specific", "dfdnet", "gfpgan", "codeformer",
                                                      "restoreformer", "restoreformer++", "lq", "bicubic", "asffnet"}
    for e in METHODS.entries(source="celebref"):
        cls = e.load()
        assert cls.name == e.name and cls.description == e.description and e.description
        assert tuple(cls.weights) == e.weights, e.name
        assert cls.params_type() is e.params_type(), e.name  # one dataclass, declared once
        if e.params_type() is not None:
            assert dataclasses.fields(e.params_type()) and e.params_type().__dataclass_params__.frozen
    assert method_class("DMD") is method_class("dmdnet")  # alias, case-insensitive


def test_dfdnet_matching_values_are_the_networks():
    from typing import get_args, get_type_hints

    from baselines.dfdnet.network import MATCHING_MODES
    from baselines.params import DFDNetParams

    assert get_args(get_type_hints(DFDNetParams)["matching"]) == MATCHING_MODES


def test_metric_entries_match_their_classes():
    assert {"psnr", "ssim", "lpips", "lpips-vgg", "fid", "niqe", "identity", "lmd"} <= set(METRICS.names())
    for e in METRICS.entries(source="celebref"):
        cls = e.load()
        assert cls.name == e.name and e.description
        assert tuple(cls.weights) == e.weights, e.name
    # aliases are registry aliases (no separate table)
    assert METRICS.entry("lpips").aliases == ("lpips-alex", "lpips-alexnet")
    assert resolve_name("deg") == "identity" and resolve_name("lmd68") == "lmd"


def test_profiles_and_backends_are_registries():
    assert set(PROFILES.names()) >= {"default", "basicsr", "sr-y"}
    for e in PROFILES.entries():
        p = e.load()
        assert isinstance(p, Profile) and p.name == e.name and p.description == e.description
    assert set(FACE_BACKENDS.names()) >= {"dlib", "insightface"}
    for e in FACE_BACKENDS.entries(source="celebref"):
        cls = e.load()
        assert cls.name == e.name and cls.option_names and e.weights


def test_every_declared_weight_is_in_the_catalogue():
    catalogue = {w.name for w in W.entries()}
    for kind in KINDS:
        for e in get_registry(kind).entries():
            assert set(e.weights) <= catalogue, (kind, e.name, e.weights)


# --- specs are typed by the params dataclasses ----------------------------------------------------

def test_specs_are_typed_without_trial_casts():
    assert parse_method_spec("codeformer:w=1") == ("codeformer", {"w": 1.0})
    assert isinstance(parse_method_spec("codeformer:w=1")[1]["w"], float)
    assert parse_method_spec("gfpgan:seed=7") == ("gfpgan", {"seed": 7})
    assert parse_method_spec("gfpgan:seed=none") == ("gfpgan", {"seed": None})
    assert parse_method_spec("dfdnet:channels_last=off,matching=reference") == \
        ("dfdnet", {"channels_last": False, "matching": "reference"})
    assert parse_method_spec("DMD-Specific:dict_cache=2") == ("dmdnet-specific", {"dict_cache": 2})


@pytest.mark.parametrize("spec, words", [
    ("gfpgan:seed=abc", ("'seed'", "int | None", "'abc'")),
    ("codeformer:w=high", ("'w'", "float", "'high'")),
    ("codeformer:w=1.5", ("'w'", "[0, 1]")),
    ("dfdnet:matching=slow", ("'matching'", "'fast' | 'reference'")),
    ("dfdnet:channels_last=maybe", ("'channels_last'", "bool")),
    ("dmdnet:face_backend=dlbi", ("'face_backend'", "dlib", "insightface")),
    ("codeformer:fidelity=0.3", ("'fidelity'", "w (float)")),
    ("lq:w=1", ("'lq'", "no parameters")),
])
def test_bad_parameters_name_the_parameter_and_its_type(spec, words):
    with pytest.raises(ConfigError) as err:
        create_method(spec)
    for w in words:
        assert w in str(err.value), (spec, str(err.value))


def test_method_describe_comes_from_its_params_dataclass():
    m = create_method("codeformer:w=0.7")
    d = m.describe()
    assert d["label"] == "codeformer:w=0.7" and d["params"] == {"w": 0.7}
    (p,) = d["parameters"]
    assert p["name"] == "w" and p["type"] == "float" and p["default"] == 0.5 and "fidelity" in p["help"]
    assert m.config == type(m.config)(w=0.7)  # the typed dataclass instance
    json.dumps(d)


def test_unknown_names_suggest():
    with pytest.raises(UnknownNameError, match="did you mean 'codeformer'"):
        create_method("codefromer")
    with pytest.raises(UnknownNameError, match="did you mean 'basicsr'"):
        get_registry("profiles").get("basicrs")
    with pytest.raises(UnknownNameError, match="did you mean 'dlib'"):
        get_backend("dlbi")


def test_face_backend_options_are_declared():
    with pytest.raises(ConfigError, match=r"no option colour \(options: detector, upsample\)"):
        get_backend("dlib", colour=1)


# --- the Metric contract declares the dataset-level methods ---------------------------------------

class _MeanColour(Metric):
    """A tiny real dataset-level metric: distance between the mean RGB colours of two sets."""

    name = "mean-colour"
    columns = ("mean_colour",)
    higher_is_better = {"mean_colour": False}
    dataset_level = True

    def features(self, images):
        return images.to(torch.float64).mean(dim=(2, 3)).numpy()

    def score(self, pred_features, reference):
        return float(np.abs(np.mean(pred_features, 0) - np.mean(reference, 0)).sum())


def test_dataset_level_contract(tmp_path):
    a = np.zeros((4, 4, 3), np.uint8)
    a[..., 0] = 200  # pure red: RGB order is kept
    b = np.full((4, 4, 3), 10, np.uint8)
    for i, img in enumerate((a, b, a)):
        write_image(tmp_path / f"{i}.png", img)
    m = _MeanColour()
    feats = m.features_for_paths([tmp_path / f"{i}.png" for i in range(3)], chunk=2)
    np.testing.assert_allclose(feats, [[200, 0, 0], [10, 10, 10], [200, 0, 0]])
    assert m.score(feats, feats[:1]) == pytest.approx(abs(410 / 3 - 200) + 2 * abs(10 / 3))
    with pytest.raises(ConfigError, match="dataset-level"):
        m.compute(torch.zeros((1, 3, 4, 4), dtype=torch.uint8), torch.zeros((1, 3, 4, 4), dtype=torch.uint8))
    psnr = create_metric("psnr")
    with pytest.raises(NotImplementedError, match="not dataset-level"):
        psnr.features(torch.zeros((1, 3, 4, 4), dtype=torch.uint8))
    with pytest.raises(NotImplementedError, match="not dataset-level"):
        psnr.score(None, None)


# --- celebref list --------------------------------------------------------------------------------

def test_list_methods_table(capsys):
    assert main(["list", "methods"]) == 0
    out = capsys.readouterr().out
    for name in METHODS.names():
        assert name in out
    assert "w=0.5 (float)" in out and "dfdnet-generator" in out and "celebref" in out
    assert "external:LABEL=<folder>" in out
    assert main(["list", "methods", "dmd*"]) == 0
    out = capsys.readouterr().out
    assert "dmdnet-specific" in out and "codeformer" not in out and "gfpgan" not in out


def test_list_json_for_every_kind(capsys):
    for kind in ("methods", "metrics", "profiles", "backends"):
        assert main(["list", kind, "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [r["name"] for r in rows] == get_registry(kind).names()
    assert main(["list", "metrics", "lpips*", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"lpips", "lpips-vgg"}
    assert rows["lpips-vgg"]["weights"] == ["vgg16", "lpips-vgg-v0.1"]
    assert {"name": "max_batch", "type": "int", "default": 4} == {k: rows["lpips"]["parameters"][0][k]
                                                                  for k in ("name", "type", "default")}
    assert main(["list", "methods", "nothing*"]) == 3  # a documented code: finished, nothing to show


# --- weights: used_by is derived, source and sha256 are shown -------------------------------------

def test_weight_users_are_derived_from_the_registries():
    users = weight_users()
    assert users["dmdnet"] == ["method:dmdnet", "method:dmdnet-specific"]
    assert users["dfdnet-dictionary"] == ["method:dfdnet"]
    assert users["vgg16"] == ["metric:lpips-vgg"] and users["fid-inception"] == ["metric:fid"]
    assert users["insightface-buffalo_l"] == ["face:insightface"]
    assert "face:dlib" in users["dlib-shape-predictor-68"]


def test_weights_list_shows_users_source_and_sha256(capsys):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    block = out[out.index("\ncodeformer "):].split("\n")[1:5]
    text = "\n".join(block)
    assert "used by: method:codeformer" in out
    assert f"sha256: {W.get('codeformer').sha256}" in text
    assert "source: https://github.com/sczhou/CodeFormer/releases/" in text
    dmd = out[out.index("\ndmdnet "):].split("\n")[1:4]
    assert any("sha256: not published" in line for line in dmd)
    dfd = "\n".join(out[out.index("\ndfdnet-generator "):].split("\n")[1:4])
    assert "source: manual: https://drive.google.com/" in dfd
    assert main(["weights", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["dmdnet"]["used_by"] == ["method:dmdnet", "method:dmdnet-specific"]
    assert rows["codeformer"]["published_sha256"] == W.get("codeformer").sha256
    assert rows["dmdnet"]["published_sha256"] is None
