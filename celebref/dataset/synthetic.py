"""A synthetic dirty crawl made from aligned identity folders (for tests and benchmarks).

:func:`make_crawl` takes a CelebRef-HQ-style source (``<src>/<identity>/<n>.png``, aligned 512x512 faces, at least
5 identities with 8 images each) and writes a crawl whose every file has a known right answer, returned as
``{source_path: (decision, reason)}``. Aligned faces are pasted on a canvas with a margin so that detection and
FFHQ alignment behave as on photos. Contents (per person folder): clean photos, an exact copy under another name,
near duplicates of one photo (JPEG q70, 90% resize, crop/shift, mirror), a grayscale photo, an EXIF-rotated JPEG,
a photo in a sub-folder, a stranger's face, a two-stranger composite, a composite of the person with a stranger,
a face shrunk to 96 px, a blurred face, a non-face image, a 0-byte file, a truncated PNG, an HTML page named
``.jpg``, the same person under a second folder name (unique faces: merged, not rejected, by default), and the
same image in two folders.
The faces are used as given; nothing here is a face of its own.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..fsutil import atomic_write_bytes
from ..imageio import encode_image, list_images, read_image

MARGIN = 96
# person-folder names (free text, one non-ASCII) for the first 5 identities, and the second name of the third
NAMES = ("Åsa Öberg", "Bob Stone", "Chen Wei", "Dana Ruiz", "Eve Kim")
ALIAS = "Wei Chen"


def _canvas(face: np.ndarray, margin: int = MARGIN) -> np.ndarray:
    fill = tuple(int(v) for v in face.reshape(-1, 3).mean(axis=0))
    return cv2.copyMakeBorder(face, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=fill)


def _png(path: Path, img: np.ndarray) -> None:
    atomic_write_bytes(path, encode_image(img, ".png"))


def _jpg(path: Path, img: np.ndarray, q: int = 92) -> None:
    atomic_write_bytes(path, encode_image(img, ".jpg", jpeg_quality=q))


def make_crawl(src: str | os.PathLike, root: str | os.PathLike, per_identity: int = 4) -> dict[str, tuple[str, str]]:
    """Write the crawl under ``root``; returns the expected ``{source_path: (decision, reason)}``."""
    src, root = Path(src), Path(root)
    ids = sorted(p.name for p in src.iterdir() if p.is_dir())[:5]
    if len(ids) < 5:
        raise ValueError(f"need 5 identity folders in {src}, found {len(ids)}")
    pool = {i: list_images(src / i) for i in ids}
    if min(len(v) for v in pool.values()) < per_identity + 4:
        raise ValueError("need at least per_identity + 4 images per identity")
    nxt = {i: 0 for i in ids}

    def take(i: str) -> np.ndarray:
        k = nxt[i]
        nxt[i] += 1
        return read_image(pool[i][k])

    a, b, c, d, e = ids
    name = dict(zip(ids, NAMES))
    exp: dict[str, tuple[str, str]] = {}

    def put(rel: str, img: np.ndarray | None, decision: str, reason: str = "", fmt: str = "png") -> None:
        p = root / rel
        if img is not None:
            (_png if fmt == "png" else _jpg)(p, img)
        exp[rel] = (decision, reason)

    for i in ids:  # clean photos
        for k in range(per_identity):
            put(f"{name[i]}/photo_{k}.png", _canvas(take(i)), "accepted")

    A = name[a]
    # exact duplicate under another name
    (root / A / "photo_0_copy.png").write_bytes((root / A / "photo_0.png").read_bytes())
    exp[f"{A}/photo_0_copy.png"] = ("rejected", "exact_duplicate")
    # near duplicates of photo_1
    p1 = read_image(root / A / "photo_1.png")
    put(f"{A}/photo_1_q70.jpg", None, "rejected", "near_duplicate")
    _jpg(root / A / "photo_1_q70.jpg", p1, 70)
    h, w = p1.shape[:2]
    put(f"{A}/photo_1_small.png", cv2.resize(p1, (int(w * 0.9), int(h * 0.9)), interpolation=cv2.INTER_AREA), "rejected", "near_duplicate")
    put(f"{A}/photo_1_crop.png", np.ascontiguousarray(p1[40:, 56:]), "rejected", "near_duplicate")
    put(f"{A}/photo_1_mirror.png", np.ascontiguousarray(p1[:, ::-1]), "rejected", "near_duplicate")
    # grayscale photo
    g = cv2.cvtColor(_canvas(take(a)), cv2.COLOR_RGB2GRAY)
    atomic_write_bytes(root / A / "gray.png", encode_image(g, ".png"))
    exp[f"{A}/gray.png"] = ("accepted", "")
    # EXIF-rotated JPEG: pixels stored rotated 90 degrees counter-clockwise, orientation 6 says "rotate clockwise"
    up = _canvas(take(a))
    im = Image.fromarray(np.ascontiguousarray(np.rot90(up, 1)))
    ex = Image.Exif()
    ex[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95, exif=ex.tobytes())
    atomic_write_bytes(root / A / "rotated.jpg", buf.getvalue())
    exp[f"{A}/rotated.jpg"] = ("accepted", "")
    # a photo in a sub-folder
    put(f"{A}/2019/event/photo.png", _canvas(take(a)), "accepted")

    B = name[b]
    put(f"{B}/stranger.png", _canvas(take(e)), "rejected", "identity_outlier")
    comp = np.concatenate([take(a), take(e)], axis=1)
    put(f"{B}/group.png", _canvas(comp), "rejected", "multiple_faces_ambiguous")
    put(f"{B}/tiny.png", cv2.resize(take(b), (96, 96), interpolation=cv2.INTER_AREA), "rejected", "face_too_small")
    (root / B / "empty.jpg").write_bytes(b"")
    exp[f"{B}/empty.jpg"] = ("rejected", "unreadable")

    C = name[c]
    for k in range(3):  # the same person under a second folder name (merged into the larger folder by default)
        put(f"{ALIAS}/img_{k}.png", _canvas(take(c)), "accepted")
    E = name[e]
    (root / C / "shared.png").write_bytes((root / E / "photo_2.png").read_bytes())
    exp[f"{C}/shared.png"] = ("rejected", "identity_outlier")

    D = name[d]
    data = encode_image(_canvas(take(d)), ".png")
    atomic_write_bytes(root / D / "truncated.png", data[: len(data) // 2])
    exp[f"{D}/truncated.png"] = ("rejected", "unreadable")
    atomic_write_bytes(root / D / "page.jpg", b"<!DOCTYPE html><html><head><title>404</title></head><body>Not found</body></html>\n")
    exp[f"{D}/page.jpg"] = ("rejected", "unreadable")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:600, 0:800]
    grad = np.stack([xx * 255 / 799, yy * 255 / 599, (xx + yy) * 255 / 1398], axis=2)
    noise = np.clip(grad + rng.normal(0, 20, grad.shape), 0, 255).astype(np.uint8)
    put(f"{D}/landscape.png", noise, "rejected", "no_face")
    put(f"{D}/blurred.png", cv2.GaussianBlur(_canvas(take(d)), (0, 0), 4), "rejected", "blurry")
    comp2 = np.concatenate([take(d), take(a)], axis=1)
    put(f"{D}/with friend.png", _canvas(comp2), "accepted")
    return exp
