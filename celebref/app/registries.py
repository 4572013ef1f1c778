"""Every registry of the toolkit, by the plural name users type (``celebref list KIND``), imported on demand, and
what can be derived from their entries: parameter descriptions and which entries use each weight file.

The registries themselves live beside what they register (:data:`baselines.registry.METHODS`,
:data:`evaluation.registry.METRICS`, ...); this module only knows where.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from celebref.errors import UnknownNameError
from celebref.params import describe_params
from celebref.registry import Entry, Registry


@dataclass(frozen=True)
class RegistryInfo:
    kind: str  # plural, as typed after `celebref list`
    target: str  # "module:attr" of the Registry
    forms: tuple[str, ...] = ()  # spec forms accepted besides the names (e.g. "external:LABEL=<folder>")


KINDS: dict[str, RegistryInfo] = {info.kind: info for info in (
    RegistryInfo("methods", "baselines.registry:METHODS",
                 ("external:LABEL=<folder>  results produced elsewhere, paired by image id",)),
    RegistryInfo("metrics", "evaluation.registry:METRICS", ("pyiqa:<name>  any pyiqa metric (optional extra)",)),
    RegistryInfo("profiles", "evaluation.profiles:PROFILES"),
    RegistryInfo("presets", "degradations.presets:PRESETS"),
    RegistryInfo("ops", "degradations.ops:OPS"),
    RegistryInfo("backends", "celebref.face:FACE_BACKENDS"),
    RegistryInfo("engines", "celebref.engine:ENGINES"),
    RegistryInfo("datasets", "celebref.datasets:DATASETS"),
    RegistryInfo("alignments", "baselines.alignments:ALIGNMENTS"),
)}

#: short names used for the kind of a user of a weight file ("method:dmdnet", "face:dlib", ...)
USER_PREFIX = {"methods": "method", "metrics": "metric", "backends": "face", "profiles": "profile",
               "presets": "preset", "ops": "op", "engines": "engine", "datasets": "dataset",
               "alignments": "alignment"}


def get_registry(kind: str) -> Registry:
    """The registry of ``kind`` (``methods``, ``metrics``, ``profiles``, ``presets``, ``ops``, ``backends``,
    ``engines``; singular forms are accepted), imported now."""
    key = kind.strip().lower()
    if key not in KINDS and key + "s" in KINDS:
        key += "s"
    if key not in KINDS:
        raise UnknownNameError("registry", kind, list(KINDS))
    module, _, attr = KINDS[key].target.partition(":")
    return getattr(importlib.import_module(module), attr)


def entry_params(entry: Entry) -> list[dict[str, Any]]:
    """``[{"name", "type", "default", "help"}]`` of an entry: from its declared params dataclass, else from its
    target's (``params_type()`` of method and metric classes, a ``Params`` attribute, a backend's
    ``option_names`` without types or defaults)."""
    ptype = entry.params_type()
    if ptype is None:
        target = entry.load()
        getter = getattr(target, "params_type", None)
        ptype = getter() if callable(getter) else getattr(target, "Params", None)
        if ptype is None and getattr(target, "option_names", None):
            return [{"name": n, "type": "", "default": None, "help": ""} for n in target.option_names]
    return describe_params(ptype)


def weight_users(kinds: tuple[str, ...] = tuple(KINDS)) -> dict[str, list[str]]:
    """Weight-store name -> ``"kind:name"`` of every registry entry that declares it (``weights=`` of its
    registration, or of a plugin's class), in the order of ``kinds`` then name. A registry that cannot be
    imported is left out."""
    users: dict[str, list[str]] = {}
    for kind in kinds:
        try:
            registry = get_registry(kind)
        except ImportError:
            continue
        for entry in registry.entries():
            for w in entry.weights:
                users.setdefault(w, []).append(f"{USER_PREFIX.get(kind, kind)}:{entry.name}")
    return users
