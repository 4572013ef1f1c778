"""Building blocks shared by RestoreFormer and RestoreFormer++ (Wang et al., CVPR 2022 / TPAMI 2023), written
for celebref from the papers and the facts recorded in ``tests/golden/restoreformer*/README.md`` (layer names,
shapes, operation order of the official ``VQVAEGANMultiHeadTransformer`` / GFPGAN ``RestoreFormer``).

Tensor conventions: feature maps float32 ``(N, C, H, W)``. Module and parameter names are those of the
official state dicts (``norm1``, ``conv1``, ``nin_shortcut``, ``q``/``k``/``v``/``proj_out``, ``embedding``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.codeformer.arch import Downsample, ResBlock, Upsample, _group_norm
from celebref.precision import fp32_island

__all__ = ["Downsample", "MultiHeadAttnBlock", "NearestCodebook", "ResnetBlock", "Upsample", "swish"]


def swish(x: torch.Tensor) -> torch.Tensor:
    """``x * sigmoid(x)`` (a new tensor)."""
    return x * torch.sigmoid(x)


class ResnetBlock(ResBlock):
    """CodeFormer's residual block (GN -> swish -> conv3x3 -> GN -> swish -> conv3x3, plus the input; dropout 0
    at inference) under RestoreFormer's parameter names: the 1x1 shortcut used when the channel count changes
    is ``nin_shortcut`` (CodeFormer: ``conv_out``). Same arithmetic, same state-dict order."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(in_ch, out_ch)
        if in_ch != out_ch:
            self.nin_shortcut = self._modules.pop("conv_out")

    @property
    def conv_out(self) -> nn.Module:  # the name ResBlock.forward uses
        return self.nin_shortcut


@fp32_island()
def _attention_weights(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``softmax(q @ k, dim=-1)`` in float32 (``q`` already scaled)."""
    return F.softmax(torch.matmul(q, k), dim=3)


class MultiHeadAttnBlock(nn.Module):
    """Multi-head spatial attention over 1x1-conv projections, with residual.

    Self-attention (``y is None``): q, k, v all from ``norm1(x)``. Cross-attention (the decoders):
    **queries from ``norm2(y)``** (an encoder feature of the degraded face), keys and values from
    ``norm1(x)`` (the decoder's high-quality prior features). Heads split the channels in order
    (head ``i`` = channels ``[i*C/h, (i+1)*C/h)``); scores ``(q * d^-0.5) @ k`` with ``d = C / heads``,
    softmax over keys; ``proj_out``; ``x + out``. ``norm2`` exists (and is loaded) also where it is unused.
    """

    def __init__(self, ch: int, heads: int):
        super().__init__()
        if ch % heads:
            raise ValueError(f"{ch} channels cannot be split into {heads} heads")
        self.heads, self.att_size = heads, ch // heads
        self.norm1 = _group_norm(ch)
        self.norm2 = _group_norm(ch)
        self.q = nn.Conv2d(ch, ch, 1)
        self.k = nn.Conv2d(ch, ch, 1)
        self.v = nn.Conv2d(ch, ch, 1)
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h_ = self.norm1(x)
        y = h_ if y is None else self.norm2(y)
        q, k, v = self.q(y), self.k(h_), self.v(h_)
        b, c, h, w = q.shape
        # (b, c, hw) -> (b, heads, hw, att); the same views/permutes as the official code, so that
        # proj_out sees the same (channels-last) memory layout
        q = q.reshape(b, self.heads, self.att_size, h * w).permute(0, 3, 1, 2).transpose(1, 2)
        k = k.reshape(b, self.heads, self.att_size, h * w).permute(0, 3, 1, 2).transpose(1, 2).transpose(2, 3)
        v = v.reshape(b, self.heads, self.att_size, h * w).permute(0, 3, 1, 2).transpose(1, 2)
        q = q * (int(self.att_size) ** -0.5)
        att = _attention_weights(q, k).to(v.dtype)
        out = att.matmul(v).transpose(1, 2).contiguous().view(b, h, w, -1).permute(0, 3, 1, 2)
        return x + self.proj_out(out)


class NearestCodebook(nn.Module):
    """The VQ codebook (``embedding.weight``: size x dim) with nearest-neighbour quantization.

    ``d = |z|^2 + |e|^2 - 2 z.e`` (this summation order), first minimum wins; the quantized map is
    ``z + (e - z)`` (the straight-through expression of the official forward, evaluated: not always
    bit-equal to ``e``). Tokens are row-major: token ``t`` is row ``t // W``, column ``t % W``.
    """

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.size, self.dim = size, dim
        self.embedding = nn.Embedding(size, dim)

    @fp32_island()
    def distances(self, z: torch.Tensor) -> torch.Tensor:
        """``(N*H*W, size)`` squared distances of every token of ``z`` ``(N, dim, H, W)`` to every code."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, self.dim)
        e = self.embedding.weight
        return torch.sum(flat ** 2, dim=1, keepdim=True) + torch.sum(e ** 2, dim=1) - 2 * torch.matmul(flat, e.t())

    @fp32_island()
    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(quantized (N, dim, H, W), indices (N, H*W) int64)``."""
        n, c, h, w = z.shape
        idx = torch.argmin(self.distances(z), dim=1)
        zt = z.permute(0, 2, 3, 1)
        e = self.embedding.weight.index_select(0, idx).view(zt.shape)
        quant = (zt + (e - zt)).permute(0, 3, 1, 2).contiguous()
        return quant, idx.view(n, h * w)
