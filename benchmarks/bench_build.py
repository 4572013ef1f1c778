"""Speed of ``celebref build`` (run on demand, never in CI).

1. Whole pipeline with the dlib backend on a synthetic dirty crawl made from celebref-mini
   (:func:`celebref.dataset.synthetic.make_crawl`): images/s per core, cold cache, for ``--workers`` 1 (and N).
2. Near-duplicate search on synthetic unit vectors (128-d) from 1k to 100k embeddings:
   per-identity exact search (the build's way: groups of ~10 faces), one flat exact blockwise search (no dense
   N x N matrix kept), LSH over the flat set, and the dense N x N matrix as the baseline where it fits.

    python benchmarks/bench_build.py [--mini ../shared/fixtures/celebref-mini] [--workers 2] [--max-n 100000]
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
    args = ap.parse_args()
    os.environ.setdefault("CELEBREF_PROGRESS", "0")
    print(f"cores available: {os.cpu_count()}; load average: {os.getloadavg()}")
    if not args.skip_pipeline:
        bench_pipeline(args.mini, args.workers, args.per_identity)
    bench_neardup(args.sizes)


if __name__ == "__main__":
    main()
