"""Model-weight store: every external file the toolkit uses, declared once; where it lives; whether it is
the published file; how to get it; how to load it safely.

``from celebref import weights`` gives the whole public API (callers need not know the modules):

* :mod:`.catalogue` — the declarations (:class:`WeightFile`, :data:`REGISTRY`, :func:`get`, :func:`entries`).
* :mod:`.locations` — cache root, default paths, local overrides (:func:`home`, :func:`resolve`,
  :func:`env_var`, :func:`set_override`).
* :mod:`.integrity` — sizes, sha256s (cached) and :func:`status`.
* :mod:`.store` — :func:`weight_path` (verified path, never downloads), :func:`check_available` /
  :func:`require_available` (everything a run needs, one message), explicit acceptance of unverified
  files (:func:`allowing_unverified`, :func:`unverified_uses`), :func:`fetch`.
* :mod:`.checkpoint` — :func:`load_torch_checkpoint` (``weights_only=True``), :func:`unwrap_state_dict`.
* :mod:`.messages` — the instructions and error messages.
"""

from __future__ import annotations

from .catalogue import KINDS, REGISTRY, WeightFile, as_dict, entries, get
from .checkpoint import load_torch_checkpoint, unwrap_state_dict
from .integrity import BAD_HASH, MISSING, NOT_A_FILE, PRESENT, UNVERIFIED, WeightStatus, file_sha256, kind_problem, status
from .locations import default_path, env_var, home, is_offline, read_overrides, resolve, set_override, weights_dir
from .messages import MissingWeight, WeightsUnavailableError, instructions
from .store import (
    ALLOW_UNVERIFIED_ENV,
    UnverifiedWeightWarning,
    allow_unverified,
    allowing_unverified,
    check_available,
    clear_unverified_uses,
    fetch,
    is_available,
    require_available,
    set_allow_unverified,
    unverified_uses,
    weight_path,
)

__all__ = [
    "KINDS", "REGISTRY", "WeightFile", "as_dict", "entries", "get",
    "load_torch_checkpoint", "unwrap_state_dict",
    "BAD_HASH", "MISSING", "NOT_A_FILE", "PRESENT", "kind_problem", "UNVERIFIED", "WeightStatus", "file_sha256", "status",
    "default_path", "env_var", "home", "is_offline", "read_overrides", "resolve", "set_override", "weights_dir",
    "MissingWeight", "WeightsUnavailableError", "instructions",
    "ALLOW_UNVERIFIED_ENV", "UnverifiedWeightWarning", "allow_unverified", "allowing_unverified", "check_available",
    "clear_unverified_uses", "fetch", "is_available", "require_available", "set_allow_unverified",
    "unverified_uses", "weight_path",
]
