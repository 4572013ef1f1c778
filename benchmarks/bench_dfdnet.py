"""Speed of our DFDNet port, and of its dictionary matching against the official formulation.

    python benchmarks/bench_dfdnet.py                              # CPU (CUDA too when available)
    python benchmarks/bench_dfdnet.py --atoms 512 --batch-sizes 1,8 --repeats 2
    python benchmarks/bench_dfdnet.py --only matching              # matching step only (less memory)
    python benchmarks/bench_dfdnet.py --device cuda --precision bf16 --batch-sizes 1,8,32

What is measured (both sides are our code, same network, same dictionaries, same process):

* ``matching``: the 16 (scale, part) matches of one image at K atoms per dictionary, as the official
  code computes them (AdaIN of every atom to the crop, ``conv2d`` scores, softmax, argmax:
  :func:`baselines.dfdnet.dictionary.match_reference`) and as we do (precomputed atom statistics,
  one pass per dictionary: :func:`~baselines.dfdnet.dictionary.match_fast`); the atom choices are
  checked to be identical.
* ``forward``: the whole generator per image: ``matching="reference"`` in NCHW at batch 1 (the
  official formulation and layout, one image per forward as the official script runs); ours with
  fast matching only (NCHW, bit-identical output) at batch 1; and the ``dfdnet`` method's default
  (fast matching + channels-last convolutions) at each batch size. Reported as seconds per image,
  images/s and the speed-up ratio against the first.

Weights and dictionaries are deterministic random values of the released sizes (the speed does not
depend on the values; spectral-norm vectors are made consistent). K=512 dictionaries take 3.2 GB in
float32. Times are medians of ``--repeats`` runs (after one warm-up run per
configuration, at its first batch size); peak memory is the process's
resident set sampled every 5 ms (CPU) or ``torch.cuda.max_memory_allocated`` (CUDA).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baselines.dfdnet.dictionary import (  # noqa: E402
    CHANNELS, FEATURE_SIZES, PARTS, ComponentDictionary, DictionarySet, atom_side, match_fast, match_reference,
)
from baselines.dfdnet.layers import SNConv2d  # noqa: E402
from baselines.dfdnet.network import DFDNetGenerator  # noqa: E402
from celebref.device import autocast, resolve_device  # noqa: E402

# part boxes of a real aligned 512 face (the DFDNet golden's landmarks; rows LE, RE, NO, MO)
BOXES = np.array([[151, 196, 223, 268], [277, 192, 360, 275], [222, 308, 273, 359], [201, 333, 304, 436]], np.int64)


class PeakRSS:
    """Peak resident set size of this process while inside the ``with`` block (Linux /proc)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def rss() -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096
        except OSError:
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.005)

    def __enter__(self) -> "PeakRSS":
        self.peak = self.rss()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._t.join()


def random_dictionaries(k: int, seed: int = 0) -> DictionarySet:
    g = torch.Generator().manual_seed(seed)
    arrays = {}
    for si, f in enumerate(FEATURE_SIZES):
        for pi, part in enumerate(PARTS):
            side = atom_side(pi, f)
            # VGG-feature-like atoms: non-negative-ish with per-channel offsets
            a = torch.randn((k, CHANNELS[si], side, side), generator=g)
            a.add_(torch.rand((1, CHANNELS[si], 1, 1), generator=g))
            arrays[f"{part}_{f}_center"] = a
    return DictionarySet.from_arrays(arrays)


def random_generator(dicts: DictionarySet | None, seed: int = 0) -> DFDNetGenerator:
    net = DFDNetGenerator(dicts)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, SNConv2d):
                w = torch.randn(m.weight_orig.shape, generator=g) / m.weight_orig[0].numel() ** 0.5
                v = torch.randn(m.weight_v.shape, generator=g)
                v /= v.norm()
                u = w.reshape(w.shape[0], -1) @ v
                m.weight_orig.copy_(w)
                m.weight_v.copy_(v)
                m.weight_u.copy_(u / u.norm())
    return net.eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def bench_matching(k: int, device: torch.device, repeats: int, seed: int = 1) -> dict[str, Any]:
    """The 16 matches of one image, one dictionary array in memory at a time."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    tot_ref = tot_fast = 0.0
    same = True
    for si, f in enumerate(FEATURE_SIZES):
        for pi, part in enumerate(PARTS):
            side = atom_side(pi, f)
            atoms = torch.randn((k, CHANNELS[si], side, side), generator=g)
            atoms.add_(torch.rand((1, CHANNELS[si], 1, 1), generator=g))
            t0 = time.perf_counter()
            d = ComponentDictionary.from_atoms(part, f, atoms.to(device))
            stats_s = time.perf_counter() - t0
            crop = (torch.randn((1, CHANNELS[si], side, side), generator=g).relu() * 2).to(device)
            with torch.inference_mode():
                t_ref, _ = timed(lambda: match_reference(crop, d.atoms), device, repeats)
                t_fast, _ = timed(lambda: match_fast(crop, d), device, repeats)
                _, i_ref, _ = match_reference(crop, d.atoms)
                _, i_fast, _ = match_fast(crop, d)
            same &= int(i_ref) == int(i_fast[0])
            tot_ref += t_ref
            tot_fast += t_fast
            rows.append({"scale": f, "part": part, "reference_s": t_ref, "fast_s": t_fast, "stats_once_s": stats_s})
            del d, atoms
    return {"K": k, "reference_s": tot_ref, "fast_s": tot_fast, "ratio": tot_ref / tot_fast, "same_choices": same, "per_array": rows}


def bench_forward(net: DFDNetGenerator, device: torch.device, precision: str, batch_sizes: list[int], repeats: int,
                  with_reference: bool) -> dict[str, Any]:
    g = torch.Generator().manual_seed(2)
    base = F.interpolate(torch.rand((1, 3, 64, 64), generator=g) * 2 - 1, (512, 512), mode="bilinear", align_corners=False)
    out: dict[str, Any] = {"fast": {}}
    warm: dict[tuple[str, bool], int] = {}  # one warm-up per configuration family (first batch size only)

    def run(b: int, matching: str, channels_last: bool) -> tuple[float, int]:
        x = base.repeat(b, 1, 1, 1).to(device)
        boxes = [BOXES + 2 * (i % 3) for i in range(b)]  # slightly different boxes per image

        def fwd() -> None:
            with torch.inference_mode(), autocast(device, precision):
                net(x, boxes, matching=matching, channels_last=channels_last)

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with PeakRSS() as mem:
            t, _ = timed(fwd, device, repeats, warm.get((matching, channels_last), 1))
        warm[(matching, channels_last)] = 0
        peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else mem.peak
        return t, peak

    ref = None
    if with_reference:
        ref, peak = run(1, "reference", False)
        out["reference_b1"] = {"s_per_image": ref, "images_per_s": 1 / ref, "peak_mem_gb": peak / 1e9}
        print(f"  official formulation (per-crop AdaIN of all atoms, NCHW), batch 1: {ref:.2f} s/image, peak {peak / 1e9:.2f} GB", flush=True)
        t, peak = run(1, "fast", False)
        out["fast_nchw_b1"] = {"s_per_image": t, "images_per_s": 1 / t, "peak_mem_gb": peak / 1e9, "speedup_vs_reference_b1": ref / t}
        print(f"  ours, fast matching only (NCHW, bit-identical to official), batch 1: {t:.2f} s/image, "
              f"peak {peak / 1e9:.2f} GB, {ref / t:.2f}x", flush=True)
    for b in batch_sizes:
        t, peak = run(b, "fast", True)
        out["fast"][b] = {"s_per_image": t / b, "images_per_s": b / t, "peak_mem_gb": peak / 1e9}
        msg = (f"  ours (fast matching + channels-last, the method's default), batch {b}: {t / b:.2f} s/image, "
               f"{b / t:.3f} images/s, peak {peak / 1e9:.2f} GB")
        if ref is not None:
            out["fast"][b]["speedup_vs_reference_b1"] = ref / (t / b)
            msg += f", {ref / (t / b):.2f}x the official formulation"
        print(msg, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (CPU, then CUDA when available)")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    ap.add_argument("--atoms", type=int, default=512, help="K atoms per dictionary (released: reportedly 512)")
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--only", choices=("matching", "forward"), default=None)
    ap.add_argument("--no-reference-forward", action="store_true", help="skip the official-formulation forward")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    devices = [resolve_device("cpu")] + ([resolve_device("cuda")] if torch.cuda.is_available() else []) \
        if args.device == "auto" else [resolve_device(args.device)]
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    results: dict[str, Any] = {"atoms": args.atoms, "threads": args.threads, "torch": torch.__version__, "devices": {}}
    for device in devices:
        print(f"== {device} ({args.precision}), K={args.atoms}, {args.threads} CPU threads", flush=True)
        res: dict[str, Any] = {}
        if args.only in (None, "matching"):
            m = bench_matching(args.atoms, device, args.repeats)
            print(f"  matching, 16 dictionaries: official formulation {m['reference_s']:.3f} s, ours {m['fast_s']:.3f} s "
                  f"-> {m['ratio']:.1f}x; same atom choices: {m['same_choices']}", flush=True)
            res["matching"] = m
        if args.only in (None, "forward"):
            t0 = time.perf_counter()
            dicts = random_dictionaries(args.atoms)
            net = random_generator(dicts).to(device)
            print(f"  built generator + K={args.atoms} dictionaries (incl. atom statistics) in {time.perf_counter() - t0:.1f} s", flush=True)
            res["forward"] = bench_forward(net, device, args.precision, batch_sizes, args.repeats, not args.no_reference_forward)
            del net, dicts
        results["devices"][str(device)] = res
    if args.json:
        from celebref.fsutil import atomic_write_json

        atomic_write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
