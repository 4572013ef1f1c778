"""``celebref restore``: run restoration methods over DMDNet lists, folders or degrade manifests."""

from __future__ import annotations

import argparse
import sys


def add_method_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``restore`` and ``evaluate``."""
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                   help="fp32 is exact (TF32 off); bf16/fp16 autocast on CUDA only")
    p.add_argument("--batch-size", type=int, default=1, help="images per forward (default 1)")
    p.add_argument("--on-landmark-failure", default="skip", choices=["skip", "input", "generic"],
                   help="what landmark-based methods do when landmarks fail: no output (skip), copy the input, "
                        "or restore without the landmark-dependent part (generic)")
    p.add_argument("--landmarks", default="detect", choices=["detect", "gt"],
                   help="detect landmarks on the LQ input (official behaviour, default) or use the ground truth's "
                        "landmark files when the test set has them (oracle landmarks; recorded)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("restore", help="restore faces with one or more methods (dmdnet, dmdnet-specific, dfdnet, ...)",
                       description=__doc__)
    p.add_argument("--methods", required=True, help="comma list, e.g. dmdnet,dmdnet-specific,dfdnet or codeformer:w=0.7 "
                                                   "or external:NAME=<folder>")
    p.add_argument("--input", required=True, help="folder, GenericLists.txt, SpecificLists.txt, or degrade output/manifest")
    p.add_argument("--out", required=True, help="output folder (<out>/<method>/<id>.png)")
    add_method_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from baselines.inputs import read_inputs
    from baselines.registry import create_method, split_method_list
    from celebref.app.restore import RestoreRunner, summarize_status
    from celebref.fsutil import atomic_write_json
    from celebref.provenance import command_line, now, versions

    records = read_inputs(args.input)
    common = dict(device=args.device, precision=args.precision, landmark_policy=args.on_landmark_failure)
    methods = [create_method(s, **common) for s in split_method_list(args.methods)]
    runner = RestoreRunner(args.out, batch_size=args.batch_size, landmark_source=args.landmarks)
    runs = [runner.prepare(m) for m in methods]  # all weights checked before any work starts
    started = now()
    for r in runs:
        runner.run_method(r, records)
    df = runner.finish()
    atomic_write_json(f"{args.out}/restore.json", {
        "command": command_line(), "started": started, "finished": now(), "versions": versions(),
        "input": str(args.input), "n_inputs": len(records), "device": str(methods[0].device) if methods else args.device,
        "precision": args.precision, "batch_size": args.batch_size, "landmarks": args.landmarks,
        "on_landmark_failure": args.on_landmark_failure,
        "methods": [{"label": r.method.label, "name": r.method.name, "params": r.method.params,
                     "weights": r.weights} for r in runs],
    })
    print(f"restored {len(records)} input(s) with {len(runs)} method(s) into {args.out}", file=sys.stderr)
    print(summarize_status(df), file=sys.stderr)
    return 0
