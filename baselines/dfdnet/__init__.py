"""DFDNet (Li et al., ECCV 2020, "Blind Face Restoration via Deep Multi-scale Component
Dictionaries"): our own re-implementation of the official inference (csxmli2016/DFDNet, branch
``whole``), loading the official ``latest_net_G.pth`` and ``DictionaryCenter512`` files unchanged.

Modules: :mod:`.network` (generator), :mod:`.dictionary` (dictionaries and matching), :mod:`.parts`
(component boxes from 68 landmarks), :mod:`.align` (the official FFHQ-template similarity alignment),
:mod:`.method` (the ``dfdnet`` restoration method).
"""

from .dictionary import DictionarySet, match_fast, match_reference
from .network import DFDNetGenerator
from .parts import part_locations

__all__ = ["DFDNetGenerator", "DictionarySet", "match_fast", "match_reference", "part_locations"]
