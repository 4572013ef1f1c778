"""Duplicate detection: exact (content sha256) and near duplicates within one identity.

Near duplicates (re-encodes, resizes, small crops/shifts, mirrors) are found on the *aligned* faces: a pair is a
near duplicate when its identity embeddings are closer than ``embed_threshold`` (candidate search, blockwise or
LSH, never a dense matrix over the whole crawl) **and** the 64-bit DCT perceptual hashes of the two aligned faces
differ in at most ``hash_bits`` bits, comparing one face with both the other face and its mirror image. Groups are
the connected components of that relation; each group keeps its best-quality member.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .neighbors import UnionFind, lsh_radius_pairs, radius_pairs


def phash(img: np.ndarray) -> str:
    """64-bit DCT perceptual hash of an RGB uint8 image as 16 hex digits: grayscale (BT.601), area-resized to
    32x32, 2-D DCT, the 8x8 lowest frequencies, bit = coefficient > median of the 63 AC ones (DC excluded)."""
    g = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY).astype(np.float32)
    small = cv2.resize(g, (32, 32), interpolation=cv2.INTER_AREA)
    coeffs = cv2.dct(small)[:8, :8].ravel()
    med = np.median(coeffs[1:])
    bits = coeffs > med
    bits[0] = False
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex hashes."""
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def near_duplicate_pairs(emb: np.ndarray, hashes: Sequence[str], hashes_mirror: Sequence[str], embed_threshold: float,
                         hash_bits: int, ann_above: int = 20000) -> list[tuple[int, int, float, int]]:
    """Near-duplicate pairs ``(i, j, embedding distance, hash distance)`` with ``i < j`` among one identity's faces.
    Exact blockwise candidate search up to ``ann_above`` faces, LSH above that."""
    n = len(emb)
    if n < 2:
        return []
    cands = radius_pairs(emb, embed_threshold) if n <= ann_above else lsh_radius_pairs(emb, embed_threshold)
    out = []
    for i, j, d in cands:
        i, j = int(i), int(j)
        h = min(hamming(hashes[i], hashes[j]), hamming(hashes[i], hashes_mirror[j]))
        if h <= hash_bits:
            out.append((i, j, float(d), h))
    return out


def group_and_keep(n: int, pairs: Sequence[tuple[int, int, float, int]], rank: Sequence) -> dict[int, int]:
    """Connected components of ``pairs``; returns ``{dropped index: kept index}`` where each component keeps the
    member with the smallest ``rank[i]`` (a sortable key: put the best quality first)."""
    uf = UnionFind(n)
    for i, j, *_ in pairs:
        uf.union(i, j)
    dropped: dict[int, int] = {}
    for g in uf.groups():
        if len(g) < 2:
            continue
        keep = min(g, key=lambda i: rank[i])
        for i in g:
            if i != keep:
                dropped[i] = keep
    return dropped
