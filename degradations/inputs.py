"""The HQ images to degrade: a thin adapter over the one test-set reader, :mod:`celebref.testset`
(accepted inputs and id rules: :mod:`celebref.testset.hq`). ``InputItem``/``InputSet`` keep their names here."""

from __future__ import annotations

from celebref.testset import HQItem as InputItem
from celebref.testset import HQSet as InputSet
from celebref.testset import read_hq_set as collect_inputs

__all__ = ["InputItem", "InputSet", "collect_inputs"]
