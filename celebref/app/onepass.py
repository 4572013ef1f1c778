"""The one-pass driver shared by ``restore`` and ``evaluate``: every record is decoded once, restored by every
method and scored by every metric in the engine's workers (:mod:`celebref.app.session`); the driver writes the
outputs on background threads and alone journals (:mod:`celebref.app.outputs`).

Per record and method the plan (:func:`plan_jobs`) is: run the method (no final journal row with these weights
and an intact file), or rescore the earlier output (done before, but a per-image metric has no journalled value
for its content, or a dataset-level metric needs its features), or nothing (the engine skips the record).
No file this run writes is read back: metrics see the in-memory uint8 arrays the PNGs store. An output equal to
its PNG input (``lq``) or read from a PNG file (``external:``) is written as those bytes, not re-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from baselines.base import STATUS_ERROR, RestorationMethod
from celebref.engine import Engine, describe_error
from celebref.testset import InputRecord

from .metric_worker import MetricSpec
from .outputs import WRITE_FAILED, MetricJournal, OutputWriter, RestoreJournal, metric_key, safe_label
from .pipeline import StageClock
from .restore_worker import MethodSpec, safe_id_path, status_row
from .session import Job, JobResult, MethodEntry, Output, PassSpec, run_jobs


@dataclass
class MethodRun:
    """A method ready to run: its output folder, weights (store name -> sha256) and their resume key."""

    method: RestorationMethod
    folder: Path
    weights: dict[str, str]
    weights_sha256: str
    forward_size: int = 1
    max_forward: int = 1
    grow: bool = False


@dataclass
class Cell:
    """One (record, method): its status row, per-image values, and reasons for missing metric values."""

    row: dict
    values: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)


@dataclass
class PassResult:
    """Everything a pass produced: ``cells[label][id]``, merged dataset-level states per (label, metric) and
    reference states per metric, forward-pass sizes per label, and the counts for run records."""

    cells: dict[str, dict[str, Cell]]
    states: dict[tuple[str, str], Any] = field(default_factory=dict)
    references: dict[str, Any] = field(default_factory=dict)
    forward_sizes: dict[str, list[int]] = field(default_factory=dict)
    decoded: int = 0
    encoded: int = 0
    copied: int = 0


class OnePass:
    """Run ``runs`` (methods) and ``metrics`` over ``records`` on ``engine`` (see the module docstring).
    ``save_images=False``: nothing is written but the metric journals (metric-only runs)."""

    def __init__(self, out_dir: Path, runs: Sequence[MethodRun], metrics: Sequence[Any], engine: Engine, *,
                 metric_specs: Sequence[MetricSpec] = (), metric_dir: Path | None = None, save_images: bool = True,
                 landmark_source: str = "detect", threads: int | None = None, max_cached_references: int = 8,
                 stored_references: Sequence[str] = (), clock: StageClock | None = None):
        self.out_dir, self.runs, self.engine = Path(out_dir), list(runs), engine
        self.per_image = [m for m in metrics if not m.dataset_level]
        self.metrics = list(metrics)
        self.metric_specs = list(metric_specs) or [MetricSpec.of(m, None) for m in metrics]
        self.save = save_images
        self.landmark_source, self.threads, self.max_refs = landmark_source, threads, max_cached_references
        self.stored = tuple(stored_references)
        self.clock = clock or StageClock()
        self.restore_journals = {r.method.label: RestoreJournal(r.folder, self.out_dir) for r in self.runs}
        mdir = metric_dir or self.out_dir / "cache" / "metrics"
        self.metric_journals = {(r.method.label, m.name): MetricJournal(
            mdir / f"{safe_label(r.method.label)}__{m.name}__{metric_key(m.describe())}.jsonl")
            for r in self.runs for m in self.per_image}

    # -- planning ---------------------------------------------------------------------------------------
    def plan_jobs(self, records: Sequence[InputRecord]) -> tuple[list[Job], dict[str, dict[str, dict]]]:
        """One :class:`Job` per record and the journal rows already done ``{label: {id: row}}``."""
        done = {r.method.label: self.restore_journals[r.method.label].done(r.weights_sha256) if self.save else {}
                for r in self.runs}
        dataset = any(m.dataset_level for m in self.metrics)
        wants_gt = any(m.needs_reference for m in self.metrics)
        wants_lq = any(getattr(m, "needs_input", False) for m in self.per_image)
        # the ground truth of every record goes into a dataset-level metric's reference state
        ref_state = any(m.dataset_level and m.needs_reference and m.name not in self.stored for m in self.metrics)
        jobs = []
        for rec in records:
            run, reuse = [], []
            for r in self.runs:
                label = r.method.label
                row = done[label].get(rec.id)
                if row is None:
                    run.append(label)
                    continue
                if not row.get("output_path"):
                    continue  # a final failure: nothing to score
                sha = row.get("content_sha", "")
                missing = tuple(m.name for m in self.per_image if not self.metric_journals[(label, m.name)].has(rec.id, sha))
                if missing or dataset:
                    reuse.append((label, str(self.out_dir / row["output_path"]), missing))
            jobs.append(Job(rec, tuple(run), tuple(reuse),
                            gt=wants_gt and rec.gt_path is not None and bool(run or reuse or ref_state),
                            lq=wants_lq and bool(reuse)))
        return jobs, done

    # -- running ----------------------------------------------------------------------------------------
    def run(self, records: Sequence[InputRecord], batch_size: int, desc: str = "evaluate") -> PassResult:
        jobs, done = self.plan_jobs(records)
        if any(r.method.needs_references for r in self.runs):  # one identity's records together: one dictionary
            jobs.sort(key=lambda j: (str(j.rec.ref_dir), j.rec.id))
        route = [str(j.rec.ref_dir or j.rec.identity or j.rec.id) for j in jobs] \
            if any(r.method.needs_references for r in self.runs) else None
        spec = PassSpec([(r.method, MethodEntry(r.method.label, MethodSpec.of(r.method), r.forward_size, r.max_forward, r.grow))
                         for r in self.runs], list(zip(self.metrics, self.metric_specs)), self.landmark_source,
                        self.threads, self.max_refs, send_images=self.save, stored_references=self.stored)
        result = PassResult(cells={r.method.label: {} for r in self.runs})
        self._by_label = {r.method.label: r for r in self.runs}
        writer = OutputWriter(self.threads, self.clock)
        skip = {j.rec.id for j in jobs if not j.run and not j.reuse and not j.gt}
        try:
            for res in self.engine.map(run_jobs, jobs, keys=[j.rec.id for j in jobs], batch_size=batch_size, desc=desc,
                                       session=spec, skip=skip, route=route):
                job = jobs[res.index]
                if res.skipped:
                    continue
                if not res.ok:  # the batch itself failed (e.g. a worker died): transient, not journalled
                    self._failed(job, res.error or "", result)
                else:
                    self._take(job, res.value, result, writer)
                self._journal(writer.ready(), result)
        finally:
            try:
                writer.close()
            finally:
                self._journal(writer.ready(wait=True), result)
        result.encoded, result.copied = writer.encoded, writer.copied
        self._fill_done(records, done, result)
        return result

    def _failed(self, job: Job, error: str, result: PassResult) -> None:
        for label in job.run:
            r = self._by_label[label]
            result.cells[label][job.rec.id] = Cell(status_row(job.rec.id, label, STATUS_ERROR, error, 0.0, None, r.weights_sha256))
        for label, _, _ in job.reuse:
            result.cells[label].setdefault(job.rec.id, Cell({})).reasons.append(f"scoring failed: {error}")

    def _take(self, job: Job, value: JobResult, result: PassResult, writer: OutputWriter) -> None:
        info = value.batch
        if info is not None:
            self.clock.merge(info.stages)
            result.decoded += info.decoded
            for label, sizes in info.forward_sizes.items():
                result.forward_sizes.setdefault(label, []).extend(sizes)
            for key, state in info.states.items():  # merged in input order: any engine gives the same state
                result.states[key] = state if key not in result.states else self._merge(key[1], result.states[key], state)
            for name, state in info.references.items():
                result.references[name] = state if name not in result.references else self._merge(name, result.references[name], state)
        writes, tags = [], []
        for o in value.outputs:
            r = self._by_label[o.label]
            rid = job.rec.id
            if o.reused:
                cell = result.cells[o.label].setdefault(rid, Cell({}))
                cell.values.update(o.values)
                cell.reasons += _reasons(o)
                self._journal_metrics(rid, o)
                continue
            path = safe_id_path(r.folder, rid)
            has_file = self.save and (o.image is not None or o.encoded is not None)
            rel = path.relative_to(self.out_dir).as_posix() if o.status and (o.image is not None or o.encoded is not None) else None
            row = dict(status_row(rid, o.label, o.status, o.reason, o.seconds, rel if self.save else None, r.weights_sha256),
                       content_sha=o.content_sha)
            cell = result.cells[o.label][rid] = Cell(row, dict(o.values), _reasons(o))
            if has_file:
                writes.append((path, o.image, o.encoded))
                tags.append((rid, o, cell))
            else:  # nothing to write: final now
                if self.save:
                    self.restore_journals[o.label].append([row])
                self._journal_metrics(rid, o)
        if writes:
            writer.submit(writes, tags)

    def _journal(self, ready: list, result: PassResult) -> None:
        """Journal the outputs whose files are durably written; a failed write is recorded, not journalled."""
        for tags, shas in ready:
            rows: dict[str, list[dict]] = {}
            for (rid, o, cell), sha in zip(tags, shas):
                if isinstance(sha, BaseException):
                    cell.row.update(status=STATUS_ERROR, output_path="", reason=WRITE_FAILED + describe_error(sha))
                    cell.values = {}
                    continue
                cell.row["sha256"] = sha
                rows.setdefault(o.label, []).append(cell.row)
                self._journal_metrics(rid, o)
            for label, rs in rows.items():
                self.restore_journals[label].append(rs)

    def _journal_metrics(self, rid: str, o: Output) -> None:
        for m in self.per_image:
            key = (o.label, m.name)
            if key not in self.metric_journals or not o.content_sha or m.name in o.transient:
                continue
            vals = {c: o.values[c] for c in m.columns if c in o.values}
            if not vals and m.name not in o.metric_reasons:
                continue  # not scored in this pass (already journalled)
            vals = {c: vals.get(c, float("nan")) for c in m.columns}
            self.metric_journals[key].append([{"id": rid, "sha": o.content_sha, "values": vals,
                                               "reason": o.metric_reasons.get(m.name, "")}])

    def _merge(self, name: str, a: Any, b: Any) -> Any:
        m = next(x for x in self.metrics if x.name == name)
        return m.merge(a, b)

    def _fill_done(self, records: Sequence[InputRecord], done: dict[str, dict[str, dict]], result: PassResult) -> None:
        """Rows and values of results done before (from the journals), for every record and method."""
        for r in self.runs:
            label = r.method.label
            cells = result.cells[label]
            for rec in records:
                row = done[label].get(rec.id)
                cell = cells.get(rec.id)
                if row is None:
                    if cell is None:  # cannot happen unless a result was lost: accounted for explicitly
                        cells[rec.id] = Cell(status_row(rec.id, label, STATUS_ERROR, "no result was recorded for this image",
                                                        0.0, None, r.weights_sha256))
                    continue
                fresh = cell if cell is not None else Cell({})
                values, reasons = {}, []
                sha = row.get("content_sha", "")
                for m in self.per_image:
                    j = self.metric_journals[(label, m.name)]
                    if j.has(rec.id, sha):
                        values.update(j.values[(rec.id, sha)])
                        if (rec.id, sha) in j.reasons:
                            reasons.append(f"{m.name}: {j.reasons[(rec.id, sha)]}")
                values.update(fresh.values)
                reasons = sorted(set(reasons) | set(fresh.reasons), key=(reasons + fresh.reasons).index)
                cells[rec.id] = Cell(row, values, reasons)


def _reasons(o: Output) -> list[str]:
    return [f"{name}: {why}" if name != "*" else why for name, why in o.metric_reasons.items()]
