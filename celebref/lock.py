"""Exclusive locks on output folders: two runs never write into one folder at the same time.

::

    from celebref.lock import lock_folder
    with lock_folder(out, command="celebref degrade ..."):
        ...  # write into out

The one call every command that writes an output folder uses (build, degrade, restore, evaluate, report).

* The lock is the file ``<folder>/.celebref.lock`` (JSON: owner ``pid``, ``host``, ``command``, ``started``
  (UTC, ISO 8601) and ``pid_start``, the process start time used to tell a reused pid from its owner). It
  appears atomically (written in full, then hard-linked into place, ``O_EXCL`` semantics) and its owner holds
  an ``flock`` on it for as long as the lock is held.
* A second run, while the owner lives, gets a :class:`~celebref.errors.ConfigError` naming the owner.
* A lock left by a process that no longer runs on this host (killed, crashed) is *stale*: it is taken over with
  a one-line message on stderr. A lock from another host is never taken over (the message says how to remove it).
* Worker processes of the owner (:mod:`celebref.engine` workers call :func:`hold_worker_locks` at start-up)
  hold a shared ``flock`` on ``<folder>/.celebref.lock.workers``; a takeover waits until every worker of the
  dead run has exited, so a rerun never races a leftover worker.
* Locks are re-entrant within one process (a command that locks ``out`` may call a library function that locks
  it again).
* Nested folders exclude each other: a folder cannot be locked while a live run of another process holds a lock
  on one of its ancestors or descendants (``evaluate --out E`` and ``restore --out E/restored`` never run
  together); this process's own locks nest freely.
* ``--out`` that is an existing file, or a folder holding a *folder* named ``.celebref.lock``, is a
  :class:`~celebref.errors.ConfigError` with one line saying what to do (never a traceback).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from .errors import ConfigError
from .fsutil import pid_alive, temp_path

try:  # POSIX; elsewhere locks rely on O_EXCL and pid liveness only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "FolderLock", "LockOwner", "hold_worker_locks", "lock_folder", "read_owner"]

LOCK_NAME = ".celebref.lock"
WORKERS_NAME = ".celebref.lock.workers"
WORKER_ENV = "CELEBREF_WORKER_LOCKS"  # os.pathsep-separated workers files, inherited by worker processes

_HELD: dict[str, "FolderLock"] = {}  # realpath of folder -> the lock this process holds on it
_WORKER_FDS: list[int] = []


def _process_start(pid: int) -> str:
    """The start time of ``pid`` in clock ticks since boot (Linux ``/proc``), or "" where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        return stat[stat.rindex(")") + 2:].split()[19]
    except (OSError, ValueError, IndexError):
        return ""


def _alive(pid: int, pid_start: str = "") -> bool:
    """Whether process ``pid`` runs on this host (and, when ``pid_start`` is known, is the same process)."""
    if pid <= 0 or not pid_alive(pid):
        return False
    if pid_start:
        now = _process_start(pid)
        if now and now != pid_start:
            return False  # the pid was reused by another process
    return True


@dataclass(frozen=True)
class LockOwner:
    """Who holds a folder lock."""

    pid: int
    host: str
    command: str = ""
    started: str = ""
    pid_start: str = ""

    def describe(self) -> str:
        cmd = f", command {self.command!r}" if self.command else ""
        return f"pid {self.pid} on host {self.host}{cmd}, started {self.started or 'at an unknown time'}"

    @classmethod
    def from_text(cls, text: str) -> "LockOwner | None":
        try:
            data = json.loads(text)
            return cls(pid=int(data["pid"]), host=str(data["host"]), command=str(data.get("command", "")),
                       started=str(data.get("started", "")), pid_start=str(data.get("pid_start", "")))
        except (ValueError, KeyError, TypeError):
            return None


def read_owner(folder: str | os.PathLike) -> LockOwner | None:
    """The owner recorded in ``<folder>/.celebref.lock`` (``None``: no lock or an unreadable one)."""
    try:
        return LockOwner.from_text((Path(folder) / LOCK_NAME).read_text(encoding="utf-8"))
    except OSError:
        return None


def _try_flock(fd: int, shared: bool = False) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError:  # a file system without flock: rely on pid liveness
        return True


class FolderLock:
    """An exclusive lock on ``folder`` (see the module docstring). Use :func:`lock_folder`."""

    def __init__(self, folder: str | os.PathLike, command: str = "", *, worker_wait_s: float = 10.0):
        self.folder = Path(folder)
        self.command = command
        self.worker_wait_s = float(worker_wait_s)
        self.path = self.folder / LOCK_NAME
        self.workers_path = self.folder / WORKERS_NAME
        self._fd: int | None = None
        self._depth = 0
        self._key = ""

    # -- acquire / release -----------------------------------------------------------------------------
    def acquire(self) -> "FolderLock":
        _make_folder(self.folder)
        self._key = os.path.realpath(self.folder)
        held = _HELD.get(self._key)
        if held is not None:  # re-entrant within this process
            held._depth += 1
            return held
        if os.path.isdir(self.path) and not os.path.islink(self.path):
            raise ConfigError(f"{str(self.path)!r} is a folder, but celebref keeps its lock file under that name; "
                              "remove or rename that folder and run again")
        me = LockOwner(pid=os.getpid(), host=socket.gethostname(), command=self.command,
                       started=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       pid_start=_process_start(os.getpid()))
        tmp = temp_path(self.path)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            _try_flock(fd)
            os.write(fd, (json.dumps(asdict(me), sort_keys=True) + "\n").encode("utf-8"))
            os.fsync(fd)
            self._take(tmp, fd)
        except BaseException:
            os.close(fd)
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._fd = fd
        self._depth = 1
        _HELD[self._key] = self
        try:
            _refuse_nested(Path(self._key))
        except BaseException:
            self._depth = 0
            _HELD.pop(self._key, None)
            with contextlib.suppress(OSError):
                if _same_inode(fd, self.path):
                    os.unlink(self.path)
            os.close(fd)
            self._fd = None
            raise
        paths = [p for p in os.environ.get(WORKER_ENV, "").split(os.pathsep) if p]
        os.environ[WORKER_ENV] = os.pathsep.join([*paths, str(self.workers_path)])
        return self

    def _take(self, tmp: Path, fd: int) -> None:
        """Put the prepared lock file ``tmp`` in place: directly when there is no lock, or over a stale one."""
        for attempt in range(200):
            try:
                os.link(tmp, self.path)
                return
            except FileExistsError:
                pass
            except OSError:  # no hard links here: O_EXCL create of the lock itself
                try:
                    efd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                except FileExistsError:
                    pass
                else:
                    os.close(efd)
                    os.replace(tmp, self.path)
                    return
            try:
                old = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except FileNotFoundError:
                continue  # released meanwhile: try again
            try:
                owner = LockOwner.from_text(os.read(old, 1 << 16).decode("utf-8", "replace"))
                free = _try_flock(old)
                same_file = _same_inode(old, self.path)
                if not same_file:
                    continue  # replaced meanwhile (another run took it over): look again
                here = owner is not None and owner.host == socket.gethostname()
                dead = here and not _alive(owner.pid, owner.pid_start)
                if not free or not dead:
                    if free is False and dead and attempt < 20:
                        time.sleep(0.05)  # another run is taking this stale lock over right now
                        continue
                    raise ConfigError(self._busy_message(owner, here))
                self._wait_for_workers(owner)
                print(f"celebref: taking over the stale lock on {str(self.folder)!r} left by {owner.describe()} "
                      "(that process is no longer running)", file=sys.stderr)
                os.replace(tmp, self.path)
                return
            finally:
                os.close(old)
        raise ConfigError(f"cannot lock {str(self.folder)!r}: the lock file keeps changing (another run starting?)")

    def _busy_message(self, owner: LockOwner | None, here: bool) -> str:
        where = repr(str(self.folder))
        if owner is None:
            return (f"{where} is locked by another celebref run (unreadable lock file {str(self.path)!r}); "
                    f"if no run uses this folder, delete that file")
        if here:
            return (f"{where} is in use by another celebref run ({owner.describe()}); wait for it to finish or "
                    "choose another output folder")
        return (f"{where} is locked by a celebref run on another host ({owner.describe()}); if that run is no "
                f"longer running, delete {str(self.path)!r}")

    def _wait_for_workers(self, owner: LockOwner | None) -> None:
        """Wait until no worker process of the dead owner holds the workers file."""
        if fcntl is None or not self.workers_path.exists():
            return
        try:
            wfd = os.open(self.workers_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return
        try:
            deadline = time.monotonic() + self.worker_wait_s
            while not _try_flock(wfd):
                if time.monotonic() > deadline:
                    who = owner.describe() if owner else "an earlier run"
                    raise ConfigError(f"worker processes of {who} still run and may write into {str(self.folder)!r}; "
                                      "wait for them to exit and run again")
                time.sleep(0.05)
            fcntl.flock(wfd, fcntl.LOCK_UN)
        finally:
            os.close(wfd)

    def release(self) -> None:
        if self._fd is None:
            return
        self._depth -= 1
        if self._depth > 0:
            return
        _HELD.pop(self._key, None)
        paths = [p for p in os.environ.get(WORKER_ENV, "").split(os.pathsep) if p and p != str(self.workers_path)]
        if paths:
            os.environ[WORKER_ENV] = os.pathsep.join(paths)
        else:
            os.environ.pop(WORKER_ENV, None)
        with contextlib.suppress(OSError):
            self._remove_workers_file()
        try:
            if _same_inode(self._fd, self.path):
                os.unlink(self.path)
        except OSError:
            pass
        finally:
            os.close(self._fd)
            self._fd = None

    def _remove_workers_file(self) -> None:
        if not self.workers_path.exists():
            return
        wfd = os.open(self.workers_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            if _try_flock(wfd) and _same_inode(wfd, self.workers_path):
                os.unlink(self.workers_path)  # no worker holds it any more
        finally:
            os.close(wfd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _make_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents); a file in the way is a one-line :class:`ConfigError`."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"output folder {str(folder)!r} is a file, not a folder; give the path of a new or "
                          "existing folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"cannot create output folder {str(folder)!r}: a file stands where a folder of its path "
                          "should be; give another path") from None
    except OSError as e:
        raise ConfigError(f"cannot create output folder {str(folder)!r}: {e.strerror or e}") from None


def _live_lock(path: Path) -> LockOwner | None:
    """The owner of the lock file ``path`` when a live run holds it (``None``: no lock, or a stale one).
    A lock from another host counts as live (it is never taken over; the message says how to remove it)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        try:
            owner = LockOwner.from_text(os.read(fd, 1 << 16).decode("utf-8", "replace"))
        except OSError:
            return None
        if owner is None:
            return None
        if owner.host != socket.gethostname():
            return owner
        free = _try_flock(fd, shared=True)
        if free and fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
        return owner if (not free or _alive(owner.pid, owner.pid_start)) and owner.pid != os.getpid() else None
    finally:
        os.close(fd)


def _refuse_nested(folder: Path) -> None:
    """Raise :class:`ConfigError` when a live run of another process holds a lock on an ancestor or a descendant of
    ``folder`` (a real path); this process's own locks are allowed to nest."""
    found: list[tuple[Path, LockOwner]] = []
    for anc in folder.parents:
        if str(anc) not in _HELD:
            owner = _live_lock(anc / LOCK_NAME)
            if owner is not None:
                found.append((anc, owner))
                break
    if not found:
        for dirpath, dirs, files in os.walk(folder):
            dirs.sort()
            if dirpath != str(folder) and LOCK_NAME in files and dirpath not in _HELD:
                owner = _live_lock(Path(dirpath) / LOCK_NAME)
                if owner is not None:
                    found.append((Path(dirpath), owner))
                    break
    if found:
        other, owner = found[0]
        relation = "inside" if other in folder.parents else "holds"
        what = (f"{str(folder)!r} is inside {str(other)!r}" if relation == "inside"
                else f"{str(folder)!r} holds {str(other)!r}")
        raise ConfigError(f"{what}, which another celebref run uses ({owner.describe()}); nested output folders "
                          "cannot be written at the same time: wait for that run or choose a separate folder")


def _same_inode(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@contextlib.contextmanager
def lock_folder(folder: str | os.PathLike, command: str = "") -> Iterator[FolderLock]:
    """Hold the exclusive lock on ``folder`` (created if missing) for the ``with`` block.

    Raises :class:`~celebref.errors.ConfigError` naming the owner when another live run holds it; a stale lock
    (its process is gone, same host) is taken over with a one-line message on stderr."""
    lock = FolderLock(folder, command).acquire()
    try:
        yield lock
    finally:
        lock.release()


def hold_worker_locks() -> None:
    """In a worker process: hold a shared lock on the workers file of every folder the parent has locked (named
    in ``CELEBREF_WORKER_LOCKS``) until this process exits. Called by :mod:`celebref.engine` worker start-up."""
    if fcntl is None:
        return
    for p in os.environ.get(WORKER_ENV, "").split(os.pathsep):
        if not p:
            continue
        try:
            fd = os.open(p, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except OSError:
            os.close(fd)
            continue
        _WORKER_FDS.append(fd)
