"""The record types of test sets and the shared reading primitives (paths, folder ids, tables).

Paths in records are absolute (``os.path.abspath``: normalised, symlinks kept), so tables written from
them (``per_image``, ``status``) name files the same way whatever the current directory was.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..imageio import list_images

NOT_A_TEST_SET = "not a test set: expected a manifest, a list file or a folder of images"


@dataclass
class InputRecord:
    """One test image for restore/evaluate.

    ``reason`` is non-empty when the record was rejected while reading the test set (e.g. its LQ file does
    not exist: the reason names every path tried); restore then records it as a failed item, never drops it.
    """

    id: str
    lq_path: Path
    identity: str | None = None
    gt_path: Path | None = None
    ref_dir: Path | None = None
    ref_landmark_dir: Path | None = None
    gt_landmarks_path: Path | None = None
    native_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True)
class HQItem:
    """One HQ image to degrade: ``id`` (stable), ``identity`` ("" when unknown), absolute paths (str), and a
    rejection ``reason`` decided before reading (``missing_file``, ``duplicate_id``) or ""."""

    id: str
    identity: str
    gt_path: str
    landmarks_path: str = ""
    reason: str = ""


@dataclass
class HQSet:
    kind: str  # build | mini | manifest | folder
    root: str
    grouped: bool
    items: list[HQItem]


def absolute(path: str | os.PathLike) -> Path:
    """``path`` made absolute against the current directory and normalised (``.``/``..`` removed)."""
    return Path(os.path.abspath(os.fspath(path)))


def under(base: Path, rel: str) -> Path:
    """``rel`` (a path string from a file) taken relative to ``base`` unless absolute; absolute result."""
    q = Path(rel.strip())
    return absolute(q if q.is_absolute() else base / q)


def relative_id(path: Path, root: Path) -> str:
    """The id of an image found under a folder: its path relative to ``root`` without extension, ``/`` separated."""
    return path.relative_to(root).with_suffix("").as_posix()


def folder_images(root: Path) -> list[tuple[str, Path]]:
    """``(id, absolute path)`` of every image below ``root`` (ids as :func:`relative_id`), sorted by path.
    Two files may share an id (``a.png``, ``a.jpg``): callers decide (reject one, or refuse)."""
    return [(relative_id(p, root), absolute(p)) for p in list_images(root)]


def duplicate_ids(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    dup = []
    for i in ids:
        if i in seen:
            dup.append(i)
        seen.add(i)
    return sorted(set(dup))


def read_table(path: Path, what: str = "table", text_columns: tuple[str, ...] | None = None) -> Any:
    """A ``.csv`` or ``.parquet`` file as a DataFrame; ConfigError if unreadable. CSV columns are all read as text
    (no NA guessing) unless ``text_columns`` names the only ones to keep as text (the others typed by pandas)."""
    import pandas as pd

    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if text_columns is not None:
            return pd.read_csv(path, dtype={c: str for c in text_columns})
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as e:  # noqa: BLE001 - any parser failure is the user's file, said in one line
        raise ConfigError(f"cannot read {what} {str(path)!r}: {e}") from None


def listing(items: list[str], shown: int = 10) -> str:
    return ", ".join(items[:shown]) + (f" ... ({len(items)} in all)" if len(items) > shown else "")
