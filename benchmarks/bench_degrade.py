"""Speed of LQ synthesis: images/s for a preset at 512x512 with the parallel synthesizer, against a plain
single-process loop over the same operations (read, sample, degrade, encode PNG, write) in the same run.

    python benchmarks/bench_degrade.py --preset dfdnet --n 200 --workers 2

Inputs are synthetic 512x512 textures written to a temporary folder (or ``--input`` a folder of faces).
Prints one JSON object with the figures and the load average before and after (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from celebref.fsutil import atomic_write_bytes, sha256_bytes  # noqa: E402
from celebref.imageio import encode_image, read_image, write_image  # noqa: E402
from celebref.testset import read_hq_set  # noqa: E402
from degradations.presets import get_preset  # noqa: E402
from degradations.synthesize import Job, synthesize  # noqa: E402


def make_inputs(folder: Path, n: int, size: int = 512, identities: int = 0) -> None:
    """``n`` synthetic textures (seeded); with ``identities`` > 0 spread over that many ``id<k>/`` folders."""
    rng = np.random.default_rng(0)
    for i in range(n):
        small = rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8)
        img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
        img = np.clip(img.astype(np.int16) + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)
        write_image(folder / (f"id{i % identities:03d}" if identities else "") / f"{i:05d}.png", img)


def plain_loop(paths: list[Path], job: Job, out: Path) -> None:
    for p in paths:
        img = read_image(p)
        lq, _ = job.pipeline.run(img, job.seed, p.stem, job.overrides)
        data = encode_image(lq, ".png", png_fast=True)
        sha256_bytes(data)
        atomic_write_bytes(out / f"{p.stem}.png", data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="dfdnet")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--input", default=None, help="a folder of images instead of synthetic ones")
    ap.add_argument("--repeat", type=int, default=1, help="alternate baseline/parallel this many times, report the best of each")
    args = ap.parse_args(argv)
    os.environ.setdefault("CELEBREF_PROGRESS", "0")
    pipe, overrides = get_preset(args.preset)
    job = Job(pipe, args.preset, 0, overrides)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = Path(args.input) if args.input else tmp / "hq"
        if not args.input:
            make_inputs(src, args.n)
        inputs = read_hq_set(src)
        inputs.items = inputs.items[: args.n]
        paths = [Path(i.gt_path) for i in inputs.items]
        best_plain, best_par = float("inf"), float("inf")
        cpu_plain, cpu_par = float("inf"), float("inf")
        for r in range(args.repeat):
            (tmp / f"plain{r}").mkdir()
            t, c = time.perf_counter(), time.process_time()
            plain_loop(paths, job, tmp / f"plain{r}")
            best_plain = min(best_plain, time.perf_counter() - t)
            cpu_plain = min(cpu_plain, time.process_time() - c)
            t = time.perf_counter()
            synthesize(inputs, tmp / f"par{r}", job, workers=args.workers, refs="none")
            best_par = min(best_par, time.perf_counter() - t)
            # the synthesizer's own CPU cost per image, measured in-process (workers=1)
            c = time.process_time()
            synthesize(inputs, tmp / f"one{r}", job, workers=1, refs="none")
            cpu_par = min(cpu_par, time.process_time() - c)
    n = len(paths)
    result = {
        "preset": args.preset, "n_images": n, "size": "512x512" if not args.input else "input", "workers": args.workers, "cpu_count": os.cpu_count(),
        "plain_loop_images_per_s": round(n / best_plain, 2), "parallel_images_per_s": round(n / best_par, 2),
        "speedup": round(best_plain / best_par, 3),
        # CPU time per image (a figure the machine's load barely changes): the plain loop, and the synthesizer
        # run in-process (workers=1, one OpenCV thread); on an idle machine `workers` processes give at most
        # workers / cpu_per_image images/s
        "plain_cpu_ms_per_image": round(1000 * cpu_plain / n, 2), "synthesizer_cpu_ms_per_image": round(1000 * cpu_par / n, 2),
        "parallel_idle_estimate_images_per_s": round(args.workers * n / cpu_par, 1), "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()], "opencv_threads_default": cv2.getNumThreads(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
