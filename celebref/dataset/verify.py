"""``celebref verify``: audit an existing dataset in CelebRef-HQ's layout without changing it.

Input: ``<root>/images/<identity>/<n>.png`` (our builds) or ``<root>/<identity>/<n>.png`` (the released
CelebRef-HQ), with optional ``<root>/landmarks/<identity>/<n>.png.txt``. Every image is analysed as an aligned face
(embedding of the aligned face, blur, pose from the landmark file or detected landmarks, perceptual hashes, and the
reflect-padding check below), then the build's own decision stages run on it (exact and near duplicates, dominant
identity and outliers per folder, collisions between folders), with the minimum face size and the per-identity
limits switched off (the source size of an aligned face is unknown). The report (``manifest``, ``collisions.csv``,
``distances.parquet``, ``verify.json``) is written to another folder.

Reflect-padding artifact: when a face touches the photo's edge, FFHQ-style alignment pads the photo by mirroring
it and blurs the pad, so the aligned face shows a band, parallel to a border, that is a *blurred mirror image* of the
content just inside it. :func:`reflect_padding_score` looks for it on the grayscale image downscaled to 256 px: for
each border, each 64-px segment along it and each candidate mirror-line depth ``k`` (8..100 px), it correlates the
outer band ``[k-w, k)`` (mirrored, ``w = min(k, 24)``) with the Gaussian-blurred (sigma 5 px) inner band ``[k, k+w)``
(``reflect`` and ``symmetric`` conventions), over textured bands (std >= 3 grey levels). A segment matches when the
best correlation is >= 0.9 at a depth >= 12 px and the outer band is much less sharp than the inner one (Laplacian
energy ratio < 0.35: the pad is blurred); the image is flagged ``reflect_padding`` when at least 3 of the 4 segments
of one border match at the same depth (+-4 px), i.e. along a straight line. Measured here: faces aligned with our
FFHQ alignment from photos cropped through the face are flagged; some released CelebRef-HQ faces are too.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pandas as pd

from ..engine import Engine
from ..errors import ConfigError, ImageReadError
from ..face.landmark_io import LandmarkFileError, read_landmarks
from ..fsutil import atomic_write_json, atomic_write_text, sha256_file
from ..imageio import list_images, read_image
from ..progress import progress
from ..tabular import write_table
from . import quality as Q
from .cache import StageCache, settings_key
from .config import VerifyConfig
from .decide import decide
from .dedup import phash
from .manifest import distance_sample, manifest_frame, manifest_row
from .records import funnel
from .stages import init_worker, use_backend, worker_backend

VERIFY_VERSION = 1
SIDES = ("top", "bottom", "left", "right")


def _side_view(g: np.ndarray, side: str) -> np.ndarray:
    """Rotate so that ``side`` becomes the top rows."""
    if side == "top":
        return g
    if side == "bottom":
        return g[::-1]
    if side == "left":
        return g.T
    return g.T[::-1]


def reflect_padding_score(img: np.ndarray, seg: int = 64, k_min: int = 8, k_max: int = 100, w_max: int = 24,
                          sigma: float = 5.0, min_std: float = 3.0, corr: float = 0.9, sharp: float = 0.35) -> dict:
    """Reflect-padding evidence (see the module docstring). Returns ``{"flag": bool, "side": border or "",
    "depth": mirror-line depth in 256-px units, "segments": matching segments on that side, "score": their mean
    correlation}``."""
    g = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY).astype(np.float32)
    g = cv2.resize(g, (256, 256), interpolation=cv2.INTER_AREA)
    gb = cv2.GaussianBlur(g, (0, 0), sigma)
    lap = cv2.Laplacian(g, cv2.CV_32F, ksize=1) ** 2
    best = {"flag": False, "side": "", "depth": 0, "segments": 0, "score": 0.0}
    nseg = 256 // seg
    for side in SIDES:
        v, vb, vl = _side_view(g, side), _side_view(gb, side), _side_view(lap, side)
        top_c = np.zeros(nseg)
        top_k = np.zeros(nseg, dtype=np.int64)
        top_r = np.ones(nseg)
        for k in range(k_min, k_max + 1):
            w = min(k, w_max)
            outer = v[k - w : k, : nseg * seg][::-1].reshape(w, nseg, seg)
            a = outer - outer.mean(axis=(0, 2), keepdims=True)
            sa = a.std(axis=(0, 2))
            for shift in (1, 0):  # reflect (edge row not repeated) / symmetric
                inner = vb[k + shift : k + shift + w, : nseg * seg].reshape(w, nseg, seg)
                b = inner - inner.mean(axis=(0, 2), keepdims=True)
                sb = b.std(axis=(0, 2))
                ok = (sa >= 1e-3) & (sb >= min_std)
                c = np.where(ok, (a * b).mean(axis=(0, 2)) / np.maximum(sa * sb, 1e-12), 0.0)
                better = c > top_c
                if better.any():
                    lo = vl[k - w : k, : nseg * seg].reshape(w, nseg, seg).mean(axis=(0, 2))
                    hi = vl[k : k + w, : nseg * seg].reshape(w, nseg, seg).mean(axis=(0, 2))
                    top_c = np.where(better, c, top_c)
                    top_k = np.where(better, k, top_k)
                    top_r = np.where(better, lo / np.maximum(hi, 1e-6), top_r)
        hits = [(float(top_c[i]), int(top_k[i])) for i in range(nseg) if top_c[i] >= corr and top_r[i] < sharp and top_k[i] >= 12]
        if hits:
            med = float(np.median([h[1] for h in hits]))
            agree = [h for h in hits if abs(h[1] - med) <= 4]
            n = len(agree)
            if n > best["segments"]:
                best.update(side=side, depth=int(round(med)), segments=n, score=round(float(np.mean([h[0] for h in agree])), 6))
    best["flag"] = best["segments"] >= 3
    return best


def _layout(root: Path) -> tuple[Path, Path | None]:
    if (root / "images").is_dir():
        return root / "images", (root / "landmarks") if (root / "landmarks").is_dir() else None
    return root, None


def analyze_aligned(path: Path, landmarks_path: Path | None, be) -> dict:
    """Analysis record of an aligned face image in the build's record structure (one face)."""
    try:
        img = read_image(path)
    except ImageReadError as e:
        return {"status": "unreadable", "error": e.reason}
    h, w = img.shape[:2]
    work = img if (h, w) == (512, 512) else cv2.resize(img, (512, 512), interpolation=cv2.INTER_AREA if h > 512 else cv2.INTER_CUBIC)
    lm, how = None, ""
    if landmarks_path is not None and landmarks_path.is_file():
        try:
            lm = read_landmarks(landmarks_path) * (512.0 / w)
            how = "file"
        except LandmarkFileError:
            lm = None
    if lm is None:
        lm = be.detect_landmarks68(work)
        how = "detected" if lm is not None else ""
    emb = np.asarray(be.embed_aligned(work), dtype=np.float32)
    blur = Q.blur_variance(work)
    pad = reflect_padding_score(work)
    face = {"significant": True, "box": [0.0, 0.0, float(w - 1), float(h - 1)], "score": float("nan"),
            "face_size": float(max(h, w)), "blur_var": round(blur, 4),
            "yaw": round(Q.yaw_degrees(lm), 3) if lm is not None else 0.0,
            "quality": round(Q.quality_score(512.0, blur), 6), "embedding": [float(v) for v in emb],
            "phash": phash(work), "phash_mirror": phash(work[:, ::-1]), "landmarks_aligned_from": how,
            "reflect_padding": pad["flag"], "reflect_padding_score": pad["score"], "reflect_side": pad["side"],
            "reflect_depth": pad["depth"], "reflect_segments": pad["segments"]}
    if lm is not None:
        face["landmarks_aligned"] = np.asarray(lm).round(3).tolist()
    return {"status": "ok", "width": int(w), "height": int(h), "faces": [face]}


def verify_batch(tasks: list[tuple[str, str | None]]) -> list[dict]:
    """Engine function: :func:`analyze_aligned` of each ``(image path, landmark path or None)``."""
    be = worker_backend()
    return [analyze_aligned(Path(p), Path(lm) if lm else None, be) for p, lm in tasks]


def verify_dataset(cfg: VerifyConfig, log: Callable[[str], None] | None = None, engine: str | Engine = "local",
                   workers: int = 1) -> dict:
    """Audit ``cfg.dataset``; writes the report to ``cfg.out`` (locked while it runs) and returns the
    ``verify.json`` content. ``engine``: where the per-image analysis and the per-folder checks run (a name, with
    ``workers`` processes for ``local``, or an :class:`~celebref.engine.Engine`, used as it is and not closed)."""
    log = log or (lambda s: print(s, file=sys.stderr))
    root, out = Path(cfg.dataset).resolve(), Path(cfg.out).resolve()
    if not root.is_dir():
        raise ConfigError(f"dataset folder {str(root)!r} not found")
    if out == root or root in out.parents:
        raise ConfigError("out must be outside the audited dataset (verify never changes it)")
    img_root, lm_root = _layout(root)
    paths = [p for p in list_images(img_root) if len(p.relative_to(img_root).parts) >= 2]
    if not paths:
        raise ConfigError(f"no identity folders with images under {str(img_root)!r}")
    from ..lock import lock_folder

    from .pipeline import engine_by_name

    with lock_folder(out, command="celebref verify"), \
            (contextlib.nullcontext(engine) if isinstance(engine, Engine) else engine_by_name(engine, workers)) as eng:
        return _audit(cfg, root, out, img_root, lm_root, paths, log, eng)


def _audit(cfg: VerifyConfig, root: Path, out: Path, img_root: Path, lm_root: Path | None, paths: list[Path],
           log: Callable[[str], None], engine: Engine) -> dict:
    from ..face import get_backend

    be = get_backend(cfg.backend)
    log(f"face backend: {be.name}")
    # an audit flags (decision "rejected") and never merges: collisions are reported as the smaller folder's files
    th = {**cfg.identity_thresholds(be), "min_face_size": 0.0, "min_blur": float(cfg.min_blur),
          "max_yaw": float(cfg.max_yaw), "min_per_identity": 1, "max_per_identity": 10**9, "on_collision": "reject"}
    cache = StageCache(out / "cache", enabled=cfg.use_cache)
    key = {"version": VERIFY_VERSION, "backend": {"name": be.name, "models": dict(be.models)}}
    records, analyses, todo = [], {}, {}
    for p in progress(paths, "hash"):
        rel = p.relative_to(img_root)
        sha = sha256_file(p)
        lmp = (lm_root / rel.parent / (rel.name + ".txt")) if lm_root else None
        ck = settings_key("verify", sha, {**key, "landmarks": sha256_file(lmp) if lmp and lmp.is_file() else ""})
        an = cache.get("verify", ck)
        if an is None:
            todo.setdefault(ck, (str(p), str(lmp) if lmp else None))
        else:
            analyses[ck] = an
        records.append({
            "source_path": p.relative_to(root).as_posix(), "sha256": sha, "_key": ck, "identity_folder": rel.parts[0],
            "assigned_folder": rel.parts[0], "file_size": p.stat().st_size, "is_primary": True, "face_index": None,
            "n_faces": 0, "decision": "", "reason": "", "error": "", "duplicate_of": "", "duplicate_distance": None,
            "duplicate_hash_bits": None, "identity_distance": None, "collision_with": "", "same_image_in": "",
            "override": "", "flags": [], "_abs": str(p), "identity_id": rel.parts[0],
        })
    use_backend(be)
    for res in engine.map(verify_batch, list(todo.values()), keys=list(todo), desc="verify",
                          initializer=init_worker, initargs=(be.name,)):
        an = res.value if res.ok else {"status": "error", "error": f"analysis failed ({res.error})"}
        analyses[res.key] = an
        if res.ok:
            cache.put("verify", res.key, an)
    # decide() looks analyses up by sha256; per-record keys keep landmark files apart
    by_sha = {}
    for r in records:
        by_sha.setdefault(r["sha256"], analyses[r["_key"]])
    result = decide(records, by_sha, th, None, engine=engine)
    rows = []
    n_pad = 0
    for r in records:
        an = by_sha[r["sha256"]]
        f = an["faces"][0] if an.get("status") == "ok" else {}
        if f:
            r["face_index"] = 0
            if f["reflect_padding"]:
                r["flags"].append("reflect_padding")
                n_pad += 1
            if (an["width"], an["height"]) != (512, 512):
                r["flags"].append("not_512x512")
            if not f.get("landmarks_aligned_from"):
                r["flags"].append("no_landmarks")
        row = manifest_row(r, an, r["face_index"], True, be.name)
        row.update({"identity_id": r["identity_folder"], "output_path": "", "split": "",
                    "reflect_padding_score": f.get("reflect_padding_score"), "reflect_side": f.get("reflect_side", ""),
                    "reflect_depth": f.get("reflect_depth")})
        rows.append(row)
    man = manifest_frame(rows)
    man["reflect_padding_score"] = pd.to_numeric(man["reflect_padding_score"], errors="coerce").astype("float64")
    man["reflect_depth"] = pd.to_numeric(man["reflect_depth"], errors="coerce").astype("Int64")
    out.mkdir(parents=True, exist_ok=True)
    write_table(man, out / "manifest")
    col = pd.DataFrame([{"folder_a": c.folder_a, "folder_b": c.folder_b, "distance": round(c.distance, 6), "suggestion": c.suggestion}
                        for c in result["collisions"]], columns=["folder_a", "folder_b", "distance", "suggestion"])
    atomic_write_text(out / "collisions.csv", col.to_csv(index=False, lineterminator="\n"))
    for r in records:
        if r["decision"] == "accepted":
            r["identity_id"] = r["identity_folder"]
    write_table(distance_sample(records, by_sha, 0), out / "distances", csv=False)
    reasons: dict[str, int] = {}
    for r in records:
        if r["reason"]:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    meta = {"dataset": str(root), "backend": key["backend"], "thresholds": th, "images": len(records),
            "accepted": sum(r["decision"] == "accepted" for r in records), "rejected": sum(r["decision"] == "rejected" for r in records),
            "funnel": funnel(records), "reasons": dict(sorted(reasons.items())), "reflect_padding": n_pad,
            "identities": {f: result["identities"][f] for f in sorted(result["identities"])},
            "collisions": len(result["collisions"])}
    atomic_write_json(out / "verify.json", meta)
    log(f"verified {len(records)} images in {len(result['identities'])} identities: accepted {meta['accepted']}, "
        f"flagged {meta['rejected']} ({', '.join(f'{k} {v}' for k, v in meta['reasons'].items()) or 'none'}); "
        f"reflect-padding artifacts: {n_pad}; folder collisions: {meta['collisions']}")
    return meta
