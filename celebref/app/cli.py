"""The ``celebref`` console command. Subcommands live in :mod:`celebref.app.commands` (one module each).

Exit status (:mod:`celebref.app.outcome`): 0 everything requested was done; 3 finished with per-item failures or
skipped methods/metrics (``--fail-on`` chooses); 2 usage or configuration error; 130 interrupted.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import pkgutil
import re
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
    _plain_help(parser)
    return parser


_ROLE = re.compile(r":[a-z]+:`~?([^`<]+?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``([^`]+)``")
_MODULE_NOTE = re.compile(r"\s*\((?:see )?(?:celebref|degradations|baselines|evaluation|reports)(?:\.[A-Za-z_]+)+\)")
_API_NOTE = re.compile(r"\s*\(API: [^)]*\)")
_API_TO_FLAG = {"overwrite=True": "--overwrite", "skip_unavailable=True": "--skip-unavailable",
                "allow_unverified=True": "--allow-unverified-weights"}


def plain_text(text: str | None) -> str | None:
    """Help text as plain text: RST literals and roles (````x````, ``:mod:`x```) lose their markup and
    parenthesised module paths ("(celebref.app.whole_photo)") are dropped; users read ``--help``, not the API docs."""
    if not text:
        return text
    text = _MODULE_NOTE.sub("", text)
    text = _ROLE.sub(lambda m: m.group(1).strip().split(".")[-1] if m.group(0).count("~") else m.group(1).strip(), text)
    return _LITERAL.sub(r"\1", text)


def _plain_help(parser: argparse.ArgumentParser) -> None:
    """:func:`plain_text` over the description, epilog, group titles and option help of ``parser`` and every
    sub-parser below it."""
    parser.description = plain_text(parser.description)
    parser.epilog = plain_text(parser.epilog)
    for group in parser._action_groups:
        group.title = plain_text(group.title)
        group.description = plain_text(group.description)
    for action in parser._actions:
        if action.help and action.help is not argparse.SUPPRESS:
            action.help = plain_text(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = plain_text(choice.help)
            for sub in {id(p): p for p in action.choices.values()}.values():
                _plain_help(sub)


def cli_message(text: str) -> str:
    """An error message as the command line says it: API parameters (``overwrite=True``) become the flags that
    set them (``--overwrite``), and "(API: ...)" notes meant for library users are dropped."""
    text = _API_NOTE.sub("", str(text))
    for api, flag in _API_TO_FLAG.items():
        text = text.replace(api, flag)
    return text


def os_error_line(e: OSError) -> str:
    """One line for an operating-system error no command turned into a per-item failure: what, which path, and
    what to do (disk full: free space, then rerun the same command, which resumes)."""
    paths = [str(p) for p in (getattr(e, "filename", None), getattr(e, "filename2", None)) if p]
    where = f" ({' -> '.join(paths)})" if paths else ""
    what = e.strerror or str(e) or type(e).__name__
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some space (or choose another --out) and rerun the same command: finished work is kept"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "check the permissions of that path, or choose another --out"
    elif e.errno == errno.EIO:
        hint = "the device reported an I/O error; check it and rerun the same command"
    else:
        hint = "fix that path and rerun the same command"
    return f"{what}{where}; {hint}"


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
        print(f"celebref {args.command}: error: {cli_message(str(e))}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:  # last line of defence: disk full, permissions, I/O errors -> one line, never a traceback
        print(f"celebref {args.command}: error: {os_error_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"celebref {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return exit_status(result, getattr(args, "fail_on", DEFAULT_FAIL_ON), args.command)


if __name__ == "__main__":
    sys.exit(main())
