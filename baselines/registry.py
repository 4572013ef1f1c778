"""Method registry: ``--methods dmdnet,dfdnet`` is data, not an if-chain.

Names map lazily to ``module:Class`` so that importing the registry does not import torch models.
A method spec is ``NAME`` or ``NAME:key=value[,key=value]`` (e.g. ``codeformer:w=0.7``), or
``external:LABEL=<folder>`` for results produced elsewhere (paired by image id).
"""

from __future__ import annotations

import importlib
from typing import Any

from celebref.errors import ConfigError, UnknownNameError

from .base import RestorationMethod

METHODS: dict[str, str] = {
    "dmdnet": "baselines.dmdnet.method:DMDNetGeneric",
    "dmdnet-specific": "baselines.dmdnet.method:DMDNetSpecific",
    "dfdnet": "baselines.dfdnet.method:DFDNetMethod",
    "gfpgan": "baselines.gfpgan.method:GFPGANMethod",
    "codeformer": "baselines.codeformer.method:CodeFormerMethod",
    "lq": "baselines.classical:LQMethod",
    "bicubic": "baselines.classical:BicubicMethod",
}
EXTERNAL = "baselines.external:ExternalMethod"


def method_names() -> list[str]:
    return sorted(METHODS)


def _load(target: str) -> type[RestorationMethod]:
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def method_class(name: str) -> type[RestorationMethod]:
    if name not in METHODS:
        raise UnknownNameError("method", name, list(METHODS) + ["external:LABEL=<folder>"])
    return _load(METHODS[name])


def _parse_value(v: str) -> Any:
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


def parse_method_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``'codeformer:w=0.7'`` -> ``('codeformer', {'w': 0.7})``; ``'external:x=/p'`` -> ``('external', {'label': 'x', 'folder': '/p'})``."""
    spec = spec.strip()
    name, _, rest = spec.partition(":")
    if name == "external":
        label, eq, folder = rest.partition("=")
        if not eq or not label or not folder:
            raise ConfigError(f"external methods are written external:LABEL=<folder>, got {spec!r}")
        return "external", {"label": label, "folder": folder}
    params: dict[str, Any] = {}
    if rest:
        for part in rest.split(","):
            k, eq, v = part.partition("=")
            if not eq or not k:
                raise ConfigError(f"bad method parameter {part!r} in {spec!r} (write NAME:key=value)")
            params[k.strip()] = _parse_value(v.strip())
    return name, params


def split_method_list(text: str) -> list[str]:
    """Split ``--methods`` on commas that start a new method (``codeformer:w=0.5,lq`` stays two specs
    only when the part after a comma is not ``key=value``)."""
    specs: list[str] = []
    for part in [p for p in text.split(",") if p.strip()]:
        if specs and "=" in part and ":" not in part and not part.strip().startswith("external"):
            specs[-1] += "," + part  # continuation of NAME:k=v,k2=v2
        else:
            specs.append(part.strip())
    return specs


def create_method(spec: str, **common: Any) -> RestorationMethod:
    """Instantiate a method from its spec. ``common`` = device, precision, landmark_policy."""
    name, params = parse_method_spec(spec)
    cls = _load(EXTERNAL) if name == "external" else method_class(name)
    return cls(**common, **params)
