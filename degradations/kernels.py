"""Blur kernels: 2-D float64 arrays of odd size ``(k, k)``, non-negative, normalised to sum 1.

Coordinates: the kernel centre is ``(k//2, k//2)``; ``x`` runs along columns (to the right) and ``y``
along rows (down), as in the BasicSR kernels (``mesh_grid``). A rotation ``theta`` (radians) turns the
principal axis of ``sigma_x`` by ``theta`` from the x axis, i.e. the covariance is
``R(theta) @ diag(sigma_x^2, sigma_y^2) @ R(theta)^T`` with ``R = [[cos, -sin], [sin, cos]]``.

Families (facts from XPixelGroup/BasicSR ``basicsr/data/degradations.py``, re-implemented here):

* :func:`bivariate_gaussian` ``exp(-0.5 x^T C^-1 x)`` (isotropic when ``sigma_y`` is None),
* :func:`generalized_gaussian` ``exp(-0.5 (x^T C^-1 x)^beta)``,
* :func:`plateau` ``1 / (1 + (x^T C^-1 x)^beta)``,
* :func:`gaussian_kernel_cv2` the separable kernel ``cv2.GaussianBlur`` uses (outer product of
  ``cv2.getGaussianKernel``),
* :func:`motion_kernel` a random camera-shake trajectory rasterised onto the grid (our own generator;
  DFDNet's 32 ``.mat`` kernels are not shipped).
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def _check_size(ksize: int) -> int:
    ksize = int(ksize)
    if ksize < 1 or ksize % 2 != 1:
        raise ValueError(f"kernel size must be a positive odd integer, got {ksize}")
    return ksize


def mesh_grid(ksize: int) -> tuple[np.ndarray, np.ndarray]:
    """``(xx, yy)`` float64 coordinate grids of shape ``(k, k)`` centred on 0 (``xx`` varies along columns)."""
    ksize = _check_size(ksize)
    ax = np.arange(ksize, dtype=np.float64) - ksize // 2
    xx, yy = np.meshgrid(ax, ax)
    return xx, yy


def covariance(sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """2x2 covariance ``R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T`` (see module docstring)."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]], dtype=np.float64)
    return rot @ np.diag([float(sigma_x) ** 2, float(sigma_y) ** 2]) @ rot.T


def _mahalanobis2(ksize: int, sigma_x: float, sigma_y: float | None, theta: float) -> np.ndarray:
    if sigma_x <= 0 or (sigma_y is not None and sigma_y <= 0):
        raise ValueError(f"sigmas must be > 0, got {sigma_x}, {sigma_y}")
    xx, yy = mesh_grid(ksize)
    if sigma_y is None:
        inv = np.diag([1.0 / sigma_x**2, 1.0 / sigma_x**2])
    else:
        inv = np.linalg.inv(covariance(sigma_x, sigma_y, theta))
    return inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy


def _normalise(k: np.ndarray) -> np.ndarray:
    total = float(k.sum())
    if not np.isfinite(total) or total <= 0:
        raise ValueError("kernel has no mass")
    return k / total


def bivariate_gaussian(ksize: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0) -> np.ndarray:
    """Gaussian kernel; isotropic with ``sigma_x`` when ``sigma_y`` is None, else anisotropic rotated by ``theta``."""
    return _normalise(np.exp(-0.5 * _mahalanobis2(ksize, sigma_x, sigma_y, theta)))


def generalized_gaussian(ksize: int, sigma_x: float, sigma_y: float | None, theta: float, beta: float) -> np.ndarray:
    """Generalized Gaussian ``exp(-0.5 * d2**beta)`` (``beta = 1``: Gaussian; small beta: heavy tails)."""
    return _normalise(np.exp(-0.5 * np.power(_mahalanobis2(ksize, sigma_x, sigma_y, theta), beta)))


def plateau(ksize: int, sigma_x: float, sigma_y: float | None, theta: float, beta: float) -> np.ndarray:
    """Plateau-shaped kernel ``1 / (1 + d2**beta)``."""
    return _normalise(1.0 / (np.power(_mahalanobis2(ksize, sigma_x, sigma_y, theta), beta) + 1.0))


def gaussian_kernel_cv2(ksize: int, sigma: float) -> np.ndarray:
    """The 2-D kernel of ``cv2.GaussianBlur(img, (ksize, ksize), sigma)``: outer product of
    ``cv2.getGaussianKernel(ksize, sigma)`` with itself (float64, sums to 1)."""
    g = cv2.getGaussianKernel(_check_size(ksize), float(sigma), ktype=cv2.CV_64F)
    return _normalise(g @ g.T)


def motion_trajectory(rng: np.random.Generator, length: float, n_steps: int = 512, anxiety: float | None = None) -> np.ndarray:
    """A random 2-D camera trajectory (complex positions, pixels), after Boracchi & Foi (2012):
    a random walk with inertia towards the previous velocity, Gaussian perturbations and rare impulsive
    jerks, rescaled so that its total path length is ``length`` pixels and centred on its centroid."""
    if anxiety is None:
        anxiety = 0.005 * rng.random()
    centripetal = 0.7 * rng.random()
    gaussian_term = 10.0 * rng.random()
    freq_big_shakes = 0.2 * rng.random()
    init_angle = 2.0 * math.pi * rng.random()
    v = complex(math.cos(init_angle), math.sin(init_angle))
    v0 = v
    x = np.zeros(n_steps, dtype=np.complex128)
    for t in range(n_steps - 1):
        if rng.random() < freq_big_shakes * anxiety:
            jerk = 2.0 * v * complex(math.cos(math.pi + (rng.random() - 0.5)), math.sin(math.pi + (rng.random() - 0.5)))
        else:
            jerk = 0
        dv = jerk + anxiety * (gaussian_term * complex(rng.standard_normal(), rng.standard_normal()) - centripetal * x[t])
        v = v + dv
        v = v / (abs(v) + 1e-12) * 1.0
        x[t + 1] = x[t] + v
    steps = np.abs(np.diff(x)).sum()
    if steps <= 0:
        x = np.arange(n_steps) * v0
        steps = np.abs(np.diff(x)).sum()
    x = x * (float(length) / steps)
    return x - x.mean()


def rasterize_trajectory(traj: np.ndarray, ksize: int) -> np.ndarray:
    """Splat a complex trajectory onto a ``(k, k)`` grid with bilinear weights (x = real part, columns).

    The trajectory is resampled so consecutive points are at most 0.45 px apart, so the support of the
    kernel is 8-connected. Points outside the grid are clipped to it. Returns the normalised kernel."""
    ksize = _check_size(ksize)
    traj = np.asarray(traj, dtype=np.complex128)
    seg = np.abs(np.diff(traj))
    total = float(seg.sum())
    n = max(2, int(math.ceil(total / 0.45)) + 1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    if total > 0:
        s = np.linspace(0.0, total, n)
        xs = np.interp(s, cum, traj.real)
        ys = np.interp(s, cum, traj.imag)
    else:
        xs, ys = traj.real[:1], traj.imag[:1]
    c = ksize // 2
    xs = np.clip(xs + c, 0.0, ksize - 1.0)
    ys = np.clip(ys + c, 0.0, ksize - 1.0)
    x0 = np.minimum(np.floor(xs).astype(int), ksize - 2) if ksize > 1 else np.zeros(len(xs), int)
    y0 = np.minimum(np.floor(ys).astype(int), ksize - 2) if ksize > 1 else np.zeros(len(ys), int)
    fx, fy = xs - x0, ys - y0
    k = np.zeros((ksize, ksize), dtype=np.float64)
    if ksize == 1:
        k[0, 0] = 1.0
        return k
    np.add.at(k, (y0, x0), (1 - fx) * (1 - fy))
    np.add.at(k, (y0, x0 + 1), fx * (1 - fy))
    np.add.at(k, (y0 + 1, x0), (1 - fx) * fy)
    np.add.at(k, (y0 + 1, x0 + 1), fx * fy)
    k[k < 1e-12] = 0.0
    return _normalise(k)


def motion_kernel(ksize: int, seed: int, extent: float | None = None) -> np.ndarray:
    """A motion-blur kernel of size ``ksize`` (odd) from a random camera trajectory seeded by ``seed``.

    The trajectory is centred on its bounding box and scaled so that its larger bounding-box side spans
    ``extent * (ksize - 1)`` pixels; ``extent`` defaults to a value drawn in ``[0.5, 1.0]``.
    Non-negative, 8-connected support, sums to 1. Pure function of ``(ksize, seed, extent)``."""
    ksize = _check_size(ksize)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed))))
    if extent is None:
        extent = 0.5 + 0.5 * rng.random()
    traj = motion_trajectory(rng, float(ksize))
    centre = complex((traj.real.max() + traj.real.min()) / 2, (traj.imag.max() + traj.imag.min()) / 2)
    traj = traj - centre
    half = max(np.abs(traj.real).max(), np.abs(traj.imag).max(), 1e-12)
    traj = traj * (min(max(float(extent), 0.0), 1.0) * (ksize - 1) / 2.0 / half)
    return rasterize_trajectory(traj, ksize)
