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
    p.add_argument("--lq", help="folder of LQ images (with --gt: paired by file stem; alone: real-world LQ without "
                   "ground truth, scored with no-reference metrics)")
    p.add_argument("--gt", help="folder of ground-truth images (with --lq)")
    p.add_argument("--metrics", default=None, help="comma list (default: the profile's metrics, e.g. psnr,ssim,lpips,fid,identity; "
                                                          "all: celebref list metrics)")
    p.add_argument("--profile", default=None, help="metric profile pinning every convention (e.g. default, basicsr; "
                                                          "all: celebref list profiles)")
    p.add_argument("--fid-reference", type=Path, default=None, metavar="NAME|FILE",
                   help="FID statistics instead of the test set's ground truth: a named reference (ffhq-512: BasicSR's "
                        "inception_FFHQ_512 as GFPGAN/VQFR/NTIRE use it; ffhq-512-clean: pyiqa's clean-fid FFHQ) "
                        "from the weight store, or a file (.npz mu/sigma, BasicSR .pth mean/cov); default: the "
                        "profile's reference, if any")
    p.add_argument("--skip-unavailable", action="store_true",
                   help="skip (and record) methods and metrics whose weight files are missing instead of failing "
                        "(the run then exits with status 3 unless --fail-on says otherwise)")
    p.add_argument("--common-images", action="store_true",
                   help="summary means over the images every method scored (by default each method's mean is over "
                        "its own images, and means over different image sets are flagged, e.g. n=75 ≠ 76)")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--no-save-images", dest="save_images", action="store_false",
                   help="metric-only run: score the restored images in memory without writing restored/ PNGs "
                        "(a rerun restores again; metric values are still journalled by content)")
    p.add_argument("--whole-photo", action="store_true", help="--data holds whole photos (e.g. degrade --whole-photo): "
                   "restore --whole-photo, then score every detected face (id <photo>_face<k>) with no-reference "
                   "metrics (default niqe), as any evaluate run")
    p.add_argument("--identity-refs", default=None, metavar="DIR",
                   help="with --whole-photo: reference face images of the people in the photos; adds the identity-refs "
                        "metric (cosine of each restored face to the closest reference face; also asked as identity)")
    p.add_argument("--face-backend", default="dlib", help="with --whole-photo: face detector and identity embedding "
                   "(dlib, insightface or auto; default dlib)")
    add_method_options(p)
    p.set_defaults(func=run)


def _metric_list(text: str | None, profile: str | None) -> list[str]:
    if text:
        from celebref.params import split_spec_list

        return split_spec_list(text)  # NAME:k=v,k2=v2 stays one metric
    from evaluation.profiles import get_profile

    return list(get_profile(profile).default_metrics)


def _fid_reference(args: argparse.Namespace) -> Path | None:
    """``--fid-reference``, else the profile's named reference (e.g. ntire2025: ffhq-512)."""
    if args.fid_reference is not None:
        return args.fid_reference
    from evaluation.profiles import get_profile

    ref = get_profile(args.profile).fid_reference
    return Path(ref) if ref else None


def run(args: argparse.Namespace):
    from celebref.outdir import check_output

    check_output(args.out, "evaluate", [args.data, args.lq, args.gt])
    if getattr(args, "whole_photo", False):
        from celebref.app.whole_photo_eval import evaluate_command
        from celebref.device import resolve_device

        whole_photo_batch_size(args)
        return evaluate_command(args, method_engine(args, resolve_device(args.device)))
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
        skip_unavailable=args.skip_unavailable, fid_reference=_fid_reference(args), argv=sys.argv[1:],
        allow_unverified_weights=args.allow_unverified_weights, common_images=args.common_images,
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
    protocol_score(args.out, args.profile, result.per_image, result.summary)
    return result.outcome


def protocol_score(out: Path, profile_name: str | None, per_image, summary) -> dict | None:
    """The profile's overall score per method (``Profile.score``, e.g. ntire2025's weighted total from
    :func:`evaluation.ntire2025.score_table`), printed and written to ``<out>/<profile>_score.json``; when the run
    lacks what the score needs, one line says why (the run itself is unaffected)."""
    from celebref.errors import ConfigError
    from celebref.fsutil import atomic_write_json
    from celebref.registry import load_target
    from evaluation.profiles import get_profile

    prof = get_profile(profile_name)
    if not prof.score:
        return None
    fid = {str(r.method): float(r.mean) for r in summary.itertuples() if r.metric == "fid"}
    try:
        scores = load_target(prof.score)(per_image, fid)
    except ConfigError as e:
        print(f"{prof.name} score not computed: {e}", file=sys.stderr)
        return None
    data = {m: r.as_dict() for m, r in scores.items()}
    atomic_write_json(out / f"{prof.name}_score.json", data)
    for m, r in scores.items():
        terms = ", ".join(f"{k} {v:.4f}" for k, v in r.weighted.items() if k != "Total")
        print(f"{prof.name} score {m}: {r.total:.4f} ({terms}; {int(r.overall['low_ID_Sim'])} face(s) below the "
              f"identity threshold)")
        for n in r.notes:
            print(f"  note: {n}")
    return data
