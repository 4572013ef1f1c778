"""Where weight files live: the cache root, per-entry default paths, and the user's local overrides.

* Cache root: ``$CELEBREF_HOME`` (default: ``platformdirs.user_cache_dir("celebref")``); files go to
  ``<root>/weights/<name>/<filename>``; folder-kind entries (a zip pack after extraction, a folder of
  arrays) are the folder ``<root>/weights/<name>/`` itself.
* Local override of any entry, highest priority first:

  1. environment variable ``CELEBREF_WEIGHT_<NAME>`` (name upper-cased, every non-alphanumeric
     character replaced by ``_``; e.g. ``CELEBREF_WEIGHT_GFPGAN_V1_4=/data/GFPGANv1.4.pth``);
  2. ``<root>/paths.json`` (``{"name": "/abs/path"}``), written by :func:`set_override`
     (``celebref weights path NAME --set PATH``).

* ``package`` entries (dlib's models) are found inside the installed ``face_recognition_models`` package
  without importing it (it imports the removed ``pkg_resources``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

from ..errors import WeightError
from ..fsutil import atomic_write_json
from .catalogue import WeightFile, get


def home() -> Path:
    """The cache root: ``$CELEBREF_HOME`` or the platform's user cache dir + ``celebref``."""
    value = os.environ.get("CELEBREF_HOME")
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("celebref", appauthor=False))


def weights_dir() -> Path:
    """``<cache root>/weights``."""
    return home() / "weights"


def is_offline() -> bool:
    """``CELEBREF_OFFLINE`` is set to a true value (1, true, yes, on)."""
    return os.environ.get("CELEBREF_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def env_var(name: str) -> str:
    """Environment variable that overrides the location of ``name``."""
    return "CELEBREF_WEIGHT_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


def paths_json() -> Path:
    """The file holding ``name -> path`` overrides."""
    return home() / "paths.json"


def read_overrides() -> dict[str, str]:
    """The ``paths.json`` overrides (empty when the file is absent)."""
    p = paths_json()
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WeightError(f"cannot read weight overrides {str(p)!r}: {e}") from None
    if not isinstance(data, dict):
        raise WeightError(f"{str(p)!r} must hold a JSON object name -> path")
    return {str(k): str(v) for k, v in data.items()}


def set_override(name: str, path: str | os.PathLike | None) -> Path:
    """Record (or with ``None`` remove) a local path for ``name`` in ``paths.json``; returns that file."""
    get(name)
    data = read_overrides()
    if path is None:
        data.pop(name, None)
    else:
        p = Path(path).expanduser().resolve()
        if not p.exists():
            raise WeightError(f"cannot point {name!r} at {str(p)!r}: no such file or folder")
        wrong = kind_problem(get(name), p)
        if wrong:
            raise WeightError(f"cannot point {name!r} at {str(p)!r}: {wrong}; give the path of the weight "
                              f"{'folder' if get(name).is_folder else 'file'} itself")
        data[name] = str(p)
    atomic_write_json(paths_json(), data)
    return paths_json()


def _package_dir(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(spec.origin).parent if spec.origin else None


def default_path(name: str) -> Path:
    """Where ``name`` lives when no override is set (cache, or inside its package)."""
    w = get(name)
    if w.kind == "package":
        pkg = _package_dir(w.package or "")
        base = pkg if pkg is not None else Path(f"<{w.package} not installed>")
        return base / "models" / w.filename
    if w.is_folder:
        return weights_dir() / w.name
    return weights_dir() / w.name / w.filename


def resolve(name: str) -> tuple[Path, str]:
    """``(path, source)`` with source ``env``, ``paths.json``, ``package`` or ``cache``."""
    w = get(name)
    value = os.environ.get(env_var(name))
    if value:
        return Path(value).expanduser(), "env"
    value = read_overrides().get(name)
    if value:
        return Path(value), "paths.json"
    return default_path(name), ("package" if w.kind == "package" else "cache")


def is_override(source: str) -> bool:
    """Whether ``source`` (from :func:`resolve`) is the user's explicit choice of a local file."""
    return source in ("env", "paths.json")


def kind_problem(w: WeightFile, path: Path) -> str:
    """Why ``path`` is the wrong kind of thing for entry ``w`` ("" when it is a regular file for a file entry, a
    folder for a folder entry). Never opens the path, so a FIFO or ``/dev/zero`` cannot hang the caller."""
    import stat as _stat

    try:
        mode = path.stat().st_mode
    except OSError as e:
        return f"cannot read {path}: {e.strerror or e}"
    if w.is_folder:
        return "" if _stat.S_ISDIR(mode) else f"expected a folder, found {describe_kind(mode)} at {path}"
    return "" if _stat.S_ISREG(mode) else f"expected a regular file, found {describe_kind(mode)} at {path}"


def describe_kind(mode: int) -> str:
    """"a folder", "a FIFO (named pipe)", "a character device", ... for an ``st_mode``."""
    import stat as _stat

    for test, text in ((_stat.S_ISDIR, "a folder"), (_stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (_stat.S_ISCHR, "a character device"), (_stat.S_ISBLK, "a block device"),
                       (_stat.S_ISSOCK, "a socket"), (_stat.S_ISREG, "a regular file")):
        if test(mode):
            return text
    return "a special file"
