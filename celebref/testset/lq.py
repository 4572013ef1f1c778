"""Test sets for restore and evaluate: DMDNet lists, folders, degrade manifests and paired folders -> records.

Accepted forms (:func:`read_test_set`):

* a folder of images: every image below it; id = path relative to the folder without extension
  (``sub/a.png`` -> ``sub/a``); when two files map to one id (``a.png``, ``a.jpg``) the first in sorted
  order is kept and the others are rejected records (reason ``duplicate id``);
* a DMDNet ``GenericLists.txt`` / ``SpecificLists.txt`` (:mod:`celebref.testset.lists`); a list none of whose
  lines names an existing file is a :class:`~celebref.errors.ConfigError` ("0 of N inputs found", with the first
  line's reason naming every path tried);
* a ``celebref degrade`` output folder (it has ``degrade.json``, or a manifest with the columns ``id`` and
  ``lq_path``; a folder with any other ``manifest.csv`` is a folder of images, as ``degrade --input`` reads it),
  or its ``manifest.parquet``/``manifest.csv``: ids, LQ paths, GT paths,
  identities and GT landmarks come from the manifest; when the folder has a ``SpecificLists.txt`` its
  references are attached by LQ path;
* a single image.

Ids from list files are the LQ file stems; when two stems collide the path relative to the list's folder
(without extension) is used for all of them, so ids stay unique. Every path in a record is absolute.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..imageio import is_image_name, list_images
from .lists import parse_list, read_lines
from .records import NOT_A_TEST_SET, InputRecord, absolute, duplicate_ids, folder_images, listing, read_table, under


@dataclass
class TestSet:
    """The records of a test set (sorted by id) and what to record about it in run files."""

    __test__ = False  # not a pytest class

    records: list[InputRecord]
    info: dict = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]


def _unique_ids(paths: list[Path], base: Path) -> list[str]:
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    common = Path(os.path.commonpath([str(p) for p in paths])) if paths else base
    out = []
    for p in paths:
        try:
            rel = p.relative_to(base)
        except ValueError:
            rel = p.relative_to(common) if p != common else Path(p.name)
        out.append(rel.with_suffix("").as_posix())
    dup = duplicate_ids(out)
    if dup:
        raise ConfigError(f"input ids are not unique even with their folders: {listing(dup)}")
    return out


def read_list(path: str | os.PathLike, list_format: str = "auto", relative_to: str = "cwd-then-list") -> TestSet:
    """A DMDNet list file as a test set (``info`` says how relative paths were resolved)."""
    parsed = parse_list(path, list_format, relative_to)
    if parsed.entries and all(e.reason for e in parsed.entries):
        first = parsed.entries[0]
        raise ConfigError(f"0 of {len(parsed.entries)} inputs found from the list {str(parsed.path)!r}; line {first.line}: "
                          f"{first.reason}; run from the folder its relative paths start from, or make them absolute")
    ids = _unique_ids([e.lq for e in parsed.entries], parsed.path.parent)
    records = [InputRecord(id=i, lq_path=e.lq, ref_dir=e.ref_dir, ref_landmark_dir=e.ref_landmark_dir, reason=e.reason,
                           extra={"list_line": e.line}) for i, e in zip(ids, parsed.entries)]
    return TestSet(records, {"kind": f"{parsed.format}-list", **parsed.describe()})


def _read_manifest(path: Path) -> TestSet:
    df = read_table(path, "degrade manifest", text_columns=("id", "identity"))
    base = absolute(path.parent)
    if "lq_path" not in df.columns or "id" not in df.columns:
        raise ConfigError(f"{NOT_A_TEST_SET}; {str(path)!r} is a table without the columns id and lq_path of a degrade manifest")
    if "status" in df.columns:
        df = df[df["status"].fillna("ok") == "ok"]
    specific = {}
    sl = base / "SpecificLists.txt"
    if sl.is_file() and read_lines(sl):
        for r in read_list(sl, "specific", relative_to="list").records:
            specific[os.path.normpath(r.lq_path)] = r
    out = []
    for row in df.to_dict("records"):
        if not isinstance(row.get("lq_path"), str) or not row["lq_path"]:
            continue
        lq = under(base, row["lq_path"])
        gt = row.get("gt_path_abs") or row.get("gt_path")
        lm = row.get("landmarks_path_abs") or row.get("landmarks_path")
        ident = row.get("identity")
        native = row.get("lq_native_path")
        rec = InputRecord(
            id=str(row["id"]),
            lq_path=lq,
            identity=str(ident) if isinstance(ident, str) and ident else None,
            gt_path=under(base, gt) if isinstance(gt, str) and gt else None,
            gt_landmarks_path=under(base, lm) if isinstance(lm, str) and lm else None,
            native_path=under(base, native) if isinstance(native, str) and native else None,
            extra=dict(row),
        )
        sp = specific.get(os.path.normpath(lq))
        if sp is not None:
            rec.ref_dir, rec.ref_landmark_dir = sp.ref_dir, sp.ref_landmark_dir
        out.append(rec)
    info: dict = {"kind": "degrade-manifest", "path": str(absolute(path))}
    djson = base / "degrade.json"
    if djson.is_file():
        meta = json.loads(djson.read_text(encoding="utf-8"))
        conf = meta.get("config", meta)
        info.update({"preset": conf.get("preset"), "seed": conf.get("seed"), "degrade": meta})
    return TestSet(sorted(out, key=lambda r: r.id), info)


def _degrade_manifest(folder: Path) -> Path | None:
    """The degrade manifest of ``folder`` when it is a ``celebref degrade`` output, else ``None`` (a folder of images).

    One rule for every reader: a folder with ``degrade.json`` is a test set (its manifest must then be readable); a
    ``manifest.parquet``/``.csv`` without ``degrade.json`` makes the folder a test set only when it has the columns
    ``id`` and ``lq_path`` of a degrade manifest; any other table (a dataset's own manifest, notes) is just a file
    beside the images, as :func:`celebref.testset.read_hq_set` (``degrade --input``) reads the same folder."""
    names = [folder / n for n in ("manifest.parquet", "manifest.csv") if (folder / n).is_file()]
    if not names:
        return None
    if (folder / "degrade.json").is_file():
        return names[0]
    for name in names:
        try:
            columns = read_table(name, "degrade manifest", text_columns=("id", "identity")).columns
        except ConfigError:
            continue
        if "id" in columns and "lq_path" in columns:
            return name
    return None


def _read_folder(path: Path) -> TestSet:
    found = folder_images(path)
    if not found:
        raise ConfigError(f"{NOT_A_TEST_SET}; no images found under {str(path)!r}")
    records, first = [], {}
    for i, p in found:
        reason = f"duplicate id {i!r}: {first[i].name} and {p.name} map to it (the first is used)" if i in first else ""
        first.setdefault(i, p)
        records.append(InputRecord(id=i, lq_path=p, reason=reason))
    return TestSet(records, {"kind": "folder", "path": str(absolute(path))})


def read_test_set(spec: str | os.PathLike, list_format: str = "auto") -> TestSet:
    """Any accepted form (module docstring) as a :class:`TestSet`. ``list_format`` applies to list files."""
    path = Path(spec)
    if not path.exists():
        raise ConfigError(f"test set {str(path)!r} does not exist")
    if path.is_dir():
        manifest = _degrade_manifest(path)
        ts = _read_manifest(manifest) if manifest is not None else _read_folder(path)
    elif path.suffix.lower() in (".parquet", ".csv"):
        ts = _read_manifest(path)
    elif is_image_name(path):
        ts = TestSet([InputRecord(id=path.stem, lq_path=absolute(path))], {"kind": "image", "path": str(absolute(path))})
    elif path.suffix.lower() in (".txt", ".lst", ".list", ""):
        ts = read_list(path, list_format)
    else:
        raise ConfigError(f"{NOT_A_TEST_SET} (a folder, a GenericLists/SpecificLists .txt or a degrade manifest), got {str(path)!r}")
    if not ts.records:
        raise ConfigError(f"the test set {str(path)!r} is empty")
    ts.info["n_images"] = len(ts.records)
    return ts


def read_inputs(spec: str | os.PathLike, list_format: str = "auto") -> list[InputRecord]:
    """The records of :func:`read_test_set`."""
    return read_test_set(spec, list_format).records


def pair_folders(lq_dir: str | os.PathLike, gt_dir: str | os.PathLike) -> list[InputRecord]:
    """Pair two folders by id (relative path without extension); refuse anything not one-to-one."""
    def index(root: Path) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for key, p in folder_images(root):
            if key in out:
                raise ConfigError(f"{root}: two images share the stem {key!r} ({out[key].name}, {p.name})")
            out[key] = p
        return out

    lq, gt = index(Path(lq_dir)), index(Path(gt_dir))
    only_lq, only_gt = sorted(set(lq) - set(gt)), sorted(set(gt) - set(lq))
    if only_lq or only_gt:
        msg = []
        if only_lq:
            msg.append(f"{len(only_lq)} LQ image(s) without ground truth: {listing(only_lq)}")
        if only_gt:
            msg.append(f"{len(only_gt)} ground-truth image(s) without LQ: {listing(only_gt)}")
        raise ConfigError("LQ and GT folders do not pair one to one by file stem; " + "; ".join(msg))
    if not lq:
        raise ConfigError(f"no images in {lq_dir}")
    return [InputRecord(id=k, lq_path=lq[k], gt_path=gt[k]) for k in sorted(lq)]


def load_test_set(data: str | os.PathLike | None = None, lq: str | os.PathLike | None = None,
                  gt: str | os.PathLike | None = None, list_format: str = "auto") -> TestSet:
    """An evaluation test set: ``data`` (any :func:`read_test_set` form), the folders ``lq`` and ``gt`` paired by
    id, or ``lq`` alone (a folder or list of LQ images without ground truth, e.g. a real-world test set)."""
    if data:
        return read_test_set(data, list_format)
    if lq and gt:
        records = pair_folders(lq, gt)
        return TestSet(records, {"kind": "paired-folders", "lq": str(absolute(lq)), "gt": str(absolute(gt)),
                                 "n_images": len(records)})
    if lq and not gt:  # real-world LQ without ground truth: a folder of images or a list file
        return read_test_set(lq, list_format)
    raise ConfigError("give data (a degrade output, manifest, list file or folder), lq and gt (folders paired by "
                      "file stem), or lq alone (LQ images without ground truth: no-reference metrics)")


# --- DMDNet reference folders --------------------------------------------------------------------------------

def reference_files(ref_dir: Path, landmark_dir: Path | None) -> list[tuple[Path, Path]]:
    """(image, landmark file) pairs of a DMDNet reference folder; images without landmarks are left out."""
    if not Path(ref_dir).is_dir():
        raise ConfigError(f"reference folder not found: {ref_dir}")
    pairs = []
    for img in list_images(ref_dir, recursive=False):
        lm = Path(landmark_dir or ref_dir) / (img.name + ".txt")
        if lm.is_file():
            pairs.append((img, lm))
    return pairs


def reference_key(pairs: list[tuple[Path, Path]]) -> str:
    h = hashlib.sha256()
    for img, lm in pairs:
        h.update(str(img.resolve()).encode() + b"\0" + str(lm.resolve()).encode() + b"\n")
    return h.hexdigest()[:16]
