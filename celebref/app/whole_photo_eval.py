"""``celebref evaluate --whole-photo``: an evaluate run like any other, on the faces of whole photos.

1. Whole-photo restoration (:class:`~celebref.app.whole_photo.WholePhotoRunner`, ``upscale`` 1) of every method
   into ``<out>/photos`` (restored photos, aligned input and restored crops, ``faces.csv``), on ``--engine``; the
   ``lq`` method always runs first: its aligned input crops (FFHQ 5-point template) are the evaluation's LQ.
2. One record per detected face, id ``<photo>_face<k>`` (``lq`` = that input crop, no ground truth), and one per
   photo without a face to score (id ``<photo>``; its reason, e.g. ``no_face: no face detected``, makes it a
   failed row, never a silent one).
3. :func:`celebref.app.evaluate.evaluate` with each method as ``external:<label>=<out>/faces/<label>`` (hard links
   to the restored crops, named by record id) and any registry metric that needs no ground truth (default
   ``niqe``). ``--identity-refs DIR`` adds the ``identity-refs`` metric (cosine of each face to the closest
   reference face, :mod:`evaluation.identity_refs`), also asked for as ``identity``: the run's profile is the
   chosen one with ``identity`` read as ``identity-refs`` and its ``refs``/``backend`` pinned (recorded in
   ``run.json``).

The run folder therefore has what every evaluate run has (``per_image``, ``summary.csv``, ``run.json``, the
journals), so ``celebref report``/``tables`` read it. After the run, ``per_image`` rows are made explicit: a face a
method did not restore carries the whole-photo status and reason (``faces.csv``) instead of "no result file", and
a restored face without a value for some metric (e.g. NaN NIQE) gets status ``metric_failed`` and a reason.
Methods with different alignments are scored on their own crops; the ``lq`` row is always the ``ffhq5`` crop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from celebref.errors import ConfigError, WeightError
from celebref.fsutil import atomic_write_bytes
from celebref.tabular import write_table
from celebref.testset import InputRecord

from .whole_photo import WholePhotoRunner, collect_photos
from .whole_photo_cli import DONE_STATUSES, load_methods

__all__ = ["evaluate_command", "face_records"]

METRIC_FAILED = "metric_failed"
LQ = "lq"


def face_id(photo: str, face: int) -> str:
    return f"{photo}_face{int(face)}"


def external_label(label: str) -> str:
    """The name a method's results go by in the evaluation (an ``external:`` label has no ``:``, ``=``, ``,``, ``/``
    or ``\\``): ``codeformer:w=0.7`` -> ``codeformer_w_0.7``; plain names are kept."""
    return re.sub(r"[:=,/\\]", "_", label).lstrip(".") or "_"


def face_records(faces: pd.DataFrame, photos_dir: Path, extra: dict[str, dict] | None = None) -> list[InputRecord]:
    """The evaluation's records from the whole-photo faces table of the ``lq`` method: one per face with an aligned
    input crop, one per photo with none (with its reason). ``extra``: per photo id, columns to carry (e.g. the
    degradation parameters of a ``degrade --whole-photo`` manifest)."""
    rows = faces[faces["method"] == LQ]
    out: list[InputRecord] = []
    for photo, g in rows.groupby("photo", sort=True):
        ex = dict((extra or {}).get(str(photo), {}))
        crops = g[(g["face"] >= 0) & (g["input_path"].fillna("") != "")]
        for _, r in crops.iterrows():
            out.append(InputRecord(id=face_id(photo, r["face"]), lq_path=(photos_dir / r["input_path"]).absolute(),
                                   extra={**ex, "photo": str(photo), "face": int(r["face"])}))
        if crops.empty:
            first = g.iloc[0]
            src = first.get("source_path") if isinstance(first.get("source_path"), str) else ""
            why = "; ".join(f"face {int(r['face'])}: {r['status']}: {r['reason']}" if r["face"] >= 0
                            else f"{r['status']}: {r['reason']}" for _, r in g.iterrows())
            out.append(InputRecord(id=str(photo), lq_path=Path(src or photos_dir / str(photo)).absolute(),
                                   extra={**ex, "photo": str(photo), "face": -1}, reason=why or "no face to score"))
    return out


def _link_faces(faces: pd.DataFrame, photos_dir: Path, folder: Path, label: str) -> None:
    """``folder/<photo>_face<k>.png`` for each face ``label`` restored: a hard link to its restored crop (a copy
    where links are not possible); files of faces no longer restored are removed (the folder is this command's)."""
    g = faces[(faces["method"] == label) & (faces["face"] >= 0) & (faces["restored_path"].fillna("") != "")]
    wanted = {}
    for _, r in g.iterrows():
        wanted[(folder / f"{face_id(r['photo'], r['face'])}.png").absolute()] = photos_dir / r["restored_path"]
    folder.mkdir(parents=True, exist_ok=True)
    for f in folder.rglob("*.png"):
        if f.absolute() not in wanted:
            f.unlink()
    for dst, src in wanted.items():
        if dst.exists() and os.path.samefile(dst, src):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.link")
        try:
            if tmp.exists():
                tmp.unlink()
            os.link(src, tmp)
            os.replace(tmp, dst)
        except OSError:
            atomic_write_bytes(dst, Path(src).read_bytes())


def _profile(args: Any, names: list[str]):
    """The chosen profile with ``identity`` read as ``identity-refs`` (refs and backend pinned) when references
    are given; :class:`ConfigError` for a metric that needs ground truth."""
    from evaluation.profiles import get_profile
    from evaluation.registry import create_metric

    base = get_profile(args.profile)
    refs = getattr(args, "identity_refs", None)
    backend = getattr(args, "face_backend", None) or "dlib"
    prof = base
    if refs:
        prof = dataclasses.replace(
            base, name=f"{base.name}+identity-refs", aliases={**base.aliases, "identity": "identity-refs"},
            options={**base.options, "identity-refs": {"refs": str(Path(refs).absolute()), "backend": backend,
                                                        "mode": "aligned"}},
            description=base.description + "; whole photos: identity = cosine of each face to the closest "
                                           "reference face (identity-refs)")
    metrics = []
    for n in names:
        m = create_metric(n, profile=prof)
        metrics.append(m)
        if m.needs_reference:
            extra = " (give --identity-refs DIR for identity against reference faces)" if m.name == "identity" else ""
            raise ConfigError(f"whole-photo evaluation has no ground truth: metric {m.name} needs it{extra}; "
                              f"use no-reference metrics (e.g. niqe) or identity with --identity-refs")
    if not args.skip_unavailable:  # before any work: one message lists every missing file
        from celebref.app.evaluate import SKIP_HINT
        from celebref.app.restore import check_weights

        check_weights([], metrics, hint=SKIP_HINT)
    return prof


def _photo_extra(source: str) -> dict[str, dict]:
    """Per photo id, the degradation parameters of a ``degrade --whole-photo`` output (empty otherwise)."""
    from celebref.testset import read_test_set

    p = Path(source)
    if not (p.is_dir() and (p / "manifest.csv").is_file()):
        return {}
    try:
        return {r.id: dict(r.extra) for r in read_test_set(p).records}
    except ConfigError:
        return {}


def _explain(per_image: pd.DataFrame, faces: pd.DataFrame, metric_columns: list[str]) -> pd.DataFrame:
    """The per-image table with the whole-photo reasons of faces a method did not restore, and ``metric_failed``
    (with the columns that have no value) for restored faces some metric could not score."""
    df = per_image.copy()
    key = {(face_id(r["photo"], r["face"]), external_label(r["method"])): (r["status"], r["reason"])
           for _, r in faces[faces["face"] >= 0].iterrows()}
    for i, r in df.iterrows():
        known = key.get((r["id"], r["method"]))
        if r["status"] == "missing" and known is not None and known[0] != "ok":
            df.at[i, "status"], df.at[i, "reason"] = known[0], f"whole-photo restore: {known[1] or known[0]}"
        elif r["status"] in DONE_STATUSES:
            empty = [c for c in metric_columns if c in df.columns and not np.isfinite(pd.to_numeric(r[c], errors="coerce"))]
            if empty:
                why = "; ".join(f"{c}: no value (NaN)" for c in empty)
                df.at[i, "status"] = METRIC_FAILED
                df.at[i, "reason"] = "; ".join(x for x in (str(r["reason"] or ""), why) if x)
    return df


def evaluate_command(args: Any, engine: Any = None) -> Any:
    """``celebref evaluate --whole-photo`` (see the module docstring); returns the run's Outcome. ``engine`` (an
    :class:`~celebref.engine.Engine`; ``None``: inline) restores the faces and runs the evaluation."""
    from celebref.app.evaluate import EvalConfig, evaluate
    from celebref.app.summary import print_summary
    from celebref.engine import get_engine
    from celebref.lock import lock_folder
    from celebref.params import split_spec_list
    from celebref.provenance import command_line
    from celebref.weights import allowing_unverified

    source = args.data or args.lq
    if not source:
        raise ConfigError("whole-photo evaluation needs --data (a degrade --whole-photo output or a folder of photos)")
    names = [m.strip() for m in (args.metrics or ("niqe,identity-refs" if args.identity_refs else "niqe")).split(",")
             if m.strip()]
    profile = _profile(args, names)
    photos = collect_photos(source)
    out = Path(args.out)
    allow = allowing_unverified(True) if args.allow_unverified_weights else contextlib.nullcontext()
    with allow:
        specs = split_spec_list(args.methods or "")
        methods, skipped = load_methods(LQ, args), []
        for spec in specs:
            try:
                methods += [m for m in load_methods(spec, args) if m.label != LQ]
            except WeightError as e:
                if not args.skip_unavailable:
                    raise
                skipped.append({"kind": "method", "name": spec, "reason": str(e)})
        names_of = {m.label: external_label(m.label) for m in methods[1:]}
        if len(set(names_of.values())) < len(names_of):
            raise ConfigError(f"methods {', '.join(names_of)} would share a results name ({', '.join(names_of.values())})")
        engine = engine if engine is not None else get_engine("local", workers=1)
        photos_dir = out / "photos"
        with lock_folder(out, command=command_line()):
            runner = WholePhotoRunner(photos_dir, methods, batch_size=args.batch_size, engine=engine,
                                      face_backend=getattr(args, "face_backend", None) or "dlib",
                                      max_memory_gib=getattr(args, "max_memory_gib", None))
            faces = runner.run(photos)
            for m in methods[1:]:
                _link_faces(faces, photos_dir, out / "faces" / names_of[m.label], m.label)
        records = face_records(faces, photos_dir, _photo_extra(source))
        info = {"kind": "whole-photo", "path": str(Path(source).absolute()), "n_photos": len(photos),
                "n_faces": sum(1 for r in records if not r.reason), "lq_alignment": "ffhq5",
                "faces_table": "photos/faces.csv", "skipped_methods": skipped, "method_labels": names_of}
        cfg = EvalConfig(out=out, methods=[f"external:{names_of[m.label]}={out / 'faces' / names_of[m.label]}"
                                           for m in methods[1:]],
                         metrics=names, profile=profile, device=args.device, precision=args.precision,
                         batch_size=args.batch_size, skip_unavailable=args.skip_unavailable, argv=sys.argv[1:],
                         allow_unverified_weights=args.allow_unverified_weights, engine=engine,
                         common_images=getattr(args, "common_images", False))
        result = evaluate(records, info, cfg)
    metric_cols = [c for c in result.per_image.columns if c in set(_metric_columns(result))]
    per_image = _explain(result.per_image, faces, metric_cols)
    with lock_folder(out, command=command_line()):
        write_table(per_image, out / "per_image")
    for s in skipped + result.skipped:
        print(f"skipped {s['kind']} {s['name']}: {s['reason']}", file=sys.stderr)
    print(f"evaluated {info['n_faces']} face(s) of {len(photos)} photo(s); results in {out}", file=sys.stderr)
    print_summary(result.summary, profile=profile)
    outcome = result.outcome
    outcome.skipped += [f"method {s['name']}" for s in skipped]
    return outcome


def _metric_columns(result: Any) -> list[str]:
    return [str(c) for c in result.summary["metric"].unique()] if len(result.summary) else []
