"""The face alignment of the official DFDNet script (``test_FaceDict.py``, ``align_and_save``).

A similarity transform (Umeyama, ``skimage.transform.SimilarityTransform`` estimation) maps five
points onto the FFHQ template at 512 (``packages/FFHQ_template.npy / 2``), then
``cv2.warpAffine(img, M, (512, 512))`` (bilinear, constant black border). The inverse for pasting
back onto an image upscaled ``s`` times is estimated from the template to ``points * s``; the official
script stores it with ``np.savetxt(fmt='%.3f')`` and reads it back, i.e. rounded to 3 decimals.

Point order (dlib's 5-point predictor): image-right eye outer, image-right eye inner, image-left
eye outer, image-left eye inner, nose base. :func:`five_points_from_68` builds the same order from
68-point landmarks (indices 45, 42, 36, 39, 33). Images are RGB uint8 ``(H, W, 3)``.
"""

from __future__ import annotations

import cv2
import numpy as np

# FFHQ_template.npy / 2: the 5 template points of a 512x512 crop (dlib 5-point order). The template
# coordinates at 1024 are integers / 101.
FFHQ_TEMPLATE_512 = np.array([
    [69364, 49351],
    [59264, 49853],
    [34129, 49327],
    [44233, 49845],
    [51872, 68529],
], dtype=np.float64) / 101.0 / 2
FIVE_FROM_68 = (45, 42, 36, 39, 33)


def five_points_from_68(landmarks68: np.ndarray) -> np.ndarray:
    """``(5, 2)`` points in the template's order from ``(68, 2)`` landmarks."""
    return np.asarray(landmarks68, dtype=np.float64)[list(FIVE_FROM_68)]


def similarity_matrix(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``(2, 3)`` least-squares similarity (Umeyama) mapping ``source`` points onto ``target``."""
    from skimage.transform import SimilarityTransform

    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    if hasattr(SimilarityTransform, "from_estimate"):
        tform = SimilarityTransform.from_estimate(src, dst)
        if not tform:
            raise ValueError("similarity transform estimation failed (degenerate points)")
    else:  # scikit-image < 0.26
        tform = SimilarityTransform()
        if not tform.estimate(src, dst):
            raise ValueError("similarity transform estimation failed (degenerate points)")
    return np.asarray(tform.params[:2, :], dtype=np.float64)


def alignment_matrix(points5: np.ndarray, template: np.ndarray = FFHQ_TEMPLATE_512) -> np.ndarray:
    """The official crop matrix ``M`` (image -> 512 crop)."""
    return similarity_matrix(points5, template)


def inverse_matrix(points5: np.ndarray, upscale: int = 1, template: np.ndarray = FFHQ_TEMPLATE_512,
                   savetxt_rounding: bool = True) -> np.ndarray:
    """The official paste-back matrix (512 crop -> image upscaled ``upscale`` times), optionally
    rounded to 3 decimals as the official ``np.savetxt('%.3f')`` / ``np.loadtxt`` round trip does."""
    m = similarity_matrix(template, np.asarray(points5, dtype=np.float64) * upscale)
    if savetxt_rounding:
        m = np.array([[float(f"{v:.3f}") for v in row] for row in m])
    return m


def align_face(image: np.ndarray, points5: np.ndarray, size: int = 512,
               template: np.ndarray = FFHQ_TEMPLATE_512) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``image`` (RGB uint8) to the 512 FFHQ template crop; returns ``(crop, M)``."""
    m = alignment_matrix(points5, template * (size / 512.0) if size != 512 else template)
    crop = cv2.warpAffine(image, m, (size, size))
    return crop, m


def paste_back(image: np.ndarray, face: np.ndarray, inv_matrix: np.ndarray, upscale: int = 1) -> np.ndarray:
    """Blend a restored 512 crop back into the whole image upscaled ``upscale`` times, as the official
    ``reverse_align`` does (RGB uint8 in and out):

    1. warp the face with ``inv_matrix`` (see :func:`inverse_matrix`) to the upscaled canvas, and a
       ones-mask with it; 2. erode the mask by ``2*upscale`` to drop the warped border; 3. ``w_edge =
       int(sqrt(mask area)) // 20``, erode by ``2*w_edge``, Gaussian blur of size ``2*w_edge+1``;
    4. blend over ``cv2.resize(image, x upscale)`` (bilinear) and truncate to uint8.
    """
    h, w = image.shape[:2]
    size = (w * upscale, h * upscale)
    inv_face = cv2.warpAffine(face, inv_matrix, size)
    mask = np.ones((face.shape[0], face.shape[1], 3), dtype=np.float32)
    inv_mask = cv2.warpAffine(mask, inv_matrix, size)
    background = cv2.resize(image, size)
    mask_inner = cv2.erode(inv_mask, np.ones((2 * upscale, 2 * upscale), np.uint8))
    face_inner = mask_inner * inv_face
    area = np.sum(mask_inner) // 3
    w_edge = int(area ** 0.5) // 20
    mask_center = cv2.erode(mask_inner, np.ones((w_edge * 2, w_edge * 2), np.uint8))
    soft = cv2.GaussianBlur(mask_center, (w_edge * 2 + 1, w_edge * 2 + 1), 0)
    merged = soft * face_inner + (1 - soft) * background
    return merged.astype(np.uint8)
