"""Restoration inputs: DMDNet's list formats, plain folders and degrade manifests, as one list of records.

Accepted ``--input`` forms:

* a folder of images: every image below it; id = path relative to the folder without extension
  (``sub/a.png`` -> ``sub/a``);
* DMDNet ``GenericLists.txt``: one LQ path per line (relative paths are relative to the list's folder);
* DMDNet ``SpecificLists.txt``: ``LQ<TAB>RefDir<TAB>RefLandmarkDir`` per line; the references are every
  image in ``RefDir`` whose landmark file ``RefLandmarkDir/<image name>.txt`` exists;
* a ``celebref degrade`` output folder, or its ``manifest.parquet``/``manifest.csv``: ids, LQ paths, GT paths,
  identities and GT landmarks come from the manifest; when the folder has a ``SpecificLists.txt`` its
  references are attached by LQ path.

Ids from list files are the LQ file stems; when two stems collide the path relative to the list's folder
(without extension) is used for all of them, so ids stay unique.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from celebref.errors import ConfigError
from celebref.imageio import is_image_name, list_images


@dataclass
class InputRecord:
    id: str
    lq_path: Path
    identity: str | None = None
    gt_path: Path | None = None
    ref_dir: Path | None = None
    ref_landmark_dir: Path | None = None
    gt_landmarks_path: Path | None = None
    native_path: Path | None = None
    extra: dict = field(default_factory=dict)


def _resolve(base: Path, p: str) -> Path:
    q = Path(p.strip())
    return q if q.is_absolute() else (base / q)


def _unique_ids(paths: list[Path], base: Path) -> list[str]:
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    out = []
    for p in paths:
        try:
            rel = p.relative_to(base)
        except ValueError:
            rel = Path(*p.parts[-2:])
        out.append(rel.with_suffix("").as_posix())
    if len(set(out)) != len(out):
        dup = sorted({i for i in out if out.count(i) > 1})
        raise ConfigError(f"input ids are not unique even with their folders: {', '.join(dup[:10])}")
    return out


def _read_lines(path: Path) -> list[str]:
    return [ln.rstrip("\r\n") for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def read_generic_list(path: Path) -> list[InputRecord]:
    base = path.parent
    paths = [_resolve(base, ln.split("\t")[0]) for ln in _read_lines(path)]
    return [InputRecord(id=i, lq_path=p) for i, p in zip(_unique_ids(paths, base), paths)]


def read_specific_list(path: Path) -> list[InputRecord]:
    base = path.parent
    rows = []
    for n, ln in enumerate(_read_lines(path), 1):
        parts = ln.split("\t")
        if len(parts) != 3:
            raise ConfigError(f"{path}:{n}: SpecificLists lines are LQ<TAB>RefDir<TAB>RefLandmarkDir, got {len(parts)} field(s)")
        rows.append([_resolve(base, x) for x in parts])
    ids = _unique_ids([r[0] for r in rows], base)
    return [InputRecord(id=i, lq_path=lq, ref_dir=rd, ref_landmark_dir=ld) for i, (lq, rd, ld) in zip(ids, rows)]


def _read_manifest(path: Path) -> list[InputRecord]:
    import pandas as pd

    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"id": str, "identity": str})
    base = path.parent
    if "lq_path" not in df.columns or "id" not in df.columns:
        raise ConfigError(f"{path} is not a degrade manifest (needs columns id, lq_path)")
    if "status" in df.columns:
        df = df[df["status"].fillna("ok") == "ok"]
    specific = {}
    sl = base / "SpecificLists.txt"
    if sl.is_file():
        for r in read_specific_list(sl):
            specific[os.path.normpath(r.lq_path)] = r
    out = []
    for row in df.to_dict("records"):
        if not isinstance(row.get("lq_path"), str) or not row["lq_path"]:
            continue
        lq = _resolve(base, row["lq_path"])
        gt = row.get("gt_path_abs") or row.get("gt_path")
        lm = row.get("landmarks_path_abs") or row.get("landmarks_path")
        ident = row.get("identity")
        native = row.get("lq_native_path")
        rec = InputRecord(
            id=str(row["id"]),
            lq_path=lq,
            identity=str(ident) if isinstance(ident, str) and ident else None,
            gt_path=_resolve(base, gt) if isinstance(gt, str) and gt else None,
            gt_landmarks_path=_resolve(base, lm) if isinstance(lm, str) and lm else None,
            native_path=_resolve(base, native) if isinstance(native, str) and native else None,
            extra={k: v for k, v in row.items()},
        )
        sp = specific.get(os.path.normpath(lq))
        if sp is not None:
            rec.ref_dir, rec.ref_landmark_dir = sp.ref_dir, sp.ref_landmark_dir
        out.append(rec)
    return sorted(out, key=lambda r: r.id)


def read_inputs(spec: str | os.PathLike) -> list[InputRecord]:
    """Parse any accepted ``--input`` form (see module docstring) into records sorted by id."""
    path = Path(spec)
    if not path.exists():
        raise ConfigError(f"input {str(path)!r} does not exist")
    if path.is_dir():
        for name in ("manifest.parquet", "manifest.csv"):
            if (path / name).is_file() and ((path / "degrade.json").is_file() or (path / "lq").is_dir()):
                return _read_manifest(path / name)
        images = list_images(path)
        if not images:
            raise ConfigError(f"no images found under {path}")
        ids = [p.relative_to(path).with_suffix("").as_posix() for p in images]
        return [InputRecord(id=i, lq_path=p) for i, p in zip(ids, images)]
    if path.suffix in (".parquet", ".csv"):
        return _read_manifest(path)
    if path.suffix == ".txt":
        lines = _read_lines(path)
        if lines and lines[0].count("\t") == 2:
            return read_specific_list(path)
        return read_generic_list(path)
    if is_image_name(path):
        return [InputRecord(id=path.stem, lq_path=path)]
    raise ConfigError(f"cannot tell what {str(path)!r} is: give a folder, a GenericLists/SpecificLists .txt or a manifest")


def reference_files(ref_dir: Path, landmark_dir: Path | None) -> list[tuple[Path, Path]]:
    """(image, landmark file) pairs of a DMDNet reference folder; images without landmarks are left out."""
    pairs = []
    for img in list_images(ref_dir, recursive=False):
        lm = (landmark_dir or ref_dir) / (img.name + ".txt")
        if lm.is_file():
            pairs.append((img, lm))
    return pairs


def reference_key(pairs: list[tuple[Path, Path]]) -> str:
    h = hashlib.sha256()
    for img, lm in pairs:
        h.update(str(img.resolve()).encode() + b"\0" + str(lm.resolve()).encode() + b"\n")
    return h.hexdigest()[:16]


def load_landmarks(path: Path) -> np.ndarray:
    """A 68-line ``x y`` landmark file -> float64 (68, 2)."""
    arr = np.loadtxt(path, dtype=np.float64).reshape(-1, 2)
    if arr.shape != (68, 2):
        raise ConfigError(f"{path}: expected 68 landmark lines, found {arr.shape[0]}")
    return arr
