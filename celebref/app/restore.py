"""Run restoration methods over input records: batched, resumable, every input accounted for.

For each method a journal ``<out>/<label>/.status.jsonl`` receives one JSON row per image as soon as its
batch is written (outputs first, atomically; then the journal line). A rerun reads the journal and
skips ids already done with the same weights (sha256) — so an interrupted run resumes, and changing a
method's weights redoes its images. :func:`RestoreRunner.finish` writes the consolidated
``status.parquet`` / ``status.csv`` (one row per input x method, sorted).
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from celebref.device import batched
from celebref.errors import CelebrefError, ImageReadError
from celebref.imageio import read_image, write_image
from celebref.progress import progress

from baselines.base import (
    STATUS_ERROR,
    ReferenceSet,
    RestorationMethod,
    RestoreItem,
    RestoreResult,
)
from baselines.inputs import InputRecord, load_landmarks, reference_files, reference_key

STATUS_COLUMNS = ["id", "method", "status", "reason", "seconds", "output_path", "weights_sha256"]
LANDMARK_SOURCES = ("detect", "gt")


def safe_id_path(root: Path, item_id: str, suffix: str = ".png") -> Path:
    """``root/<id>.png`` refusing ids that would escape ``root`` (ids come from file names)."""
    rel = Path(item_id + suffix)
    if rel.is_absolute() or ".." in rel.parts:
        raise CelebrefError(f"image id {item_id!r} is not a safe relative path")
    return root / rel


@dataclass
class MethodRun:
    method: RestorationMethod
    folder: Path
    weights: dict[str, str]  # weight-store name -> sha256
    weights_sha256: str  # the same, as one string (resume key)


class RestoreRunner:
    """Restore ``records`` with each method into ``out_dir/<method label>/<id>.png``."""

    def __init__(
        self,
        out_dir: str | os.PathLike,
        batch_size: int = 1,
        landmark_source: str = "detect",
        max_cached_references: int = 8,
    ):
        if landmark_source not in LANDMARK_SOURCES:
            raise CelebrefError(f"--landmarks must be one of {', '.join(LANDMARK_SOURCES)}")
        self.out_dir = Path(out_dir)
        self.batch_size = batch_size
        self.landmark_source = landmark_source
        self._refs: OrderedDict[str, ReferenceSet] = OrderedDict()
        self._max_refs = max_cached_references
        self.rows: list[dict] = []

    # -- references ----------------------------------------------------------------------------
    def _reference_set(self, rec: InputRecord) -> ReferenceSet | None:
        if rec.ref_dir is None:
            return None
        pairs = reference_files(rec.ref_dir, rec.ref_landmark_dir)
        key = reference_key(pairs)
        if key in self._refs:
            self._refs.move_to_end(key)
            return self._refs[key]
        refs = ReferenceSet(key=key, images=[read_image(p) for p, _ in pairs], landmarks=[load_landmarks(lm) for _, lm in pairs])
        self._refs[key] = refs
        while len(self._refs) > self._max_refs:
            self._refs.popitem(last=False)
        return refs

    def _item(self, rec: InputRecord, method: RestorationMethod) -> RestoreItem:
        image = read_image(rec.lq_path)
        landmarks = None
        if self.landmark_source == "gt" and rec.gt_landmarks_path is not None:
            landmarks = load_landmarks(rec.gt_landmarks_path)
        refs = self._reference_set(rec) if method.needs_references else None
        if method.needs_references and (refs is None or len(refs.images) < 2):
            raise CelebrefError(
                f"{method.name} needs >= 2 references with landmarks for {rec.id!r} "
                "(give a SpecificLists.txt or an identity-grouped test set)"
            )
        native = read_image(rec.native_path) if rec.native_path is not None else None
        return RestoreItem(id=rec.id, image=image, landmarks=landmarks, identity=rec.identity, references=refs, native=native, meta=rec.extra)

    # -- journal -------------------------------------------------------------------------------
    @staticmethod
    def _journal(folder: Path) -> Path:
        return folder / ".status.jsonl"

    def _done(self, run: MethodRun) -> dict[str, dict]:
        path = self._journal(run.folder)
        done: dict[str, dict] = {}
        if not path.is_file():
            return done
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a kill: that image is redone
            if row.get("weights_sha256") != run.weights_sha256:
                continue  # other weights: redo
            if row.get("output_path") and not (self.out_dir / row["output_path"]).is_file():
                continue  # output deleted since: redo
            done[row["id"]] = row
        return done

    def _append(self, run: MethodRun, rows: list[dict]) -> None:
        path = self._journal(run.folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    # -- running -------------------------------------------------------------------------------
    def prepare(self, method: RestorationMethod) -> MethodRun:
        """Load the method (may raise WeightError) and fix its output folder and weights hash."""
        method.load() if not method.loaded else None
        hashes = method.weight_hashes()
        wsha = ",".join(f"{k}={v}" for k, v in sorted(hashes.items()))
        return MethodRun(method=method, folder=self.out_dir / method.label, weights=hashes, weights_sha256=wsha)

    def run_method(self, run: MethodRun, records: list[InputRecord], on_batch: Callable[[int], None] | None = None) -> list[dict]:
        method, label = run.method, run.method.label
        done = self._done(run)
        pending = [r for r in records if r.id not in done]
        if method.needs_references:  # keep one identity's inputs together so its dictionary is reused
            pending.sort(key=lambda r: (str(r.ref_dir), r.id))
        bar = progress(range(len(pending)), desc=f"restore {label}", total=len(pending))
        it = iter(bar)
        for chunk in batched(pending, self.batch_size):
            items, rows = [], []
            for rec in chunk:
                try:
                    items.append(self._item(rec, method))
                except (CelebrefError, OSError, ValueError) as e:
                    reason = e.reason if isinstance(e, ImageReadError) else str(e)
                    rows.append(self._row(rec.id, label, STATUS_ERROR, reason, 0.0, None, run.weights_sha256))
            results: list[RestoreResult] = []
            if items:
                try:
                    results = method.restore(items)
                except Exception as e:  # noqa: BLE001 - one failing batch is retried image by image
                    results = []
                    for it_ in items:
                        try:
                            results.extend(method.restore([it_]))
                        except Exception as e1:  # noqa: BLE001
                            results.append(RestoreResult(id=it_.id, image=None, status=STATUS_ERROR, reason=f"{type(e1).__name__}: {e1}"))
                    del e
            by_id = {it_.id: it_ for it_ in items}
            for res in results:
                out_rel = None
                if res.image is not None:
                    src = by_id[res.id].image
                    if res.image.shape != src.shape or res.image.dtype != np.uint8:
                        res = RestoreResult(res.id, None, STATUS_ERROR, f"method returned {res.image.shape} {res.image.dtype}, expected {src.shape} uint8", res.seconds)
                    else:
                        path = safe_id_path(run.folder, res.id)
                        write_image(path, res.image)
                        out_rel = path.relative_to(self.out_dir).as_posix()
                rows.append(self._row(res.id, label, res.status, res.reason, res.seconds, out_rel, run.weights_sha256))
            self._append(run, rows)
            for _ in chunk:
                next(it, None)
            if on_batch:
                on_batch(len(chunk))
        done = self._done(run)
        missing = [r.id for r in records if r.id not in done]
        if missing:  # cannot happen unless a method dropped ids: account for them explicitly
            rows = [self._row(i, label, STATUS_ERROR, "method returned no result for this image", 0.0, None, run.weights_sha256) for i in missing]
            self._append(run, rows)
            done = self._done(run)
        out = [done[r.id] for r in records]
        self.rows.extend(out)
        return out

    @staticmethod
    def _row(item_id, label, status, reason, seconds, out_rel, wsha) -> dict:
        return {"id": item_id, "method": label, "status": status, "reason": reason or "", "seconds": float(seconds),
                "output_path": out_rel or "", "weights_sha256": wsha}

    def finish(self) -> pd.DataFrame:
        """Write ``status.parquet`` / ``status.csv`` for every row this runner produced."""
        from celebref.tabular import write_table

        df = pd.DataFrame(self.rows, columns=STATUS_COLUMNS).sort_values(["method", "id"], kind="stable").reset_index(drop=True)
        write_table(df, self.out_dir / "status")
        return df


def summarize_status(df: pd.DataFrame) -> str:
    """One line per method: counts per status (so failures are always reported)."""
    lines = []
    for method, g in df.groupby("method", sort=True):
        counts = g["status"].value_counts().sort_index()
        lines.append(f"  {method}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" (of {len(g)})")
    return "\n".join(lines)
