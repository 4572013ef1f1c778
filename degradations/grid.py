"""Grid sweeps: ``FACTOR=v1,v2,...`` specs and the cells of their product (each cell forces those factors)."""

from __future__ import annotations

import itertools
from typing import Any, Iterable, Mapping

from celebref.errors import ConfigError

from .factors import OVERRIDE_FACTORS

__all__ = ["grid_cells", "parse_grid"]


def parse_grid(specs: Iterable[str]) -> dict[str, list[Any]]:
    """``["scale=4,8,16", "noise=0,10"]`` -> ``{"scale": [4.0, 8.0, 16.0], "noise": [0.0, 10.0]}``
    (``jpeg`` values may be ``none``)."""
    known = ", ".join(OVERRIDE_FACTORS)
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not values.strip():
            raise ConfigError(f"grid {spec!r}: use FACTOR=v1,v2,... (factors: {known})")
        if key not in OVERRIDE_FACTORS:
            raise ConfigError(f"grid {spec!r}: unknown factor {key!r} (known: {known})")
        if key in grid:
            raise ConfigError(f"grid factor {key!r} given twice")
        vals: list[Any] = []
        for v in values.split(","):
            v = v.strip()
            if key == "jpeg" and v.lower() in ("none", "off"):
                vals.append(None)
                continue
            try:
                vals.append(int(v) if key == "jpeg" else float(v))
            except ValueError:
                raise ConfigError(f"grid {spec!r}: {v!r} is not a number") from None
        grid[key] = vals
    return grid


def _fmt(v: Any) -> str:
    if v is None:
        return "none"
    return f"{v:g}" if isinstance(v, float) else str(v)


def grid_cells(grid: Mapping[str, list[Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every combination, in the order the factors and values were given: ``(folder name, overrides)``."""
    keys = list(grid)
    cells = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        cells.append(("_".join(f"{k}-{_fmt(v)}" for k, v in zip(keys, combo)), dict(zip(keys, combo))))
    return cells
