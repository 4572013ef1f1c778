"""``celebref report``: a self-contained HTML report of an evaluate run or of a build (curation report)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="HTML report of an evaluate run folder or a build output folder", description=__doc__)
    p.add_argument("folder", type=Path, help="an evaluate run folder (summary.csv) or a build output folder (build.json)")
    p.add_argument("--out", type=Path, default=None, help="report folder (default <folder>/report)")
    p.add_argument("--rank-references", action="store_true",
                   help="evaluate reports: also mark the reference rows (lq, bicubic) best when they are; by default "
                        "only the restoration methods are ranked, as the summary caption says")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from celebref.errors import ConfigError

    folder = args.folder
    if (folder / "summary.csv").is_file():
        from reports.run_report import build_run_report

        index = build_run_report(folder, args.out, rank_references=args.rank_references)
    elif (folder / "build.json").is_file():
        from reports.build_report import build_build_report

        index = build_build_report(folder, args.out)
    else:
        raise ConfigError(f"{folder} is neither an evaluate run (summary.csv) nor a build output (build.json)")
    print(f"report written: {index}", file=sys.stderr)
    return 0
