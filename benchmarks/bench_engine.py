"""Local engine vs Ray engine on this machine: wall time of ``celebref degrade`` (and optionally ``build``) for N
images, each command run end to end as a user runs it (a fresh process; Ray's start-up included and also reported
separately), outputs compared byte for byte.

    python benchmarks/bench_engine.py --n 1000 --workers 2 [--build-mini ../shared/fixtures/celebref-mini]

Prints one JSON object: seconds per engine, Ray's overhead in % of the local time (target <= 20% at N = 1,000
for degrade), whether the outputs are identical, and the load average before and after (the machine may be shared).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_degrade import make_inputs  # noqa: E402  (same folder)


def tree_digest(root: Path, pattern: str = "*.png") -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob(pattern)):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def run(cmd: list[str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "CELEBREF_PROGRESS": "0"})
    dt = time.perf_counter() - t
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return dt


def ray_startup_seconds(workers: int) -> float:
    code = ("import time,ray;t=time.perf_counter();ray.init(num_cpus=%d,include_dashboard=False,log_to_driver=False,"
            "logging_level='ERROR');print(time.perf_counter()-t);ray.shutdown()" % workers)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--preset", default="dfdnet")
    ap.add_argument("--build-mini", type=Path, default=None, help="also time build on a crawl made from this folder")
    args = ap.parse_args(argv)
    exe = [sys.executable, "-m", "celebref"]
    load0 = os.getloadavg()
    res: dict = {"n": args.n, "workers": args.workers, "preset": args.preset}
    with tempfile.TemporaryDirectory(prefix="bench_engine_") as tmp:
        tmp_p = Path(tmp)
        make_inputs(tmp_p / "hq", args.n, identities=50)
        digests = {}
        for engine in ("local", "ray"):
            out = tmp_p / f"lq_{engine}"
            res[f"degrade_{engine}_s"] = run(exe + ["degrade", "--preset", args.preset, "--seed", "0", "--input",
                                                    str(tmp_p / "hq"), "--out", str(out), "--workers",
                                                    str(args.workers), "--engine", engine])
            digests[engine] = tree_digest(out) + tree_digest(out, "*.csv") + tree_digest(out, "*Lists.txt")
        res["degrade_identical"] = digests["local"] == digests["ray"]
        res["degrade_ray_overhead_pct"] = 100.0 * (res["degrade_ray_s"] / res["degrade_local_s"] - 1.0)
        res["ray_startup_s"] = ray_startup_seconds(args.workers)
        res["degrade_ray_overhead_pct_without_startup"] = 100.0 * (
            (res["degrade_ray_s"] - res["ray_startup_s"]) / res["degrade_local_s"] - 1.0)
        if args.build_mini:
            from celebref.dataset.synthetic import make_crawl

            n_files = len(make_crawl(args.build_mini / "hq", tmp_p / "crawl", per_identity=4))
            res["build_files"] = n_files
            for engine in ("local", "ray"):
                out = tmp_p / f"ds_{engine}"
                res[f"build_{engine}_s"] = run(exe + ["build", str(tmp_p / "crawl"), "--out", str(out), "--backend",
                                                      "dlib", "--workers", str(args.workers), "--engine", engine])
                digests[f"build_{engine}"] = (tree_digest(out / "images") if (out / "images").exists() else "") \
                    + tree_digest(out, "manifest.csv")
            res["build_identical"] = digests["build_local"] == digests["build_ray"]
            res["build_ray_overhead_pct"] = 100.0 * (res["build_ray_s"] / res["build_local_s"] - 1.0)
            res["build_ray_overhead_pct_without_startup"] = 100.0 * (
                (res["build_ray_s"] - res["ray_startup_s"]) / res["build_local_s"] - 1.0)
    res["loadavg_before"], res["loadavg_after"] = load0, os.getloadavg()
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
