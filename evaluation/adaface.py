"""AdaFace IR-50: the face-recognition network the NTIRE 2025 real-world face restoration challenge uses for its
identity check (``eval.py`` -> ``face_alignment/inference.py``), re-implemented to load the official checkpoint
``adaface_ir50_ms1mv2.ckpt`` unchanged (weight name ``adaface-ir50-ms1mv2``).

Facts from mk-minchul/AdaFace (``net.py`` ``build_model('ir_50')``, ``inference.py``) and NTIRE's copy of them:

* Network: ``input_layer`` = conv3x3 3->64 (no bias) + BatchNorm + PReLU; ``body`` = 24 ``BasicBlockIR`` units
  in four stages of 3, 4, 14, 3 with 64, 128, 256, 512 channels, the first unit of each stage strided 2. A unit is
  ``res_layer`` = BN, conv3x3 (stride 1), BN, PReLU, conv3x3 (stride), BN, plus ``shortcut_layer`` =
  ``MaxPool2d(1, stride)`` (plain subsampling) when the channel count stays, else conv1x1(stride) + BN.
  ``output_layer`` = BN, Dropout(0.4) (identity in eval), flatten (512x7x7), ``Linear(25088, 512)``,
  ``BatchNorm1d(512, affine=False)``. Output ``(x / ||x||, ||x||)``. BatchNorm eps 1e-5 everywhere. Module
  names equal the official ones, so the checkpoint loads strictly.
* Checkpoint: a PyTorch Lightning file; the network is ``ckpt["state_dict"]`` restricted to keys starting with
  ``model.``, prefix removed (the ``head.`` keys, AdaFace's margin head, are not used).
* Input (``to_input``): a 112x112 **RGB** uint8 crop (from PIL) flipped to **BGR**, ``((x / 255) - 0.5) / 0.5``
  computed in float64, then cast to float32; NCHW.
* Alignment in NTIRE's evaluation (``inference_face``): five points per image (left eye, right eye, nose, left
  and right mouth corner, image coordinates) mapped onto ``get_reference_facial_points(default_square=True)``
  (the ArcFace 112x112 template) by ``warp_and_crop_face`` with mtcnn_pytorch's MATLAB-``cp2tform``-style
  reflective similarity (:func:`ntire_similarity`), then ``cv2.warpAffine`` (bilinear, black border). The same
  points are used for the LQ input and the restored image; the identity score is the dot product of the two
  unit features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from torch import nn

from celebref.errors import WeightError

WEIGHT_NAME = "adaface-ir50-ms1mv2"

#: mtcnn_pytorch ``REFERENCE_FACIAL_POINTS`` shifted by 8 px in x for the square 112x112 crop
#: (``get_reference_facial_points(default_square=True)``)
NTIRE_REFERENCE_112 = np.array([[38.29459953, 51.69630051], [73.53179932, 51.50139999], [56.02519989, 71.73660278],
                                [41.54930115, 92.3655014], [70.72990036, 92.20410156]], dtype=np.float64)

_STAGES = ((64, 3), (128, 4), (256, 14), (512, 3))


class BasicBlockIR(nn.Module):
    """One IR unit (official module names ``res_layer.0..5`` / ``shortcut_layer[.0, .1]``)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        if cin == cout:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class AdaFaceIR50(nn.Module):
    """AdaFace's IR-50 backbone for 112x112 input: ``forward(x)`` -> ``(unit features (N, 512), norms (N, 1))``."""

    def __init__(self):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(0.4), nn.Flatten(),
                                          nn.Linear(512 * 7 * 7, 512), nn.BatchNorm1d(512, affine=False))
        units, cin = [], 64
        for cout, n in _STAGES:
            units += [BasicBlockIR(cin, cout, 2)] + [BasicBlockIR(cout, cout, 1) for _ in range(n - 1)]
            cin = cout
        self.body = nn.Sequential(*units)  # registered after output_layer, as officially (state-dict order)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.output_layer(self.body(self.input_layer(x)))
        norm = torch.norm(x, 2, 1, True)
        return x / norm, norm


def network_state_dict(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The backbone's state dict from an AdaFace Lightning checkpoint (``state_dict`` entries under ``model.``)."""
    sd = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(sd, dict):
        raise WeightError("AdaFace checkpoint: no 'state_dict' mapping in the file")
    out = {k[len("model."):]: v for k, v in sd.items() if k.startswith("model.")}
    if not out:
        raise WeightError("AdaFace checkpoint: no 'model.' keys in its state_dict (not an AdaFace checkpoint?)")
    return out


def load_adaface(path: str | Path, device: str | torch.device = "cpu") -> AdaFaceIR50:
    """The IR-50 network with the checkpoint at ``path``, eval mode, on ``device``. Read with
    ``weights_only=True``; classes and functions the file names besides tensors (Lightning's hyper-parameters,
    callbacks) are never imported or run: each is replaced by an inert stand-in
    (:func:`celebref.weights.load_torch_checkpoint` with ``inert_globals=True``), and only ``state_dict`` is used;
    a file with non-finite tensors is refused."""
    from celebref.weights import load_torch_checkpoint

    try:
        ckpt = load_torch_checkpoint(Path(path), inert_globals=True)
    except WeightError as exc:
        raise WeightError(f"cannot read the AdaFace checkpoint: {exc}") from None
    net = AdaFaceIR50()
    sd = network_state_dict(ckpt)
    ours = net.state_dict()
    missing = [k for k in ours if k not in sd]
    unexpected = [k for k in sd if k not in ours]
    wrong = [k for k in sd if k in ours and tuple(sd[k].shape) != tuple(ours[k].shape)]
    if missing or unexpected or wrong:
        raise WeightError(f"AdaFace checkpoint {path} does not fit IR-50: missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]}, wrong shape {wrong[:3]}")
    net.load_state_dict(sd, strict=True)
    return net.eval().to(device)


# --- NTIRE alignment --------------------------------------------------------------------------------------------

def _nonreflective(uv: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """cp2tform's non-reflective similarity: least squares for the map ``xy -> uv``, returned inverted (3x3,
    row-vector convention ``[x y 1] = [u v 1] @ T``)."""
    x, y = xy[:, :1], xy[:, 1:2]
    one, zero = np.ones_like(x, dtype=np.float64), np.zeros_like(x, dtype=np.float64)
    design = np.vstack((np.hstack((x, y, one, zero)), np.hstack((y, -x, zero, one))))
    target = np.vstack((uv[:, :1], uv[:, 1:2]))
    if np.linalg.matrix_rank(design) < 4:
        raise ValueError("need two distinct points for a similarity transform")
    sc, ss, tx, ty = np.linalg.lstsq(design, target, rcond=None)[0].reshape(-1)
    t = np.linalg.inv(np.array([[sc, -ss, 0], [ss, sc, 0], [tx, ty, 1]]))
    t[:, 2] = (0, 0, 1)
    return t


def ntire_similarity(points5: np.ndarray, reference: np.ndarray = NTIRE_REFERENCE_112) -> np.ndarray:
    """The 2x3 ``cv2.warpAffine`` matrix mtcnn_pytorch's ``get_similarity_transform_for_cv2`` (reflective) gives
    for ``points5`` -> ``reference``, both first rounded to float32 as ``warp_and_crop_face`` does. Reproduced
    quirk: the reference code negates the reference x coordinates in place while trying the reflected fit, so
    both candidate fits are scored against the **mirrored** reference; the smaller residual wins (ties: the
    non-reflective one)."""
    uv = np.float32(points5)
    xy = np.float32(reference).copy()
    t1 = _nonreflective(uv, xy)
    xy[:, 0] = -xy[:, 0]  # the in-place mutation of the reference code
    t2 = _nonreflective(uv, xy) @ np.array([[-1, 0, 0], [0, 1, 0], [0, 0, 1]])

    def fwd(t):
        return (np.hstack((uv, np.ones((len(uv), 1)))) @ t)[:, :2]

    chosen = t1 if np.linalg.norm(fwd(t1) - xy) <= np.linalg.norm(fwd(t2) - xy) else t2
    return chosen[:, :2].T


def ntire_align(img: np.ndarray, points5: np.ndarray, size: int = 112) -> np.ndarray:
    """NTIRE's ``warp_and_crop_face``: RGB uint8 ``img`` warped so ``points5`` meet the 112x112 reference,
    bilinear, black outside. Returns a ``(size, size, 3)`` RGB uint8 crop."""
    if size != 112:
        raise ValueError("the NTIRE reference points are defined for 112x112 crops")
    return cv2.warpAffine(np.ascontiguousarray(img), ntire_similarity(points5), (size, size))


def to_input(crops: Sequence[np.ndarray]) -> torch.Tensor:
    """AdaFace's ``to_input`` for RGB uint8 crops: BGR, ``((x/255) - 0.5) / 0.5`` in float64, then float32 NCHW."""
    arr = np.stack([np.asarray(c)[:, :, ::-1] for c in crops]).astype(np.float64)
    return torch.from_numpy((((arr / 255.0) - 0.5) / 0.5).transpose(0, 3, 1, 2).copy()).float()


class AdaFaceEmbedder:
    """Unit-norm AdaFace features of aligned 112x112 RGB uint8 crops on ``device`` (float32 ``(N, 512)``)."""

    def __init__(self, net: AdaFaceIR50, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()

    @torch.no_grad()
    def embed_crops(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, 512), np.float32)
        feats, _ = self.net(to_input(crops).to(self.device))
        return feats.float().cpu().numpy()
