"""Write a build in CelebRef-HQ's layout (see docs/FORMATS.md, ``celebref build`` output).

``SpecificLists.txt`` lines are ``probes/<id>_<n>.png<TAB>images/<id><TAB>landmarks/<id>`` (relative to the dataset
folder; the probe is the HQ ground truth: degrade it to get the LQ input). Aligned images are recomputed from the
cached source landmarks (deterministic) through the execution seam (:mod:`celebref.engine`) and written
atomically; an existing output whose sha256 matches the one recorded in the cache is not rewritten; stale files
left by an earlier build (other settings) and temporary files of a killed run are removed. Landmark files use
the one landmark writer (:mod:`celebref.face.landmark_io`), tables the one table writer (:mod:`celebref.tabular`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..face.landmark_io import format_landmarks, write_landmarks
from ..fsutil import atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_bytes, sha256_file
from ..imageio import encode_image, read_image
from ..provenance import versions
from ..tabular import write_table
from .cache import StageCache, settings_key
from .interrupt import interrupt_hook
from .manifest import build_manifest, distance_sample
from .records import analysis_of

OUTPUT_DIRS = ("images", "landmarks", "probes", "probe_landmarks")


def render_aligned(src: str, landmarks_source, output_size: int) -> bytes:
    """PNG bytes of the FFHQ-aligned face of ``src`` given its 68 source landmarks (deterministic)."""
    from ..face.align import ffhq_align

    img = read_image(src)
    al = ffhq_align(img, np.asarray(landmarks_source, dtype=np.float64), output_size=output_size)
    return encode_image(np.asarray(al.image), ".png")


def render_batch(tasks: list[tuple[str, list, int, str]]) -> list[str]:
    """Engine function: render and write each ``(source, landmarks, size, output path)``; returns PNG sha256s."""
    out = []
    for src, lm, size, path in tasks:
        data = render_aligned(src, lm, size)
        atomic_write_bytes(path, data)
        out.append(sha256_bytes(data))
    return out


def _write_images(out: Path, jobs: list[dict], engine, cache: StageCache, akey: dict,
                  check: Callable[[int], None]) -> None:
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
    failed = []
    done = 0
    for res in engine.map(render_batch, tasks, keys=[j["output_path"] for j in todo], batch_size=1, desc="write"):
        if not res.ok:
            failed.append(f"{todo[res.index]['src']}: {res.error}")
            continue
        cache.put("aligned", todo[res.index]["key"], {"png_sha256": res.value})
        done += 1
        check(done)
    if failed:  # the file was decoded during the analysis: it changed or vanished since
        raise RuntimeError(f"{len(failed)} accepted image(s) could not be written (changed during the build?): "
                           + "; ".join(failed[:5]))


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


def _write_landmarks_if_changed(path: Path, points) -> None:
    text = format_landmarks(np.asarray(points, dtype=np.float64))
    if path.is_file() and path.read_bytes() == text.encode("ascii"):
        return
    write_landmarks(path, points)


def write_dataset(out: Path, crawl: Path, records: list[dict], skipped: list[dict], analyses: dict, result: dict,
                  plan: dict, meta: dict, cfg, be, cache: StageCache, engine) -> None:
    """Write images, landmarks, the manifest, identities.csv, collisions.csv, distances, SpecificLists.txt and
    build.json (last: its presence marks a complete build). Aligned faces are rendered and written by ``engine``'s
    workers (a :class:`celebref.engine.Engine`)."""
    out.mkdir(parents=True, exist_ok=True)
    acc = [r for r in records if r["decision"] == "accepted"]
    jobs = []
    for r in acc:
        f = analysis_of(analyses, r)["faces"][r["face_index"]]
        jobs.append({"src": r["_abs"], "landmarks_source": f["landmarks_source"], "size": cfg.analysis.output_size,
                     "output_path": r["output_path"], "sha256": r["sha256"], "face_index": r["face_index"]})
    _write_images(out, jobs, engine, cache, meta["analysis"], interrupt_hook("write"))
    expected = set()
    for r in acc:
        f = analysis_of(analyses, r)["faces"][r["face_index"]]
        _write_landmarks_if_changed(out / r["landmarks_path"], f["landmarks_aligned"])
        expected.update((r["output_path"], r["landmarks_path"]))
    _cleanup(out, expected)

    man = build_manifest(records, analyses, be.name, result["centroids"], skipped)
    write_table(man, out / "manifest")
    ids = pd.DataFrame(plan["identities"], columns=["identity_id", "folder_name", "count", "n_references", "n_probes",
                                                    "split", "merged_folders"])
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
    meta.update({"layout": "celebref-hq", "crawl": str(crawl), "versions": versions(), "command": cfg.command or "",
                 "collisions": len(result["collisions"])})
    atomic_write_json(out / "build.json", meta)
