"""``celebref evaluate`` orchestration: restore with each method, then score every image, paired by id.

Run folder layout (docs/FORMATS.md): ``restored/<method>/<id>.png``, ``per_image.parquet`` (+csv),
``summary.csv``, ``run.json``. Per-image metric values are journalled in ``cache/metrics/*.jsonl`` after
each batch, keyed by the output file's sha256 and the metric's full description, so an interrupted run
resumes and a rerun recomputes only what changed. ``lq`` (the degraded input itself) is always a row.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from baselines.inputs import InputRecord, read_inputs
from baselines.registry import create_method, split_method_list
from celebref.app.restore import RestoreRunner
from celebref.device import batched, resolve_device
from celebref.errors import ConfigError, WeightError
from celebref.fsutil import atomic_write_json, atomic_write_text, sha256_file
from celebref.imageio import list_images, read_image
from celebref.progress import progress
from celebref.provenance import command_line, now, versions
from celebref.tabular import write_table

DEG_FACTORS = ("blur_sigma", "scale", "noise_sigma", "jpeg_quality")


@dataclass
class EvalConfig:
    out: Path
    methods: list[str]
    metrics: list[str]
    profile: str | None = None
    device: str = "auto"
    precision: str = "fp32"
    batch_size: int = 1
    landmark_policy: str = "skip"
    landmark_source: str = "detect"
    skip_unavailable: bool = False  # methods/metrics whose weights are missing are skipped (recorded), not fatal
    fid_reference: Path | None = None
    argv: list[str] | None = None
    skipped: list[dict] = field(default_factory=list)


# --- test sets ---------------------------------------------------------------------------------

def pair_folders(lq_dir: Path, gt_dir: Path) -> list[InputRecord]:
    """Pair two folders by file stem (relative path without extension); refuse anything not one-to-one."""
    def index(root: Path) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for p in list_images(root):
            key = p.relative_to(root).with_suffix("").as_posix()
            if key in out:
                raise ConfigError(f"{root}: two images share the stem {key!r} ({out[key].name}, {p.name})")
            out[key] = p
        return out

    lq, gt = index(lq_dir), index(gt_dir)
    only_lq, only_gt = sorted(set(lq) - set(gt)), sorted(set(gt) - set(lq))
    if only_lq or only_gt:
        def fmt(xs: list[str]) -> str:
            return ", ".join(xs[:10]) + (f" ... ({len(xs)} in all)" if len(xs) > 10 else "")
        msg = []
        if only_lq:
            msg.append(f"{len(only_lq)} LQ image(s) without ground truth: {fmt(only_lq)}")
        if only_gt:
            msg.append(f"{len(only_gt)} ground-truth image(s) without LQ: {fmt(only_gt)}")
        raise ConfigError("LQ and GT folders do not pair one to one by file stem; " + "; ".join(msg))
    if not lq:
        raise ConfigError(f"no images in {lq_dir}")
    return [InputRecord(id=k, lq_path=lq[k], gt_path=gt[k]) for k in sorted(lq)]


def load_test_set(data: str | None, lq: str | None, gt: str | None) -> tuple[list[InputRecord], dict]:
    if data:
        records = read_inputs(data)
        info = {"kind": "degrade-manifest", "path": str(Path(data).resolve())}
        djson = (Path(data) if Path(data).is_dir() else Path(data).parent) / "degrade.json"
        if djson.is_file():
            meta = json.loads(djson.read_text(encoding="utf-8"))
            conf = meta.get("config", meta)
            info.update({"preset": conf.get("preset"), "seed": conf.get("seed"), "degrade": meta})
    elif lq and gt:
        records = pair_folders(Path(lq), Path(gt))
        info = {"kind": "paired-folders", "lq": str(Path(lq).resolve()), "gt": str(Path(gt).resolve())}
    else:
        raise ConfigError("give --data <degrade output or manifest>, or both --lq DIR and --gt DIR")
    info["n_images"] = len(records)
    return records, info


# --- metric journal ----------------------------------------------------------------------------

def _key(metric_desc: dict) -> str:
    return hashlib.sha256(json.dumps(metric_desc, sort_keys=True, default=str).encode()).hexdigest()[:16]


class MetricJournal:
    """Append-only per-(method, metric) store of per-image values keyed by (id, output sha256)."""

    def __init__(self, path: Path):
        self.path = path
        self.values: dict[tuple[str, str], dict] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.values[(row["id"], row["sha"])] = row["values"]

    def append(self, rows: list[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, sort_keys=True) + "\n")
                self.values[(r["id"], r["sha"])] = r["values"]
            f.flush()
            os.fsync(f.fileno())


# --- evaluation --------------------------------------------------------------------------------

def _nan_to_none(x):
    return None if isinstance(x, float) and math.isnan(x) else x


def _batch_tensor(paths: list[Path]) -> torch.Tensor:
    return torch.from_numpy(np.stack([read_image(p) for p in paths])).permute(0, 3, 1, 2).contiguous()


def evaluate(records: list[InputRecord], data_info: dict, cfg: EvalConfig) -> pd.DataFrame:
    from evaluation.profiles import get_profile
    from evaluation.registry import create_metric

    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    started = now()
    profile = get_profile(cfg.profile)  # None -> "default": every convention is recorded, never implied
    if not records:
        raise ConfigError("the test set is empty")
    missing_gt = [r.id for r in records if r.gt_path is None]

    # methods (lq is always a reference row)
    specs = split_method_list(",".join(cfg.methods)) if cfg.methods else []
    if "lq" not in [s.split(":")[0] for s in specs]:
        specs = ["lq"] + specs
    common = dict(device=cfg.device, precision=cfg.precision, landmark_policy=cfg.landmark_policy)
    runner = RestoreRunner(out / "restored", batch_size=cfg.batch_size, landmark_source=cfg.landmark_source)
    runs = []
    for spec in specs:
        method = create_method(spec, **common)
        try:
            runs.append(runner.prepare(method))
        except WeightError as e:
            if not cfg.skip_unavailable:
                raise
            cfg.skipped.append({"kind": "method", "name": method.label, "reason": str(e)})
    # metrics
    metrics = []
    for name in cfg.metrics:
        m = create_metric(name, device=cfg.device, profile=profile)
        try:
            m.load()
        except WeightError as e:
            if not cfg.skip_unavailable:
                raise
            cfg.skipped.append({"kind": "metric", "name": m.name, "reason": str(e)})
            continue
        if m.needs_reference and missing_gt:
            raise ConfigError(f"metric {m.name} needs ground truth but {len(missing_gt)} image(s) have none (e.g. {missing_gt[0]})")
        metrics.append(m)

    rec_by_id = {r.id: r for r in records}
    rows: list[dict] = []
    dataset_rows: list[dict] = []
    references: dict[str, object] = {}  # dataset-level metric name -> reference features/statistics, made once
    for run in runs:
        status = runner.run_method(run, records)
        label = run.method.label
        ok = [s for s in status if s["output_path"]]
        out_paths = {s["id"]: out / "restored" / s["output_path"] for s in ok}
        shas = {i: sha256_file(p) for i, p in out_paths.items()}
        values: dict[str, dict] = {s["id"]: {} for s in status}
        for m in metrics:
            if m.dataset_level:
                continue
            desc = m.describe()
            journal = MetricJournal(out / "cache" / "metrics" / f"{_safe(label)}__{m.name}__{_key(desc)}.jsonl")
            todo = [i for i in out_paths if (i, shas[i]) not in journal.values]
            for chunk in progress(list(batched(todo, max(cfg.batch_size, 16))), desc=f"{m.name} {label}", unit="batch"):
                pred = _batch_tensor([out_paths[i] for i in chunk])
                target = _batch_tensor([rec_by_id[i].gt_path for i in chunk]) if m.needs_reference else None
                res = m.compute(pred, target)
                journal.append([{"id": i, "sha": shas[i], "values": {c: float(res[c][k]) for c in m.columns}}
                                for k, i in enumerate(chunk)])
            for i in out_paths:
                values[i].update(journal.values[(i, shas[i])])
        for m in metrics:
            if not m.dataset_level:
                continue
            if len(out_paths) < 2:
                dataset_rows.append({"method": label, "metric": m.name, "value": float("nan"), "n": len(out_paths)})
                continue
            feats = m.features_for_paths([out_paths[i] for i in sorted(out_paths)]) if hasattr(m, "features_for_paths") \
                else m.features(_batch_tensor([out_paths[i] for i in sorted(out_paths)]))
            if m.name not in references:
                references[m.name] = _fid_reference(m, records, cfg)
            ref = references[m.name]
            score = float(m.score(feats, ref))
            dataset_rows.append({"method": label, "metric": m.name, "value": score, "n": len(out_paths)})
        for s in status:
            rec = rec_by_id[s["id"]]
            row = {"id": s["id"], "identity": rec.identity or "", "method": label, "status": s["status"],
                   "reason": s["reason"], "restore_seconds": s["seconds"],
                   "output_path": ("restored/" + s["output_path"]) if s["output_path"] else "",
                   "lq_path": str(rec.lq_path), "gt_path": str(rec.gt_path or ""),
                   "landmarks_path": str(rec.gt_landmarks_path or "")}
            for m in metrics:
                if not m.dataset_level:
                    for c in m.columns:
                        row[c] = values[s["id"]].get(c, float("nan"))
            for f in DEG_FACTORS:
                if f in rec.extra:
                    row["deg_" + f] = rec.extra[f]
            rows.append(row)
    runner.finish()

    per_image = pd.DataFrame(rows)
    write_table(per_image, out / "per_image")
    summary = summarize(per_image, metrics, dataset_rows)
    atomic_write_text(out / "summary.csv", summary.to_csv(index=False, lineterminator="\n"))
    atomic_write_json(out / "run.json", {
        "command": command_line(cfg.argv), "argv": cfg.argv, "started": started, "finished": now(),
        "versions": versions(), "profile": profile.describe(),
        "metrics": [m.describe() for m in metrics], "methods": [
            {"label": r.method.label, "name": r.method.name, "params": r.method.params, "weights": r.weights} for r in runs],
        "skipped": cfg.skipped, "data": {k: v for k, v in data_info.items() if k != "degrade"},
        "degrade": data_info.get("degrade"), "device": str(resolve_device(cfg.device)), "precision": cfg.precision,
        "batch_size": cfg.batch_size, "landmarks": cfg.landmark_source, "on_landmark_failure": cfg.landmark_policy,
        "dataset_metrics": dataset_rows,
    })
    return summary


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in label)


def _fid_reference(metric, records: list[InputRecord], cfg: EvalConfig):
    if cfg.fid_reference is not None:
        from evaluation.fid import load_statistics

        return load_statistics(cfg.fid_reference)
    gts = [r.gt_path for r in sorted(records, key=lambda r: r.id)]
    if hasattr(metric, "features_for_paths"):
        return metric.features_for_paths(gts)
    return metric.features(_batch_tensor(gts))


def summarize(per_image: pd.DataFrame, metrics, dataset_rows: list[dict]) -> pd.DataFrame:
    """method x metric: mean, std (sample, ddof=1), n (images with a value), n_failed (no output or no value)."""
    out = []
    for method, g in per_image.groupby("method", sort=False):
        for m in metrics:
            if m.dataset_level:
                continue
            for c in m.columns:
                vals = pd.to_numeric(g[c], errors="coerce")
                good = vals.dropna()  # +inf (PSNR of an identical image, BasicSR's convention) is a value
                with np.errstate(invalid="ignore"):
                    std = float(np.std(good.to_numpy(np.float64), ddof=1)) if len(good) > 1 else float("nan")
                out.append({"method": method, "metric": c, "mean": float(good.mean()) if len(good) else float("nan"),
                            "std": std, "n": int(len(good)),
                            "n_failed": int(len(g) - len(good)), "higher_is_better": bool(m.higher_is_better[c])})
    for d in dataset_rows:
        m = next(x for x in metrics if x.name == d["metric"])
        total = int((per_image["method"] == d["method"]).sum())
        out.append({"method": d["method"], "metric": d["metric"], "mean": d["value"], "std": float("nan"), "n": d["n"],
                    "n_failed": total - d["n"], "higher_is_better": bool(m.higher_is_better[m.columns[0]])})
        if d["n"] < 2048:
            warnings.warn(f"FID for {d['method']} from only {d['n']} images (< 2048): biased upwards, compare only at equal N", stacklevel=2)
    return pd.DataFrame(out, columns=["method", "metric", "mean", "std", "n", "n_failed", "higher_is_better"])


def print_summary(summary: pd.DataFrame, stream=None, profile: str | None = None) -> None:
    """The summary, followed by the metric profile's conventions (a number is never printed without them).
    ``stream`` defaults to the current ``sys.stderr`` (looked up at call time)."""
    stream = sys.stderr if stream is None else stream
    for _, r in summary.iterrows():
        arrow = "↑" if r["higher_is_better"] else "↓"
        std = "" if pd.isna(r["std"]) else f" ± {r['std']:.4f}"
        print(f"  {r['method']:<20} {r['metric']:<16}{arrow} {r['mean']:.4f}{std}  (n={r['n']}, failed={r['n_failed']})", file=stream)
    from evaluation.profiles import get_profile

    print(get_profile(profile).summary(), file=stream)
