"""Synthetic evaluate run folders and build outputs of any size, for report tests and screenshots.

``make_eval_run(root, n)`` writes what ``celebref evaluate`` writes (restored images, per_image.parquet/csv,
summary.csv through :func:`celebref.app.summary.summarize`, run.json) for ``n`` images and four methods
(lq, bicubic, dmdnet, codeformer) and a landmark file per image (for the eye/mouth crops), with realistic
degradation factors (blur sigma and noise continuous, scale
from two values, JPEG quality integers), image 0 left untouched by the degradation (LQ == GT: PSNR = inf)
and one codeformer failure. ``make_build_output(root, n)`` writes a build output (build.json, manifest,
identities.csv, distances.parquet, collisions.csv, images) for ``n`` crawl files with every kind of decision.
No model runs: the numbers are drawn, seeded, so the same call writes the same files.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd

from celebref.imageio import write_image
from celebref.tabular import write_table

METHODS = ("lq", "bicubic", "dmdnet", "codeformer")


def _img(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    return cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 2)


def _landmarks_64(rng: np.random.Generator) -> np.ndarray:
    """68 points (x, y) laid out like a face in a 64x64 image: eyes (36-47) near y = 24, mouth (48-67) near y = 46."""
    pts = np.zeros((68, 2), np.float32)
    pts[:36] = np.stack([np.linspace(8, 56, 36), 30 + 20 * np.sin(np.linspace(0, np.pi, 36))], 1)
    for e, cx in ((36, 22.0), (42, 42.0)):
        a = np.linspace(0, 2 * np.pi, 6, endpoint=False)
        pts[e:e + 6] = np.stack([cx + 5 * np.cos(a), 24 + 2 * np.sin(a)], 1)
    a = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    pts[48:] = np.stack([32 + 9 * np.cos(a), 46 + 3 * np.sin(a)], 1)
    return pts + rng.normal(0, 0.3, pts.shape).astype(np.float32)


def _metric(name: str, columns: dict[str, bool], labels: dict[str, str] | None = None, dataset: bool = False):
    ns = SimpleNamespace(name=name, columns=tuple(columns), higher_is_better=dict(columns), dataset_level=dataset)
    if labels:
        ns.column_labels = lambda: dict(labels)
    return ns


def _face_desc(name: str, columns: list[str], labels: dict[str, str]) -> dict:
    return {"name": name, "columns": columns, "labels": labels,
            "face": {"backend": "dlib", "models": {"embedding": "dlib_face_recognition_resnet_model_v1.dat@sha256:55533b28a958"},
                     "selection": "auto -> dlib (insightface unavailable: missing w600k_r50.onnx)"}}


def make_eval_run(root: Path, n: int, seed: int = 0) -> Path:
    """An evaluate run folder ``root/run`` over ``n`` images (``root/gt``, ``root/lq``); returns its path."""
    rng = np.random.default_rng(seed)
    run = root / "run"
    ids = [f"{k // 4:05d}/{k % 4}" for k in range(n)]
    factors = {
        "blur_sigma": np.round(rng.uniform(0.2, 10.0, n), 3), "scale": rng.choice([4.0, 8.0], n),
        "noise_sigma": np.round(rng.uniform(0.0, 15.0, n), 3), "jpeg_quality": rng.integers(60, 101, n).astype(float)}
    for f in factors.values():
        f[0] = np.nan  # image 0: the preset drew no degradation at all
    id_labels = {"identity_cos": "ID(dlib)", "identity_angle": "Deg(dlib)"}
    from celebref.face.landmark_io import write_landmarks

    rows = []
    for k, i in enumerate(ids):
        gt = _img(rng)
        lq = gt if k == 0 else cv2.GaussianBlur(gt, (0, 0), 1.5)
        write_image(root / "gt" / f"{i}.png", gt)
        write_image(root / "lq" / f"{i}.png", lq)
        write_landmarks(root / "landmarks" / f"{i}.txt", _landmarks_64(rng))
        base = 32.0 - 1.1 * np.nan_to_num(factors["blur_sigma"][k]) - 0.3 * np.nan_to_num(factors["noise_sigma"][k])
        for j, m in enumerate(METHODS):
            failed = m == "codeformer" and k == min(1, n - 1)
            out = "" if failed or m == "lq" else f"restored/{m}/{i}.png"
            if out:
                write_image(run / out, cv2.addWeighted(gt, 0.6, lq, 0.4, 0))
            gain = {"lq": 0.0, "bicubic": 0.2, "dmdnet": 2.0, "codeformer": 1.4}[m]
            psnr = float("inf") if (k == 0 and m == "lq") else base + gain + rng.normal(0, 1.0)
            cos = float(np.clip(0.70 + 0.04 * j + rng.normal(0, 0.05), -1, 1))
            vals = {"psnr": psnr, "ssim": float(np.clip(0.55 + 0.05 * j + rng.normal(0, 0.05), 0, 1)),
                    "identity_cos": cos, "identity_angle": float(np.degrees(np.arccos(cos))),
                    "lmd": float(abs(rng.normal(4.0 - 0.5 * j, 1.0)))}
            if failed:
                vals = {c: float("nan") for c in vals}
            rows.append({"id": i, "identity": i.split("/")[0], "method": m, "status": "error" if failed else "ok",
                         "reason": "no face detected in the LQ input" if failed else "", "restore_seconds": 0.1,
                         "output_path": out if m != "lq" else f"restored/lq/{i}.png",
                         "lq_path": str((root / "lq" / f"{i}.png").resolve()),
                         "gt_path": str((root / "gt" / f"{i}.png").resolve()),
                         "landmarks_path": str((root / "landmarks" / f"{i}.txt").resolve()), **vals,
                         **{f"deg_{f}": v[k] for f, v in factors.items()}})
            if m == "lq":
                write_image(run / "restored" / "lq" / f"{i}.png", lq)
    per = pd.DataFrame(rows)
    write_table(per, run / "per_image")
    metrics = [_metric("psnr", {"psnr": True}), _metric("ssim", {"ssim": True}),
               _metric("identity", {"identity_cos": True, "identity_angle": False}, id_labels),
               _metric("lmd", {"lmd": False}, {"lmd": "LMD(dlib)"}), _metric("fid", {"fid": False}, dataset=True)]
    ok = per[per["status"] == "ok"].groupby("method", sort=False).size()
    dataset_rows = [{"method": m, "metric": "fid", "value": 60.0 - 5 * j if ok[m] >= 2 else float("nan"), "n": int(ok[m])}
                    for j, m in enumerate(METHODS)]
    from celebref.app.summary import summarize
    from evaluation.profiles import get_profile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FID from < 2048 images
        summary = summarize(per, metrics, dataset_rows)
    summary.to_csv(run / "summary.csv", index=False, lineterminator="\n")
    meta = {
        "command": f"celebref evaluate --data {root / 'testset'} --methods bicubic,dmdnet,codeformer --out {run}",
        "profile": get_profile(None).describe(),
        "metrics": [{"name": "psnr", "columns": ["psnr"]}, {"name": "ssim", "columns": ["ssim"]},
                    _face_desc("identity", ["identity_cos", "identity_angle"], id_labels),
                    _face_desc("lmd", ["lmd"], {"lmd": "LMD(dlib)"}), {"name": "fid", "columns": ["fid"]}],
        "methods": [{"label": "lq", "name": "lq", "params": {}, "weights": {}},
                    {"label": "bicubic", "name": "bicubic", "params": {"scale": "auto"}, "weights": {}},
                    {"label": "dmdnet", "name": "dmdnet", "params": {"mode": "generic"}, "weights": {"dmdnet": "ab" * 32}},
                    {"label": "codeformer", "name": "codeformer", "params": {"w": 0.5}, "weights": {"codeformer": "cd" * 32}}],
        "skipped": [], "data": {"kind": "degrade-manifest", "path": str(root / "testset"), "preset": "dfdnet", "seed": 0,
                                "n_images": n},
        "device": "cpu", "precision": "fp32", "versions": {"celebref": "test", "python": "3"},
    }
    (run / "run.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return run


REASONS = ("no_face", "blurry", "near_duplicate", "identity_outlier", "unreadable", "face_too_small")


def make_build_output(root: Path, n: int, seed: int = 0) -> Path:
    """A build output folder ``root/ds`` over a crawl ``root/crawl`` of ``n`` files; returns its path."""
    rng = np.random.default_rng(seed)
    crawl, out = root / "crawl", root / "ds"
    people = max(2, n // 10)
    rows, per_id = [], {}
    for k in range(n):
        person = k if k < people else int(rng.integers(0, people) * rng.random())  # uneven: a few large folders
        folder = f"Person {person:02d}"
        src = f"{folder}/photo_{k:03d}.png"
        write_image(crawl / src, _img(rng, 96))
        # the first file of each person is accepted; of the others, one in three is rejected
        reason = "" if k < people or k % 3 else REASONS[(k // 3) % len(REASONS)]
        dist = float(abs(rng.normal(0.62 if reason == "identity_outlier" else 0.25, 0.06)))
        row = {"source_path": src, "sha256": f"{k:064x}", "identity_folder": folder, "assigned_folder": folder,
               "face_index": 0, "n_faces": 1, "is_primary": True, "decision": "rejected" if reason else "accepted",
               "reason": reason, "duplicate_of": f"{folder}/photo_{person:03d}.png" if reason == "near_duplicate" else "",
               "identity_id": "", "identity_distance": np.nan if reason in ("no_face", "unreadable") else dist,
               "output_path": "", "backend": "dlib"}
        if not reason:
            ident = f"{person:05d}"
            row["identity_id"] = ident
            row["output_path"] = f"images/{ident}/{per_id.setdefault(ident, 0)}.png"
            per_id[ident] += 1
            write_image(out / row["output_path"], _img(rng, 64))
        rows.append(row)
    man = pd.DataFrame(rows)
    write_table(man, out / "manifest")
    pd.DataFrame([{"identity_id": i, "folder_name": f"Person {int(i):02d}", "count": c, "n_references": c, "n_probes": 0,
                   "split": "train"} for i, c in sorted(per_id.items())]).to_csv(out / "identities.csv", index=False)
    acc = man[man["decision"] == "accepted"]
    sizes = acc.groupby("identity_id").size()
    n_same = int((sizes * (sizes - 1) // 2).sum())
    n_diff = len(acc) * (len(acc) - 1) // 2 - n_same
    same = [abs(rng.normal(0.3, 0.06)) for _ in range(min(n_same, 400))]
    diff = [abs(rng.normal(0.8, 0.08)) for _ in range(min(n_diff, 600))]
    pd.DataFrame({"kind": ["same"] * len(same) + ["different"] * len(diff), "distance": same + diff}).to_parquet(out / "distances.parquet")
    coll = "folder_a,folder_b,distance,suggestion\n" + ("Person 00,Person 01,0.3312,review\n" if n >= 20 else "")
    (out / "collisions.csv").write_text(coll)
    reasons = man[man["decision"] == "rejected"]["reason"].value_counts().to_dict()
    funnel = {"raw": n, "decoded": n - reasons.get("unreadable", 0), "faces": n - reasons.get("unreadable", 0) - reasons.get("no_face", 0)}
    funnel["quality"] = funnel["faces"] - reasons.get("blurry", 0) - reasons.get("face_too_small", 0)
    funnel["identity"] = funnel["quality"] - reasons.get("identity_outlier", 0)
    funnel["dedup"] = funnel["final"] = funnel["identity"] - reasons.get("near_duplicate", 0)
    meta = {"accepted": int(len(acc)), "rejected": int(n - len(acc)), "inputs": n, "n_identities": len(per_id),
            "crawl": str(crawl), "command": f"celebref build {crawl} --out {out} --backend dlib",
            "backend": {"name": "dlib", "models": {"detector": "dlib-20.0.1:frontal_face_detector(hog);upsample=0",
                                                   "embedding": "dlib_face_recognition_resnet_model_v1.dat@sha256:55533b28a958"}},
            "thresholds": {"identity_threshold": 0.4, "collision_threshold": 0.4, "min_face_size": 64.0, "min_blur": 0.0,
                           "max_yaw": 70.0, "near_dup_distance": 0.2, "min_per_identity": 1, "max_per_identity": 21},
            "funnel": funnel, "reasons": {k: int(v) for k, v in sorted(reasons.items())}, "seed": seed}
    (out / "build.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return out


def make_real_world_run(root: Path, n: int, seed: int = 0, threshold: float | None = None) -> Path:
    """An evaluate run ``root/run`` on ``n`` real photos without ground truth (``gt_path`` empty): methods lq,
    codeformer and gfpgan, NIQE and identity to the input (``identity_input_cos``, drawn so that some faces fall
    below 0.30) per image, FID against named reference statistics; ``threshold``: recorded as run.json
    ``low_identity_threshold``."""
    rng = np.random.default_rng(seed)
    run = root / "run"
    methods = ("lq", "codeformer", "gfpgan")
    rows = []
    for k in range(n):
        i = f"photo_{k:03d}"
        lq = _img(rng, 48)
        write_image(root / "lq" / f"{i}.png", lq)
        for m in methods:
            out = f"restored/{m}/{i}.png"
            write_image(run / out, lq if m == "lq" else cv2.resize(lq, (96, 96), interpolation=cv2.INTER_CUBIC))
            cos = float("nan") if m == "lq" else float(np.clip(rng.uniform(0.1, 0.9), -1, 1))
            rows.append({"id": i, "identity": "", "method": m, "status": "ok", "reason": "", "restore_seconds": 0.1,
                         "output_path": out, "lq_path": str((root / "lq" / f"{i}.png").resolve()), "gt_path": "",
                         "landmarks_path": "", "niqe": float(rng.uniform(3.0, 8.0)), "identity_input_cos": cos})
    per = pd.DataFrame(rows)
    write_table(per, run / "per_image")
    labels = {"identity_input_cos": "ID-in(dlib)"}
    metrics = [_metric("niqe", {"niqe": False}), _metric("identity-input", {"identity_input_cos": True}, labels),
               _metric("fid", {"fid": False}, dataset=True)]
    dataset_rows = [{"method": m, "metric": "fid", "value": 80.0 - 10 * j, "n": n} for j, m in enumerate(methods)]
    from celebref.app.summary import summarize
    from evaluation.profiles import get_profile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = summarize(per, metrics, dataset_rows)
    summary.to_csv(run / "summary.csv", index=False, lineterminator="\n")
    meta = {"command": f"celebref evaluate --lq {root / 'lq'} --methods codeformer,gfpgan --out {run}",
            "profile": get_profile(None).describe(),
            "metrics": [{"name": "niqe", "columns": ["niqe"]},
                        _face_desc("identity-input", ["identity_input_cos"], labels), {"name": "fid", "columns": ["fid"]}],
            "methods": [{"label": m, "name": m, "params": {}, "weights": {}} for m in methods], "skipped": [],
            "data": {"kind": "lq-folder", "path": str(root / "lq"), "n_images": n},
            "fid_reference": {"name": "ffhq-512 (GFPGAN inception statistics)", "n": 70000},
            "dataset_metrics": dataset_rows, "device": "cpu", "precision": "fp32"}
    if threshold is not None:
        meta["low_identity_threshold"] = threshold
    (run / "run.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return run
