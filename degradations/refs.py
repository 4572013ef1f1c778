"""Per-LQ reference folders for DMDNet's ``SpecificLists.txt``: ``refs/<id>/images`` and ``refs/<id>/landmarks``
hold the other HQ images of the LQ's identity (its own GT left out), as hard links or copies."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from celebref.fsutil import sha256_file, temp_path

from celebref.testset import HQItem
from .item import relpath

__all__ = ["place", "write_refs"]


def place(src: str, dst: Path, mode: str) -> None:
    """Put ``src`` at ``dst`` (``mode``: ``link``, hard link with a copy where linking fails, or ``copy``),
    atomically, through a temporary name unique to this process; an identical ``dst`` is left as it is."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        try:
            if mode == "link" and os.path.samefile(src, dst):
                return
        except OSError:
            pass
        if mode == "copy" and dst.stat().st_size == os.path.getsize(src) and sha256_file(dst) == sha256_file(src):
            return
    tmp = temp_path(dst)
    try:
        if mode == "link":
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
        else:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_refs(out: Path, rows: list[dict], items: dict[str, HQItem], mode: str) -> list[str]:
    """Fill ``refs/<id>/{images,landmarks}`` for every OK row of an identity; returns SpecificLists lines.
    Sets ``n_refs``, ``ref_dir`` and ``ref_landmark_dir`` of the rows; an LQ with fewer than 2 references
    (DMDNet skips those) gets no folder and no line."""
    by_identity: dict[str, list[dict]] = {}
    for r in rows:
        if r["identity"] and r["gt_sha256"]:  # a readable HQ image can be a reference
            by_identity.setdefault(r["identity"], []).append(r)
    lines = []
    for r in rows:
        if r["status"] != "ok" or not r["identity"]:
            continue
        refs = [o for o in by_identity.get(r["identity"], []) if o["id"] != r["id"] and items[o["id"]].landmarks_path
                and o.get("reason", "") in ("", None) and o["status"] == "ok"]
        r["n_refs"] = len(refs)
        if len(refs) < 2:  # DMDNet skips an LQ with fewer than 2 references
            r["ref_dir"] = r["ref_landmark_dir"] = ""  # a row kept from an earlier run may still name its old folder
            continue
        ref_dir = out / "refs" / r["id"] / "images"
        lm_dir = out / "refs" / r["id"] / "landmarks"
        wanted_img, wanted_lm = set(), set()
        for o in refs:
            src = items[o["id"]]
            name = Path(src.gt_path).name
            place(src.gt_path, ref_dir / name, mode)
            place(src.landmarks_path, lm_dir / f"{name}.txt", mode)
            wanted_img.add(name)
            wanted_lm.add(f"{name}.txt")
        for d, wanted in ((ref_dir, wanted_img), (lm_dir, wanted_lm)):
            for f in d.iterdir():
                if f.name not in wanted and f.is_file():
                    f.unlink()  # left from an earlier run with other inputs
        r["ref_dir"] = relpath(str(ref_dir), str(out))
        r["ref_landmark_dir"] = relpath(str(lm_dir), str(out))
        lines.append(f"{r['lq_path']}\t{r['ref_dir']}\t{r['ref_landmark_dir']}")
    return lines
