"""Distance search on unit-norm embeddings without a dense N x N matrix.

Distances are Euclidean between L2-normalised vectors (``sqrt(2 - 2 cos)``, 0..2), the convention of
:mod:`celebref.face.base`. Exact searches work in row blocks (memory ``block x N``); :func:`lsh_radius_pairs`
is an approximate index (random-hyperplane LSH, several tables) for very large sets.
"""

from __future__ import annotations

import numpy as np


def _as_unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected (N, D) embeddings, got shape {x.shape}")
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def cdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(len(a), len(b))`` between L2-normalised rows (float64)."""
    a = _as_unit(a).astype(np.float64)
    b = _as_unit(b).astype(np.float64)
    return np.sqrt(np.clip(2.0 - 2.0 * (a @ b.T), 0.0, 4.0))


def radius_pairs(x: np.ndarray, radius: float, block: int = 2048) -> np.ndarray:
    """All pairs ``i < j`` with distance ``< radius``: array ``(K, 3)`` of ``(i, j, d)`` sorted by ``(i, j)``.
    Exact; time O(N^2 D) but memory O(block N)."""
    x = _as_unit(x)
    n = len(x)
    out = []
    c = 1.0 - radius * radius / 2.0  # d < r  <=>  cos > c
    for s in range(0, n, block):
        sims = x[s : s + block] @ x[s:].T  # only the upper part: j >= s
        ii, jj = np.nonzero(sims > c - 1e-6)
        jj = jj + s
        ii = ii + s
        keep = jj > ii
        ii, jj = ii[keep], jj[keep]
        d = np.sqrt(np.clip(2.0 - 2.0 * sims[ii - s, jj - s].astype(np.float64), 0.0, 4.0))
        ok = d < radius
        out.append(np.stack([ii[ok], jj[ok], d[ok]], axis=1) if ok.any() else np.zeros((0, 3)))
    if not out:
        return np.zeros((0, 3))
    res = np.concatenate(out, axis=0)
    order = np.lexsort((res[:, 1], res[:, 0]))
    return res[order]


def lsh_radius_pairs(x: np.ndarray, radius: float, n_tables: int = 8, n_bits: int = 14, seed: int = 0) -> np.ndarray:
    """Approximate :func:`radius_pairs` with random-hyperplane LSH: candidate pairs share a bucket in at least
    one of ``n_tables`` tables of ``n_bits`` hyperplanes each; candidates are checked exactly, so every returned
    pair is a true pair (recall < 1, precision 1). Deterministic for a given ``seed``. Same output format."""
    x = _as_unit(x)
    n, dim = x.shape
    rng = np.random.default_rng(seed)
    cand: set[tuple[int, int]] = set()
    weights = (1 << np.arange(n_bits, dtype=np.int64))
    for _ in range(n_tables):
        planes = rng.standard_normal((dim, n_bits)).astype(np.float32)
        codes = ((x @ planes) > 0).astype(np.int64) @ weights
        order = np.argsort(codes, kind="stable")
        sc = codes[order]
        bounds = np.flatnonzero(np.diff(sc)) + 1
        for grp in np.split(order, bounds):
            if len(grp) < 2:
                continue
            g = np.sort(grp)
            if len(g) > 4096:  # degenerate bucket: exact search inside it
                sub = radius_pairs(x[g], radius)
                cand.update((int(g[int(a)]), int(g[int(b)])) for a, b, _ in sub)
                continue
            sims = x[g] @ x[g].T
            ii, jj = np.nonzero(np.triu(sims > 1.0 - radius * radius / 2.0 - 1e-6, 1))
            cand.update(zip(g[ii].tolist(), g[jj].tolist()))
    if not cand:
        return np.zeros((0, 3))
    pairs = np.array(sorted(cand), dtype=np.int64)
    d = np.sqrt(np.clip(2.0 - 2.0 * np.einsum("ij,ij->i", x[pairs[:, 0]], x[pairs[:, 1]]).astype(np.float64), 0.0, 4.0))
    ok = d < radius
    return np.concatenate([pairs[ok].astype(np.float64), d[ok, None]], axis=1)


def nearest_other(a: np.ndarray, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``a`` the index and distance of its nearest *other* row (``-1``/``inf`` when alone)."""
    a = _as_unit(a)
    n = len(a)
    idx = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.inf)
    for s in range(0, n, block):
        sims = (a[s : s + block] @ a.T).astype(np.float64)
        rows = np.arange(sims.shape[0])
        sims[rows, rows + s] = -np.inf
        if n > 1:
            j = np.argmax(sims, axis=1)
            idx[s : s + block] = j
            dist[s : s + block] = np.sqrt(np.clip(2.0 - 2.0 * sims[rows, j], 0.0, 4.0))
    return idx, dist


class UnionFind:
    """Disjoint sets over ``0..n-1``; the representative of a set is its smallest member."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = min(ra, rb), max(ra, rb)
            self.parent[hi] = lo

    def groups(self) -> list[list[int]]:
        out: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return [out[k] for k in sorted(out)]
