"""Getting a usable local weight file: the verified path of an entry, one check of everything a run
needs before it starts, explicit acceptance of unverified files, and downloads.

Policy
------
* :func:`weight_path` never downloads; a missing entry raises :class:`~celebref.errors.WeightError` whose
  message says exactly which file to put where (URL, file name, destination, sha256).
* A file whose size/sha256 differs from the published one is refused when it sits in the cache (a corrupt
  or wrong download). It is used only by an explicit choice, which is never silent:

  - the user pointed the entry at that file (``CELEBREF_WEIGHT_<NAME>`` or ``paths.json``), or
  - unverified files are allowed: ``allow_unverified=True`` (parameter of :func:`weight_path`,
    :func:`check_available`, :func:`~celebref.weights.load_torch_checkpoint`), :func:`allowing_unverified`
    / :func:`set_allow_unverified` (process-wide, e.g. a command-line flag), or the environment variable
    ``CELEBREF_ALLOW_UNVERIFIED_WEIGHTS=1``.

  Each such file is announced once per process (:class:`UnverifiedWeightWarning`) and recorded in
  :func:`unverified_uses` (name, path, its actual sha256, the published one), which run records store.
  Files for which no sha256 is published (state ``unverified``, e.g. DMDNet) are used as they are; their
  sha256 is recorded by the runs that load them.
* Nothing here touches the network except :func:`fetch` (``celebref weights fetch``). With
  ``CELEBREF_OFFLINE=1``, or when every URL fails, it raises with the same instructions. Entries whose
  upstream only offers Google Drive / Baidu folders are ``manual``: ``fetch`` prints the instructions.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from ..errors import WeightError
from ..fsutil import atomic_write_json
from .catalogue import get
from .integrity import BAD_HASH, MISSING, NOT_A_FILE, check, file_sha256, status
from .locations import default_path, is_offline, is_override, resolve, weights_dir
from .messages import MissingWeight, WeightsUnavailableError, instructions

__all__ = [
    "ALLOW_UNVERIFIED_ENV", "UnverifiedWeightWarning", "allow_unverified", "set_allow_unverified",
    "allowing_unverified", "unverified_uses", "clear_unverified_uses", "weight_path", "check_available",
    "require_available", "is_available", "fetch",
]

#: environment variable that allows unverified weight files (``1``, ``true``, ``yes``, ``on``)
ALLOW_UNVERIFIED_ENV = "CELEBREF_ALLOW_UNVERIFIED_WEIGHTS"


class UnverifiedWeightWarning(UserWarning):
    """A weight file whose sha256 differs from the published one is being used (by explicit choice)."""


_lock = threading.Lock()
_allow: bool | None = None  # process-wide setting; None: the environment variable decides
_verified: dict[tuple[str, str, int, int], tuple[str, str]] = {}  # (name, path, size, mtime) -> (state, detail)
_uses: dict[tuple[str, str, str], dict] = {}  # (name, path, sha256) -> record


# --- accepting unverified files ----------------------------------------------------------------

def allow_unverified() -> bool:
    """The process-wide policy: :func:`set_allow_unverified`, else ``$CELEBREF_ALLOW_UNVERIFIED_WEIGHTS``."""
    if _allow is not None:
        return _allow
    return os.environ.get(ALLOW_UNVERIFIED_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def set_allow_unverified(value: bool | None) -> None:
    """Set the process-wide policy (``None``: back to the environment variable)."""
    global _allow
    _allow = value


@contextlib.contextmanager
def allowing_unverified(value: bool = True) -> Iterator[None]:
    """Within the block, unverified files are allowed (or not); the environment variable is set too, so
    worker processes started inside inherit the choice. Both are restored on exit."""
    global _allow
    old_allow, old_env = _allow, os.environ.get(ALLOW_UNVERIFIED_ENV)
    _allow = bool(value)
    os.environ[ALLOW_UNVERIFIED_ENV] = "1" if value else "0"
    try:
        yield
    finally:
        _allow = old_allow
        if old_env is None:
            os.environ.pop(ALLOW_UNVERIFIED_ENV, None)
        else:
            os.environ[ALLOW_UNVERIFIED_ENV] = old_env


def unverified_uses() -> list[dict]:
    """Every weight file used in this process although it differs from its published size/sha256:
    ``{name, path, source, sha256 (actual), expected_sha256, reason, accepted_by}``, sorted by name, path;
    ``accepted_by`` is ``"override"`` (the user pointed the entry at the file) or ``"allow_unverified"``."""
    with _lock:
        return [dict(v) for _, v in sorted(_uses.items())]


def clear_unverified_uses() -> None:
    """Forget the records of :func:`unverified_uses` (a long-lived process starting a new run)."""
    with _lock:
        _uses.clear()


def _accept(name: str, path: Path, source: str, detail: str, accepted_by: str) -> None:
    w = get(name)
    actual = file_sha256(path)
    key = (name, str(path), actual)
    with _lock:
        if key in _uses:
            return
        _uses[key] = {"name": name, "path": str(path), "source": source, "sha256": actual,
                      "expected_sha256": w.sha256, "reason": detail, "accepted_by": accepted_by}
    why = (f"from {source}, the file you pointed it at" if accepted_by == "override"
           else "because unverified weights are allowed (allow_unverified)")
    warnings.warn(f"weight {name!r} from {source} does not match its declaration ({detail}); using it anyway, {why}; "
                  f"its sha256 {actual} is recorded as unverified", UnverifiedWeightWarning, stacklevel=3)


# --- the verified path ---------------------------------------------------------------------------

def _state(name: str, path: Path) -> tuple[str, str]:
    """``check()`` of an existing path, once per process per (path, size, mtime)."""
    st = path.stat()
    key = (name, str(path), st.st_size, st.st_mtime_ns)
    with _lock:
        known = _verified.get(key)
    if known is None:
        known = check(get(name), path, full=False)
        with _lock:
            _verified[key] = known
    return known


def _allow_hint() -> str:
    return (f"  To use this file anyway (recorded as unverified): allow_unverified=True or {ALLOW_UNVERIFIED_ENV}=1.")


def _problem(name: str, allow: bool | None) -> tuple[Path, str, str, str]:
    """``(path, state, detail, message)``; ``state`` is ``""`` when the entry is usable (an unverified
    file that is accepted is recorded here)."""
    path, source = resolve(name)
    if not path.exists():
        return path, MISSING, f"expected at {path}", instructions(name)
    state, detail = _state(name, path)
    if state in (MISSING, NOT_A_FILE):
        return path, state, detail, instructions(name, detail)
    if state == BAD_HASH:
        allowed = allow_unverified() if allow is None else allow
        if is_override(source) or allowed:
            _accept(name, path, source, detail, "override" if is_override(source) else "allow_unverified")
            return path, "", "", ""
        return path, BAD_HASH, detail, instructions(name, f"{detail}; delete it and fetch again") + "\n" + _allow_hint()
    return path, "", "", ""


def weight_path(name: str, allow_unverified: bool | None = None) -> Path:
    """Local path of ``name`` (file or folder), verified once per process.

    Raises :class:`WeightError` with instructions when it is missing, or when a cached file has the
    wrong size/sha256 and unverified files are not allowed (``allow_unverified``: ``None`` follows
    :func:`allow_unverified`). Never downloads (use :func:`fetch`).
    """
    path, state, _, message = _problem(name, allow_unverified)
    if state:
        raise WeightError(message)
    return path


def check_available(names: Iterable[str] | Mapping[str, Iterable[str]],
                    allow_unverified: bool | None = None) -> list[MissingWeight]:
    """Every weight in ``names`` that is not usable, each with who needs it and where to get it.

    ``names``: weight-store names, or ``{user: names}`` with users such as ``"method dmdnet"`` (then each
    record lists the users of its file). Checks sizes and published sha256s (hashes are cached), so a run
    can refuse to start with one complete message (:func:`require_available`) instead of failing at the
    first load. An empty list means everything is usable.
    """
    users: dict[str, list[str]] = {}
    items = names.items() if isinstance(names, Mapping) else [("", names)]
    for user, ws in items:
        for n in ([ws] if isinstance(ws, str) else ws):
            get(n)
            users.setdefault(n, [])
            if user and user not in users[n]:
                users[n].append(user)
    out = []
    for n, us in users.items():
        _, state, detail, message = _problem(n, allow_unverified)
        if state:
            out.append(MissingWeight(n, tuple(us), state, detail, message))
    return out


def require_available(names: Iterable[str] | Mapping[str, Iterable[str]], hint: str = "",
                      allow_unverified: bool | None = None) -> None:
    """Raise one :class:`WeightsUnavailableError` listing every unusable weight of ``names`` (see
    :func:`check_available`); ``hint`` is appended to the message (e.g. how to skip what cannot run)."""
    missing = check_available(names, allow_unverified=allow_unverified)
    if missing:
        raise WeightsUnavailableError(missing, hint)


def is_available(name: str) -> bool:
    """True when ``name`` exists locally with the right size/members (cheap: no hashing of big files)."""
    w = get(name)
    path, _ = resolve(name)
    if not path.exists():
        return False
    if w.is_folder:
        return path.is_dir() and all((path / m).is_file() for m in w.members)
    return path.is_file() and (w.size is None or path.stat().st_size == w.size)


def fetch(name: str, force: bool = False, timeout: float | None = None) -> Path:
    """Download ``name`` into the cache (zip packs are extracted safely) and return its path.

    Already-present verified files are returned at once. Offline mode, manual entries and network
    failures raise :class:`WeightError` with placement instructions.
    """
    from .. import download as dl

    w = get(name)
    path, source = resolve(name)
    if path.exists() and not force:
        st = status(name)
        if st.ok:
            return path
        if source != "cache":
            raise WeightError(f"weight {name!r} from {source} ({path}) is {st.state}: {st.detail}")
    if w.kind == "package":
        raise WeightError(instructions(name))
    if w.manual:
        raise WeightError(instructions(name, "its authors publish it only on Google Drive / Baidu, "
                                            "so it cannot be downloaded automatically"))
    if source != "cache":
        raise WeightError(instructions(name))
    if is_offline():
        raise WeightError(instructions(name, "offline mode (CELEBREF_OFFLINE=1)"))
    dest = default_path(name)
    target = weights_dir() / w.filename if w.kind == "zip" else dest
    errors: list[str] = []
    for url in w.urls:
        try:
            dl.download(url, target, sha256=w.sha256, size=w.size, desc=w.filename,
                        **({"timeout": timeout} if timeout else {}))
            break
        except dl.ChecksumError as e:
            errors.append(str(e))
        except dl.DownloadError as e:
            errors.append(str(e))
    else:
        raise WeightError(instructions(name, "download failed:\n    " + "\n    ".join(errors)))
    if w.kind == "zip":
        names = dl.safe_extract_zip(target, dest)
        missing = [m for m in w.members if m not in names]
        if missing:
            raise WeightError(f"archive {w.urls[0]} lacks {', '.join(missing)} (kept at {target})")
        atomic_write_json(dest / ".celebref-source.json",
                          {"archive": w.filename, "url": w.urls[0], "sha256": w.sha256, "members": names})
        target.unlink()
    st = status(name, full=True)
    if not st.ok:
        raise WeightError(f"weight {name!r} fetched but {st.state}: {st.detail}")
    return dest
