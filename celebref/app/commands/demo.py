"""``celebref demo``: build -> degrade -> restore -> evaluate -> report on a sample made from images our
dependencies ship. Offline; a few minutes on 2 CPU cores."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole chain offline on a built-in sample", description=__doc__)
    p.add_argument("--out", type=Path, default=Path("celebref-demo"), help="output folder (default ./celebref-demo)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from celebref.app.demo import run_demo

    run_demo(args.out, log=lambda s: print(s, file=sys.stderr))
    return 0
