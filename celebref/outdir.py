"""Which command made a folder, and the rule that keeps commands from writing over data they did not make.

Every command that writes an output folder leaves its run file there (the *marker*): ``build.json`` (``celebref
build``), ``degrade.json`` and ``grid.parquet`` (``celebref degrade``, one test set / a grid of them),
``restore.json`` and ``whole_photo.json`` (``celebref restore``), ``run.json`` (``celebref evaluate``),
``verify.json`` (``celebref verify``).

:func:`check_output` is called by build, degrade, restore and evaluate on their ``--out`` before they write
anything. It refuses, with one line (:class:`~celebref.errors.ConfigError`, exit 2), and touches nothing, when

* ``--out`` or one of its ancestors holds the marker of *another* command (a build output, a test set, a
  restore or an evaluate run is never written into by a different command; the same command resumes or
  ``--overwrite``\\ s its own folder);
* ``--out`` is one of the input folders, lies inside one, or holds one (an input file inside ``--out`` counts
  too): the outputs would mix with, be read back as, or be cleaned up together with the inputs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .errors import ConfigError

__all__ = ["MARKERS", "check_output", "made_by"]

#: run file -> the command that writes it (the folder's maker)
MARKERS: dict[str, str] = {
    "build.json": "build",
    "degrade.json": "degrade",
    "grid.parquet": "degrade",
    "restore.json": "restore",
    "whole_photo.json": "restore",
    "run.json": "evaluate",
    "verify.json": "verify",
}


def made_by(folder: str | os.PathLike) -> tuple[str, str] | None:
    """``(command, run file)`` of the command that made ``folder`` (``None``: no run file of any command)."""
    folder = Path(folder)
    for name, command in MARKERS.items():
        if (folder / name).is_file():
            return command, name
    return None


def _real(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def _inside(a: Path, b: Path) -> bool:
    """``a`` is ``b`` or lies under it (real paths)."""
    return a == b or b in a.parents


def check_output(out: str | os.PathLike, command: str, inputs: Iterable[str | os.PathLike | None] = ()) -> None:
    """Refuse (:class:`ConfigError`) to let ``celebref <command>`` write into ``out`` when another command made
    ``out`` or an ancestor of it, or when ``out`` and an input (file or folder; ``None`` entries are ignored)
    overlap (see the module docstring). Nothing is created or changed."""
    o = _real(out)
    if o.exists() and not o.is_dir():
        raise ConfigError(f"--out {os.fspath(out)!r} is a file, not a folder; give the path of a new or existing folder")
    for folder in (o, *o.parents):
        maker = made_by(folder) if folder.is_dir() else None
        if maker is not None and maker[0] != command:
            where = "is" if folder == o else f"lies inside {str(folder)!r}, which is"
            raise ConfigError(f"--out {os.fspath(out)!r} {where} the output of 'celebref {maker[0]}' ({maker[1]}); "
                              f"'celebref {command}' never writes into another command's folder: choose a new --out")
    for given in inputs:
        if given is None or os.fspath(given) == "":
            continue
        i = _real(given)
        if not i.exists():
            continue
        if i.is_dir():
            if _inside(o, i):
                how = "is" if o == i else "lies inside"
                raise ConfigError(f"--out {os.fspath(out)!r} {how} the input folder {os.fspath(given)!r}; outputs "
                                  "must not mix with inputs: choose an --out outside it")
            if _inside(i, o):
                raise ConfigError(f"the input folder {os.fspath(given)!r} lies inside --out {os.fspath(out)!r}; "
                                  "outputs must not mix with inputs: choose an --out that does not hold the input")
        elif _inside(i, o):
            raise ConfigError(f"the input {os.fspath(given)!r} lies inside --out {os.fspath(out)!r}; outputs must "
                              "not mix with inputs: choose an --out that does not hold the input")
