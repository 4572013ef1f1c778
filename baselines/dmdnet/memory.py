"""DMDNet memory maths: AdaIN and the soft memory read.

The read's similarity and softmax run as a float32 island (:mod:`celebref.precision`): under a
bf16/fp16 autocast the scores over the 128 slots stay float32 (no effect in fp32).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from celebref.precision import fp32_island

def mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)
    std = (flat.var(dim=2) + eps).sqrt().view(n, c, 1, 1)
    mean = flat.mean(dim=2).view(n, c, 1, 1)
    return mean, std


def adain(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Give ``content`` the per-channel spatial mean/std of ``style`` (unbiased variance + 1e-5)."""
    s_mean, s_std = mean_std(style)
    c_mean, c_std = mean_std(content)
    size = content.shape
    normalized = (content - c_mean.expand(size)) / c_std.expand(size)
    return normalized * s_std.expand(size) + s_mean.expand(size)


def read_memory(key: torch.Tensor, value: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Soft memory read: ``softmax(<q, key_s> / sqrt(S))`` over the S slots, weighted sum of values.

    ``q`` (B, C, h, w), ``key`` (S, C, h, w), ``value`` (S, Cv, h, w) -> (B, Cv, h, w).
    """
    with fp32_island():
        sim = F.conv2d(q.float(), key.float())  # (B, S, 1, 1): full dot product over C x h x w
        score = F.softmax(sim / math.sqrt(sim.size(1)), dim=1)
    score = score.to(value.dtype) if value.dtype != score.dtype else score
    b = score.shape[0]
    s = value.shape[0]
    out = torch.bmm(score.reshape(b, 1, s), value.reshape(1, s, -1).expand(b, s, -1))
    return out.reshape(b, *value.shape[1:])
