"""``celebref degrade``: synthesize a seeded, replayable LQ test set (see ``docs/FORMATS.md``)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from celebref.app.engine_options import add_engine_options, engine_from_args
from celebref.errors import ConfigError

DEFAULT_REDRAWS = 8
FIXED_FLAGS = {"blur": 0.0, "scale": 1.0, "noise": 0.0, "jpeg": None, "blur_ksize": None, "interp": "cv2_bilinear"}

EPILOG = """\
examples:
  celebref degrade --preset dfdnet --seed 0 --input data/celebref --out lq/dfdnet-s0 --workers 2
  celebref degrade --preset fixed --blur 3 --scale 8 --noise 5 --jpeg 60 --input faces/ --out lq/fixed
  celebref degrade --preset gfpgan --seed 1 --input data/manifest.csv --out lq/sweep --grid scale=4,8,16 --grid noise=0,10
  celebref degrade --pipeline my_recipe.yaml --seed 0 --input faces/ --out lq/custom

Every LQ image is a pure function of (HQ image, preset, seed, image id); rerunning the same command
resumes (finished images are verified by sha256 and skipped) and gives byte-identical files for any
--workers."""


def _lq_size(value: str) -> str | int:
    v = value.strip().lower()
    if v in ("gt", "native"):
        return v
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError("use native, gt or a size in pixels (e.g. 512)") from None
    if n <= 0:
        raise argparse.ArgumentTypeError("size must be > 0")
    return n


def _jpeg(value: str) -> int | None:
    if value.strip().lower() in ("none", "off"):
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("JPEG quality: an integer 0..100 or none") from None


def _redraws(value: str) -> int:
    from degradations.job import MAX_REDRAWS

    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"an integer 0..{MAX_REDRAWS}") from None
    if n < 0 or n > MAX_REDRAWS:
        raise argparse.ArgumentTypeError(f"an integer 0..{MAX_REDRAWS}")
    return n


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("degrade", help="synthesize a seeded low-quality test set (published recipes as presets)",
                              description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default=None, metavar="NAME[:KEY=VALUE,...]",
                   help="a degradation preset, e.g. dfdnet, gfpgan:color_jitter=true, fixed:blur=2,scale=4 "
                        "(default dfdnet unless --pipeline; names and parameters: celebref list presets)")
    p.add_argument("--pipeline", default=None, help="a pipeline file (.yaml/.toml/.json) instead of a preset")
    p.add_argument("--seed", type=int, default=0, help="base seed (>= 0); each image draws from (seed, image id)")
    p.add_argument("--input", required=True, help="folder of images, celebref build output, celebref-mini-like folder, or dataset manifest (.csv/.parquet)")
    p.add_argument("--split", default=None, help="only identities of this split (build output / manifests with a split column)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--workers", type=int, default=None,
                   help="processes (default 1; with --engine ray: actors, default one per CPU of the cluster); "
                        "outputs are identical for any value and either engine")
    p.add_argument("--lq-size", type=_lq_size, default="gt", help="gt (default: back to the input size, e.g. 512), native, or N pixels")
    p.add_argument("--grid", action="append", default=[], metavar="FACTOR=V1,V2", help="sweep: one LQ set per combination (blur, scale, noise, jpeg)")
    g = p.add_argument_group("fixed preset")
    g.add_argument("--blur", type=float, default=0.0, help="Gaussian blur sigma (0: none)")
    g.add_argument("--blur-ksize", type=int, default=None, help="blur kernel size (default 2*ceil(3*sigma)+1)")
    g.add_argument("--scale", type=float, default=1.0, help="downscale factor (1: none)")
    g.add_argument("--noise", type=float, default=0.0, help="Gaussian noise sigma on 0..255 (0: none)")
    g.add_argument("--jpeg", type=_jpeg, default=None, help="JPEG quality (default: none)")
    g.add_argument("--interp", default="cv2_bilinear", help="resize for the fixed preset: cv2_bilinear (default), cv2_bicubic, cv2_area, pil_bicubic, ...")
    o = p.add_argument_group("recipe options (off by default for test sets)")
    o.add_argument("--color-jitter", action="store_true", help="dfdnet: ColorJitter(0.3,0.3,0.3); gfpgan: channel shift with p=0.3")
    o.add_argument("--gray", action="store_true", help="gfpgan: grey LQ with p=0.01")
    p.add_argument("--refs", choices=("link", "copy", "none"), default="link", help="per-LQ reference folders for SpecificLists.txt (default: hard links)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing test set made with another configuration")
    p.add_argument("--redraw-untouched", type=_redraws, nargs="?", const=DEFAULT_REDRAWS, default=0, metavar="MAX",
                   help="draw again (from recorded sub-streams, up to MAX times, default %(const)s) the parameters of an "
                        "image that drew no degradation at all (LQ == GT); recorded per image (manifest column redraws)")
    p.add_argument("--whole-photo", action="store_true", help="the inputs are whole photos: same seeded presets, LQ at the "
                   "photo's size (--lq-size gt or native), no reference folders (degradations.whole_photo)")
    add_engine_options(p)
    p.set_defaults(func=run)


def _recipe(args: argparse.Namespace):
    """``(preset name, Recipe)`` from --pipeline or --preset NAME[:k=v] plus the preset flags."""
    from celebref.params import describe_params, parse_spec
    from degradations.pipeline import load_pipeline
    from degradations.presets import PRESETS, Recipe, make_recipe

    fixed_given = {k: getattr(args, k) for k, d in FIXED_FLAGS.items() if getattr(args, k) != d}
    if args.pipeline:
        if args.preset:
            raise ConfigError("give --preset or --pipeline, not both")
        if fixed_given or args.color_jitter or args.gray:
            raise ConfigError("--blur/--scale/--noise/--jpeg/--interp/--color-jitter/--gray set preset parameters; "
                              "with --pipeline, write them into the pipeline file")
        return f"pipeline:{args.pipeline}", Recipe(load_pipeline(args.pipeline))
    name, raw = parse_spec(args.preset or "dfdnet")
    entry = PRESETS.entry(name)
    fields = {d["name"] for d in describe_params(entry.params_type())}
    options: dict = {}
    if fixed_given:
        if not set(fixed_given) <= fields:
            raise ConfigError("--blur/--scale/--noise/--jpeg/--interp/--blur-ksize belong to --preset fixed (use --grid to force a factor in a random preset)")
        options.update(fixed_given)
    for flag, key in (("color_jitter", "color_jitter"), ("gray", "gray")):
        if getattr(args, flag):
            if key not in fields:
                raise ConfigError(f"--{flag.replace('_', '-')} is not part of the {entry.name} recipe")
            options[key] = True
    both = sorted(set(options) & set(raw))
    if both:
        raise ConfigError(f"preset parameter {', '.join(repr(b) for b in both)} is given both in --preset and as a flag")
    return make_recipe(entry.name, {**raw, **options})


def _warn_untouched(summaries: list[tuple[str, dict]], redraw: int) -> None:
    """One warning on stderr for images that drew no degradation (LQ == GT)."""
    n = sum(s["count"] for _, s in summaries)
    if not n:
        return
    ids = [f"{where}{i}" for where, s in summaries for i in s["ids"]]
    shown = ", ".join(ids[:10]) + (f", ... ({len(ids) - 10} more)" if len(ids) > 10 else "")
    hint = (f"still untouched after {redraw} redraws" if redraw else
            "use --redraw-untouched to draw them again (recorded per image)")
    print(f"warning: {n} LQ image{'s' if n != 1 else ''} drew no degradation (LQ == GT; listed in degrade.json, "
          f"'untouched'): {shown}; {hint}", file=sys.stderr)


def _outcome(frames: list[tuple[str, "pd.DataFrame"]]):
    """Every input that got no LQ image (status ``rejected``: unreadable, missing, duplicate id, degradation or worker
    failure) is a failure: the test set was asked for every input (exit 3, reasons in the summary and manifest)."""
    from celebref.app.outcome import Outcome

    items = failed = 0
    reasons: dict[str, int] = {}
    for where, df in frames:
        bad = df[df["status"] != "ok"]
        items += len(df)
        failed += len(bad)
        for r in bad["reason"]:
            key = f"{where}{str(r).split(':', 1)[0]}"
            reasons[key] = reasons.get(key, 0) + 1
    return Outcome(items=items, failed=failed, details=[f"{k}: {v} input(s)" for k, v in sorted(reasons.items())])


def run(args: argparse.Namespace):
    import pandas as pd

    from celebref.lock import lock_folder
    from celebref.outdir import check_output
    from celebref.testset import read_hq_set
    from degradations.synthesize import Job, parse_grid, synthesize, synthesize_grid, untouched_summary

    if args.seed < 0:
        raise ConfigError("--seed must be >= 0")
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers must be >= 1")
    preset, recipe = _recipe(args)
    job = Job(recipe.pipeline, preset, args.seed, dict(recipe.overrides), args.lq_size, args.redraw_untouched)
    grid = parse_grid(args.grid) if args.grid else None
    inputs = read_hq_set(args.input, split=args.split)
    options = {k: v for k, v in sorted(vars(args).items()) if k not in ("func", "command")}
    command = "celebref degrade " + " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in options.items()
                                             if v is not None and v is not False and k != "grid"
                                             and not (k == "redraw_untouched" and not v))
    command += "".join(f" --grid {shlex.quote(g)}" for g in args.grid)
    engine = engine_from_args(args, workers=args.workers)
    kwargs = dict(workers=args.workers or 1, overwrite=args.overwrite, refs=args.refs, command=command, engine=engine)
    if getattr(args, "whole_photo", False):
        from degradations.whole_photo import whole_photo_options

        kwargs = whole_photo_options(job, kwargs)
    check_output(args.out, "degrade", [args.input, inputs.root])  # before the lock creates the folder
    with lock_folder(args.out, command=command), engine:
        if grid is not None:
            table = synthesize_grid(inputs, args.out, job, grid, **kwargs)
            frames = [(f"{cell}/", pd.read_parquet(Path(args.out) / cell / "manifest.parquet")) for cell in table["cell"]]
            summaries = [(where, untouched_summary(df)) for where, df in frames]
            print(f"wrote {len(table)} LQ sets under {args.out} ({int(table['n_ok'].sum())} images)")
            _warn_untouched(summaries, args.redraw_untouched)
            return _outcome(frames)
        df = synthesize(inputs, args.out, job, **kwargs)
    n_ok = int((df["status"] == "ok").sum())
    n_bad = len(df) - n_ok
    print(f"wrote {n_ok} LQ images to {args.out}" + (f"; {n_bad} inputs rejected (see manifest.csv, column reason)" if n_bad else ""))
    _warn_untouched([("", untouched_summary(df))], args.redraw_untouched)
    return _outcome([("", df)])
