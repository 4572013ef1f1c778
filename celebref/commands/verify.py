"""``celebref verify``: audit a dataset in CelebRef-HQ's layout (identity, duplicates, quality, padding artifacts)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify",
        help="audit an existing CelebRef-HQ-layout dataset without changing it",
        description="Run the build's identity, duplicate and quality checks on already-aligned identity folders "
                    "(<root>/images/<id>/ or <root>/<id>/) plus a check for FFHQ reflect-padding artifacts; "
                    "writes manifest.csv/.parquet, collisions.csv, distances.parquet and verify.json to --out.",
    )
    p.add_argument("dataset", type=Path, help="dataset folder (CelebRef-HQ layout)")
    p.add_argument("--out", type=Path, required=True, help="report folder (outside the dataset)")
    p.add_argument("--backend", choices=["insightface", "dlib"], default=None,
                   help="face backend (default: insightface when its model files are present, else dlib)")
    p.add_argument("--identity-threshold", type=float, default=None, help="default: the backend's calibrated threshold")
    p.add_argument("--collision-threshold", type=float, default=None)
    p.add_argument("--merge-threshold", type=float, default=None)
    p.add_argument("--near-dup-distance", type=float, default=None)
    p.add_argument("--near-dup-hash-bits", type=int, default=10)
    p.add_argument("--min-blur", type=float, default=25.0)
    p.add_argument("--max-yaw", type=float, default=70.0)
    p.add_argument("--no-cache", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from celebref.dataset import VerifyConfig, verify_dataset

    cfg = VerifyConfig(dataset=args.dataset, out=args.out, backend=args.backend,
                       identity_threshold=args.identity_threshold, collision_threshold=args.collision_threshold,
                       merge_threshold=args.merge_threshold, near_dup_distance=args.near_dup_distance,
                       near_dup_hash_bits=args.near_dup_hash_bits, min_blur=args.min_blur, max_yaw=args.max_yaw, use_cache=not args.no_cache)
    verify_dataset(cfg, log=print)
    print(f"wrote {args.out}")
    return 0
