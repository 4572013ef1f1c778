"""celebref report: an HTML report of an evaluate run, of a build (curation report) or of a verify audit.

The report is a folder: index.html and the pictures, plots and scripts it shows in assets/ beside it
(all local: it opens offline from disk and fetches nothing); copy or archive the whole folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="HTML report (a folder: index.html + assets/) of an evaluate run, a build output "
                                      "or a verify output", description=__doc__)
    p.add_argument("folder", type=Path, help="an evaluate run folder (summary.csv), a build output folder (build.json) "
                                             "or a verify output folder (verify.json)")
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
    elif (folder / "build.json").is_file() or (folder / "verify.json").is_file():
        from reports.build_report import build_build_report

        index = build_build_report(folder, args.out)
    else:
        raise ConfigError(f"{folder} is neither an evaluate run (summary.csv), a build output (build.json) nor a "
                          "verify output (verify.json)")
    n_assets = sum(1 for p in (index.parent / "assets").rglob("*") if p.is_file())
    print(f"report folder written: {index.parent} (open {index.name}; its {n_assets} files in assets/ belong to it: "
          "copy the whole folder)", file=sys.stderr)
    return 0
