"""CodeFormer network (Zhou et al., NeurIPS 2022), written for celebref from the paper and the facts
recorded in ``shared/golden/codeformer/README.md`` (layer names, shapes, operation order).

Configuration of the released model: VQGAN encoder/generator with base width 64 and multipliers
(1, 2, 2, 4, 4, 8) (512 ... 16 px), a 1024 x 256 codebook, a 9-layer pre-norm transformer (512-d, 8 heads,
MLP 1024, learned positional embedding on queries/keys) predicting one code per 16x16 token, and
controllable feature fusion (fidelity weight ``w``) at 32/64/128/256 px.

Tensor conventions: input and output float32 ``(N, 3, 512, 512)`` **RGB** in ``[-1, 1]`` (output not
clamped). State-dict keys/shapes/order are those of the official ``codeformer.pth`` (``params_ema``).

Precision (:mod:`celebref.precision`): under a bf16/fp16 autocast the code prediction (encoder,
transformer, logits, top-1 code, codebook lookup and AdaIN) runs as a float32 island, because the
golden's smallest top1-top2 logit gap (4.4e-4) is far below a bf16 rounding error; every attention
softmax (scores included) is float32 too (in fp16 the raw ``q^T k`` over 512 channels overflows).
Only the generator and the fusion blocks run in the reduced precision. In fp32 nothing changes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from celebref.precision import fp32_island

CH_MULT = (1, 2, 2, 4, 4, 8)
BASE_CH = 64
EMB_DIM = 256
# encoder block after which the skip feature of a resolution is taken / generator block after which it is fused
ENCODER_TAP = {512: 2, 256: 5, 128: 8, 64: 11, 32: 14, 16: 18}
GENERATOR_TAP = {16: 6, 32: 9, 64: 12, 128: 15, 256: 18, 512: 21}


def _group_norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, ch, eps=1e-6, affine=True)


def _swish_(x: torch.Tensor) -> torch.Tensor:
    """``x * sigmoid(x)`` computed in place in ``x`` (same arithmetic; ``x`` must be a temporary)."""
    return x.mul_(torch.sigmoid(x))


class ResBlock(nn.Module):
    """GN -> swish -> conv3x3 -> GN -> swish -> conv3x3, plus the input (through a 1x1 conv when the
    channel count changes)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.in_ch, self.out_ch = in_ch, out_ch
        self.norm1 = _group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.norm2 = _group_norm(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        if in_ch != out_ch:
            self.conv_out = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_swish_(self.norm1(x)))
        h = self.conv2(_swish_(self.norm2(h)))
        return h.add_(self.conv_out(x) if self.in_ch != self.out_ch else x)


class AttnBlock(nn.Module):
    """Single-head spatial self-attention: q, k, v = 1x1 convs of GN(x); softmax(q^T k / sqrt(C)) over
    keys; 1x1 output projection; residual."""

    def __init__(self, ch: int):
        super().__init__()
        self.norm = _group_norm(ch)
        self.q = nn.Conv2d(ch, ch, 1)
        self.k = nn.Conv2d(ch, ch, 1)
        self.v = nn.Conv2d(ch, ch, 1)
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        y = self.norm(x)
        q = self.q(y).reshape(n, c, h * w).transpose(1, 2)  # (n, hw, c)
        k = self.k(y).reshape(n, c, h * w)  # (n, c, hw)
        v = self.v(y).reshape(n, c, h * w)
        att = _softmax_scores(q, k, int(c) ** -0.5).to(v.dtype)  # (n, query, key), float32 island
        out = torch.bmm(v, att.transpose(1, 2)).reshape(n, c, h, w)
        return self.proj_out(out).add_(x)


@fp32_island()
def _softmax_scores(q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """``softmax(bmm(q, k) * scale, dim=-1)`` in float32 (same op order as the official code)."""
    return torch.softmax(torch.bmm(q, k) * scale, dim=-1)


class Downsample(nn.Module):
    """Zero-pad one column on the right and one row at the bottom, then conv3x3 stride 2 without padding."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, 2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class Upsample(nn.Module):
    """Nearest-neighbour x2, then conv3x3."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Encoder(nn.Module):
    """conv_in; per level two ResBlocks (each followed by attention at 16 px) and a Downsample between
    levels; ResBlock, AttnBlock, ResBlock; GroupNorm; conv3x3 to the 256-d latent. 25 blocks at 512 px."""

    def __init__(self, img_size: int = 512, attn_res: tuple[int, ...] = (16,)):
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(3, BASE_CH, 3, 1, 1)]
        res, c = img_size, BASE_CH
        for lvl, mult in enumerate(CH_MULT):
            for _ in range(2):
                blocks.append(ResBlock(c, BASE_CH * mult))
                c = BASE_CH * mult
                if res in attn_res:
                    blocks.append(AttnBlock(c))
            if lvl != len(CH_MULT) - 1:
                blocks.append(Downsample(c))
                res //= 2
        blocks += [ResBlock(c, c), AttnBlock(c), ResBlock(c, c), _group_norm(c), nn.Conv2d(c, EMB_DIM, 3, 1, 1)]
        self.blocks = nn.ModuleList(blocks)


class Generator(nn.Module):
    """conv_in 256->512; ResBlock, AttnBlock, ResBlock; per level (16 ... 512 px) two ResBlocks (each
    followed by attention at 16 px) and an Upsample between levels; GroupNorm; conv3x3 to RGB."""

    def __init__(self, img_size: int = 512, attn_res: tuple[int, ...] = (16,)):
        super().__init__()
        c = BASE_CH * CH_MULT[-1]
        res = img_size // 2 ** (len(CH_MULT) - 1)
        blocks: list[nn.Module] = [nn.Conv2d(EMB_DIM, c, 3, 1, 1), ResBlock(c, c), AttnBlock(c), ResBlock(c, c)]
        for lvl in reversed(range(len(CH_MULT))):
            for _ in range(2):
                blocks.append(ResBlock(c, BASE_CH * CH_MULT[lvl]))
                c = BASE_CH * CH_MULT[lvl]
                if res in attn_res:
                    blocks.append(AttnBlock(c))
            if lvl != 0:
                blocks.append(Upsample(c))
                res *= 2
        blocks += [_group_norm(c), nn.Conv2d(c, 3, 3, 1, 1)]
        self.blocks = nn.ModuleList(blocks)


class Codebook(nn.Module):
    """The VQGAN codebook (``embedding.weight``: codebook_size x 256), used only as a lookup table."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(size, dim)

    def lookup(self, idx: torch.Tensor, n: int, side: int) -> torch.Tensor:
        """``idx`` (n, side*side) token codes (token t = row t // side, col t % side) -> (n, dim, side, side)."""
        feat = self.embedding.weight.index_select(0, idx.reshape(-1))
        return feat.view(n, side, side, -1).permute(0, 3, 1, 2).contiguous()


class SelfAttention(nn.Module):
    """Multi-head attention with a packed [q; k; v] input projection (``in_proj_weight``/``in_proj_bias``)
    and ``out_proj``; queries/keys and values come from different inputs. Batch-first ``(N, L, E)``."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.dim, self.heads = dim, heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, qk: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        n, length, e = v.shape
        d = e // self.heads
        w, b = self.in_proj_weight, self.in_proj_bias
        q = F.linear(qk, w[:e], b[:e])
        k = F.linear(qk, w[e : 2 * e], b[e : 2 * e])
        val = F.linear(v, w[2 * e :], b[2 * e :])

        def heads(t: torch.Tensor) -> torch.Tensor:  # (n, L, e) -> (n*h, L, d)
            return t.view(n, length, self.heads, d).transpose(1, 2).reshape(n * self.heads, length, d)

        q = heads(q) * math.sqrt(1.0 / d)
        vh = heads(val)
        att = _softmax_scores(q, heads(k).transpose(1, 2), 1.0).to(vh.dtype)  # float32 island
        out = torch.bmm(att, vh)  # (n*h, L, d)
        out = out.view(n, self.heads, length, d).transpose(1, 2).reshape(n, length, e)
        return self.out_proj(out)


class TransformerLayer(nn.Module):
    """Pre-norm layer: ``t += MHA(LN1(t)+pos, LN1(t)+pos, LN1(t))``; ``t += W2 gelu(W1 LN2(t))`` (exact GELU)."""

    def __init__(self, dim: int, heads: int, dim_mlp: int):
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.linear1 = nn.Linear(dim, dim_mlp)
        self.linear2 = nn.Linear(dim_mlp, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, t: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        y = self.norm1(t)
        t = t + self.self_attn(y + pos, y)
        return t + self.linear2(F.gelu(self.linear1(self.norm2(t))))


class FuseBlock(nn.Module):
    """Controllable feature transformation: ``e = ResBlock(2C->C)(cat[enc, dec])``;
    ``dec + w * (dec * scale(e) + shift(e))`` with scale/shift = conv3x3, LeakyReLU(0.2), conv3x3."""

    def __init__(self, ch: int):
        super().__init__()
        self.encode_enc = ResBlock(2 * ch, ch)
        self.scale = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(ch, ch, 3, padding=1))
        self.shift = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, enc: torch.Tensor, dec: torch.Tensor, w: float) -> torch.Tensor:
        e = self.encode_enc(torch.cat([enc, dec], dim=1))
        return dec + w * (dec * self.scale(e) + self.shift(e))


def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Give ``content`` the per-channel mean/std of ``style`` (std = sqrt(unbiased var + eps))."""

    def stats(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c = t.shape[:2]
        flat = t.reshape(n, c, -1)
        return flat.mean(dim=2).view(n, c, 1, 1), (flat.var(dim=2) + eps).sqrt().view(n, c, 1, 1)

    s_mean, s_std = stats(style)
    c_mean, c_std = stats(content)
    return (content - c_mean) / c_std * s_std + s_mean


class CodeFormerNet(nn.Module):
    """CodeFormer. ``forward(x, w)`` -> restored image; ``forward(x, w, return_extras=True)`` ->
    ``(image, {"logits": (N, 256, 1024), "lq_feat": (N, 256, 16, 16), "top_idx": (N, 256) int64})``.

    ``w`` in [0, 1]: 0 = pure codebook prediction (fusion blocks skipped), 1 = most faithful to the input.
    ``adain=True`` (the official inference setting) matches the looked-up codes' statistics to the encoder's.
    """

    def __init__(self, dim_embd: int = 512, n_head: int = 8, n_layers: int = 9, codebook_size: int = 1024,
                 latent_size: int = 256, connect_list: tuple[str, ...] = ("32", "64", "128", "256")):
        super().__init__()
        self.connect = tuple(int(s) for s in connect_list)
        self.latent_side = int(round(math.sqrt(latent_size)))
        self.position_emb = nn.Parameter(torch.zeros(latent_size, dim_embd))
        self.encoder = Encoder()
        self.quantize = Codebook(codebook_size, EMB_DIM)
        self.generator = Generator()
        self.feat_emb = nn.Linear(EMB_DIM, dim_embd)
        self.ft_layers = nn.Sequential(*[TransformerLayer(dim_embd, n_head, 2 * dim_embd) for _ in range(n_layers)])
        self.idx_pred_layer = nn.Sequential(nn.LayerNorm(dim_embd), nn.Linear(dim_embd, codebook_size, bias=False))
        fuse_ch = {16: 512, 32: 256, 64: 256, 128: 128, 256: 128, 512: 64}
        self.fuse_convs_dict = nn.ModuleDict({str(s): FuseBlock(fuse_ch[s]) for s in self.connect})

    def compile_static(self, **kwargs) -> "CodeFormerNet":
        """``torch.compile`` every encoder/generator block, the transformer layers and the fusion blocks in
        place (all static shapes; the code choice in between stays eager). ``kwargs`` go to ``torch.compile``."""
        for m in (*self.encoder.blocks, *self.generator.blocks, *self.ft_layers, *self.fuse_convs_dict.values()):
            m.compile(**kwargs)
        return self

    def predict_codes(self, x: torch.Tensor, adain_codes: bool = True):
        """Encoder, transformer and code choice, always in float32 (a float32 island under autocast).

        Returns ``(quant (N,256,16,16), enc_feats {side: feature}, logits, lq_feat, top_idx)``."""
        n = x.shape[0]
        enc_taps = {ENCODER_TAP[s]: s for s in self.connect}
        enc_feats: dict[int, torch.Tensor] = {}
        with fp32_island():
            x = x.float()
            for i, block in enumerate(self.encoder.blocks):
                x = block(x)
                if i in enc_taps:
                    enc_feats[x.shape[-1]] = x
            lq_feat = x
            tokens = self.feat_emb(lq_feat.flatten(2).transpose(1, 2))  # (n, hw, dim)
            for layer in self.ft_layers:
                tokens = layer(tokens, self.position_emb)
            logits = self.idx_pred_layer(tokens)  # (n, hw, codebook)
            top_idx = torch.topk(torch.softmax(logits, dim=2), 1, dim=2).indices[..., 0]
            quant = self.quantize.lookup(top_idx, n, self.latent_side)
            if adain_codes:
                quant = adain(quant, lq_feat)
        return quant, enc_feats, logits, lq_feat, top_idx

    def forward(self, x: torch.Tensor, w: float = 0.5, adain_codes: bool = True, return_extras: bool = False):
        x, enc_feats, logits, lq_feat, top_idx = self.predict_codes(x, adain_codes)
        gen_taps = {GENERATOR_TAP[s]: s for s in self.connect}
        for i, block in enumerate(self.generator.blocks):
            x = block(x)
            if i in gen_taps and w > 0:
                x = self.fuse_convs_dict[str(x.shape[-1])](enc_feats[x.shape[-1]], x, w)
        if return_extras:
            return x, {"logits": logits, "lq_feat": lq_feat, "top_idx": top_idx}
        return x
