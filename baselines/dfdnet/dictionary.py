"""DFDNet's multi-scale component dictionaries and the atom matching.

Files: ``<folder>/{part}_{size}_center.npy`` for part in left_eye, right_eye, nose, mouth and
size (VGG feature resolution) in 256, 128, 64, 32 (the released ``DictionaryCenter512`` folder).
Each array holds K atoms, flat ``(K, C*h*w)`` (C-order) or already ``(K, C, h, w)``; K is read from
the array. ``C`` is 128/256/512/512 and the atom side is ``part_size // (512 // size)`` with
``part_size`` 80/80/50/110 (eyes 40/20/10/5, nose 25/12/6/3, mouth 55/27/13/6). Atoms are used
unnormalised (the official code computes an L2 norm but never applies it).

Matching one crop (``(C,h,w)``, the feature crop resized to the atom size) against K atoms, as the
official code does it (:func:`match_reference`):

* AdaIN every atom to the crop: ``(a - mean_a) / std_a * std_c + mean_c`` per atom and channel,
  ``std = sqrt(var_unbiased + 1e-5)``;
* ``score[k] = sum(crop * atom_norm[k])``; softmax; argmax (first index on ties).

That builds several dictionary-sized temporaries per crop. Expanding the product,
``score[k] = sum_c std_c[c]/std_a[k,c] * (G[k,c] - mean_a[k,c] * S[c]) + sum_c mean_c[c] * S[c]``
with ``G[k,c] = sum_xy crop[c] * atom[k,c]`` and ``S[c] = sum_xy crop[c]``. ``mean_a``/``std_a`` do
not depend on the input, so they are computed once at load and :func:`match_fast` is a single pass
over the dictionary (one contraction for all images of a batch). The last term is the
same for every k; the argmax is taken over the k-dependent part only, which is also numerically
kinder (the constant dominates the raw score).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from celebref.errors import WeightError
from celebref.precision import fp32_island

PARTS = ("left_eye", "right_eye", "nose", "mouth")
PART_SIZES_512 = (80, 80, 50, 110)
FEATURE_SIZES = (256, 128, 64, 32)
CHANNELS = (128, 256, 512, 512)
ADAIN_EPS = 1e-5


def atom_side(part_index: int, feature_size: int) -> int:
    """Atom height = width for a part at a VGG feature resolution (official ``part_size // (512/size)``)."""
    return PART_SIZES_512[part_index] // (512 // feature_size)


def dictionary_file_name(part: str, feature_size: int) -> str:
    return f"{part}_{feature_size}_center.npy"


def mean_std_4d(x: torch.Tensor, eps: float = ADAIN_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-(sample, channel) spatial mean and ``sqrt(var_unbiased + eps)``, shaped ``(N,C,1,1)``
    (official ``calc_mean_std_4D``, same ops)."""
    n, c = x.shape[:2]
    var = x.reshape(n, c, -1).var(dim=2) + eps
    std = var.sqrt().view(n, c, 1, 1)
    mean = x.reshape(n, c, -1).mean(dim=2).view(n, c, 1, 1)
    return mean, std


@dataclass
class ComponentDictionary:
    """K atoms of one part at one scale, with their per-atom statistics.

    ``atoms``: ``(K, C, h, w)`` contiguous (the official layout); ``mean``/``std``: ``(K, C, 1, 1)``,
    computed from the atoms exactly as the official AdaIN computes them (same ops), once.
    """

    part: str
    feature_size: int
    atoms: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def from_atoms(cls, part: str, feature_size: int, atoms: torch.Tensor) -> "ComponentDictionary":
        """``atoms``: ``(K, C, h, w)``."""
        atoms = atoms.contiguous()
        mean, std = mean_std_4d(atoms)
        return cls(part, feature_size, atoms, mean, std)

    @property
    def num_atoms(self) -> int:
        return self.atoms.shape[0]

    @property
    def channels(self) -> int:
        return self.atoms.shape[1]

    @property
    def side(self) -> int:
        return self.atoms.shape[2]

    def apply(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "ComponentDictionary":
        """Convert the atoms (device/dtype) and recompute the statistics in the new dtype."""
        atoms = fn(self.atoms)
        if atoms.dtype == self.atoms.dtype and atoms.device == self.atoms.device:
            return self
        return ComponentDictionary.from_atoms(self.part, self.feature_size, atoms)


class DictionarySet:
    """All 16 component dictionaries, ``dicts[feature_size][part]``."""

    def __init__(self, dicts: dict[int, dict[str, ComponentDictionary]]):
        self.dicts = dicts

    def __getitem__(self, feature_size: int) -> dict[str, ComponentDictionary]:
        return self.dicts[feature_size]

    def apply(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "DictionarySet":
        return DictionarySet({f: {p: d.apply(fn) for p, d in parts.items()} for f, parts in self.dicts.items()})

    @property
    def num_atoms(self) -> dict[tuple[int, str], int]:
        return {(f, p): d.num_atoms for f, parts in self.dicts.items() for p, d in parts.items()}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray | torch.Tensor], dtype: torch.dtype = torch.float32) -> "DictionarySet":
        """``arrays[f"{part}_{size}_center"]`` -> flat ``(K, C*h*w)`` or ``(K, C, h, w)`` arrays."""
        dicts: dict[int, dict[str, ComponentDictionary]] = {}
        for si, f in enumerate(FEATURE_SIZES):
            dicts[f] = {}
            for pi, part in enumerate(PARTS):
                key = f"{part}_{f}_center"
                if key not in arrays:
                    raise WeightError(f"DFDNet dictionary {key!r} is missing")
                a = arrays[key]
                t = torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a
                side, ch = atom_side(pi, f), CHANNELS[si]
                per_atom = ch * side * side
                if t.ndim == 0 or t.numel() % per_atom or t.shape[0] * per_atom != t.numel():
                    raise WeightError(f"DFDNet dictionary {key!r} has shape {tuple(t.shape)}; expected (K, {per_atom}) "
                                      f"or (K, {ch}, {side}, {side})")
                atoms = t.reshape(t.shape[0], ch, side, side).to(dtype)
                dicts[f][part] = ComponentDictionary.from_atoms(part, f, atoms)
        return cls(dicts)

    @classmethod
    def load(cls, folder: str | os.PathLike, dtype: torch.dtype = torch.float32) -> "DictionarySet":
        """Read the 16 ``.npy`` files from ``folder`` (or its ``DictionaryCenter512`` subfolder)."""
        root = Path(folder)
        if (root / "DictionaryCenter512").is_dir():
            root = root / "DictionaryCenter512"
        arrays = {}
        for f in FEATURE_SIZES:
            for part in PARTS:
                path = root / dictionary_file_name(part, f)
                if not path.is_file():
                    raise WeightError(f"DFDNet dictionary file {path} is missing (expected the 16 DictionaryCenter512 "
                                      f"*_center.npy files in {root})")
                try:
                    arrays[f"{part}_{f}_center"] = np.load(path, allow_pickle=False)
                except (ValueError, OSError) as exc:
                    raise WeightError(f"cannot read DFDNet dictionary {path}: {exc}") from exc
        return cls.from_arrays(arrays, dtype)


# --- matching ----------------------------------------------------------------------------------

def adain_atoms(atoms: torch.Tensor, crop: torch.Tensor) -> torch.Tensor:
    """Official ``adaptive_instance_normalization_4D(atoms, crop)``: every atom ``(K,C,h,w)`` takes
    the per-channel mean/std of ``crop`` ``(1,C,h,w)``."""
    size = atoms.shape
    c_mean, c_std = mean_std_4d(crop)
    a_mean, a_std = mean_std_4d(atoms)
    normalized = (atoms - a_mean.expand(size)) / a_std.expand(size)
    return normalized * c_std.expand(size) + c_mean.expand(size)


@fp32_island()
def match_reference(crop: torch.Tensor, atoms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The official formulation for one crop ``(1,C,h,w)`` and atoms ``(K,C,h,w)``.

    Returns ``(scores (K,), index (0-dim long), normalised selected atom (1,C,h,w))``; scores are the
    raw ``F.conv2d`` values (before softmax).
    """
    normed = adain_atoms(atoms, crop)
    scores = F.conv2d(crop, normed).reshape(-1)
    index = torch.argmax(F.softmax(scores, dim=0))
    return scores, index, normed.index_select(0, index.reshape(1))


@fp32_island()
def match_fast(crops: torch.Tensor, d: ComponentDictionary) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Match a batch of resized crops ``(B,C,h,w)`` against one dictionary in a single pass.

    Returns ``(scores (B,K), index (B,) long, normalised selected atoms (B,C,h,w))``. ``scores`` equal
    the official raw scores algebraically (up to float rounding); the argmax uses the k-dependent
    part only (the k-independent term cannot change it). No host synchronisation.
    """
    b, c, h, w = crops.shape
    flat = crops.reshape(b, c, h * w)
    c_mean, c_std = mean_std_4d(crops)  # (B,C,1,1)
    k = d.num_atoms
    g = torch.einsum("kcn,bcn->bkc", d.atoms.reshape(k, c, h * w), flat)  # sum_xy atom*crop, (B,K,C)
    s = flat.sum(dim=2)  # (B,C)
    a_mean = d.mean.reshape(1, -1, c)  # (1,K,C)
    a_std = d.std.reshape(1, -1, c)
    ratio = c_std.reshape(b, 1, c) / a_std  # (B,K,C)
    varying = (ratio * (g - a_mean * s.reshape(b, 1, c))).sum(dim=2)  # (B,K)
    const = (c_mean.reshape(b, c) * s).sum(dim=1, keepdim=True)  # (B,1)
    index = torch.argmax(varying, dim=1)
    sel = d.atoms.index_select(0, index)  # (B,C,h,w)
    sel_mean = d.mean.index_select(0, index)
    sel_std = d.std.index_select(0, index)
    normed = (sel - sel_mean) / sel_std * c_std + c_mean
    return varying + const, index, normed
