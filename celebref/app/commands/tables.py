"""``celebref tables``: paper-style tables (LaTeX booktabs, Markdown, CSV) from evaluate run folders."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tables", help="paper tables from one or more evaluate runs", description=__doc__)
    p.add_argument("runs", nargs="+", type=Path, help="evaluate run folders (each becomes a column group)")
    p.add_argument("--format", default="latex", choices=["latex", "markdown", "csv"])
    p.add_argument("--metrics", default=None, help="comma list of metric columns (default: all in the runs)")
    p.add_argument("--precision", type=int, default=4, help="decimals (default 4)")
    p.add_argument("--names", default=None, help="comma list of column-group names, one per run (default: the degradation "
                                                 "preset or the test set's folder; runs sharing one get a longer path)")
    p.add_argument("--rank-references", action="store_true",
                   help="also mark best/second best among the reference rows (lq, bicubic); by default only the "
                        "restoration methods are ranked, as the caption says")
    p.add_argument("--out", type=Path, default=None, help="write to this file instead of stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from celebref.errors import ConfigError
    from celebref.fsutil import atomic_write_text
    from reports.tables import load_run, make_table

    names = [n.strip() for n in args.names.split(",")] if args.names else [None] * len(args.runs)
    if len(names) != len(args.runs):
        raise ConfigError(f"--names has {len(names)} name(s) for {len(args.runs)} run(s)")
    dup = sorted({n for n in names if n is not None and names.count(n) > 1})
    if dup:
        raise ConfigError(f"--names gives the same name to two runs: {', '.join(dup)}")
    runs = [load_run(p, n) for p, n in zip(args.runs, names)]
    metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
    text = make_table(runs, args.format, metrics, args.precision, rank_references=args.rank_references)
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0
