"""NIQE (Mittal, Soundararajan & Bovik 2013) exactly as BasicSR's ``calculate_niqe`` runs it.

NIQE is numerically touchy (float32 catastrophic cancellation in the local variance, an argmin over a grid
that flips on 1-ulp changes), so this port keeps the reference's float types where they matter:

1. uint8 RGB -> BT.601 Y (float32, :func:`evaluation.color.rgb_to_y`; or ``convert_to="gray"``: OpenCV
   BGR2GRAY of ``x/255``, times 255), ``crop_border``, then **rounded** (float32, half to even);
2. crop to whole 96x96 blocks *before* filtering;
3. at scales 1 and 2: ``mu = conv(img, w)``, ``sigma = sqrt(|conv(img^2, w) - mu^2|)``,
   ``mscn = (img - mu) / (sigma + 1)`` with ``w`` the 7x7 Gaussian of the parameter file (sigma 7/6), edge
   replication (scipy ``mode='nearest'``). Each convolution is evaluated in float64 and **rounded to float32**
   (what ``scipy.ndimage.convolve`` does for float32 input); the elementwise ops are float32;
4. per block (96/scale)^2, blocks in column-major order: 18 features from asymmetric generalised Gaussian fits
   (grid ``0.2:0.001:10``) of the MSCN values and of their products with the (0,1), (1,0), (1,1), (1,-1)
   ``np.roll`` shifts (wrap-around), numpy float32 statistics as in the reference;
5. between scales: MATLAB ``imresize(img/255, 0.5)`` bicubic with antialiasing (kernel a=-0.5, width 8,
   symmetric padding, H then W) in float32, times 255;
6. ``NIQE = sqrt((mu_p - mu_d) pinv((S_p + S_d)/2) (mu_p - mu_d)^T)`` against the pristine model
   (``niqe-params`` = BasicSR's ``niqe_pris_params.npz``); ``mu_d`` = nanmean, ``S_d`` = covariance of the
   NaN-free block features. Lower is better.

Steps 1-3 and 5 run in torch on the chosen device; the per-block statistics run in numpy on the CPU.
"""

from __future__ import annotations

import math
import os
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from celebref.errors import WeightError

from .base import Metric
from .color import rgb_to_y

BLOCK = 96
SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@lru_cache(maxsize=1)
def _gamma_grid() -> tuple[np.ndarray, np.ndarray]:
    gam = np.arange(0.2, 10.001, 0.001)
    r = np.array([math.gamma(2.0 / g) ** 2 / (math.gamma(1.0 / g) * math.gamma(3.0 / g)) for g in gam.tolist()])
    return gam, r


def aggd_fit(values: np.ndarray) -> tuple[float, float, float]:
    """``(alpha, beta_left, beta_right)`` of an asymmetric generalised Gaussian (moment matching on the grid)."""
    gam, r_gam = _gamma_grid()
    x = values.reshape(-1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        left_std = np.sqrt(np.mean(x[x < 0] ** 2))
        right_std = np.sqrt(np.mean(x[x > 0] ** 2))
        gammahat = left_std / right_std
        rhat = (np.mean(np.abs(x))) ** 2 / np.mean(x ** 2)
        rhatnorm = (rhat * (gammahat ** 3 + 1) * (gammahat + 1)) / ((gammahat ** 2 + 1) ** 2)
        alpha = float(gam[np.argmin((r_gam - rhatnorm) ** 2)])
        k = math.sqrt(math.gamma(1.0 / alpha) / math.gamma(3.0 / alpha))
        return alpha, left_std * k, right_std * k


def block_features(block: np.ndarray) -> list[float]:
    """The 18 NIQE features of one 2-D MSCN block."""
    alpha, bl, br = aggd_fit(block)
    feat = [alpha, (bl + br) / 2]
    for shift in SHIFTS:
        prod = block * np.roll(block, shift, axis=(0, 1))
        alpha, bl, br = aggd_fit(prod)
        mean = (br - bl) * (math.gamma(2.0 / alpha) / math.gamma(1.0 / alpha))
        feat += [alpha, mean, bl, br]
    return [float(v) for v in feat]


def _conv_f32(x32: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """``convolve(x, window, mode='nearest')`` of float32 ``(H, W)``: float64 sums rounded to float32."""
    k = window.shape[-1]
    if x32.device.type == "cpu":
        import cv2

        kern = np.ascontiguousarray(window.numpy()[::-1, ::-1], dtype=np.float64)  # convolution = flipped correlation
        out = cv2.filter2D(x32.numpy().astype(np.float64), cv2.CV_64F, kern, anchor=(k // 2, k // 2),
                           borderType=cv2.BORDER_REPLICATE)
        return torch.from_numpy(out.astype(np.float32))
    w = torch.flip(window.to(x32.device, torch.float64), dims=(0, 1)).view(1, 1, k, k)
    x = F.pad(x32.to(torch.float64).view(1, 1, *x32.shape), (k // 2,) * 4, mode="replicate")
    return F.conv2d(x, w)[0, 0].to(torch.float32)


def mscn(img: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """float32 ``(H, W)`` -> float32 MSCN coefficients (float64 convolutions rounded to float32)."""
    mu = _conv_f32(img, window)
    sigma = torch.sqrt(torch.abs(_conv_f32(img * img, window) - mu * mu))
    return (img - mu) / (sigma + 1)


def _cubic(x: torch.Tensor) -> torch.Tensor:
    ax = torch.abs(x)
    ax2, ax3 = ax ** 2, ax ** 3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1).to(ax.dtype) + \
        (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)).to(ax.dtype)


def _resize_weights(in_len: int, out_len: int, scale: float) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """MATLAB bicubic (antialiased when shrinking) weights/indices, float32 as in BasicSR's port."""
    width = 4.0 / scale if scale < 1 else 4.0
    x = torch.linspace(1, out_len, out_len)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    p = math.ceil(width) + 2
    idx = left.view(out_len, 1) + torch.linspace(0, p - 1, p).view(1, p)
    dist = u.view(out_len, 1) - idx
    wts = scale * _cubic(dist * scale) if scale < 1 else _cubic(dist)
    wts = wts / wts.sum(1, keepdim=True)
    zeros = (wts == 0).sum(0)
    if int(zeros[0]) != 0:
        idx, wts = idx[:, 1:], wts[:, 1:]
    if int(zeros[-1]) != 0:
        idx, wts = idx[:, :-1], wts[:, :-1]
    pad_s = int(-idx.min() + 1)
    pad_e = int(idx.max() - in_len)
    return wts.contiguous(), (idx + pad_s - 1).long(), pad_s, pad_e


def _resize_axis0(img: torch.Tensor, scale: float) -> torch.Tensor:
    n = img.shape[0]
    out_len = math.ceil(n * scale)
    wts, idx, pad_s, pad_e = _resize_weights(n, out_len, scale)
    parts = []
    if pad_s > 0:
        parts.append(torch.flip(img[:pad_s], dims=(0,)))
    parts.append(img)
    if pad_e > 0:
        parts.append(torch.flip(img[n - pad_e:], dims=(0,)))
    aug = torch.cat(parts, 0)
    gathered = aug[idx.to(img.device)]  # (out, taps, ...)
    return torch.einsum("ot,ot...->o...", wts.to(img.device), gathered)


def imresize_matlab(img: torch.Tensor, scale: float) -> torch.Tensor:
    """MATLAB-style bicubic resize of float32 ``(H, W)`` (antialiased when shrinking), H first then W."""
    return _resize_axis0(_resize_axis0(img, scale).t(), scale).t().contiguous()


def niqe_of_y(y: torch.Tensor, mu_pris: np.ndarray, cov_pris: np.ndarray, window: torch.Tensor) -> float:
    """NIQE of a rounded float32 luminance image ``(H, W)`` in ``[0, 255]``."""
    h, w = y.shape
    nbh, nbw = h // BLOCK, w // BLOCK
    if nbh == 0 or nbw == 0:
        raise ValueError(f"NIQE needs at least one {BLOCK}x{BLOCK} block, image is {h}x{w}")
    img = y[: nbh * BLOCK, : nbw * BLOCK]
    feats = []
    for scale in (1, 2):
        m = mscn(img, window).cpu().numpy()
        bs = BLOCK // scale
        feats.append(np.array([block_features(m[ih * bs:(ih + 1) * bs, iw * bs:(iw + 1) * bs])
                               for iw in range(nbw) for ih in range(nbh)]))
        if scale == 1:
            img = imresize_matlab(img / 255.0, 0.5) * 255.0
    dist = np.concatenate(feats, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mu_d = np.nanmean(dist, axis=0)
        cov_d = np.cov(dist[~np.isnan(dist).any(axis=1)], rowvar=False)
    inv = np.linalg.pinv((cov_pris + cov_d) / 2)
    diff = mu_pris - mu_d
    q = np.matmul(np.matmul(diff, inv), np.transpose(diff))
    return float(np.sqrt(np.squeeze(q)))


def load_niqe_params(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``mu_pris_param (1, 36)``, ``cov_pris_param (36, 36)``, ``gaussian_window (7, 7)`` from the npz."""
    try:
        with np.load(Path(path), allow_pickle=False) as z:
            p = {k: np.array(z[k], np.float64) for k in ("mu_pris_param", "cov_pris_param", "gaussian_window")}
    except (OSError, ValueError, KeyError) as e:
        raise WeightError(f"cannot read NIQE parameters {path}: {e}") from None
    if p["mu_pris_param"].size != 36 or p["cov_pris_param"].shape != (36, 36):
        raise WeightError(f"{path}: unexpected NIQE parameter shapes")
    return p


class NIQE(Metric):
    """No-reference NIQE, BasicSR conventions. Options: ``crop_border`` (default 0), ``convert_to``
    (``"y"`` default, or ``"gray"``), ``params`` (path of the parameter npz; default the weight store's
    ``niqe-params``)."""

    name = "niqe"
    columns = ("niqe",)
    higher_is_better = {"niqe": False}
    needs_reference = False
    weights = ("niqe-params",)
    defaults = {"crop_border": 0, "convert_to": "y", "params": None}

    def __init__(self, device="cpu", **options):
        super().__init__(device, **options)
        if self.options["convert_to"] not in ("y", "gray"):
            from celebref.errors import ConfigError

            raise ConfigError(f"niqe convert_to must be 'y' or 'gray', got {self.options['convert_to']!r}")
        self.params: dict[str, np.ndarray] | None = None

    def _load(self) -> None:
        path = self.options["params"]
        if path is None:
            from celebref.weights import weight_path

            path = weight_path("niqe-params")
        self.params = load_niqe_params(path)

    def _describe(self) -> dict:
        return {"reference": "BasicSR calculate_niqe (basicsr/metrics/niqe.py)", "block": BLOCK,
                "channels": "Y (BT.601 MATLAB, rounded)" if self.options["convert_to"] == "y" else "gray (OpenCV), rounded",
                "crop_border": int(self.options["crop_border"]), "precision": "float32 MSCN as the reference",
                "pristine_model": "MATLAB NIQE release modelparameters.mat (niqe_pris_params.npz)"}

    def _luma(self, images: torch.Tensor) -> torch.Tensor:
        if self.options["convert_to"] == "y":
            return rgb_to_y(images)[:, 0]
        import cv2

        out = []
        for im in images.cpu().numpy():
            bgr = im[::-1].transpose(1, 2, 0).astype(np.float32)
            out.append(torch.from_numpy(cv2.cvtColor(bgr / 255.0, cv2.COLOR_BGR2GRAY) * 255.0))
        return torch.stack(out).to(images.device)

    def _compute(self, pred, target):
        assert self.params is not None
        luma = self._luma(pred.to(self.device))
        c = int(self.options["crop_border"])
        if c:
            luma = luma[:, c:-c, c:-c]
        luma = torch.round(luma)
        window = torch.from_numpy(self.params["gaussian_window"])
        vals = []
        for i in range(luma.shape[0]):
            try:
                vals.append(niqe_of_y(luma[i], self.params["mu_pris_param"], self.params["cov_pris_param"], window))
            except ValueError as e:
                self.last_failures[i] = str(e)
                vals.append(float("nan"))
        return {"niqe": torch.tensor(vals, dtype=torch.float64)}
