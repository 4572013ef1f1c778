"""Identity verification: each folder's dominant identity, outliers, and cross-folder collisions.

The dominant identity of a folder is found from its embeddings by density, not by the mean (a mean is pulled
towards strangers): the *anchor* is the embedding with the most neighbours within the same-identity threshold
(ties: the smaller sum of distances to those neighbours, then the earlier file); the *core* is the anchor and
its neighbours; the identity's *centroid* is the normalised mean of the core. Each face's
``identity_distance`` is its distance to the centroid; faces farther than the threshold are outliers.
Folders are compared through their centroids only (K x K for K folders, blockwise), never image by image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .neighbors import UnionFind, cdist, radius_pairs


@dataclass
class DominantIdentity:
    """``anchor``: index of the densest embedding; ``core``: indices within the threshold of it;
    ``centroid``: unit vector; ``distances``: every embedding's distance to the centroid;
    ``core_fraction``: ``len(core) / n``."""

    anchor: int
    core: list[int]
    centroid: np.ndarray
    distances: np.ndarray
    core_fraction: float


def dominant_identity(emb: np.ndarray, threshold: float, max_points: int = 4000) -> DominantIdentity | None:
    """Dominant identity of one folder's embeddings ``(n, D)`` (unit norm). ``None`` when ``n == 0``.
    Folders larger than ``max_points`` choose the anchor among an evenly spaced subset (deterministic)."""
    emb = np.asarray(emb, dtype=np.float32)
    n = len(emb)
    if n == 0:
        return None
    cand = np.arange(n) if n <= max_points else np.linspace(0, n - 1, max_points).round().astype(int)
    counts = np.zeros(len(cand), dtype=np.int64)
    sums = np.zeros(len(cand))
    for s in range(0, len(cand), 256):  # memory: 256 x n at a time
        d = cdist(emb[cand[s : s + 256]], emb)
        within = d < threshold
        counts[s : s + 256] = within.sum(axis=1)
        sums[s : s + 256] = np.where(within, d, 0.0).sum(axis=1)
    order = np.lexsort((cand, sums, -counts))
    anchor = int(cand[int(order[0])])
    core = np.flatnonzero(cdist(emb[anchor : anchor + 1], emb)[0] < threshold).tolist()
    c = emb[core].astype(np.float64).mean(axis=0)
    c = c / max(np.linalg.norm(c), 1e-12)
    dist = cdist(c[None].astype(np.float32), emb)[0]
    return DominantIdentity(anchor, core, c.astype(np.float32), dist, len(core) / n)


@dataclass
class Collision:
    folder_a: str
    folder_b: str
    distance: float
    suggestion: str  # "merge" | "review"


def find_collisions(folders: list[str], centroids: np.ndarray, threshold: float, merge_threshold: float) -> list[Collision]:
    """Pairs of folders whose dominant-identity centroids are closer than ``threshold`` (blockwise search).
    ``suggestion`` is ``merge`` below ``merge_threshold``, ``review`` otherwise. Sorted by (folder_a, folder_b)."""
    if len(folders) < 2:
        return []
    pairs = radius_pairs(centroids, threshold)
    out = []
    for i, j, dd in pairs:
        a, b = sorted((folders[int(i)], folders[int(j)]))
        out.append(Collision(a, b, float(dd), "merge" if dd < merge_threshold else "review"))
    return sorted(out, key=lambda c: (c.folder_a, c.folder_b))


def collision_components(folders: list[str], collisions: list[Collision], kind: str | None = None) -> list[list[str]]:
    """Folders joined by collisions (of ``kind`` when given) as sorted groups (singletons included)."""
    pos = {f: i for i, f in enumerate(folders)}
    uf = UnionFind(len(folders))
    for c in collisions:
        if kind is None or c.suggestion == kind:
            uf.union(pos[c.folder_a], pos[c.folder_b])
    return [sorted(folders[i] for i in g) for g in uf.groups()]
