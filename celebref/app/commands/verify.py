"""``celebref verify``: audit a dataset in CelebRef-HQ's layout (identity, duplicates, quality, padding artifacts)."""

from __future__ import annotations

import argparse
from pathlib import Path

from celebref.app.engine_options import add_engine_options
from celebref.app.outcome import Outcome

from .build import CHECK_OPTIONS, add_check_options, failures_outcome, make_engine


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
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes for the analysis (default 1; with --engine ray: one actor per CPU of the cluster)")
    add_check_options(p)
    add_engine_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> Outcome:
    """Flags (``rejected`` rows: duplicates, outliers, padding...) are the audit's findings, not failures; an image
    whose analysis failed is (exit 3, see :mod:`celebref.app.commands.build`)."""
    from celebref.dataset import VerifyConfig, verify_dataset

    cfg = VerifyConfig(dataset=args.dataset, out=args.out, **{k: getattr(args, k) for k in CHECK_OPTIONS})
    with make_engine(args, 1) as engine:
        meta = verify_dataset(cfg, log=print, engine=engine)
    print(f"wrote {args.out}")
    return failures_outcome(meta["reasons"], [], meta["images"])
