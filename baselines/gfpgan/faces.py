"""Aligned-face batches for networks that use the BasicSR conventions (GFPGAN, CodeFormer).

Conversions reproduce what the official ``GFPGANer.enhance(has_aligned=True)`` and
``inference_codeformer.py --has_aligned`` do around the network, bit for bit:

* in: RGB uint8 ``(512, 512, 3)`` -> ``(u8 / 255.)`` in float64, cast to float32, then ``(t - 0.5) / 0.5``
  in float32 -> float32 ``(N, 3, 512, 512)`` RGB in ``[-1, 1]`` (BasicSR ``img2tensor`` + ``normalize``);
* out: clamp to ``[-1, 1]``, ``(x + 1) / 2``, ``* 255``, round half to even, uint8 (BasicSR ``tensor2img``
  with ``min_max=(-1, 1)``), RGB ``(512, 512, 3)``.

The official scripts resize a non-512 aligned input to 512 first; celebref's contract is aligned 512 faces
in and out, so other sizes are recorded as per-image errors instead of being resized silently.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from baselines.base import STATUS_ERROR, RestoreItem, RestoreResult, check_finite_output

FACE_SIZE = 512


def faces_to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """RGB uint8 ``(H, W, 3)`` arrays -> float32 ``(N, 3, H, W)`` RGB in ``[-1, 1]`` (BasicSR convention)."""
    arr = np.stack([(np.asarray(im) / 255.0).astype(np.float32) for im in images])
    arr = (arr - np.float32(0.5)) / np.float32(0.5)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))


def tensor_to_faces(t: torch.Tensor) -> list[np.ndarray]:
    """float ``(N, 3, H, W)`` RGB in ``[-1, 1]`` (unclamped) -> RGB uint8 ``(H, W, 3)`` arrays (BasicSR ``tensor2img``)."""
    check_finite_output(t)
    t = t.detach().float().cpu().clamp(-1.0, 1.0)
    t = (t + 1.0) / 2.0
    u8 = (t.numpy() * np.float32(255.0)).round().astype(np.uint8)
    return [np.ascontiguousarray(a.transpose(1, 2, 0)) for a in u8]


def check_face(image: np.ndarray, size: int = FACE_SIZE) -> str:
    """'' when ``image`` is an RGB uint8 ``(size, size, 3)`` array, else the reason it is not."""
    a = np.asarray(image) if image is not None else None
    if a is None:
        return "no image"
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        return f"expected an RGB uint8 (H, W, 3) array, got {a.dtype} {a.shape}"
    if a.shape[:2] != (size, size):
        return f"expected an aligned {size}x{size} face, got {a.shape[1]}x{a.shape[0]} (align/crop it first)"
    return ""


def restore_faces(items: list[RestoreItem], run: Callable[[list[RestoreItem]], list[np.ndarray]],
                  size: int = FACE_SIZE) -> list[RestoreResult]:
    """Run ``run`` (a list of valid items -> one uint8 image each) on the valid items as one batch.

    Invalid inputs get ``STATUS_ERROR`` with the reason. If the batch forward fails (e.g. out of memory),
    each image is retried alone so one failure cannot take the batch down.
    """
    results: dict[int, RestoreResult] = {}
    valid: list[int] = []
    for i, it in enumerate(items):
        why = check_face(it.image, size)
        if why:
            results[i] = RestoreResult(it.id, None, STATUS_ERROR, why)
        else:
            valid.append(i)
    if valid:
        try:
            outs = run([items[i] for i in valid])
            for i, out in zip(valid, outs):
                results[i] = RestoreResult(items[i].id, out)
        except (RuntimeError, ValueError) as e:
            if len(valid) == 1:
                it = items[valid[0]]
                results[valid[0]] = RestoreResult(it.id, None, STATUS_ERROR, f"{type(e).__name__}: {e}")
            else:
                for i in valid:
                    results[i] = restore_faces([items[i]], run, size)[0]
    return [results[i] for i in range(len(items))]
