"""Plumbing shared by the networks that restore aligned 512x512 faces with the BasicSR conventions (GFPGAN,
CodeFormer): checkpoint loading, the batched forward and the per-image error handling.

A subclass names its weight-store file (:attr:`AlignedFaceMethod.weight_name`), the checkpoint keys that may
hold the state dict (:attr:`~AlignedFaceMethod.checkpoint_keys`, first present wins), builds its network
(:meth:`~AlignedFaceMethod.network`) and gives the keyword arguments of its forward
(:meth:`~AlignedFaceMethod.forward_kwargs`). Conversions in and out of the network are
:func:`baselines.gfpgan.faces.faces_to_tensor` / :func:`~baselines.gfpgan.faces.tensor_to_faces` (RGB uint8
``(512, 512, 3)`` <-> float32 ``(N, 3, 512, 512)`` in ``[-1, 1]``); an image of another size is a per-image
error, and a failed batch is retried image by image (:func:`~baselines.gfpgan.faces.restore_faces`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from celebref.device import autocast
from celebref.errors import WeightError

from .base import RestorationMethod, RestoreItem, RestoreResult
from .gfpgan.faces import FACE_SIZE, faces_to_tensor, restore_faces, tensor_to_faces


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


class AlignedFaceMethod(RestorationMethod):
    """Base of GFPGAN and CodeFormer (see the module docstring)."""

    input_size: ClassVar[int | None] = FACE_SIZE
    #: the weight-store name of the checkpoint
    weight_name: ClassVar[str] = ""
    #: keys of the checkpoint dict that may hold the network's state dict, in order of preference
    checkpoint_keys: ClassVar[tuple[str, ...]] = ("params_ema",)

    def __init__(self, device: str = "cpu", precision: str = "fp32", landmark_policy: str = "skip", **params: Any):
        super().__init__(device=device, precision=precision, landmark_policy=landmark_policy, **params)
        self.net: torch.nn.Module | None = None

    # -- to be provided by subclasses ---------------------------------------------------------------
    def network(self) -> torch.nn.Module:
        """A new, untrained network of the method's architecture."""
        raise NotImplementedError

    def forward_kwargs(self, items: list[RestoreItem]) -> dict[str, Any]:
        """Keyword arguments of the network's forward for this batch (besides the input tensor)."""
        return {}

    # -- loading --------------------------------------------------------------------------------------
    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, torch.Tensor], **kwargs: Any) -> "AlignedFaceMethod":
        """A loaded method from an in-memory state dict (tests, conversions); ``kwargs`` as for the constructor."""
        m = cls(**kwargs)
        m._build(state_dict, "state dict")
        return m

    def _build(self, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
        net = self.network()
        load_network_weights(net, state_dict, source)
        self.net = net.eval().requires_grad_(False).to(self.device)
        self.loaded = True

    def load(self) -> None:
        from celebref import weights as store

        ckpt = store.load_torch_checkpoint(self.weight_name)
        key = next((k for k in self.checkpoint_keys if k in ckpt), None)
        if key is None:
            wanted = (f"no {self.checkpoint_keys[0]!r}" if len(self.checkpoint_keys) == 1
                      else "neither " + " nor ".join(repr(k) for k in self.checkpoint_keys))
            raise WeightError(f"{self.weight_name}: checkpoint has {wanted} (keys: {', '.join(map(str, list(ckpt)[:8]))})")
        self._build(ckpt[key], f"{self.weight_name} [{key}]")

    # -- running --------------------------------------------------------------------------------------
    def _forward(self, items: list[RestoreItem]) -> list[np.ndarray]:
        assert self.net is not None
        x = faces_to_tensor([it.image for it in items]).to(self.device)
        kwargs = self.forward_kwargs(items)
        with torch.inference_mode(), autocast(self.device, self.precision):
            out = self.net(x, **kwargs)
        return tensor_to_faces(out)

    def _restore(self, items: list[RestoreItem]) -> list[RestoreResult]:
        return restore_faces(items, self._forward)
