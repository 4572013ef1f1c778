"""Finding the HQ (ground-truth) images to degrade, with stable ids (used by ``celebref degrade``).

Accepted inputs:

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
from pathlib import Path

from ..errors import ConfigError
from ..imageio import list_images
from .records import HQItem, HQSet, folder_images, read_table


def _landmarks_for(root: Path, identity: str, name: str) -> str:
    p = root / "landmarks" / identity / f"{name}.txt"
    return str(p) if p.is_file() else ""


def _dedupe(items: list[HQItem]) -> list[HQItem]:
    seen: set[str] = set()
    out = []
    for it in sorted(items, key=lambda i: (i.id, i.gt_path)):
        if it.id in seen and not it.reason:
            it = HQItem(it.id, it.identity, it.gt_path, it.landmarks_path, "duplicate_id")
        seen.add(it.id)
        out.append(it)
    return out


def _grouped_folder(root: Path, images_dir: str, kind: str) -> HQSet:
    items = []
    for ident_dir in sorted(p for p in (root / images_dir).iterdir() if p.is_dir()):
        ident = ident_dir.name
        for f in list_images(ident_dir, recursive=False):
            items.append(HQItem(f"{ident}/{f.stem}", ident, str(f.resolve()), _landmarks_for(root, ident, f.name)))
    return HQSet(kind, str(root), True, _dedupe(items))


def _from_manifest(path: Path, split: str | None) -> HQSet:
    df = read_table(path, "dataset manifest").fillna("").astype(str)
    root = path.parent
    if "decision" in df.columns and "output_path" in df.columns:  # celebref build manifest
        df = df[(df["decision"] == "accepted") & (df["output_path"] != "")]
    if "kind" in df.columns:
        df = df[df["kind"] == "hq"]
    if split is not None:
        if "split" not in df.columns:
            raise ConfigError(f"split {split!r} given but {str(path)!r} has no 'split' column")
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
        image_id = f"{ident}/{Path(rel).stem}" if ident else str(Path(rel).with_suffix("")).replace(os.sep, "/")
        lm = ""
        if "landmarks" in df.columns and row["landmarks"] and not row["landmarks"].lstrip().startswith("["):
            q = Path(row["landmarks"])
            q = q if q.is_absolute() else root / q
            lm = str(q.resolve()) if q.is_file() else ""
        elif ident:
            lm = _landmarks_for(root, ident, Path(rel).name)
        items.append(HQItem(image_id, ident, str(p.resolve()), lm, "" if p.is_file() else "missing_file"))
    grouped = bool(id_col) and any(i.identity for i in items)
    return HQSet("manifest", str(root), grouped, _dedupe(items))


def _split_of_build(path: Path, result: HQSet, split: str) -> None:
    ids = path / "identities.csv"
    if not ids.is_file():
        raise ConfigError(f"split {split!r} given but {str(ids)!r} does not exist")
    table = read_table(ids, "identity table")
    keep = set(table.loc[table["split"] == split, "identity_id"])
    result.items = [i for i in result.items if i.identity in keep]


def read_hq_set(path: str | os.PathLike, split: str | None = None) -> HQSet:
    """Discover the HQ images (see module docstring). Raises :class:`ConfigError` for a path that is neither a
    folder nor a readable table, or that holds no images."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in (".csv", ".parquet"):
            raise ConfigError(f"input {str(path)!r}: give a folder or a dataset manifest (.csv or .parquet)")
        result = _from_manifest(path, split)
    elif path.is_dir():
        if (path / "images").is_dir() and (path / "landmarks").is_dir():
            result = _grouped_folder(path, "images", "build")
            if split is not None:
                _split_of_build(path, result, split)
        elif (path / "hq").is_dir():
            result = _grouped_folder(path, "hq", "mini")
        else:
            items = [HQItem(i, "", str(Path(p).resolve())) for i, p in folder_images(path)]
            result = HQSet("folder", str(path), False, _dedupe(items))
    else:
        raise ConfigError(f"input {str(path)!r} does not exist")
    if not result.items:
        raise ConfigError(f"no input images found in {str(path)!r}")
    return result
