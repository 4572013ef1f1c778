"""ASFFNet's landmark geometry: the moving-least-squares (MLS) affine warp grid and the LQ landmark mask.

Both follow csxmli2016/ASFFNet512 (``utils/ROI_MLS.py``: ``mls_affine_deformation_inv_final`` +
``roi_mls_whole_final``; ``main_test.py``: ``generate_lq_point_mask``), computed the same way in float64 numpy.

MLS affine deformation (Schaefer et al. 2006), inverse form: for every output pixel ``v`` (row, col) of the
``size`` x ``size`` feature grid, with weights ``w_i = 1 / ((p_i - v)_row^2 + 1e-8 + (p_i - v)_col^2 + 1e-8)``
(alpha 1), weighted centroids ``p*``, ``q*``, ``p^ = p - p*``, ``q^ = q - q*``, the sample position is
``(v - q*) (sum w p^T q^)^-1 (sum w p^T p^) + p*``, where ``p`` are the **reference** landmarks and ``q`` the **LQ**
landmarks (so the reference is pulled onto the LQ's geometry). Official quirks kept:

* when any pixel's 2x2 system is exactly singular (``numpy.linalg.inv`` raises), the whole grid uses the adjugate
  over the determinant, and pixels whose determinant is below 1e-8 (negative ones included) fall back to the pure
  translation ``v + q* - p*``;
* positions below 0 become 0, and positions past ``size - 1`` become **0** (not ``size - 1``), per axis;
* normalisation to ``grid_sample`` coordinates is ``(pos - size/2) / (size/2)`` with ``align_corners=False``
  sampling, i.e. the official half-pixel offset is kept.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["mls_affine_positions", "mls_affine_grid", "landmark_mask", "MASK_POINTS"]

MASK_POINTS = slice(17, 68)  # the mask marks brows, nose, eyes and mouth (not the jaw line)
_EPS = 1e-8


def mls_affine_positions(p: np.ndarray, q: np.ndarray, size: int) -> np.ndarray:
    """``(2, size, size)`` float64 sample positions ``(row, col)`` in pixels for each output pixel (after the
    official clamping). ``p``: control points on the source (reference) ``(N, 2)`` as ``(x, y)``; ``q``: where
    they go (LQ) ``(N, 2)`` ``(x, y)``."""
    src = np.asarray(p, dtype=np.float64)[:, ::-1]  # (x, y) -> (row, col)
    dst = np.asarray(q, dtype=np.float64)[:, ::-1]
    n = src.shape[0]
    axis = np.linspace(0, size, num=size, endpoint=False)
    rows, cols = np.meshgrid(axis, axis, indexing="ij")
    v = np.stack((rows, cols))  # (2, S, S)
    ps, qs = src.reshape(n, 2, 1, 1), dst.reshape(n, 2, 1, 1)
    w = 1.0 / np.sum((ps - v) ** 2 + _EPS, axis=1)  # (N, S, S)
    w[w == np.inf] = 2 ** 31 - 1
    wsum = np.sum(w, axis=0)
    p_star = np.sum(w * ps.transpose(1, 0, 2, 3), axis=1) / wsum  # (2, S, S)
    q_star = np.sum(w * qs.transpose(1, 0, 2, 3), axis=1) / wsum
    p_hat, q_hat = ps - p_star, qs - q_star  # (N, 2, S, S)
    wn = w.reshape(n, 1, 1, size, size)
    p_col = p_hat.reshape(n, 2, 1, size, size)
    a = np.sum(p_col * wn * q_hat.reshape(n, 1, 2, size, size), axis=0)  # (2, 2, S, S): sum w p^T q^
    b = np.sum(p_col * wn * p_hat.reshape(n, 1, 2, size, size), axis=0)  # (2, 2, S, S): sum w p^T p^
    a_px = a.transpose(2, 3, 0, 1)  # (S, S, 2, 2)
    degenerate = None
    try:
        a_inv = np.linalg.inv(a_px)
    except np.linalg.LinAlgError:  # the official fallback, for the whole grid
        det = np.linalg.det(a_px)
        det[det < _EPS] = np.inf
        adj = np.empty_like(a)
        adj[0, 0], adj[1, 1] = a[1, 1], a[0, 0]
        adj[0, 1], adj[1, 0] = -a[0, 1], -a[1, 0]
        a_inv = (adj / det.reshape(1, 1, size, size)).transpose(2, 3, 0, 1)
        degenerate = det == np.inf
    left = (v - q_star).reshape(1, 2, size, size).transpose(2, 3, 0, 1)  # (S, S, 1, 2)
    out = np.matmul(np.matmul(left, a_inv), b.transpose(2, 3, 0, 1)).reshape(size, size, 2).transpose(2, 0, 1) + p_star
    if degenerate is not None:
        for k in range(2):
            out[k][degenerate] = v[k][degenerate] + q_star[k][degenerate] - p_star[k][degenerate]
    out[out < 0] = 0
    for k in range(2):
        out[k][out[k] > size - 1] = 0
    return out


def mls_affine_grid(p: np.ndarray, q: np.ndarray, size: int) -> np.ndarray:
    """``(size, size, 2)`` float32 ``grid_sample`` grid, last axis ``(x, y)`` in [-1, 1] (official normalisation
    ``(pos - size/2) / (size/2)``), sampling the source (``p``'s image) at :func:`mls_affine_positions`."""
    pos = mls_affine_positions(p, q, size)
    half = size / 2
    return ((pos - half) / half)[::-1].astype(np.float32).transpose(1, 2, 0).copy()


def landmark_mask(landmarks: np.ndarray, size: int = 512) -> np.ndarray:
    """``(1, 1, size, size)`` float32 mask, official ``generate_lq_point_mask``: for each point 17..67 strictly
    inside ``(1, size - 2)`` on both axes, rows ``floor(y) - 3 : ceil(y) + 3`` and columns
    ``floor(x) - 3 : ceil(x) + 3`` are set to 1 (Python slicing: a negative start wraps as in the official code)."""
    mask = np.zeros((1, 1, size, size), dtype=np.float32)
    lm = np.asarray(landmarks, dtype=np.float64)
    for x, y in lm[MASK_POINTS]:
        if 1 < x < size - 2 and 1 < y < size - 2:
            mask[0, 0, int(math.floor(y)) - 3:int(math.ceil(y)) + 3, int(math.floor(x)) - 3:int(math.ceil(x)) + 3] = 1
    return mask
