"""Speed of the GFPGAN v1.4 and CodeFormer methods: images/s at batch 1 and 8 (CPU; CUDA when present).

Run on demand, never in CI::

    python benchmarks/bench_baselines.py                       # both methods, batch 1 and 8, 2 CPU threads
    python benchmarks/bench_baselines.py --methods codeformer:w=0.7 --batch-sizes 1 --repeats 3
    python benchmarks/bench_baselines.py --device cuda --batch-sizes 1,8,16 --json out.json

Weights: the real checkpoints when the weight store has them (``--weights store``), otherwise the networks'
own random initialisation (``--weights random``, the default; speed does not depend on the values).
Timed: ``method.restore(items)`` on aligned 512x512 RGB uint8 faces (conversions included), after
``--warmup`` untimed batches. Reported per batch size: median seconds per batch, seconds per image and
images/s, process CPU seconds per run (``cpu_s``; about threads x wall when the threads were not starved)
and the 1-minute load average before/after (the CPU machine may be shared: compare figures taken under
similar load only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines.base import RestoreItem  # noqa: E402
from baselines.registry import create_method  # noqa: E402
from celebref.params import split_spec_list  # noqa: E402
from celebref.device import resolve_device  # noqa: E402


def _load_avg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _peak_rss_mib() -> float | None:
    """Peak resident memory of this process so far (Linux/macOS), MiB."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)
    except (ImportError, OSError):
        return None


def _faces(n: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random 512x512 RGB images (content does not change the speed of these networks)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        out.append(np.ascontiguousarray(np.kron(small, np.ones((32, 32, 1), np.uint8))))
    return out


def _build(spec: str, device: str, precision: str, weights: str):
    m = create_method(spec, device=device, precision=precision, landmark_policy="skip")
    if weights == "store":
        m.load()
    else:  # random initialisation of the same architecture
        from baselines.codeformer.arch import CodeFormerNet
        from baselines.gfpgan.arch import GFPGANv14

        m._build({"gfpgan": GFPGANv14, "codeformer": CodeFormerNet}[m.name]().state_dict(), "random init")
    return m


def bench(spec: str, batch_sizes: list[int], repeats: int, warmup: int, device: str, precision: str, weights: str) -> dict:
    m = _build(spec, device, precision, weights)
    rows = []
    for bs in batch_sizes:
        items = [RestoreItem(f"img{i}", im) for i, im in enumerate(_faces(bs))]
        for _ in range(warmup):
            m.restore(items)
        la0 = _load_avg()
        times, cpu = [], []
        for _ in range(repeats):
            if m.device.type == "cuda":
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            res = m.restore(items)
            if m.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            bad = [r for r in res if r.status != "ok"]
            if bad:
                raise RuntimeError(f"{spec}: {bad[0].status}: {bad[0].reason}")
        med = statistics.median(times)
        row = {"method": m.label, "batch": bs, "runs_s": [round(t, 3) for t in times], "cpu_s": [round(c, 2) for c in cpu], "median_batch_s": round(med, 3),
               "s_per_image": round(med / bs, 3), "images_per_s": round(bs / med, 3),
               "load_avg_1min": [la0, _load_avg()], "peak_rss_mib_process": _peak_rss_mib()}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return {"method": m.label, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default="gfpgan,codeformer", help="method specs (default gfpgan,codeformer)")
    p.add_argument("--batch-sizes", default="1,8", help="comma-separated batch sizes (default 1,8)")
    p.add_argument("--repeats", type=int, default=3, help="timed batches per batch size (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed batches first (default 1)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2, the reference setting)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--weights", default="random", choices=("random", "store"))
    p.add_argument("--json", type=Path, help="also write the results here")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    device = str(resolve_device(a.device))
    info = {"device": device, "cuda": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
            "threads": a.threads, "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "precision": a.precision, "weights": a.weights}
    print(json.dumps(info), flush=True)
    sizes = [int(s) for s in a.batch_sizes.split(",") if s.strip()]
    out = {"info": info, "results": [bench(s, sizes, a.repeats, a.warmup, device, a.precision, a.weights)
                                     for s in split_spec_list(a.methods)]}
    if a.json:
        from celebref.fsutil import atomic_write_text

        atomic_write_text(a.json, json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
