"""Human review: an overrides CSV applied on rebuild.

Columns: ``source_path`` (relative to the crawl root, as in the manifest; a folder path ending in ``/`` applies to
every file below it), ``action`` (``accept`` | ``reject`` | ``identity``), ``identity`` (the target person folder,
for ``action=identity``), optional ``note``. ``accept`` keeps a file that has a face whatever the quality, identity,
collision and near-duplicate gates say (it cannot accept an unreadable file, a file without a face, or a
byte-identical copy); ``reject`` removes it (reason ``manual_reject``); ``identity`` moves it (or a whole folder:
a merge) to another person folder, trusted without identity verification for single files. A file path wins over
a folder path; later rows win over earlier ones. Rows whose ``action`` is blank are ignored, so the
``overrides_template.csv`` that ``celebref report <build>`` writes (every file, action blank) is a valid input.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

ACTIONS = ("accept", "reject", "identity")


@dataclass(frozen=True)
class Override:
    source_path: str
    action: str
    identity: str = ""
    note: str = ""
    line: int = 0


def read_overrides(path: str | os.PathLike) -> list[Override]:
    """Parse and validate an overrides CSV (UTF-8, header row). Raises :class:`ConfigError` on a bad row."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"overrides file {str(path)!r} not found")
    out = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        if not {"source_path", "action"} <= cols:
            raise ConfigError(f"{path}: overrides need the columns source_path, action (and identity for action=identity); got {sorted(cols)}")
        for n, row in enumerate(reader, start=2):
            sp = (row.get("source_path") or "").strip().replace("\\", "/")
            act = (row.get("action") or "").strip().lower()
            ident = (row.get("identity") or "").strip()
            if not act:
                continue  # a row with no action changes nothing (e.g. an untouched row of the report's template)
            if act not in ACTIONS:
                raise ConfigError(f"{path}:{n}: action must be one of {', '.join(ACTIONS)}, got {act!r}")
            if not sp:
                raise ConfigError(f"{path}:{n}: empty source_path")
            if act == "identity" and not ident:
                raise ConfigError(f"{path}:{n}: action=identity needs an identity (target folder name)")
            out.append(Override(sp, act, ident, (row.get("note") or "").strip(), n))
    return out


class OverrideTable:
    """Look up the override for a source path (file rows first, then the deepest matching folder row)."""

    def __init__(self, overrides: list[Override]):
        self.files: dict[str, Override] = {}
        self.folders: dict[str, Override] = {}
        for o in overrides:
            if o.source_path.endswith("/"):
                self.folders[o.source_path] = o
            else:
                self.files[o.source_path] = o
        self.used: set[str] = set()

    def lookup(self, source_path: str) -> Override | None:
        o = self.files.get(source_path)
        if o is None:
            parts = source_path.split("/")
            for k in range(len(parts) - 1, 0, -1):
                o = self.folders.get("/".join(parts[:k]) + "/")
                if o is not None:
                    break
        if o is not None:
            self.used.add(o.source_path)
        return o

    def unmatched(self) -> list[str]:
        return sorted((set(self.files) | set(self.folders)) - self.used)
