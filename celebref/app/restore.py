"""Run restoration methods over input records: batched, resumable, every input accounted for, on any engine.

:class:`RestoreRunner` is the one-pass driver (:mod:`celebref.app.onepass`) without metrics: for each method a
journal ``<out>/<label>/.status.jsonl`` receives one JSON row per image once its output is durably written
(atomic write + fsync first; then the journal line, with the file's sha256). A rerun skips ids already done
with the same weights whose file is intact -- so an interrupted run resumes, under any engine, a truncated or
corrupted output is redone, and changing a method's weights redoes its images; an output that could not be
written (disk full) is not journalled and is redone. :func:`RestoreRunner.finish` writes the consolidated
``status.parquet`` / ``status.csv`` (one row per input x method, sorted).

The per-batch work (decode, model) runs in the engine's session (:mod:`celebref.app.session`): in this process
with the local engine (the default; the model is the caller's instance), or on Ray actors that rebuild the model
from a :class:`~celebref.app.restore_worker.MethodSpec` (one actor per GPU with ``gpus_per_actor=1``). Methods
with references are routed by identity, so a specific dictionary is built once, in the actor that restores that
identity. Outputs are encoded and written by the driver, on background threads.

``batch_size``: images per engine batch and per forward pass, or ``"auto"``: on CUDA the forward size starts at
:data:`AUTO_START` and doubles after each pass that fits, up to :data:`AUTO_CUDA_CAP`; on the CPU it is
:data:`AUTO_CPU` (larger CPU batches do not run faster). On CUDA out of memory a pass is redone on the same
images at half the size (every engine and batch size). Stage seconds (decode, restore, write) are added up in
:attr:`RestoreRunner.stages`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from celebref.engine import Engine, get_engine
from celebref.errors import ConfigError
from celebref.testset import InputRecord

from baselines.base import (
    STATUS_FALLBACK_GENERIC,
    STATUS_FALLBACK_INPUT,
    STATUS_OK,
    ReferenceSet,
    RestorationMethod,
)

from .onepass import MethodRun, OnePass
from .pipeline import StageClock
from .restore_worker import ReferenceCache, safe_id_path  # noqa: F401 (safe_id_path: re-exported)

STATUS_COLUMNS = ["id", "method", "status", "reason", "seconds", "output_path", "weights_sha256"]
LANDMARK_SOURCES = ("detect", "gt")
#: statuses that count as done: an output exists as the method and the landmark policy asked
DONE_STATUSES = (STATUS_OK, STATUS_FALLBACK_INPUT, STATUS_FALLBACK_GENERIC)
#: ``batch_size="auto"``: CPU batch size; CUDA start and largest forward size
AUTO_CPU, AUTO_START, AUTO_CUDA_CAP = 4, 4, 64


@dataclass(frozen=True)
class RestoreOptions:
    """How methods are run by ``restore`` and ``evaluate``: the one definition of these defaults (the CLI's
    flags have the same names and take their defaults from here)."""

    device: str = "auto"
    precision: str = "fp32"
    batch_size: int = 1  # or "auto" (see the module docstring)
    landmark_policy: str = "skip"  # skip | input | generic (baselines.base.LANDMARK_POLICIES)
    landmark_source: str = "detect"  # detect | gt (LANDMARK_SOURCES)


def parse_batch_size(value: int | str) -> int | str:
    """``"auto"`` or an integer >= 1 (as given on a command line or in the API); else a ConfigError."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"batch_size must be an integer >= 1 or 'auto', got {value!r}") from None
    if n < 1:
        raise ConfigError(f"batch_size must be >= 1 or 'auto', got {value}")
    return n


def batch_plan(batch_size: int | str, device) -> tuple[int, int, bool]:
    """``(engine batch, first forward size, grow)`` for a batch size on a device (see the module docstring)."""
    if batch_size != "auto":
        return int(batch_size), int(batch_size), False
    if str(getattr(device, "type", device)).startswith("cuda"):
        return AUTO_CUDA_CAP, AUTO_START, True
    return AUTO_CPU, AUTO_CPU, False


class RestoreRunner:
    """Restore ``records`` with each method into ``out_dir/<method label>/<id>.png`` on ``engine`` (default: the
    local engine, inline)."""

    def __init__(
        self,
        out_dir: str | os.PathLike,
        batch_size: int | str = RestoreOptions.batch_size,
        landmark_source: str = RestoreOptions.landmark_source,
        max_cached_references: int = 8,
        engine: Engine | str | None = None,
        threads: int | None = None,
    ):
        if landmark_source not in LANDMARK_SOURCES:
            raise ConfigError(f"landmark_source must be one of {', '.join(LANDMARK_SOURCES)}, got {landmark_source!r}")
        self.out_dir = Path(out_dir)
        self.batch_size = parse_batch_size(batch_size)
        self.landmark_source = landmark_source
        self.engine = get_engine(engine) if engine is not None else get_engine("local", workers=1)
        self.threads = threads
        self._refs = ReferenceCache(max_cached_references)
        self._max_refs = max_cached_references
        self.rows: list[dict] = []
        self.precisions: dict[str, str] = {}  # method label -> precision it ran in (a status column)
        self.stages = StageClock()
        self.forward_sizes: dict[str, list[int]] = {}  # label -> images per forward pass, in order
        self.counts = {"decoded": 0, "encoded": 0}  # files read / outputs encoded (run records)

    def _reference_set(self, rec: InputRecord) -> ReferenceSet | None:
        return self._refs.get(rec)

    # -- running -------------------------------------------------------------------------------
    def prepare(self, method: RestorationMethod) -> MethodRun:
        """Check the method's weights (a WeightError when missing) and fix its output folder, weights hash and
        forward-pass plan. The model is loaded by the engine's session (here, or in each remote worker)."""
        check_weights([method])
        self.precisions[method.label] = str(getattr(method, "precision", "") or "")
        hashes = method.weight_hashes()
        wsha = ",".join(f"{k}={v}" for k, v in sorted(hashes.items()))
        engine_batch, forward, grow = batch_plan(self.batch_size, method.device)
        return MethodRun(method=method, folder=self.out_dir / method.label, weights=hashes, weights_sha256=wsha,
                         forward_size=forward, max_forward=engine_batch, grow=grow)

    def prepare_all(self, methods: list[RestorationMethod], metrics: Iterable = (), hint: str = "") -> list[MethodRun]:
        """:meth:`prepare` every method after checking the weights of all of them (and of ``metrics``) first:
        one :class:`~celebref.weights.WeightsUnavailableError` lists every missing file before any work starts."""
        check_weights(methods, metrics, hint=hint)
        return [self.prepare(m) for m in methods]

    def run_method(self, run: MethodRun, records: list[InputRecord], on_batch: Callable[[int], None] | None = None) -> list[dict]:
        """Restore every record not yet done (resume); returns one status row per record, in ``records`` order."""
        label = run.method.label
        onepass = OnePass(self.out_dir, [run], [], self.engine, landmark_source=self.landmark_source,
                          threads=self.threads, max_cached_references=self._max_refs, clock=self.stages)
        result = onepass.run(records, run.max_forward, desc=f"restore {label}")
        self.forward_sizes[label] = result.forward_sizes.get(label, [])
        self.counts["decoded"] += result.decoded
        self.counts["encoded"] += result.encoded
        out = [result.cells[label][r.id].row for r in records]
        out = [{k: row.get(k) for k in STATUS_COLUMNS} for row in out]
        self.rows.extend(out)
        if on_batch:
            on_batch(len(records))
        return out

    def finish(self) -> pd.DataFrame:
        """Write ``status.parquet`` / ``status.csv`` for every row this runner produced."""
        from celebref.tabular import write_table

        df = pd.DataFrame(self.rows, columns=STATUS_COLUMNS).sort_values(["method", "id"], kind="stable").reset_index(drop=True)
        df["precision"] = df["method"].map(self.precisions).fillna("")
        write_table(df, self.out_dir / "status")
        return df


def weight_requests(methods: Iterable[RestorationMethod], metrics: Iterable = ()) -> dict[str, tuple[str, ...]]:
    """``{"method <label>" | "metric <name>": weight-store names}`` of everything that declares weights."""
    req = {f"method {m.label}": tuple(m.weights) for m in methods if m.weights}
    req.update({f"metric {m.name}": tuple(m.weights) for m in metrics if getattr(m, "weights", ())})
    return req


#: the end of the message when weights differ from the published ones (command-line wording)
UNVERIFIED_HINT = ("A file whose size/sha256 differs from the published one (your own or a synthetic checkpoint) "
                   "can be used with --allow-unverified-weights (API: allow_unverified=True); it is then recorded "
                   "with its sha256 in the run record.")


def check_weights(methods: Iterable[RestorationMethod], metrics: Iterable = (), hint: str = "") -> None:
    """Refuse to start with one message listing every missing (or unverified, not allowed) weight file of every
    method and metric, each with where to get it; ``hint`` ends the message (how to skip what cannot run)."""
    from celebref import weights

    missing = weights.check_available(weight_requests(methods, metrics))
    if missing:
        if any(m.state == weights.BAD_HASH for m in missing):
            hint = f"{hint}\n{UNVERIFIED_HINT}" if hint else UNVERIFIED_HINT
        raise weights.WeightsUnavailableError(missing, hint)


def unverified_weights(names: Iterable[str]) -> list[dict]:
    """The weight files among ``names`` used although they differ from their published sha256 (explicitly
    allowed; see :func:`celebref.weights.unverified_uses`): recorded in restore.json / run.json."""
    from celebref import weights

    wanted = set(names)
    return [u for u in weights.unverified_uses() if u["name"] in wanted]


def failures(df: pd.DataFrame) -> dict[str, int]:
    """Per method, the number of rows not done (status outside :data:`DONE_STATUSES`); methods without failures left out."""
    bad = df[~df["status"].isin(DONE_STATUSES)]
    return {str(m): int(n) for m, n in bad.groupby("method", sort=True).size().items()}


def summarize_status(df: pd.DataFrame) -> str:
    """One line per method: counts per status (so failures are always reported)."""
    lines = []
    for method, g in df.groupby("method", sort=True):
        counts = g["status"].value_counts().sort_index()
        lines.append(f"  {method}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" (of {len(g)})")
    return "\n".join(lines)
