"""RestoreFormer and RestoreFormer++ networks (Wang et al.), written for celebref; see
``tests/golden/restoreformer*/README.md`` for the facts they reproduce.

Both are a VQGAN-style encoder (base width 64, multipliers (1, 2, 2, 4, 4, 8): 512 ... 16 px, multi-head
self-attention at 16 px and in the middle block), a 1x1 ``quant_conv`` to the 256-d latent, nearest-code
quantization against a 1024 x 256 codebook (the high-quality dictionary), a 1x1 ``post_quant_conv`` and a
decoder whose attention blocks are **cross-attentions**: queries from the encoder's features of the degraded
face, keys/values from the decoder's own (quantized-prior) features.

* ``restoreformer`` (the checkpoint released with GFPGAN, ``RestoreFormer.pth``): 8 heads; decoder
  attention in the middle block and at 16 px.
* ``restoreformer++`` (``RestoreFormer++.ckpt``): 4 heads; decoder attention also at 32 px (multi-scale:
  the 32 px queries come from the encoder's 32 px output before its downsampling).

Tensor conventions: input and output float32 ``(N, 3, 512, 512)`` **RGB** in ``[-1, 1]`` (output not
clamped). State-dict keys/shapes/order are the official ones (``encoder.*``, ``decoder.*``,
``quantize.embedding.weight``, ``quant_conv.*``, ``post_quant_conv.*``).

Precision (:mod:`celebref.precision`): the encoder, ``quant_conv`` and the nearest-code choice run as a
float32 island under a bf16 autocast (a code choice must not flip), and every attention softmax too; only
the decoder's convolutions run in the reduced precision. In fp32 nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from baselines.codeformer.arch import _group_norm
from celebref.precision import fp32_island

from .blocks import Downsample, MultiHeadAttnBlock, NearestCodebook, ResnetBlock, Upsample, swish

CH_MULT = (1, 2, 2, 4, 4, 8)
BASE_CH = 64
Z_CH = 256
RES_BLOCKS = 2
IMG_SIZE = 512


@dataclass(frozen=True)
class RestoreFormerConfig:
    """What differs between the two released networks."""

    heads: int
    decoder_attn_res: tuple[int, ...]  # decoder levels (px) with cross-attention; the encoder has (16,)
    codebook_size: int = 1024
    embed_dim: int = 256


RESTOREFORMER = RestoreFormerConfig(heads=8, decoder_attn_res=(16,))
RESTOREFORMER_PP = RestoreFormerConfig(heads=4, decoder_attn_res=(16, 32))


class _Level(nn.Module):
    """One resolution level: ``block`` (ResnetBlocks), ``attn`` (one per block, or none), ``downsample`` /
    ``upsample`` (absent at the last level)."""

    def __init__(self, blocks: list[nn.Module], attns: list[nn.Module]):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList(attns)


class _Mid(nn.Module):
    def __init__(self, ch: int, heads: int):
        super().__init__()
        self.block_1 = ResnetBlock(ch, ch)
        self.attn_1 = MultiHeadAttnBlock(ch, heads)
        self.block_2 = ResnetBlock(ch, ch)


def _res(level: int) -> int:
    return IMG_SIZE // 2 ** level


class Encoder(nn.Module):
    """conv_in; per level two ResnetBlocks (each followed by self-attention at 16 px), Downsample between
    levels; middle ResnetBlock, self-attention, ResnetBlock; GN, swish, conv3x3 to 256 channels.

    ``forward`` returns the output and the features the decoder queries with: ``skips[level]`` is the
    level's output before its downsampling (the last level: the middle block_1 output), and
    ``skips["mid"]`` the middle block_2 output."""

    def __init__(self, heads: int, keep: tuple[int, ...]):
        super().__init__()
        self.keep = keep
        self.conv_in = nn.Conv2d(3, BASE_CH, 3, 1, 1)
        self.down = nn.ModuleList()
        c = BASE_CH
        for lvl, mult in enumerate(CH_MULT):
            blocks, attns = [], []
            for _ in range(RES_BLOCKS):
                blocks.append(ResnetBlock(c, BASE_CH * mult))
                c = BASE_CH * mult
                if _res(lvl) == 16:
                    attns.append(MultiHeadAttnBlock(c, heads))
            level = _Level(blocks, attns)
            if lvl != len(CH_MULT) - 1:
                level.downsample = Downsample(c)
            self.down.append(level)
        self.mid = _Mid(c, heads)
        self.norm_out = _group_norm(c)
        self.conv_out = nn.Conv2d(c, Z_CH, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        skips: dict = {}
        h = self.conv_in(x)
        last = len(self.down) - 1
        for lvl, level in enumerate(self.down):
            for i, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[i](h)
            if lvl != last:
                if lvl in self.keep:
                    skips[lvl] = h
                h = level.downsample(h)
        h = self.mid.block_1(h)
        skips[last] = h
        h = self.mid.block_2(self.mid.attn_1(h))
        skips["mid"] = h
        return self.conv_out(swish(self.norm_out(h))), skips


class Decoder(nn.Module):
    """conv_in 256->512; middle ResnetBlock, cross-attention (queries: encoder ``mid``), ResnetBlock; per
    level from 16 px up three ResnetBlocks (each followed by cross-attention at the configured sizes,
    queries: the encoder skip of that level), Upsample between levels; GN, swish, conv3x3 to RGB.
    ``up`` is indexed by level (``up.0`` = 512 px), as in the official state dict."""

    def __init__(self, heads: int, attn_res: tuple[int, ...]):
        super().__init__()
        c = BASE_CH * CH_MULT[-1]
        self.conv_in = nn.Conv2d(Z_CH, c, 3, 1, 1)
        self.mid = _Mid(c, heads)
        levels: list[nn.Module] = []
        for lvl in reversed(range(len(CH_MULT))):
            blocks, attns = [], []
            for _ in range(RES_BLOCKS + 1):
                blocks.append(ResnetBlock(c, BASE_CH * CH_MULT[lvl]))
                c = BASE_CH * CH_MULT[lvl]
                if _res(lvl) in attn_res:
                    attns.append(MultiHeadAttnBlock(c, heads))
            level = _Level(blocks, attns)
            if lvl != 0:
                level.upsample = Upsample(c)
            levels.insert(0, level)
        self.up = nn.ModuleList(levels)
        self.norm_out = _group_norm(c)
        self.conv_out = nn.Conv2d(c, 3, 3, 1, 1)

    def forward(self, z: torch.Tensor, skips: dict) -> torch.Tensor:
        h = self.conv_in(z)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h), skips["mid"]))
        for lvl in reversed(range(len(self.up))):
            level = self.up[lvl]
            for i, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[i](h, skips[lvl])
            if lvl != 0:
                h = level.upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


class RestoreFormerNet(nn.Module):
    """RestoreFormer / RestoreFormer++ (see the module docstring). ``forward(x)`` -> restored image;
    ``forward(x, return_extras=True)`` -> ``(image, {"z": (N, 256, 16, 16) quant_conv output,
    "indices": (N, 256) int64 code per token})``."""

    def __init__(self, config: RestoreFormerConfig = RESTOREFORMER):
        super().__init__()
        self.config = config
        last = len(CH_MULT) - 1
        keep = tuple(lvl for lvl in range(last) if _res(lvl) in config.decoder_attn_res)
        self.encoder = Encoder(config.heads, keep)
        self.decoder = Decoder(config.heads, config.decoder_attn_res)
        self.quantize = NearestCodebook(config.codebook_size, config.embed_dim)
        self.quant_conv = nn.Conv2d(Z_CH, config.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(config.embed_dim, Z_CH, 1)

    @fp32_island()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]:
        """Encoder, ``quant_conv`` and code choice in float32: ``(quant, z, indices, skips)``."""
        h, skips = self.encoder(x)
        z = self.quant_conv(h)
        quant, idx = self.quantize(z)
        return quant, z, idx, skips

    def forward(self, x: torch.Tensor, return_extras: bool = False):
        quant, z, idx, skips = self.encode(x)
        out = self.decoder(self.post_quant_conv(quant), skips)
        if return_extras:
            return out, {"z": z, "indices": idx}
        return out
