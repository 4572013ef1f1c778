"""CPU time per image of our ASFFNet port against the official csxmli2016/ASFFNet512 code, in the same process.

    python benchmarks/bench_asffnet.py --official /path/to/ASFFNet512          # ratio ours / official
    python benchmarks/bench_asffnet.py                                          # ours only
    python benchmarks/bench_asffnet.py --official ... --repeats 5 --threads 2 --json out.json
    python benchmarks/bench_asffnet.py --landmarks dlib     # our LQ landmarks vs FAN's and their effect (no network)

The official code is never part of this project: pass a checkout (e.g. fetched from GitHub); it is imported
unmodified, with the same environment shims as the golden (``face_alignment`` replaced by a stub returning the
LQ's known landmarks -- FAN would need downloaded weights --, torchvision's ``normalize``, ``np.float`` and
``np.linalg.linalg`` for numpy >= 2).

What is timed, per image, excluding model loading (both sides start from files on disk):

* official: the body of ``main_test.py``'s loop -- ``read_img_tensor`` (LQ, landmarks from the stub),
  ``optimal_reference_selection`` (reads every landmark file), ``read_img_tensor`` (the chosen reference),
  ``generate_lq_point_mask``, the forward under ``no_grad`` (the saving of the result panel is left out);
* ours: decode the LQ and every reference and landmark file (``celebref.imageio`` / ``read_landmarks``, as the
  restore workers do) and ``ASFFNetMethod.restore`` (selection, mask, warp, forward, uint8 conversion), landmarks given.

Input: the golden's first case, rebuilt from ``../shared/fixtures/celebref-mini`` (``--mini``): the LQ is
``hq/00075/0.png`` degraded (INTER_AREA to 128, INTER_CUBIC to 512), its references the 9 other faces.
Weights: the same random state dict in both networks (the speed does not depend on the values). Runs alternate
(official, ours, official, ...) after one warm-up each; times are medians. Both outputs are compared (max |diff|).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baselines.asffnet.method import ASFFNetMethod  # noqa: E402
from baselines.asffnet.network import ASFFNet  # noqa: E402
from baselines.base import ReferenceSet, RestoreItem  # noqa: E402
from celebref.face.landmark_io import read_landmarks  # noqa: E402
from celebref.imageio import read_image  # noqa: E402

IDENTITY, LQ_NAME = "00075", "0.png"


def _shim_environment(landmarks: dict[int, np.ndarray]) -> None:
    """Make the official code importable here without editing it (see the module docstring)."""
    np.float = float  # type: ignore[attr-defined]
    if not hasattr(np.linalg, "linalg"):
        np.linalg.linalg = np.linalg  # type: ignore[attr-defined]
    fa = types.ModuleType("face_alignment")
    fa.LandmarksType = types.SimpleNamespace(_2D="2D")

    class FaceAlignment:
        def __init__(self, *a, **k) -> None:
            pass

        def get_landmarks(self, img: np.ndarray):
            lm = landmarks.get(hash(np.ascontiguousarray(img).tobytes()))
            return None if lm is None else [lm]

    fa.FaceAlignment = FaceAlignment
    tv, tvt, tvf = (types.ModuleType(n) for n in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"))

    def normalize(t, mean, std, inplace=False):
        t = t if inplace else t.clone()
        return t.sub_(torch.as_tensor(mean, dtype=t.dtype).view(-1, 1, 1)).div_(torch.as_tensor(std, dtype=t.dtype).view(-1, 1, 1))

    tvf.normalize = normalize
    tv.transforms, tvt.functional = tvt, tvf
    sys.modules.update({"face_alignment": fa, "torchvision": tv, "torchvision.transforms": tvt,
                        "torchvision.transforms.functional": tvf})


def _layout(mini: Path, root: Path) -> tuple[Path, Path, Path, np.ndarray]:
    """The official TestExamples layout for the golden's first case; returns (lq, ref dir, landmark dir, LQ landmarks)."""
    import shutil

    import cv2

    lq = root / "LQCrop" / f"{IDENTITY}_{LQ_NAME}"
    lq.parent.mkdir(parents=True)
    img = cv2.imread(str(mini / "hq" / IDENTITY / LQ_NAME), cv2.IMREAD_COLOR)
    cv2.imwrite(str(lq), cv2.resize(cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA), (512, 512), interpolation=cv2.INTER_CUBIC))
    refs, lms = root / "HQReferences" / IDENTITY, root / "HQReferences_Landmarks" / IDENTITY
    refs.mkdir(parents=True)
    lms.mkdir(parents=True)
    for p in sorted((mini / "hq" / IDENTITY).glob("*.png")):
        if p.name != LQ_NAME:
            shutil.copy(p, refs / p.name)
            shutil.copy(mini / "landmarks" / IDENTITY / f"{p.name}.txt", lms / f"{p.name}.txt")
    return lq, refs, lms, np.loadtxt(mini / "landmarks" / IDENTITY / f"{LQ_NAME}.txt").astype(np.float32)


def _random_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    sd = {}
    for k, t in net.state_dict().items():
        x = torch.rand(t.shape, generator=g) * 0.05
        sd[k] = x / x.norm() if k.endswith(("_u", "_v")) else x
    return sd


def landmark_study(mini: Path, backend: str) -> dict:
    """How far ``backend``'s 68 points on each degraded celebref-mini face (the golden's LQ recipe) are from the
    fixture's FAN points of the HQ original, and what that does to ASFFNet's geometry: the reference chosen from the
    identity's other faces (same as with FAN's points? else FAN's rank of it), the warp grid (displacement in
    feature pixels over the face box, with FAN's choice) and the landmark mask (IoU)."""
    import cv2

    from baselines.asffnet.selection import select_reference
    from baselines.asffnet.warp import landmark_mask, mls_affine_positions
    from celebref.face import get_backend

    be = get_backend(backend)
    rows = []
    for ident_dir in sorted(p for p in (mini / "hq").iterdir() if p.is_dir()):
        names = sorted(p.name for p in ident_dir.glob("*.png"))
        fan_all = {n: np.loadtxt(mini / "landmarks" / ident_dir.name / f"{n}.txt") for n in names}
        for n in names:
            img = cv2.imread(str(ident_dir / n), cv2.IMREAD_COLOR)
            lq = cv2.resize(cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA), (512, 512), interpolation=cv2.INTER_CUBIC)
            found = be.detect_landmarks68(cv2.cvtColor(lq, cv2.COLOR_BGR2RGB))
            if found is None:
                rows.append(None)
                continue
            fan, others = fan_all[n], [m for m in names if m != n]
            err = np.linalg.norm(found - fan, axis=1)
            i_fan, s_fan = select_reference(fan, [fan_all[m] for m in others])
            i_be, _ = select_reference(found, [fan_all[m] for m in others])
            ref = fan_all[others[i_fan]]
            disp = np.linalg.norm(mls_affine_positions(ref[17:] / 4, fan[17:] / 4, 128)
                                  - mls_affine_positions(ref[17:] / 4, found[17:] / 4, 128), axis=0)
            (x0, y0), (x1, y1) = (fan.min(0) / 4).astype(int), (fan.max(0) / 4).astype(int)
            m1, m2 = landmark_mask(fan) > 0, landmark_mask(found) > 0
            rows.append({"mean_px": err.mean(), "mean_px_17_67": err[17:].mean(), "nme": err.mean() / np.linalg.norm(fan[36] - fan[45]),
                         "rank": int(np.argsort(np.argsort(s_fan))[i_be]) + 1, "disp": disp[y0:y1, x0:x1].mean(),
                         "disp_max": disp[y0:y1, x0:x1].max(), "iou": (m1 & m2).sum() / (m1 | m2).sum()})
    ok = [r for r in rows if r is not None]
    ranks = [r["rank"] for r in ok]
    return {"backend": backend, "images": len(rows), "detected": len(ok),
            "mean_px": float(np.mean([r["mean_px"] for r in ok])), "mean_px_points_17_67": float(np.mean([r["mean_px_17_67"] for r in ok])),
            "nme_mean": float(np.mean([r["nme"] for r in ok])), "nme_worst": float(np.max([r["nme"] for r in ok])),
            "same_reference_as_fan": int(sum(r == 1 for r in ranks)), "fan_rank_of_choice": {str(k): ranks.count(k) for k in sorted(set(ranks))},
            "warp_displacement_feature_px_mean": float(np.mean([r["disp"] for r in ok])),
            "warp_displacement_feature_px_max": float(np.max([r["disp_max"] for r in ok])),
            "mask_iou_mean": float(np.mean([r["iou"] for r in ok]))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", type=Path, help="a checkout of csxmli2016/ASFFNet512 (omit: time ours only)")
    ap.add_argument("--mini", type=Path, default=ROOT.parent / "shared" / "fixtures" / "celebref-mini")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--landmarks", metavar="BACKEND", help="instead: compare BACKEND's LQ landmarks with FAN's (landmark_study)")
    args = ap.parse_args(argv)
    if not (args.mini / "hq" / IDENTITY).is_dir():
        print(f"error: celebref-mini not found at {args.mini} (--mini)", file=sys.stderr)
        return 2
    if args.landmarks:
        study = landmark_study(args.mini, args.landmarks)
        print(json.dumps(study, indent=1))
        if args.json:
            args.json.write_text(json.dumps(study, indent=1) + "\n")
        return 0
    if args.official is not None and not (args.official / "models" / "ASFFNet.py").is_file():
        print(f"error: {args.official} is not an ASFFNet512 checkout (no models/ASFFNet.py)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_asffnet_"))
    lq_path, ref_dir, lm_dir, lq_lm = _layout(args.mini, tmp / "TestExamples")

    ours_net = ASFFNet().eval()
    sd = _random_state(ours_net)
    ours_net.load_state_dict(sd)
    method = ASFFNetMethod.from_network(ours_net)

    def run_ours() -> np.ndarray:
        names = sorted(p.name for p in ref_dir.iterdir())
        refs = ReferenceSet("k", [read_image(ref_dir / n) for n in names], [read_landmarks(lm_dir / f"{n}.txt") for n in names])
        item = RestoreItem("x", read_image(lq_path), landmarks=lq_lm.astype(np.float64), references=refs)
        (res,) = method.restore([item])
        assert res.status == "ok", res.reason
        return res.image

    runners = {"ours": run_ours}
    if args.official is not None:
        import cv2

        rgb = cv2.cvtColor(cv2.imread(str(lq_path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
        _shim_environment({hash(np.ascontiguousarray(rgb).tobytes()): lq_lm})
        sys.path.insert(0, str(args.official.resolve()))
        import main_test as official  # noqa: E402  (the official script's functions; its __main__ block does not run)
        from models.ASFFNet import ASFFNet as OfficialASFFNet  # noqa: E402

        off_net = OfficialASFFNet()
        off_net.load_state_dict(sd, strict=True)
        off_net.eval()

        def run_official() -> np.ndarray:
            lq, lm = official.read_img_tensor(str(lq_path), return_landmark=True)
            ref_lm, ref_path = official.optimal_reference_selection(lm, str(lm_dir))
            ref, _ = official.read_img_tensor(os.path.join(str(ref_dir), os.path.basename(ref_path)[:-4]), return_landmark=False)
            mask = official.generate_lq_point_mask(lm)
            with torch.no_grad():
                out = off_net(lq, ref, mask, torch.from_numpy(lm).unsqueeze(0), torch.from_numpy(ref_lm).unsqueeze(0))
            y = np.clip((out * 0.5 + 0.5).squeeze(0).permute(1, 2, 0).numpy(), 0, 1) * 255.0
            return np.rint(y).astype(np.uint8)

        runners = {"official": run_official, "ours": run_ours}

    times: dict[str, list[float]] = {k: [] for k in runners}
    walls: dict[str, list[float]] = {k: [] for k in runners}
    outputs = {k: f() for k, f in runners.items()}  # warm-up
    for _ in range(args.repeats):
        for k, f in runners.items():
            t0, w0 = time.process_time(), time.perf_counter()
            f()
            times[k].append(time.process_time() - t0)
            walls[k].append(time.perf_counter() - w0)
    result = {"device": "cpu", "threads": args.threads, "repeats": args.repeats, "torch": torch.__version__,
              "cpu_seconds_per_image": {k: statistics.median(v) for k, v in times.items()},
              "wall_seconds_per_image": {k: statistics.median(v) for k, v in walls.items()},
              "all_cpu_seconds": times, "all_wall_seconds": walls}
    if "official" in outputs:
        cpu = result["cpu_seconds_per_image"]
        result["ratio_ours_over_official"] = cpu["ours"] / cpu["official"]
        wall = result["wall_seconds_per_image"]
        result["wall_ratio_ours_over_official"] = wall["ours"] / wall["official"]
        result["output_uint8_max_abs_diff"] = int(np.abs(outputs["ours"].astype(int) - outputs["official"].astype(int)).max())
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
