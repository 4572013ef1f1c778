"""Per-image random generators: every random draw of a degradation comes from a generator seeded by
``(seed, image id, stream name)``, never from global state.

The image id is hashed with SHA-256 (stable across processes, machines and Python versions, unlike
``hash()``), so adding, removing or reordering images never changes another image's draws. Each
pipeline step draws from its own named stream, so switching one step on or off (or overriding one
factor in a grid sweep) leaves the draws of the other steps unchanged.
"""

from __future__ import annotations

import hashlib

import numpy as np

_MASK32 = 0xFFFFFFFF


def _words(text: str) -> list[int]:
    """Eight 32-bit words of the SHA-256 of ``text`` (UTF-8)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 32, 4)]


def seed_sequence(seed: int, image_id: str, stream: str = "") -> np.random.SeedSequence:
    """The :class:`numpy.random.SeedSequence` for ``(seed, image_id, stream)``.

    ``seed`` must be a non-negative integer (any size). The entropy is the seed's 32-bit words followed
    by the hash words of the id; the stream name goes into the spawn key.
    """
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    seed_words = []
    s = seed
    while True:
        seed_words.append(s & _MASK32)
        s >>= 32
        if not s:
            break
    entropy = [len(seed_words), *seed_words, *_words(str(image_id))]
    return np.random.SeedSequence(entropy=entropy, spawn_key=tuple(_words("stream:" + stream)))


def image_rng(seed: int, image_id: str, stream: str = "") -> np.random.Generator:
    """A fresh PCG64 generator for ``(seed, image_id, stream)``: same arguments, same draws."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, image_id, stream)))


def generator_from_int(value: int) -> np.random.Generator:
    """A PCG64 generator from one drawn integer (used for seeds stored in a manifest, e.g. ``noise_seed``)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(value))))
