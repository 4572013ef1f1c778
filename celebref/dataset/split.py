"""Seeded, identity-disjoint train/test split and a leakage check across splits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .neighbors import cdist


def split_groups(groups: list[list[str]], test_fraction: float, seed: int) -> dict[str, str]:
    """Assign every member of each group (folders that must stay together, e.g. colliding identities) to
    ``train`` or ``test``. Groups are shuffled with ``numpy.random.default_rng(seed)`` after sorting, and taken
    into the test split until it holds ``max(1, round(test_fraction * n_folders))`` folders (when there are at
    least 2 groups and ``test_fraction > 0``). Independent of input order."""
    groups = sorted((sorted(g) for g in groups), key=lambda g: g[0])
    n = sum(len(g) for g in groups)
    out = {f: "train" for g in groups for f in g}
    if len(groups) < 2 or test_fraction <= 0:
        return out
    target = max(1, int(round(test_fraction * n)))
    order = np.random.default_rng(seed).permutation(len(groups))
    taken = 0
    for gi in order:
        if taken >= target:
            break
        if taken + len(groups[gi]) > target and taken > 0:
            continue
        for f in groups[gi]:
            out[f] = "test"
        taken += len(groups[gi])
    if all(v == "test" for v in out.values()):  # never leave train empty
        out[groups[int(order[-1])][0]] = "train"
    return out


@dataclass
class LeakageReport:
    shared_identities: list[str] = field(default_factory=list)
    shared_sha256: list[str] = field(default_factory=list)
    close_identity_pairs: list[tuple[str, str, float]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.shared_identities or self.shared_sha256 or self.close_identity_pairs)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "shared_identities": self.shared_identities, "shared_sha256": self.shared_sha256,
                "close_identity_pairs": [[a, b, round(d, 6)] for a, b, d in self.close_identity_pairs]}


def leakage_check(rows: list[dict], centroids: dict[str, np.ndarray], threshold: float) -> LeakageReport:
    """Check a split: no identity id in both splits, no file content (sha256) in both, and no train identity
    whose centroid is within ``threshold`` of a test identity's centroid (the same person under two names).
    ``rows``: accepted records with keys ``identity_id``, ``split``, ``sha256``."""
    rep = LeakageReport()
    by_split: dict[str, dict[str, set]] = {"train": {"id": set(), "sha": set()}, "test": {"id": set(), "sha": set()}}
    for r in rows:
        s = by_split[r["split"]]
        s["id"].add(r["identity_id"])
        s["sha"].add(r["sha256"])
    rep.shared_identities = sorted(by_split["train"]["id"] & by_split["test"]["id"])
    rep.shared_sha256 = sorted(by_split["train"]["sha"] & by_split["test"]["sha"])
    tr = sorted(i for i in by_split["train"]["id"] if i in centroids)
    te = sorted(i for i in by_split["test"]["id"] if i in centroids)
    if tr and te:
        for s in range(0, len(te), 1024):
            block = te[s : s + 1024]
            d = cdist(np.stack([centroids[i] for i in block]), np.stack([centroids[i] for i in tr]))
            for a, b in zip(*np.nonzero(d < threshold)):
                rep.close_identity_pairs.append((tr[b], block[a], float(d[a, b])))
    rep.close_identity_pairs.sort()
    return rep
