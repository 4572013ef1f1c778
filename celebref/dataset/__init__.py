"""Dataset construction from raw crawls (``celebref build``) and audits of existing datasets (``celebref verify``).

The pipeline is a sequence of stages over per-file records (see :mod:`celebref.dataset.pipeline`):
scan -> hash -> analyse (decode, detect, landmarks, quality scores, FFHQ alignment, aligned landmarks,
embedding, perceptual hashes; cached by content) -> decide (exact dedup, face choice, quality gates,
identity verification, collisions, near-duplicates, limits, overrides) -> split -> write.
Every stage except the analysis is a pure function of the cached analyses and the settings, so
changing a threshold re-decides without re-embedding, and the same inputs give byte-identical outputs.
"""

from .pipeline import BuildConfig, build_dataset  # noqa: F401
from .verify import VerifyConfig, verify_dataset  # noqa: F401
