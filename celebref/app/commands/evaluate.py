"""``celebref evaluate``: restore a test set with each method and compute metrics per image, paired by id."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .restore import add_method_options

def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="restore a test set with methods and compute PSNR/SSIM/LPIPS/FID/identity...",
                       description=__doc__)
    p.add_argument("--methods", default="", help="comma list (lq is always added as a reference row), e.g. dmdnet,dfdnet "
                                                 "or external:NAME=<folder>")
    p.add_argument("--data", help="a celebref degrade output folder or its manifest (LQ + GT + identity + parameters)")
    p.add_argument("--lq", help="folder of LQ images (with --gt: paired by file stem)")
    p.add_argument("--gt", help="folder of ground-truth images (with --lq)")
    p.add_argument("--metrics", default=None, help="comma list (default: the profile's metrics, e.g. psnr,ssim,lpips,fid,identity)")
    p.add_argument("--profile", default=None, help="metric profile pinning every convention (e.g. default, basicsr)")
    p.add_argument("--fid-reference", type=Path, default=None,
                   help="stored FID statistics file (mu, sigma, N, extractor, resize) instead of the test set's ground truth")
    p.add_argument("--skip-unavailable", action="store_true",
                   help="skip (and record) methods and metrics whose weight files are missing instead of failing")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    add_method_options(p)
    p.set_defaults(func=run)


def _metric_list(text: str | None, profile: str | None) -> list[str]:
    if text:
        return [m.strip() for m in text.split(",") if m.strip()]
    from evaluation.profiles import get_profile

    return list(get_profile(profile).default_metrics)


def run(args: argparse.Namespace) -> int:
    from celebref.app.evaluate import EvalConfig, evaluate, load_test_set, print_summary

    records, info = load_test_set(args.data, args.lq, args.gt)
    cfg = EvalConfig(
        out=args.out, methods=[args.methods] if args.methods else [],
        metrics=_metric_list(args.metrics, args.profile), profile=args.profile,
        device=args.device, precision=args.precision, batch_size=args.batch_size,
        landmark_policy=args.on_landmark_failure, landmark_source=args.landmarks,
        skip_unavailable=args.skip_unavailable, fid_reference=args.fid_reference, argv=sys.argv[1:],
    )
    summary = evaluate(records, info, cfg)
    for s in cfg.skipped:
        print(f"skipped {s['kind']} {s['name']}: {s['reason']}", file=sys.stderr)
    print(f"evaluated {len(records)} image(s); results in {args.out}", file=sys.stderr)
    print_summary(summary, profile=args.profile)
    return 0
