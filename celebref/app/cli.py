"""The ``celebref`` console command. Subcommands live in :mod:`celebref.app.commands` (one module each)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from celebref import __version__
from celebref.errors import CelebrefError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="celebref",
        description="Build identity-grouped face datasets, synthesize LQ test sets, run restoration methods and evaluate them.",
    )
    parser.add_argument("--version", action="version", version=f"celebref {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        rc = args.func(args)
    except CelebrefError as e:
        print(f"celebref {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"celebref {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
