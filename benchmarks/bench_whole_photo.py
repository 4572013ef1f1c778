"""Speed of whole-photo restoration overhead: photos/s for 4-face 1024x768 photos with ``lq`` as the method, i.e.
detection + landmarks + alignment + paste-back + writing (the restored photo and, by default, each face's two crops),
with no network; again without writing the face crops. Also the same photos timed stage by
stage (detection with landmarks, alignment, paste-back) in one loop, to show where the time goes.

    python benchmarks/bench_whole_photo.py --n 8 --upscale 1

Photos are built from the celebref-mini faces (``--mini``, default ../shared/fixtures/celebref-mini) on textured
backgrounds. Prints one JSON object (figures, load average before and after: the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines.classical import LQMethod  # noqa: E402
from baselines.alignments import align  # noqa: E402
from celebref.app.whole_photo import WholePhotoRunner, collect_photos  # noqa: E402
from celebref.face import get_backend  # noqa: E402
from celebref.face.paste import face_to_canvas_matrix, paste_faces, resize_background  # noqa: E402
from celebref.imageio import read_image, write_image  # noqa: E402

PLACES = [(20, 100, 230), (270, 400, 230), (520, 60, 200), (780, 420, 220)]


def make_photos(folder: Path, n: int, mini: Path) -> None:
    faces = sorted((mini / "hq").glob("*/*.png"))
    rng = np.random.default_rng(0)
    for i in range(n):
        noise = cv2.GaussianBlur(rng.normal(0, 40, (768, 1024, 3)).astype(np.float32), (0, 0), 3.0)
        img = np.clip(120 + noise, 0, 255).astype(np.uint8)
        for k, (x, y, side) in enumerate(PLACES):
            face = read_image(faces[(i * 4 + k * 17) % len(faces)])
            img[y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
        write_image(folder / f"{i:04d}.png", img)


def stages(photos: list, upscale: int) -> dict:
    be = get_backend("dlib")
    t = {"detect_landmarks": 0.0, "align": 0.0, "paste": 0.0}
    n_faces = 0
    for _, path, _ in photos:
        img = read_image(path)
        t0 = time.perf_counter()
        dets = be.detect(img)
        lms = [be.landmarks68(img, d) for d in dets]
        t1 = time.perf_counter()
        crops = [align("ffhq5", img, d.points5, lm) for d, lm in zip(dets, lms)]
        t2 = time.perf_counter()
        paste_faces(resize_background(img, upscale), [c for c, _ in crops],
                    [face_to_canvas_matrix(m, 512, 512, upscale) for _, m in crops], upscale)
        t3 = time.perf_counter()
        t["detect_landmarks"] += t1 - t0
        t["align"] += t2 - t1
        t["paste"] += t3 - t2
        n_faces += len(dets)
    return {k: round(v / len(photos), 4) for k, v in t.items()} | {"faces_per_photo": n_faces / len(photos)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=8, help="photos (default 8)")
    ap.add_argument("--upscale", type=int, default=1)
    ap.add_argument("--mini", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "celebref-mini")
    args = ap.parse_args()
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "photos"
        make_photos(src, args.n, args.mini)
        photos = collect_photos(src)
        get_backend("dlib").detect(read_image(photos[0][1]))  # load the models (detector, predictor) outside the timing
        t0 = time.perf_counter()
        df = WholePhotoRunner(Path(tmp) / "out", [LQMethod()], upscale=args.upscale, batch_size=4).run(photos)
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        WholePhotoRunner(Path(tmp) / "out-nocrops", [LQMethod()], upscale=args.upscale, batch_size=4, save_faces=False).run(photos)
        wall_nocrops = time.perf_counter() - t0
        per_stage = stages(photos, args.upscale)
    print(json.dumps({
        "photos": args.n, "size": "1024x768", "faces_ok": int((df["status"] == "ok").sum()), "upscale": args.upscale,
        "photos_per_s": round(args.n / wall, 3), "s_per_photo": round(wall / args.n, 3),
        "photos_per_s_without_face_crops": round(args.n / wall_nocrops, 3),
        "stage_s_per_photo": per_stage, "loadavg_before": load0, "loadavg_after": os.getloadavg(),
    }, indent=2))


if __name__ == "__main__":
    main()
