"""GFPGAN v1.4 network: the "clean" GFPGAN architecture (U-Net encoder + StyleGAN2 decoder with
spatial feature transform), written for celebref from the published description and the facts recorded
in ``shared/golden/gfpgan/README.md`` (layer names, shapes, operation order).

Configuration shipped with GFPGAN v1.4 (what the official ``GFPGANer(arch='clean', channel_multiplier=2)``
builds): output 512 px, 512-d styles, channel multiplier 2, one latent per StyleGAN layer
(``different_w``), the encoder's latents fed directly to the decoder (``input_is_latent``: the style MLP
is present for checkpoint compatibility but never used), SFT applied to the second half of the channels.

Tensor conventions: input and output are float32 ``(N, 3, 512, 512)`` **RGB** in ``[-1, 1]`` (the output
is not clamped). The state-dict keys, shapes and order are those of the official checkpoint
``GFPGANv1.4.pth`` (``params_ema``), so it loads with ``strict=True`` unchanged.

Noise: every StyleGAN convolution adds ``strength * noise``. ``forward(x)`` uses the 15 noise maps stored
in the checkpoint (``stylegan_decoder.noises.noise0..14``), which makes the network deterministic; pass
``noise=[...]`` (one ``(N or 1, 1, r, r)`` map per layer, see :meth:`GFPGANv14.noise_shapes`) for other noise.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.2


def _resample(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Bilinear resize by ``factor`` (half-pixel centres, no antialiasing), as every resize in GFPGAN."""
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


def _channels(multiplier: float, narrow: float) -> dict[int, int]:
    """StyleGAN2 channel count per resolution (4 ... 1024 px)."""
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * multiplier, 128: 128 * multiplier,
            256: 64 * multiplier, 512: 32 * multiplier, 1024: 16 * multiplier}
    return {r: int(c * narrow) for r, c in base.items()}


class ResampleResBlock(nn.Module):
    """Residual block that halves (``factor=0.5``) or doubles (``factor=2``) the resolution.

    main: conv3x3 -> lrelu -> bilinear resize -> conv3x3 (changes channels) -> lrelu;
    shortcut: bilinear resize -> conv1x1 without bias; output = main + shortcut.
    """

    def __init__(self, in_ch: int, out_ch: int, factor: float):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, in_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in-place activations/sums: same arithmetic, fewer large temporaries (CPU speed)
        h = F.leaky_relu_(self.conv1(x), LRELU_SLOPE)
        h = F.leaky_relu_(self.conv2(_resample(h, self.factor)), LRELU_SLOPE)
        return h.add_(self.skip(_resample(x, self.factor)))


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution (no bias). Per sample: ``w' = w * s`` with ``s = A(style)`` scaling the
    input channels, optionally demodulated by ``rsqrt(sum(w'^2 over in,k,k) + 1e-8)``. With ``upsample`` the
    input is first resized x2 bilinearly, then convolved (padding k//2)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, style_dim: int, demodulate: bool, upsample: bool):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel = in_ch, out_ch, kernel
        self.demodulate, self.upsample = demodulate, upsample
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel, kernel) / math.sqrt(in_ch * kernel * kernel))
        self.modulation = nn.Linear(style_dim, in_ch)
        nn.init.ones_(self.modulation.bias)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        s = self.modulation(style).view(n, 1, self.in_ch, 1, 1)
        w = self.weight * s  # (n, out, in, k, k): one kernel per sample
        if self.demodulate:
            d = torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4)) + 1e-8)
            w = w * d.view(n, self.out_ch, 1, 1, 1)
        if self.upsample:
            x = _resample(x, 2)
        h, wd = x.shape[-2:]
        # all samples in one grouped convolution: group i = sample i with its own kernel
        out = F.conv2d(x.reshape(1, n * self.in_ch, h, wd),
                       w.reshape(n * self.out_ch, self.in_ch, self.kernel, self.kernel),
                       padding=self.kernel // 2, groups=n)
        return out.view(n, self.out_ch, out.shape[-2], out.shape[-1])


class StyleConv(nn.Module):
    """Modulated 3x3 conv, then ``out * sqrt(2)``, ``+ strength * noise``, ``+ bias``, LeakyReLU(0.2)
    (the sqrt(2) gain comes before noise and bias)."""

    def __init__(self, in_ch: int, out_ch: int, style_dim: int, upsample: bool):
        super().__init__()
        self.modulated_conv = ModulatedConv2d(in_ch, out_ch, 3, style_dim, demodulate=True, upsample=upsample)
        self.weight = nn.Parameter(torch.zeros(1))  # noise strength
        self.bias = nn.Parameter(torch.zeros(1, out_ch, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        out = self.modulated_conv(x, style).mul_(2**0.5)  # in place: same arithmetic, fewer temporaries
        out = out.add_(self.weight * noise).add_(self.bias)
        return F.leaky_relu_(out, LRELU_SLOPE)


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (not demodulated) + bias, plus the previous RGB image upsampled x2."""

    def __init__(self, in_ch: int, style_dim: int, upsample_skip: bool):
        super().__init__()
        self.upsample_skip = upsample_skip
        self.modulated_conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False, upsample=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.modulated_conv(x, style).add_(self.bias)
        if skip is not None:
            out = out.add_(_resample(skip, 2) if self.upsample_skip else skip)
        return out


class _NormStyleCode(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class _ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, n: int) -> torch.Tensor:
        return self.weight.repeat(n, 1, 1, 1)


class StyleGAN2SFTDecoder(nn.Module):
    """StyleGAN2 generator whose features are modulated by SFT conditions from the U-Net.

    Takes per-layer latents ``(N, 2*log2(size)-2, style_dim)`` directly (the style MLP is kept only so the
    checkpoint loads; the encoder produces W-space latents). Latent use: first conv <- 0, first to_rgb <- 1;
    level j (8 px ... size): upsampling conv <- 1+2j, conv <- 2+2j, to_rgb <- 3+2j.
    SFT for level j is applied between its two convolutions, on the second half of the channels
    (``sft_half``) or on all of them.
    """

    def __init__(self, out_size: int = 512, style_dim: int = 512, num_mlp: int = 8,
                 channel_multiplier: float = 2, narrow: float = 1, sft_half: bool = True):
        super().__init__()
        self.sft_half = sft_half
        self.log_size = int(math.log2(out_size))
        self.num_layers = 2 * (self.log_size - 2) + 1
        ch = _channels(channel_multiplier, narrow)
        mlp: list[nn.Module] = [_NormStyleCode()]
        for _ in range(num_mlp):
            mlp += [nn.Linear(style_dim, style_dim), nn.LeakyReLU(LRELU_SLOPE)]
        self.style_mlp = nn.Sequential(*mlp)  # unused for W-space latents; keys of the checkpoint
        self.constant_input = _ConstantInput(ch[4], 4)
        self.style_conv1 = StyleConv(ch[4], ch[4], style_dim, upsample=False)
        self.to_rgb1 = ToRGB(ch[4], style_dim, upsample_skip=False)
        self.style_convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for i, shape in enumerate(self.noise_shapes()):
            self.noises.register_buffer(f"noise{i}", torch.randn(*shape))
        c_in = ch[4]
        for lvl in range(3, self.log_size + 1):
            c_out = ch[2**lvl]
            self.style_convs.append(StyleConv(c_in, c_out, style_dim, upsample=True))
            self.style_convs.append(StyleConv(c_out, c_out, style_dim, upsample=False))
            self.to_rgbs.append(ToRGB(c_out, style_dim, upsample_skip=True))
            c_in = c_out

    def noise_shapes(self) -> list[tuple[int, int, int, int]]:
        """Shape of the noise map of each StyleConv, in order (4, 8, 8, 16, 16, ... px)."""
        return [(1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2)) for i in range(self.num_layers)]

    def stored_noise(self) -> list[torch.Tensor]:
        return [getattr(self.noises, f"noise{i}") for i in range(self.num_layers)]

    def forward(self, latent: torch.Tensor, conditions: Sequence[tuple[torch.Tensor, torch.Tensor]],
                noise: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        noise = self.stored_noise() if noise is None else list(noise)
        if len(noise) != self.num_layers:
            raise ValueError(f"expected {self.num_layers} noise maps, got {len(noise)}")
        out = self.constant_input(latent.shape[0])
        out = self.style_conv1(out, latent[:, 0], noise[0])
        rgb = self.to_rgb1(out, latent[:, 1])
        for j, to_rgb in enumerate(self.to_rgbs):
            k = 1 + 2 * j
            out = self.style_convs[2 * j](out, latent[:, k], noise[k])
            if j < len(conditions):
                scale, shift = conditions[j]
                if self.sft_half:
                    keep, mod = torch.split(out, out.shape[1] // 2, dim=1)
                    out = torch.cat([keep, (mod * scale).add_(shift)], dim=1)
                else:
                    out = out * scale + shift
            out = self.style_convs[2 * j + 1](out, latent[:, k + 1], noise[k + 1])
            rgb = to_rgb(out, latent[:, k + 2], rgb)
        return rgb


class GFPGANv14(nn.Module):
    """GFPGAN v1.4 ("clean" GFPGAN) generator. Defaults are the v1.4 configuration.

    ``forward(x)`` -> restored image; ``forward(x, return_extras=True)`` -> ``(image, extras)`` with
    ``extras = {"style_code": (N, L, style_dim), "out_rgbs": [7 intermediate U-Net RGB images, 8 ... 512 px]}``.
    """

    def __init__(self, out_size: int = 512, style_dim: int = 512, channel_multiplier: float = 2,
                 num_mlp: int = 8, narrow: float = 1, sft_half: bool = True):
        super().__init__()
        self.style_dim = style_dim
        self.log_size = int(math.log2(out_size))
        if 2**self.log_size != out_size:
            raise ValueError(f"out_size must be a power of two, got {out_size}")
        unet = _channels(channel_multiplier, narrow * 0.5)  # the U-Net has half of StyleGAN's channels
        self.conv_body_first = nn.Conv2d(3, unet[out_size], 1)
        self.conv_body_down = nn.ModuleList()
        c = unet[out_size]
        for lvl in range(self.log_size, 2, -1):
            self.conv_body_down.append(ResampleResBlock(c, unet[2 ** (lvl - 1)], 0.5))
            c = unet[2 ** (lvl - 1)]
        self.final_conv = nn.Conv2d(c, unet[4], 3, 1, 1)
        self.conv_body_up = nn.ModuleList()
        c = unet[4]
        for lvl in range(3, self.log_size + 1):
            self.conv_body_up.append(ResampleResBlock(c, unet[2**lvl], 2))
            c = unet[2**lvl]
        self.toRGB = nn.ModuleList(nn.Conv2d(unet[2**lvl], 3, 1) for lvl in range(3, self.log_size + 1))
        self.num_latents = 2 * self.log_size - 2
        self.final_linear = nn.Linear(unet[4] * 16, self.num_latents * style_dim)
        self.stylegan_decoder = StyleGAN2SFTDecoder(out_size, style_dim, num_mlp, channel_multiplier, narrow, sft_half)
        self.condition_scale = nn.ModuleList()
        self.condition_shift = nn.ModuleList()
        for lvl in range(3, self.log_size + 1):
            cc = unet[2**lvl]
            cout = cc if sft_half else 2 * cc
            for branch in (self.condition_scale, self.condition_shift):
                branch.append(nn.Sequential(nn.Conv2d(cc, cc, 3, 1, 1), nn.LeakyReLU(LRELU_SLOPE), nn.Conv2d(cc, cout, 3, 1, 1)))

    def noise_shapes(self) -> list[tuple[int, int, int, int]]:
        return self.stylegan_decoder.noise_shapes()

    def compile_static(self, **kwargs) -> "GFPGANv14":
        """``torch.compile`` the whole network in place (static shapes, no host tensors in the forward);
        ``kwargs`` go to ``torch.compile``. State-dict keys are unchanged."""
        self.compile(**kwargs)
        return self

    def forward(self, x: torch.Tensor, noise: Sequence[torch.Tensor] | None = None, return_extras: bool = False):
        n = x.shape[0]
        feat = F.leaky_relu(self.conv_body_first(x), LRELU_SLOPE)
        skips = []
        for block in self.conv_body_down:
            feat = block(feat)
            skips.append(feat)
        feat = F.leaky_relu(self.final_conv(feat), LRELU_SLOPE)
        style_code = self.final_linear(feat.reshape(n, -1)).view(n, self.num_latents, self.style_dim)
        conditions = []
        out_rgbs = []
        for i, block in enumerate(self.conv_body_up):
            feat = block(feat + skips[-1 - i])  # deepest skip first
            conditions.append((self.condition_scale[i](feat), self.condition_shift[i](feat)))
            if return_extras:
                out_rgbs.append(self.toRGB[i](feat))
        image = self.stylegan_decoder(style_code, conditions, noise)
        if return_extras:
            return image, {"style_code": style_code, "out_rgbs": out_rgbs}
        return image
