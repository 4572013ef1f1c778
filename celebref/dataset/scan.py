"""Scan a crawl folder: ``<root>/<person folder>/**/<images>``, in a stable (sorted) order."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..imageio import is_image_name


@dataclass(frozen=True)
class ScanItem:
    """One input file. ``source_path``: POSIX path relative to the crawl root (the record's key);
    ``identity_folder``: the first path component (the queried person's folder, free text)."""

    source_path: str
    abs_path: Path
    identity_folder: str
    size: int


def scan_crawl(root: str | os.PathLike, exclude: list[Path] | None = None) -> tuple[list[ScanItem], list[str]]:
    """Files with an image extension below each person folder, sorted by ``source_path`` (code-point order).

    Returns ``(items, ignored)``: ``ignored`` lists the relative paths of files that are not inputs (no image
    extension, hidden, or directly in the root without a person folder). Hidden files and folders (``.x``)
    are skipped. ``exclude``: folders to skip (e.g. the output folder when it lies inside the crawl).
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"crawl folder {str(root)!r} does not exist or is not a folder")
    excl = {p.resolve() for p in (exclude or [])}
    items: list[ScanItem] = []
    ignored: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".") and (d / n).resolve() not in excl)
        for name in filenames:
            p = d / name
            rel = p.relative_to(root).as_posix()
            if name.startswith(".") or not p.is_file():
                continue
            parts = rel.split("/")
            if len(parts) < 2 or not is_image_name(name):
                ignored.append(rel)
                continue
            items.append(ScanItem(rel, p, parts[0], p.stat().st_size))
    items.sort(key=lambda it: it.source_path)
    return items, sorted(ignored)
