"""``celebref weights``: list, fetch, verify and locate model weights (see :mod:`celebref.weights`)."""

from __future__ import annotations

import argparse
import json
import sys

from celebref import weights as W
from celebref.app.outcome import EXIT_USAGE
from celebref.errors import WeightError

#: exit status when the command ran but something asked for is missing or bad (the documented "not all done")
EXIT_NOT_DONE = 3


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "weights",
        help="list, fetch, verify and locate model weights",
        description="Model weights: where they come from, their licences, and their local status. "
                    "Cache: $CELEBREF_HOME/weights (default: the user cache dir). Any weight can be "
                    "pointed at a local copy with CELEBREF_WEIGHT_<NAME>=PATH or 'celebref weights path NAME --set PATH'. "
                    "Exit status: 0 done, 3 a weight is missing or bad, 2 usage error.",
    )
    sub = p.add_subparsers(dest="weights_command", metavar="ACTION")
    p.set_defaults(func=lambda a: (p.print_help(), EXIT_USAGE)[1])

    q = sub.add_parser("list", help="every declared file with its status, licence, users, source and sha256")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.add_argument("--hash", action="store_true",
                   help="also hash files inside folders (single files with a declared sha256 are always checked; "
                        "hashes are cached by path, size and mtime)")
    q.set_defaults(func=_list)

    q = sub.add_parser("fetch", help="download weights into the cache (resumable, checksummed)")
    q.add_argument("names", nargs="*", metavar="NAME")
    q.add_argument("--all", action="store_true", help="every downloadable entry")
    q.add_argument("--force", action="store_true", help="download again even if present")
    q.set_defaults(func=_fetch)

    q = sub.add_parser("verify", help="check sizes and sha256 of every present file (exit 3 if any is bad)")
    q.add_argument("names", nargs="*", metavar="NAME")
    q.set_defaults(func=_verify)

    q = sub.add_parser("path", help="print where NAME is (or would be); --set/--unset a local override")
    q.add_argument("name", metavar="NAME")
    g = q.add_mutually_exclusive_group()
    g.add_argument("--set", dest="set_path", metavar="PATH", help="record PATH for NAME in $CELEBREF_HOME/paths.json")
    g.add_argument("--unset", action="store_true", help="remove the paths.json override of NAME")
    q.set_defaults(func=_path)


def _licence(w: W.WeightFile) -> str:
    return ("NON-COMMERCIAL: " if w.noncommercial else "") + w.licence


def used_by() -> dict[str, list[str]]:
    """Weight name -> ``kind:name`` of every registry entry (method, metric, face backend, ...) that declares it
    in its ``weights``: derived from the registries, never typed by hand (:func:`celebref.app.registries.weight_users`)."""
    from celebref.app.registries import weight_users

    return weight_users()


def origin(w: W.WeightFile) -> str:
    """Where ``w`` comes from: its download URL, ``manual: <page>`` when it must be fetched by hand, or the Python
    package that ships it."""
    if w.kind == "package":
        return f"package {w.package}" + (f" ({w.homepage})" if w.homepage else "")
    if not w.urls:
        return "manual" + (f": {w.homepage}" if w.homepage else "")
    more = f" (+{len(w.urls) - 1} more)" if len(w.urls) > 1 else ""
    return ("manual: " if w.manual else "") + w.urls[0] + more


def published_sha256(w: W.WeightFile) -> str:
    """The published sha256 of ``w`` (of the archive for zip entries), or what is published instead."""
    if w.sha256:
        return w.sha256
    if w.sha256_prefix:
        return f"not published; its file name carries the prefix {w.sha256_prefix}"
    if w.member_sha256:
        return f"not published for the {w.kind}; {len(w.member_sha256)} member file(s) have one"
    return "not published"


def _list(args: argparse.Namespace) -> int:
    users = used_by()
    rows = []
    for w in W.entries():
        st = W.status(w.name, full=args.hash)
        rows.append((w, st))
    if args.json:
        out = [{**W.as_dict(w), "used_by": users.get(w.name, []), "origin": origin(w),
                "published_sha256": w.sha256, "status": st.state, "path": str(st.path),
                "source": st.source, "detail": st.detail}
               for w, st in rows]
        print(json.dumps(out, indent=2))
        return 0
    print(f"cache: {W.weights_dir()}")
    width = max(len(w.name) for w, _ in rows)
    pad = " " * width
    for w, st in rows:
        src = "" if st.source in ("cache", "package") else f" [{st.source}]"
        print(f"{w.name:<{width}}  {st.state:<10}  {_licence(w)}  used by: {', '.join(users.get(w.name, [])) or '-'}{src}")
        print(f"{pad}    source: {origin(w)}")
        print(f"{pad}    sha256: {published_sha256(w)}")
        if st.state != W.PRESENT and st.detail:
            print(f"{pad}    {st.detail}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    names = list(args.names)
    if args.all:
        names = [w.name for w in W.entries() if w.kind != "package"]
    if not names:
        raise WeightError("name at least one weight (see `celebref weights list`) or use --all")
    for n in names:
        W.get(n)  # unknown names fail before any download
    if len(names) == 1:
        print(W.fetch(names[0], force=args.force))
        return 0
    failed = 0
    for n in names:
        try:
            print(f"{n}: {W.fetch(n, force=args.force)}")
        except WeightError as e:
            failed += 1
            print(f"{n}: {e}", file=sys.stderr)
    if failed:
        print(f"{failed} of {len(names)} weights are not available (instructions above)", file=sys.stderr)
    return EXIT_NOT_DONE if failed else 0


def _verify(args: argparse.Namespace) -> int:
    names = list(args.names) or [w.name for w in W.entries()]
    bad = present = 0
    for n in names:
        st = W.status(n, full=True)
        if st.state == W.MISSING:
            continue
        present += 1
        bad += st.state in (W.BAD_HASH, W.NOT_A_FILE)
        print(f"{n}: {st.state}" + (f" ({st.detail})" if st.detail else "") + f"  {st.path}")
    print(f"{present} present, {bad} bad")
    return EXIT_NOT_DONE if bad else 0


def _path(args: argparse.Namespace) -> int:
    if args.set_path:
        where = W.set_override(args.name, args.set_path)
        print(f"{args.name} -> {W.resolve(args.name)[0]} (recorded in {where})")
        return 0
    if args.unset:
        W.set_override(args.name, None)
    path, source = W.resolve(args.name)
    print(path)
    if not path.exists():
        print(f"(missing; source: {source}. 'celebref weights fetch {args.name}' or see 'celebref weights list')",
              file=sys.stderr)
        return EXIT_NOT_DONE
    wrong = W.kind_problem(W.get(args.name), path)
    if wrong:
        print(f"(unusable: {wrong}; point it at the weight file itself: 'celebref weights path {args.name} --set PATH')",
              file=sys.stderr)
        return EXIT_NOT_DONE
    return 0
