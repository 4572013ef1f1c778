"""Identity of the faces restored in whole photos, against a reference set (``evaluate --whole-photo
--metrics niqe,identity --identity-refs DIR``).

Conventions: ``DIR`` holds face images of the people who may appear in the photos (any layout, every image below
it; aligned crops or photos: the largest detected face of each file is used; files without a face are listed and
left out). Each restored face crop (and, for the ``input`` row, the method's aligned input crop) is an aligned face,
embedded as the ``identity`` metric's default ``aligned`` mode does (``backend.embed_aligned``: unit-norm vectors),
and scored by its cosine similarity to the **closest** reference embedding, so a photo of several people is scored
against each person's own references. A photo's value is the mean over its scored faces; ``identity_faces`` says
how many faces were scored, and a crop that cannot be read or analysed is left out with a reason. The column is labelled with the backend (``ID(dlib)``/``IDS(ArcFace)``),
as in the per-image tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from celebref.errors import CelebrefError, ConfigError
from celebref.face import get_backend
from celebref.face.base import largest
from celebref.imageio import list_images, read_image

__all__ = ["ReferenceEmbeddings", "score_faces"]


class ReferenceEmbeddings:
    """The reference set's embeddings (``(N, D)`` unit rows), the files used and the files left out with why."""

    def __init__(self, folder: str | Path, backend: Any):
        folder = Path(folder)
        if not folder.is_dir():
            raise ConfigError(f"identity_refs {str(folder)!r} is not a folder of reference face images")
        self.backend = backend
        self.used: list[str] = []
        self.skipped: dict[str, str] = {}
        rows = []
        for path in list_images(folder):
            emb, why = embed_largest_face(backend, path)
            if emb is None:
                self.skipped[str(path)] = why
                continue
            rows.append(emb)
            self.used.append(str(path))
        if not rows:
            raise ConfigError(f"no face found in any image of identity_refs {str(folder)!r} "
                              f"({len(self.skipped)} file(s) tried)")
        self.matrix = np.stack(rows).astype(np.float64)

    def closest(self, emb: np.ndarray) -> float:
        """Cosine similarity of ``emb`` to its closest reference."""
        return float(np.max(self.matrix @ np.asarray(emb, dtype=np.float64)))


def embed_largest_face(backend: Any, path: str | Path) -> tuple[np.ndarray | None, str]:
    """The unit-norm embedding of the largest face in the image at ``path`` (``None`` and a reason when none)."""
    try:
        img = read_image(path)
        det = largest(backend.detect(img))
        if det is None:
            return None, "no face found"
        return np.asarray(backend.embed(img, det), dtype=np.float64), ""
    except (CelebrefError, OSError, ValueError) as exc:
        return None, str(exc)


def embed_aligned_crop(backend: Any, path: str | Path) -> tuple[np.ndarray | None, str]:
    """The unit-norm embedding of the aligned face crop at ``path`` (``None`` and a reason when it fails)."""
    try:
        return np.asarray(backend.embed_aligned(read_image(path)), dtype=np.float64), ""
    except (CelebrefError, OSError, ValueError) as exc:
        return None, str(exc)


def score_faces(faces: pd.DataFrame, restored_root: Path, refs: ReferenceEmbeddings) -> pd.DataFrame:
    """``photo, method, identity, identity_faces, identity_reason`` per (photo, method) of the whole-photo faces table
    (``restored_path``: the restored crop; the ``input`` row uses the first method's aligned input crops)."""
    ok = faces[(faces["face"] >= 0) & (faces["restored_path"].fillna("") != "")]
    jobs: list[tuple[str, str, str]] = [(r["photo"], r["method"], r["restored_path"]) for _, r in ok.iterrows()]
    if len(ok):
        first = sorted(ok["method"].unique())[0]
        jobs += [(r["photo"], "input", r["input_path"]) for _, r in ok[ok["method"] == first].iterrows()]
    values: dict[tuple[str, str], list[float]] = {}
    reasons: dict[tuple[str, str], list[str]] = {}
    for photo, method, rel in jobs:
        emb, why = embed_aligned_crop(refs.backend, restored_root / rel)
        key = (photo, method)
        if emb is None:
            reasons.setdefault(key, []).append(f"{rel}: {why}")
            values.setdefault(key, [])
        else:
            values.setdefault(key, []).append(refs.closest(emb))
    rows = [{"photo": p, "method": m, "identity": float(np.mean(v)) if v else float("nan"), "identity_faces": len(v),
             "identity_reason": "; ".join(reasons.get((p, m), []))} for (p, m), v in sorted(values.items())]
    return pd.DataFrame(rows, columns=["photo", "method", "identity", "identity_faces", "identity_reason"])


def identity_refs_for(args: Any) -> ReferenceEmbeddings | None:
    """The reference embeddings when ``--identity-refs`` is given (backend: ``--face-backend``, default dlib)."""
    folder = getattr(args, "identity_refs", None)
    if not folder:
        return None
    return ReferenceEmbeddings(folder, get_backend(getattr(args, "face_backend", None) or "dlib"))
