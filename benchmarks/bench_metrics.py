"""Speed of every metric (images/s) at batch 1 and 16, on the CPU (and CUDA when available), side by side
with the reference implementations that run here: a faithful numpy/OpenCV re-implementation of BasicSR's
``calculate_psnr`` / ``calculate_ssim`` (written below from its documented algorithm) and scikit-image's
``structural_similarity`` with the flags that reproduce it.

Run:  python benchmarks/bench_metrics.py [--repeats 3] [--batches 1,16] [--metrics psnr,ssim,...] [--json out.json]

Inputs are the 512x512 golden pairs of ../shared/golden/metrics when present (else seeded random
512x512 images). Models whose weights are not installed run with random weights of the same architecture
(speed does not depend on the values). Timings: median of ``--repeats`` runs after one warm-up, wall clock,
``torch.set_num_threads(--threads)``. The load average before and after is printed: the machine may be
shared, so compare figures only within one run (ratios), never across runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from celebref.imageio import read_image  # noqa: E402
from evaluation.profiles import get_profile  # noqa: E402
from evaluation.registry import create_metric  # noqa: E402


# --- reference implementations (numpy, per image, uint8 HWC BGR like cv2.imread) ----------------------

def basicsr_psnr(img: np.ndarray, img2: np.ndarray) -> float:
    """BasicSR calculate_psnr(crop_border=0, test_y_channel=False): float64 MSE over all values."""
    mse = np.mean((img.astype(np.float64) - img2.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 * 255.0 / mse))


def basicsr_ssim(img: np.ndarray, img2: np.ndarray) -> float:
    """BasicSR calculate_ssim(crop_border=0, test_y_channel=False): per channel, float64, 2-D 11x11 Gaussian
    (cv2.getGaussianKernel(11, 1.5) outer itself) with cv2.filter2D, 'valid' crop [5:-5, 5:-5], mean of channels."""
    import cv2

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(k, k.transpose())
    img, img2 = img.astype(np.float64), img2.astype(np.float64)
    vals = []
    for i in range(img.shape[2]):
        x, y = img[..., i], img2[..., i]
        mu1 = cv2.filter2D(x, -1, window)[5:-5, 5:-5]
        mu2 = cv2.filter2D(y, -1, window)[5:-5, 5:-5]
        mu1_sq, mu2_sq, mu1_mu2 = mu1 ** 2, mu2 ** 2, mu1 * mu2
        s1 = cv2.filter2D(x ** 2, -1, window)[5:-5, 5:-5] - mu1_sq
        s2 = cv2.filter2D(y ** 2, -1, window)[5:-5, 5:-5] - mu2_sq
        s12 = cv2.filter2D(x * y, -1, window)[5:-5, 5:-5] - mu1_mu2
        m = ((2 * mu1_mu2 + c1) * (2 * s12 + c2)) / ((mu1_sq + mu2_sq + c1) * (s1 + s2 + c2))
        vals.append(m.mean())
    return float(np.array(vals).mean())


def skimage_ssim(img: np.ndarray, img2: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(img, img2, channel_axis=2, data_range=255, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))


# --- inputs ----------------------------------------------------------------------------------------

def load_pairs(n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    golden = Path(os.environ.get("CELEBREF_GOLDEN_DIR", ROOT.parent / "shared" / "golden")) / "metrics" / "images"
    if golden.is_dir():
        gts = sorted(golden.glob("gt_*.png"))
        dists = sorted(golden.glob("dist_*.png"))
        p = [read_image(x) for x in dists]
        t = [read_image(x) for x in gts]
        src = f"golden pairs ({golden})"
    else:
        rng = np.random.default_rng(0)
        base = rng.integers(0, 256, (8, 64, 64, 3)).astype(np.uint8)
        import cv2

        t = [cv2.resize(b, (512, 512), interpolation=cv2.INTER_CUBIC) for b in base]
        p = [np.clip(x.astype(int) + rng.integers(-10, 11, x.shape), 0, 255).astype(np.uint8) for x in t]
        src = "seeded random smooth images"
    idx = [i % len(p) for i in range(n)]
    to = lambda xs: torch.from_numpy(np.stack([xs[i] for i in idx])).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return to(p), to(t), src


# --- metrics with weights: real ones when installed, else random weights of the same architecture ---

def make_metric(name: str, device: str):
    m = create_metric(name, device=device, **({"cache": False} if name == "fid" else {}))  # time the network
    try:
        m.load()
        return m, "installed weights"
    except Exception as e:  # noqa: BLE001 - fall back to random weights for timing
        reason = type(e).__name__
    if name in ("lpips", "lpips-vgg"):
        from evaluation.lpips import LPIPSNet

        net = LPIPSNet(m.net)
        for p in net.lins:
            p.data.uniform_(0, 0.1)
        m.set_model(net)
    elif name == "fid":
        from evaluation.inception import FIDInception

        m.set_model(FIDInception(), extractor_id="random")
    elif name == "niqe":
        golden = Path(os.environ.get("CELEBREF_GOLDEN_DIR", ROOT.parent / "shared" / "golden")) / "metrics" / "niqe" / "niqe_pris_params.npz"
        if not golden.is_file():
            return None, f"no NIQE parameters ({reason})"
        m = create_metric(name, device=device, params=str(golden))
        m.load()
        return m, "parameters from the golden folder"
    else:
        return None, f"unavailable ({reason})"
    return m, f"random weights ({reason})"


def timeit(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--metrics", default="psnr,ssim,lpips,lpips-vgg,fid,niqe,identity,lmd")
    ap.add_argument("--devices", default="cpu" + (",cuda" if torch.cuda.is_available() else ""))
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    pred, target, src = load_pairs(max(batches))
    load_before = os.getloadavg()
    print(f"inputs: {src}, 512x512; torch {torch.__version__}, threads {args.threads}; "
          f"load average before: {load_before[0]:.2f}", flush=True)
    rows = []

    def record(impl, metric, device, batch, seconds, note=""):
        ips = batch / seconds
        rows.append({"impl": impl, "metric": metric, "device": device, "batch": batch, "seconds": seconds,
                     "images_per_s": ips, "note": note})
        print(f"  {impl:<10} {metric:<12} {device:<5} batch {batch:>2}: {seconds:8.4f} s  {ips:8.2f} img/s  {note}", flush=True)

    # references (per image, numpy), on the same pairs converted to BGR HWC as cv2.imread gives
    refs_p = [pred[i].permute(1, 2, 0).numpy()[:, :, ::-1].copy() for i in range(min(batches[-1], 16))]
    refs_t = [target[i].permute(1, 2, 0).numpy()[:, :, ::-1].copy() for i in range(min(batches[-1], 16))]
    wanted = args.metrics.split(",")
    for b in batches:
        ref_sets = [("basicsr", "psnr", basicsr_psnr), ("basicsr", "ssim", basicsr_ssim), ("skimage", "ssim", skimage_ssim)]
        for impl, metric, fn in ref_sets:
            if metric not in wanted:
                continue
            s = timeit(lambda: [fn(refs_p[i], refs_t[i]) for i in range(b)], args.repeats)
            record(impl, metric, "cpu", b, s)
    for device in args.devices.split(","):
        for name in wanted:
            m, note = make_metric(name, device)
            if m is None:
                print(f"  celebref   {name:<12} {device:<5} skipped: {note}")
                continue
            for b in batches:
                p, t = pred[:b].to(device), target[:b].to(device)
                cache = getattr(m, "_gt_cache", None)

                def fn():
                    if cache is not None:
                        cache.clear()  # time the ground truth's face analysis too
                    if m.dataset_level:
                        return m.features(p)
                    return m.compute(p, t) if m.needs_reference else m.compute(p)

                record("celebref", name, device, b, timeit(fn, args.repeats),
                       note if m.weights else (m.describe().get("face", {}).get("backend", "") if cache is not None else ""))
    load_after = os.getloadavg()
    # PSNR+SSIM per-image throughput vs BasicSR numpy
    def sec(impl, metric, b, device="cpu"):
        r = [x for x in rows if x["impl"] == impl and x["metric"] == metric and x["batch"] == b and x["device"] == device]
        return r[0]["seconds"] / b if r else math.nan

    print(f"load average after: {load_after[0]:.2f} (shared machine: compare ratios within this run only)")
    summary = {}
    for b in batches:
        ref = sec("basicsr", "psnr", b) + sec("basicsr", "ssim", b)
        ours = sec("celebref", "psnr", b) + sec("celebref", "ssim", b)
        summary[f"psnr+ssim speedup vs basicsr, batch {b}"] = ref / ours
        summary[f"ssim speedup vs skimage, batch {b}"] = sec("skimage", "ssim", b) / sec("celebref", "ssim", b)
    for k, v in summary.items():
        print(f"  {k}: {v:.2f}x")
    print("profile:", json.dumps(get_profile("default").describe()))
    if args.json:
        from celebref.fsutil import atomic_write_json

        atomic_write_json(args.json, {"rows": rows, "summary": summary, "load_before": load_before,
                                      "load_after": load_after, "inputs": src, "threads": args.threads})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
