"""FID (Heusel et al. 2017) as pytorch-fid computes it, with an eigenvalue-based Frechet distance.

Features: :class:`evaluation.inception.FIDInception` (pytorch-fid's FID Inception, weights
``fid-inception`` = ``pt_inception-2015-12-05-6726825d.pth``) on uint8 RGB images -> ``/255`` -> bilinear
299x299 -> ``2x-1`` -> 2048-d pool3 features (float32, returned as float64). Features are cached per image by
content hash (sha256 of the decoded pixels and shape) and extractor id, so re-evaluation never recomputes them.

Frechet distance between Gaussians ``(mu1, S1)`` and ``(mu2, S2)`` (``S = np.cov(X, rowvar=False)``, ddof 1):
``|mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2)``, all in float64. ``tr sqrt(S1 S2)`` is computed without a
general matrix square root (scipy's ``sqrtm`` has been broken in some releases and is slow):
``S1 S2`` is similar to the symmetric PSD matrix ``S1^1/2 S2 S1^1/2``, so ``tr sqrt(S1 S2) = sum_i sqrt(l_i)``
over its eigenvalues (``eigh``; round-off negatives of singular covariances are clipped to 0, which is how
rank-deficient covariances -- fewer images than dimensions, constant dimensions -- are handled). With the
features at hand and few images, the same trace is the nuclear norm of ``Xc Yc^T / sqrt((n1-1)(n2-1))``
(exact, much faster). ``offset`` adds ``offset * I`` to both covariances (pytorch-fid's fallback, taken only
when its ``sqrtm`` fails).

State (the stateful contract of :mod:`evaluation.base`): :class:`~evaluation.moments.FeatureMoments`, float64
moments in input order (raw features kept up to 2048 images), so FID is bit-identical for any engine, worker
count or restart; :meth:`FID.compute_dataset` scores exactly as :meth:`FID.score` while both feature sets are
kept, else from the accumulated statistics.

Reference statistics: features of the test set's ground truth, or a statistics file (``.npz`` with ``mu``,
``sigma``, ``n``, ``extractor``, ``resize``; pytorch-fid's own ``.npz`` with ``mu``/``sigma`` also loads).
FID is biased upwards for small N: a warning is issued below 2048 images and N is always recorded.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from celebref.device import set_exact_math
from celebref.errors import ConfigError
from celebref.fsutil import atomic_write_bytes

from .base import Metric, check_images
from .inception import FIDInception
from .moments import FeatureMoments

MIN_RECOMMENDED_N = 2048
RESIZE = "bilinear 299x299, align_corners=False, no antialias (pytorch-fid)"


# --- Frechet distance ----------------------------------------------------------------------------

def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, u = np.linalg.eigh(s)
    return (u * np.sqrt(np.clip(w, 0.0, None))) @ u.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``tr sqrt(S1 S2)`` for symmetric PSD ``S1, S2`` (float64, eigenvalue-based; see module docstring)."""
    r = _psd_sqrt(np.asarray(sigma1, np.float64))
    m = r @ np.asarray(sigma2, np.float64) @ r
    m = (m + m.T) / 2.0
    lam = np.linalg.eigvalsh(m)
    return float(np.sum(np.sqrt(np.clip(lam, 0.0, None))))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     offset: float = 0.0) -> float:
    """Frechet distance between two Gaussians, float64 (``offset``: add ``offset * I`` to both covariances)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ConfigError(f"FID statistics do not match: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}")
    if not (np.isfinite(s1).all() and np.isfinite(s2).all() and np.isfinite(mu1).all() and np.isfinite(mu2).all()):
        raise ConfigError("FID statistics contain NaN or infinite values")
    if offset:
        eye = np.eye(s1.shape[0])
        s1, s2 = s1 + offset * eye, s2 + offset * eye
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2))


def frechet_distance_from_features(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance of the Gaussians fitted to feature sets ``x (n1, d)`` and ``y (n2, d)`` (float64).

    Uses the nuclear-norm form when ``n1 * n2 <= d * d`` (exact, cheap), else the covariance form."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ConfigError(f"feature sets must be (n, d) with the same d, got {x.shape} and {y.shape}")
    if len(x) < 2 or len(y) < 2:
        raise ConfigError(f"FID needs at least 2 images per set, got {len(x)} and {len(y)}")
    n1, n2, d = len(x), len(y), x.shape[1]
    if n1 * n2 > d * d:
        return frechet_distance(*statistics(x), *statistics(y))
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - mu1, y - mu2
    tr1 = float(np.sum(xc * xc)) / (n1 - 1)
    tr2 = float(np.sum(yc * yc)) / (n2 - 1)
    nuc = float(np.sum(np.linalg.svd(xc @ yc.T, compute_uv=False)))
    diff = mu1 - mu2
    return float(diff @ diff + tr1 + tr2 - 2.0 * nuc / np.sqrt((n1 - 1) * (n2 - 1)))


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mu, sigma)`` = ``(mean(X, 0), np.cov(X, rowvar=False))`` in float64 (pytorch-fid's statistics)."""
    x = np.asarray(features, np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


# --- statistics files ----------------------------------------------------------------------------

@dataclass
class FIDStatistics:
    """Reference statistics: ``mu (d,)``, ``sigma (d, d)`` float64, ``n`` images (-1 if unknown), metadata."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_features(cls, features: np.ndarray, **meta: Any) -> "FIDStatistics":
        mu, sigma = statistics(features)
        return cls(mu, sigma, int(len(features)), dict(meta))


def save_statistics(path: str | os.PathLike, stats: FIDStatistics) -> None:
    """Write ``.npz`` (``mu``, ``sigma``, ``n``, ``meta`` as JSON) atomically."""
    buf = io.BytesIO()
    np.savez(buf, mu=stats.mu, sigma=stats.sigma, n=np.int64(stats.n),
             meta=np.array(json.dumps(stats.meta, sort_keys=True, default=str)))
    atomic_write_bytes(path, buf.getvalue())


def load_statistics(path: str | os.PathLike) -> FIDStatistics:
    """Read a statistics file written by :func:`save_statistics` or pytorch-fid (``mu``, ``sigma``)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if "mu" not in z.files or "sigma" not in z.files:
                raise ConfigError(f"{path}: not an FID statistics file (needs arrays 'mu' and 'sigma', has {z.files})")
            mu, sigma = np.array(z["mu"], np.float64), np.array(z["sigma"], np.float64)
            n = int(z["n"]) if "n" in z.files else -1
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read FID statistics {path}: {e}") from None
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise ConfigError(f"{path}: inconsistent shapes mu {mu.shape}, sigma {sigma.shape}")
    if n < 0:
        warnings.warn(f"{path}: the number of images behind these statistics is not recorded", stacklevel=2)
    return FIDStatistics(mu, sigma, n, meta)


# --- the metric ------------------------------------------------------------------------------------

def image_key(image_chw_uint8: torch.Tensor) -> str:
    """Content hash of one uint8 ``(3, H, W)`` image (pixels + shape)."""
    arr = image_chw_uint8.detach().to("cpu").contiguous().numpy()
    h = hashlib.sha256(f"{arr.shape}|".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


class FID(Metric):
    """Frechet Inception Distance (dataset level; lower is better). Options: ``max_batch`` (images per
    forward pass), ``cache`` (bool, default True), ``cache_dir`` (default ``<CELEBREF_HOME>/cache/fid-features``)."""

    name = "fid"
    columns = ("fid",)
    higher_is_better = {"fid": False}
    dataset_level = True
    needs_reference = True
    weights = ("fid-inception",)
    defaults = {"max_batch": 16, "cache": True, "cache_dir": None}

    def __init__(self, device="cpu", **options):
        super().__init__(device, **options)
        self.model: FIDInception | None = None
        self.extractor_id: str | None = None
        self.last_score: dict[str, Any] = {}

    def _load(self) -> None:
        from celebref.weights import file_sha256, load_torch_checkpoint, unwrap_state_dict

        model = FIDInception()
        model.load_checkpoint_state_dict(unwrap_state_dict(load_torch_checkpoint("fid-inception")), source="fid-inception")
        self.set_model(model, extractor_id="pt_inception-2015-12-05:" + file_sha256("fid-inception")[:16])

    def set_model(self, model: FIDInception, extractor_id: str) -> "FID":
        """Use an already-built network; ``extractor_id`` names its weights in the feature cache."""
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda":
            set_exact_math()  # no TF32: float32 parity with the reference
        self.extractor_id = extractor_id
        self.loaded = True
        return self

    def _describe(self) -> dict:
        return {"reference": "pytorch-fid (mseitzer) InceptionV3([3], resize_input=True, normalize_input=True, "
                             "use_fid_inception=True) + calculate_frechet_distance",
                "extractor": self.extractor_id, "features": "pool3, 2048-d", "resize": RESIZE,
                "input_range": "uint8/255 then 2x-1", "frechet": "float64, eigenvalue-based tr sqrt(S1 S2)",
                "min_recommended_n": MIN_RECOMMENDED_N}

    # features
    def _cache_dir(self) -> Path | None:
        if not self.options["cache"]:
            return None
        base = self.options["cache_dir"]
        if base is None:
            from celebref.weights import home

            base = Path(home()) / "cache" / "fid-features"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(self.extractor_id))
        return Path(base) / safe

    def _forward(self, images: torch.Tensor) -> np.ndarray:
        assert self.model is not None
        out = []
        step = max(int(self.options["max_batch"]), 1)
        with torch.no_grad():
            for i in range(0, images.shape[0], step):
                x = images[i:i + step].to(self.device).to(torch.float32).div(255.0)
                out.append(self.model(x).to("cpu", torch.float32).numpy())
        return np.concatenate(out, axis=0) if out else np.zeros((0, 2048), np.float32)

    def features(self, images: torch.Tensor) -> np.ndarray:
        """``(N, 2048)`` float64 pool3 features of uint8 RGB ``(N, 3, H, W)`` (cached by content hash)."""
        check_images(images, "images")
        self._ensure_loaded()
        cache = self._cache_dir()
        n = images.shape[0]
        feats = np.zeros((n, 2048), np.float32)
        keys = [image_key(images[i]) for i in range(n)] if cache is not None else []
        todo = []
        for i in range(n):
            hit = None
            if cache is not None:
                f = cache / keys[i][:2] / f"{keys[i]}.npy"
                if f.is_file():
                    try:
                        hit = np.load(f, allow_pickle=False)
                    except (OSError, ValueError):
                        hit = None
            if hit is not None and hit.shape == (2048,):
                feats[i] = hit
            else:
                todo.append(i)
        if todo:
            new = self._forward(images[todo])
            for j, i in enumerate(todo):
                feats[i] = new[j]
                if cache is not None:
                    buf = io.BytesIO()
                    np.save(buf, new[j])
                    atomic_write_bytes(cache / keys[i][:2] / f"{keys[i]}.npy", buf.getvalue())
        return feats.astype(np.float64)

    def features_for_paths(self, paths: Sequence[str | os.PathLike], chunk: int = 64) -> np.ndarray:
        """Features of image files, read in chunks (all images must share one size within a chunk)."""
        from celebref.imageio import read_image

        out = []
        for i in range(0, len(paths), chunk):
            arrs = [read_image(p) for p in paths[i:i + chunk]]
            out.append(self.features(torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()))
        return np.concatenate(out, axis=0) if out else np.zeros((0, 2048))

    # score
    def score(self, pred_features: np.ndarray, reference: np.ndarray | FIDStatistics | str | os.PathLike) -> float:
        """FID between ``pred_features (N, 2048)`` and a reference: features ``(M, 2048)``, a
        :class:`FIDStatistics` or a statistics-file path. ``self.last_score`` records N and M."""
        x = np.asarray(pred_features, np.float64)
        if isinstance(reference, (str, os.PathLike)):
            reference = load_statistics(reference)
        if isinstance(reference, FIDStatistics):
            mu1, s1 = statistics(x)
            value = frechet_distance(mu1, s1, reference.mu, reference.sigma)
            n_ref, ref_meta = reference.n, reference.meta
        else:
            y = np.asarray(reference, np.float64)
            value = frechet_distance_from_features(x, y)
            n_ref, ref_meta = len(y), {}
        self.last_score = {"fid": value, "n": int(len(x)), "n_reference": int(n_ref), "reference_meta": ref_meta}
        small = [f"{what}={k}" for what, k in (("N", len(x)), ("reference N", n_ref)) if 0 <= k < MIN_RECOMMENDED_N]
        if small:
            warnings.warn(f"FID from {', '.join(small)} images (< {MIN_RECOMMENDED_N}): biased upwards; "
                          "compare only values computed at equal N", stacklevel=2)
        return value

    # stateful contract (evaluation.base): float64 moments in input order
    def new_state(self) -> FeatureMoments:
        return FeatureMoments()

    def update_state(self, state: FeatureMoments, images: torch.Tensor) -> None:
        state.add(self.features(images))

    def load_reference(self, path: str | os.PathLike) -> FIDStatistics:
        return load_statistics(path)

    def compute_dataset(self, state: FeatureMoments, reference: FeatureMoments | FIDStatistics | None) -> float:
        """FID of the accumulated features against ``reference`` (the ground truth's state, or stored
        statistics). With both feature sets kept this is exactly :meth:`score` on the arrays; otherwise the
        covariance form on the accumulated statistics (equal to float64 precision)."""
        x = state.features
        if isinstance(reference, FeatureMoments):
            y = reference.features
            if x is not None and y is not None:
                return float(self.score(x, y))
            mu2, s2 = reference.statistics()
            n_ref, meta = reference.n, {}
        elif isinstance(reference, FIDStatistics):
            if x is not None:
                return float(self.score(x, reference))
            mu2, s2, n_ref, meta = reference.mu, reference.sigma, reference.n, reference.meta
        else:
            raise ConfigError(f"unsupported FID reference {type(reference).__name__}")
        mu1, s1 = state.statistics()
        value = frechet_distance(mu1, s1, mu2, s2)
        self.last_score = {"fid": value, "n": state.n, "n_reference": int(n_ref), "reference_meta": meta}
        small = [f"{what}={k}" for what, k in (("N", state.n), ("reference N", n_ref)) if 0 <= k < MIN_RECOMMENDED_N]
        if small:
            warnings.warn(f"FID from {', '.join(small)} images (< {MIN_RECOMMENDED_N}): biased upwards; "
                          "compare only values computed at equal N", stacklevel=2)
        return value
