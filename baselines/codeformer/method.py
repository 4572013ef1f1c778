"""``codeformer``: CodeFormer on aligned 512x512 faces, batched; fidelity weight ``w`` as a parameter.

``codeformer`` is ``w=0.5`` (the official default); ``codeformer:w=0.7`` selects another weight and is
recorded under that label. The numbers are those of the official
``inference_codeformer.py --has_aligned -w W`` with the official ``codeformer.pth`` (``params_ema``,
loaded unchanged with ``strict=True``): the forward is ``net(x, w=W, adain=True)``, fully deterministic.
Weights licence: NTU S-Lab License 1.0 (non-commercial), declared in the weight store.

Input/output: RGB uint8 aligned 512x512 faces (BasicSR conversions, :mod:`baselines.gfpgan.faces`).
Images of another size are per-image errors. Reduced precisions (fp16/bf16 on CUDA) can flip code choices.
"""

from __future__ import annotations

from typing import Any, ClassVar

from baselines.aligned_method import AlignedFaceMethod
from baselines.base import RestoreItem
from baselines.params import CodeFormerParams

from .arch import CodeFormerNet

WEIGHT_NAME = "codeformer"


class CodeFormerMethod(AlignedFaceMethod):
    name: ClassVar[str] = "codeformer"
    alignment: ClassVar[str] = "ffhq5"  # facexlib FFHQ 5-point template (inference_codeformer.py)
    description: ClassVar[str] = "CodeFormer (sczhou), fidelity weight w in [0, 1] (0: codebook only, 1: most faithful)"
    weights: ClassVar[tuple[str, ...]] = (WEIGHT_NAME,)
    # celebref.precision contract; fp16 is refused until benchmarks/gpu_check.sh shows fp32 parity on a GPU
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "tf32", "bf16")
    Params: ClassVar[type | None] = CodeFormerParams
    weight_name: ClassVar[str] = WEIGHT_NAME
    checkpoint_keys: ClassVar[tuple[str, ...]] = ("params_ema",)

    net: CodeFormerNet | None

    def network(self) -> CodeFormerNet:
        return CodeFormerNet()

    def forward_kwargs(self, items: list[RestoreItem]) -> dict[str, Any]:
        return {"w": self.params["w"], "adain_codes": True}
