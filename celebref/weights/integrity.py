"""Is a weight file the published one? Hashes (cached), size/member checks and the status of an entry.

Hashes are cached by ``(path, size, mtime)`` in memory and in ``<root>/sha256-cache.json`` (a read-only
cache folder only costs re-hashing).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import WeightError
from ..fsutil import atomic_write_json, sha256_file
from .catalogue import REGISTRY, WeightFile, get
from .locations import home, kind_problem, resolve
from .messages import instructions

PRESENT, MISSING, BAD_HASH, UNVERIFIED = "present", "missing", "bad hash", "unverified"
NOT_A_FILE = "not a file"  # a FIFO, a device, a socket, or a folder where a file is expected (never read: it may hang)


_lock = threading.Lock()
_hash_memo: dict[tuple[str, int, int], str] = {}


def _hash_cache_file() -> Path:
    return home() / "sha256-cache.json"


def _sha256_cached(path: Path) -> str:
    """sha256 of ``path``, cached by (resolved path, size, mtime_ns) in memory and on disk."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _lock:
        if key in _hash_memo:
            return _hash_memo[key]
    cache_file = _hash_cache_file()
    disk: dict[str, Any] = {}
    try:
        disk = json.loads(cache_file.read_text(encoding="utf-8")) if cache_file.is_file() else {}
    except (OSError, ValueError):
        disk = {}
    rec = disk.get(key[0])
    if isinstance(rec, list) and len(rec) == 3 and rec[0] == key[1] and rec[1] == key[2]:
        digest = str(rec[2])
    else:
        digest = sha256_file(path)
        disk[key[0]] = [key[1], key[2], digest]
        try:
            atomic_write_json(cache_file, disk)
        except OSError:  # a read-only cache dir only costs re-hashing
            pass
    with _lock:
        _hash_memo[key] = digest
    return digest


def _folder_digest(folder: Path) -> str:
    """sha256 over ``"relpath\\0sha256\\n"`` lines of every file under ``folder`` (sorted)."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(q for q in folder.rglob("*") if q.is_file() and not q.name.startswith(".")):
        h.update(f"{p.relative_to(folder).as_posix()}\0{_sha256_cached(p)}\n".encode())
    return h.hexdigest()


def file_sha256(name_or_path: str | os.PathLike) -> str:
    """sha256 of a declared weight (by name) or of any file; folders get :func:`_folder_digest`."""
    if isinstance(name_or_path, str) and name_or_path in REGISTRY:
        path, _ = resolve(name_or_path)
        if not path.exists():
            raise WeightError(instructions(name_or_path))
    else:
        path = Path(name_or_path)
    if path.is_dir():
        return _folder_digest(path)
    return _sha256_cached(path)


# --- status ------------------------------------------------------------------------------------

@dataclass
class WeightStatus:
    name: str
    path: Path
    source: str
    state: str  # present | missing | bad hash | unverified
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state in (PRESENT, UNVERIFIED)


def _package_record_sha256(w: WeightFile, path: Path) -> str | None:
    """sha256 (hex) recorded for ``path`` in the installed package's RECORD file, if any."""
    import base64
    import importlib.metadata as md

    try:
        dist = md.distribution(w.package or "")
    except md.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if f.hash is not None and f.hash.mode == "sha256" and Path(str(dist.locate_file(f))).resolve() == path.resolve():
            raw = base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4))
            return raw.hex()
    return None


def check(w: WeightFile, path: Path, full: bool) -> tuple[str, str]:
    """Verify an existing path. ``full`` hashes folder members too. A path of the wrong kind (a FIFO, a device, a
    folder for a file entry, ...) is :data:`NOT_A_FILE` and never read."""
    wrong = kind_problem(w, path)
    if wrong:
        return NOT_A_FILE, wrong
    if w.is_folder:
        missing = [m for m in w.members if not (path / m).is_file()]
        if missing:
            return MISSING, f"folder {path} lacks {', '.join(missing)}"
        if full or w.member_sha256:
            for m, digest in w.member_sha256.items():
                actual = _sha256_cached(path / m)
                if actual != digest:
                    return BAD_HASH, f"{path / m}: sha256 {actual}, expected {digest}"
        if w.member_sha256 and set(w.member_sha256) >= set(w.members):
            return PRESENT, ""
        if w.kind == "zip" and (path / ".celebref-source.json").is_file():
            return PRESENT, "extracted from the verified archive"
        return UNVERIFIED, "member files present; no published hashes for all of them"
    size = path.stat().st_size
    if w.size is not None and size != w.size:
        return BAD_HASH, f"{path} has {size} bytes, expected {w.size}"
    expected, origin = w.sha256, "declared"
    if expected is None and w.kind == "package":
        expected, origin = _package_record_sha256(w, path), f"the RECORD of the installed {w.package} package"
    if expected is None and w.sha256_prefix:
        actual = _sha256_cached(path)
        if not actual.startswith(w.sha256_prefix):
            return BAD_HASH, f"{path}: sha256 {actual} does not start with {w.sha256_prefix} (its published file name)"
        return UNVERIFIED, f"matches the sha256 prefix {w.sha256_prefix} of its published name (full sha256 not published)"
    if expected is None:
        return UNVERIFIED, "no published sha256"
    actual = _sha256_cached(path)
    if actual != expected:
        return BAD_HASH, f"{path}: sha256 {actual}, expected {expected} ({origin})"
    return PRESENT, "" if origin == "declared" else f"matches {origin}"


def status(name: str, full: bool = False) -> WeightStatus:
    """Check ``name`` without raising: present / missing / bad hash / unverified."""
    w = get(name)
    path, source = resolve(name)
    if not path.exists():
        detail = (f"install the package: pip install {w.package.replace('_', '-')}"  # type: ignore[union-attr]
                  if w.kind == "package" and source == "package" else f"expected at {path}")
        return WeightStatus(name, path, source, MISSING, detail)
    state, detail = check(w, path, full)
    return WeightStatus(name, path, source, state, detail)
