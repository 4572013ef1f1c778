"""Content-addressed per-stage cache.

An entry's key is ``sha256(json({stage, content sha256, settings}))``: the same file content analysed with the
same settings is never computed twice, whatever its name or folder, and any change of settings (backend, model
ids, stage version) gives new keys. Entries are JSON files under ``<root>/<stage>/<key[:2]>/<key>.json``,
written atomically (an interrupted run leaves either a whole entry or none). Floats round-trip exactly
(``float32`` values are stored through their exact ``float64`` repr).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text


def settings_key(stage: str, content_sha256: str, settings: dict) -> str:
    blob = json.dumps({"stage": stage, "sha256": content_sha256, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class StageCache:
    """A folder of JSON entries, one per (stage, key). ``enabled=False`` makes every lookup miss."""

    def __init__(self, root: str | os.PathLike, enabled: bool = True):
        self.root = Path(root)
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key[:2] / f"{key}.json"

    def get(self, stage: str, key: str) -> dict | None:
        if not self.enabled:
            self.misses += 1
            return None
        p = self.path(stage, key)
        try:
            value = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, stage: str, key: str, value: dict[str, Any]) -> None:
        atomic_write_text(self.path(stage, key), json.dumps(value, sort_keys=True, separators=(",", ":")))
