"""Parameter distributions of a pipeline recipe (``<dist>`` in :mod:`degradations.pipeline`).

A ``<dist>`` is a constant (number) or a dict: ``{uniform: [a, b]}``, ``{randint: [a, b]}`` (both ends
included), ``{choice: [v1, v2, ...], p: [...]}`` (values may themselves be dists), with optional
post-transforms applied in this order: ``mul``, ``div``, ``add``, ``int: true`` (truncate toward zero).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from celebref.errors import ConfigError

__all__ = ["dist_bounds", "draw"]


def draw(spec: Any, rng: np.random.Generator) -> Any:
    """Draw one value from a ``<dist>`` spec (see the module docstring)."""
    if not isinstance(spec, Mapping):
        return spec
    if "uniform" in spec:
        a, b = spec["uniform"]
        value: Any = float(rng.uniform(float(a), float(b)))
    elif "randint" in spec:
        a, b = spec["randint"]
        value = int(rng.integers(int(a), int(b), endpoint=True))
    elif "choice" in spec:
        options = list(spec["choice"])
        probs = spec.get("p")
        if probs is None:
            idx = int(rng.integers(0, len(options)))
        else:
            p = np.asarray(probs, dtype=np.float64)
            idx = int(np.searchsorted(np.cumsum(p / p.sum()), rng.random(), side="right"))
            idx = min(idx, len(options) - 1)
        value = draw(options[idx], rng)
    else:
        raise ConfigError(f"unknown distribution spec {dict(spec)!r} (use uniform, randint or choice)")
    if "mul" in spec:
        value = value * spec["mul"]
    if "div" in spec:
        value = value / spec["div"]
    if "add" in spec:
        value = value + spec["add"]
    if spec.get("int"):
        value = int(value)
    return value


def dist_bounds(spec: Any) -> tuple[float, float]:
    """The (min, max) a ``<dist>`` can produce (for documentation and range checks)."""
    if not isinstance(spec, Mapping):
        return float(spec), float(spec)
    if "uniform" in spec or "randint" in spec:
        lo, hi = (float(v) for v in spec.get("uniform", spec.get("randint")))
    else:
        bounds = [dist_bounds(o) for o in spec["choice"]]
        lo, hi = min(b[0] for b in bounds), max(b[1] for b in bounds)
    for key, fn in (("mul", lambda v, k: v * k), ("div", lambda v, k: v / k), ("add", lambda v, k: v + k)):
        if key in spec:
            lo, hi = sorted((fn(lo, spec[key]), fn(hi, spec[key])))
    if spec.get("int"):
        lo, hi = float(int(lo)), float(int(hi))
    return lo, hi
