"""Seeded, replayable low-quality synthesis: operations, pipelines and published presets.

* operations on arrays: :mod:`.kernels`, :mod:`.blur`, :mod:`.resize`, :mod:`.noise`, :mod:`.jpeg`, :mod:`.color`
* :mod:`.ops`: the pipeline steps (registry ``OPS``; plugins add ops through ``celebref.degradation_ops``)
* :class:`~degradations.pipeline.Pipeline`: a recipe as data (YAML/TOML/JSON), ``sample`` / ``apply``;
  :mod:`.dist` (parameter distributions), :mod:`.factors` (the recorded parameter names)
* :mod:`.presets`: registry ``PRESETS`` (``dfdnet``, ``gfpgan``, ``codeformer``, ``fixed``; plugins through
  ``celebref.presets``)
* :mod:`.rng`: generators keyed by (seed, image id, stream), never global state
* :mod:`.synthesize`: the test-set writer behind ``celebref degrade`` (:mod:`.job`, :mod:`.item`,
  :mod:`.manifest`, :mod:`.refs`, :mod:`.grid`)
"""

from .pipeline import Pipeline, load_pipeline
from .presets import PRESETS, Recipe, get_preset

__all__ = ["PRESETS", "Pipeline", "Recipe", "get_preset", "load_pipeline"]
