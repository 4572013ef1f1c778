"""celebref tables: paper-style tables (LaTeX booktabs, Markdown, CSV) from evaluate run folders.

Methods that restore from reference images of the person (dmdnet-specific, asffnet: needs_references in the
method registry, or as recorded in run.json) get their own table, as in the DMDNet paper: one table for generic
restoration, one for specific restoration with the reference count in its caption."""

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


def _needs_references(runs) -> dict[str, bool]:
    """Method label -> ``needs_references`` from the method registry, for labels a run did not record it for
    (a label is ``NAME`` or ``NAME:k=v``; external and unknown names: no)."""
    from baselines.registry import METHODS, method_class

    out: dict[str, bool] = {}
    for r in runs:
        for label in dict.fromkeys(r.summary["method"]):
            name = str(label).split(":", 1)[0]
            if label in r.needs_references or label in out or name not in METHODS:
                continue
            try:
                out[label] = bool(getattr(method_class(name), "needs_references", False))
            except Exception:  # a plugin that fails to load: not known to need references
                out[label] = False
    return out


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
    text = make_table(runs, args.format, metrics, args.precision, rank_references=args.rank_references,
                      needs_references=_needs_references(runs))
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0
