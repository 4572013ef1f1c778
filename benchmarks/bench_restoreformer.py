"""CPU time per image of our RestoreFormer / RestoreFormer++ networks against the official ones, same process.

    python benchmarks/bench_restoreformer.py --gfpgan /path/to/GFPGAN --rfpp /path/to/RestoreFormerPlusPlus
    python benchmarks/bench_restoreformer.py --gfpgan ... --rfpp ... --repeats 5 --threads 2 --size 512

The official code is never part of celebref: pass a checkout of TencentARC/GFPGAN (its
``gfpgan/archs/restoreformer_arch.py`` is imported by path; it needs only torch and numpy) and/or of
wzhouxiff/RestoreFormerPlusPlus (``RestoreFormer/modules/vqvae/vqvae_arch.py``); a path to the file itself
works too. A network whose official source is not given is skipped.

Both networks get the same deterministic random weights (the speed does not depend on the values) and the
same input batch; outputs are checked to agree (max |diff| printed) and the codebook indices to be
identical. Runs alternate ours / official so that load changes on a shared machine hit both alike. Reported
per network: median process CPU seconds and wall seconds per image over ``--repeats`` runs (after one
warm-up each) and the ratio ours / official (the acceptance: <= 1.1).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baselines.restoreformer.arch import RESTOREFORMER, RESTOREFORMER_PP, RestoreFormerNet  # noqa: E402

OFFICIAL_FILES = {"restoreformer": "gfpgan/archs/restoreformer_arch.py",
                  "restoreformer++": "RestoreFormer/modules/vqvae/vqvae_arch.py"}


def import_by_path(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"error: cannot import {path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def official_net(which: str, source: str) -> torch.nn.Module:
    path = Path(source)
    if path.is_dir():
        path = path / OFFICIAL_FILES[which]
    if not path.is_file():
        raise SystemExit(f"error: {path} not found (pass a checkout or the file {OFFICIAL_FILES[which]})")
    mod = import_by_path(path, f"_official_{which.replace('+', 'p')}")
    with contextlib.redirect_stdout(io.StringIO()):  # the official decoder prints its z shape
        if which == "restoreformer":
            return mod.RestoreFormer()  # GFPGANer(arch="RestoreFormer")
        return mod.VQVAEGANMultiHeadTransformer(head_size=4, ex_multi_scale_num=1)  # inference.py RestoreFormer++


def random_state(net: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in net.state_dict().items():
        fan_in = v[0].numel() if v.dim() > 1 else 1
        out[k] = torch.randn(v.shape, generator=g) / fan_in ** 0.5 if v.dim() > 1 else 1 + 0.1 * torch.randn(v.shape, generator=g)
    return out


def timed(fn) -> tuple[float, float, object]:
    c0, w0 = time.process_time(), time.perf_counter()
    res = fn()
    return time.process_time() - c0, time.perf_counter() - w0, res


def bench(which: str, source: str, batch: int, size: int, repeats: int) -> dict:
    official = official_net(which, source).eval()
    ours = RestoreFormerNet(RESTOREFORMER if which == "restoreformer" else RESTOREFORMER_PP).eval()
    sd = random_state(ours)
    official.load_state_dict(sd, strict=True)
    ours.load_state_dict(sd, strict=True)
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    runs = {"ours": lambda: ours(x, return_extras=True), "official": lambda: official(x)[0]}
    times: dict[str, list[tuple[float, float]]] = {"ours": [], "official": []}
    with torch.inference_mode():
        (o_out, o_ex), off_out = runs["ours"](), runs["official"]()  # warm-up, and the agreement check
        off_idx = official.encode(x)[2][2][:, 0].view(batch, -1)
        for _ in range(repeats):
            for key in ("ours", "official"):
                cpu, wall, _ = timed(runs[key])
                times[key].append((cpu / batch, wall / batch))
    med = {k: (statistics.median(c for c, _ in v), statistics.median(w for _, w in v)) for k, v in times.items()}
    return {
        "network": which, "batch": batch, "size": size, "repeats": repeats, "threads": torch.get_num_threads(),
        "max_abs_diff": float((o_out - off_out).abs().max()), "indices_identical": bool(torch.equal(o_ex["indices"], off_idx)),
        "ours_cpu_s_per_image": med["ours"][0], "official_cpu_s_per_image": med["official"][0],
        "ours_wall_s_per_image": med["ours"][1], "official_wall_s_per_image": med["official"][1],
        "cpu_ratio": med["ours"][0] / med["official"][0], "wall_ratio": med["ours"][1] / med["official"][1],
        "runs": times,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gfpgan", help="TencentARC/GFPGAN checkout (or its restoreformer_arch.py)")
    p.add_argument("--rfpp", help="wzhouxiff/RestoreFormerPlusPlus checkout (or its vqvae_arch.py)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=512, help="input side (512: the released configuration)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    if not (args.gfpgan or args.rfpp):
        p.error("give --gfpgan and/or --rfpp (paths to the official code)")
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for which, source in (("restoreformer", args.gfpgan), ("restoreformer++", args.rfpp)):
        if source:
            r = bench(which, source, args.batch, args.size, args.repeats)
            results.append(r)
            print(f"{which:16s} cpu s/img ours {r['ours_cpu_s_per_image']:.3f} official {r['official_cpu_s_per_image']:.3f} "
                  f"ratio {r['cpu_ratio']:.3f} | wall ours {r['ours_wall_s_per_image']:.3f} official "
                  f"{r['official_wall_s_per_image']:.3f} ratio {r['wall_ratio']:.3f} | max|d| {r['max_abs_diff']:.3g} "
                  f"indices identical {r['indices_identical']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0 if all(r["indices_identical"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
