"""``celebref degrade``: synthesize a seeded, replayable LQ test set (see ``docs/FORMATS.md``)."""

from __future__ import annotations

import argparse
import shlex

from celebref.errors import ConfigError

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


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("degrade", help="synthesize a seeded low-quality test set (published recipes as presets)",
                              description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default=None, help="dfdnet | gfpgan | codeformer | fixed (default dfdnet unless --pipeline)")
    p.add_argument("--pipeline", default=None, help="a pipeline file (.yaml/.toml/.json) instead of a preset")
    p.add_argument("--seed", type=int, default=0, help="base seed (>= 0); each image draws from (seed, image id)")
    p.add_argument("--input", required=True, help="folder of images, celebref build output, celebref-mini-like folder, or dataset manifest (.csv/.parquet)")
    p.add_argument("--split", default=None, help="only identities of this split (build output / manifests with a split column)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1); outputs are identical for any value")
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from degradations.inputs import collect_inputs
    from degradations.pipeline import load_pipeline
    from degradations.presets import get_preset
    from degradations.synthesize import Job, parse_grid, synthesize, synthesize_grid

    if args.seed < 0:
        raise ConfigError("--seed must be >= 0")
    if args.workers < 1:
        raise ConfigError("--workers must be >= 1")
    fixed_given = any(getattr(args, k) != d for k, d in (("blur", 0.0), ("scale", 1.0), ("noise", 0.0), ("jpeg", None), ("blur_ksize", None)))
    if args.pipeline:
        if args.preset:
            raise ConfigError("give --preset or --pipeline, not both")
        pipeline, overrides, preset = load_pipeline(args.pipeline), {}, f"pipeline:{args.pipeline}"
    else:
        preset = args.preset or "dfdnet"
        if preset == "fixed":
            pipeline, overrides = get_preset("fixed", blur=args.blur, scale=args.scale, noise=args.noise, jpeg=args.jpeg,
                                             interp=args.interp, blur_ksize=args.blur_ksize)
        else:
            if fixed_given:
                raise ConfigError("--blur/--scale/--noise/--jpeg belong to --preset fixed (use --grid to force a factor in a random preset)")
            opts = {}
            if args.color_jitter:
                if preset not in ("dfdnet", "gfpgan"):
                    raise ConfigError(f"--color-jitter is not part of the {preset} recipe")
                opts["color_jitter"] = True
            if args.gray:
                if preset != "gfpgan":
                    raise ConfigError(f"--gray is not part of the {preset} recipe")
                opts["gray"] = True
            pipeline, overrides = get_preset(preset, **opts)
    job = Job(pipeline, preset, args.seed, overrides, args.lq_size)
    inputs = collect_inputs(args.input, split=args.split)
    options = {k: v for k, v in sorted(vars(args).items()) if k not in ("func", "command")}
    command = "celebref degrade " + " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in options.items()
                                             if v is not None and v is not False and k != "grid")
    command += "".join(f" --grid {shlex.quote(g)}" for g in args.grid)
    kwargs = dict(workers=args.workers, overwrite=args.overwrite, refs=args.refs, command=command)
    if args.grid:
        table = synthesize_grid(inputs, args.out, job, parse_grid(args.grid), **kwargs)
        print(f"wrote {len(table)} LQ sets under {args.out} ({int(table['n_ok'].sum())} images)")
        return 0
    df = synthesize(inputs, args.out, job, **kwargs)
    n_ok = int((df["status"] == "ok").sum())
    n_bad = len(df) - n_ok
    print(f"wrote {n_ok} LQ images to {args.out}" + (f"; {n_bad} inputs rejected (see manifest.csv, column reason)" if n_bad else ""))
    return 0
