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
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from baselines.base import RestorationMethod, RestoreItem, RestoreResult
from celebref.device import autocast
from celebref.errors import ConfigError, WeightError

from .arch import GFPGANv14
from .faces import faces_to_tensor, restore_faces, tensor_to_faces

WEIGHT_NAME = "gfpgan-v1.4"


def load_network_weights(net: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)``; a mismatch becomes a :class:`WeightError` naming the keys."""
    own = net.state_dict()
    missing = [k for k in own if k not in state_dict]
    extra = [k for k in state_dict if k not in own]
    shapes = [f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}" for k, v in own.items()
              if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if missing or extra or shapes:
        parts = []
        for what, keys in (("missing keys", missing), ("unexpected keys", extra), ("wrong shapes", shapes)):
            if keys:
                parts.append(f"{len(keys)} {what} ({', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''})")
        raise WeightError(f"{source} does not match the {type(net).__name__} architecture: " + "; ".join(parts))
    net.load_state_dict(dict(state_dict), strict=True)


def seeded_noise(shapes: list[tuple[int, ...]], seed: int, item_id: str) -> list[torch.Tensor]:
    """N(0, 1) noise maps for one image, drawn in layer order from a CPU generator seeded by
    ``sha256(f"{seed}:{item_id}")`` (independent of batch composition and device)."""
    s = int.from_bytes(hashlib.sha256(f"{seed}:{item_id}".encode("utf-8")).digest()[:8], "little")
    g = torch.Generator().manual_seed(s)
    return [torch.randn(*shape, generator=g) for shape in shapes]


class GFPGANMethod(RestorationMethod):
    name: ClassVar[str] = "gfpgan"
    description: ClassVar[str] = "GFPGAN v1.4 (TencentARC), deterministic: stored noise maps unless seed= is given"
    weights: ClassVar[tuple[str, ...]] = (WEIGHT_NAME,)
    input_size: ClassVar[int | None] = 512
    param_defaults: ClassVar[dict[str, Any]] = {"seed": None}

    def __init__(self, device: str = "cpu", precision: str = "fp32", landmark_policy: str = "skip", **params: Any):
        super().__init__(device=device, precision=precision, landmark_policy=landmark_policy, **params)
        seed = self.params["seed"]
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigError(f"gfpgan: seed must be an integer, got {seed!r}")
        self.net: GFPGANv14 | None = None

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, torch.Tensor], **kwargs: Any) -> "GFPGANMethod":
        """A loaded method from an in-memory state dict (tests, conversions); ``kwargs`` as for the constructor."""
        m = cls(**kwargs)
        m._build(state_dict, "state dict")
        return m

    def _build(self, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
        net = GFPGANv14()
        load_network_weights(net, state_dict, source)
        self.net = net.eval().requires_grad_(False).to(self.device)
        self.loaded = True

    def load(self) -> None:
        from celebref import weights as store

        ckpt = store.load_torch_checkpoint(WEIGHT_NAME)
        key = "params_ema" if "params_ema" in ckpt else "params" if "params" in ckpt else None
        if key is None:
            raise WeightError(f"{WEIGHT_NAME}: checkpoint has neither 'params_ema' nor 'params' (keys: {', '.join(map(str, list(ckpt)[:8]))})")
        self._build(ckpt[key], f"{WEIGHT_NAME} [{key}]")

    def _forward(self, items: list[RestoreItem]) -> list[np.ndarray]:
        assert self.net is not None
        x = faces_to_tensor([it.image for it in items]).to(self.device)
        noise = None
        seed = self.params["seed"]
        if seed is not None:
            per_image = [seeded_noise(self.net.noise_shapes(), seed, it.id) for it in items]
            noise = [torch.cat(maps).to(self.device) for maps in zip(*per_image)]
        with torch.inference_mode(), autocast(self.device, self.precision):
            out = self.net(x, noise=noise)
        return tensor_to_faces(out)

    def _restore(self, items: list[RestoreItem]) -> list[RestoreResult]:
        return restore_faces(items, self._forward)
