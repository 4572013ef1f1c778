"""Presets: 10,000 draws stay inside the published ranges and follow the recipes' probabilities.

The numbers below are the published recipes (DFDNet data/aligned_dataset.py; GFPGAN
train_gfpgan_v1.yml; CodeFormer CodeFormer_stage3.yml), written out as the reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from celebref.errors import ConfigError, UnknownNameError
from degradations.pipeline import Pipeline, load_pipeline
from degradations.presets import get_preset

stats = pytest.importorskip("scipy.stats")
N = 10_000


def _draws(name: str) -> pd.DataFrame:
    pipe, overrides = get_preset(name)
    return pd.DataFrame([pipe.sample(0, f"img{i:05d}", overrides) for i in range(N)])


@pytest.fixture(scope="module")
def dfdnet_draws():
    return _draws("dfdnet")


@pytest.fixture(scope="module")
def gfpgan_draws():
    return _draws("gfpgan")


@pytest.fixture(scope="module")
def codeformer_draws():
    return _draws("codeformer")


def _rate_ok(flags: pd.Series, p: float) -> None:
    """The observed rate is within 4.5 binomial standard deviations of p."""
    n = len(flags)
    sd = math.sqrt(p * (1 - p) / n)
    assert abs(flags.mean() - p) < 4.5 * sd, f"rate {flags.mean():.4f}, expected {p}"


def _uniform_discrete_ok(values: pd.Series, support: np.ndarray) -> None:
    vals = np.round(values.to_numpy(dtype=float), 6)
    support = np.round(np.asarray(support, dtype=float), 6)
    assert set(np.unique(vals)) <= set(support), f"values outside the support: {sorted(set(np.unique(vals)) - set(support))[:5]}"
    counts = np.array([(vals == s).sum() for s in support])
    assert counts.min() > 0
    assert stats.chisquare(counts).pvalue > 1e-4


def _uniform_continuous_ok(values: pd.Series, lo: float, hi: float) -> None:
    v = values.to_numpy(dtype=float)
    assert v.min() >= lo and v.max() <= hi
    assert stats.kstest(v, "uniform", args=(lo, hi - lo)).pvalue > 1e-4


def test_dfdnet_draws_follow_the_recipe(dfdnet_draws):
    d = dfdnet_draws
    _rate_ok(d["blur_applied"], 0.9)
    blurred = d[d["blur_applied"]]
    _rate_ok(blurred["blur_kernel"] == "gaussian", 0.65)
    assert set(blurred["blur_kernel"]) == {"gaussian", "motion"}
    g = blurred[blurred["blur_kernel"] == "gaussian"]
    _uniform_discrete_ok(g["blur_ksize"], np.arange(3, 36, 2))          # randint(1, 17) * 2 + 1
    _uniform_discrete_ok(g["blur_sigma"], np.arange(3, 21) / 10)        # randint(3, 20) / 10
    m = blurred[blurred["blur_kernel"] == "motion"]
    _uniform_discrete_ok(m["blur_ksize"], np.arange(7, 36, 2))          # our motion kernels: 7..35 like the .mat files
    assert m["blur_sigma"].isna().all() and m["blur_motion_seed"].notna().all()
    assert d.loc[~d["blur_applied"], "blur_sigma"].isna().all() and (d.loc[~d["blur_applied"], "blur_kernel"] == "none").all()
    _rate_ok(d["scale_applied"], 0.95)
    _uniform_discrete_ok(d.loc[d["scale_applied"], "scale"], np.arange(20, 101) / 10)  # randint(20, 100) / 10
    assert d.loc[~d["scale_applied"], "scale"].isna().all()
    _rate_ok(d["noise_applied"], 0.9)
    _uniform_discrete_ok(d.loc[d["noise_applied"], "noise_sigma"], np.arange(1, 11))   # np.random.randint(1, 11)
    assert not d["noise_gray"].any()
    _rate_ok(d["jpeg_applied"], 0.6)
    _uniform_discrete_ok(d.loc[d["jpeg_applied"], "jpeg_quality"], np.arange(40, 81))   # randint(40, 80)
    assert not d["color_applied"].any()
    # steps draw independently (own streams): JPEG is not correlated with noise
    table = pd.crosstab(d["noise_applied"], d["jpeg_applied"])
    assert stats.chi2_contingency(table).pvalue > 1e-4


@pytest.mark.parametrize("name,scale,noise", [("gfpgan", (0.8, 8.0), (0.0, 20.0)), ("codeformer", (1.0, 12.0), (0.0, 15.0))])
def test_basicsr_face_presets_follow_their_recipes(name, scale, noise, request):
    d = request.getfixturevalue(f"{name}_draws")
    assert d["blur_applied"].all() and d["scale_applied"].all() and d["noise_applied"].all() and d["jpeg_applied"].all()
    assert (d["blur_ksize"] == 41).all()
    _rate_ok(d["blur_kernel"] == "gaussian", 0.5)                       # kernel_prob [0.5, 0.5]
    assert set(d["blur_kernel"]) == {"gaussian", "aniso"}
    iso = d[d["blur_kernel"] == "gaussian"]
    _uniform_continuous_ok(iso["blur_sigma"], 0.1, 10.0)
    assert iso["blur_angle"].isna().all() and (iso["blur_sigma_x"] == iso["blur_sigma_y"]).all()
    an = d[d["blur_kernel"] == "aniso"]
    _uniform_continuous_ok(an["blur_sigma_x"], 0.1, 10.0)
    _uniform_continuous_ok(an["blur_sigma_y"], 0.1, 10.0)
    _uniform_continuous_ok(an["blur_angle"], -math.pi, math.pi)
    np.testing.assert_allclose(an["blur_sigma"], np.sqrt(an["blur_sigma_x"] * an["blur_sigma_y"]))
    _uniform_continuous_ok(d["scale"], *scale)
    _uniform_continuous_ok(d["noise_sigma"], *noise)
    _uniform_discrete_ok(d["jpeg_quality"], np.arange(60, 100))         # int(U[60, 100])
    assert not (d["shift_applied"].any() or d["gray_applied"].any())


def test_optional_colour_steps_follow_their_probabilities():
    pipe, _ = get_preset("gfpgan", color_jitter=True, gray=True)
    d = pd.DataFrame([pipe.sample(3, str(i)) for i in range(4000)])
    _rate_ok(d["shift_applied"], 0.3)
    shifts = d.loc[d["shift_applied"], ["shift_r", "shift_g", "shift_b"]].to_numpy()
    assert np.abs(shifts).max() <= 20 / 255
    _rate_ok(d["gray_applied"], 0.01)
    pipe, _ = get_preset("dfdnet", color_jitter=True)
    s = pipe.sample(0, "a")
    assert s["color_applied"] and all(0.7 <= s[f"color_{k}"] <= 1.3 for k in ("brightness", "contrast", "saturation"))
    assert sorted(s["color_order"].split(",")) == ["brightness", "contrast", "saturation"]


def test_sampling_is_a_pure_function_of_seed_and_id():
    pipe, _ = get_preset("dfdnet")
    a = pipe.sample(7, "00005/3")
    assert json.dumps(a, sort_keys=True) == json.dumps(pipe.sample(7, "00005/3"), sort_keys=True)
    assert json.dumps(a, sort_keys=True) != json.dumps(pipe.sample(8, "00005/3"), sort_keys=True)


def test_overrides_force_one_factor_and_keep_the_other_draws():
    pipe, _ = get_preset("dfdnet")
    base = pipe.sample(0, "x")
    forced = pipe.sample(0, "x", {"scale": 4.0, "jpeg": None})
    assert forced["scale"] == 4.0 and forced["scale_applied"] and not forced["jpeg_applied"] and math.isnan(forced["jpeg_quality"])
    for k in ("blur_kernel", "blur_sigma", "blur_ksize", "noise_sigma", "noise_seed"):
        assert (base[k] == forced[k]) or (isinstance(base[k], float) and math.isnan(base[k]) and math.isnan(forced[k]))
    zero = pipe.sample(0, "x", {"noise": 0.0, "blur": 0.0})
    assert not zero["noise_applied"] and zero["noise_sigma"] == 0.0 and not zero["blur_applied"] and zero["blur_sigma"] == 0.0
    with pytest.raises(ConfigError):
        pipe.sample(0, "x", {"contrast": 2})


@pytest.mark.parametrize("fmt", ["yaml", "toml", "json"])
def test_pipeline_files_round_trip_to_identical_outputs(tmp_path, fmt):
    pipe, _ = get_preset("dfdnet")
    data = pipe.to_dict()
    path = tmp_path / f"recipe.{fmt}"
    if fmt == "yaml":
        path.write_text(yaml.safe_dump(data))
    elif fmt == "json":
        path.write_text(json.dumps(data))
    else:
        path.write_text(_to_toml(data))
    loaded = load_pipeline(path)
    assert loaded.to_dict() == json.loads(json.dumps(data))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for i in range(5):
        a, pa = pipe.run(img, 1, f"id{i}")
        b, pb = loaded.run(img, 1, f"id{i}")
        np.testing.assert_array_equal(a, b)


def _to_toml(data: dict) -> str:
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return "{" + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + "}"

    lines = [f"{k} = {val(v)}" for k, v in data.items() if k != "steps"]
    for step in data["steps"]:
        lines.append("[[steps]]")
        lines += [f"{k} = {val(v)}" for k, v in step.items()]
    return "\n".join(lines) + "\n"


def test_bad_pipelines_and_names_are_config_errors(tmp_path):
    with pytest.raises(UnknownNameError):
        get_preset("dfdnett")
    with pytest.raises(ConfigError):
        Pipeline.from_dict({"steps": [{"op": "sharpen"}]})
    with pytest.raises(ConfigError):
        Pipeline.from_dict({"steps": [{"op": "blur", "kernels": [{"type": "box"}]}]})
    with pytest.raises(ConfigError):
        Pipeline.from_dict({"dtype": "uint16", "steps": []})
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [unclosed")
    with pytest.raises(ConfigError):
        load_pipeline(bad)
    with pytest.raises(ConfigError):
        get_preset("fixed", blur=-1)


# --- registries, typed parameters, TOML parser fallback ----------------------------------------------------

def test_presets_live_in_one_registry_with_typed_parameters():
    from celebref.params import describe_params
    from degradations.presets import PRESETS, Recipe, make_recipe, preset_from_spec

    assert set(PRESETS.names()) >= {"dfdnet", "gfpgan", "codeformer", "fixed"}
    for e in PRESETS.entries():
        assert e.description and e.params_type() is not None
    assert "DFDNet" in PRESETS.entry("dfdnet").description and "aligned_dataset.py" in PRESETS.entry("dfdnet").description
    assert [d["name"] for d in describe_params(PRESETS.entry("dfdnet").params_type())] == ["color_jitter"]
    name, recipe = preset_from_spec("fixed:blur=2,scale=4,jpeg=none")
    assert name == "fixed" and isinstance(recipe, Recipe)
    assert dict(recipe.overrides) == {"blur": 2.0, "scale": 4.0, "noise": 0.0, "jpeg": None}
    assert make_recipe("dfdnet", {"color_jitter": "true"})[1].pipeline.step("color_enhance")["p"] == 1.0
    with pytest.raises(ConfigError, match="parameter 'blur' must be float"):
        preset_from_spec("fixed:blur=strong")
    with pytest.raises(ConfigError, match="unknown parameter 'gray'.*color_jitter"):
        get_preset("dfdnet", gray=True)
    with pytest.raises(UnknownNameError, match="did you mean 'gfpgan'"):
        get_preset("gfpgam")


def test_a_plugin_op_runs_in_a_pipeline_and_records_its_parameters():
    """Ops come from one registry: an op added there (as a plugin's entry point would) is usable by name."""
    from degradations.ops import OPS, ApplyContext, Op

    class Invert(Op):
        name = "test_invert"
        defaults = {"invert_applied": False, "invert_level": float("nan")}

        def sample(self, step, rng, applied, params):
            level = float(rng.uniform(0.5, 1.0))
            if applied:
                params.update(invert_applied=True, invert_level=level)

        def apply(self, x, step, params, ctx: ApplyContext):
            return (255 - x) if params.get("invert_applied") else None

    if "test_invert" not in OPS:
        OPS.register("test_invert", Invert, description="test op")
    pipe = Pipeline.from_dict({"dtype": "uint8", "steps": [{"op": "test_invert", "p": 1.0}]})
    params = pipe.sample(0, "a")
    assert params["invert_applied"] and 0.5 <= params["invert_level"] <= 1.0 and not params["blur_applied"]
    img = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    np.testing.assert_array_equal(pipe.apply(img, params), 255 - img)
    with pytest.raises(UnknownNameError, match="did you mean 'test-invert'"):
        Pipeline.from_dict({"steps": [{"op": "test_inverr"}]})


def test_toml_pipelines_without_a_toml_parser_say_what_is_missing(tmp_path, monkeypatch):
    """Python 3.10 has no tomllib: tomli is used; when neither is there, the message names the package."""
    import sys

    pipe, _ = get_preset("dfdnet")
    path = tmp_path / "recipe.toml"
    path.write_text(_to_toml(pipe.to_dict()))
    real = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    monkeypatch.setitem(sys.modules, "tomllib", None)  # as on Python 3.10 ...
    monkeypatch.setitem(sys.modules, "tomli", real)    # ... with the tomli backport installed
    assert load_pipeline(path).to_dict() == json.loads(json.dumps(pipe.to_dict()))
    monkeypatch.setitem(sys.modules, "tomli", None)
    with pytest.raises(ConfigError) as e:
        load_pipeline(path)
    assert "tomli" in str(e.value) and "cannot parse" not in str(e.value)
