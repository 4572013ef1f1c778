"""What determines the bytes of an LQ test set: the :class:`Job` (pipeline, preset name, seed, overrides, LQ
size, redraw policy), and nothing else (no worker count, no paths)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from celebref.errors import ConfigError

from .pipeline import Pipeline

__all__ = ["FORMAT_VERSION", "Job", "MAX_REDRAWS"]

FORMAT_VERSION = 1
#: the most redraws ``redraw_untouched`` may ask for (an untouched draw of ``dfdnet`` has p ~ 2e-4: 8 suffice)
MAX_REDRAWS = 1000


@dataclass
class Job:
    """One test set's recipe. ``redraw_untouched`` ``n > 0``: an image that drew no degradation at all is drawn
    again from the sub-streams ``redraw-1 .. redraw-n`` (first draw with a degradation wins); 0: kept as drawn."""

    pipeline: Pipeline
    preset: str
    seed: int
    overrides: dict[str, Any] = field(default_factory=dict)
    lq_size: str | int = "gt"
    redraw_untouched: int = 0

    def __post_init__(self) -> None:
        n = int(self.redraw_untouched)
        if n < 0 or n > MAX_REDRAWS:
            raise ConfigError(f"redraw_untouched must be 0..{MAX_REDRAWS}, got {n}")
        if n and not any(0.0 < float(s.get("p", 1.0)) < 1.0 for s in self.pipeline.steps):
            raise ConfigError(f"redrawing untouched images cannot help with {self.preset!r}: none of its steps is "
                              "applied at random (every p is 0 or 1), so an image that draws no degradation draws none "
                              "on any redraw; leave redraws out (0)")

    def config(self) -> dict[str, Any]:
        """The configuration recorded in ``degrade.json`` (a resume requires the same one)."""
        cfg = {"format_version": FORMAT_VERSION, "preset": self.preset, "seed": int(self.seed), "pipeline": self.pipeline.to_dict(),
               "overrides": dict(sorted(self.overrides.items())), "lq_size": self.lq_size}
        if self.redraw_untouched:  # only when used, so test sets made before the option still resume
            cfg["redraw_untouched"] = int(self.redraw_untouched)
        return cfg

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "Job":
        return cls(Pipeline.from_dict(cfg["pipeline"]), cfg["preset"], int(cfg["seed"]), dict(cfg["overrides"]), cfg["lq_size"],
                   int(cfg.get("redraw_untouched", 0)))
