"""``celebref demo``: the whole chain, offline, on a sample made at run time from images our dependencies ship.

The sample crawl has two real people: scikit-image's ``astronaut`` (Eileen Collins, NASA, public domain) and
matplotlib's ``grace_hopper.jpg`` (public domain), each with copies a real crawl would contain (a mirrored and a
re-encoded near duplicate, an exact copy), plus a non-face photo (scikit-image's ``coffee``) and a truncated file.
The chain is build -> degrade (dfdnet preset, seed 0) -> evaluate (every method and metric whose weights are
present; ``lq`` and ``bicubic`` always) -> report, each step through the same code as its CLI command.
The sample faces are small (90-190 px) and soft once aligned to 512, so the build's face-size and blur gates
are lowered for the demo (``--min-face-size 64 --min-blur 0``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from celebref.fsutil import atomic_write_bytes
from celebref.imageio import encode_image, read_image

DEMO_METRICS = ("psnr", "ssim", "lpips", "fid", "niqe", "identity", "lmd")


def _sample_photos() -> dict[str, np.ndarray]:
    import matplotlib
    import skimage.data

    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return {"astronaut": np.ascontiguousarray(skimage.data.astronaut()[:, :, :3]),
            "hopper": read_image(hopper), "coffee": np.ascontiguousarray(skimage.data.coffee()[:, :, :3])}


def make_sample_crawl(root: Path) -> dict[str, str]:
    """Write the demo crawl; returns {source_path: what it is} for the printout."""
    p = _sample_photos()
    files: dict[str, tuple[bytes, str]] = {}
    a, h = p["astronaut"], p["hopper"]
    files["Eileen Collins/astronaut.png"] = (encode_image(a, ".png"), "photo")
    files["Eileen Collins/astronaut_mirror.png"] = (encode_image(np.ascontiguousarray(a[:, ::-1]), ".png"), "mirrored copy")
    small = cv2.resize(a, (460, 460), interpolation=cv2.INTER_AREA)
    files["Eileen Collins/astronaut_small.jpg"] = (encode_image(small, ".jpg", 70), "resized JPEG copy")
    files["Grace Hopper/grace_hopper.jpg"] = (encode_image(h, ".jpg", 95), "photo")
    files["Grace Hopper/grace_hopper (1).jpg"] = (files["Grace Hopper/grace_hopper.jpg"][0], "exact copy")
    files["Grace Hopper/coffee.png"] = (encode_image(p["coffee"], ".png"), "not a face")
    png = encode_image(h, ".png")
    files["Grace Hopper/broken.png"] = (png[: len(png) // 3], "truncated file")
    for rel, (data, _) in files.items():
        atomic_write_bytes(root / rel, data)
    return {rel: what for rel, (_, what) in files.items()}


def available_methods() -> tuple[list[str], list[tuple[str, str]]]:
    """celebref's own registry methods whose declared weight files are present (offline check), and the others
    with what to fetch (plugin methods are not part of the demo)."""
    from baselines.registry import METHODS

    from celebref import weights

    ok, missing = [], []
    for entry in METHODS.entries(source="celebref"):
        if entry.name in ("lq",):
            continue
        absent = [w for w in entry.weights if not weights.is_available(w)]
        if absent:
            missing.append((entry.name, ", ".join(absent)))
        else:
            ok.append(entry.name)
    return ok, missing


def run_demo(out: Path, log=print) -> Path:
    from .cli import main as cli

    out = Path(out)
    crawl = out / "crawl"
    if crawl.exists():
        shutil.rmtree(crawl)
    what = make_sample_crawl(crawl)
    log(f"[1/5] sample crawl: {len(what)} files in {crawl}")
    steps = [
        ("[2/5] build", ["build", str(crawl), "--out", str(out / "dataset"), "--backend", "dlib", "--min-face-size", "64", "--min-blur", "0",
                         "--min-per-identity", "1", "--test-fraction", "0"]),
        ("[3/5] degrade", ["degrade", "--preset", "dfdnet", "--seed", "0", "--input", str(out / "dataset"),
                           "--out", str(out / "testset")]),
    ]
    for title, argv in steps:
        log(f"{title}: celebref {' '.join(argv)}")
        if cli(argv) != 0:
            raise SystemExit(f"demo step failed: celebref {' '.join(argv)}")
    methods, missing_methods = available_methods()
    argv = ["evaluate", "--data", str(out / "testset"), "--methods", ",".join(methods), "--metrics", ",".join(DEMO_METRICS),
            "--skip-unavailable", "--device", "auto", "--out", str(out / "run")]
    log(f"[4/5] evaluate: celebref {' '.join(argv)}")
    if cli(argv) not in (0, 3):  # 3: finished with skipped metrics/methods (missing weights), listed below
        raise SystemExit("demo step failed: evaluate")
    log("[5/5] report")
    if cli(["report", str(out / "run")]) != 0 or cli(["report", str(out / "dataset")]) != 0:
        raise SystemExit("demo step failed: report")
    index = out / "run" / "report" / "index.html"
    log("")
    log(f"evaluation report: {index}")
    log(f"curation report:   {out / 'dataset' / 'report' / 'index.html'}")
    import json

    skipped = json.loads((out / "run" / "run.json").read_text(encoding="utf-8")).get("skipped", [])
    if missing_methods or skipped:
        log("skipped for missing weights (fetch with `celebref weights fetch NAME`, or see `celebref weights list`):")
        for name, files in missing_methods:
            log(f"  method {name}: needs {files}")
        for s in skipped:
            log(f"  {s['kind']} {s['name']}: {s['reason'].splitlines()[0]}")
    return index
