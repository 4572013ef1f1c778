"""End-to-end ``celebref evaluate`` benchmark on synthetic weights and a synthetic CelebRef-HQ-shaped test set.

Run on demand (a CPU smoke run is in tests/test_bench_evaluate.py)::

    python benchmarks/bench_evaluate.py --device cuda --n 1000 --precision fp32,bf16 --batch-size 32
    python benchmarks/bench_evaluate.py --device cpu --n 2 --methods dmdnet --metrics psnr,ssim

What it does, in a work folder (``--work``, default a temporary folder):

1. **Weights**: every checkpoint the chosen methods and metrics need, generated from the network's own
   state-dict layout (deterministic, fan-in scaled; spectral-norm triples consistent; DFDNet dictionaries
   with ``--dfdnet-k`` atoms), saved as real files and handed to the weight store with
   ``CELEBREF_WEIGHT_<NAME>=<file>`` and ``--allow-unverified-weights`` (recorded in the run files).
   The identity metric needs a face backend (dlib / insightface) with its own models: when none is
   available it is dropped with the reason printed.
2. **Test set**: ``ceil(n / (refs + 1))`` identities with ``refs + 1`` 512x512 images each (smooth random
   images with a 68-point landmark template, jittered per image), degraded by ``celebref degrade``
   (x4 bilinear down/up) into a manifest with ground-truth landmarks and reference lists.
3. **Evaluate**, once per precision: ``celebref evaluate --data ... --methods ... --metrics ...
   --landmark-source gt``, in this process, timed per stage: ``decode`` (image decoding), ``restore``
   (``RestorationMethod.restore``), ``metrics`` (``Metric.compute`` / features), ``write`` (image
   encoding and writing); ``other`` = wall minus the main-thread stages. Stage seconds are summed over
   threads (worker threads can make them exceed the wall time). Per method: images and images/s of
   ``restore``. On CUDA: the GPU busy fraction (``nvidia-smi`` sampled every 200 ms, else
   ``torch.cuda.utilization``) over the whole run and over the restore phases, and the peak GPU memory.

Figures depend on the machine and its load; the script reports, it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_METHODS = "dmdnet,dmdnet-specific,dfdnet,gfpgan,codeformer"
DEFAULT_METRICS = "psnr,ssim,lpips,fid,identity"

# mean of the 76 landmark files of celebref-mini (FFHQ-aligned 512x512 faces), (x, y) pixels, rounded
TEMPLATE_68 = np.array([
    101, 234, 105, 276, 112, 313, 119, 347, 132, 385, 155, 415, 179, 436, 208, 454, 254, 468, 301, 457, 330, 438, 352,
    419, 374, 387, 387, 347, 393, 313, 400, 275, 403, 234, 138, 208, 158, 202, 179, 199, 200, 201, 218, 207, 292, 208,
    310, 202, 331, 199, 353, 202, 370, 210, 255, 246, 256, 274, 256, 301, 255, 323, 230, 332, 240, 337, 255, 341, 269,
    337, 280, 334, 167, 239, 182, 233, 199, 232, 216, 242, 200, 247, 182, 246, 292, 242, 310, 233, 328, 234, 341, 240,
    328, 248, 308, 247, 201, 377, 220, 372, 244, 367, 255, 370, 267, 367, 290, 373, 309, 379, 288, 391, 272, 398, 255,
    399, 238, 398, 222, 390, 205, 376, 239, 379, 255, 379, 270, 380, 305, 378, 270, 381, 255, 381, 240, 380,
], dtype=np.float64).reshape(68, 2)


# -- synthetic weights ------------------------------------------------------------------------------------
def _gen(key: str, seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(f"{seed}:{key}".encode()))


def synthetic_state_dict(layout: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """Values for every key of a state-dict layout (shapes/dtypes of ``layout``), deterministic per key.

    conv/linear ``weight``/``weight_orig`` -> N(0, 1/fan_in); 1-D ``weight`` -> 1; ``bias`` -> 0.01 N(0,1);
    ``running_mean`` 0, ``running_var`` 1; spectral-norm ``weight_u``/``weight_v`` -> a consistent pair
    (``u = W v / |W v|``, sigma > 0; a unit rank-1 term along ``v`` makes sigma ~ 1, so the normalised weight
    keeps the fan-in scale and deep stacks stay finite); ``RGB_mean``/``RGB_std`` -> ImageNet-like; integers -> 0; any other
    float tensor (memory banks, noise maps, codebooks, embeddings) -> N(0, 1). Meta tensors (layout-only
    entries) become zero tensors expanded from one element (a tiny file of the right shape).
    """
    out: dict[str, torch.Tensor] = {}
    for key, ref in layout.items():
        shape, dtype = tuple(ref.shape), ref.dtype
        leaf = key.rsplit(".", 1)[-1]
        if ref.is_meta:
            out[key] = torch.zeros((1,) * len(shape), dtype=dtype).expand(shape) if shape else torch.zeros((), dtype=dtype)
            continue
        if not dtype.is_floating_point:
            out[key] = torch.zeros(shape, dtype=dtype)
            continue
        g = _gen(key, seed)
        if leaf in ("weight", "weight_orig") and len(shape) >= 2:
            fan_in = max(1, math.prod(shape) // shape[0] if leaf == "weight_orig" or len(shape) != 5 else math.prod(shape[2:]))
            t = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        elif leaf == "weight":
            t = torch.ones(shape)
        elif leaf == "bias":
            t = 0.01 * torch.randn(shape, generator=g)
        elif leaf == "running_mean":
            t = torch.zeros(shape)
        elif leaf == "running_var":
            t = torch.ones(shape)
        elif "RGB_mean" in key:
            t = torch.full(shape, 0.45)
        elif "RGB_std" in key:
            t = torch.full(shape, 0.225)
        elif leaf in ("weight_u", "weight_v"):
            continue  # filled with their weight_orig below
        else:
            t = torch.randn(shape, generator=g)
        out[key] = t.to(dtype)
    for key in layout:
        if key.rsplit(".", 1)[-1] == "weight_orig" and key[: -len("orig")] + "u" in layout:
            base = key[: -len("_orig")]
            if layout[key].is_meta:  # a shape-only entry (zeros expanded from one element): never written into
                for leaf in ("_u", "_v"):
                    ref = layout[base + leaf]
                    out[base + leaf] = torch.zeros((1,) * ref.ndim, dtype=ref.dtype).expand(tuple(ref.shape))
                continue
            w = out[key].reshape(out[key].shape[0], -1)
            v = torch.randn(w.shape[1], generator=_gen(base + "_v", seed))
            v = v / v.norm()
            a = torch.randn(w.shape[0], generator=_gen(base + "_u", seed))
            w += torch.outer(a / a.norm(), v)  # rank-1 term: sigma = |W v| ~ 1, so W / sigma keeps fan-in scale
            u = w @ v
            out[base + "_v"], out[base + "_u"] = v.to(layout[base + "_v"].dtype), (u / u.norm()).to(layout[base + "_u"].dtype)
    return {k: out[k] for k in layout}


def _dfdnet_dictionaries(folder: Path, k: int, seed: int) -> None:
    from baselines.dfdnet.dictionary import CHANNELS, FEATURE_SIZES, PARTS, atom_side, dictionary_file_name

    folder.mkdir(parents=True, exist_ok=True)
    for si, f in enumerate(FEATURE_SIZES):
        for pi, part in enumerate(PARTS):
            side = atom_side(pi, f)
            g = _gen(f"{part}_{f}", seed)
            a = torch.randn((k, CHANNELS[si] * side * side), generator=g).abs_()  # VGG features are >= 0 mostly
            np.save(folder / dictionary_file_name(part, f), a.numpy())


def _layout(name: str) -> tuple[dict[str, torch.Tensor], Callable[[dict], Any]]:
    """The state-dict layout of a weight-store name and how the checkpoint file wraps it."""
    plain: Callable[[dict], Any] = lambda sd: sd  # noqa: E731
    ema: Callable[[dict], Any] = lambda sd: {"params_ema": sd}  # noqa: E731
    with torch.device("meta"):
        if name == "dmdnet":
            from baselines.dmdnet.network import DMDNet

            return DMDNet().state_dict(), plain
        if name == "dfdnet-generator":
            from baselines.dfdnet.network import DFDNetGenerator

            return DFDNetGenerator().state_dict(), plain
        if name == "gfpgan-v1.4":
            from baselines.gfpgan.arch import GFPGANv14

            return GFPGANv14().state_dict(), ema
        if name == "codeformer":
            from baselines.codeformer.arch import CodeFormerNet

            return CodeFormerNet().state_dict(), ema
        if name == "fid-inception":
            from evaluation.inception import FIDInception

            return FIDInception().state_dict(), plain
        if name in ("alexnet", "vgg16"):
            from evaluation.backbones import build_backbone

            return build_backbone("alex" if name == "alexnet" else "vgg").state_dict(), plain
        if name.startswith("lpips-"):
            from evaluation.lpips import LPIPSNet

            net = LPIPSNet("alex" if "alex" in name else "vgg")
            return {f"lin{i}.model.1.weight": p for i, p in enumerate(net.lins)}, plain
    raise KeyError(name)


def write_weights(names: list[str], folder: Path, dfdnet_k: int, seed: int = 0) -> dict[str, Path]:
    """Write each weight file; returns name -> path (folder for the DFDNet dictionary)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in names:
        if name == "dfdnet-dictionary":
            p = folder / "DictionaryCenter512"
            if not p.is_dir():
                _dfdnet_dictionaries(p, dfdnet_k, seed)
            paths[name] = p
            continue
        p = folder / f"{name}.pth"
        if not p.is_file():
            layout, wrap = _layout(name)
            layout = {k: (torch.empty(v.shape, dtype=v.dtype) if not _is_shape_only(name, k) else v) for k, v in layout.items()}
            sd = synthetic_state_dict(layout, seed)
            if name.startswith("lpips-"):
                sd = {k: v.abs() for k, v in sd.items()}  # LPIPS linear weights are non-negative
            torch.save(wrap(sd), p)
        paths[name] = p
    return paths


def _is_shape_only(name: str, key: str) -> bool:
    """Checkpoint entries the forward never reads (DFDNet's VGG classifier and to_rgb heads)."""
    return name == "dfdnet-generator" and (key.startswith("VggExtract.model.classifier") or key.startswith("to_rgb"))


# -- test set ---------------------------------------------------------------------------------------------
def _smooth_image(rng: np.random.Generator) -> np.ndarray:
    import cv2

    small = rng.integers(40, 216, (16, 16, 3), dtype=np.uint8)
    img = cv2.resize(small, (512, 512), interpolation=cv2.INTER_CUBIC)
    return cv2.GaussianBlur(img, (0, 0), 3)


def write_hq_set(root: Path, n: int, refs: int, seed: int = 0) -> int:
    """celebref-mini-like folder: ``hq/<identity>/<k>.png`` + ``landmarks/<identity>/<k>.png.txt``."""
    from celebref.imageio import write_image

    per = refs + 1
    rng = np.random.default_rng(seed)
    count = 0
    for i in range(max(1, math.ceil(n / per))):
        ident = f"{i:05d}"
        (root / "hq" / ident).mkdir(parents=True, exist_ok=True)
        (root / "landmarks" / ident).mkdir(parents=True, exist_ok=True)
        for k in range(per):
            write_image(root / "hq" / ident / f"{k}.png", _smooth_image(rng))
            lm = TEMPLATE_68 + rng.normal(0, 2.0, TEMPLATE_68.shape)
            np.savetxt(root / "landmarks" / ident / f"{k}.png.txt", lm, fmt="%.3f")
            count += 1
    return count


def _cli(argv: list[str]) -> int:
    from celebref.app.cli import main

    rc = main(argv)
    return int(rc or 0)


# -- instrumentation --------------------------------------------------------------------------------------
class StageTimer:
    """Wall seconds spent inside wrapped functions, per stage (outermost call per thread only)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.per_method: dict[str, list[float]] = {}  # label -> [seconds, images]
        self.restore_intervals: list[tuple[float, float]] = []
        self._local = threading.local()
        self._lock = threading.Lock()

    def wrap(self, stage: str, fn: Callable) -> Callable:
        timer = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(timer._local, stage, 0)
            setattr(timer._local, stage, depth + 1)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                setattr(timer._local, stage, depth)
                if depth == 0:
                    dt = time.perf_counter() - t0
                    with timer._lock:
                        timer.seconds[stage] = timer.seconds.get(stage, 0.0) + dt
                        timer.calls[stage] = timer.calls.get(stage, 0) + 1
                        if stage == "restore" and args:
                            label = getattr(args[0], "label", type(args[0]).__name__)
                            n = len(args[1]) if len(args) > 1 else len(kwargs.get("items", []))
                            acc = timer.per_method.setdefault(label, [0.0, 0])
                            acc[0] += dt
                            acc[1] += n
                            timer.restore_intervals.append((t0, t0 + dt))

        wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
        return wrapper


@contextmanager
def instrumented(timer: StageTimer) -> Iterator[None]:
    """Patch the stage functions everywhere they are referenced (module attributes and class methods)."""
    import celebref.imageio as imageio
    from baselines.base import RestorationMethod
    from evaluation.base import Metric

    undo: list[tuple[Any, str, Any]] = []
    funcs = {"decode": [imageio.decode_image, imageio.read_image], "write": [imageio.encode_image, imageio.write_image]}
    for stage, fns in funcs.items():
        for fn in fns:
            new = timer.wrap(stage, fn)
            for mod in list(sys.modules.values()):
                d = getattr(mod, "__dict__", None)
                if not d:
                    continue
                for attr, val in list(d.items()):
                    if val is fn:
                        undo.append((mod, attr, val))
                        setattr(mod, attr, new)
    for cls, attrs, stage in ((RestorationMethod, ("restore",), "restore"),
                              (Metric, ("compute", "features", "features_for_paths"), "metrics")):
        for attr in attrs:
            orig = cls.__dict__.get(attr)
            if orig is not None:
                undo.append((cls, attr, orig))
                setattr(cls, attr, timer.wrap(stage, orig))
    try:
        yield
    finally:
        for obj, attr, val in reversed(undo):
            setattr(obj, attr, val)


class GPUSampler:
    """GPU utilisation samples (timestamp, percent) every ``interval`` s: nvidia-smi, else torch.cuda.utilization."""

    def __init__(self, device: torch.device, interval: float = 0.2):
        self.device, self.interval = device, interval
        self.samples: list[tuple[float, float]] = []
        self.source = "none"
        self._stop = threading.Event()
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> "GPUSampler":
        if self.device.type != "cuda":
            return self
        index = self.device.index if self.device.index is not None else torch.cuda.current_device()
        if shutil.which("nvidia-smi"):
            self.source = "nvidia-smi"
            self._proc = subprocess.Popen(
                ["nvidia-smi", f"--id={index}", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                 f"-lms={int(self.interval * 1000)}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self._thread = threading.Thread(target=self._read, daemon=True)
        else:
            self.source = "torch.cuda.utilization"
            self._thread = threading.Thread(target=self._poll, args=(index,), daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self.samples.append((time.perf_counter(), float(line.strip())))
            except ValueError:
                pass

    def _poll(self, index: int) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.perf_counter(), float(torch.cuda.utilization(index))))
            except Exception:  # noqa: BLE001 - pynvml missing: no samples
                self.source = "unavailable (no nvidia-smi, no pynvml)"
                return
            time.sleep(self.interval)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=5)
        if self.device.type == "cuda":
            self._thread.join(timeout=5)

    def busy(self, intervals: list[tuple[float, float]] | None = None) -> float | None:
        s = self.samples if intervals is None else [x for x in self.samples if any(a <= x[0] <= b for a, b in intervals)]
        return round(sum(v for _, v in s) / (100.0 * len(s)), 3) if s else None


# -- one evaluate run ---------------------------------------------------------------------------------------
def run_evaluate(data: Path, out: Path, methods: str, metrics: str, device: str, precision: str, batch_size: int) -> dict:
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    argv = ["evaluate", "--data", str(data), "--out", str(out), "--methods", methods, "--metrics", metrics,
            "--device", device, "--precision", precision, "--batch-size", str(batch_size), "--landmark-source", "gt",
            "--allow-unverified-weights"]
    timer = StageTimer()
    t0 = time.perf_counter()
    with GPUSampler(dev) as gpu, instrumented(timer):
        rc = _cli(argv)
    wall = time.perf_counter() - t0
    stages = {k: round(timer.seconds.get(k, 0.0), 2) for k in ("decode", "restore", "metrics", "write")}
    stages["other"] = round(max(0.0, wall - sum(stages.values())), 2)
    per_method = {label: {"images": int(n), "seconds": round(s, 2), "images_per_s": round(n / s, 2) if s > 0 else None}
                  for label, (s, n) in timer.per_method.items()}
    res: dict[str, Any] = {"precision": precision, "exit_code": rc, "wall_s": round(wall, 2), "stages_s": stages,
                           "methods": per_method, "argv": argv}
    if dev.type == "cuda":
        res["gpu_busy"] = {"whole_run": gpu.busy(), "restore_phases": gpu.busy(timer.restore_intervals),
                           "source": gpu.source, "samples": len(gpu.samples)}
        res["peak_gpu_memory_gib"] = {"allocated": round(torch.cuda.max_memory_allocated(dev) / 2**30, 2),
                                      "reserved": round(torch.cuda.max_memory_reserved(dev) / 2**30, 2)}
    run_json = out / "run.json"
    if run_json.is_file():
        res["recorded_precision"] = json.loads(run_json.read_text()).get("precision")
    return res


def _needed_weights(methods: list[str], metrics: list[str]) -> list[str]:
    from baselines.registry import method_class
    from evaluation.registry import metric_class

    names: list[str] = []
    for m in methods:
        names += [w for w in method_class(m).weights if w not in names]
    for m in metrics:
        names += [w for w in getattr(metric_class(m), "weights", ()) if w not in names]
    return names


def _identity_unavailable() -> str:
    """Why the identity metric cannot run here ('' when a face backend is available)."""
    try:
        from evaluation.registry import create_metric

        create_metric("identity", device="cpu").load()
        return ""
    except Exception as e:  # noqa: BLE001 - any failure means: no backend
        return f"{type(e).__name__}: {e}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    ap.add_argument("--n", type=int, default=1000, help="test images (default 1000)")
    ap.add_argument("--refs", type=int, default=3, help="references per identity (default 3)")
    ap.add_argument("--precision", default="fp32,bf16", help="comma list of precisions to run (default fp32,bf16)")
    ap.add_argument("--methods", default=DEFAULT_METHODS, help=f"default {DEFAULT_METHODS}")
    ap.add_argument("--metrics", default=DEFAULT_METRICS, help=f"default {DEFAULT_METRICS}")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--dfdnet-k", type=int, default=512, help="atoms per DFDNet dictionary (released: 512)")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary folder, removed)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = ap.parse_args(argv)

    from celebref.device import resolve_device

    device = str(resolve_device(a.device))
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    metrics = [m.strip() for m in a.metrics.split(",") if m.strip()]
    skipped: dict[str, str] = {}
    if "identity" in metrics:
        why = _identity_unavailable()
        if why:
            metrics.remove("identity")
            skipped["identity"] = why
            print(f"bench_evaluate: identity metric skipped: {why}", flush=True)
    work = a.work or Path(tempfile.mkdtemp(prefix="celebref-bench-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    saved_env = dict(os.environ)  # the weight overrides set below are this run's only (main() may run in-process)
    try:
        t = time.perf_counter()
        names = _needed_weights(methods, metrics)
        paths = write_weights(names, work / "weights", a.dfdnet_k)
        for name, p in paths.items():
            from celebref.weights import env_var

            os.environ[env_var(name)] = str(p)
        setup = {"weights_s": round(time.perf_counter() - t, 1), "weights": sorted(paths)}
        t = time.perf_counter()
        data = work / "testset"
        if not (data / "manifest.csv").is_file() and not (data / "manifest.parquet").is_file():
            n_hq = write_hq_set(work / "hq", a.n, a.refs)
            rc = _cli(["degrade", "--input", str(work / "hq"), "--out", str(data), "--preset", "fixed", "--scale", "4",
                       "--refs", "link"])
            if rc != 0:
                print(f"bench_evaluate: celebref degrade failed (exit {rc})", file=sys.stderr)
                return rc
            setup["hq_images"] = n_hq
        setup["testset_s"] = round(time.perf_counter() - t, 1)
        results = {"device": device, "torch": torch.__version__, "n": a.n, "batch_size": a.batch_size,
                   "methods": methods, "metrics": metrics, "skipped_metrics": skipped, "setup": setup,
                   "cuda_device": torch.cuda.get_device_name() if device.startswith("cuda") else None, "runs": []}
        for prec in [p.strip() for p in a.precision.split(",") if p.strip()]:
            res = run_evaluate(data, work / f"run-{prec}", ",".join(methods), ",".join(metrics), device, prec, a.batch_size)
            results["runs"].append(res)
            print(json.dumps(res), flush=True)
        _print_table(results)
        if a.json:
            a.json.write_text(json.dumps(results, indent=2))
        return max((r["exit_code"] for r in results["runs"]), default=0)
    finally:
        for k in set(os.environ) - set(saved_env):
            del os.environ[k]
        os.environ.update(saved_env)
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)


def _print_table(results: dict) -> None:
    print(f"\n== celebref evaluate, {results['device']}, n={results['n']}, batch {results['batch_size']} ==")
    for r in results["runs"]:
        s = r["stages_s"]
        line = (f"[{r['precision']}] wall {r['wall_s']} s  decode {s['decode']}  restore {s['restore']}  metrics {s['metrics']}  "
                f"write {s['write']}  other {s['other']}")
        if "gpu_busy" in r:
            line += f"  GPU busy {r['gpu_busy']['whole_run']} (restore {r['gpu_busy']['restore_phases']})  peak {r['peak_gpu_memory_gib']} GiB"
        print(line)
        for label, m in r["methods"].items():
            print(f"    {label:24s} {m['images']:6d} images  {m['seconds']:8.2f} s  {m['images_per_s']} img/s")


if __name__ == "__main__":
    sys.exit(main())
