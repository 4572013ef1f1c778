"""The driver's side of outputs: resume journals and the background writer (only the driver journals).

Restore journal ``<out>/<label>/.status.jsonl``: one row per image whose result is final -- for an output,
appended only after its PNG is durably written (atomic write + fsync), with ``sha256`` (of the file's bytes) and
``content_sha`` (of its pixels). A resume (:meth:`RestoreJournal.done`) accepts a row only with the same
weights and, for an output, a file whose sha256 still matches (a truncated or corrupted PNG is redone). Transient
failures (the file could not be written: no space, an I/O error; an engine batch that failed, a worker that
died) are never journalled, so a rerun redoes them.

Metric journal ``<out>/cache/metrics/<label>__<metric>__<key>.jsonl``: per-image values (and the reason for a
missing one) keyed by (id, ``content_sha``) and by the metric's full description (``key``), so a rerun rescores
only what changed.
"""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from celebref.fsutil import atomic_write_bytes, sha256_bytes, sha256_file
from celebref.imageio import encode_image
from celebref.journal import Journal

from .pipeline import AsyncWriter, StageClock

#: the reason prefix of a row whose output could not be written (transient: never journalled)
WRITE_FAILED = "writing the output failed: "


def safe_label(label: str) -> str:
    """A method label as a file-name part."""
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in label)


def metric_key(metric_desc: dict) -> str:
    """A short hash of a metric's full description (every convention that changes its numbers)."""
    return hashlib.sha256(json.dumps(metric_desc, sort_keys=True, default=str).encode()).hexdigest()[:16]


class RestoreJournal:
    """One method's restore journal (see the module docstring); ``out_dir``: paths in rows are relative to it."""

    def __init__(self, folder: Path, out_dir: Path):
        self.folder, self.out_dir = Path(folder), Path(out_dir)
        self.journal = Journal(self.folder / ".status.jsonl")

    def done(self, weights_sha256: str) -> dict[str, dict]:
        """``{id: row}`` of final results with these weights whose output file (if any) is intact."""
        done: dict[str, dict] = {}
        for row in self.journal.rows():  # a torn last line (a kill mid-write) is not a row
            if "id" not in row or row.get("weights_sha256") != weights_sha256:
                continue  # other weights: redo
            rel = row.get("output_path")
            if rel:
                path = self.out_dir / rel
                if not row.get("sha256") or not path.is_file() or sha256_file(path) != row["sha256"]:
                    done.pop(row["id"], None)
                    continue  # deleted, truncated or corrupted since (or a row without a hash): redo
            done[row["id"]] = row
        return done

    def append(self, rows: list[dict]) -> None:
        if rows:
            self.journal.append(rows)


class MetricJournal:
    """Append-only per-(method, metric) store of per-image values keyed by (id, content sha)."""

    def __init__(self, path: Path):
        self.path = path
        self._journal = Journal(path)  # torn last lines (a kill mid-write) are dropped, never merged
        self.values: dict[tuple[str, str], dict] = {}
        self.reasons: dict[tuple[str, str], str] = {}
        for row in self._journal.rows():
            if isinstance(row.get("values"), dict) and "id" in row and "sha" in row:
                self.values[(row["id"], row["sha"])] = row["values"]
                if row.get("reason"):
                    self.reasons[(row["id"], row["sha"])] = str(row["reason"])

    def has(self, item_id: str, sha: str) -> bool:
        return (item_id, sha) in self.values

    def append(self, rows: list[dict]) -> None:
        if not rows:
            return
        self._journal.append(rows)
        for r in rows:
            self.values[(r["id"], r["sha"])] = r["values"]
            if r.get("reason"):
                self.reasons[(r["id"], r["sha"])] = r["reason"]


def _write(path: Path, image: Any, encoded: bytes | None, clock: StageClock) -> str:
    """Write one output PNG atomically (``encoded`` as is, else ``image`` encoded); returns the file's sha256."""
    if encoded is None:
        encoded = encode_image(image, ".png")
    atomic_write_bytes(path, encoded)
    return sha256_bytes(encoded)


class OutputWriter:
    """Encodes and writes outputs on background threads; :meth:`ready` hands back, in submission order, the
    batches whose files are all durably written (or failed), so the driver journals only what is on disk."""

    def __init__(self, threads: int | None, clock: StageClock):
        self.clock = clock
        self.pool = AsyncWriter(threads, clock=clock, stage="write")
        self._queue: list[tuple[list[Future], Any]] = []
        self._lock = threading.Lock()
        self.encoded = 0
        self.copied = 0

    def submit(self, writes: list[tuple[Path, Any, bytes | None]], tag: Any) -> None:
        """Queue one batch of ``(path, image, encoded bytes or None)``; ``tag`` comes back with its results."""
        futs = [self.pool.submit(_write, path, image, encoded, self.clock) for path, image, encoded in writes]
        self.encoded += sum(1 for _, _, e in writes if e is None)
        self.copied += sum(1 for _, _, e in writes if e is not None)
        self._queue.append((futs, tag))

    def ready(self, wait: bool = False) -> list[tuple[Any, list[str | BaseException]]]:
        """``(tag, [file sha256 or the exception])`` of the finished batches at the head of the queue."""
        out = []
        while self._queue and (wait or all(f.done() for f in self._queue[0][0])):
            futs, tag = self._queue.pop(0)
            res: list[str | BaseException] = []
            for f in futs:
                exc = f.exception()
                res.append(exc if exc is not None else f.result())
            out.append((tag, res))
        return out

    def close(self) -> None:
        """Wait for every write (a failed one is reported by :meth:`ready`, not raised)."""
        self.pool.close(raise_errors=False)
