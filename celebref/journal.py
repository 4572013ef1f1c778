"""Resume journals: append-only JSON-lines files that survive a kill at any byte.

One row per line, ``json.dumps(row, sort_keys=True)`` + ``\\n`` (ASCII: non-ASCII characters are
``\\u`` escaped; ``default``/``sort_keys`` can be set per journal). A row is committed once its ``\\n``
is on disk: :meth:`Journal.append` writes a batch of rows with one ``O_APPEND`` write and ``fsync``\\ s it
before returning.

A kill during a write can leave a *torn last line*: bytes after the last ``\\n`` (part of a row, possibly
cut inside a UTF-8 sequence). Such bytes were never a committed row:

* reading (:meth:`Journal.rows`) ignores them, and never modifies the file;
* the next :meth:`Journal.append` first truncates them away, so a new row always starts on a fresh line and
  two rows are never merged into one unreadable line (the row that was being written is simply redone).

A complete line that is not a JSON object (e.g. blocks of NULs after a power loss) is skipped and counted
in :attr:`Journal.skipped`; it never hides the rows after it.

Used by the restore runner (``<out>/<method>/.status.jsonl``) and the evaluate metric cache
(``cache/metrics/*.jsonl``).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

_SCAN = 1 << 16


class Journal:
    """An append-only JSON-lines journal at ``path`` (created with its folder on the first append)."""

    def __init__(self, path: str | os.PathLike, *, default: Callable[[Any], Any] | None = None, sort_keys: bool = True):
        """``default`` and ``sort_keys`` are passed to :func:`json.dumps` for every appended row."""
        self.path = Path(path)
        self._dumps_kw: dict[str, Any] = {"sort_keys": sort_keys, "default": default}
        #: complete lines skipped by the last :meth:`rows` because they were not a JSON object
        self.skipped = 0
        #: bytes of a torn last line ignored by the last :meth:`rows` / removed by the last :meth:`append`
        self.torn_bytes = 0

    def rows(self) -> list[dict[str, Any]]:
        """Every committed row, in file order (a missing file has none). The file is not modified."""
        self.skipped = self.torn_bytes = 0
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        cut = data.rfind(b"\n") + 1
        self.torn_bytes = len(data) - cut
        out = []
        for line in data[:cut].split(b"\n")[:-1]:
            if not line.strip():
                continue
            try:
                row = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                row = None
            if isinstance(row, dict):
                out.append(row)
            else:
                self.skipped += 1
        return out

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append ``rows`` (JSON-serialisable dicts), one line each, durably (fsync'd before returning).
        A torn last line left by an interrupted writer is truncated away first."""
        rows = list(rows)
        if not rows:
            return
        with self.writer(sync=False) as write:  # fsync'd once, when the block ends
            write(rows)

    @contextlib.contextmanager
    def writer(self, sync: bool = True) -> Iterator[Callable[[Iterable[dict[str, Any]]], None]]:
        """Keep the journal open for many small appends (rows streaming in): yields ``append(rows)``.
        The torn tail is dropped once, on opening; each call writes its rows with one ``write``; ``sync``
        fsyncs after every call (else only when the block ends)."""
        created = not self.path.exists()
        if created:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            self.torn_bytes = _drop_torn_tail(fd)

            def append(rows: Iterable[dict[str, Any]]) -> None:
                data = b"".join((json.dumps(r, **self._dumps_kw) + "\n").encode("utf-8") for r in rows)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                if sync and data:
                    os.fsync(fd)

            yield append
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.path.parent)


def _drop_torn_tail(fd: int) -> int:
    """Truncate the file after its last ``\\n`` (the whole file if it has none); return the bytes removed."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    end = size
    cut = 0
    while end > 0:
        start = max(0, end - _SCAN)
        i = os.pread(fd, end - start, start).rfind(b"\n")
        if i >= 0:
            cut = start + i + 1
            break
        end = start
    os.ftruncate(fd, cut)
    os.fsync(fd)
    return size - cut


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
