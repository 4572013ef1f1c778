"""Whole photos in, whole photos out: detect every face, align it the way each method was trained, restore the
crops batched across photos, paste them back (:mod:`celebref.face.paste`) onto the photo resized by ``upscale``.

Per method (``method.alignment``; methods without the attribute use ``ffhq5``):

* ``ffhq5``: facexlib's FFHQ 5-point template (GFPGAN, CodeFormer; :mod:`celebref.face.templates`), from the
  detection's ``points5`` (the backend's eye centres, nose tip, mouth corners);
* ``ffhq68``: the FFHQ dataset alignment from 68 landmarks (DMDNet; :func:`celebref.face.align.ffhq_align`);
* ``dfdnet``: DFDNet's official template alignment (:mod:`baselines.dfdnet.align`).

Landmark-driven methods get the photo's 68 landmarks mapped into their crop (``RestoreItem.landmarks``).
Overlapping faces are pasted smallest first, so the largest face is pasted last (on top); each face records its
``paste_order`` and the faces it ``overlaps``. A photo without faces is still written (background only).

Outputs under ``out``: ``<method>/<photo id>.png`` (restored photo), ``<method>/faces/<photo id>/<k>_input.png``
and ``<k>_restored.png`` (aligned crop, restored crop), ``faces.parquet``/``faces.csv`` (one row per photo x
method x face; photo-level rows have ``face = -1``;
``matrix`` is the 2x3 photo -> crop transform, JSON), ``whole_photo.json`` (configuration). Photos already written
with the same configuration (journal ``.whole_photo.jsonl``) are skipped on a rerun.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from celebref.engine import get_engine
from celebref.errors import CelebrefError, ConfigError
from celebref.face import Detection, get_backend
from celebref.face.align import apply_affine, ffhq_align
from celebref.face.paste import face_to_canvas_matrix, paste_faces, resize_background
from celebref.face.templates import ffhq5_align, points5_from_68
from celebref.fsutil import atomic_write_bytes, atomic_write_json
from celebref.imageio import encode_image, is_image_name, list_images, read_image
from celebref.journal import Journal
from celebref.tabular import write_table

from baselines.base import STATUS_ERROR, STATUS_OK, RestorationMethod, RestoreItem, RestoreResult

ALIGNMENTS = ("ffhq5", "ffhq68", "dfdnet")
FACE_COLUMNS = ["photo", "method", "alignment", "face", "status", "reason", "x1", "y1", "x2", "y2", "score",
                "points5", "landmarks68", "matrix", "paste_order", "overlaps", "w_edge", "input_path", "restored_path", "output_path"]
#: face statuses set before restoration (the method's own statuses follow, e.g. ok, error, landmarks_rejected)
NO_FACE, TOO_SMALL, NOT_CENTER, LANDMARKS_FAILED, ALIGN_FAILED = ("no_face", "too_small", "not_center",
                                                                  "landmarks_failed", "align_failed")


def alignment_of(method: RestorationMethod) -> str:
    kind = getattr(method, "alignment", "ffhq5")
    if kind not in ALIGNMENTS:
        raise ConfigError(f"method {method.name!r} declares alignment {kind!r}; known: {', '.join(ALIGNMENTS)}")
    return kind


def align(kind: str, img: np.ndarray, points5: np.ndarray, landmarks68: np.ndarray, size: int = 512
          ) -> tuple[np.ndarray, np.ndarray]:
    """``(crop, matrix photo -> crop)`` of one face with the alignment ``kind`` (see the module docstring)."""
    if kind == "ffhq5":
        return ffhq5_align(img, points5, size)
    if kind == "ffhq68":
        r = ffhq_align(img, landmarks68, size)
        return r.image, r.matrix
    if kind == "dfdnet":
        from baselines.dfdnet.align import align_face, five_points_from_68

        return align_face(img, five_points_from_68(landmarks68), size)
    raise ConfigError(f"unknown alignment {kind!r}; known: {', '.join(ALIGNMENTS)}")


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


def collect_photos(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``(photo id, file)`` pairs: one image file, a ``celebref degrade --whole-photo`` output (its ``lq/`` images,
    ids from the manifest), or every image under a folder (id = relative path without extension)."""
    p = Path(path)
    if p.is_file():
        if not is_image_name(p):
            raise ConfigError(f"input {str(p)!r} is not an image file")
        return [(p.stem, str(p))]
    if not p.is_dir():
        raise ConfigError(f"input {str(p)!r} does not exist")
    if (p / "manifest.csv").is_file() and (p / "lq").is_dir():
        df = pd.read_csv(p / "manifest.csv", dtype={"id": str}, keep_default_na=False)
        ok = df[df["status"] == "ok"] if "status" in df else df
        return sorted((str(r["id"]), str(p / r["lq_path"])) for _, r in ok.iterrows())
    return [(f.relative_to(p).with_suffix("").as_posix(), str(f)) for f in list_images(p)]


def analyse(photo: Photo, backend: Any, only_center_face: bool = False, min_face_size: float = 0.0) -> Photo:
    """Read the photo, detect its faces (68 landmarks each) and mark the ones not to restore, with reasons."""
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
    """Restore whole photos with each method (see the module docstring). ``methods`` are loaded instances."""

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
    rows: list[dict] = field(default_factory=list)

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

    def run(self, photos: Sequence[tuple[str, str]]) -> pd.DataFrame:
        """Process ``(id, path)`` photos; returns (and writes) the faces table."""
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out / "whole_photo.json", {"config": self.config(), "n_photos": len(photos)})
        wanted = {pid for pid, _ in photos}
        done = {pid: rows for pid, rows in self._done().items() if pid in wanted}  # resume; other photos: not ours
        for rows in done.values():
            self.rows.extend(rows)
        todo = [p for p in photos if p[0] not in done]
        backend = get_backend(self.face_backend)
        engine = get_engine("local", workers=1)
        step = max(self.photos_per_chunk, 1)
        for i in range(0, len(todo), step):
            chunk = [Photo(pid, path) for pid, path in todo[i:i + step]]
            results = engine.map(lambda b: [analyse(p, backend, self.only_center_face, self.min_face_size) for p in b],
                                 chunk, keys=[p.id for p in chunk], desc="detect faces", unit="photo")
            for p, r in zip(chunk, results):
                if not r.ok:
                    p.status, p.reason = STATUS_ERROR, r.error or ""
            restored = {m.label: self._restore(m, chunk, engine) for m in self.methods}
            journal = Journal(self.out / ".whole_photo.jsonl", default=str, sort_keys=False)
            for p in chunk:
                rows = [row for m in self.methods for row in self._paste(m, p, restored[m.label])]
                self.rows.extend(rows)
                journal.append([{"key": self._key(), "photo": p.id, "rows": rows}])
                p.image = None
        df = pd.DataFrame(self.rows, columns=FACE_COLUMNS).sort_values(["method", "photo", "face"], kind="stable")
        df = df.reset_index(drop=True)
        write_table(df, self.out / "faces")
        return df

    def _restore(self, method: RestorationMethod, chunk: list[Photo], engine: Any) -> dict[tuple[str, int], tuple]:
        """Align the chunk's faces for ``method`` and restore them in batches: ``{(photo, face): (crop, matrix,
        RestoreResult)}``."""
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
        results = engine.map(method.restore, items, keys=[it.id for it in items], batch_size=self.batch_size,
                             desc=f"restore {method.label}", unit="face")
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
        base = {"photo": p.id, "method": label, "alignment": kind}
        if p.image is None:
            return [{**base, "face": -1, "status": p.status, "reason": p.reason, "output_path": ""}]
        size = int(method.input_size or 512)
        order = sorted((f for f in p.faces if (p.id, f.index) in restored and restored[(p.id, f.index)][2].image is not None),
                       key=lambda f: (f.area, -f.index))  # largest last; equal areas: lower index on top
        canvas = resize_background(p.image, self.upscale, self.background)
        faces = [restored[(p.id, f.index)][2].image for f in order]
        mats = [face_to_canvas_matrix(restored[(p.id, f.index)][1], size, img.shape[0], self.upscale)
                for f, img in zip(order, faces)]
        result, placed = paste_faces(canvas, faces, mats, self.upscale)
        out_rel = f"{label}/{p.id}.png"
        _write(self.out / out_rel, result)
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


def _write(path: Path, img: np.ndarray) -> None:
    """PNG, atomically, fast lossless compression (encoding dominates the overhead of a run with ``lq``)."""
    atomic_write_bytes(path, encode_image(img, ".png", png_fast=True))


def _json(a: np.ndarray | None) -> str:
    return "" if a is None else json.dumps(np.round(np.asarray(a, dtype=float), 3).tolist())


def summarize(df: pd.DataFrame) -> str:
    """One line per method: photos written and face counts per status."""
    lines = []
    for method, g in df.groupby("method", sort=True):
        faces = g[g["face"] >= 0]["status"].value_counts().sort_index()
        photos = g.loc[g["output_path"] != "", "photo"].nunique()
        lines.append(f"  {method}: {photos} photo(s) written; faces: "
                     + (", ".join(f"{k} {v}" for k, v in faces.items()) or "none"))
        bad = g[g["face"] < 0]
        if len(bad):
            lines[-1] += "; photos without faces/unreadable: " + ", ".join(f"{k} {v}" for k, v in bad["status"].value_counts().sort_index().items())
    return "\n".join(lines)


#: face statuses that count as done (a face deliberately left out by a filter is not a failure)
DONE_STATUSES = {STATUS_OK, "fallback_input", "fallback_generic", TOO_SMALL, NOT_CENTER}


def outcome_of(df: pd.DataFrame) -> Any:
    """The command's :class:`~celebref.app.outcome.Outcome`: one item per photo x method without faces (or
    unreadable) and per face x method; failed = unreadable photos, photos without faces and faces not restored."""
    from celebref.app.outcome import Outcome

    bad = df[~df["status"].isin(DONE_STATUSES)]
    details = [f"{m}: {len(g)} face(s)/photo(s) not restored: "
               + ", ".join(f"{k} {v}" for k, v in g["status"].value_counts().sort_index().items()) + " (see faces.csv)"
               for m, g in bad.groupby("method", sort=True)]
    return Outcome(items=len(df), failed=len(bad), details=details)


def run_command(args: Any) -> Any:
    """``celebref restore --whole-photo``: the CLI entry (flags as in :mod:`celebref.app.commands.restore`)."""
    import sys

    from baselines.registry import create_method
    from celebref.params import split_spec_list
    from celebref.lock import lock_folder
    from celebref.provenance import command_line, now, versions

    if args.upscale < 1:
        raise ConfigError("--upscale must be >= 1")
    if args.min_face_size < 0:
        raise ConfigError("--min-face-size must be >= 0")
    photos = collect_photos(args.input)
    common = dict(device=args.device, precision=args.precision, landmark_policy=args.landmark_policy)
    methods = [create_method(s, **common) for s in split_spec_list(args.methods)]
    for m in methods:
        alignment_of(m)
        if not m.loaded:
            m.load()  # all weights checked before any work starts
    out = Path(args.out)
    with lock_folder(out, command=command_line()):
        started = now()
        runner = WholePhotoRunner(out, methods, upscale=args.upscale, only_center_face=args.only_center_face,
                                  min_face_size=args.min_face_size, batch_size=args.batch_size,
                                  face_backend=args.face_backend)
        df = runner.run(photos)
        atomic_write_json(out / "whole_photo.json", {
            "command": command_line(), "started": started, "finished": now(), "versions": versions(),
            "input": str(args.input), "n_photos": len(photos), "config": runner.config(),
            "face_backend": get_backend(args.face_backend).describe()})
    print(f"restored {len(photos)} photo(s) with {len(methods)} method(s) into {out}", file=sys.stderr)
    print(summarize(df), file=sys.stderr)
    return outcome_of(df)


def evaluate_command(args: Any) -> Any:
    """``celebref evaluate --whole-photo``: restore the photos (``--data``/``--lq``: a ``degrade --whole-photo``
    output or a folder of photos) into ``<out>/restored`` as ``restore --whole-photo`` does (upscale 1), then NIQE
    per photo for the input (row ``input``) and each method's output, paired by photo id, in
    ``<out>/metrics.parquet``/``.csv`` (photo, method, niqe, status, reason). ``identity`` (with
    ``--identity-refs DIR``) adds the restored faces' cosine similarity to their closest reference face
    (:mod:`celebref.app.whole_photo_identity`)."""
    import argparse
    import sys

    import torch

    from evaluation.registry import create_metric

    source = args.data or args.lq
    if not source:
        raise ConfigError("whole-photo evaluation needs --data (a degrade --whole-photo output or a folder of photos)")
    from .whole_photo_identity import identity_refs_for, score_faces

    default = "niqe,identity" if getattr(args, "identity_refs", None) else "niqe"
    names = [m.strip() for m in (args.metrics or default).split(",") if m.strip()]
    if not set(names) <= {"niqe", "identity"} or "niqe" not in names:
        raise ConfigError(f"whole-photo evaluation computes niqe (no-reference) and identity against --identity-refs, "
                          f"got {', '.join(names)}")
    refs = identity_refs_for(args) if "identity" in names else None
    if "identity" in names and refs is None:
        raise ConfigError("the identity metric on whole photos needs --identity-refs DIR (reference faces)")
    metric = create_metric("niqe", device="cpu")
    metric.load()  # a missing parameter file fails before any work
    ns = argparse.Namespace(**{**vars(args), "input": source, "out": Path(args.out) / "restored",
                               "methods": args.methods or "lq", "upscale": 1, "only_center_face": False,
                               "min_face_size": 0.0, "face_backend": getattr(args, "face_backend", "dlib")})
    outcome = run_command(ns)
    faces = pd.read_parquet(Path(ns.out) / "faces.parquet")
    photos = collect_photos(source)
    targets = [(pid, "input", path) for pid, path in photos]
    written = faces[faces["output_path"].fillna("") != ""].drop_duplicates(["photo", "method"])
    targets += [(r["photo"], r["method"], str(Path(ns.out) / r["output_path"])) for _, r in written.iterrows()]
    rows = []
    for pid, method, path in targets:
        try:
            img = read_image(path)
            value = float(metric.compute(torch.from_numpy(img.transpose(2, 0, 1)[None].copy()))["niqe"][0])
            rows.append({"photo": pid, "method": method, "niqe": value, "status": STATUS_OK, "reason": ""})
        except (CelebrefError, OSError, ValueError) as e:
            rows.append({"photo": pid, "method": method, "niqe": float("nan"), "status": STATUS_ERROR, "reason": str(e)})
    df = pd.DataFrame(rows, columns=["photo", "method", "niqe", "status", "reason"]).sort_values(["method", "photo"])
    if refs is not None:
        ids = score_faces(faces, Path(ns.out), refs)
        df = df.merge(ids, on=["photo", "method"], how="left")
        df["identity_faces"] = df["identity_faces"].fillna(0).astype(int)
        df["identity_reason"] = df["identity_reason"].fillna("")
        from evaluation.identity import identity_labels

        label = identity_labels(refs.backend.name)["identity_cos"]
        for method, g in df.groupby("method", sort=True):
            print(f"  {method}: {label} {g['identity'].mean():.4f} (cosine to the closest of {len(refs.used)} reference "
                  f"face(s), {int(g['identity_faces'].sum())} face(s) scored; higher is better)", file=sys.stderr)
    write_table(df.reset_index(drop=True), Path(args.out) / "metrics")
    for method, g in df.groupby("method", sort=True):
        print(f"  {method}: NIQE {g['niqe'].mean():.4f} (mean of {g['niqe'].notna().sum()} photo(s); lower is better)",
              file=sys.stderr)
    outcome.items += len(df)
    outcome.failed += int((df["status"] != STATUS_OK).sum())
    return outcome
