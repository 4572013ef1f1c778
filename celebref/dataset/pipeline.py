"""``celebref build``: crawl folder -> CelebRef-HQ-layout dataset, with a decision and a reason for every file.

Stages: scan (:mod:`.scan`: every file an input or skipped with a reason) -> hash -> analyse (:mod:`.stages`,
cached by content, run through the execution seam :mod:`celebref.engine`) -> decide (:mod:`.decide`) -> plan
(:mod:`.plan`: ids, split, probes) -> write (:mod:`.writer`). The output folder is locked for the whole run
(:mod:`celebref.lock`): a second build into the same folder gets a clear error.

Engines: hashing, the analysis (a pure per-file function, :func:`celebref.dataset.stages.analyze_file`: path +
settings -> JSON record), the per-folder decisions (:func:`celebref.dataset.decide.decide_folders_batch`) and the
writing of aligned faces run through one execution engine (``engine``: ``"local"``, ``"ray"`` or an
:class:`~celebref.engine.Engine`); cross-folder collisions, the split and the tables run here. Every result comes
back to this process, which alone writes the content cache, so a build started with one engine resumes with any
other (the cache keys do not depend on the engine). With a cluster, the crawl and the output folder must be at the
same path on every node (a shared file system): workers read the crawl and write the aligned faces.
Records are held in memory (~10 KB per file).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable

from ..engine import ENGINES, Engine, get_engine
from ..errors import ConfigError
from ..fsutil import sha256_file
from .cache import StageCache, settings_key
from .config import BuildConfig
from .decide import decide
from .interrupt import BuildInterrupted, interrupt_hook
from .overrides import OverrideTable, read_overrides
from .plan import plan_outputs
from .records import funnel, new_record, skipped_record
from .scan import display_path, scan_crawl
from .split import leakage_check
from .stages import backend_info, init_worker, run_analysis, use_backend

__all__ = ["BuildConfig", "BuildInterrupted", "build_dataset", "decide", "format_summary", "funnel"]


def hash_batch(paths: list[str]) -> list:
    """Engine function: sha256 of each file (an ``OSError`` is that file's error)."""
    out: list = []
    for p in paths:
        try:
            out.append(sha256_file(p))
        except OSError as e:
            out.append(OSError(f"cannot read file ({e.strerror or e})"))
    return out


def engine_by_name(name: str, workers: int) -> Engine:
    """The engine ``name``: the local one with ``workers`` processes, any other sized by itself (Ray: the cluster)."""
    return get_engine(name, workers=workers) if ENGINES.resolve(name or "local") == "local" else get_engine(name)


HASH_BATCH = 256  # files per engine task: hashing is I/O-bound and fast


def _hash_records(items, engine: Engine, backend_name: str) -> tuple[list[dict], dict[str, dict]]:
    """Records of the input files; a file that cannot be read gets an ``unreadable`` analysis of its own. (The
    workers are set up for the analysis that follows, so that a Ray engine starts its actors once per build.)"""
    records, analyses = [], {}
    results = engine.map(hash_batch, [str(it.abs_path) for it in items], keys=[it.source_path for it in items],
                         batch_size=HASH_BATCH, desc="hash", unit="file", initializer=init_worker,
                         initargs=(backend_name,))
    for it, res in zip(items, results):
        r = new_record(it, res.value if res.ok else "")
        if not res.ok:
            r["_akey"] = f"unreadable:{it.source_path}"
            analyses[r["_akey"]] = {"status": "unreadable", "error": res.error}
        records.append(r)
    return records, analyses


def _analyse(records: list[dict], analyses: dict, cfg: BuildConfig, be, cache: StageCache, akey: dict,
             log: Callable[[str], None], engine: Engine) -> None:
    todo: list[tuple[str, str]] = []
    seen: set[str] = set()
    for r in records:
        sha = r["sha256"]
        if not sha or sha in seen:
            continue
        seen.add(sha)
        hit = cache.get("analyze", settings_key("analyze", sha, akey))
        if hit is not None:
            analyses[sha] = hit
        else:
            todo.append((sha, r["_abs"]))
    log(f"{len(records)} input files, {len(seen)} distinct contents, {len(todo)} to analyse")
    check = interrupt_hook("analyze")

    def on_result(sha: str, rec: dict) -> None:
        analyses[sha] = rec
        if rec["status"] != "error":
            cache.put("analyze", settings_key("analyze", sha, akey), rec)

    for done, _ in enumerate(run_analysis(todo, cfg.analysis, be.name, be, engine, on_result), 1):
        check(done)


def _meta(cfg: BuildConfig, records: list[dict], skipped: list[dict], result: dict, plan: dict, th: dict,
          binfo: dict, akey: dict, table: OverrideTable | None, excluded: list[str]) -> dict:
    acc = [r for r in records if r["decision"] == "accepted"]
    rep = leakage_check(acc, plan["centroids_by_id"], th["identity_threshold"])
    n_acc = len(acc)
    n_rej = sum(r["decision"] == "rejected" for r in records)
    if n_acc + n_rej != len(records):
        raise RuntimeError(f"internal error: accepted {n_acc} + rejected {n_rej} != {len(records)} inputs")
    reasons: dict[str, int] = {}
    for r in records:
        if r["reason"]:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    skip_reasons: dict[str, int] = {}
    for s in skipped:
        skip_reasons[s["reason"]] = skip_reasons.get(s["reason"], 0) + 1
    return {
        "backend": binfo, "thresholds": th, "analysis": akey, "seed": cfg.seed,
        "funnel": funnel(records), "reasons": dict(sorted(reasons.items())),
        "inputs": len(records), "accepted": n_acc, "rejected": n_rej,
        "files": len(records) + len(skipped), "skipped": len(skipped), "skipped_reasons": dict(sorted(skip_reasons.items())),
        "ignored_files": [s["source_path"] for s in skipped], "excluded_folders": excluded,
        "identities": {f: result["identities"][f] for f in sorted(result["identities"])},
        "n_identities": len(plan["identities"]), "leakage": rep.to_dict(),
        "overrides": {"file": str(cfg.overrides) if cfg.overrides else None,
                      "unmatched": table.unmatched() if table else []},
        "specific_lists_skipped": plan["skipped_probes"],
    }


def build_dataset(cfg: BuildConfig, log: Callable[[str], None] | None = None, engine: str | Engine = "local") -> dict:
    """Run the whole build; returns the ``build.json`` content. See the module docstring. ``engine``: a name
    (closed at the end; ``local`` gets ``cfg.workers`` processes, ``ray`` one actor per CPU of the cluster) or an
    :class:`~celebref.engine.Engine` (used as it is, not closed)."""
    cfg.validate()
    if isinstance(engine, Engine):
        return _build(cfg, log, engine)
    with engine_by_name(engine, cfg.workers) as eng:
        return _build(cfg, log, eng)


def _build(cfg: BuildConfig, log: Callable[[str], None] | None, engine: Engine) -> dict:
    from ..face import get_backend
    from ..lock import lock_folder
    from ..outdir import check_output
    from . import writer

    log = log or (lambda s: print(s, file=sys.stderr))
    crawl, out = Path(cfg.crawl).resolve(), Path(cfg.out).resolve()
    with lock_folder(out, command=cfg.command or "celebref build"):
        check_output(out, "build", [crawl])
        be = get_backend(cfg.backend)
        log(f"face backend: {be.name} ({'chosen' if cfg.backend else 'auto: insightface when its model files are present, else dlib'})")
        th = cfg.resolved(be)
        table = OverrideTable(read_overrides(cfg.overrides)) if cfg.overrides else None
        cache_dir = Path(cfg.cache_dir).resolve() if cfg.cache_dir else out / "cache"
        exclude = [out, cache_dir]
        scan = scan_crawl(crawl, exclude=exclude)
        if not scan.items:
            raise ConfigError(f"no image files found under person folders of {display_path(str(crawl))[0]!r}")
        cache = StageCache(cache_dir, enabled=cfg.use_cache)
        binfo = backend_info(be)
        akey = cfg.analysis.key(binfo)
        use_backend(be)
        records, analyses = _hash_records(scan.items, engine, be.name)
        _analyse(records, analyses, cfg, be, cache, akey, log, engine)
        skipped = [skipped_record(s) for s in scan.skipped]
        result = decide(records, analyses, th, table, engine=engine)
        plan = plan_outputs(records, result, th)
        excluded = [display_path(os.path.relpath(p, crawl))[0] for p in exclude if Path(p) != crawl and crawl in Path(p).parents]
        meta = _meta(cfg, records, skipped, result, plan, th, binfo, akey, table, sorted(set(excluded)))
        writer.write_dataset(out, Path(display_path(str(crawl))[0]), records, skipped, analyses, result, plan, meta,
                             cfg, be, cache, engine)
    log(format_summary(meta))
    return meta


def format_summary(meta: dict) -> str:
    f = meta["funnel"]
    lines = ["funnel: " + " -> ".join(f"{k} {v}" for k, v in f.items())]
    if meta["reasons"]:
        lines.append("rejected by reason: " + ", ".join(f"{k} {v}" for k, v in meta["reasons"].items()))
    if meta.get("skipped"):
        lines.append(f"skipped {meta['skipped']} files that are not inputs: "
                     + ", ".join(f"{k} {v}" for k, v in meta["skipped_reasons"].items()))
    lines.append(f"accepted {meta['accepted']} + rejected {meta['rejected']} = {meta['accepted'] + meta['rejected']} = inputs {meta['inputs']}: "
                 + ("OK" if meta["accepted"] + meta["rejected"] == meta["inputs"] else "MISMATCH"))
    lines.append(f"identities: {meta['n_identities']}; leakage check: {'OK' if meta['leakage']['ok'] else 'FAILED ' + json.dumps(meta['leakage'])}")
    return "\n".join(lines)
