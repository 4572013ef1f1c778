"""``celebref list KIND [PATTERN]``: the names ``--methods``, ``--metrics``, ``--preset``, ``--profile``,
``face_backend=`` ... accept, with aliases, a one-line description, parameters (``NAME:key=value``), the weight
files each needs and where it comes from (celebref or a plugin distribution)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from typing import Any

from celebref.app.registries import KINDS, entry_params, get_registry

COLUMNS = ("name", "aliases", "description", "parameters", "weights", "source")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list methods, metrics, presets, ops, backends, profiles (names, parameters, weights)",
                       description=__doc__)
    p.add_argument("kind", choices=sorted(KINDS), metavar="KIND", help="one of: " + ", ".join(KINDS))
    p.add_argument("pattern", nargs="?", default=None,
                   help="shell-style pattern on names and aliases, e.g. 'dmd*' or '*lpips*'")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _default(v: Any) -> str:
    return "none" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def _param_text(p: dict[str, Any]) -> str:
    if not p["type"]:
        return p["name"]
    return f"{p['name']}={_default(p['default'])} ({p['type']})"


def rows(kind: str, pattern: str | None = None) -> list[dict[str, Any]]:
    """One dict per entry of ``kind`` matching ``pattern``: name, aliases, description, parameters (name,
    type, default, help), weights, source; plus ``error`` rows for plugin entries that failed to load."""
    registry = get_registry(kind)
    out = []
    for e in registry.entries(pattern):
        try:
            params = entry_params(e)
            error = ""
        except Exception as exc:  # noqa: BLE001 - one broken entry must not hide the others
            params, error = [], f"{type(exc).__name__}: {exc}"
        row = {"name": e.name, "aliases": list(e.aliases), "description": e.description,
               "parameters": [{**p, "default": p["default"] if isinstance(p["default"], (str, int, float, bool))
                               or p["default"] is None else str(p["default"])} for p in params],
               "weights": list(e.weights), "source": e.source}
        if error:
            row["error"] = error
        out.append(row)
    import fnmatch

    for name, why in sorted(registry.plugin_errors.items()):
        if pattern is None or fnmatch.fnmatch(name, pattern.lower()):
            out.append({"name": name, "aliases": [], "description": "", "parameters": [], "weights": [],
                        "source": why.split(":", 1)[0], "error": why})
    return out


def format_table(table: list[dict[str, Any]], width: int | None = None) -> str:
    """The rows as a text table; long cells wrap inside their column."""
    width = width or max(100, shutil.get_terminal_size((140, 24)).columns)
    cells = [[r["name"], ", ".join(r["aliases"]) or "-", r["description"] + (f" [ERROR: {r['error']}]" if r.get("error") else ""),
              "; ".join(_param_text(p) for p in r["parameters"]) or "-", ", ".join(r["weights"]) or "-", r["source"]]
             for r in table]
    natural = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(COLUMNS)]
    caps = [natural[0], min(natural[1], 22), 0, min(natural[3], 40), min(natural[4], 30), natural[5]]
    caps[2] = max(30, width - sum(caps) - 2 * (len(COLUMNS) - 1))
    widths = [min(n, c) for n, c in zip(natural, caps)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(COLUMNS, widths)).rstrip()]
    for c in cells:
        wrapped = [textwrap.wrap(text, w, break_long_words=True, break_on_hyphens=False) or [""]
                   for text, w in zip(c, widths)]
        for k in range(max(len(x) for x in wrapped)):
            lines.append("  ".join((x[k] if k < len(x) else "").ljust(w) for x, w in zip(wrapped, widths)).rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    table = rows(args.kind, args.pattern)
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    if not table:
        print(f"no {args.kind} match {args.pattern!r} (all: `celebref list {args.kind}`)", file=sys.stderr)
        return 3  # finished, nothing found (documented codes: 0, 2, 3, 130)
    print(format_table(table))
    for form in KINDS[args.kind].forms:
        if args.pattern is None:
            print(f"also: {form}")
    return 0
