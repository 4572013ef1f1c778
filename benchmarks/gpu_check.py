"""GPU checks for issue 14, one step per subcommand (``benchmarks/gpu_check.sh`` runs them all with timeouts).

    python benchmarks/gpu_check.py parity      --out OUT/parity.json      # every network x precision on the goldens
    python benchmarks/gpu_check.py dfdnet-k512 --out OUT/dfdnet_k512.json # DFDNet K=512: memory and img/s vs batch
    python benchmarks/gpu_check.py throughput  --out OUT/throughput.json  # img/s per network, precision, layout

``parity``: golden weights (``$CELEBREF_GOLDEN_DIR`` or ../shared/golden or ./shared/golden), each network on the
golden input at fp32, tf32, bf16, fp16: discrete choices (CodeFormer codes at every w, DFDNet atoms) compared with
the golden, NaN/inf count, max abs difference to the fp32 golden output. ``PASS`` when the choices are identical
and everything is finite; fp32 also within the golden README tolerance.
``dfdnet-k512``: random K=512 dictionaries, batches 1/8/32 in bf16: peak allocated and reserved memory, img/s,
and the peak per stage (VGG, dictionary stage, decoder) at the largest batch.
``throughput``: random weights, batch 32 (DFDNet K=512), fp32/tf32/bf16 x NCHW/channels-last (+ compile for
bf16 channels-last when ``--compile``): img/s of the network forward (inputs already on the GPU).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from celebref.device import configure_backend, convs_to_channels_last  # noqa: E402
from celebref.precision import PRECISIONS, precision_context  # noqa: E402

README_FP32 = {"dmdnet": 1e-5, "dfdnet": 1e-4, "gfpgan": 1e-4, "codeformer_w0_0": 5e-5, "codeformer_w0_5": 5e-4,
               "codeformer_w1_0": 5e-4}


def golden_root() -> Path:
    for p in (os.environ.get("CELEBREF_GOLDEN_DIR"), ROOT.parent / "shared" / "golden", ROOT / "shared" / "golden"):
        if p and (Path(p) / "synth_weights.py").is_file():
            return Path(p)
    raise SystemExit("no golden folder (set CELEBREF_GOLDEN_DIR)")


def synth_module(root: Path):
    spec = importlib.util.spec_from_file_location("synth_weights", root / "synth_weights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def sync() -> None:
    torch.cuda.synchronize()


def _stats(out: torch.Tensor, ref: np.ndarray) -> dict[str, Any]:
    o = out.float().cpu()
    finite = torch.isfinite(o)
    d = (o - torch.from_numpy(ref)).abs()
    return {"nonfinite": int((~finite).sum()), "max_abs": float(d[finite].max()) if finite.any() else None,
            "mean_abs": float(d[finite].mean()) if finite.any() else None}


# -- parity ----------------------------------------------------------------------------------------------
def parity_dmdnet(root: Path, sw, dev: torch.device) -> list[dict]:
    from baselines.dmdnet.network import DMDNet

    d = root / "dmdnet"
    spec = json.loads((d / "spec.json").read_text())
    net = DMDNet()
    net.load_state_dict(sw.synth_state_dict(sw.load_spec(d / "spec.json"), spec.get("synth_salt", "dev-1")), strict=True)
    net = net.to(dev).eval()
    S = np.load(d / "specific.npz")
    lq, loc = torch.from_numpy(S["lq"]).to(dev), S["lq_locs"][None]
    rows = []
    for prec in PRECISIONS:
        with torch.inference_mode(), precision_context("cuda", prec):
            g, _ = net(lq, loc)
            sp = net.generate_specific_dictionary(torch.from_numpy(S["ref_imgs"]).to(dev), S["ref_locs"])
            _, s = net(lq, loc, *sp, generic=False)
        sync()
        for name, out in (("generic_out", g), ("specific_out", s)):
            st = _stats(out, S[name])
            ok = st["nonfinite"] == 0 and (prec != "fp32" or st["max_abs"] <= README_FP32["dmdnet"])
            rows.append({"method": "dmdnet", "output": name, "precision": prec, **st, "pass": ok})
    return rows


def parity_dfdnet(root: Path, sw, dev: torch.device) -> list[dict]:
    from baselines.dfdnet.dictionary import DictionarySet
    from baselines.dfdnet.method import to_dfdnet_tensor
    from baselines.dfdnet.network import DFDNetGenerator
    from baselines.dfdnet.parts import part_locations

    d = root / "dfdnet"
    spec = json.loads((d / "spec.json").read_text())
    meta = json.loads((d / "dev_case_meta.json").read_text())
    entries = sw.load_spec(d / "spec.json")
    aliases = spec["aliases"]["map"]
    skip = lambda k: k in aliases or k.startswith("VggExtract.model.classifier") or k.startswith("to_rgb")  # noqa: E731
    sd = sw.synth_state_dict([e for e in entries if not skip(e[0])], meta["salt"])
    vgg = [e for e in entries if e[0].startswith("VggExtract.model.features.") and e[0].endswith(".weight")]
    sd.update(sw.synth_state_dict(vgg, meta["salt"], gain=math.sqrt(2.0)))
    m0 = torch.tensor([0.485, 0.456, 0.406]).double().view(1, 3, 1, 1)
    s0 = torch.tensor([0.229, 0.224, 0.225]).double().view(1, 3, 1, 1)
    sd["VggExtract.RGB_mean"] = (m0 + 0.02 * sd["VggExtract.RGB_mean"].double()).float()
    sd["VggExtract.RGB_std"] = (s0 * (1 + 0.1 * sd["VggExtract.RGB_std"].double())).float()
    k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
    k = k / k.sum()
    for key in [e[0] for e in entries if e[0].endswith(".conv1.0.weight") and e[0].startswith("up")]:
        sd[key] = k.view(1, 1, 3, 3).repeat(sd[key].shape[0], 1, 1, 1)
    ds = json.loads((d / "dict_spec.json").read_text())
    dd = sw.synth_state_dict([(e["key"], e["shape"], e["dtype"]) for e in ds["entries"]], meta["dict_salt"])
    net = DFDNetGenerator(DictionarySet.from_arrays(dd))
    net.load_state_dict(sd, strict=False)
    net = net.to(dev).eval()
    dev_case = np.load(d / "dev_case.npz")
    x = to_dfdnet_tensor(dev_case["lq_uint8"]).to(dev)
    boxes = [part_locations(dev_case["landmarks"])]
    rows = []
    for prec in PRECISIONS:
        rec: dict = {}
        with torch.inference_mode(), precision_context("cuda", prec):
            out = net(x, boxes, record=rec)
        sync()
        st = _stats(out, dev_case["output"])
        same = bool(np.array_equal(rec["selected_index"][0].cpu().numpy(), dev_case["selected_index"]))
        ok = same and st["nonfinite"] == 0 and (prec != "fp32" or st["max_abs"] <= README_FP32["dfdnet"])
        rows.append({"method": "dfdnet", "output": "output", "precision": prec, "atoms_identical": same, **st, "pass": ok})
    return rows


def parity_basicsr(root: Path, sw, dev: torch.device, which: str) -> list[dict]:
    from _restoration_golden import golden_weights

    d = root / which
    rep_path = sorted(d.glob("case_*.report.json"))[0]
    report = json.loads(rep_path.read_text())
    arr = dict(np.load(rep_path.with_name(rep_path.name.replace(".report.json", ".npz"))))
    if which == "gfpgan":
        from baselines.gfpgan.arch import GFPGANv14 as Net
    else:
        from baselines.codeformer.arch import CodeFormerNet as Net
    net = Net()
    net.load_state_dict(golden_weights(sw, d, report), strict=True)
    net = net.to(dev).eval()
    x = torch.from_numpy(arr["input"]).to(dev)
    rows = []
    for prec in PRECISIONS:
        if which == "gfpgan":
            with torch.inference_mode(), precision_context("cuda", prec):
                out = net(x)
            sync()
            st = _stats(out, arr["output"])
            ok = st["nonfinite"] == 0 and (prec != "fp32" or st["max_abs"] <= README_FP32["gfpgan"])
            rows.append({"method": "gfpgan", "output": "output", "precision": prec, **st, "pass": ok})
            continue
        for key in report["ws"]:
            w = float(key[1:].replace("_", "."))
            with torch.inference_mode(), precision_context("cuda", prec):
                out, ex = net(x, w=w, return_extras=True)
            sync()
            st = _stats(out, arr[f"output_{key}"])
            same = bool(torch.equal(ex["top_idx"].cpu(), torch.from_numpy(arr["top_idx"])))
            ok = same and st["nonfinite"] == 0 and (prec != "fp32" or st["max_abs"] <= README_FP32[f"codeformer_{key}"])
            rows.append({"method": "codeformer", "output": f"output_{key}", "precision": prec, "codes_identical": same,
                         **st, "pass": ok})
    return rows


def cmd_parity(a: argparse.Namespace) -> dict:
    root = golden_root()
    sw = synth_module(root)
    dev = torch.device("cuda")
    rows, errors = [], {}
    for name, fn in (("codeformer", lambda: parity_basicsr(root, sw, dev, "codeformer")),
                     ("gfpgan", lambda: parity_basicsr(root, sw, dev, "gfpgan")),
                     ("dmdnet", lambda: parity_dmdnet(root, sw, dev)), ("dfdnet", lambda: parity_dfdnet(root, sw, dev))):
        if a.only and name not in a.only.split(","):
            continue
        t = time.perf_counter()
        try:
            new = fn()
        except Exception:  # noqa: BLE001 - report and go on with the next network
            errors[name] = traceback.format_exc(limit=3)
            print(errors[name], flush=True)
            continue
        for r in new:
            print(json.dumps(r), flush=True)
        rows += new
        print(f"{name}: {time.perf_counter() - t:.1f} s", flush=True)
        torch.cuda.empty_cache()
    return {"rows": rows, "errors": errors, "all_pass": all(r["pass"] for r in rows) and not errors}


# -- DFDNet K=512 -------------------------------------------------------------------------------------------
def _boxes(b: int) -> list[np.ndarray]:
    base = np.array([[150, 200, 230, 280], [280, 200, 360, 280], [216, 250, 296, 330], [200, 330, 310, 440]])
    rng = np.random.default_rng(0)
    return [base + rng.integers(-8, 9, (1, 4)) for _ in range(b)]


def timed(fn: Callable[[], Any], repeats: int = 3) -> float:
    fn()
    sync()
    t = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - t) / repeats


def cmd_dfdnet(a: argparse.Namespace) -> dict:
    from bench_dfdnet import random_dictionaries, random_generator

    dev = torch.device("cuda")
    configure_backend(dev)
    net = random_generator(random_dictionaries(512)).to(dev).eval()
    rows = []
    for b in (int(s) for s in a.batches.split(",")):
        x = torch.randn(b, 3, 512, 512, device=dev).clamp_(-1, 1)
        bx = _boxes(b)
        torch.cuda.reset_peak_memory_stats()
        with torch.inference_mode(), precision_context("cuda", a.precision):
            sec = timed(lambda: net(x, bx))
        row = {"batch": b, "precision": a.precision, "img_per_s": round(b / sec, 1),
               "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
               "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    # per-stage peaks at the largest batch
    stages = {}
    with torch.inference_mode(), precision_context("cuda", a.precision):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        taps = net.VggExtract(x.float())
        sync()
        stages["vgg"] = (torch.cuda.max_memory_allocated() - base) / 2**30
        torch.cuda.reset_peak_memory_stats()
        upd = net._swap_features(taps, [np.asarray(v) for v in bx], "fast", None)
        sync()
        stages["dictionary"] = (torch.cuda.max_memory_allocated() - base) / 2**30
        torch.cuda.reset_peak_memory_stats()
        fea = net.MSDilate(taps[3])
        for blk, u in zip((net.up0, net.up1, net.up2, net.up3), upd[::-1]):
            fea = blk(fea, u)
        net.up4(fea)
        sync()
        stages["decoder"] = (torch.cuda.max_memory_allocated() - base) / 2**30
    return {"rows": rows, "stage_peak_gib_above_start_at_largest_batch": {k: round(v, 2) for k, v in stages.items()},
            "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "")}


# -- throughput ---------------------------------------------------------------------------------------------
def _nets(dev: torch.device) -> dict[str, Callable[[], tuple[torch.nn.Module, Callable]]]:
    def dmdnet():
        from bench_dmdnet import random_weights

        from baselines.dmdnet.network import DMDNet

        net = random_weights(DMDNet()).to(dev).eval()
        loc = np.stack([b.astype(np.float32) for b in _boxes(1)])
        return net, lambda x: net(x, np.repeat(loc, x.shape[0], 0))

    def dfdnet():
        from bench_dfdnet import random_dictionaries, random_generator

        net = random_generator(random_dictionaries(512)).to(dev).eval()
        return net, lambda x: net(x, _boxes(x.shape[0]))

    def gfpgan():
        from baselines.gfpgan.arch import GFPGANv14

        net = GFPGANv14().to(dev).eval()
        return net, lambda x: net(x)

    def codeformer():
        from baselines.codeformer.arch import CodeFormerNet

        net = CodeFormerNet().to(dev).eval()
        return net, lambda x: net(x, w=0.5)

    return {"dmdnet": dmdnet, "dfdnet": dfdnet, "gfpgan": gfpgan, "codeformer": codeformer}


def cmd_throughput(a: argparse.Namespace) -> dict:
    dev = torch.device("cuda")
    configure_backend(dev)
    rows = []
    for name, build in _nets(dev).items():
        if a.only and name not in a.only.split(","):
            continue
        net, fwd = build()
        x = torch.randn(a.batch, 3, 512, 512, device=dev).clamp_(-1, 1)
        layouts = ["nchw", "channels_last"] + (["channels_last+compile"] if a.compile else [])
        for layout in layouts:
            if layout.startswith("channels_last"):
                convs_to_channels_last(net)
            if layout.endswith("compile"):
                net.compile_static()
            for prec in (a.precisions.split(",") if layout != "channels_last+compile" else ["bf16"]):
                try:
                    torch.cuda.reset_peak_memory_stats()
                    t0 = time.perf_counter()
                    with torch.inference_mode(), precision_context("cuda", prec):
                        sec = timed(lambda: fwd(x), repeats=a.repeats)
                    row = {"network": name, "layout": layout, "precision": prec, "batch": a.batch,
                           "img_per_s": round(a.batch / sec, 1), "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                           "wall_incl_warmup_s": round(time.perf_counter() - t0, 1)}
                except Exception as e:  # noqa: BLE001
                    row = {"network": name, "layout": layout, "precision": prec, "error": f"{type(e).__name__}: {e}"[:300]}
                print(json.dumps(row), flush=True)
                rows.append(row)
        del net
        torch.cuda.empty_cache()
    return {"rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("parity")
    p.add_argument("--only", default="", help="comma list of networks")
    p = sub.add_parser("dfdnet-k512")
    p.add_argument("--batches", default="1,8,32")
    p.add_argument("--precision", default="bf16")
    p = sub.add_parser("throughput")
    p.add_argument("--only", default="")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--precisions", default="fp32,tf32,bf16")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compile", action="store_true")
    for p in sub.choices.values():
        p.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device", file=sys.stderr)
        return 2
    res = {"parity": cmd_parity, "dfdnet-k512": cmd_dfdnet, "throughput": cmd_throughput}[a.cmd](a)
    res.update({"torch": torch.__version__, "device": torch.cuda.get_device_name()})
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=2))
    return 0 if res.get("all_pass", True) else 1


if __name__ == "__main__":
    sys.exit(main())
