"""``celebref restore --whole-photo`` as a command: method loading, option checks, the run with its record
(``whole_photo.json``: configuration, engine, face backend, versions), the summary lines and the exit status.
The work itself is :class:`celebref.app.whole_photo.WholePhotoRunner`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from baselines.alignments import alignment_of
from baselines.base import STATUS_OK, RestorationMethod
from celebref.engine import Engine, get_engine
from celebref.errors import ConfigError
from celebref.face import get_backend
from celebref.fsutil import atomic_write_json

from .whole_photo import NOT_CENTER, TOO_SMALL, WholePhotoRunner, collect_photos


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


def load_methods(specs: str, args: Any) -> list[RestorationMethod]:
    """The methods of ``specs`` (comma list) created with the command's options and loaded (all weights checked
    before any work starts); each must declare a registered alignment."""
    from baselines.registry import create_method
    from celebref.params import split_spec_list

    common = dict(device=args.device, precision=args.precision, landmark_policy=args.landmark_policy)
    methods = [create_method(s, **common) for s in split_spec_list(specs)]
    for m in methods:
        alignment_of(m)
        if not m.loaded:
            m.load()
    return methods


def check_options(args: Any) -> None:
    if args.upscale < 1:
        raise ConfigError("--upscale must be >= 1")
    if args.min_face_size < 0:
        raise ConfigError("--min-face-size must be >= 0")
    gib = getattr(args, "max_memory_gib", None)
    if gib is not None and not gib > 0:
        raise ConfigError("--max-memory-gib must be > 0")


def run_command(args: Any, engine: Engine | None = None) -> Any:
    """``celebref restore --whole-photo``: the CLI entry (flags as in :mod:`celebref.app.commands.restore`);
    ``engine`` restores the faces (``None``: inline)."""
    import sys

    from celebref.lock import lock_folder
    from celebref.provenance import command_line, now, versions

    check_options(args)
    photos = collect_photos(args.input)
    methods = load_methods(args.methods, args)
    out = Path(args.out)
    with lock_folder(out, command=command_line()):
        started = now()
        engine = engine if engine is not None else get_engine("local", workers=1)
        runner = WholePhotoRunner(out, methods, upscale=args.upscale, only_center_face=args.only_center_face,
                                  min_face_size=args.min_face_size, batch_size=args.batch_size,
                                  face_backend=args.face_backend, engine=engine,
                                  max_memory_gib=getattr(args, "max_memory_gib", None))
        df = runner.run(photos)
        atomic_write_json(out / "whole_photo.json", {
            "command": command_line(), "started": started, "finished": now(), "versions": versions(),
            "input": str(args.input), "n_photos": len(photos), "config": runner.config(),
            "engine": engine.describe(), "face_backend": get_backend(args.face_backend).describe()})
    print(f"restored {len(photos)} photo(s) with {len(methods)} method(s) into {out}", file=sys.stderr)
    print(summarize(df), file=sys.stderr)
    return outcome_of(df)
