"""``celebref verify``: audit a dataset in CelebRef-HQ's layout (identity, duplicates, quality, padding artifacts)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .build import add_check_options


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
    add_check_options(p)
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
