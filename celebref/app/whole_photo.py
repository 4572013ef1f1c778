"""Whole photos in, whole photos out: detect every face, align it the way each method was trained, restore the
crops batched across photos, paste them back (:mod:`celebref.face.paste`) onto the photo resized by ``upscale``.

Per method: the alignment it declares (``method.alignment``, default ``ffhq5``), looked up in the alignment
registry :data:`baselines.alignments.ALIGNMENTS` (``ffhq5`` GFPGAN/CodeFormer, ``ffhq68`` DMDNet, ``dfdnet``).

Landmark-driven methods get the photo's 68 landmarks mapped into their crop (``RestoreItem.landmarks``).
Overlapping faces are pasted smallest first, so the largest face is pasted last (on top); each face records its
``paste_order`` and the faces it ``overlaps``. A photo without faces is still written (background only).

Outputs under ``out``: ``<method>/<photo id>.png`` (restored photo), ``<method>/faces/<photo id>/<k>_input.png``
and ``<k>_restored.png`` (aligned crop, restored crop), ``faces.parquet``/``faces.csv`` (one row per photo x
method x face; photo-level rows have ``face = -1``; ``matrix`` is the 2x3 photo -> crop transform, JSON;
``source_path`` the input file), ``whole_photo.json`` (configuration, engine). Photos already written
with the same configuration (journal ``.whole_photo.jsonl``) are skipped on a rerun.

Inputs (:func:`collect_photos`): one file, a ``degrade --whole-photo`` output, or a folder read by the same reader
and duplicate rule as ``degrade --whole-photo`` (:func:`celebref.testset.read_hq_set`: of ``dup.png`` and
``dup.jpg`` the first in sorted order is kept, the other gets status ``duplicate_id``). A photo whose output would
not fit in memory is refused before anything is allocated (status ``too_large``, :mod:`.whole_photo_canvas`).
Restoration runs on the given engine (``--engine``: inline in this process, or Ray actors that build the method
themselves from a :class:`~celebref.app.restore_worker.MethodSpec`); face detection and paste-back run here.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import pandas as pd

from baselines.alignments import align, alignment_of
from baselines.base import STATUS_ERROR, STATUS_OK, RestorationMethod, RestoreItem, RestoreResult
from celebref.engine import Engine, get_engine
from celebref.errors import CelebrefError, ConfigError
from celebref.face import Detection, get_backend
from celebref.face.align import apply_affine
from celebref.face.paste import face_to_canvas_matrix, resize_background
from celebref.face.templates import points5_from_68
from celebref.fsutil import atomic_write_bytes, atomic_write_json
from celebref.imageio import encode_image, is_image_name, read_image
from celebref.journal import Journal
from celebref.tabular import write_table

from .restore_worker import MethodSpec
from .whole_photo_canvas import largest_region, memory_limit, paste_in_regions, too_large_reason

FACE_COLUMNS = ["photo", "method", "alignment", "face", "status", "reason", "x1", "y1", "x2", "y2", "score",
                "points5", "landmarks68", "matrix", "paste_order", "overlaps", "w_edge", "input_path", "restored_path",
                "output_path", "source_path"]
#: face statuses set before restoration (the method's own statuses follow, e.g. ok, error, landmarks_rejected)
NO_FACE, TOO_SMALL, NOT_CENTER, LANDMARKS_FAILED, ALIGN_FAILED = ("no_face", "too_small", "not_center",
                                                                  "landmarks_failed", "align_failed")
#: photo statuses set before reading: another file has the same id; the output would not fit in memory
DUPLICATE_ID, TOO_LARGE = "duplicate_id", "too_large"


class PhotoInput(NamedTuple):
    """One input photo: its id, file and a rejection reason decided before reading (``""``, ``duplicate_id``)."""

    id: str
    path: str
    reason: str = ""


@dataclass
class Face:
    index: int
    box: tuple[float, float, float, float]
    score: float
    points5: np.ndarray | None = None
    landmarks68: np.ndarray | None = None
    status: str = STATUS_OK
    reason: str = ""

    @property
    def area(self) -> float:
        return max(self.box[2] - self.box[0], 0.0) * max(self.box[3] - self.box[1], 0.0)


@dataclass
class Photo:
    id: str
    path: str
    image: np.ndarray | None = None
    faces: list[Face] = field(default_factory=list)
    status: str = STATUS_OK
    reason: str = ""


def collect_photos(path: str | os.PathLike) -> list[PhotoInput]:
    """The input photos: one image file, a ``celebref degrade --whole-photo`` output (its ``lq/`` images, ids from
    the manifest), or any other folder or table read as ``degrade --whole-photo`` reads it
    (:func:`celebref.testset.read_hq_set`: same ids, same ``duplicate_id`` rule)."""
    from celebref.testset import read_hq_set

    p = Path(path)
    if p.is_file() and is_image_name(p):
        return [PhotoInput(p.stem, str(p))]
    if p.is_dir() and (p / "manifest.csv").is_file() and (p / "lq").is_dir():
        df = pd.read_csv(p / "manifest.csv", dtype={"id": str}, keep_default_na=False)
        ok = df[df["status"] == "ok"] if "status" in df else df
        return sorted(PhotoInput(str(r["id"]), str(p / r["lq_path"])) for _, r in ok.iterrows())
    if p.is_file() and p.suffix.lower() not in (".csv", ".parquet"):
        raise ConfigError(f"input {str(p)!r} is not an image file, a folder or a manifest")
    return [PhotoInput(it.id, it.gt_path, it.reason) for it in read_hq_set(p).items]


def analyse(photo: Photo, backend: Any, only_center_face: bool = False, min_face_size: float = 0.0) -> Photo:
    """Read the photo (unless already read), detect its faces (68 landmarks each) and mark the ones not to restore,
    with reasons."""
    if photo.image is None:
        try:
            photo.image = read_image(photo.path)
        except (CelebrefError, OSError) as e:
            photo.status, photo.reason = STATUS_ERROR, str(getattr(e, "reason", e))
            return photo
    dets: list[Detection] = backend.detect(photo.image)
    if not dets:
        photo.status, photo.reason = NO_FACE, "no face detected"
        return photo
    h, w = photo.image.shape[:2]
    center = None
    if only_center_face:  # facexlib get_center_face: the box centre nearest the image centre
        dist = [np.hypot((d.box[0] + d.box[2]) / 2 - w / 2, (d.box[1] + d.box[3]) / 2 - h / 2) for d in dets]
        center = int(np.argmin(dist))
    for k, d in enumerate(dets):
        face = Face(k, tuple(float(v) for v in d.box), float(d.score), d.points5)
        photo.faces.append(face)
        if center is not None and k != center:
            face.status, face.reason = NOT_CENTER, "--only-center-face: not the face nearest the centre"
        elif min(d.width, d.height) < min_face_size:
            face.status, face.reason = TOO_SMALL, f"box {d.width:.0f}x{d.height:.0f} px is under the minimum {min_face_size:g} px"
        else:
            try:
                face.landmarks68 = np.asarray(backend.landmarks68(photo.image, d), dtype=np.float64)
                if face.points5 is None:
                    face.points5 = points5_from_68(face.landmarks68)
            except CelebrefError as e:
                face.status, face.reason = LANDMARKS_FAILED, str(e)
    return photo


def _overlaps(faces: Sequence[Face]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {f.index: [] for f in faces}
    for a in faces:
        for b in faces:
            if a.index != b.index and min(a.box[2], b.box[2]) > max(a.box[0], b.box[0]) \
                    and min(a.box[3], b.box[3]) > max(a.box[1], b.box[1]):
                out[a.index].append(b.index)
    return out


@dataclass
class WholePhotoRunner:
    """Restore whole photos with each method (see the module docstring). ``methods`` are loaded instances;
    ``engine`` runs the restoration (``None``: inline in this process); ``max_memory_gib`` bounds what one photo may
    use (``None``: :func:`~celebref.app.whole_photo_canvas.memory_limit`'s default)."""

    out: Path
    methods: list[RestorationMethod]
    upscale: int = 1
    only_center_face: bool = False
    min_face_size: float = 0.0
    batch_size: int = 1
    face_backend: str | None = "dlib"
    background: str = "bilinear"
    save_faces: bool = True
    photos_per_chunk: int = 8
    engine: Engine | None = None
    max_memory_gib: float | None = None
    rows: list[dict] = field(default_factory=list)
    _limit: int = field(default=0, repr=False)

    def config(self) -> dict:
        return {"upscale": self.upscale, "only_center_face": self.only_center_face, "min_face_size": self.min_face_size,
                "face_backend": self.face_backend, "background": self.background,
                "methods": [{"label": m.label, "alignment": alignment_of(m), "weights": m.weight_hashes()} for m in self.methods]}

    def _key(self) -> str:
        return hashlib.sha256(json.dumps(self.config(), sort_keys=True, default=str).encode()).hexdigest()[:16]

    def _done(self) -> dict[str, list[dict]]:
        key, done = self._key(), {}
        for rec in Journal(self.out / ".whole_photo.jsonl").rows():  # a torn last line (a kill) is not a row
            if not isinstance(rec.get("rows"), list) or "photo" not in rec:
                continue
            outs = [r["output_path"] for r in rec["rows"] if r["output_path"]]
            if rec.get("key") == key and all((self.out / o).is_file() for o in outs):
                done[rec["photo"]] = rec["rows"]
        return done

    def run(self, photos: Sequence[PhotoInput | tuple[str, str]]) -> pd.DataFrame:
        """Process the photos (:func:`collect_photos`); returns (and writes) the faces table."""
        photos = [PhotoInput(*p) for p in photos]
        self.out.mkdir(parents=True, exist_ok=True)
        engine = self.engine if self.engine is not None else get_engine("local", workers=1)
        atomic_write_json(self.out / "whole_photo.json", {"config": self.config(), "n_photos": len(photos),
                                                          "engine": engine.describe()})
        limit = self._limit = memory_limit(self.max_memory_gib)
        kept = {p.id: p.path for p in photos if not p.reason}
        for p in photos:  # rejected before reading (e.g. duplicate_id): one row per method, nothing written
            if p.reason:
                why = (f"another input has the id {p.id!r} ({kept[p.id]}); only that one is used"
                       if p.reason == DUPLICATE_ID and p.id in kept else p.reason)
                self.rows.extend({"photo": p.id, "method": m.label, "alignment": alignment_of(m), "face": -1,
                                  "status": p.reason, "reason": why, "output_path": "", "source_path": p.path}
                                 for m in self.methods)
        done = {pid: rows for pid, rows in self._done().items() if pid in kept}  # resume; other photos: not ours
        for rows in done.values():
            self.rows.extend(rows)
        todo = [p for p in photos if not p.reason and p.id not in done]
        backend = get_backend(self.face_backend)
        detect = get_engine("local", workers=1)  # the face backend stays in this process
        step = max(self.photos_per_chunk, 1)
        for i in range(0, len(todo), step):
            chunk = [Photo(p.id, p.path) for p in todo[i:i + step]]
            results = detect.map(lambda b: [self._analyse(p, backend, limit) for p in b],
                                 chunk, keys=[p.id for p in chunk], desc="detect faces", unit="photo")
            for p, r in zip(chunk, results):
                if not r.ok:
                    p.status, p.reason = STATUS_ERROR, r.error or ""
            restored = {m.label: self._restore(m, chunk, engine) for m in self.methods}
            journal = Journal(self.out / ".whole_photo.jsonl", default=str, sort_keys=False)
            for p in chunk:
                rows = [row for m in self.methods for row in self._paste(m, p, restored[m.label])]
                self.rows.extend(rows)
                if all(r["status"] != TOO_LARGE for r in rows):  # a rerun with more memory redoes it
                    journal.append([{"key": self._key(), "photo": p.id, "rows": rows}])
                p.image = None
        df = pd.DataFrame(self.rows, columns=FACE_COLUMNS).sort_values(["method", "photo", "face"], kind="stable")
        df = df.reset_index(drop=True)
        write_table(df, self.out / "faces")
        return df

    def _analyse(self, photo: Photo, backend: Any, limit: int) -> Photo:
        """:func:`analyse`, after refusing a photo whose output canvas would not fit in ``limit`` bytes."""
        try:
            photo.image = read_image(photo.path)
        except (CelebrefError, OSError) as e:
            photo.status, photo.reason = STATUS_ERROR, str(getattr(e, "reason", e))
            return photo
        why = too_large_reason(photo.image.shape[0], photo.image.shape[1], self.upscale, limit)
        if why:
            photo.image, photo.status, photo.reason = None, TOO_LARGE, why
            return photo
        return analyse(photo, backend, self.only_center_face, self.min_face_size)

    def _restore(self, method: RestorationMethod, chunk: list[Photo], engine: Engine) -> dict[tuple[str, int], tuple]:
        """Align the chunk's faces for ``method`` and restore them in batches on ``engine``: ``{(photo, face): (crop,
        matrix, RestoreResult)}``."""
        kind, size = alignment_of(method), int(method.input_size or 512)
        items, meta, out = [], {}, {}
        for p in chunk:
            for f in p.faces:
                if p.image is None or f.status != STATUS_OK:
                    continue
                try:
                    crop, m = align(kind, p.image, f.points5, f.landmarks68, size)
                except (CelebrefError, ValueError) as e:
                    out[(p.id, f.index)] = (None, None, RestoreResult(p.id, None, ALIGN_FAILED, str(e)))
                    continue
                item_id = f"{p.id}#{f.index}"
                lm = apply_affine(m, f.landmarks68) if method.needs_landmarks else None
                items.append(RestoreItem(id=item_id, image=crop, landmarks=lm))
                meta[item_id] = (p.id, f.index, crop, m)
        if not items:
            return out
        results = engine.map(restore_faces, items, keys=[it.id for it in items], batch_size=self.batch_size,
                             desc=f"restore {method.label}", unit="face", session=FaceSession(method))
        for it, r in zip(items, results):
            pid, k, crop, m = meta[it.id]
            res = r.value if r.ok else RestoreResult(it.id, None, STATUS_ERROR, r.error or "")
            if res.image is not None and (res.image.dtype != np.uint8 or res.image.ndim != 3
                                          or res.image.shape[0] != res.image.shape[1]):
                res = RestoreResult(it.id, None, STATUS_ERROR, f"method returned {res.image.shape} {res.image.dtype}")
            out[(pid, k)] = (crop, m, res)
        return out

    def _paste(self, method: RestorationMethod, p: Photo, restored: dict) -> list[dict]:
        label, kind = method.label, alignment_of(method)
        base = {"photo": p.id, "method": label, "alignment": kind, "source_path": p.path}
        if p.image is None:
            return [{**base, "face": -1, "status": p.status, "reason": p.reason, "output_path": ""}]
        size = int(method.input_size or 512)
        order = sorted((f for f in p.faces if (p.id, f.index) in restored and restored[(p.id, f.index)][2].image is not None),
                       key=lambda f: (f.area, -f.index))  # largest last; equal areas: lower index on top
        faces = [restored[(p.id, f.index)][2].image for f in order]
        mats = [face_to_canvas_matrix(restored[(p.id, f.index)][1], size, img.shape[0], self.upscale)
                for f, img in zip(order, faces)]
        h, w = p.image.shape[:2]
        why = too_large_reason(h, w, self.upscale, self._limit,
                               largest_region(faces, mats, (h * self.upscale, w * self.upscale)))
        if why:  # refused before the canvas is made; the faces' rows follow, not pasted
            out_rel, placed, order = "", [], []
            rows = [{**base, "face": -1, "status": TOO_LARGE, "reason": why, "output_path": ""}]
        else:
            canvas = resize_background(p.image, self.upscale, self.background)
            placed = paste_in_regions(canvas, faces, mats, self.upscale)
            out_rel = f"{label}/{p.id}.png"
            _write(self.out / out_rel, canvas)
            del canvas
            rows = [] if p.faces else [{**base, "face": -1, "status": p.status, "reason": p.reason, "output_path": out_rel}]
        pasted = {f.index: (n, pl) for n, (f, pl) in enumerate(zip(order, placed))}
        overlaps = _overlaps(p.faces)
        for f in p.faces:
            crop, m, res = restored.get((p.id, f.index), (None, None, None))
            status, reason = (f.status, f.reason) if res is None else (res.status, res.reason)
            in_rel = rest_rel = ""
            if self.save_faces and crop is not None:
                in_rel = f"{label}/faces/{p.id}/{f.index}_input.png"
                _write(self.out / in_rel, crop)
                if res.image is not None:
                    rest_rel = f"{label}/faces/{p.id}/{f.index}_restored.png"
                    _write(self.out / rest_rel, res.image)
            n, pl = pasted.get(f.index, (-1, None))
            rows.append({**base, "face": f.index, "status": status, "reason": reason,
                         "x1": f.box[0], "y1": f.box[1], "x2": f.box[2], "y2": f.box[3], "score": f.score,
                         "points5": _json(f.points5), "landmarks68": _json(f.landmarks68), "matrix": "" if m is None else json.dumps(np.asarray(m).tolist()),
                         "paste_order": n,
                         "overlaps": json.dumps(overlaps[f.index]), "w_edge": pl.w_edge if pl is not None else -1,
                         "input_path": in_rel, "restored_path": rest_rel, "output_path": out_rel})
        return rows


# -- the engine session (see celebref.engine: Engine.map(session=...)) --------------------------------------
class FaceSession:
    """Session factory of the face-restoring workers: inline, the driver's loaded method is used as it is; a remote
    worker (the factory is pickled without the live method) builds and loads its own from the :class:`MethodSpec`."""

    def __init__(self, method: RestorationMethod):
        self.method: RestorationMethod | None = method
        self.spec = MethodSpec.of(method)

    def __getstate__(self) -> dict:
        return {"method": None, "spec": self.spec}

    def __call__(self, plan: Any = None) -> RestorationMethod:  # noqa: ARG002 - the engine passes its plan
        m = self.method if self.method is not None else self.spec.build()
        if not m.loaded:
            m.load()
        return m


def restore_faces(method: RestorationMethod, items: list[RestoreItem]) -> list[RestoreResult]:
    """Engine batch function: the session's method on a batch of aligned face crops."""
    return method.restore(items)


def _write(path: Path, img: np.ndarray) -> None:
    """PNG, atomically, fast lossless compression (encoding dominates the overhead of a run with ``lq``)."""
    atomic_write_bytes(path, encode_image(img, ".png", png_fast=True))


def _json(a: np.ndarray | None) -> str:
    return "" if a is None else json.dumps(np.round(np.asarray(a, dtype=float), 3).tolist())
