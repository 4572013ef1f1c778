"""The ``celebref`` console command. Subcommands live in :mod:`celebref.app.commands` (one module each).

Exit status (:mod:`celebref.app.outcome`): 0 everything requested was done; 3 finished with per-item failures or
skipped methods/metrics (``--fail-on`` chooses); 2 usage or configuration error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from celebref import __version__
from celebref.errors import CelebrefError

from .outcome import DEFAULT_FAIL_ON, EXIT_CODES_HELP, EXIT_INTERRUPTED, EXIT_USAGE, FAIL_ON, Outcome


def _add_fail_on(parser: argparse.ArgumentParser) -> None:
    if any("--fail-on" in a.option_strings for a in parser._actions):
        return
    parser.add_argument("--fail-on", choices=FAIL_ON, default=DEFAULT_FAIL_ON,
                        help="when a finished run exits with status 3: any item failed or anything requested was "
                             "skipped (any, default), only when nothing was done (all), never (none); "
                             "0 = all done, 2 = usage/config error")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="celebref",
        description="Build identity-grouped face datasets, synthesize LQ test sets, run restoration methods and evaluate them.",
        epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"celebref {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    for p in set(sub.choices.values()):
        _add_fail_on(p)
    return parser


def exit_status(result: object, fail_on: str = DEFAULT_FAIL_ON, command: str = "") -> int:
    """A command's return value as an exit status: an :class:`Outcome` by ``fail_on`` (its summary printed on
    stderr when something was not done), an int as is, None as 0."""
    if isinstance(result, Outcome):
        text = result.summary()
        if text:
            print(f"celebref {command}: {text}", file=sys.stderr)
        return result.exit_code(fail_on)
    return int(result or 0)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        result = args.func(args)
    except CelebrefError as e:
        print(f"celebref {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"celebref {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return exit_status(result, getattr(args, "fail_on", DEFAULT_FAIL_ON), args.command)


if __name__ == "__main__":
    sys.exit(main())
