"""Finding the HQ (ground-truth) images to degrade, with stable ids.

Accepted inputs (see ``celebref degrade --help``):

* a ``celebref build`` output folder (``images/<identity>/<n>.png`` + ``landmarks/<identity>/<n>.png.txt``),
* a celebref-mini-like folder (``hq/<identity>/<n>.png`` + ``landmarks/<identity>/<n>.png.txt``),
* a dataset manifest (``.csv`` / ``.parquet``): a ``celebref build`` manifest (accepted rows,
  ``output_path``, ``identity_id``, optional ``split``) or any table with a path column
  (``path``/``gt_path``/``output_path``/``source_path``) and optionally ``identity``/``identity_id``,
  ``landmarks`` and ``kind`` (only ``hq`` rows are used when present),
* any other folder: every image under it (recursively), no identities.

Ids: ``<identity>/<stem>`` for identity-grouped inputs, the path relative to the folder without its
extension otherwise (``/`` separators). When two files map to the same id (``a.png`` and ``a.jpg``),
the first in sorted order is kept and the others are rejected with reason ``duplicate_id``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from celebref.errors import ConfigError
from celebref.imageio import is_image_name, list_images


@dataclass(frozen=True)
class InputItem:
    """One HQ image: ``id`` (stable), ``identity`` ("" when unknown), absolute paths, and a rejection
    ``reason`` decided before reading (missing file, duplicate id) or ""."""

    id: str
    identity: str
    gt_path: str
    landmarks_path: str = ""
    reason: str = ""


@dataclass
class InputSet:
    kind: str  # build | mini | manifest | folder
    root: str
    grouped: bool
    items: list[InputItem]


def _landmarks_for(root: Path, identity: str, name: str) -> str:
    p = root / "landmarks" / identity / f"{name}.txt"
    return str(p) if p.is_file() else ""


def _grouped_folder(root: Path, images_dir: str, kind: str) -> InputSet:
    items = []
    base = root / images_dir
    for ident_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for f in list_images(ident_dir, recursive=False):
            ident = ident_dir.name
            items.append(InputItem(f"{ident}/{f.stem}", ident, str(f.resolve()), _landmarks_for(root, ident, f.name)))
    return InputSet(kind, str(root), True, _dedupe(items))


def _dedupe(items: list[InputItem]) -> list[InputItem]:
    seen: set[str] = set()
    out = []
    for it in sorted(items, key=lambda i: (i.id, i.gt_path)):
        if it.id in seen and not it.reason:
            it = InputItem(it.id, it.identity, it.gt_path, it.landmarks_path, "duplicate_id")
        seen.add(it.id)
        out.append(it)
    return out


def _read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"cannot read dataset manifest {str(path)!r}: {e}") from None


def _from_manifest(path: Path, split: str | None) -> InputSet:
    df = _read_table(path).fillna("")
    root = path.parent
    df = df.astype(str)
    if "decision" in df.columns and "output_path" in df.columns:  # celebref build manifest
        df = df[(df["decision"] == "accepted") & (df["output_path"] != "")]
    if "kind" in df.columns:
        df = df[df["kind"] == "hq"]
    if split is not None:
        if "split" not in df.columns:
            raise ConfigError(f"--split {split} given but {str(path)!r} has no 'split' column")
        df = df[df["split"] == split]
    path_col = next((c for c in ("output_path", "gt_path", "path", "source_path") if c in df.columns), None)
    if path_col is None:
        raise ConfigError(f"{str(path)!r} has no path column (output_path, gt_path, path or source_path)")
    id_col = next((c for c in ("identity_id", "identity") if c in df.columns), None)
    items = []
    for _, row in df.iterrows():
        rel = row[path_col]
        p = Path(rel) if os.path.isabs(rel) else root / rel
        ident = row[id_col].strip() if id_col else ""
        stem = Path(rel).stem
        image_id = f"{ident}/{stem}" if ident else str(Path(rel).with_suffix("")).replace(os.sep, "/")
        lm = ""
        if "landmarks" in df.columns and row["landmarks"] and not row["landmarks"].lstrip().startswith("["):
            q = Path(row["landmarks"])
            q = q if q.is_absolute() else root / q
            lm = str(q.resolve()) if q.is_file() else ""
        elif ident:
            lm = _landmarks_for(root, ident, Path(rel).name)
        reason = "" if p.is_file() else "missing_file"
        items.append(InputItem(image_id, ident, str(p.resolve()), lm, reason))
    grouped = bool(id_col) and any(i.identity for i in items)
    return InputSet("manifest", str(root), grouped, _dedupe(items))


def collect_inputs(path: str | os.PathLike, split: str | None = None) -> InputSet:
    """Discover the input images (see module docstring). Raises :class:`ConfigError` for a path that is
    neither a folder nor a readable table, or that holds no images."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in (".csv", ".parquet"):
            raise ConfigError(f"--input {str(path)!r}: give a folder or a dataset manifest (.csv or .parquet)")
        result = _from_manifest(path, split)
    elif path.is_dir():
        if (path / "images").is_dir() and (path / "landmarks").is_dir():
            result = _grouped_folder(path, "images", "build")
            if split is not None:
                ids = path / "identities.csv"
                if not ids.is_file():
                    raise ConfigError(f"--split {split} given but {str(ids)!r} does not exist")
                table = pd.read_csv(ids, dtype=str, keep_default_na=False)
                keep = set(table.loc[table["split"] == split, "identity_id"])
                result.items = [i for i in result.items if i.identity in keep]
        elif (path / "hq").is_dir():
            result = _grouped_folder(path, "hq", "mini")
        else:
            items = [InputItem(str(f.relative_to(path).with_suffix("")).replace(os.sep, "/"), "", str(f.resolve()))
                     for f in list_images(path) if is_image_name(f)]
            result = InputSet("folder", str(path), False, _dedupe(items))
    else:
        raise ConfigError(f"--input {str(path)!r} does not exist")
    if not result.items:
        raise ConfigError(f"no input images found in {str(path)!r}")
    return result
