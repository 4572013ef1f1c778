"""Calibrate the build's extreme-pose gate (``max_yaw``) on real faces (run on demand, never in CI).

The gate compares the *yaw index* of each face (:func:`celebref.dataset.quality.yaw_degrees`) with ``max_yaw``:
``index = asin((a - b) / (a + b))`` in degrees, ``a`` / ``b`` the horizontal distances from the nose tip (landmark
30) to the jaw ends (0 / 16). Its meaning: ``sin(index)`` is how far the nose tip sits off the jaw's midpoint, as a
fraction of the half jaw width (index 30 -> 50 %, 60 -> 87 %, 70 -> 94 %, 80 -> 98.5 %, 90 -> the nose tip at
the jaw's edge: a full profile). Under a rigid head turning by ``yaw``, ``(a - b) / (a + b) = k * tan(yaw)``,
``k`` = nose-tip depth in front of the jaw ends / half jaw width, so the index grows faster than the true yaw
and saturates (index 90) before the head reaches profile; it is an index, not a head angle.

For every face of each given folder of aligned faces (default: celebref-mini's ``hq/``, i.e. the references of
DMDNet's ``TestExamples``; any other folder of ``<identity>/<n>.png``, e.g. the full 117-file ``RefsImg``, can be
added) it measures the index twice: from the dataset's own landmark files when present (``landmarks/``), and
from the dlib backend's 68 landmarks detected on the face pasted on a margin (as the build sees photos). It prints
the distribution and how many faces each threshold would reject.

    python benchmarks/calibrate_pose.py [--mini ../shared/fixtures/celebref-mini] [--extra FOLDER ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

THRESHOLDS = (30, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85)


def yaw_indices(folder: Path, landmarks: Path | None, backend: str = "dlib") -> dict[str, np.ndarray]:
    """``{"file": yaw from the landmark files, "dlib": yaw from detected landmarks}`` over ``folder/<id>/*.png``."""
    from celebref.dataset.quality import yaw_degrees
    from celebref.dataset.synthetic import _canvas
    from celebref.face import get_backend
    from celebref.face.landmark_io import read_landmarks
    from celebref.imageio import list_images, read_image

    be = get_backend(backend)
    out: dict[str, list[float]] = {"file": [], "dlib": []}
    for p in list_images(folder):
        rel = p.relative_to(folder)
        if landmarks is not None and (landmarks / rel.parent / (rel.name + ".txt")).is_file():
            out["file"].append(yaw_degrees(read_landmarks(landmarks / rel.parent / (rel.name + ".txt"))))
        img = _canvas(read_image(p))
        dets = sorted(be.detect(img), key=lambda d: -d.area)
        if dets:
            out["dlib"].append(yaw_degrees(np.asarray(be.landmarks68(img, dets[0]))))
        else:
            out["dlib"].append(float("nan"))
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def report(name: str, yaw: np.ndarray) -> None:
    if len(yaw) == 0:
        return
    a = np.abs(yaw[np.isfinite(yaw)])
    q = np.percentile(a, [50, 90, 95, 99, 100])
    print(f"{name}: {len(yaw)} faces ({int(np.sum(~np.isfinite(yaw)))} without a detection); |yaw index| "
          f"median {q[0]:.1f}, p90 {q[1]:.1f}, p95 {q[2]:.1f}, p99 {q[3]:.1f}, max {q[4]:.1f}")
    print("  rejected by max_yaw: " + ", ".join(f"{t}: {int(np.sum(a > t))}" for t in THRESHOLDS))
    hist, edges = np.histogram(a, bins=np.arange(0, 95, 10))
    print("  histogram: " + ", ".join(f"{int(lo)}-{int(hi)}: {n}" for lo, hi, n in zip(edges[:-1], edges[1:], hist) if n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mini", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "celebref-mini")
    ap.add_argument("--extra", type=Path, nargs="*", default=[], help="more folders of <identity>/<n>.png aligned faces")
    args = ap.parse_args()
    sets = [(f"celebref-mini hq ({args.mini})", args.mini / "hq", args.mini / "landmarks")]
    sets += [(str(p), p, None) for p in args.extra]
    for name, folder, lm in sets:
        if not folder.is_dir():
            print(f"{name}: not found, skipped")
            continue
        y = yaw_indices(folder, lm if lm is not None and lm.is_dir() else None)
        report(f"{name}, dlib landmarks", y["dlib"])
        report(f"{name}, the dataset's landmark files", y["file"])


if __name__ == "__main__":
    main()
