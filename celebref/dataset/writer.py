"""Write a build in CelebRef-HQ's layout (see docs/FORMATS.md, ``celebref build`` output).

* identity ids: 5-digit, in sorted order of the (assigned) person-folder names of the identities kept;
* image numbers ``n``: 0.. in sorted ``source_path`` order within the identity (never completion order);
* test identities give ``probes_per_identity`` held-out *probe* images (chosen by ``sha256("<seed>:<source_path>")``
  order), written to ``probes/<id>_<n>.png`` (landmarks ``probe_landmarks/<id>_<n>.png.txt``) and **not** to
  ``images/<id>/``, so that DMDNet's reference folder never contains the ground truth of its input (as in DMDNet's
  own test set: ``SynLQ/<id>_<n>.png`` + ``RefsImg/<id>/``). ``SpecificLists.txt`` lines are
  ``probes/<id>_<n>.png<TAB>images/<id><TAB>landmarks/<id>`` (relative to the dataset folder; the probe is the HQ
  ground truth: degrade it to get the LQ input);
* aligned images are recomputed from the cached source landmarks (deterministic) and written atomically; an
  existing output whose sha256 matches the one recorded in the cache is not rewritten; stale files left by an
  earlier build (other settings) and temporary files of a killed run are removed.
"""

from __future__ import annotations

import hashlib
import io
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ..fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_bytes, sha256_file
from ..imageio import encode_image, read_image
from ..progress import progress
from .cache import settings_key
from .identity import collision_components
from .split import split_groups

OUTPUT_DIRS = ("images", "landmarks", "probes", "probe_landmarks")

MANIFEST_COLUMNS = [
    "source_path", "sha256", "identity_folder", "assigned_folder", "face_index", "n_faces", "is_primary",
    "decision", "reason", "error", "duplicate_of", "duplicate_distance", "duplicate_hash_bits", "identity_id",
    "identity_distance", "collision_with", "same_image_in", "box_x1", "box_y1", "box_x2", "box_y2", "det_score",
    "landmarks", "landmarks_source", "landmarks_aligned_from", "face_size", "outside_fraction", "blur_var", "yaw",
    "quality", "phash", "width", "height", "file_size", "output_path", "landmarks_path", "split", "role",
    "override", "flags", "backend",
]
_FLOAT = {"duplicate_distance", "identity_distance", "box_x1", "box_y1", "box_x2", "box_y2", "det_score", "face_size",
          "outside_fraction", "blur_var", "yaw", "quality"}
_INT = {"face_index", "n_faces", "duplicate_hash_bits", "width", "height", "file_size"}


def landmarks_text(lm) -> str:
    """68 lines ``"x y"`` with 3 decimals, LF (the CelebRef-HQ / DMDNet landmark file format)."""
    return "".join(f"{x:.3f} {y:.3f}\n" for x, y in np.asarray(lm, dtype=np.float64).reshape(-1, 2))


def plan_outputs(records: list[dict], analyses: dict, result: dict, th: dict) -> dict:
    """Identity ids, split, probes, numbering and output paths (mutates the accepted records)."""
    acc: dict[str, list[dict]] = {}
    for r in records:
        if r["decision"] == "accepted":
            acc.setdefault(r["assigned_folder"], []).append(r)
    folders = sorted(acc)
    ids = {f: f"{k:05d}" for k, f in enumerate(folders)}
    coll = [c for c in result["collisions"] if c.folder_a in acc and c.folder_b in acc]
    split = split_groups(collision_components(folders, coll), th["test_fraction"], th["seed"])
    identities, skipped = [], []
    for f in folders:
        rs = sorted(acc[f], key=lambda r: r["source_path"])
        iid = ids[f]
        probes: set[str] = set()
        if split[f] == "test":
            p = th["probes_per_identity"]
            if p > 0 and len(rs) >= p + 2:
                order = sorted(rs, key=lambda r: hashlib.sha256(f"{th['seed']}:{r['source_path']}".encode()).hexdigest())
                probes = {r["source_path"] for r in order[:p]}
            elif p > 0:
                skipped.append(iid)
        for n, r in enumerate(rs):
            r["identity_id"], r["split"], r["n"] = iid, split[f], n
            if r["source_path"] in probes:
                r["role"] = "probe"
                r["output_path"] = f"probes/{iid}_{n}.png"
                r["landmarks_path"] = f"probe_landmarks/{iid}_{n}.png.txt"
            else:
                r["role"] = "reference"
                r["output_path"] = f"images/{iid}/{n}.png"
                r["landmarks_path"] = f"landmarks/{iid}/{n}.png.txt"
        identities.append({"identity_id": iid, "folder_name": f, "count": len(rs), "n_references": len(rs) - len(probes),
                           "n_probes": len(probes), "split": split[f]})
    for r in records:
        if r["decision"] != "accepted" and r["assigned_folder"] in ids:
            r["identity_id"] = ids[r["assigned_folder"]]
    cents = {ids[f]: result["centroids"][f] for f in folders if f in result["centroids"]}
    return {"identities": identities, "ids": ids, "centroids_by_id": cents, "skipped_probes": skipped}


# --- aligned images ---------------------------------------------------------------------------------

def render_aligned(src: str, landmarks_source, output_size: int) -> bytes:
    """PNG bytes of the FFHQ-aligned face of ``src`` given its 68 source landmarks (deterministic)."""
    from ..face.align import ffhq_align

    img = read_image(src)
    al = ffhq_align(img, np.asarray(landmarks_source, dtype=np.float64), output_size=output_size)
    return encode_image(np.asarray(al.image), ".png")


def _render_task(task: tuple[str, list, int, str]) -> tuple[str, str]:
    src, lm, size, out = task
    data = render_aligned(src, lm, size)
    atomic_write_bytes(out, data)
    return out, sha256_bytes(data)


def _write_images(out: Path, jobs: list[dict], workers: int, cache, akey: dict, check) -> None:
    todo = []
    for j in jobs:
        key = settings_key("aligned", j["sha256"], {"analysis": akey, "face": j["face_index"]})
        j["key"] = key
        rec = cache.get("aligned", key)
        p = out / j["output_path"]
        if rec is not None and p.is_file() and sha256_file(p) == rec["png_sha256"]:
            continue
        todo.append(j)
    tasks = [(j["src"], j["landmarks_source"], j["size"], str(out / j["output_path"])) for j in todo]
    keys = {str(out / j["output_path"]): (j["key"], j["sha256"]) for j in todo}
    done = 0

    def finish(path: str, digest: str) -> None:
        nonlocal done
        cache.put("aligned", keys[path][0], {"png_sha256": digest})
        done += 1
        check(done)

    if workers <= 1 or len(tasks) <= 1:
        for t in progress(tasks, "write"):
            finish(*_render_task(t))
    else:
        from .stages import pool_context

        with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context()) as ex:
            for res in progress(ex.map(_render_task, tasks, chunksize=4), "write", total=len(tasks)):
                finish(*res)


def _cleanup(out: Path, expected: set[str]) -> None:
    for d in OUTPUT_DIRS:
        base = out / d
        if not base.is_dir():
            continue
        for p in sorted(base.rglob("*"), reverse=True):
            rel = p.relative_to(out).as_posix()
            if p.is_file() and rel not in expected:
                p.unlink()
            elif p.is_dir() and not any(p.iterdir()):
                p.rmdir()


def _write_if_changed(path: Path, text: str) -> None:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    atomic_write_text(path, text)


def write_table(df: pd.DataFrame, stem: Path, csv: bool = True) -> None:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(stem.with_suffix(".parquet"), buf.getvalue())
    if csv:
        atomic_write_text(stem.with_suffix(".csv"), df.to_csv(index=False, lineterminator="\n"))


# --- tables -----------------------------------------------------------------------------------------

def _row(r: dict, an: dict, face_index, primary: bool, backend: str) -> dict:
    f = an["faces"][face_index] if (an.get("status") == "ok" and face_index is not None) else {}
    box = f.get("box") or [None] * 4
    row = {k: r.get(k) for k in MANIFEST_COLUMNS if k in r}
    row.update({
        "face_index": face_index, "is_primary": primary,
        "box_x1": box[0], "box_y1": box[1], "box_x2": box[2], "box_y2": box[3], "det_score": f.get("score"),
        "landmarks": json.dumps(f["landmarks_aligned"], separators=(",", ":")) if "landmarks_aligned" in f else "",
        "landmarks_source": json.dumps(f["landmarks_source"], separators=(",", ":")) if "landmarks_source" in f else "",
        "landmarks_aligned_from": f.get("landmarks_aligned_from", ""),
        "face_size": f.get("face_size"), "outside_fraction": f.get("outside_fraction"), "blur_var": f.get("blur_var"),
        "yaw": f.get("yaw"), "quality": f.get("quality"), "phash": f.get("phash", ""),
        "flags": ";".join(r.get("flags", [])), "backend": backend,
    })
    return row


def manifest_frame(rows: list[dict]) -> pd.DataFrame:
    """A manifest DataFrame with the documented columns and dtypes (floats NaN, ints nullable, strings '')."""
    df = pd.DataFrame(rows)
    for c in MANIFEST_COLUMNS:
        if c not in df.columns:
            df[c] = None
    df = df[MANIFEST_COLUMNS + [c for c in df.columns if c not in MANIFEST_COLUMNS]]
    for c in df.columns:
        if c in _FLOAT:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        elif c in _INT:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
        elif c == "is_primary":
            df[c] = df[c].astype(bool)
        else:
            df[c] = df[c].fillna("").astype(str)
    return df


def build_manifest(records: list[dict], analyses: dict, backend: str, centroids: dict) -> pd.DataFrame:
    rows = []
    for r in records:
        an = analyses[r["sha256"]]
        rows.append(_row(r, an, r["face_index"], True, backend))
        if an.get("status") == "ok" and len(an["faces"]) > 1:
            c = centroids.get(r["assigned_folder"])
            for i, f in enumerate(an["faces"]):
                if i == r["face_index"]:
                    continue
                extra = {k: r[k] for k in ("source_path", "sha256", "identity_folder", "assigned_folder", "n_faces",
                                           "width", "height", "file_size") if k in r}
                extra.update(decision="rejected", reason="other_face", flags=[])
                if c is not None and "embedding" in f:
                    extra["identity_distance"] = round(float(np.linalg.norm(np.asarray(f["embedding"], np.float32) - c)), 6)
                rows.append(_row(extra, an, i, False, backend))
    return manifest_frame(rows)


def distance_sample(records: list[dict], analyses: dict, seed: int, cap: int = 20000) -> pd.DataFrame:
    """Pair distances among accepted faces: every same-identity pair (sampled down to ``cap``) and as many
    seeded random different-identity pairs."""
    acc = [r for r in records if r["decision"] == "accepted"]
    emb = np.array([analyses[r["sha256"]]["faces"][r["face_index"]]["embedding"] for r in acc], np.float32).reshape(len(acc), -1)
    ids = [r["identity_id"] for r in acc]
    rng = np.random.default_rng(seed)
    same = [(i, j) for i in range(len(acc)) for j in range(i + 1, len(acc)) if ids[i] == ids[j]]
    if len(same) > cap:
        same = [same[k] for k in sorted(rng.choice(len(same), cap, replace=False))]
    diff = []
    if len(set(ids)) > 1:
        tries = 0
        while len(diff) < len(same) and tries < 20 * max(len(same), 1):
            i, j = (int(v) for v in rng.integers(0, len(acc), 2))
            tries += 1
            if ids[i] != ids[j]:
                diff.append((min(i, j), max(i, j)))
    rows = []
    for kind, pairs in (("same", same), ("different", diff)):
        for i, j in pairs:
            rows.append({"kind": kind, "distance": float(np.linalg.norm(emb[i] - emb[j])), "identity_a": ids[i],
                         "identity_b": ids[j], "source_a": acc[i]["source_path"], "source_b": acc[j]["source_path"]})
    return pd.DataFrame(rows, columns=["kind", "distance", "identity_a", "identity_b", "source_a", "source_b"])


def _versions() -> dict:
    from importlib import metadata

    out = {}
    for name in ("celebref", "numpy", "opencv-python-headless", "pillow", "pandas", "pyarrow", "dlib-bin", "insightface", "onnxruntime"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def write_dataset(out: Path, crawl: Path, records: list[dict], analyses: dict, result: dict, plan: dict, meta: dict,
                  cfg, be, cache) -> None:
    from .pipeline import interrupt_hook

    out.mkdir(parents=True, exist_ok=True)
    acc = [r for r in records if r["decision"] == "accepted"]
    jobs = []
    for r in acc:
        f = analyses[r["sha256"]]["faces"][r["face_index"]]
        jobs.append({"src": r["_abs"], "landmarks_source": f["landmarks_source"], "size": cfg.analysis.output_size,
                     "output_path": r["output_path"], "sha256": r["sha256"], "face_index": r["face_index"]})
    _write_images(out, jobs, cfg.workers, cache, meta["analysis"], interrupt_hook("write"))
    expected = set()
    for r in acc:
        f = analyses[r["sha256"]]["faces"][r["face_index"]]
        _write_if_changed(out / r["landmarks_path"], landmarks_text(f["landmarks_aligned"]))
        expected.update((r["output_path"], r["landmarks_path"]))
    _cleanup(out, expected)

    man = build_manifest(records, analyses, be.name, result["centroids"])
    write_table(man, out / "manifest")
    ids = pd.DataFrame(plan["identities"], columns=["identity_id", "folder_name", "count", "n_references", "n_probes", "split"])
    atomic_write_text(out / "identities.csv", ids.to_csv(index=False, lineterminator="\n"))
    col = pd.DataFrame([{"folder_a": c.folder_a, "folder_b": c.folder_b, "distance": round(c.distance, 6), "suggestion": c.suggestion}
                        for c in result["collisions"]], columns=["folder_a", "folder_b", "distance", "suggestion"])
    atomic_write_text(out / "collisions.csv", col.to_csv(index=False, lineterminator="\n"))
    write_table(distance_sample(records, analyses, cfg.seed), out / "distances", csv=False)
    lines = []
    for r in sorted(acc, key=lambda r: r["output_path"]):
        if r.get("role") == "probe":
            iid = r["identity_id"]
            lines.append(f"{r['output_path']}\timages/{iid}\tlandmarks/{iid}")
    atomic_write_text(out / "SpecificLists.txt", "".join(ln + "\n" for ln in lines))
    meta = dict(meta)
    meta.update({"layout": "celebref-hq", "crawl": str(crawl), "versions": _versions(), "command": cfg.command or "",
                 "collisions": len(result["collisions"])})
    atomic_write_json(out / "build.json", meta)
