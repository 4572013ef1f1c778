"""``celebref build``: turn a crawl folder into a CelebRef-HQ-layout dataset (see celebref.dataset.pipeline).

Every default comes from :class:`celebref.dataset.config.BuildConfig` (defined once there); flag names are the
parameter names with dashes.

Exit status (:mod:`celebref.app.outcome`): rejections by the curation policy are decisions, not failures: every
reason of :data:`celebref.dataset.records.REASONS` except ``analysis_error``, including ``unreadable`` (the file
itself is broken: a crawl has such files, and the manifest records each with its reader's message). A file whose
analysis failed (``analysis_error``: the analysis raised, or its worker died) is a failure: the build finishes,
exits 3 and names the files; rerunning the same command retries them (failed analyses are never cached).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from celebref.app.engine_options import add_engine_options
from celebref.app.outcome import Outcome
from celebref.errors import ConfigError


def _d(name: str):
    from celebref.dataset.config import BuildConfig, default_of

    return default_of(BuildConfig, name)


def add_check_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``build`` and ``verify``: the face backend and the identity, duplicate and quality checks."""
    p.add_argument("--backend", choices=["insightface", "dlib"], default=_d("backend"),
                   help="face backend (default: insightface when its model files are present, else dlib)")
    p.add_argument("--identity-threshold", type=float, default=_d("identity_threshold"),
                   help="max distance to the folder's dominant identity (default: the backend's calibrated "
                        "same-identity threshold; dlib 0.40 on normalised = 0.6 on raw descriptors)")
    p.add_argument("--collision-threshold", type=float, default=_d("collision_threshold"),
                   help="flag two folders whose identity centroids are closer (default: identity threshold)")
    p.add_argument("--merge-threshold", type=float, default=_d("merge_threshold"),
                   help="two folders closer than this hold the same person: see --on-collision (default: half the identity threshold)")
    p.add_argument("--near-dup-distance", type=float, default=_d("near_dup_distance"),
                   help="embedding distance for near-duplicate candidates (default: half the identity threshold)")
    p.add_argument("--near-dup-hash-bits", type=int, default=_d("near_dup_hash_bits"),
                   help=f"max perceptual-hash bit difference of near duplicates (of 64; default {_d('near_dup_hash_bits')})")
    p.add_argument("--min-blur", type=float, default=_d("min_blur"),
                   help=f"min Laplacian variance of the aligned face (default {_d('min_blur'):g})")
    p.add_argument("--max-yaw", type=float, default=_d("max_yaw"),
                   help=f"max |yaw index| in degrees estimated from landmarks (default {_d('max_yaw'):g}: removes "
                        "near-profiles only; see benchmarks/calibrate_pose.py for its calibration on real faces)")
    p.add_argument("--no-cache", dest="use_cache", action="store_false", help="recompute every stage")


def make_engine(args: argparse.Namespace, default_workers: int):
    """The engine of ``--engine``: local with ``--workers`` (default ``default_workers``) processes; Ray with
    ``--workers`` actors when given, else one per CPU of the cluster."""
    from celebref.app.engine_options import engine_from_args
    from celebref.engine import ENGINES

    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers must be >= 1")
    local = ENGINES.resolve(getattr(args, "engine", None) or "local") == "local"
    return engine_from_args(args, workers=args.workers if args.workers is not None else (default_workers if local else None))


def failures_outcome(records_reasons: dict[str, int], failed: list[str], items: int) -> Outcome:
    """The :class:`Outcome` of a build or an audit: ``analysis_error`` rows are the failures (see the module docstring)."""
    n = int(records_reasons.get("analysis_error", 0))
    return Outcome(items=items, failed=n, details=[f"analysis failed: {f}" for f in failed[:10]]
                   + ([f"... and {n - 10} more (manifest.csv, reason analysis_error)"] if n > 10 else []))


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "build",
        help="build an identity-grouped, aligned face dataset from a crawl folder",
        description="Curate a crawl <root>/<person folder>/**/<images> into CelebRef-HQ's layout: exact and near "
                    "de-duplication, quality gates, per-folder identity verification, cross-folder collision "
                    "detection, identity-disjoint split. Every file under the crawl gets a decision and a reason in "
                    "manifest.csv. Resumable: rerun the same command after an interruption.",
    )
    p.add_argument("crawl", type=Path, help="crawl folder: one sub-folder per person")
    p.add_argument("--out", type=Path, required=True, help="dataset folder to write (locked while the build runs)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes for analysis and writing (default: the number of CPU cores, at most 8); "
                        "results do not depend on it")
    p.add_argument("--overrides", type=Path, default=_d("overrides"), help="CSV source_path,action(accept|reject|identity),identity")
    p.add_argument("--seed", type=int, default=_d("seed"), help=f"seed of the train/test split and probe choice (default {_d('seed')})")
    add_check_options(p)
    from celebref.dataset.config import ON_COLLISION

    p.add_argument("--on-collision", choices=ON_COLLISION, default=_d("on_collision"),
                   help="two folders holding the same person: merge them into one identity (recorded with both "
                        "folder names), flag the collision and keep both, or reject the smaller folder "
                        f"(default {_d('on_collision')})")
    p.add_argument("--min-face-size", type=float, default=_d("min_face_size"),
                   help=f"min side of the FFHQ crop in source pixels (default {_d('min_face_size'):g})")
    p.add_argument("--min-per-identity", type=int, default=_d("min_per_identity"),
                   help=f"identities with fewer images are dropped (default {_d('min_per_identity')})")
    p.add_argument("--max-per-identity", type=int, default=_d("max_per_identity"),
                   help=f"keep at most this many best-quality images per identity (default {_d('max_per_identity')})")
    p.add_argument("--test-fraction", type=float, default=_d("test_fraction"),
                   help=f"fraction of identities in the test split (default {_d('test_fraction'):g})")
    p.add_argument("--probes-per-identity", type=int, default=_d("probes_per_identity"),
                   help=f"held-out probe images per test identity (default {_d('probes_per_identity')})")
    p.add_argument("--cache-dir", type=Path, default=_d("cache_dir"), help="stage cache folder (default <out>/cache)")
    add_engine_options(p)
    p.set_defaults(func=run)


CHECK_OPTIONS = ("backend", "identity_threshold", "collision_threshold", "merge_threshold", "near_dup_distance",
                 "near_dup_hash_bits", "min_blur", "max_yaw", "use_cache")


def run(args: argparse.Namespace) -> Outcome:
    import pandas as pd

    from celebref.dataset import BuildConfig, build_dataset
    from celebref.outdir import check_output

    check_output(args.out, "build", [args.crawl])  # before anything is created; again under the build's lock
    from celebref.provenance import command_line

    opts = {k: getattr(args, k) for k in CHECK_OPTIONS}
    if args.workers is not None:
        opts["workers"] = args.workers
    cfg = BuildConfig(
        crawl=args.crawl, out=args.out, overrides=args.overrides, seed=args.seed, on_collision=args.on_collision,
        min_face_size=args.min_face_size, min_per_identity=args.min_per_identity,
        max_per_identity=args.max_per_identity, test_fraction=args.test_fraction,
        probes_per_identity=args.probes_per_identity, cache_dir=args.cache_dir, command=command_line(), **opts,
    )
    with make_engine(args, cfg.workers) as engine:
        meta = build_dataset(cfg, log=print, engine=engine)
    print(f"wrote {args.out}")
    failed: list[str] = []
    if meta["reasons"].get("analysis_error"):
        man = pd.read_parquet(Path(args.out) / "manifest.parquet", columns=["source_path", "reason", "error", "is_primary"])
        bad = man[man["is_primary"] & (man["reason"] == "analysis_error")]
        failed = [f"{p}: {e}" for p, e in zip(bad["source_path"], bad["error"])]
    return failures_outcome(meta["reasons"], failed, meta["inputs"])
