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

Reference statistics: features of the test set's ground truth, a statistics file (``.npz`` with ``mu``,
``sigma``, ``n``, ``extractor``, ``resize``; pytorch-fid's and clean-fid/pyiqa's ``.npz`` with ``mu``/``sigma``;
BasicSR's ``.pth`` with ``mean``/``cov`` numpy arrays, read with ``weights_only=True``), or a named reference
(:data:`REFERENCES`: ``ffhq-512`` = BasicSR's ``inception_FFHQ_512-f7b384ab.pth`` used by GFPGAN/VQFR/NTIRE,
``ffhq-512-clean`` = pyiqa's ``ffhq_clean_trainval70k_512.npz``) resolved through the weight store.
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


#: Named reference statistics (``--fid-reference NAME``): weight-store entry and the feature convention they were
#: computed with. ``compatible``: the convention equals this module's extractor (pytorch-fid's FID Inception,
#: bilinear 299 without antialiasing, inputs in [-1, 1]) up to float rounding.
REFERENCES: dict[str, dict[str, Any]] = {
    "ffhq-512": {
        "weight": "fid-stats-ffhq-512-basicsr", "format": "basicsr-pth", "n": 50000, "size": 512,
        "extractor": "pytorch-fid FID Inception (pt_inception-2015-12-05), BasicSR load_patched_inception_v3",
        "resize": "bilinear 299x299, align_corners=False, no antialias, on (x/255 - 0.5)/0.5 inputs",
        "used_by": "BasicSR calculate_fid_folder.py, GFPGAN/VQFR evaluation, NTIRE 2025 real-world FR eval.py",
        "compatible": True,
    },
    "ffhq-512-clean": {
        "weight": "fid-stats-ffhq-512-clean", "format": "clean-fid-npz", "n": 70000, "size": 512,
        "extractor": "clean-fid Inception features (pyiqa fid, mode='clean', dataset_name='FFHQ', split='trainval70k')",
        "resize": "clean: PIL bicubic 299x299 per float32 channel, clip [0, 255], then (x - 128) / 128",
        "used_by": "pyiqa create_metric('fid')(folder, dataset_name='FFHQ', dataset_res=512, "
                   "dataset_split='trainval70k')",
        "compatible": False,
    },
}
REFERENCE_ALIASES = {"inception_ffhq_512": "ffhq-512", "ffhq512": "ffhq-512", "basicsr-ffhq-512": "ffhq-512",
                     "ffhq_clean_trainval70k_512": "ffhq-512-clean", "pyiqa-ffhq-512": "ffhq-512-clean"}


def reference_name(text: str) -> str | None:
    """The canonical name of a named reference (``ffhq-512``, ``ffhq-512-clean``, aliases, case and ``_``/``-``
    insensitive, ``.pth``/``.npz`` suffix ignored), ``None`` when ``text`` names none."""
    key = str(text).strip().lower()
    for suffix in (".pth", ".npz"):
        key = key[:-len(suffix)] if key.endswith(suffix) else key
    key = key.replace("_", "-")
    aliases = {k.replace("_", "-"): v for k, v in REFERENCE_ALIASES.items()}
    key = aliases.get(key, key)
    return key if key in REFERENCES else None


def _numpy_safe_globals() -> list[Any]:
    """What ``torch.load(weights_only=True)`` must accept to read plain numpy arrays (BasicSR saves its statistics
    as numpy arrays): ``_reconstruct`` under its numpy 1 and 2 names, ``ndarray``, ``dtype`` and float dtypes.
    Nothing that can run code."""
    core = getattr(np, "_core", None) or np.core
    rec = core.multiarray._reconstruct
    allowed: list[Any] = [rec, (rec, "numpy.core.multiarray._reconstruct"), (rec, "numpy._core.multiarray._reconstruct"),
                          np.ndarray, np.dtype]
    for t in (np.float16, np.float32, np.float64, np.int64, np.int32):
        allowed.append(type(np.dtype(t)))
    return allowed


def _load_pth(path: Path) -> tuple[np.ndarray, np.ndarray, int, dict[str, Any]]:
    """BasicSR's statistics file: ``torch.save(dict(name, size, mean, cov))`` (numpy arrays, legacy format), read
    with ``weights_only=True`` (numpy arrays allow-listed, nothing else)."""
    if not hasattr(torch.serialization, "safe_globals"):
        raise ConfigError(f"{path}: reading BasicSR .pth statistics safely needs torch >= 2.5 (weights_only with "
                          "numpy arrays allow-listed); with a newer torch, save its 'mean'/'cov' as .npz mu/sigma")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle errors, truncated files, foreign globals
        first = str(e).strip().splitlines()
        why = next((ln.strip() for ln in first if "Unsupported global" in ln), first[0] if first else type(e).__name__)
        raise ConfigError(f"cannot read FID statistics {path} safely (weights_only): {why}") from None
    if not isinstance(obj, dict) or not {"mean", "cov"} <= set(obj):
        raise ConfigError(f"{path}: not a BasicSR FID statistics file (needs 'mean' and 'cov', has "
                          f"{sorted(obj) if isinstance(obj, dict) else type(obj).__name__})")
    arr = {k: (obj[k].numpy() if isinstance(obj[k], torch.Tensor) else np.asarray(obj[k])) for k in ("mean", "cov")}
    meta = {k: obj[k] for k in ("name", "size") if k in obj and isinstance(obj[k], (str, int, float))}
    meta["format"] = "basicsr-pth"
    return np.array(arr["mean"], np.float64), np.array(arr["cov"], np.float64), -1, meta


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, int, dict[str, Any]]:
    """Ours (``mu``, ``sigma``, ``n``, ``meta``), pytorch-fid's or clean-fid/pyiqa's (``mu``, ``sigma``); no pickle."""
    with np.load(path, allow_pickle=False) as z:
        if "mu" not in z.files or "sigma" not in z.files:
            raise ConfigError(f"{path}: not an FID statistics file (needs arrays 'mu' and 'sigma', has {z.files})")
        mu, sigma = np.array(z["mu"], np.float64), np.array(z["sigma"], np.float64)
        n = int(z["n"]) if "n" in z.files else -1
        meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
    return mu, sigma, n, meta


def load_statistics(source: str | os.PathLike) -> FIDStatistics:
    """Reference statistics from a file or a named reference (:data:`REFERENCES`, resolved through the weight store).

    Files: ``.npz`` written by :func:`save_statistics`, pytorch-fid or clean-fid/pyiqa (``mu``, ``sigma``; read
    without pickle); ``.pth``/``.pt`` written by BasicSR's ``calculate_fid_stats_from_datasets.py`` (``mean``,
    ``cov``; read with ``torch.load(weights_only=True)``). A named reference records its convention in ``meta``
    and warns when it differs from this module's feature extractor."""
    path = Path(source)
    ref = None
    if not path.is_file():
        ref = reference_name(str(source))
        if ref is None and path.suffix.lower() not in (".npz", ".pth", ".pt"):
            raise ConfigError(f"FID reference {str(source)!r} is neither a statistics file nor a named reference "
                              f"({', '.join(REFERENCES)})")
    licence = None
    if ref is not None:
        from celebref.weights import get, weight_path

        path = weight_path(REFERENCES[ref]["weight"])
        w = get(REFERENCES[ref]["weight"])
        licence = ("NON-COMMERCIAL: " if w.noncommercial else "") + w.licence
    try:
        loader = _load_pth if path.suffix.lower() in (".pth", ".pt") else _load_npz
        mu, sigma, n, meta = loader(path)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read FID statistics {path}: {e}") from None
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise ConfigError(f"{path}: inconsistent shapes mu {mu.shape}, sigma {sigma.shape}")
    if ref is not None:
        info = REFERENCES[ref]
        n = int(info["n"]) if n < 0 else n
        meta = {**meta, "reference": ref, "file": path.name, "licence": licence,
                **{k: info[k] for k in ("extractor", "resize", "used_by", "compatible")}}
        if not info["compatible"]:
            warnings.warn(f"FID reference {ref!r} was computed with another feature convention ({info['resize']}); "
                          f"celebref's features use {RESIZE}: the FID is not comparable with {info['used_by']}",
                          stacklevel=2)
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
