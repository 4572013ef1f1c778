"""Writing an LQ test set: parallel, resumable, byte-identical for any number of workers.

Layout of ``<out>`` (``docs/FORMATS.md``, "celebref degrade output")::

    lq/<id>.png                   one LQ image per accepted input (ids may contain '/')
    manifest.parquet, .csv        one row per input, sorted by id (columns: MANIFEST_COLUMNS)
    degrade.json                  preset, seed, pipeline (as data), overrides, lq size, versions
    GenericLists.txt              DMDNet list: one LQ path per line (relative to <out>)
    SpecificLists.txt             DMDNet list: LQ<TAB>RefDir<TAB>RefLandmarkDir (identity-grouped input)
    refs/<id>/images/, landmarks/ per-LQ reference folders for SpecificLists (the LQ's own GT left out)

Determinism: each row is a pure function of (HQ file, pipeline, seed, overrides, lq size, id); workers
only change who computes it. Results are written atomically; the manifest is written once at the end
in sorted id order, so 1 and N workers give identical bytes.

Resume: finished rows are journalled in ``<out>/.degrade-journal.jsonl`` as they arrive, and the final
manifest is kept. On a rerun with the same configuration, a row is reused only if the GT file's
sha256 is unchanged and the LQ file on disk still has the recorded sha256; everything else is
recomputed. A different configuration in the same ``<out>`` is refused unless ``overwrite=True``.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import multiprocessing as mp
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import cv2
import numpy as np
import pandas as pd

from celebref.errors import ConfigError, ImageReadError
from celebref.fsutil import atomic_write, atomic_write_json, atomic_write_text, sha256_bytes, sha256_file
from celebref.imageio import decode_image, encode_image
from celebref.progress import progress

from .inputs import InputItem, InputSet, collect_inputs
from .pipeline import PARAM_NAMES, Pipeline
from .resize import downscaled_size

FORMAT_VERSION = 1
JOURNAL = ".degrade-journal.jsonl"
MANIFEST_COLUMNS = (
    "id", "identity", "status", "reason", "gt_path", "gt_path_abs", "gt_sha256", "gt_width", "gt_height", "landmarks_path",
    "preset", "seed", "lq_path", "lq_sha256", "lq_size", "lq_width", "lq_height", "lq_native_width", "lq_native_height", "lq_native_path", "lq_native_sha256",
    *PARAM_NAMES, "ref_dir", "ref_landmark_dir", "n_refs",
)


@dataclass
class Job:
    """Everything that determines the output bytes (and nothing else: no worker count, no paths but out)."""

    pipeline: Pipeline
    preset: str
    seed: int
    overrides: dict[str, Any] = field(default_factory=dict)
    lq_size: str | int = "gt"

    def config(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "preset": self.preset, "seed": int(self.seed), "pipeline": self.pipeline.to_dict(),
                "overrides": dict(sorted(self.overrides.items())), "lq_size": self.lq_size}


# --- per image ---------------------------------------------------------------------------------

_WORKER_JOB: Job | None = None
_WORKER_OUT: str = ""


def _init_worker(job_cfg: dict, out: str) -> None:
    global _WORKER_JOB, _WORKER_OUT
    cv2.setNumThreads(1)
    _WORKER_JOB = _job_from_config(job_cfg)
    _WORKER_OUT = out


def _job_from_config(cfg: dict) -> Job:
    return Job(Pipeline.from_dict(cfg["pipeline"]), cfg["preset"], int(cfg["seed"]), dict(cfg["overrides"]), cfg["lq_size"])


def _rel(path: str, out: str) -> str:
    return os.path.relpath(path, out).replace(os.sep, "/") if path else ""


def _base_row(item: InputItem, job: Job, out: str) -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in MANIFEST_COLUMNS}
    row.update(id=item.id, identity=item.identity, gt_path=_rel(item.gt_path, out), gt_path_abs=item.gt_path,
               landmarks_path=_rel(item.landmarks_path, out), preset=job.preset, seed=int(job.seed), status="rejected", reason=item.reason,
               gt_sha256="", lq_path="", lq_sha256="", lq_size="", ref_dir="", ref_landmark_dir="", n_refs=0)
    return row


def lq_relpath(image_id: str) -> str:
    """``lq/<id>.png`` (POSIX separators)."""
    return f"lq/{image_id}.png"


def native_relpath(image_id: str) -> str:
    """``lq_native/<id>.png``: the LQ before it is upsampled back (written when a downscale was applied)."""
    return f"lq_native/{image_id}.png"


def process_item(item: InputItem, job: Job, out: str, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Degrade one input and write its LQ file; returns its manifest row. Never raises for a bad file:
    the row gets ``status = rejected`` and a ``reason``."""
    row = _base_row(item, job, out)
    if item.reason:
        return row
    try:
        data = Path(item.gt_path).read_bytes()
    except OSError as e:
        row["reason"] = f"unreadable: {e.strerror or e}"
        return row
    row["gt_sha256"] = sha256_bytes(data)
    lq_rel = lq_relpath(item.id)
    lq_abs = os.path.join(out, lq_rel)
    if previous is not None and previous.get("status") == "ok" and previous.get("gt_sha256") == row["gt_sha256"] \
            and previous.get("lq_path") == lq_rel and os.path.isfile(lq_abs) and sha256_file(lq_abs) == previous.get("lq_sha256") \
            and (not previous.get("lq_native_path") or os.path.isfile(os.path.join(out, str(previous["lq_native_path"])))):
        kept = {c: previous.get(c) for c in MANIFEST_COLUMNS}
        kept.update(gt_path=row["gt_path"], gt_path_abs=row["gt_path_abs"], landmarks_path=row["landmarks_path"])
        return kept
    try:
        img = decode_image(data, item.gt_path)
    except ImageReadError as e:
        row["reason"] = f"unreadable: {e.reason}"
        return row
    h, w = img.shape[:2]
    try:
        params = job.pipeline.sample(job.seed, item.id, job.overrides)
        native_img: list[np.ndarray] = []
        lq = job.pipeline.apply(img, params, job.lq_size, native_out=native_img)
    except Exception as e:  # noqa: BLE001 - e.g. an image too small for the recipe; one file never stops the batch
        row.update(gt_width=w, gt_height=h, reason=f"degradation_failed: {type(e).__name__}: {e}".splitlines()[0][:300])
        return row
    png = encode_image(lq, ".png", png_fast=True)
    with atomic_write(lq_abs, "wb") as f:
        f.write(png)
    native = (w, h)
    if params.get("scale_applied"):
        step = job.pipeline.step("downsample")
        native = downscaled_size(w, h, float(params["scale"]), step.get("size_rule", "floordiv"))
    native_rel, native_sha = "", ""
    if params.get("scale_applied") and native_img and native_img[0].shape[:2] != lq.shape[:2]:
        # the LQ at its native low resolution too, for baselines such as `bicubic` that upsample it themselves
        native_rel = native_relpath(item.id)
        native_png = encode_image(native_img[0], ".png", png_fast=True)
        with atomic_write(os.path.join(out, native_rel), "wb") as f:
            f.write(native_png)
        native_sha = sha256_bytes(native_png)
    row.update({k: params[k] for k in PARAM_NAMES})
    row.update(lq_native_path=native_rel, lq_native_sha256=native_sha)
    row.update(status="ok", reason="", gt_width=w, gt_height=h, lq_path=lq_rel, lq_sha256=sha256_bytes(png),
               lq_size=f"{lq.shape[1]}x{lq.shape[0]}", lq_width=lq.shape[1], lq_height=lq.shape[0],
               lq_native_width=native[0], lq_native_height=native[1])
    return row


def _worker(task: tuple[InputItem, dict | None]) -> dict[str, Any]:
    assert _WORKER_JOB is not None
    return process_item(task[0], _WORKER_JOB, _WORKER_OUT, task[1])


# --- tables ------------------------------------------------------------------------------------

def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    bool_cols = [c for c in PARAM_NAMES if c.endswith("_applied")] + ["noise_gray"]
    str_cols = ["id", "identity", "status", "reason", "gt_path", "gt_path_abs", "gt_sha256", "landmarks_path", "preset", "lq_path",
                "lq_sha256", "lq_size", "lq_native_path", "lq_native_sha256", "blur_kernel", "blur_type", "noise_kind", "color_order", "ref_dir", "ref_landmark_dir"]
    int_cols = ["seed", "n_refs"]
    for c in df.columns:
        if c in bool_cols:
            df[c] = df[c].map(lambda v: bool(v) if v is not None and not (isinstance(v, float) and math.isnan(v)) else False).astype(bool)
        elif c in str_cols:
            df[c] = df[c].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)).astype(object)
        elif c in int_cols:
            df[c] = df[c].fillna(0).astype("int64")
        else:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return df


def write_table(df: pd.DataFrame, stem: Path) -> None:
    """``<stem>.parquet`` and ``<stem>.csv``, atomically."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    with atomic_write(stem.with_suffix(".parquet"), "wb") as f:
        f.write(buf.getvalue())
    atomic_write_text(stem.with_suffix(".csv"), df.to_csv(index=False, lineterminator="\n"))


def _read_previous(out: Path) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    manifest = out / "manifest.parquet"
    if manifest.is_file():
        try:
            for r in pd.read_parquet(manifest).to_dict("records"):
                rows[str(r["id"])] = r
        except Exception:  # noqa: BLE001 - a damaged manifest just means recomputing
            rows = {}
    journal = out / JOURNAL
    if journal.is_file():
        for line in journal.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a line cut by an interruption
            if isinstance(r, dict) and "id" in r:
                rows[str(r["id"])] = r
    return rows


# --- references for SpecificLists ---------------------------------------------------------------

def _place(src: str, dst: Path, mode: str) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        try:
            if mode == "link" and os.path.samefile(src, dst):
                return
        except OSError:
            pass
        if mode == "copy" and dst.stat().st_size == os.path.getsize(src) and sha256_file(dst) == sha256_file(src):
            return
    tmp = dst.with_name(f".{dst.name}.tmp")
    if tmp.exists():
        tmp.unlink()
    if mode == "link":
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
    else:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _write_refs(out: Path, rows: list[dict], items: dict[str, InputItem], mode: str) -> list[str]:
    """Fill ``refs/<id>/{images,landmarks}`` for every OK row of an identity; returns SpecificLists lines."""
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
            continue
        ref_dir = out / "refs" / r["id"] / "images"
        lm_dir = out / "refs" / r["id"] / "landmarks"
        wanted_img, wanted_lm = set(), set()
        for o in refs:
            src = items[o["id"]]
            name = Path(src.gt_path).name
            _place(src.gt_path, ref_dir / name, mode)
            _place(src.landmarks_path, lm_dir / f"{name}.txt", mode)
            wanted_img.add(name)
            wanted_lm.add(f"{name}.txt")
        for d, wanted in ((ref_dir, wanted_img), (lm_dir, wanted_lm)):
            for f in d.iterdir():
                if f.name not in wanted and f.is_file():
                    f.unlink()  # left from an earlier run with other inputs
        r["ref_dir"] = _rel(str(ref_dir), str(out))
        r["ref_landmark_dir"] = _rel(str(lm_dir), str(out))
        lines.append(f"{r['lq_path']}\t{r['ref_dir']}\t{r['ref_landmark_dir']}")
    return lines


# --- the whole set -----------------------------------------------------------------------------

def _remove_stale(out: Path, previous: Mapping[str, Mapping], rows: list[dict]) -> None:
    """Delete the LQ files and reference folders of ids from an earlier run that are no longer produced
    (input removed or now rejected); only paths under ``<out>/lq``, ``<out>/lq_native`` and ``<out>/refs`` are touched."""
    current = {r["id"] for r in rows if r["status"] == "ok"}
    for image_id, row in previous.items():
        if image_id in current:
            continue
        for rel, folder in ((lq_relpath(image_id), "lq"), (native_relpath(image_id), "lq_native")):
            lq = out / rel
            if lq.resolve().is_relative_to(out / folder) and lq.is_file():
                lq.unlink()
        ref = out / "refs" / image_id
        if ref.resolve().is_relative_to(out / "refs") and ref.is_dir():
            shutil.rmtree(ref)


def _versions() -> dict[str, str]:
    import PIL

    return {"numpy": np.__version__, "opencv": cv2.__version__, "pillow": PIL.__version__, "pandas": pd.__version__}


def synthesize(inputs: InputSet | str | os.PathLike, out: str | os.PathLike, job: Job, workers: int = 1, overwrite: bool = False,
               refs: str = "link", command: str = "", desc: str = "degrade") -> pd.DataFrame:
    """Degrade every input into ``out`` (layout in the module docstring) and return the manifest.

    ``workers`` processes (1 = in this process); ``refs`` is ``link`` (hard links, copies where linking
    fails), ``copy`` or ``none`` (no per-LQ reference folders and no SpecificLists.txt)."""
    if refs not in ("link", "copy", "none"):
        raise ConfigError(f"refs must be link, copy or none, got {refs!r}")
    if not isinstance(inputs, InputSet):
        inputs = collect_inputs(inputs)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    inside = {it.gt_path for it in inputs.items if Path(it.gt_path).is_relative_to(out)}
    if inside:  # our own outputs when --out lies inside a plain --input folder
        inputs = InputSet(inputs.kind, inputs.root, inputs.grouped, [it for it in inputs.items if it.gt_path not in inside])
    cfg = job.config()
    meta_path = out / "degrade.json"
    if meta_path.is_file():
        try:
            old = json.loads(meta_path.read_text(encoding="utf-8")).get("config")
        except ValueError:
            old = None
        if old != json.loads(json.dumps(cfg)) and not overwrite:
            raise ConfigError(f"{str(out)!r} holds a test set made with another configuration (preset, seed, pipeline, overrides or lq size); "
                              "use another --out, or --overwrite to replace it")
    previous = {} if overwrite else _read_previous(out)
    if meta_path.is_file() and overwrite:
        (out / JOURNAL).unlink(missing_ok=True)
    # record the configuration first, so an interrupted run is resumed only with the same one
    atomic_write_json(meta_path, {"config": cfg, "complete": False})
    tasks = [(it, previous.get(it.id)) for it in inputs.items]
    rows: list[dict] = []
    journal_path = out / JOURNAL
    with open(journal_path, "a", encoding="utf-8") as journal:
        def record(results: Iterable[dict]) -> None:
            for row in progress(results, desc=desc, total=len(tasks)):
                rows.append(row)
                journal.write(json.dumps(row, default=_json_default) + "\n")
                journal.flush()

        if workers <= 1:
            old_threads = cv2.getNumThreads()
            cv2.setNumThreads(1)
            try:
                record(process_item(it, job, str(out), prev) for it, prev in tasks)
            finally:
                cv2.setNumThreads(old_threads)
        else:
            # never plain fork: a process that already ran OpenCV's thread pool can deadlock in a forked child
            ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
            if ctx.get_start_method() == "forkserver":
                ctx.set_forkserver_preload([__name__])
            with ctx.Pool(workers, initializer=_init_worker, initargs=(cfg, str(out))) as pool:
                record(pool.imap_unordered(_worker, tasks, chunksize=max(1, min(16, len(tasks) // (workers * 8) or 1))))
    rows.sort(key=lambda r: r["id"])
    items = {it.id: it for it in inputs.items}
    _remove_stale(out, previous, rows)
    generic = [r["lq_path"] for r in rows if r["status"] == "ok"]
    atomic_write_text(out / "GenericLists.txt", "".join(f"{p}\n" for p in generic))
    specific_path = out / "SpecificLists.txt"
    if inputs.grouped and refs != "none":
        lines = _write_refs(out, rows, items, refs)
        atomic_write_text(specific_path, "".join(f"{line}\n" for line in lines))
    elif specific_path.exists():
        specific_path.unlink()
    df = _frame(rows)
    write_table(df, out / "manifest")
    counts = df["status"].value_counts().to_dict()
    atomic_write_json(meta_path, {"config": cfg, "complete": True, "input": {"kind": inputs.kind, "root": inputs.root, "grouped": inputs.grouped},
                                  "counts": {k: int(v) for k, v in sorted(counts.items())}, "versions": _versions(), "command": command})
    journal_path.unlink(missing_ok=True)
    return df


def _json_default(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return str(v)


# --- grids -------------------------------------------------------------------------------------

def parse_grid(specs: Iterable[str]) -> dict[str, list[Any]]:
    """``["scale=4,8,16", "noise=0,10"]`` -> ``{"scale": [4.0, 8.0, 16.0], "noise": [0.0, 10.0]}``
    (``jpeg`` values may be ``none``)."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not values.strip():
            raise ConfigError(f"--grid {spec!r}: use FACTOR=v1,v2,... (factors: blur, scale, noise, jpeg)")
        if key not in ("blur", "scale", "noise", "jpeg"):
            raise ConfigError(f"--grid {spec!r}: unknown factor {key!r} (known: blur, scale, noise, jpeg)")
        if key in grid:
            raise ConfigError(f"--grid factor {key!r} given twice")
        vals: list[Any] = []
        for v in values.split(","):
            v = v.strip()
            if key == "jpeg" and v.lower() in ("none", "off"):
                vals.append(None)
                continue
            try:
                vals.append(int(v) if key == "jpeg" else float(v))
            except ValueError:
                raise ConfigError(f"--grid {spec!r}: {v!r} is not a number") from None
        grid[key] = vals
    return grid


def _fmt(v: Any) -> str:
    if v is None:
        return "none"
    return f"{v:g}" if isinstance(v, float) else str(v)


def grid_cells(grid: Mapping[str, list[Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Every combination, in the order the factors and values were given: ``(folder name, overrides)``."""
    keys = list(grid)
    cells = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        cells.append(("_".join(f"{k}-{_fmt(v)}" for k, v in zip(keys, combo)), dict(zip(keys, combo))))
    return cells


def synthesize_grid(inputs: InputSet, out: str | os.PathLike, job: Job, grid: Mapping[str, list[Any]], **kwargs: Any) -> pd.DataFrame:
    """One LQ set per grid cell under ``<out>/<cell>/`` plus ``<out>/grid.parquet``/``.csv``
    (cell, folder, one column per factor, n_ok). Other factors keep their per-image draws."""
    out = Path(out)
    records = []
    for name, cell in grid_cells(grid):
        cell_job = Job(job.pipeline, job.preset, job.seed, {**job.overrides, **cell}, job.lq_size)
        df = synthesize(inputs, out / name, cell_job, desc=f"degrade {name}", **kwargs)
        records.append({"cell": name, "folder": name, **{k: (np.nan if v is None else float(v)) for k, v in cell.items()},
                        "n_ok": int((df["status"] == "ok").sum())})
    table = pd.DataFrame(records)
    write_table(table, out / "grid")
    return table
