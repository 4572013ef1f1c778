"""Optional bridge to pyiqa (``pyiqa:<name>``, e.g. ``pyiqa:musiq``), when the ``pyiqa`` extra is installed.

pyiqa is licensed for non-commercial use and needs torchvision; it is never imported unless asked for.
Inputs follow pyiqa's convention: float32 RGB ``[0, 1]`` NCHW (converted from our uint8). The column is
``pyiqa_<name>``; whether lower is better and whether a reference is needed come from pyiqa's own metric
configuration. Values are pyiqa's, not re-verified against a golden here.
"""

from __future__ import annotations

import importlib
import importlib.util

import torch

from celebref.errors import ConfigError, WeightError

from .base import Metric


def _pyiqa():
    if importlib.util.find_spec("pyiqa") is None:
        raise ConfigError("pyiqa metrics need the optional pyiqa package: pip install 'celebref[pyiqa]' "
                          "(note: pyiqa is for non-commercial use and requires torchvision)")
    try:
        return importlib.import_module("pyiqa")
    except Exception as e:  # noqa: BLE001 - e.g. a broken torchvision
        raise ConfigError(f"pyiqa is installed but cannot be imported: {type(e).__name__}: {e}") from None


class PyiqaMetric(Metric):
    needs_reference = False
    defaults = {}

    def __init__(self, metric: str, device="cpu", **options):
        self.pyiqa_name = metric.lower()
        self.name = "pyiqa:" + self.pyiqa_name
        col = "pyiqa_" + "".join(c if c.isalnum() else "_" for c in self.pyiqa_name)
        self.columns = (col,)
        self.defaults = dict(options)  # pyiqa's own options pass through
        super().__init__(device, **options)
        mod = _pyiqa()
        configs = getattr(mod, "DEFAULT_CONFIGS", {})
        if configs and self.pyiqa_name not in configs:
            raise ConfigError(f"pyiqa has no metric {self.pyiqa_name!r} (see pyiqa.list_models())")
        cfg = configs.get(self.pyiqa_name, {})
        self.needs_reference = str(cfg.get("metric_mode", "NR")).upper() == "FR"
        self.higher_is_better = {col: not bool(cfg.get("lower_better", False))}
        self.loaded = False
        self.model = None

    def _load(self) -> None:
        mod = _pyiqa()
        try:
            self.model = mod.create_metric(self.pyiqa_name, device=self.device, as_loss=False, **self.options)
        except Exception as e:  # noqa: BLE001 - pyiqa downloads weights on demand
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
        return {"reference": "pyiqa", "pyiqa_version": version, "input_range": "float32 RGB [0, 1]"}

    def _compute(self, pred, target):
        x = pred.to(self.device).to(torch.float32) / 255.0
        args = (x, target.to(self.device).to(torch.float32) / 255.0) if self.needs_reference else (x,)
        v = self.model(*args)
        return {self.columns[0]: torch.as_tensor(v).reshape(-1).to(torch.float64)}
