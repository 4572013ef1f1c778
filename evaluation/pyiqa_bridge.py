"""Optional bridge to pyiqa: the named no-reference metrics ``musiq``, ``maniqa``, ``clip-iqa`` (as the NTIRE 2025
real-world face restoration ``eval.py`` creates them: ``pyiqa.create_metric('musiq' | 'maniqa' | 'clipiqa')``) and
``pyiqa:<name>`` for any other pyiqa metric, when the ``pyiqa`` extra is installed.

Licence: pyiqa (IQA-PyTorch) is under the PolyForm Noncommercial License 1.0.0, and so are the weights it
publishes: these metrics are for **non-commercial** use (:attr:`PyiqaMetric.licence`, recorded by ``describe()``).
pyiqa needs torchvision; it is imported only when a metric is loaded, never at import time.

Weights of the named metrics come from our weight store (``celebref weights list``), so they run offline once the
files are present; nothing is downloaded by pyiqa for them:

* ``musiq``: ``musiq_koniq_ckpt-e95806b9.pth`` (pyiqa ``musiq_arch.default_model_urls['koniq10k']``, pointed at our
  file while the metric is created);
* ``maniqa``: ``ckpt_koniq10k.pt`` (``maniqa_arch.default_model_urls['koniq']``, likewise). The checkpoint holds the
  whole network including its ViT-B/8 backbone (pyiqa loads it with ``strict=True``), so timm's ImageNet weights,
  which MANIQA's constructor would otherwise download, are not fetched (``pretrained=False`` for that one call);
* ``clip-iqa``: OpenAI CLIP ``RN50.pt``, passed as ``backbone=<path>`` (pyiqa's CLIP loader accepts a path).

A missing file gives one message naming each file and where to put it (:class:`~celebref.weights.WeightsUnavailableError`);
a missing pyiqa gives the install line. Both are :class:`~celebref.errors.WeightError`, so ``--skip-unavailable``
skips the metric. Inputs follow pyiqa's convention: float32 RGB ``[0, 1]`` NCHW (from our uint8). Columns are
``pyiqa_<name>``. Values are pyiqa's (no golden here: pyiqa cannot be installed in CI).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from typing import Any, Iterator, Mapping

import torch

from celebref.errors import ConfigError, WeightError

from .base import Metric

LICENCE = "PolyForm Noncommercial 1.0.0 (pyiqa / IQA-PyTorch and its published weights): non-commercial use only"
INSTALL = ("pip install 'celebref[pyiqa]' (pyiqa is licensed for non-commercial use only and requires torchvision)")

#: pyiqa metric -> {weight-store name: how pyiqa gets it}: ``("url", module, key)`` replaces
#: ``module.default_model_urls[key]`` while the metric is created; ``("option", name)`` passes the path as an option.
WEIGHT_ROUTES: dict[str, dict[str, tuple[str, ...]]] = {
    "musiq": {"pyiqa-musiq-koniq": ("url", "pyiqa.archs.musiq_arch", "koniq10k")},
    "maniqa": {"pyiqa-maniqa-koniq": ("url", "pyiqa.archs.maniqa_arch", "koniq")},
    "clipiqa": {"clip-rn50": ("option", "backbone")},
}
#: metrics whose own checkpoint already holds the timm backbone that their constructor asks timm to download
_NO_TIMM_PRETRAINED = {"maniqa": "vit_base_patch8_224"}


class PyiqaUnavailableError(WeightError):
    """The optional pyiqa package is not installed (or cannot be imported)."""


def _pyiqa(reason: str = "pyiqa metrics") -> Any:
    if importlib.util.find_spec("pyiqa") is None:
        raise PyiqaUnavailableError(f"{reason} need the optional pyiqa package: {INSTALL}")
    try:
        return importlib.import_module("pyiqa")
    except Exception as e:  # noqa: BLE001 - e.g. a broken torchvision
        raise PyiqaUnavailableError(f"pyiqa is installed but cannot be imported: {type(e).__name__}: {e}") from None


def resolve_weights(pyiqa_name: str, allow_unverified: bool | None = None) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """Where pyiqa must find each weight of ``pyiqa_name``: ``(url_overrides, options)`` with
    ``url_overrides[(module, key)] = path`` and ``options[name] = path``, every path from our weight store.

    Raises :class:`~celebref.weights.WeightsUnavailableError` naming every missing file (file name, URLs,
    destination). Metrics without routes (``pyiqa:<other>``) get ``({}, {})``: pyiqa fetches their weights itself."""
    from celebref import weights

    routes = WEIGHT_ROUTES.get(pyiqa_name, {})
    if not routes:
        return {}, {}
    weights.require_available({f"metric {pyiqa_name} (pyiqa)": list(routes)}, allow_unverified=allow_unverified)
    urls: dict[tuple[str, str], str] = {}
    options: dict[str, str] = {}
    for wname, route in routes.items():
        path = str(weights.weight_path(wname, allow_unverified=allow_unverified))
        if route[0] == "url":
            urls[(route[1], route[2])] = path
        else:
            options[route[1]] = path
    return urls, options


@contextlib.contextmanager
def pointing_at(url_overrides: Mapping[tuple[str, str], str], no_timm_pretrained: str | None = None) -> Iterator[None]:
    """Within the block, pyiqa's ``default_model_urls`` entries name our local files (pyiqa loads a non-URL path
    directly), and ``timm.create_model(no_timm_pretrained, pretrained=True)`` builds the network without downloading
    weights. Everything is restored on exit."""
    saved: list[tuple[dict, str, Any]] = []
    timm_saved = None
    try:
        for (module, key), path in url_overrides.items():
            table = importlib.import_module(module).default_model_urls
            saved.append((table, key, table.get(key)))
            table[key] = path
        if no_timm_pretrained:
            timm = importlib.import_module("timm")
            timm_saved = (timm, timm.create_model)
            original = timm.create_model

            def create_model(name, *args, **kwargs):
                if name == no_timm_pretrained:
                    kwargs["pretrained"] = False
                return original(name, *args, **kwargs)

            timm.create_model = create_model
        yield
    finally:
        for table, key, old in reversed(saved):
            if old is None:
                table.pop(key, None)
            else:
                table[key] = old
        if timm_saved is not None:
            timm_saved[0].create_model = timm_saved[1]


class PyiqaMetric(Metric):
    """Any pyiqa metric (``pyiqa:<name>``): whether lower is better and whether a reference is needed come from
    pyiqa's own configuration (so pyiqa must be importable when it is created)."""

    needs_reference = False
    defaults: dict[str, Any] = {}
    licence = LICENCE
    noncommercial = True

    def __init__(self, metric: str, device="cpu", **options):
        self.pyiqa_name = metric.lower()
        self.name = "pyiqa:" + self.pyiqa_name
        col = "pyiqa_" + "".join(c if c.isalnum() else "_" for c in self.pyiqa_name)
        self.columns = (col,)
        self.defaults = dict(options)  # pyiqa's own options pass through
        super().__init__(device, **options)
        self.model = None
        self._configure()

    def _configure(self) -> None:
        try:
            mod = _pyiqa()
        except PyiqaUnavailableError as e:
            raise ConfigError(str(e)) from None
        configs = getattr(mod, "DEFAULT_CONFIGS", {})
        if configs and self.pyiqa_name not in configs:
            raise ConfigError(f"pyiqa has no metric {self.pyiqa_name!r} (see pyiqa.list_models())")
        cfg = configs.get(self.pyiqa_name, {})
        self.needs_reference = str(cfg.get("metric_mode", "NR")).upper() == "FR"
        self.higher_is_better = {self.columns[0]: not bool(cfg.get("lower_better", False))}
        self.loaded = False

    def _load(self) -> None:
        mod = _pyiqa(f"metric {self.name}")
        urls, extra = resolve_weights(self.pyiqa_name)
        try:
            with pointing_at(urls, _NO_TIMM_PRETRAINED.get(self.pyiqa_name) if urls else None):
                self.model = mod.create_metric(self.pyiqa_name, device=self.device, as_loss=False,
                                               **{**extra, **self.options})
        except Exception as e:  # noqa: BLE001 - pyiqa downloads the weights of other metrics on demand
            raise WeightError(f"pyiqa could not create {self.pyiqa_name!r}: {type(e).__name__}: {e}") from None
        lower = getattr(self.model, "lower_better", None)
        if lower is not None:
            self.higher_is_better = {self.columns[0]: not bool(lower)}

    def _describe(self) -> dict:
        version = None
        if importlib.util.find_spec("pyiqa") is not None:
            try:
                version = getattr(importlib.import_module("pyiqa"), "__version__", None)
            except Exception:  # noqa: BLE001
                version = None
        return {"reference": "pyiqa", "pyiqa_metric": self.pyiqa_name, "pyiqa_version": version,
                "input_range": "float32 RGB [0, 1]", "licence": self.licence, "noncommercial": self.noncommercial}

    def _compute(self, pred, target):
        x = pred.to(self.device).to(torch.float32) / 255.0
        args = (x, target.to(self.device).to(torch.float32) / 255.0) if self.needs_reference else (x,)
        v = self.model(*args)
        return {self.columns[0]: torch.as_tensor(v).reshape(-1).to(torch.float64)}


class _NamedPyiqa(PyiqaMetric):
    """A pyiqa no-reference metric with a fixed name, direction and weight files: creating it never imports pyiqa;
    loading it checks the extra and our weight files (a :class:`WeightError` naming each missing one)."""

    pyiqa_name = ""
    higher_better = True

    def __init__(self, device="cpu", **options):
        super().__init__(self.pyiqa_name, device, **options)
        self.name = type(self).name

    def _configure(self) -> None:
        self.needs_reference = False
        self.higher_is_better = {self.columns[0]: self.higher_better}

    def _load(self) -> None:
        from celebref import weights

        problems = []
        if importlib.util.find_spec("pyiqa") is None:
            problems.append(f"metric {self.name} needs the optional pyiqa package: {INSTALL}")
        missing = weights.check_available({f"metric {self.name}": list(self.weights)})
        if missing:
            problems.append(weights.WeightsUnavailableError(missing).args[0])
        if problems:
            raise PyiqaUnavailableError("\n".join(problems))
        super()._load()


class MUSIQ(_NamedPyiqa):
    """MUSIQ (Ke et al. 2021) trained on KonIQ-10k, pyiqa ``musiq`` (higher is better, about 0-100)."""

    name = "musiq"
    pyiqa_name = "musiq"
    weights = tuple(WEIGHT_ROUTES["musiq"])


class MANIQA(_NamedPyiqa):
    """MANIQA (Yang et al. 2022) trained on KonIQ-10k, pyiqa ``maniqa`` (higher is better, about 0-1)."""

    name = "maniqa"
    pyiqa_name = "maniqa"
    weights = tuple(WEIGHT_ROUTES["maniqa"])


class CLIPIQA(_NamedPyiqa):
    """CLIP-IQA (Wang et al. 2023) with CLIP RN50 and antonym prompts, pyiqa ``clipiqa`` (higher is better, 0-1)."""

    name = "clip-iqa"
    pyiqa_name = "clipiqa"
    weights = tuple(WEIGHT_ROUTES["clipiqa"])
