"""The ``--engine`` options every command shares (build, degrade, restore, evaluate): one definition, one reader."""

from __future__ import annotations

import argparse
from typing import Any

from celebref.engine import ENGINES, Engine, get_engine


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """``--engine local|ray`` and ``--ray-address``; ``--workers`` stays each command's own option."""
    g = p.add_argument_group("engine")
    g.add_argument("--engine", default="local",
                   help=f"where the per-item work runs: {', '.join(ENGINES.names())} (default local = worker "
                        "processes on this machine; ray needs pip install 'celebref[ray]')")
    g.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --engine ray: 'auto' joins the running cluster, 'ray://HOST:10001' a remote one; "
                        "default: start a local Ray")


def engine_from_args(args: argparse.Namespace, **options: Any) -> Engine:
    """The engine named by ``args.engine`` (``options``, e.g. ``workers``, go to the local engine, ``None`` values
    leaving its defaults; the Ray engine takes ``address`` and sizes itself from the cluster unless ``workers`` is
    given)."""
    name = ENGINES.resolve(getattr(args, "engine", None) or "local")
    if name == "ray":
        opts = {"address": getattr(args, "ray_address", None)}
        if options.get("workers"):
            opts["actors"] = int(options["workers"])
        if options.get("gpus_per_actor"):  # restore/evaluate on CUDA: one actor per GPU
            opts["gpus_per_actor"] = float(options["gpus_per_actor"])
        return get_engine("ray", **opts)
    options.pop("gpus_per_actor", None)
    return get_engine(name, **{k: v for k, v in options.items() if v is not None})  # workers=None: the default
