"""Seeded, replayable low-quality synthesis: operations, pipelines and published presets.

* operations on arrays: :mod:`.kernels`, :mod:`.blur`, :mod:`.resize`, :mod:`.noise`, :mod:`.jpeg`, :mod:`.color`
* :class:`~degradations.pipeline.Pipeline`: a recipe as data (YAML/TOML/JSON), ``sample`` / ``apply``
* :mod:`.presets`: ``dfdnet``, ``gfpgan``, ``codeformer``, ``fixed``
* :mod:`.rng`: generators keyed by (seed, image id, stream), never global state
* :mod:`.synthesize`: the test-set writer behind ``celebref degrade``
"""

from .pipeline import Pipeline, load_pipeline
from .presets import PRESETS, get_preset

__all__ = ["PRESETS", "Pipeline", "get_preset", "load_pipeline"]
