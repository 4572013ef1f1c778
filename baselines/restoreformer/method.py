"""``restoreformer`` and ``restoreformer++``: RestoreFormer / RestoreFormer++ on aligned 512x512 faces, batched.

* ``restoreformer``: the RestoreFormer checkpoint released with GFPGAN (``RestoreFormer.pth``); the numbers are
  those of the official ``inference_gfpgan.py -v RestoreFormer --aligned`` (``GFPGANer``: ``params_ema``, else
  ``params``, loaded unchanged with ``strict=True``; forward ``net(x)[0]``).
* ``restoreformer++``: wzhouxiff/RestoreFormerPlusPlus ``RestoreFormer++.ckpt``, a PyTorch-Lightning checkpoint;
  as the official ``inference.py -v RestoreFormer++ --aligned`` does, the network's weights are the
  ``state_dict`` entries with the ``vqvae.`` prefix removed. The official loader uses ``strict=False`` (it
  drops the training-loss entries, ``loss.*``); celebref drops those too but refuses a checkpoint that lacks
  any network key or has one of the wrong shape (the official code would silently keep random values).

Both are fully deterministic (nearest-code quantization, no sampling). Weights licences: see the weight store
(both released under Apache-2.0; no sha256 published). Whole-photo mode uses facexlib's FFHQ 5-point alignment, as both
official scripts do (``FaceRestoreHelper(face_size=512, crop_ratio=(1, 1))``).

Input/output: RGB uint8 aligned 512x512 faces (BasicSR conversions, :mod:`baselines.gfpgan.faces`). Images
of another size are per-image errors.
"""

from __future__ import annotations

from typing import ClassVar, Mapping

import torch

from baselines.aligned_method import AlignedFaceMethod
from celebref.errors import WeightError

from .arch import RESTOREFORMER, RESTOREFORMER_PP, RestoreFormerNet

WEIGHT_RF = "restoreformer"
WEIGHT_RFPP = "restoreformer++"
LIGHTNING_PREFIX = "vqvae."


def lightning_network_state(ckpt: Mapping, source: str) -> dict[str, torch.Tensor]:
    """The network entries of a RestoreFormer++ Lightning checkpoint: ``ckpt["state_dict"]`` keys starting
    with ``vqvae.``, prefix removed (other entries, the training losses, are dropped)."""
    sd = ckpt.get("state_dict") if isinstance(ckpt, Mapping) else None
    if not isinstance(sd, Mapping):
        keys = ", ".join(map(str, list(ckpt)[:8])) if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise WeightError(f"{source}: not a RestoreFormer++ Lightning checkpoint (no 'state_dict'; keys: {keys})")
    net = {k[len(LIGHTNING_PREFIX):]: v for k, v in sd.items() if k.startswith(LIGHTNING_PREFIX)}
    if not net:
        raise WeightError(f"{source}: 'state_dict' has no {LIGHTNING_PREFIX!r} entries")
    return net


class RestoreFormerMethod(AlignedFaceMethod):
    name: ClassVar[str] = "restoreformer"
    alignment: ClassVar[str] = "ffhq5"  # facexlib FFHQ 5-point template (GFPGANer)
    description: ClassVar[str] = "RestoreFormer (Wang et al., CVPR 2022), the checkpoint released with GFPGAN"
    weights: ClassVar[tuple[str, ...]] = (WEIGHT_RF,)
    # celebref.precision contract: the code choice and attention softmaxes are float32 islands
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "tf32", "bf16")
    weight_name: ClassVar[str] = WEIGHT_RF
    checkpoint_keys: ClassVar[tuple[str, ...]] = ("params_ema", "params")

    net: RestoreFormerNet | None

    def network(self) -> RestoreFormerNet:
        return RestoreFormerNet(RESTOREFORMER)


class RestoreFormerPPMethod(AlignedFaceMethod):
    name: ClassVar[str] = "restoreformer++"
    alignment: ClassVar[str] = "ffhq5"  # facexlib FFHQ 5-point template (RestoreFormer/RestoreFormer.py)
    description: ClassVar[str] = "RestoreFormer++ (Wang et al., TPAMI 2023), multi-scale cross-attention"
    weights: ClassVar[tuple[str, ...]] = (WEIGHT_RFPP,)
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "tf32", "bf16")
    weight_name: ClassVar[str] = WEIGHT_RFPP
    checkpoint_keys: ClassVar[tuple[str, ...]] = ("state_dict",)

    net: RestoreFormerNet | None

    def network(self) -> RestoreFormerNet:
        return RestoreFormerNet(RESTOREFORMER_PP)

    def load(self) -> None:
        from celebref import weights as store

        ckpt = store.load_torch_checkpoint(self.weight_name, inert_globals=True)  # Lightning: hparams are objects
        self._build(lightning_network_state(ckpt, self.weight_name), f"{self.weight_name} [state_dict, vqvae.*]")
