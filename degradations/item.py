"""Degrading one input image: read the GT, draw its parameters, write its LQ file(s), return its manifest row.

Each row is a pure function of (GT file, job, image id); :func:`degrade_batch` is what the execution engine
(:mod:`celebref.engine`) runs in its workers, after :func:`init_worker` has set the job once per process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np

from celebref.errors import ImageReadError
from celebref.fsutil import atomic_write_bytes, sha256_bytes, sha256_file
from celebref.imageio import decode_image, encode_image

from .factors import PARAM_NAMES, is_untouched
from celebref.testset import HQItem
from .job import Job
from .manifest import MANIFEST_COLUMNS, lq_relpath, native_relpath
from .resize import downscaled_size

__all__ = ["degrade_batch", "draw_params", "init_worker", "process_item", "relpath"]


def relpath(path: str, out: str) -> str:
    """``path`` relative to ``out`` with POSIX separators ("" for "")."""
    return os.path.relpath(path, out).replace(os.sep, "/") if path else ""


def base_row(item: HQItem, job: Job, out: str) -> dict[str, Any]:
    """The row of ``item`` before any work: rejected with the input's own reason (if any)."""
    row: dict[str, Any] = {c: None for c in MANIFEST_COLUMNS}
    row.update(id=item.id, identity=item.identity, gt_path=relpath(item.gt_path, out), gt_path_abs=item.gt_path,
               landmarks_path=relpath(item.landmarks_path, out), preset=job.preset, seed=int(job.seed), status="rejected", reason=item.reason,
               gt_sha256="", lq_path="", lq_sha256="", lq_size="", ref_dir="", ref_landmark_dir="", n_refs=0, untouched=False, redraws=0)
    return row


def draw_params(job: Job, image_id: str) -> tuple[dict[str, Any], int]:
    """``(params, redraw)``: the image's own draw, or, when it drew no degradation and the job allows redraws,
    the first redraw ``1..job.redraw_untouched`` that has one (the last one tried if none has)."""
    params = job.pipeline.sample(job.seed, image_id, job.overrides)
    redraw = 0
    while is_untouched(params) and redraw < int(job.redraw_untouched):
        redraw += 1
        params = job.pipeline.sample(job.seed, image_id, job.overrides, redraw=redraw)
    return params, redraw


def _reusable(previous: Mapping[str, Any] | None, gt_sha256: str, lq_rel: str, lq_abs: str, out: str) -> bool:
    return previous is not None and previous.get("status") == "ok" and previous.get("gt_sha256") == gt_sha256 \
        and previous.get("lq_path") == lq_rel and os.path.isfile(lq_abs) and sha256_file(lq_abs) == previous.get("lq_sha256") \
        and (not previous.get("lq_native_path") or os.path.isfile(os.path.join(out, str(previous["lq_native_path"]))))


def process_item(item: HQItem, job: Job, out: str, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Degrade one input and write its LQ file; returns its manifest row. Never raises for a bad file:
    the row gets ``status = rejected`` and a ``reason``. A ``previous`` row (resume) is kept when the GT is
    unchanged and the LQ file on disk still has the recorded sha256."""
    row = base_row(item, job, out)
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
    if _reusable(previous, row["gt_sha256"], lq_rel, lq_abs, out):
        kept = {c: previous.get(c) for c in MANIFEST_COLUMNS}
        kept.update({k: v for k, v in previous.items() if k not in kept})
        kept.update(gt_path=row["gt_path"], gt_path_abs=row["gt_path_abs"], landmarks_path=row["landmarks_path"])
        kept.update(untouched=is_untouched(kept), redraws=0 if kept.get("redraws") is None else kept["redraws"])
        return kept
    try:
        img = decode_image(data, item.gt_path)
    except ImageReadError as e:
        row["reason"] = f"unreadable: {e.reason}"
        return row
    h, w = img.shape[:2]
    try:
        params, redraw = draw_params(job, item.id)
        native_img: list[np.ndarray] = []
        lq = job.pipeline.apply(img, params, job.lq_size, native_out=native_img)
    except Exception as e:  # noqa: BLE001 - e.g. an image too small for the recipe; one file never stops the batch
        row.update(gt_width=w, gt_height=h, reason=f"degradation_failed: {type(e).__name__}: {e}".splitlines()[0][:300])
        return row
    try:
        return _write_outputs(row, item, job, out, params, redraw, lq, native_img, lq_abs, lq_rel, w, h)
    except OSError as e:  # disk full, I/O error, permissions: recorded for this image, redone by a rerun
        row.update(gt_width=w, gt_height=h, reason=f"write_failed: {e.strerror or e} ({e.filename or lq_abs})"[:300])
        return row


def _write_outputs(row: dict[str, Any], item: HQItem, job: Job, out: str, params: dict[str, Any], redraw: int,
                   lq: np.ndarray, native_img: list[np.ndarray], lq_abs: str, lq_rel: str, w: int, h: int) -> dict[str, Any]:
    """Write the LQ file (and its native-size version) of one image and complete its manifest row."""
    png = encode_image(lq, ".png", png_fast=True)
    atomic_write_bytes(lq_abs, png)
    native = (w, h)
    if params.get("scale_applied"):
        step = job.pipeline.step("downsample")
        native = downscaled_size(w, h, float(params["scale"]), step.get("size_rule", "floordiv"))
    native_rel, native_sha = "", ""
    if params.get("scale_applied") and native_img and native_img[0].shape[:2] != lq.shape[:2]:
        # the LQ at its native low resolution too, for baselines such as `bicubic` that upsample it themselves
        native_rel = native_relpath(item.id)
        native_png = encode_image(native_img[0], ".png", png_fast=True)
        atomic_write_bytes(os.path.join(out, native_rel), native_png)
        native_sha = sha256_bytes(native_png)
    row.update({k: params[k] for k in PARAM_NAMES})
    row.update({k: v for k, v in params.items() if k not in row})  # parameters of plugin ops
    row.update(lq_native_path=native_rel, lq_native_sha256=native_sha, untouched=is_untouched(params), redraws=redraw)
    row.update(status="ok", reason="", gt_width=w, gt_height=h, lq_path=lq_rel, lq_sha256=sha256_bytes(png),
               lq_size=f"{lq.shape[1]}x{lq.shape[0]}", lq_width=lq.shape[1], lq_height=lq.shape[0],
               lq_native_width=native[0], lq_native_height=native[1])
    return row


# -- in the engine's workers -------------------------------------------------------------------------------

_WORKER_JOB: Job | None = None
_WORKER_OUT: str = ""


def init_worker(job_cfg: dict, out: str) -> None:
    """Engine initializer: the job (from its config) and output folder of this process; OpenCV single-threaded
    (the parallelism is across images)."""
    global _WORKER_JOB, _WORKER_OUT
    cv2.setNumThreads(1)
    _WORKER_JOB = Job.from_config(job_cfg)
    _WORKER_OUT = out


def degrade_batch(tasks: list[tuple[HQItem, dict | None]]) -> list[dict[str, Any] | Exception]:
    """Engine function: one manifest row per ``(item, previous row)``; an unexpected error (disk full, ...) is
    returned as that item's error."""
    if _WORKER_JOB is None:
        raise RuntimeError("degrade_batch called before init_worker")
    out: list[dict[str, Any] | Exception] = []
    for item, previous in tasks:
        try:
            out.append(process_item(item, _WORKER_JOB, _WORKER_OUT, previous))
        except Exception as exc:  # noqa: BLE001 - recorded as this item's reason
            out.append(exc)
    return out
