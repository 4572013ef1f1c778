"""Float64 first and second moments of feature vectors, mergeable, the same for any batching: FID's state.

:class:`FeatureMoments` keeps the raw vectors while there are at most ``keep`` of them (so small sets are scored
from the arrays themselves, exactly as :meth:`evaluation.fid.FID.score` scores them) and folds them into shifted
sums (count, sum, sum of outer products about the first vector seen, so the covariance loses no digits to
cancellation) in fixed chunks of :data:`CHUNK` rows counted from the first row. The sums therefore depend only on
the sequence of vectors, never on how they were batched (:meth:`~FeatureMoments.add` only appends; folding
happens in :meth:`~FeatureMoments.merge` and :meth:`~FeatureMoments.statistics`): a state merged from per-batch states (in input order)
equals the state of the whole sequence bit for bit -- whatever the engine, worker count or restart.
"""

from __future__ import annotations

import numpy as np

from celebref.errors import ConfigError

#: vectors kept beside the moments (2048 x 2048 x 8 bytes = 32 MB at most)
KEEP_FEATURES = 2048
#: rows folded into the sums at a time (a fixed grid: the sums do not depend on batch boundaries)
CHUNK = 256


class FeatureMoments:
    """Float64 moments of ``(n, d)`` feature rows added in order (see the module docstring)."""

    def __init__(self, keep: int = KEEP_FEATURES):
        self.keep = int(keep)
        self.n = 0
        self.shift: np.ndarray | None = None
        self.s1: np.ndarray | None = None
        self.s2: np.ndarray | None = None
        self._rows: list[np.ndarray] = []  # not folded yet (in order)
        self._pending = 0
        self._kept: list[np.ndarray] | None = []  # every row while n <= keep

    def add(self, x: np.ndarray) -> None:
        """Append feature rows ``(n, d)`` (or one ``(d,)`` vector), in order."""
        x = np.atleast_2d(np.array(x, np.float64, copy=True))
        if not len(x):
            return
        if self.shift is None:
            self.shift = x[0].copy()
            d = x.shape[1]
            self.s1, self.s2 = np.zeros(d), np.zeros((d, d))
        self.n += len(x)
        self._rows.append(x)
        self._pending += len(x)
        if self._kept is not None:
            if self.n <= self.keep:
                self._kept.append(x)
            else:
                self._kept = None

    def _fold(self, final: bool) -> None:
        """Fold pending rows into the sums, whole :data:`CHUNK` rows at a time (``final``: the rest too)."""
        if not self._rows:
            return
        rows = np.concatenate(self._rows, axis=0)
        stop = len(rows) if final else len(rows) - len(rows) % CHUNK
        for i in range(0, stop, CHUNK):
            c = rows[i:min(i + CHUNK, stop)] - self.shift
            self.s1 += c.sum(axis=0)
            self.s2 += c.T @ c
        rest = rows[stop:]
        self._rows = [rest] if len(rest) else []
        self._pending = len(rest)

    def merge(self, other: "FeatureMoments") -> "FeatureMoments":
        """Add ``other``'s vectors after ours. While ``other`` still holds its raw vectors (a batch's state) this
        is :meth:`add` of them -- bit-identical to adding them here; otherwise the moment-merge formula."""
        if other.n == 0:
            return self
        raw = other.raw_rows()
        if raw is not None:
            self.add(raw)
            if self._kept is None:  # the accumulator folds (a batch's state never does: it stays raw)
                self._fold(final=False)
            return self
        self._fold(final=True)
        other._fold(final=True)
        self._kept = None
        if self.shift is None:
            self.n, self.shift, self.s1, self.s2 = other.n, other.shift.copy(), other.s1.copy(), other.s2.copy()
            return self
        delta = other.shift - self.shift  # re-express the other's sums about our shift
        self.s2 += other.s2 + np.outer(delta, other.s1) + np.outer(other.s1, delta) + other.n * np.outer(delta, delta)
        self.s1 += other.s1 + other.n * delta
        self.n += other.n
        return self

    def raw_rows(self) -> np.ndarray | None:
        """Every vector added, in order, while none has been folded yet (else ``None``)."""
        if self._kept is not None and self._kept:
            return np.concatenate(self._kept, axis=0)
        if self._rows and self._pending == self.n:
            return np.concatenate(self._rows, axis=0)
        return None

    @property
    def features(self) -> np.ndarray | None:
        """The vectors themselves while there are at most ``keep`` of them (else ``None``)."""
        if self._kept is None or not self._kept:
            return None
        return np.concatenate(self._kept, axis=0)

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mu, sigma)`` with sigma = ``np.cov(X, rowvar=False)`` (ddof 1), float64."""
        if self.n < 2:
            raise ConfigError(f"FID needs at least 2 images per set, got {self.n}")
        self._fold(final=True)
        mu = self.shift + self.s1 / self.n
        sigma = (self.s2 - np.outer(self.s1, self.s1) / self.n) / (self.n - 1)
        return mu, (sigma + sigma.T) / 2.0

    def __getstate__(self) -> dict:  # a batch's state travels without its (still zero) d x d sums
        state = dict(self.__dict__)
        if self.n == self._pending:
            state["s1"] = state["s2"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.shift is not None and self.s1 is None:
            d = self.shift.shape[0]
            self.s1, self.s2 = np.zeros(d), np.zeros((d, d))
