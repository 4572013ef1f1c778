"""File-system helpers: atomic writes and content hashes.

Every file the toolkit writes goes through :func:`atomic_write` (temporary file in the same folder, fsync,
``os.replace``), so an interrupted run never leaves a half-written output behind.

Conventions:

* permissions: files are created with mode ``0o666`` and folders with ``0o777``, both minus the process umask
  (``0644`` / ``0755`` under the usual umask ``022``), as ``open()`` and ``mkdir`` do; outputs are readable
  by colleagues whenever the umask allows it;
* temporary names are unique per process and call (:func:`temp_path`: ``.<name>.<pid>.<random>.tmp``), so two
  processes writing the same file never share (or delete) each other's temporary file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import IO, Any, Iterator

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "pid_alive", "remove_stale_temps",
           "sha256_bytes", "sha256_file", "temp_path"]

_CHUNK = 1 << 20
_TMP_NAME_MAX = 100  # characters of the target name kept in a temporary name (NAME_MAX is 255 bytes)


def temp_path(path: str | os.PathLike) -> Path:
    """A temporary path next to ``path``, unique to this process and call: ``.<name>.<pid>.<random>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name[:_TMP_NAME_MAX]}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


_TEMP_RE = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$")


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (any user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike) -> int:
    """Delete, under ``folder`` (recursively), the temporary files of :func:`atomic_write` whose writing process no
    longer runs on this host (a run killed mid-write); returns how many were removed. Call it only on a folder
    this process has locked (:mod:`celebref.lock`), so no other run is writing there."""
    removed = 0
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            m = _TEMP_RE.match(name)
            if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
    return removed


def _create_exclusive(path: Path) -> tuple[int, Path]:
    """Create a new temporary file next to ``path`` (mode ``0o666`` minus the umask); returns ``(fd, tmp)``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = temp_path(path)
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
    raise FileExistsError(f"cannot create a temporary file next to {str(path)!r}")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success it replaces ``path`` atomically.
    On error the temporary file is removed and ``path`` is left untouched. Missing parent folders are created.
    ``mode`` is ``"wb"`` or ``"w"`` (text: UTF-8, newlines written as given)."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_exclusive(path)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": ""})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """JSON with sorted keys and a trailing newline (stable bytes for the same content)."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 (hex) of the regular file ``path``. Anything else (a FIFO, ``/dev/zero``, a folder) raises
    :class:`OSError` (``EINVAL``) before it is opened, so it can never hang or read forever."""
    import errno
    import stat

    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(errno.EINVAL, "not a regular file (a FIFO, a device or a folder?)", os.fspath(path))
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()
