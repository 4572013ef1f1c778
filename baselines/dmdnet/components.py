"""Facial component boxes for DMDNet from 68 landmarks, as the official
``main_test.get_component_location`` computes them.

Input: ``(68, 2)`` landmarks, iBUG 300-W order, ``(x, y)`` pixels of the 512x512 aligned face.
Output: ``(4, 4)`` float32, rows ``LE, RE, NO, MO`` (left eye, right eye, nose, mouth), columns
``x1, y1, x2, y2``; integer values (the official ``astype(int)`` truncation toward zero), stored as
float32 like the official ``torch.FloatTensor``. The nose box is computed but unused by the network.

Recipe: landmarks are clamped to ``[8, 504]`` (the official code does this *in place* on the
caller's array; we work on a copy and never modify the argument). Eyes use points 36-41 / 42-47 and
the brow+eye sets 17-21,36-41 / 22-26,42-47; the nose points 29-35; the mouth points 48-67 with
half-side ``1.1 * max(max(ptp_x, ptp_y) / 2, 16)`` and only its ``x2, y2`` clamped to ``<= 510``.
Arithmetic is done in the landmarks' own floating dtype (float64 from text files and our face
backends; float32 if that is what is passed, as face_alignment returns).
"""

from __future__ import annotations

import numpy as np

from celebref.errors import ConfigError

_LE_B = list(range(17, 22)) + list(range(36, 42))
_RE_B = list(range(22, 27)) + list(range(42, 48))
_LE = list(range(36, 42))
_RE = list(range(42, 48))
_NO = list(range(29, 36))
_MO = list(range(48, 68))


def _eye(lm: np.ndarray, pts: list[int], brow_eye: list[int]) -> np.ndarray:
    mean = np.mean(lm[pts], 0)
    l1 = (mean[1] - np.min(lm[brow_eye, 1])) * 1.3
    l2 = l1 / 1.9
    half = (l1 + l2) / 2
    return np.hstack((mean - [half, l1] + 1, mean + [half, l2])).astype(int)


def component_locations(landmarks68: np.ndarray) -> np.ndarray:
    """``(4, 4)`` float32 boxes ``[[x1, y1, x2, y2]] x (LE, RE, NO, MO)``; the argument is not modified."""
    lm = np.array(landmarks68, copy=True)
    if lm.dtype.kind != "f":
        lm = lm.astype(np.float64)
    if lm.shape != (68, 2):
        raise ConfigError(f"DMDNet needs 68 (x, y) landmarks, got an array of shape {lm.shape}")
    lm[lm > 504] = 504
    lm[lm < 8] = 8

    le = _eye(lm, _LE, _LE_B)
    re = _eye(lm, _RE, _RE_B)

    mean_no = np.mean(lm[_NO], 0)
    n1 = np.max([mean_no[0] - lm[31][0], lm[35][0] - mean_no[0]]) * 1.25
    n2 = (lm[33][1] - mean_no[1]) * 1.1
    nxy = n1 * 2
    no = np.hstack((mean_no - [nxy / 2, nxy - n2] + 1, mean_no + [nxy / 2, n2])).astype(int)

    mouth = lm[_MO]
    mean_mo = np.mean(mouth, 0)
    half = np.max((np.max(np.max(mouth, 0) - np.min(mouth, 0)) / 2, 16)) * 1.1
    lo = mean_mo - half + 1
    hi = mean_mo + half
    hi[hi > 510] = 510
    mo = np.hstack((lo, hi)).astype(int)
    return np.stack([le, re, no, mo]).astype(np.float32)
