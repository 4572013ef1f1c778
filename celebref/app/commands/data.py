"""``celebref data``: the named real-world test sets (see :mod:`celebref.datasets`): their status, where they live,
and fetching the ones with direct downloads (the others print what to put where)."""

from __future__ import annotations

import argparse
import json
import sys

from celebref import datasets as D
from celebref.errors import WeightError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "data", help="real-world test sets: status, fetch, path (names: celebref list datasets)",
        description="Named real-world test sets (WIDER-Test, LFW-Test, WebPhoto-Test, CelebChild-Test, DMDNet's "
                    "RealLQs): source, licence, size, local status. Folder: $CELEBREF_HOME/datasets/<name>, or "
                    "CELEBREF_DATASET_<NAME>=PATH. Exit status 3 when some requested sets are not available.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    q = sub.add_parser("status", help="every declared set (or NAME...) with its state, licence, source and size")
    q.add_argument("names", nargs="*", metavar="NAME")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=_status)

    q = sub.add_parser("fetch", help="download sets with direct links (checksummed); print instructions for the others")
    q.add_argument("names", nargs="+", metavar="NAME")
    q.add_argument("--force", action="store_true", help="download again even if present")
    q.set_defaults(func=_fetch)

    q = sub.add_parser("path", help="print the folder of NAME (exit 3 when it is not there)")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=_path)


def _size(n: int | None) -> str:
    return "size not published" if n is None else f"{n / 1e6:.1f} MB"


def _status(args: argparse.Namespace) -> int:
    names = [D.get(n).name for n in args.names] or D.DATASETS.names()
    rows = []
    for n in names:
        src, st = D.get(n), D.status(n)
        rows.append({"name": n, "title": src.title, "state": st.state, "images": st.n_images,
                     "published_images": src.n_images, "path": str(st.path), "source": st.source,
                     "licence": src.licence, "noncommercial": src.noncommercial, "kind": src.kind,
                     "urls": list(src.urls) or [u for u, _ in src.files.values()], "size": src.size,
                     "sha256": src.sha256 or ({k: v for k, (_, v) in src.files.items()} if src.files else None),
                     "detail": st.detail})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        lic = ("NON-COMMERCIAL: " if r["noncommercial"] else "") + r["licence"]
        print(f"{r['name']:<{width}}  {r['state']:<10}  {r['images']}/{r['published_images'] or '?'} images  {lic}")
        how = "manual: " if r["kind"] == "manual" else ""
        print(f"{'':<{width}}    source: {how}{r['urls'][0]}  ({_size(r['size'])})")
        print(f"{'':<{width}}    folder: {r['path']}" + (f"  [{r['source']}]" if r["source"] != "cache" else ""))
        if r["detail"] and r["state"] != "missing":
            print(f"{'':<{width}}    {r['detail']}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    names = [D.get(n).name for n in args.names]  # unknown names fail before any download
    failed = 0
    for n in names:
        try:
            print(f"{n}: {D.fetch(n, force=args.force)}")
        except WeightError as e:
            failed += 1
            print(str(e), file=sys.stderr)
    if failed:
        print(f"{failed} of {len(names)} dataset(s) not available (instructions above)", file=sys.stderr)
    return 3 if failed else 0


def _path(args: argparse.Namespace) -> int:
    st = D.status(args.name, verify=False)
    print(st.path)
    if not st.ok:
        print(f"({st.state}: {st.detail}; `celebref data fetch {st.name}` or see `celebref data status`)",
              file=sys.stderr)
        return 3
    return 0
