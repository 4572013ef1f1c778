"""``celebref restore``: run restoration methods over DMDNet lists, folders or degrade manifests."""

from __future__ import annotations

import argparse
import contextlib
import sys

from celebref.app.outcome import EXIT_CODES_HELP


class _DeprecatedAlias(argparse.Action):
    """A hidden old flag: stores into the new option's ``dest`` and prints one deprecation line."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        self.new = new
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"celebref: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_method_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``restore`` and ``evaluate``: named like the API parameters, defaults from
    :class:`celebref.app.restore.RestoreOptions` (the one definition)."""
    from baselines.base import LANDMARK_POLICIES
    from celebref.app.engine_options import add_engine_options
    from celebref.app.restore import AUTO_CPU, AUTO_CUDA_CAP, AUTO_START, LANDMARK_SOURCES, RestoreOptions
    from celebref.device import PRECISIONS

    d = RestoreOptions()
    p.add_argument("--device", default=d.device, help=f"cpu, cuda, cuda:N or auto (default {d.device})")
    p.add_argument("--precision", default=d.precision, choices=list(PRECISIONS),
                   help=f"fp32 is exact (TF32 off); tf32 allows TF32 tensor cores (CUDA); bf16/fp16 autocast with float32 "
                        f"islands for discrete choices; each method lists what it supports (default {d.precision})")
    p.add_argument("--batch-size", type=_batch_size, default=d.batch_size,
                   help=f"images per forward pass, or auto: on CUDA the largest that fits (doubling from "
                        f"{AUTO_START} up to {AUTO_CUDA_CAP}), {AUTO_CPU} on the CPU; on CUDA out of memory a batch is "
                        f"redone at half the size (default {d.batch_size})")
    p.add_argument("--landmark-policy", default=d.landmark_policy, choices=list(LANDMARK_POLICIES),
                   help="what landmark-based methods do when landmarks fail: no output (skip), copy the input, "
                        f"or restore without the landmark-dependent part (generic); default {d.landmark_policy}")
    p.add_argument("--on-landmark-failure", dest="landmark_policy", choices=list(LANDMARK_POLICIES),
                   action=_DeprecatedAlias, new="--landmark-policy")
    p.add_argument("--landmark-source", default=d.landmark_source, choices=list(LANDMARK_SOURCES),
                   help="detect landmarks on the LQ input (official behaviour) or use the ground truth's landmark files "
                        f"when the test set has them (oracle landmarks; recorded); default {d.landmark_source}")
    p.add_argument("--landmarks", dest="landmark_source", choices=list(LANDMARK_SOURCES),
                   action=_DeprecatedAlias, new="--landmark-source")
    p.add_argument("--allow-unverified-weights", action="store_true",
                   help="use weight files whose size/sha256 differ from the published ones (e.g. your own or synthetic "
                        "checkpoints); each such file is announced and recorded with its sha256 in the run record "
                        "(also: CELEBREF_ALLOW_UNVERIFIED_WEIGHTS=1)")
    add_list_format(p)
    add_engine_options(p)


def _batch_size(text: str):
    from celebref.app.restore import parse_batch_size
    from celebref.errors import ConfigError

    try:
        return parse_batch_size(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def method_engine(args: argparse.Namespace, device):
    """The engine for restoring/scoring (``--engine``): the local engine runs inline (the model in this process);
    Ray gets one actor per GPU when the methods run on CUDA, else one per CPU slot."""
    from celebref.app.engine_options import engine_from_args

    if (getattr(args, "engine", None) or "local") == "local":
        return engine_from_args(args, workers=1)
    return engine_from_args(args, gpus_per_actor=1 if str(device).startswith("cuda") else None)


def add_list_format(p: argparse.ArgumentParser) -> None:
    from celebref.testset import LIST_FORMATS

    p.add_argument("--list-format", default="auto", choices=list(LIST_FORMATS),
                   help="how a .txt test set is read: generic (one LQ path per line), specific "
                        "(LQ<TAB>RefDir<TAB>RefLandmarkDir) or auto (default: every line must agree; ambiguous files "
                        "are refused with the line number). Relative paths: current directory first, then the list's folder")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("restore", help="restore faces with one or more methods (dmdnet, dmdnet-specific, dfdnet, ...)",
                       description=__doc__, epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", required=True, help="comma list, e.g. dmdnet,dmdnet-specific,dfdnet or codeformer:w=0.7 "
                                                   "or external:NAME=<folder> (names and parameters: celebref list methods)")
    p.add_argument("--input", required=True, help="folder, GenericLists.txt, SpecificLists.txt, or degrade output/manifest")
    p.add_argument("--out", required=True, help="output folder (<out>/<method>/<id>.png)")
    add_method_options(p)
    w = p.add_argument_group("whole photos")
    w.add_argument("--whole-photo", action="store_true", help="--input holds whole photos: detect every face, align it "
                   "per method, restore, paste back; faces table in <out>/faces.csv")
    w.add_argument("--upscale", type=int, default=1, help="whole photos: output = photo resized N times (default 1)")
    w.add_argument("--only-center-face", action="store_true", help="whole photos: restore only the face nearest the centre")
    w.add_argument("--min-face-size", type=float, default=0.0, help="whole photos: leave faces whose box is under PX pixels")
    w.add_argument("--face-backend", default="dlib", help="whole photos: face detector (dlib, insightface or auto)")
    w.add_argument("--max-memory-gib", type=float, default=None, metavar="GIB",
                   help="whole photos: memory one photo may use; a photo whose output would need more is refused "
                        "(status too_large) before anything is allocated (default: $CELEBREF_WHOLE_PHOTO_MAX_GIB, "
                        "else half of the available memory)")
    p.set_defaults(func=run)


def whole_photo_batch_size(args: argparse.Namespace) -> None:
    """Whole-photo mode takes a number: ``auto`` becomes the CPU/CUDA default of :func:`batch_plan`."""
    if args.batch_size == "auto":
        from celebref.app.restore import batch_plan
        from celebref.device import resolve_device

        args.batch_size = batch_plan("auto", resolve_device(args.device))[1]


def run(args: argparse.Namespace):
    from celebref.outdir import check_output

    if getattr(args, "whole_photo", False):
        from celebref.app.whole_photo_cli import run_command

        check_output(args.out, "restore", [args.input])

        whole_photo_batch_size(args)
        from celebref.weights import allowing_unverified

        from celebref.device import resolve_device

        with allowing_unverified(True) if args.allow_unverified_weights else contextlib.nullcontext():
            return run_command(args, method_engine(args, resolve_device(args.device)))
    from baselines.registry import create_method
    from celebref.params import split_spec_list
    from celebref.app.outcome import Outcome
    from celebref.app.restore import RestoreRunner, failures, summarize_status, unverified_weights
    from celebref.fsutil import atomic_write_json
    from celebref.lock import lock_folder
    from celebref.provenance import command_line, now, versions
    from celebref.testset import read_test_set
    from celebref.weights import allowing_unverified

    test_set = read_test_set(args.input, list_format=args.list_format)
    records = test_set.records
    common = dict(device=args.device, precision=args.precision, landmark_policy=args.landmark_policy)
    methods = [create_method(s, **common) for s in split_spec_list(args.methods)]
    check_output(args.out, "restore", [args.input])  # before the lock creates the folder; again under it
    allow = allowing_unverified(True) if args.allow_unverified_weights else contextlib.nullcontext()
    with allow, lock_folder(args.out, command=command_line()):
        check_output(args.out, "restore", [args.input])  # again under the lock
        engine = method_engine(args, methods[0].device if methods else args.device)
        runner = RestoreRunner(args.out, batch_size=args.batch_size, landmark_source=args.landmark_source, engine=engine)
        # all weights checked before any work starts: one message lists every missing file
        runs = runner.prepare_all(methods, hint="Get the files above, or leave those methods out of --methods.")
        started = now()
        for r in runs:
            runner.run_method(r, records)
        df = runner.finish()
        atomic_write_json(f"{args.out}/restore.json", {
            "command": command_line(), "started": started, "finished": now(), "versions": versions(),
            "input": str(args.input), "n_inputs": len(records), "test_set": test_set.info,
            "device": str(methods[0].device) if methods else args.device,
            "precision": args.precision, "batch_size": args.batch_size, "landmark_source": args.landmark_source,
            "landmark_policy": args.landmark_policy,
            "methods": [{"label": r.method.label, "name": r.method.name, "params": r.method.params,
                         "weights": r.weights} for r in runs],
            "allow_unverified_weights": bool(args.allow_unverified_weights),
            "unverified_weights": unverified_weights(w for r in runs for w in r.weights),
            "engine": engine.describe(), "stage_seconds": runner.stages.as_dict(),
        })
    print(f"restored {len(records)} input(s) with {len(runs)} method(s) into {args.out}", file=sys.stderr)
    print(summarize_status(df), file=sys.stderr)
    print(f"stages (seconds, summed over threads and workers): {runner.stages.line()}", file=sys.stderr)
    bad = failures(df)
    return Outcome(items=len(df), failed=sum(bad.values()),
                   details=[f"{m}: {n} of {len(records)} image(s) not restored (see {args.out}/status.csv)" for m, n in bad.items()])
