"""Speed of our DMDNet port: generic and specific restoration per image at several batch sizes, and
the per-identity dictionary reuse against the official script's rebuild-per-input loop.

    python benchmarks/bench_dmdnet.py                        # CPU (and CUDA when available)
    python benchmarks/bench_dmdnet.py --device cpu --batch-sizes 1 --repeats 1 --inputs 3 --refs 3
    python benchmarks/bench_dmdnet.py --device cuda --precision bf16 --batch-sizes 1,8,32

Weights: deterministic random values with consistent spectral-norm vectors (speed does not depend on
the values), or ``--weights synth`` for the shared golden generator, or ``--weights store`` for the
real ``DMDNet.pth`` from the weight store. Inputs: random smooth 512x512 faces-sized tensors with the
component boxes of a real aligned face (the golden LQ's). Images/s are per image, medians of
``--repeats`` timed runs after one warm-up; peak memory is the process's resident set (CPU, sampled
every 5 ms) or ``torch.cuda.max_memory_allocated`` (CUDA).

Identity benchmark (``--inputs`` LQ faces of one identity with ``--refs`` references):
* ``official loop``: for every input, build the specific dictionary and run the full forward
  (generic and specific outputs), as ``main_test.py`` does;
* ``ours``: one dictionary for the identity, then specific-only forwards (``generic=False``) in
  batches of ``--identity-batch``, as the ``dmdnet-specific`` method runs.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baselines.dmdnet.network import DMDNet, SNConv2d  # noqa: E402
from celebref.device import autocast, resolve_device  # noqa: E402

# component boxes of a real aligned 512 face (rows LE, RE, NO, MO; x1, y1, x2, y2)
BOXES = np.array([[151, 188, 232, 269], [277, 182, 363, 268], [229, 273, 297, 341], [202, 316, 318, 433]], np.float32)


def random_weights(net: DMDNet, seed: int = 0) -> DMDNet:
    """Random weights whose spectral-normalised convs keep activations at unit scale (so that no
    layer overflows or underflows into denormals): ``W = (M + k a v^T) / sqrt(fan_in)`` with random
    unit ``a``, ``v`` and ``k = sqrt(max(fan_in - out, 0))``, then ``u = unit(W v)``; memory banks N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, buf in net.named_buffers():
            if name.endswith("_mem_key") or name.endswith("_mem_value"):
                buf.copy_(torch.randn(buf.shape, generator=g))
        for m in net.modules():
            if isinstance(m, SNConv2d):
                h, w = m.weight_orig.shape[0], m.weight_orig[0].numel()
                a = torch.randn(h, generator=g)
                v = torch.randn(w, generator=g)
                a, v = a / a.norm(), v / v.norm()
                mat = (torch.randn(h, w, generator=g) + max(w - h, 0) ** 0.5 * torch.outer(a, v)) / w**0.5
                u = mat @ v
                m.weight_orig.copy_(mat.reshape(m.weight_orig.shape))
                m.weight_v.copy_(v)
                m.weight_u.copy_(u / u.norm())
                m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))
    return net


def build_net(kind: str, device: torch.device) -> DMDNet:
    net = DMDNet()
    if kind == "random":
        random_weights(net)
    elif kind == "synth":
        sys.path.insert(0, str(ROOT.parent / "shared" / "golden"))
        from synth_weights import load_spec, synth_state_dict  # type: ignore

        spec_path = ROOT.parent / "shared" / "golden" / "dmdnet" / "spec.json"
        net.load_state_dict(synth_state_dict(load_spec(str(spec_path)), json.loads(spec_path.read_text())["synth_salt"]), strict=True)
    else:
        from celebref import weights as store

        net.load_state_dict(store.unwrap_state_dict(store.load_torch_checkpoint("dmdnet")), strict=True)
    return net.to(device).eval()


def make_images(n: int, seed: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand((n, 3, 32, 32), generator=g) * 2 - 1
    return torch.nn.functional.interpolate(low, (512, 512), mode="bilinear", align_corners=False).to(device)


def make_boxes(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    jitter = rng.integers(-6, 7, size=(n, 1, 2)).astype(np.float32)
    return BOXES[None] + np.concatenate([jitter, jitter], axis=2)


class PeakMemory:
    """Peak resident memory (CPU, sampled) or peak allocated CUDA memory during the block, in MiB."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = 0.0
        self._stop = threading.Event()

    @staticmethod
    def _rss() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.005)

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.peak = self._rss()
            self._t = threading.Thread(target=self._sample, daemon=True)
            self._t.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self._stop.set()
            self._t.join()
            self.peak = max(self.peak, self._rss())


def timed(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1) -> tuple[float, float, float]:
    """(median wall seconds, median process CPU seconds, peak MiB) of ``fn`` over ``repeats`` runs
    after ``warmup`` runs. CPU seconds (all threads of this process) are less sensitive than wall
    time to other jobs on a shared machine."""
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    with PeakMemory(device) as mem:
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return statistics.median(times), statistics.median(cpu), mem.peak


def bench_batches(net: DMDNet, device: torch.device, precision: str, batch_sizes: list[int], refs: int, repeats: int, warmup: int) -> list[dict]:
    rows = []
    with torch.inference_mode(), autocast(device, precision):
        d = net.generate_specific_dictionary(make_images(refs, 7, device), make_boxes(refs, 7))
        for b in batch_sizes:
            lq, loc = make_images(b, b, device), make_boxes(b, b)
            for mode, fn in (
                ("generic", lambda: net(lq, loc)),
                ("specific", lambda: net(lq, loc, *d, generic=False)),
            ):
                sec, cpu, peak = timed(fn, device, repeats, warmup)
                rows.append({"mode": mode, "batch": b, "s_per_batch": sec, "s_per_image": sec / b, "images_per_s": b / sec,
                             "cpu_s_per_image": cpu / b, "peak_mib": peak})
                print(f"  {mode:8s} batch {b:3d}: {sec / b:7.3f} s/image  {b / sec:7.3f} images/s  "
                      f"({cpu / b:7.3f} CPU-s/image)  peak {peak:8.0f} MiB", flush=True)
    return rows


def bench_identity(net: DMDNet, device: torch.device, precision: str, inputs: int, refs: int, batch: int, repeats: int) -> dict:
    lq, loc = make_images(inputs, 100, device), make_boxes(inputs, 100)
    ref_imgs, ref_locs = make_images(refs, 200, device), make_boxes(refs, 200)

    def official_loop() -> None:
        for i in range(inputs):
            d = net.generate_specific_dictionary(ref_imgs, ref_locs)
            net(lq[i : i + 1], loc[i : i + 1], *d)

    def ours() -> None:
        d = net.generate_specific_dictionary(ref_imgs, ref_locs)
        for s in range(0, inputs, batch):
            net(lq[s : s + batch], loc[s : s + batch], *d, generic=False)

    def dictionary_only() -> None:
        net.generate_specific_dictionary(ref_imgs, ref_locs)

    def generic_only() -> None:
        for s in range(0, inputs, batch):
            net(lq[s : s + batch], loc[s : s + batch])

    out: dict[str, Any] = {"inputs": inputs, "refs": refs, "batch": batch}
    with torch.inference_mode(), autocast(device, precision):
        for name, fn in (("dictionary_once", dictionary_only), ("generic_forwards", generic_only), ("ours", ours), ("official_loop", official_loop)):
            sec, cpu, peak = timed(fn, device, repeats, warmup=0)
            out[name] = {"s": sec, "cpu_s": cpu, "peak_mib": peak}
            print(f"  {name:16s}: {sec:8.2f} s  ({cpu:8.2f} CPU-s)  peak {peak:8.0f} MiB", flush=True)
    for unit in ("s", "cpu_s"):
        out[f"speedup_vs_official_loop_{unit}"] = out["official_loop"][unit] / out["ours"][unit]
        out[f"ours_over_generic_plus_dictionary_{unit}"] = out["ours"][unit] / (out["generic_forwards"][unit] + out["dictionary_once"][unit])
    print(f"  ours is {out['speedup_vs_official_loop_s']:.2f}x (wall) / {out['speedup_vs_official_loop_cpu_s']:.2f}x (CPU) faster than the "
          f"rebuild-per-input loop; ours / (generic forwards + one dictionary) = {out['ours_over_generic_plus_dictionary_s']:.2f} (wall) / "
          f"{out['ours_over_generic_plus_dictionary_cpu_s']:.2f} (CPU)", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (CPU, then CUDA when available)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--refs", type=int, default=10, help="references in the specific dictionary")
    ap.add_argument("--inputs", type=int, default=10, help="inputs of one identity (identity benchmark; 0 skips it)")
    ap.add_argument("--identity-batch", type=int, default=1)
    ap.add_argument("--identity-repeats", type=int, default=1)
    ap.add_argument("--weights", default="random", choices=["random", "synth", "store"])
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    else:
        devices = [resolve_device(args.device)]
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    results: dict[str, Any] = {"torch": torch.__version__, "threads": torch.get_num_threads(), "precision": args.precision, "runs": []}
    for device in devices:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
        print(f"== DMDNet on {name}, {args.precision}, weights {args.weights}", flush=True)
        net = build_net(args.weights, device)
        run: dict[str, Any] = {"device": name, "batches": bench_batches(net, device, args.precision, batch_sizes, args.refs, args.repeats, args.warmup)}
        if args.inputs > 0:
            print(f"== {args.inputs} inputs of one identity, {args.refs} references, batch {args.identity_batch}", flush=True)
            run["identity"] = bench_identity(net, device, args.precision, args.inputs, args.refs, args.identity_batch, args.identity_repeats)
        results["runs"].append(run)
        del net
    if args.json:
        from celebref.fsutil import atomic_write_text

        atomic_write_text(args.json, json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
