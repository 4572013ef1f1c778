"""Writing an LQ test set: parallel, resumable, byte-identical for any number of workers.

Layout of ``<out>``: :mod:`degradations.manifest` (``docs/FORMATS.md``, "celebref degrade output").

Determinism: each row is a pure function of (HQ file, job, id) (:mod:`degradations.item`); the execution
engine's workers only change who computes it. Results are written atomically; the manifest is written once
at the end in sorted id order, so 1 and N workers give identical bytes.

Resume: finished rows are journalled in ``<out>/.degrade-journal.jsonl`` as they arrive, and the final
manifest is kept. On a rerun with the same configuration, a row is reused only if the GT file's
sha256 is unchanged and the LQ file on disk still has the recorded sha256; everything else is
recomputed. A different configuration in the same ``<out>`` is refused unless ``overwrite=True``; then the rows
reused are none, and every LQ file and reference folder an earlier run here made that this run does not make
again is removed (only those: the ids of the earlier manifest and journal).

Outputs never mix with inputs: ``<out>`` inside an input folder, an input inside ``<out>``, or an ``<out>`` made
by another command (a build output, a restore or evaluate run) is refused before anything is written
(:func:`celebref.outdir.check_output`).

Concurrency: ``<out>`` is locked for the whole run (:func:`celebref.lock.lock_folder`): a second run into the
same folder fails with a clear error while the first lives.

Untouched images: an image whose draw applies no degradation at all (possible with ``dfdnet``: every step has
p < 1) has LQ == GT. They are counted and listed in ``degrade.json`` (``untouched``); with
``Job.redraw_untouched`` they are drawn again from recorded sub-streams (manifest column ``redraws``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np
import pandas as pd

from celebref.engine import Engine, get_engine
from celebref.errors import ConfigError
from celebref.fsutil import atomic_write_json, atomic_write_text, remove_stale_temps
from celebref.journal import Journal
from celebref.lock import lock_folder
from celebref.outdir import check_output
from celebref.provenance import versions
from celebref.tabular import write_table

from .grid import grid_cells, parse_grid
from celebref.testset import HQSet, read_hq_set
from .item import base_row, degrade_batch, init_worker, process_item
from .job import FORMAT_VERSION, Job
from .manifest import JOURNAL, MANIFEST_COLUMNS, json_default, lq_relpath, manifest_frame, native_relpath, read_previous
from .refs import write_refs

__all__ = ["FORMAT_VERSION", "JOURNAL", "MANIFEST_COLUMNS", "Job", "parse_grid", "process_item", "synthesize",
           "synthesize_grid", "untouched_summary"]

BATCH_SIZE = 4  # images per engine task (small: a failure costs at most this many, and workers stay balanced)


def _remove_stale(out: Path, made: Mapping[str, Mapping], rows: list[dict]) -> None:
    """Delete what an earlier degrade run in ``out`` made (the ids of its manifest and journal, ``made``) and this
    run does not make again: the LQ file of an id no longer OK, the native-size LQ of an id that has none now, the
    reference folder of an id that gets none now (fewer than 2 references, ``refs="none"``); folders left empty by
    that go too. Only paths under ``<out>/lq``, ``<out>/lq_native`` and ``<out>/refs`` are touched; files nobody
    listed (a user's notes) are never removed. Call it after :func:`~degradations.refs.write_refs`."""
    by_id = {str(r["id"]): r for r in rows}
    emptied: set[Path] = set()
    for image_id in made:
        row = by_id.get(str(image_id))
        ok = row is not None and row.get("status") == "ok"
        keep = {"lq": ok, "lq_native": ok and bool(row.get("lq_native_path")), "refs": ok and bool(row.get("ref_dir"))}
        for rel, folder in ((lq_relpath(image_id), "lq"), (native_relpath(image_id), "lq_native")):
            path = out / rel
            if not keep[folder] and path.resolve().is_relative_to(out / folder) and path.is_file():
                path.unlink()
                emptied.add(path.parent)
        ref = out / "refs" / image_id
        if not keep["refs"] and ref.resolve().is_relative_to(out / "refs") and ref.is_dir():
            shutil.rmtree(ref)
            emptied.add(ref.parent)
    for folder in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
        while folder not in (out / "lq", out / "lq_native", out / "refs") and folder.is_relative_to(out):
            try:
                folder.rmdir()  # only when empty
            except OSError:
                break
            folder = folder.parent


def untouched_summary(df: pd.DataFrame) -> dict[str, Any]:
    """``{"count", "ids", "redrawn"}``: OK images that drew no degradation (LQ == GT), and how many images
    took a redraw."""
    ok = df[df["status"] == "ok"]
    ids = sorted(str(i) for i in ok.loc[ok["untouched"], "id"])
    return {"count": len(ids), "ids": ids, "redrawn": int((ok["redraws"] > 0).sum())}


def synthesize(inputs: HQSet | str | os.PathLike, out: str | os.PathLike, job: Job, workers: int = 1, overwrite: bool = False,
               refs: str = "link", command: str = "", desc: str = "degrade", engine: str | Engine = "local") -> pd.DataFrame:
    """Degrade every input into ``out`` (layout in :mod:`degradations.manifest`) and return the manifest.

    ``workers`` processes (1 = in this process) of the execution ``engine`` (a name, or an engine instance, which
    is then used as it is and not closed); ``refs`` is ``link`` (hard links,
    copies where linking fails), ``copy`` or ``none`` (no per-LQ reference folders and no SpecificLists.txt).
    ``out`` is locked for the run (a second live run into it is a :class:`ConfigError`)."""
    if refs not in ("link", "copy", "none"):
        raise ConfigError(f"refs must be link, copy or none, got {refs!r}")
    if int(workers) < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if not isinstance(inputs, HQSet):
        inputs = read_hq_set(inputs)
    out = Path(out).resolve()
    check_output(out, "degrade", [inputs.root])  # before the lock creates anything; again under it
    with lock_folder(out, command=command or "degradations.synthesize"):
        return _synthesize(inputs, out, job, int(workers), overwrite, refs, command, desc, engine)


def _synthesize(inputs: HQSet, out: Path, job: Job, workers: int, overwrite: bool, refs: str, command: str, desc: str,
                engine: str | Engine) -> pd.DataFrame:
    check_output(out, "degrade", [inputs.root])
    inside = sorted(it.gt_path for it in inputs.items if Path(it.gt_path).resolve().is_relative_to(out))
    if inside:  # e.g. a manifest listing files of this test set
        raise ConfigError(f"input {inside[0]!r} lies inside --out {str(out)!r} ({len(inside)} input(s) do); outputs must "
                          "not mix with inputs: choose an --out that holds no input")
    remove_stale_temps(out)  # left by a run killed mid-write (we hold the lock: no one else writes here)
    cfg = job.config()
    meta_path = out / "degrade.json"
    if meta_path.is_file():
        try:
            old = json.loads(meta_path.read_text(encoding="utf-8")).get("config")
        except ValueError:
            old = None
        if old != json.loads(json.dumps(cfg)) and not overwrite:
            raise ConfigError(f"{str(out)!r} holds a test set made with another configuration (preset, seed, pipeline, overrides, "
                              "lq size or redraws); use another output folder, or overwrite=True to replace it")
    made = read_previous(out) if meta_path.is_file() else {}  # every id an earlier degrade run here made
    previous = {} if overwrite else made
    if meta_path.is_file() and overwrite:
        (out / JOURNAL).unlink(missing_ok=True)
    # record the configuration first, so an interrupted run is resumed only with the same one
    atomic_write_json(meta_path, {"config": cfg, "complete": False})
    items = list(inputs.items)
    rows: list[dict] = []
    journal_path = out / JOURNAL
    old_threads = cv2.getNumThreads()
    try:
        own = not isinstance(engine, Engine)
        journal = Journal(journal_path, default=json_default, sort_keys=False)  # a line cut by a kill is dropped
        with journal.writer(sync=False) as journal_append, (get_engine(engine, workers=workers) if own else contextlib.nullcontext(engine)) as eng:
            results = eng.map(degrade_batch, [(it, previous.get(it.id)) for it in items], keys=[it.id for it in items],
                              batch_size=BATCH_SIZE, desc=desc, initializer=init_worker, initargs=(cfg, str(out)))
            for item, r in zip(items, results):
                if r.ok:
                    row = r.value
                else:
                    row = base_row(item, job, str(out))
                    row["reason"] = f"failed: {r.error}"
                rows.append(row)
                journal_append([row])
    finally:
        cv2.setNumThreads(old_threads)  # the inline engine ran the initializer in this process
    rows.sort(key=lambda r: r["id"])
    by_id = {it.id: it for it in items}
    generic = [r["lq_path"] for r in rows if r["status"] == "ok"]
    atomic_write_text(out / "GenericLists.txt", "".join(f"{p}\n" for p in generic))
    specific_path = out / "SpecificLists.txt"
    if inputs.grouped and refs != "none":
        lines = write_refs(out, rows, by_id, refs)
        atomic_write_text(specific_path, "".join(f"{line}\n" for line in lines))
    else:
        for r in rows:  # no reference folders in this test set (rows kept from an earlier run may name theirs)
            r["ref_dir"] = r["ref_landmark_dir"] = ""
        if specific_path.exists():
            specific_path.unlink()
    _remove_stale(out, made, rows)
    df = manifest_frame(rows)
    write_table(df, out / "manifest")
    counts = df["status"].value_counts().to_dict()
    atomic_write_json(meta_path, {"config": cfg, "complete": True, "input": {"kind": inputs.kind, "root": inputs.root, "grouped": inputs.grouped},
                                  "counts": {k: int(v) for k, v in sorted(counts.items())}, "untouched": untouched_summary(df),
                                  "versions": versions(), "command": command})
    journal_path.unlink(missing_ok=True)
    return df


def synthesize_grid(inputs: HQSet, out: str | os.PathLike, job: Job, grid: Mapping[str, list[Any]], **kwargs: Any) -> pd.DataFrame:
    """One LQ set per grid cell under ``<out>/<cell>/`` plus ``<out>/grid.parquet``/``.csv``
    (cell, folder, one column per factor, n_ok, n_untouched). Other factors keep their per-image draws."""
    out = Path(out)
    records = []
    check_output(out, "degrade", [inputs.root])
    with lock_folder(out, command=kwargs.get("command", "") or "degradations.synthesize_grid"):
        check_output(out, "degrade", [inputs.root])
        for name, cell in grid_cells(grid):
            cell_job = Job(job.pipeline, job.preset, job.seed, {**job.overrides, **cell}, job.lq_size, job.redraw_untouched)
            df = synthesize(inputs, out / name, cell_job, desc=f"degrade {name}", **kwargs)
            records.append({"cell": name, "folder": name, **{k: (np.nan if v is None else float(v)) for k, v in cell.items()},
                            "n_ok": int((df["status"] == "ok").sum()), "n_untouched": untouched_summary(df)["count"]})
        table = pd.DataFrame(records)
        write_table(table, out / "grid")
    return table
