"""``celebref evaluate``: restore a test set with each method and compute metrics per image, paired by id."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from celebref.app.outcome import EXIT_CODES_HELP

from .restore import add_method_options, method_engine, whole_photo_batch_size


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="restore a test set with methods and compute PSNR/SSIM/LPIPS/FID/identity...",
                       description=__doc__, epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default="", help="comma list (lq is always added as a reference row), e.g. dmdnet,dfdnet "
                                                 "or external:NAME=<folder> (names and parameters: celebref list methods)")
    p.add_argument("--data", help="a celebref degrade output folder or its manifest (LQ + GT + identity + parameters), "
                                  "or a list file / folder of LQ images (no-reference metrics only)")
    p.add_argument("--lq", help="folder of LQ images (with --gt: paired by file stem)")
    p.add_argument("--gt", help="folder of ground-truth images (with --lq)")
    p.add_argument("--metrics", default=None, help="comma list (default: the profile's metrics, e.g. psnr,ssim,lpips,fid,identity; "
                                                          "all: celebref list metrics)")
    p.add_argument("--profile", default=None, help="metric profile pinning every convention (e.g. default, basicsr; "
                                                          "all: celebref list profiles)")
    p.add_argument("--fid-reference", type=Path, default=None,
                   help="stored FID statistics file (mu, sigma, N, extractor, resize) instead of the test set's ground truth")
    p.add_argument("--skip-unavailable", action="store_true",
                   help="skip (and record) methods and metrics whose weight files are missing instead of failing "
                        "(the run then exits with status 3 unless --fail-on says otherwise)")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--no-save-images", dest="save_images", action="store_false",
                   help="metric-only run: score the restored images in memory without writing restored/ PNGs "
                        "(a rerun restores again; metric values are still journalled by content)")
    p.add_argument("--whole-photo", action="store_true", help="--data holds whole photos (e.g. degrade --whole-photo): "
                   "restore --whole-photo, then NIQE per photo paired by photo id (celebref.app.whole_photo)")
    p.add_argument("--identity-refs", default=None, metavar="DIR",
                   help="with --whole-photo: reference face images of the people in the photos; adds the identity "
                        "metric (cosine to the closest reference face, per restored face)")
    add_method_options(p)
    p.set_defaults(func=run)


def _metric_list(text: str | None, profile: str | None) -> list[str]:
    if text:
        return [m.strip() for m in text.split(",") if m.strip()]
    from evaluation.profiles import get_profile

    return list(get_profile(profile).default_metrics)


def run(args: argparse.Namespace):
    if getattr(args, "whole_photo", False):
        from celebref.app.whole_photo import evaluate_command

        whole_photo_batch_size(args)
        return evaluate_command(args)
    from celebref.app.evaluate import EvalConfig, evaluate
    from celebref.app.summary import print_summary
    from celebref.device import resolve_device
    from celebref.testset import load_test_set

    test_set = load_test_set(args.data, args.lq, args.gt, list_format=args.list_format)
    cfg = EvalConfig(
        out=args.out, methods=[args.methods] if args.methods else [],
        metrics=_metric_list(args.metrics, args.profile), profile=args.profile,
        device=args.device, precision=args.precision, batch_size=args.batch_size,
        landmark_policy=args.landmark_policy, landmark_source=args.landmark_source,
        skip_unavailable=args.skip_unavailable, fid_reference=args.fid_reference, argv=sys.argv[1:],
        allow_unverified_weights=args.allow_unverified_weights,
        engine=method_engine(args, resolve_device(args.device)),
        save_images=args.save_images, metrics_explicit=bool(args.metrics),
    )
    result = evaluate(test_set.records, test_set.info, cfg)
    for s in result.skipped:
        print(f"skipped {s['kind']} {s['name']}: {s['reason']}", file=sys.stderr)
    print(f"evaluated {len(test_set.records)} image(s); results in {args.out} ({result.counts.get('decoded', 0)} "
          f"file(s) decoded, {result.counts.get('encoded', 0)} output(s) encoded)", file=sys.stderr)
    print("stages (seconds, summed over threads and workers): "
          + ", ".join(f"{k} {v:.2f} s" for k, v in result.stages.items()), file=sys.stderr)
    print_summary(result.summary, profile=args.profile)
    return result.outcome
