"""``celebref build``: turn a crawl folder into a CelebRef-HQ-layout dataset (see celebref.dataset.pipeline)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_check_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``build`` and ``verify``: the face backend and the identity, duplicate and quality checks."""
    p.add_argument("--backend", choices=["insightface", "dlib"], default=None,
                   help="face backend (default: insightface when its model files are present, else dlib)")
    p.add_argument("--identity-threshold", type=float, default=None,
                   help="max distance to the folder's dominant identity (default: the backend's calibrated "
                        "same-identity threshold; dlib 0.40 on normalised = 0.6 on raw descriptors)")
    p.add_argument("--collision-threshold", type=float, default=None, help="flag two folders whose identity centroids are closer (default: identity threshold)")
    p.add_argument("--merge-threshold", type=float, default=None, help="reject the smaller of two folders closer than this (default: half the identity threshold)")
    p.add_argument("--near-dup-distance", type=float, default=None, help="embedding distance for near-duplicate candidates (default: half the identity threshold)")
    p.add_argument("--near-dup-hash-bits", type=int, default=10, help="max perceptual-hash bit difference of near duplicates (of 64; default 10)")
    p.add_argument("--min-blur", type=float, default=25.0, help="min Laplacian variance of the aligned face (default 25)")
    p.add_argument("--max-yaw", type=float, default=70.0, help="max |yaw| index in degrees estimated from landmarks (default 70: near-profiles only; celebref-mini reaches 58)")
    p.add_argument("--no-cache", action="store_true", help="recompute every stage")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "build",
        help="build an identity-grouped, aligned face dataset from a crawl folder",
        description="Curate a crawl <root>/<person folder>/**/<images> into CelebRef-HQ's layout: exact and near "
                    "de-duplication, quality gates, per-folder identity verification, cross-folder collision "
                    "detection, identity-disjoint split. Every input file gets a decision and a reason in "
                    "manifest.csv. Resumable: rerun the same command after an interruption.",
    )
    p.add_argument("crawl", type=Path, help="crawl folder: one sub-folder per person")
    p.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes for analysis and writing (default: the number of CPU cores, at most 8); "
                        "results do not depend on it")
    p.add_argument("--overrides", type=Path, default=None, help="CSV source_path,action(accept|reject|identity),identity")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/test split and probe choice (default 0)")
    add_check_options(p)
    p.add_argument("--min-face-size", type=float, default=256.0, help="min side of the FFHQ crop in source pixels (default 256)")
    p.add_argument("--min-per-identity", type=int, default=3, help="identities with fewer images are dropped (default 3)")
    p.add_argument("--max-per-identity", type=int, default=21, help="keep at most this many best-quality images per identity (default 21)")
    p.add_argument("--test-fraction", type=float, default=0.1, help="fraction of identities in the test split (default 0.1)")
    p.add_argument("--probes-per-identity", type=int, default=1, help="held-out probe images per test identity (default 1)")
    p.add_argument("--cache-dir", type=Path, default=None, help="stage cache folder (default <out>/cache)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from celebref.dataset import BuildConfig, build_dataset
    from celebref.provenance import command_line

    workers = args.workers if args.workers is not None else max(1, min(8, os.cpu_count() or 1))
    cfg = BuildConfig(
        crawl=args.crawl, out=args.out, backend=args.backend, workers=workers, overrides=args.overrides,
        seed=args.seed, identity_threshold=args.identity_threshold, collision_threshold=args.collision_threshold,
        merge_threshold=args.merge_threshold, near_dup_distance=args.near_dup_distance,
        near_dup_hash_bits=args.near_dup_hash_bits, min_face_size=args.min_face_size, min_blur=args.min_blur,
        max_yaw=args.max_yaw, min_per_identity=args.min_per_identity, max_per_identity=args.max_per_identity,
        test_fraction=args.test_fraction, probes_per_identity=args.probes_per_identity, cache_dir=args.cache_dir,
        use_cache=not args.no_cache, command=command_line(),
    )
    meta = build_dataset(cfg, log=print)
    print(f"wrote {args.out}")
    return 0 if meta["accepted"] + meta["rejected"] == meta["inputs"] else 1
