"""Dataset construction from raw crawls (``celebref build``) and audits of existing datasets (``celebref verify``).

The build is a sequence of stages over per-file records (see :mod:`celebref.dataset.pipeline`):
scan (:mod:`.scan`) -> hash -> analyse (:mod:`.stages`: decode, detect, landmarks, quality scores, FFHQ
alignment, aligned landmarks, embedding, perceptual hashes; cached by content, :mod:`.cache`) -> decide
(:mod:`.decide`: exact dedup, face choice, quality gates, identity verification, collisions, near-duplicates,
limits, overrides) -> plan (:mod:`.plan`: ids, split, probes) -> write (:mod:`.writer`, :mod:`.manifest`).
Settings and their defaults: :mod:`.config`. Every stage except the analysis is a pure function of the cached
analyses and the settings, so changing a threshold re-decides without re-embedding, and the same inputs give
byte-identical outputs.
"""

from .config import BuildConfig, VerifyConfig  # noqa: F401
from .pipeline import build_dataset  # noqa: F401
from .verify import verify_dataset  # noqa: F401
