"""Image I/O: the one place where files become arrays and arrays become files.

Canonical in-memory formats (every module of the toolkit uses these):

* **array**: ``numpy.ndarray``, ``uint8``, shape ``(H, W, 3)``, **RGB** channel order (not OpenCV's BGR).
* **tensor**: ``torch.float32``, shape ``(N, 3, H, W)``, RGB, values in ``[0, 1]``
  (:func:`to_tensor` / :func:`from_tensor`). Methods that want another range (e.g. ``[-1, 1]``)
  convert from this inside their own code.

Reading (:func:`read_image`) accepts JPEG, PNG, WebP, BMP and TIFF (first frame of multi-frame files) and
normalises every variant to the canonical array:

* EXIF orientation is applied (the array is what a viewer shows);
* grayscale and palette images become 3 identical channels;
* an alpha channel is composited **over a white background** (``out = a*rgb + (1-a)*255``, rounded);
* 16-bit images are reduced to 8 bits by rounding ``x / 257`` (65535 -> 255 exactly);
* CMYK (including Adobe's inverted CMYK JPEGs) is converted to RGB by Pillow;
* files whose header claims more than ``max_pixels`` pixels are refused before decoding
  (decompression-bomb guard; default 100 megapixels, ``CELEBREF_MAX_PIXELS`` overrides it).

Every failure (empty, truncated, corrupt, not an image, too large) raises :class:`ImageReadError`
whose message names the file and the reason. Writing (:func:`write_image`) is atomic.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import ImageReadError
from .fsutil import atomic_write_bytes

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
DEFAULT_MAX_PIXELS = 100_000_000


def default_max_pixels() -> int:
    value = os.environ.get("CELEBREF_MAX_PIXELS")
    return int(value) if value else DEFAULT_MAX_PIXELS


def is_image_name(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(root: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Files under ``root`` with an image extension, sorted by their path (stable order)."""
    root = Path(root)
    it = root.rglob("*") if recursive else root.iterdir()
    return sorted(p for p in it if p.is_file() and is_image_name(p))


# --- reading -----------------------------------------------------------------------------------

def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation tag (1..8) to an HxW[xC] array."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.swapaxes(a, 0, 1)[::-1],
    }
    op = ops.get(int(orientation))
    return np.ascontiguousarray(op(arr)) if op else arr


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    # any 16-bit unsigned layout (little- or big-endian, e.g. Pillow's I;16B TIFFs) is 16-bit data
    if (arr.dtype.kind == "u" and arr.dtype.itemsize == 2) or (arr.dtype.kind in "iu" and arr.max(initial=0) > 255):
        return ((arr.astype(np.uint32) + 128) // 257).clip(0, 255).astype(np.uint8)
    if arr.dtype.kind in "iu":
        return arr.clip(0, 255).astype(np.uint8)
    if arr.dtype.kind == "f":
        scale = 255.0 if float(np.nanmax(arr, initial=0.0)) <= 1.0 else 1.0
        return np.rint(np.nan_to_num(arr) * scale).clip(0, 255).astype(np.uint8)
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    raise ValueError(f"unsupported sample type {arr.dtype}")


def _composite(arr: np.ndarray) -> np.ndarray:
    """uint8 HxWxC with C in {1,2,3,4} -> RGB uint8; alpha composited over white."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    c = arr.shape[2]
    if c in (2, 4):
        color, alpha = arr[:, :, : c - 1].astype(np.float32), arr[:, :, c - 1 :].astype(np.float32) / 255.0
        arr = np.rint(color * alpha + 255.0 * (1.0 - alpha)).clip(0, 255).astype(np.uint8)
        c -= 1
    if c == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr)


def _png_bit_depth(data: bytes) -> int:
    return data[24] if len(data) > 25 and data[:8] == b"\x89PNG\r\n\x1a\n" else 8


def decode_image(data: bytes, name: str = "<bytes>", max_pixels: int | None = None) -> np.ndarray:
    """Decode encoded image bytes to the canonical RGB uint8 array (see module docstring)."""
    max_pixels = default_max_pixels() if max_pixels is None else max_pixels
    if len(data) == 0:
        raise ImageReadError(name, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            old_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None  # our own limit below, checked before decoding
            try:
                img = Image.open(io.BytesIO(data))
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
    except UnidentifiedImageError:
        head = data[:64].lstrip().lower()
        what = "an HTML/text file" if head.startswith((b"<!doctype", b"<html", b"<?xml", b"{")) else "not a recognised image format"
        raise ImageReadError(name, what) from None
    except Exception as e:  # noqa: BLE001 - any decoder failure is a bad file
        raise ImageReadError(name, f"corrupt header ({e})") from None
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ImageReadError(name, f"invalid size {w}x{h}")
    if max_pixels and w * h > max_pixels:
        raise ImageReadError(name, f"image is {w}x{h} = {w * h} pixels, over the limit of {max_pixels} (decompression-bomb guard; set CELEBREF_MAX_PIXELS to raise it)")
    try:
        orientation = int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block is not fatal
        orientation = 1
    try:
        if img.format == "PNG" and _png_bit_depth(data) == 16:
            arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            if arr is None:
                raise OSError("OpenCV could not decode the 16-bit PNG")
            if arr.ndim == 3:
                arr = arr[:, :, [2, 1, 0, 3][: arr.shape[2]]] if arr.shape[2] in (3, 4) else arr
            arr = _to_uint8(arr)
        else:
            img.load()
            mode = img.mode
            if mode in ("RGB", "L", "RGBA", "LA"):
                arr = np.asarray(img)
            elif mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
                arr = _to_uint8(np.asarray(img))
            elif mode in ("P", "PA", "1", "La", "RGBa"):
                arr = np.asarray(img.convert("RGBA"))
            else:  # CMYK, YCbCr, LAB, HSV, ...
                arr = np.asarray(img.convert("RGB"))
            arr = _to_uint8(arr)
    except ImageReadError:
        raise
    except Exception as e:  # noqa: BLE001 - truncated/corrupt pixel data
        raise ImageReadError(name, f"truncated or corrupt image data ({type(e).__name__}: {e})") from None
    arr = _orient(arr, orientation)
    return _composite(arr)


def read_image(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """Read ``path`` as an RGB uint8 ``(H, W, 3)`` array. Raises :class:`ImageReadError` on any bad file."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ImageReadError(path, f"cannot open file ({e.strerror or e})") from None
    return decode_image(data, str(path), max_pixels)


# --- writing -----------------------------------------------------------------------------------

def encode_image(img: np.ndarray, ext: str = ".png", jpeg_quality: int = 95, png_fast: bool = False) -> bytes:
    """Encode an RGB uint8 array (or a 2-D gray array) with OpenCV. Deterministic for a given OpenCV build.
    ``png_fast``: PNG compression level 1 with the RLE strategy (about 2x faster to encode than the
    default level 3; lossless either way)."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise TypeError(f"encode_image expects uint8, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[:, :, ::-1]
    ext = ext.lower() if ext.startswith(".") else "." + ext.lower()
    params: list[int] = []
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    elif ext == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE] if png_fast else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    try:
        ok, buf = cv2.imencode(ext, np.ascontiguousarray(arr), params)
    except cv2.error as e:  # e.g. no encoder for this extension
        raise ValueError(f"OpenCV cannot encode {ext}: {str(e).strip().splitlines()[-1]}") from None
    if not ok:
        raise ValueError(f"OpenCV cannot encode {ext}")
    return buf.tobytes()


def write_image(path: str | os.PathLike, img: np.ndarray, jpeg_quality: int = 95) -> None:
    """Atomically write an RGB uint8 array; the format follows the file extension."""
    atomic_write_bytes(path, encode_image(img, Path(path).suffix or ".png", jpeg_quality))


# --- tensors -----------------------------------------------------------------------------------

def to_tensor(images: np.ndarray | Sequence[np.ndarray]):
    """RGB uint8 ``(H,W,3)`` or a sequence/array ``(N,H,W,3)`` -> float32 ``(N,3,H,W)`` in [0,1] (``x/255``)."""
    import torch

    arr = np.stack(list(images)) if not isinstance(images, np.ndarray) else images
    if arr.ndim == 3:
        arr = arr[None]
    if arr.dtype != np.uint8:
        raise TypeError(f"to_tensor expects uint8 images, got {arr.dtype}")
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div_(255.0)


def from_tensor(t) -> np.ndarray:
    """float ``(N,3,H,W)`` in [0,1] -> uint8 ``(N,H,W,3)``, clamped then rounded to nearest."""
    x = t.detach().float().clamp(0, 1).mul(255.0).round().to("cpu")
    return x.to(dtype=__import__("torch").uint8).permute(0, 2, 3, 1).contiguous().numpy()


def iter_read(paths: Iterable[str | os.PathLike]):
    """Yield ``(path, array_or_None, error_or_None)`` for each path: a bad file never stops a loop."""
    for p in paths:
        try:
            yield p, read_image(p), None
        except ImageReadError as e:
            yield p, None, e
