"""Speed of ``celebref build`` (run on demand, never in CI).

0. ``--stages``: seconds per analysis stage (decode, detect, landmarks, align, aligned landmarks, embed, quality)
   with the dlib backend on full-resolution web-like photos (``--photo-size``, default 2000x1500: celebref-mini
   faces upscaled to a 500-900 px face and placed on upscaled scikit-image sample photos, saved as JPEG q92), one
   process, detection at full size (``detect_max_side=0``, the old way) and on a downscaled copy (the default);
   images/s per core, and whether both give the same faces (count, and largest landmark difference).
1. Whole pipeline with the dlib backend on a synthetic dirty crawl made from celebref-mini
   (:func:`celebref.dataset.synthetic.make_crawl`): images/s per core, cold cache, for ``--workers`` 1 (and N).
2. Near-duplicate search on synthetic unit vectors (128-d) from 1k to 100k embeddings:
   per-identity exact search (the build's way: groups of ~10 faces), one flat exact blockwise search (no dense
   N x N matrix kept), LSH over the flat set, and the dense N x N matrix as the baseline where it fits.

    python benchmarks/bench_build.py [--mini ../shared/fixtures/celebref-mini] [--workers 2] [--max-n 100000]
    python benchmarks/bench_build.py --stages --n-photos 12 --skip-pipeline --sizes
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def bench_pipeline(mini: Path, workers: list[int], per_identity: int) -> None:
    from celebref.dataset import BuildConfig, build_dataset
    from celebref.dataset.synthetic import make_crawl

    tmp = Path(tempfile.mkdtemp(prefix="bench_build_"))
    try:
        exp = make_crawl(mini / "hq", tmp / "crawl", per_identity=per_identity)
        n = len(exp)
        base = None
        for w in workers:
            out = tmp / f"out{w}"
            t = time.perf_counter()
            meta = build_dataset(BuildConfig(crawl=tmp / "crawl", out=out, backend="dlib", workers=w), log=lambda s: None)
            dt = time.perf_counter() - t
            t2 = time.perf_counter()
            build_dataset(BuildConfig(crawl=tmp / "crawl", out=out, backend="dlib", workers=w, min_face_size=300), log=lambda s: None)
            dt2 = time.perf_counter() - t2
            rate = n / dt
            base = base or rate
            print(f"pipeline workers={w}: {n} files ({meta['accepted']} accepted) in {dt:.1f} s = {rate:.2f} img/s = "
                  f"{rate / w:.2f} img/s/core (x{rate / base:.2f} vs workers={workers[0]}); "
                  f"re-decide with a new threshold from the cache: {dt2:.1f} s (x{dt / dt2:.1f} faster)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def make_photos(mini: Path, folder: Path, n: int, size: tuple[int, int] = (2000, 1500)) -> list[Path]:
    """``n`` JPEG photos of ``size`` (w, h): a celebref-mini face (its aligned 512 crop, upscaled to 500-900 px, as
    a face in a web photo is) on an upscaled scikit-image sample photo."""
    import cv2
    from skimage import data as skdata

    from celebref.imageio import encode_image, list_images, read_image

    rng = np.random.default_rng(0)
    faces = list_images(mini / "hq")
    backs = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket(), skdata.hubble_deep_field()]
    w, h = size
    out = []
    for i in range(n):
        bg = cv2.resize(np.ascontiguousarray(backs[i % len(backs)][..., :3]), (w, h), interpolation=cv2.INTER_CUBIC)
        face = read_image(faces[(7 * i) % len(faces)])
        side = int(rng.integers(500, 901))
        face = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
        x, y = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
        bg[y:y + side, x:x + side] = face
        p = folder / f"photo_{i:03d}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(encode_image(bg, ".jpg", jpeg_quality=92))
        out.append(p)
    return out


def bench_stages(mini: Path, n: int, size: tuple[int, int]) -> dict:
    """Per-stage seconds per photo, detection at full size vs on a downscaled copy (one process, one thread)."""
    import json

    import cv2

    from celebref.dataset.stages import STAGES, AnalysisSettings, analyze_file
    from celebref.face import get_backend

    cv2.setNumThreads(1)
    be = get_backend("dlib")
    tmp = Path(tempfile.mkdtemp(prefix="bench_stages_"))
    res: dict = {"photos": n, "size": list(size), "loadavg_before": os.getloadavg()}
    try:
        photos = make_photos(mini, tmp, n, size)
        analyze_file(photos[0], be, AnalysisSettings())  # load the models
        recs = {}
        for label, max_side in (("full_size_detection", 0), ("downscaled_detection", AnalysisSettings().detect_max_side)):
            st = AnalysisSettings(detect_max_side=max_side)
            t: dict = {}
            t0 = time.perf_counter()
            recs[label] = [analyze_file(p, be, st, timings=t) for p in photos]
            total = time.perf_counter() - t0
            res[label] = {"s_per_image": {k: round(t.get(k, 0.0) / n, 4) for k in STAGES},
                          "total_s_per_image": round(total / n, 4), "images_per_s_per_core": round(n / total, 2)}
        a, b = recs["full_size_detection"], recs["downscaled_detection"]
        res["same_face_counts"] = [len(x["faces"]) for x in a] == [len(x["faces"]) for x in b]
        diffs = [float(np.abs(np.subtract(fa["landmarks_source"], fb["landmarks_source"])).max())
                 for x, y in zip(a, b) for fa, fb in zip(x["faces"], y["faces"]) if fa.get("significant") and fb.get("significant")]
        res["max_landmark_diff_px"] = round(max(diffs), 2) if diffs else None
        res["median_landmark_diff_px"] = round(float(np.median(diffs)), 2) if diffs else None
        emb = [float(np.linalg.norm(np.subtract(fa["embedding"], fb["embedding"])))
               for x, y in zip(a, b) for fa, fb in zip(x["faces"], y["faces"]) if fa.get("significant") and fb.get("significant")]
        res["max_embedding_distance"] = round(max(emb), 4) if emb else None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["loadavg_after"] = os.getloadavg()
    print(json.dumps(res, indent=2), flush=True)
    return res


def bench_neardup(sizes: list[int], dim: int = 128, per_identity: int = 10, flat_exact_max: int = 50000) -> None:
    from celebref.dataset.neighbors import lsh_radius_pairs, radius_pairs

    rng = np.random.default_rng(0)
    for n in sizes:
        x = rng.standard_normal((n, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        k = n // 100  # 1% planted near duplicates
        x[n - k :] = x[:k] + 0.01 * rng.standard_normal((k, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        r = 0.2
        groups = np.arange(n) // per_identity
        t = time.perf_counter()
        found = 0
        for s in range(0, n, per_identity):
            found += len(radius_pairs(x[s : s + per_identity], r))
        t_group = time.perf_counter() - t
        line = f"N={n:>6}: per-identity exact ({per_identity}/identity) {t_group * 1e3:8.1f} ms"
        t_exact = None
        if n <= flat_exact_max:
            t = time.perf_counter()
            exact = radius_pairs(x, r)
            t_exact = time.perf_counter() - t
            line += f" | flat exact blockwise {t_exact:7.2f} s ({len(exact)} pairs)"
        t = time.perf_counter()
        lsh = lsh_radius_pairs(x, r)
        t_lsh = time.perf_counter() - t
        rec = len(lsh) / max(len(exact), 1) if t_exact is not None else float("nan")
        line += f" | flat LSH {t_lsh:6.2f} s ({len(lsh)} pairs, recall {rec:.3f})"
        if n <= 10000:
            t = time.perf_counter()
            d = np.sqrt(np.clip(2 - 2 * (x @ x.T), 0, 4))
            _ = np.argwhere(np.triu(d < r, 1))
            t_dense = time.perf_counter() - t
            line += f" | dense NxN baseline {t_dense:6.2f} s ({d.nbytes / 2**20:.0f} MiB)"
        if t_exact is not None:
            line += f" | exact/LSH x{t_exact / t_lsh:.1f}"
        print(line, flush=True)
        del groups


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mini", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "celebref-mini")
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--per-identity", type=int, default=4)
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 30000, 100000])
    ap.add_argument("--skip-pipeline", action="store_true")
    ap.add_argument("--stages", action="store_true", help="per-stage seconds on full-resolution photos")
    ap.add_argument("--n-photos", type=int, default=12)
    ap.add_argument("--photo-size", type=int, nargs=2, default=[2000, 1500], metavar=("W", "H"))
    args = ap.parse_args()
    os.environ.setdefault("CELEBREF_PROGRESS", "0")
    print(f"cores available: {os.cpu_count()}; load average: {os.getloadavg()}")
    if args.stages:
        bench_stages(args.mini, args.n_photos, tuple(args.photo_size))
    if not args.skip_pipeline:
        bench_pipeline(args.mini, args.workers, args.per_identity)
    bench_neardup(args.sizes)


if __name__ == "__main__":
    main()
