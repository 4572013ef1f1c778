"""ASFFNet's guidance selection: which of several HQ references of the identity guides the restoration.

Official rule (csxmli2016/ASFFNet512 ``main_test.py``: ``cal_sim`` + ``optimal_reference_selection``), computed in
float64 numpy: for each reference, fit by least squares (normal equations, ``inv(A^T A) A^T b``) one affine map
``[x, y, 1] @ M`` (3x2) taking the reference's eye-and-brow points (17..26, 36..47: 22 points) onto the LQ's, and
another taking its mouth points (48..67: 20 points) onto the LQ's; the score is
``1.01 * ||eye residual||_F + 1.49 * ||mouth residual||_F`` in pixels of the 512 image, and the reference with the
**smallest** score is chosen (the first one on a tie). The official code lists the candidates in ``os.listdir``
order (unspecified); we give them in the reference set's order (sorted file names), which only matters for exact ties.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["EYE_POINTS", "MOUTH_POINTS", "EYE_WEIGHT", "MOUTH_WEIGHT", "selection_score", "select_reference"]

EYE_POINTS = np.r_[17:27, 36:48]  # brows + eyes
MOUTH_POINTS = np.r_[48:68]
EYE_WEIGHT = 1.01
MOUTH_WEIGHT = 1.49


def _affine_residual(ref_pts: np.ndarray, lq_pts: np.ndarray) -> float:
    """Frobenius norm of ``A @ M - lq_pts`` for the least-squares affine ``M`` (``A = [ref_pts, 1]``)."""
    a = np.insert(ref_pts, 2, 1, -1)  # (n, 3): x, y, 1
    m = np.dot(np.dot(np.linalg.inv(np.dot(a.T, a)), a.T), lq_pts)
    return float(np.linalg.norm(np.dot(a, m.reshape(3, 2)) - lq_pts))


def selection_score(lq_landmarks: np.ndarray, ref_landmarks: np.ndarray) -> float:
    """The official dissimilarity of one reference (lower is better), from two ``(68, 2)`` ``(x, y)`` arrays."""
    lq = np.asarray(lq_landmarks, dtype=np.float64).reshape(-1, 2)
    ref = np.asarray(ref_landmarks, dtype=np.float64).reshape(-1, 2)
    return (EYE_WEIGHT * _affine_residual(ref[EYE_POINTS], lq[EYE_POINTS])
            + MOUTH_WEIGHT * _affine_residual(ref[MOUTH_POINTS], lq[MOUTH_POINTS]))


def select_reference(lq_landmarks: np.ndarray, ref_landmarks: Sequence[np.ndarray], rule: str = "landmarks") -> tuple[int, list[float]]:
    """``(index, scores)``: the chosen reference among ``ref_landmarks`` and every candidate's score.

    ``rule``: ``landmarks`` (official: smallest :func:`selection_score`, first on a tie) or ``first`` (the first
    candidate, an ablation without selection; scores are still computed). A candidate whose score is not finite
    (a singular fit: e.g. collinear points) is never chosen unless all are."""
    if not len(ref_landmarks):
        raise ValueError("no reference to select from")
    scores = []
    for lm in ref_landmarks:
        try:
            s = selection_score(lq_landmarks, lm)
        except np.linalg.LinAlgError:
            s = float("inf")
        scores.append(s if np.isfinite(s) else float("inf"))
    if rule == "first":
        return 0, scores
    if rule != "landmarks":
        raise ValueError(f"unknown selection rule {rule!r} (landmarks, first)")
    return int(min(range(len(scores)), key=scores.__getitem__)), scores
