"""Module-level functions for tests/test_engine.py (worker processes must be able to import them)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

_STATE: dict = {}


def init(tag: str) -> None:
    _STATE["tag"] = tag


def square(batch: list[int]) -> list:
    out: list = []
    for x in batch:
        if x == 7:
            out.append(ValueError("seven is bad"))
        else:
            out.append((_STATE.get("tag"), x * x))
    return out


def raising(batch: list[int]) -> list:
    raise RuntimeError("the whole batch fails")


def kill_on(batch: list[tuple[int, str]]) -> list:
    """Kills its own worker on item 5; with a marker path, only the first time (a transient death)."""
    out = []
    for x, marker in batch:
        if x == 5 and (not marker or not Path(marker).exists()):
            if marker:
                Path(marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        out.append(x + 100)
    return out


def slow_pid(batch: list[tuple[int, str]]) -> list:
    """Records the worker's pid, then works slowly; after the pause it writes a file (must never happen when the
    parent was killed)."""
    out = []
    for x, folder in batch:
        Path(folder, f"pid-{os.getpid()}").touch()
        time.sleep(0.3)
        Path(folder, f"done-{x}").touch()
        out.append(x)
    return out


# -- /proc helpers shared by the engine and degrade tests (Linux) ---------------------------------------------

def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def children(parent: int, cmdline_has: bytes = b"") -> set[int]:
    """Pids whose parent is ``parent`` (and whose command line contains ``cmdline_has``)."""
    out = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        fields = _stat_fields(int(d.name))
        if fields is None or int(fields[1]) != parent:
            continue
        try:
            if cmdline_has and cmdline_has not in (d / "cmdline").read_bytes():
                continue
        except OSError:
            continue
        out.add(int(d.name))
    return out
