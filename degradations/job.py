"""What determines the bytes of an LQ test set: the :class:`Job` (pipeline, preset name, seed, overrides, LQ
size, redraw policy), and nothing else (no worker count, no paths)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .pipeline import Pipeline

__all__ = ["FORMAT_VERSION", "Job"]

FORMAT_VERSION = 1


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
