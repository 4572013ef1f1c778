"""``gfpgan``: GFPGAN v1.4 on aligned 512x512 faces, deterministic and batched.

Same numbers as the official ``GFPGANer.enhance(img, has_aligned=True)`` with the official
``GFPGANv1.4.pth`` (``params_ema``, else ``params``, loaded unchanged with ``strict=True``), except for the
noise: the official wrapper draws fresh N(0, 1) noise for every StyleGAN layer on every call, so its
outputs cannot be reproduced. celebref uses the noise maps stored in the checkpoint by default
(``randomize_noise=False`` in the official code). ``gfpgan:seed=N`` draws N(0, 1) noise instead, from a
generator seeded by ``(N, image id)``: an image gets the same noise whatever the batch it is in, and the
same seed and batch give byte-identical outputs.

Input/output: RGB uint8 aligned 512x512 faces (see :mod:`baselines.gfpgan.faces` for the exact BasicSR
conversions). Images of another size are per-image errors.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import torch

from baselines.aligned_method import AlignedFaceMethod
from baselines.base import RestoreItem
from baselines.params import GFPGANParams

from .arch import GFPGANv14

WEIGHT_NAME = "gfpgan-v1.4"


def seeded_noise(shapes: list[tuple[int, ...]], seed: int, item_id: str) -> list[torch.Tensor]:
    """N(0, 1) noise maps for one image, drawn in layer order from a CPU generator seeded by
    ``sha256(f"{seed}:{item_id}")`` (independent of batch composition and device)."""
    s = int.from_bytes(hashlib.sha256(f"{seed}:{item_id}".encode("utf-8")).digest()[:8], "little")
    g = torch.Generator().manual_seed(s)
    return [torch.randn(*shape, generator=g) for shape in shapes]


class GFPGANMethod(AlignedFaceMethod):
    name: ClassVar[str] = "gfpgan"
    alignment: ClassVar[str] = "ffhq5"  # facexlib FFHQ 5-point template (GFPGANer)
    description: ClassVar[str] = "GFPGAN v1.4 (TencentARC), deterministic: stored noise maps unless seed= is given"
    weights: ClassVar[tuple[str, ...]] = (WEIGHT_NAME,)
    # celebref.precision contract; fp16 is refused until benchmarks/gpu_check.sh shows fp32 parity on a GPU
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "tf32", "bf16")
    Params: ClassVar[type | None] = GFPGANParams
    weight_name: ClassVar[str] = WEIGHT_NAME
    checkpoint_keys: ClassVar[tuple[str, ...]] = ("params_ema", "params")

    net: GFPGANv14 | None

    def network(self) -> GFPGANv14:
        return GFPGANv14()

    def forward_kwargs(self, items: list[RestoreItem]) -> dict[str, Any]:
        assert self.net is not None
        seed = self.params["seed"]
        if seed is None:
            return {"noise": None}
        per_image = [seeded_noise(self.net.noise_shapes(), seed, it.id) for it in items]
        return {"noise": [torch.cat(maps).to(self.device) for maps in zip(*per_image)]}
